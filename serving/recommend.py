"""CLI: prints one user's recommendations from the newest pushed models as JSON.

  python -m serving.recommend --serving-dir OUTPUT_DIR/serving --user-id 42 --k 10 \
      [--include-seen] [--user-feature user_gender=F ...] [--tf-serving-url http://127.0.0.1:8501]

With a retrieval model but no ranking model pushed (degraded mode), it still answers, in retrieval order
(`"ranking": null` in `model_versions`, items with `"source": "retrieval_only"`), and says so on stderr.
"""

import argparse
import json
import sys
from typing import Dict, List, Optional, Sequence

from ingestion import interactions
from pipeline import environment
from serving import backend_flags


def parse_user_features(pairs: Sequence[str]) -> Dict[str, str]:
  """`['user_gender=F', 'user_age=23']` -> `{'user_gender': 'F', 'user_age': '23'}` (split at the first '=').

  Raises:
    ValueError: for an entry without '=' or with nothing before it, or a column given more than once (the HTTP
      service refuses a repeated parameter too).
  """
  values: Dict[str, List[str]] = {}
  for pair in pairs:
    column, sep, value = pair.partition('=')
    if not sep or not column:
      raise ValueError(f'--user-feature {pair!r} must look like COLUMN=VALUE, e.g. user_gender=F.')
    values.setdefault(column, []).append(value)
  for column, given in values.items():
    if len(given) > 1:
      raise ValueError(f'--user-feature {column} is given more than once ({", ".join(map(repr, given))}); pass '
                       'each column once.')
  return {column: given[0] for column, given in values.items()}


def _k_argument(text: str) -> int:
  """--k read as the HTTP service reads `k` (an ASCII integer: `1_0` is refused, as Python's int() would take it)."""
  k = interactions.parse_int(text)
  if k is None:
    raise argparse.ArgumentTypeError(f'{text!r} is not an integer; pass e.g. --k 10.')
  return k


_RUN_THE_PIPELINE = ('run the pipeline first (bin/run-pipeline ... --output-dir OUT writes OUT/serving) or pass the '
                     'right --serving-dir')


def _serving_dir_problem(serving_dir: str) -> Optional[str]:
  """Why `serving_dir` has nothing to recommend with (it does not exist, is not a directory, or holds no complete
  retrieval version), or None when it holds a retrieval version (or cannot be listed now): the registry's
  message then says why it is not served."""
  # pylint: disable=g-import-not-at-top  (TensorFlow must not load before the Keras setting)
  import tensorflow as tf
  from serving import models
  try:
    if models.newest_versions(serving_dir) is not None:
      return None
  except (tf.errors.OpError, OSError):
    return None
  if not tf.io.gfile.exists(serving_dir):
    return f'--serving-dir {serving_dir} does not exist; {_RUN_THE_PIPELINE}.'
  if not tf.io.gfile.isdir(serving_dir):
    return f'--serving-dir {serving_dir} is not a directory; {_RUN_THE_PIPELINE}.'
  return (f'--serving-dir {serving_dir} holds no complete version of {models.RETRIEVAL_MODEL!r} (and of '
          f'{models.RANKING_MODEL!r} for the two-stage order) to recommend with; {_RUN_THE_PIPELINE}.')


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  backend_flags.add_backend_flags(parser)
  parser.add_argument('--user-id', required=True,
                      help='The raw user id (spaces around it are dropped, as the HTTP service drops them).')
  parser.add_argument('--k', type=_k_argument, default=10, help='Number of items (default 10).')
  parser.add_argument('--include-seen', action='store_true',
                      help="Keep items of the user's training interactions (excluded by default).")
  parser.add_argument('--user-feature', action='append', default=[], metavar='COLUMN=VALUE',
                      help="A user column (repeatable): replaces a known user's profile value in the models' "
                           'requests; chooses the popularity segment of an unknown user.')
  return parser


def main(argv: Optional[List[str]] = None) -> int:
  """Runs the CLI; returns the exit code (0 ok, 2 bad arguments, no models or an unreadable --serving-dir, 1 the
  backend failed to answer); any other error is raised, with its traceback (a fault, not a bad argument)."""
  args = _parser().parse_args(argv)
  try:
    user_features = parse_user_features(args.user_feature)
  except ValueError as e:  # before any model loads
    print(f'error: {e}', file=sys.stderr)
    return 2
  user_id = args.user_id.strip()
  if not user_id:
    print(f'error: --user-id {args.user_id!r} is empty; pass the raw user id, e.g. --user-id 42.', file=sys.stderr)
    return 2
  environment.use_legacy_keras()
  # pylint: disable=g-import-not-at-top  (TensorFlow must not load before the Keras setting)
  import tensorflow as tf
  from serving import models, recommender
  from serving import requests as requests_lib
  if not 1 <= args.k <= recommender.DEFAULT_MAX_K:  # before any model loads
    print(f'error: --k {args.k} is outside 1..{recommender.DEFAULT_MAX_K}; pass e.g. --k 10.', file=sys.stderr)
    return 2
  try:
    _, two_stage = backend_flags.recommender_from_flags(args)
  except (tf.errors.OpError, OSError) as e:  # listing the serving dir failed (a gs:// dir it may not read, say)
    print(f'error: cannot read --serving-dir {args.serving_dir}: {type(e).__name__}: {e}; check the path and '
          'that this account may list and read it.', file=sys.stderr)
    return 2
  try:
    result = two_stage.recommend(
        user_id, k=args.k, exclude_seen=not args.include_seen, user_features=user_features)
  except requests_lib.InvalidRequestError as e:  # other errors are faults: traceback
    print(f'error: {e}', file=sys.stderr)
    return 2
  except models.ModelsNotReadyError as e:
    # The registry's wording ('No model loaded yet ...') is the HTTP service's, which waits for pushes; a missing,
    # misnamed or empty --serving-dir gets the one-shot CLI's own message instead.
    print(f'error: {_serving_dir_problem(args.serving_dir) or e}', file=sys.stderr)
    return 2
  except models.BackendError as e:  # TF Serving unreachable or answering an error during the call
    print(f'error: {e}', file=sys.stderr)
    return 1
  if not result.versions.has_ranking:
    print(f'note: degraded mode: {args.serving_dir} has no complete {models.RANKING_MODEL!r} version, so the '
          'items are in retrieval order (source retrieval_only).', file=sys.stderr)
  print(json.dumps(result.to_json_dict(), indent=2, ensure_ascii=False))
  return 0


if __name__ == '__main__':
  sys.exit(main())
