"""The flags both serving entry points share (serving dir, backend, ranking weight) and what they build.

Nothing here imports TensorFlow at import time: the entry points set the Keras environment first.
"""

import argparse
import threading
import urllib.parse
from typing import Any, Optional, Tuple


def add_backend_flags(parser: argparse.ArgumentParser) -> None:
  """Adds --serving-dir, --ranking-weight and --tf-serving-url to `parser`."""
  parser.add_argument('--serving-dir', required=True,
                      help='The pipeline serving directory holding retrieval/ and ranking/ versions.')
  parser.add_argument('--ranking-weight', type=ranking_weight, default=None,
                      help='Weight of the predicted rating in the final score, 0..1 (default: the documented one).')
  parser.add_argument('--tf-serving-url', type=tf_serving_url, default=None,
                      help='Call TF Serving REST at this URL (http://HOST:PORT) instead of loading the models in '
                           'process.')


def tf_serving_address(url: str) -> Optional[Tuple[str, int]]:
  """(host, port) of TF Serving's REST address `http://HOST[:PORT]` (port 80 when none is given), or None when
  `url` is not one.

  The client calls `/v1/models/...` at the server's root, so anything else the URL could hold is refused rather
  than dropped: another scheme (https included), a port outside 1..65535, a path other than '/', a query, a
  fragment, credentials, white space.
  """
  try:
    parsed = urllib.parse.urlsplit(url)
    port = parsed.port
  except ValueError:  # a port that is not a number or out of range, an unclosed IPv6 bracket
    return None
  if (parsed.scheme != 'http' or not parsed.hostname or port == 0 or parsed.path not in ('', '/')
      or parsed.query or parsed.fragment or parsed.username is not None or any(c.isspace() for c in url)):
    return None
  return parsed.hostname, 80 if port is None else port


def tf_serving_url(text: str) -> str:
  """--tf-serving-url's value: http://HOST[:PORT] (TF Serving's REST API; refused before any model loads)."""
  if tf_serving_address(text) is None:
    raise argparse.ArgumentTypeError(f'{text!r} is not http://HOST:PORT; pass TF Serving\'s REST address, e.g. '
                                     'http://127.0.0.1:8501, with no path, query or credentials (https is not '
                                     'supported: put TF Serving on a private network or behind a local proxy).')
  return text


def seconds_value(text: str) -> float:
  """A duration flag's text as a float (its range is the flag's to check).

  Raises:
    argparse.ArgumentTypeError: if `text` is not a number.
  """
  try:
    return float(text)
  except ValueError as e:
    raise argparse.ArgumentTypeError(f'{text!r} is not a number of seconds; pass e.g. 5.') from e


def positive_seconds(text: str) -> float:
  """A duration flag's value: a number of seconds above 0 and at most `threading.TIMEOUT_MAX` (about 292 years:
  `time.sleep` and `threading.Event.wait` raise OverflowError for a longer wait, and NaN or inf)."""
  seconds = seconds_value(text)
  if not 0.0 < seconds <= threading.TIMEOUT_MAX:  # refuses NaN and inf too
    raise argparse.ArgumentTypeError(f'{text} must be a number of seconds above 0 and at most '
                                     f'{threading.TIMEOUT_MAX:.0f} s, e.g. 5.')
  return seconds


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


def recommender_from_flags(args: argparse.Namespace, poll_interval_s: Optional[float] = None,
                           load: bool = True) -> Tuple[Any, Any]:
  """Builds the model registry (in process or TF Serving) and the Recommender over it.

  Args:
    args: the parsed flags of `add_backend_flags`.
    poll_interval_s: seconds between the registry's looks for new versions (None: its default).
    load: load the newest versions once now (else the caller calls `registry.refresh()`).

  Returns:
    (registry, recommender): a `serving.models.ModelRegistry` and a `serving.recommender.Recommender`.
  """
  # pylint: disable=g-import-not-at-top  (TensorFlow must not load before the Keras setting)
  from serving import models, recommender, tf_serving_backend
  loader = models.load_in_process
  if args.tf_serving_url:
    loader = tf_serving_backend.bundle_loader(args.tf_serving_url)
  registry = models.ModelRegistry(
      args.serving_dir, loader=loader,
      poll_interval_s=models.DEFAULT_POLL_INTERVAL_S if poll_interval_s is None else poll_interval_s)
  if load:
    registry.refresh()
  weight = recommender.DEFAULT_RANKING_WEIGHT if args.ranking_weight is None else args.ranking_weight
  return registry, recommender.Recommender(registry, ranking_weight=weight)
