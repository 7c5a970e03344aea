"""CLI: prints one user's recommendations from the newest pushed models as JSON.

  python -m serving.recommend --serving-dir OUTPUT_DIR/serving --user-id 42 --k 10 \
      [--include-seen] [--user-feature user_gender=F ...] [--tf-serving-url http://127.0.0.1:8501]
"""

import argparse
import json
import sys
from typing import Dict, List, Optional, Sequence

from pipeline import environment


def parse_user_features(pairs: Sequence[str]) -> Dict[str, str]:
  """`['user_gender=F', 'user_age=23']` -> `{'user_gender': 'F', 'user_age': '23'}`.

  Raises:
    ValueError: for an entry without '='.
  """
  parsed: Dict[str, str] = {}
  for pair in pairs:
    column, sep, value = pair.partition('=')
    if not sep or not column:
      raise ValueError(f'--user-feature {pair!r} must look like COLUMN=VALUE, e.g. user_gender=F.')
    parsed[column] = value
  return parsed


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--serving-dir', required=True,
                      help='The pipeline serving directory holding retrieval/ and ranking/ versions.')
  parser.add_argument('--user-id', required=True, help='The raw user id.')
  parser.add_argument('--k', type=int, default=10, help='Number of items (default 10).')
  parser.add_argument('--include-seen', action='store_true',
                      help="Keep items of the user's training interactions (excluded by default).")
  parser.add_argument('--user-feature', action='append', default=[], metavar='COLUMN=VALUE',
                      help='A user column (repeatable); chooses the popularity segment of unknown users.')
  parser.add_argument('--ranking-weight', type=float, default=None,
                      help='Weight of the predicted rating in the final score, 0..1 (default: the documented one).')
  parser.add_argument('--tf-serving-url', default=None,
                      help='Call TF Serving REST at this URL instead of loading the models in process.')
  return parser


def main(argv: Optional[List[str]] = None) -> int:
  """Runs the CLI; returns the exit code (0 ok, 2 bad arguments or no models)."""
  args = _parser().parse_args(argv)
  environment.use_legacy_keras()
  # pylint: disable=g-import-not-at-top  (TensorFlow must not load before the Keras setting)
  from serving import models, recommender, tf_serving_backend
  loader = models.load_in_process
  if args.tf_serving_url:
    loader = tf_serving_backend.bundle_loader(args.tf_serving_url)
  registry = models.ModelRegistry(args.serving_dir, loader=loader)
  registry.refresh()
  weight = recommender.DEFAULT_RANKING_WEIGHT if args.ranking_weight is None else args.ranking_weight
  try:
    result = recommender.Recommender(registry, ranking_weight=weight).recommend(
        args.user_id, k=args.k, exclude_seen=not args.include_seen,
        user_features=parse_user_features(args.user_feature))
  except (ValueError, models.ModelsNotReadyError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  print(json.dumps(result.to_json_dict(), indent=2, ensure_ascii=False))
  return 0


if __name__ == '__main__':
  sys.exit(main())
