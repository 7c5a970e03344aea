"""The flags both serving entry points share (serving dir, backend, ranking weight) and what they build.

Nothing here imports TensorFlow at import time: the entry points set the Keras environment first.
"""

import argparse
from typing import Any, Optional, Tuple


def add_backend_flags(parser: argparse.ArgumentParser) -> None:
  """Adds --serving-dir, --ranking-weight and --tf-serving-url to `parser`."""
  parser.add_argument('--serving-dir', required=True,
                      help='The pipeline serving directory holding retrieval/ and ranking/ versions.')
  parser.add_argument('--ranking-weight', type=ranking_weight, default=None,
                      help='Weight of the predicted rating in the final score, 0..1 (default: the documented one).')
  parser.add_argument('--tf-serving-url', default=None,
                      help='Call TF Serving REST at this URL instead of loading the models in process.')


def ranking_weight(text: str) -> float:
  """--ranking-weight's value: a number in [0, 1] (refused before any model loads)."""
  try:
    weight = float(text)
  except ValueError as e:
    raise argparse.ArgumentTypeError(f'{text!r} is not a number; pass a weight from 0 to 1, e.g. 0.5.') from e
  if not 0.0 <= weight <= 1.0:
    raise argparse.ArgumentTypeError(f'{text} is outside [0, 1]; pass a weight from 0 (retrieval order) to 1 '
                                     '(predicted rating order).')
  return weight


def recommender_from_flags(args: argparse.Namespace, poll_interval_s: Optional[float] = None) -> Tuple[Any, Any]:
  """Builds the model registry (in process or TF Serving, loaded once) and the Recommender over it.

  Returns:
    (registry, recommender): a `serving.models.ModelRegistry` and a `serving.recommender.Recommender`.
  """
  # pylint: disable=g-import-not-at-top  (TensorFlow must not load before the Keras setting)
  from serving import models, recommender, tf_serving_backend
  loader = models.load_in_process
  if args.tf_serving_url:
    loader = tf_serving_backend.bundle_loader(args.tf_serving_url)
  registry = models.ModelRegistry(args.serving_dir, loader=loader,
                                  poll_interval_s=poll_interval_s or models.DEFAULT_POLL_INTERVAL_S)
  registry.refresh()
  weight = recommender.DEFAULT_RANKING_WEIGHT if args.ranking_weight is None else args.ranking_weight
  return registry, recommender.Recommender(registry, ranking_weight=weight)
