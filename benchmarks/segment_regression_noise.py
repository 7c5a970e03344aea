"""How noisy the segment gate's regression check is, next to its margin check: two runs on the same eval examples.

  .venv/bin/python benchmarks/segment_regression_noise.py --run-dir CANDIDATE_OUTPUT_DIR \\
      --baseline-run-dir BASELINE_OUTPUT_DIR [--bootstrap-draws 2000] [--segment user_age_bucket=45-49 ...]

The segment gate (`components/segment_rules.py`) can discount a segment's margin over the overall RMSE by z
standard errors of the segment's RMSE (`--segment-margin-standard-errors`), but never discounts its regression
check (segment RMSE minus the last blessed model's on the same segment). This script measures why: it calls each
run's trained ranking model on the eval examples (`peer_segments.run_predictions`; both runs must be on the same
split), draws the eval users with replacement (a user's ratings stay together, as in `peer_segments.py`) and gives,
per segment, the spread over the draws of the candidate's segment RMSE and of the difference of the two models'
segment RMSEs. Both models are scored on the same drawn users, so the draw moves their RMSEs alike and the
difference spreads far less than either RMSE.

Without `--segment` it reports every user segment with at least the gate's `min_examples` eval ratings.
"""

import argparse
import sys
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

import benchmark_flags
import peer_segments
import run_outputs
from components import segment_rules
from pipeline import configs, environment
from schema import features


def paired_spread(candidate: peer_segments.EvalPredictions, baseline: peer_segments.EvalPredictions, column: str,
                  value: str, user_weights: np.ndarray) -> Dict:
  """The spread over draws of the candidate's segment RMSE and of candidate minus baseline segment RMSE.

  Args:
    candidate, baseline: two models' predictions on the same eval examples (same users and ratings, same order).
    column, value: the segment, e.g. `user_age_bucket`, '45-49'.
    user_weights: float `[num_draws, num_users]`, users in sorted id order (`np.unique` of the eval user ids).

  Returns:
    {'segment', 'examples', 'candidate_rmse', 'baseline_rmse' (on the eval split itself), 'rmse_spread' and
     'difference_spread' (standard deviations over the draws holding the segment, stars)}.

  Raises:
    ValueError: if the two hold different eval examples, or no eval example is in the segment.
  """
  if not (np.array_equal(candidate.user_ids, baseline.user_ids) and np.array_equal(candidate.ratings,
                                                                                     baseline.ratings)):
    raise ValueError('The two runs scored different eval examples; run both on the same split (--split, '
                     '--split-seed) and data.')
  sums = {name: peer_segments.user_error_sums(evaluation, column, value)
          for name, evaluation in (('candidate', candidate), ('baseline', baseline))}
  draws = {name: peer_segments.weighted_segment_rmse(user_weights, s) for name, s in sums.items()}
  kept = ~np.isnan(draws['candidate'])
  whole = np.ones((1, user_weights.shape[1]))
  return {'segment': f'{column}={value}', 'examples': int(sums['candidate']['segment_examples'].sum()),
          'candidate_rmse': float(peer_segments.weighted_segment_rmse(whole, sums['candidate'])[0]),
          'baseline_rmse': float(peer_segments.weighted_segment_rmse(whole, sums['baseline'])[0]),
          'rmse_spread': float(np.std(draws['candidate'][kept])),
          'difference_spread': float(np.std(draws['candidate'][kept] - draws['baseline'][kept]))}


def gated_user_segments(evaluation: peer_segments.EvalPredictions, min_examples: int) -> List[segment_rules.SegmentKey]:
  """The user segments (gender, occupation, age bucket) with at least `min_examples` eval examples, sorted."""
  found = []
  for column, values in evaluation.segments.items():
    if column not in features.USER_SEGMENT_COLUMNS:
      continue
    names, counts = np.unique(values[values != ''], return_counts=True)
    found.extend((column, str(v)) for v, n in zip(names, counts) if n >= min_examples)
  return sorted(found)


def format_table(rows: Sequence[Mapping]) -> str:
  """Markdown: per segment both RMSEs and the two spreads."""
  lines = ['| segment | eval ratings | candidate RMSE | baseline RMSE | spread of the RMSE | spread of the '
           'difference |', '|---|---|---|---|---|---|']
  for row in rows:
    lines.append(f'| {row["segment"]} | {row["examples"]} | {row["candidate_rmse"]:.4f} | '
                 f'{row["baseline_rmse"]:.4f} | {row["rmse_spread"]:.4f} | {row["difference_spread"]:.4f} |')
  return '\n'.join(lines)


def _segment_argument(text: str) -> segment_rules.SegmentKey:
  """`--segment COLUMN=VALUE` parsed (`peer_segments.segment_key`), a usage error naming the form otherwise."""
  try:
    return peer_segments.segment_key(text)
  except ValueError as e:
    raise argparse.ArgumentTypeError(str(e)) from e


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
  """Parses the command line; a bad flag exits with status 2 and a message naming it."""
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--run-dir', required=True, type=run_outputs.run_dir_argument,
                      help='The candidate: a local_runner.py --output-dir.')
  parser.add_argument('--baseline-run-dir', required=True, type=run_outputs.run_dir_argument,
                      help='The baseline: another local_runner.py --output-dir on the same split.')
  parser.add_argument('--bootstrap-draws', type=benchmark_flags.positive_int, default=2000, metavar='N')
  parser.add_argument('--seed', type=benchmark_flags.seed, default=0, help="The draws' numpy seed.")
  parser.add_argument('--segment', action=benchmark_flags.AppendDistinct, default=[], type=_segment_argument,
                      metavar='COLUMN=VALUE', help='A segment to report (repeatable); default: every gated user '
                      'segment.')
  return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Prints the spreads of the segments.

  Returns the exit code: 2 for a --segment without eval examples, or a run dir whose store is not an ML Metadata
  store or records no trained ranking model.
  """
  args = parse_args(argv)
  environment.use_legacy_keras()
  from inspection import store as store_lib  # pylint: disable=g-import-not-at-top
  try:
    candidate = peer_segments.run_predictions(args.run_dir)
    baseline = peer_segments.run_predictions(args.baseline_run_dir)
  except (ValueError, store_lib.StoreError) as e:  # a foreign store, or no trained ranking model recorded
    print(f'error: {e}', file=sys.stderr)
    return 2
  segments = args.segment or gated_user_segments(candidate, configs.SegmentGate().min_examples)
  num_users = np.unique(candidate.user_ids).size
  weights = np.random.default_rng(args.seed).multinomial(
      num_users, np.full(num_users, 1.0 / num_users), size=args.bootstrap_draws).astype(np.float64)
  try:
    rows = [paired_spread(candidate, baseline, column, value, weights) for column, value in segments]
  except ValueError as e:  # a --segment no eval example is in, or runs on different splits
    print(f'error: {e}', file=sys.stderr)
    return 2
  print(f'Spread over {args.bootstrap_draws} draws of the eval users (standard deviation, stars); candidate '
        f'{args.run_dir}, baseline {args.baseline_run_dir}:\n')
  print(format_table(rows))
  return 0


if __name__ == '__main__':
  sys.exit(main())
