"""Peers' per-segment RMSE on the canonical split: is the worst-segment target met by anyone?

  .venv/bin/python benchmarks/peer_segments.py --data-dir /work/shared/data/ml-100k \\
      [--run-dir OUTPUT_DIR] [--svd-seeds 0 1 2] [--split-seed 42] [--bootstrap-draws 2000] \\
      [--json peer_segments.json]

Trains the Surprise peers of `/work/shared/bench/seed_baseline.py` (BaselineOnly and SVD, default parameters,
SVD seeded as there) on the train rows of the canonical split (`ingestion/splits.py`, MovieLens read by
`ingestion/movielens.py`, items keyed by `item_id` as in the pipeline) and slices their test errors exactly as
the segment gate slices ours: user gender, occupation and age bucket (`serving.assets.user_segments`, the
pure-Python twin of Transform's age buckets) and the item popularity bucket on TRAIN counts (`popularity_buckets`
below, Transform's `popularity_bucket` in numpy). The rule and its defaults (min examples, margin) are the
segment gate's (`components/segment_rules.py`, `pipeline.configs.SegmentGate`).

Per system it reports the overall RMSE, every segment (margin over overall, gated when large enough), the worst
user segment, and its concentration: the user holding the largest share of that segment's squared error, the
share, and the segment's RMSE without that user. `--run-dir` adds this project's model of a pipeline run,
measured by calling its trained ranking SavedModel on the run's eval examples. `--svd-seeds` adds SVD with other
seeds, to show how much of a figure is the seed.

How much of a margin is the draw of the data: `--split-seed S` trains and slices on the random 80/20 split
with permutation seed S instead (42 is the canonical split; a `--run-dir` run must be on the same split:
`local_runner.py --split random --split-seed S`), and `--bootstrap-draws N` resamples the eval users with
replacement N times (a user's eval ratings stay together, since a segment's error is largely a few users') and
gives each system's worst user segment's margin as an interval over the draws, with the share of draws within
the issue's target (`TARGET_WORST_MARGIN`).

The bench script keys items by title and trains on the rows in permuted order, so its overall RMSE differs
slightly from the one here (BaselineOnly 0.9513 there, 0.9514 here; SVD's depends on seed and row order).

scikit-surprise is in the project's dev dependency group; without it the CLI exits with status 2.
"""

import argparse
import dataclasses
import importlib.util
import math
import os
import sys
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

import benchmark_flags
import run_outputs
from components import segment_rules
from ingestion import interactions as interactions_lib
from ingestion import movielens, splits
from pipeline import configs, environment
from schema import features
from trainer.common import run_files

# The Surprise peers, named as the bench script prints them (quality_report.py matches the names).
BASELINE_ONLY_PEER = 'surprise_baselineonly'
SVD_PEER = 'surprise_svd'
PEERS: Tuple[str, ...] = (BASELINE_ONLY_PEER, SVD_PEER)
# SVD's seed in /work/shared/bench/seed_baseline.py.
SVD_RANDOM_STATE = 42
# Eval examples per call of the trained ranking model (--run-dir).
_PREDICT_BATCH_SIZE = 4096
# Issue 7's target, stars: the worst gated user segment's RMSE at most this much above the overall RMSE.
TARGET_WORST_MARGIN = 0.05
# The central share of the bootstrap draws an interval spans (5th to 95th percentile).
INTERVAL_LEVEL = 0.9


@dataclasses.dataclass(frozen=True)
class EvalPredictions:
  """One system's predictions on the evaluation examples, with what slices them.

  Attributes:
    user_ids: the example's user, str `[num_examples]`.
    ratings: true stars, float `[num_examples]`.
    predictions: predicted stars, float `[num_examples]`.
    segments: slicing column (one of `features.SEGMENT_COLUMNS`) -> each example's value, str
      `[num_examples]` ('' when the example has none: it is then in no segment of that column).
  """
  user_ids: np.ndarray
  ratings: np.ndarray
  predictions: np.ndarray
  segments: Mapping[str, np.ndarray]


def surprise_installed() -> bool:
  """Whether scikit-surprise can be imported."""
  return importlib.util.find_spec('surprise') is not None


def popularity_buckets(train_item_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
  """Each item's popularity bucket on the training interactions, as `transform.preprocessing.popularity_bucket`.

  An item is 'head' while the items with strictly more training interactions hold less than the first share
  (`features.POPULARITY_BUCKET_SHARES`) of them, 'torso' below the second, 'tail' otherwise, 'unseen' without
  training interactions. The share is computed in float32, as Transform does. E.g. train counts i3: 3, i2: 2,
  i1: 1: more popular than i3 hold 0/6, than i2 3/6, than i1 5/6 -> 'head', 'torso', 'tail'.

  Args:
    train_item_ids: the item of every training interaction, `[num_train]`.
    item_ids: the items to label, `[num_items]`.

  Returns:
    str `[num_items]`, values of `features.POPULARITY_BUCKET_LABELS` or `features.UNSEEN_ITEM_BUCKET`.
  """
  items, counts = np.unique(np.asarray(train_item_ids, dtype=str), return_counts=True)
  count_of = dict(zip(items.tolist(), counts.tolist()))
  total = int(counts.sum())
  labels = np.asarray(features.POPULARITY_BUCKET_LABELS + (features.UNSEEN_ITEM_BUCKET,), dtype=object)
  # Interactions of the items strictly more popular than an item with each count.
  more_popular = {c: int(counts[counts > c].sum()) for c in set(count_of.values())}
  boundaries = np.asarray(features.POPULARITY_BUCKET_SHARES, dtype=np.float32)
  index = np.full(len(item_ids), len(features.POPULARITY_BUCKET_LABELS))
  # Keyed as text on both sides, as the training ids are: an int id 7 is item '7', not unseen.
  for position, item in enumerate(np.asarray(item_ids, dtype=str).tolist()):
    if item in count_of:
      share = np.float32(more_popular[count_of[item]]) / np.float32(max(total, 1))
      index[position] = np.searchsorted(boundaries, share, side='right')
  return labels[index].astype(str)


def canonical_split_segments(interactions: interactions_lib.Interactions,
                             split: splits.SplitIndices) -> Dict[str, np.ndarray]:
  """The segment values of the eval rows, as the pipeline defines them.

  Args:
    interactions: all rows (e.g. `movielens.read_movielens`).
    split: the train/eval row indices.

  Returns:
    column -> str `[num_eval]` for every column of `features.SEGMENT_COLUMNS` the data can give.
  """
  from serving import assets  # pylint: disable=g-import-not-at-top  (imports TensorFlow)
  user_columns = [c for c in interactions.column_names if features.is_user_feature(c)]
  rows = [assets.user_segments({c: interactions.column(c)[i] for c in user_columns}) for i in split.eval]
  segments = {column: np.asarray([row.get(column, '') for row in rows], dtype=str)
              for column in features.USER_SEGMENT_COLUMNS if any(column in row for row in rows)}
  item_ids = interactions.column(features.ITEM_ID)
  segments[features.ITEM_POPULARITY_BUCKET] = popularity_buckets(
      [item_ids[i] for i in split.train], [item_ids[i] for i in split.eval])
  return segments


def peer_predictions(interactions: interactions_lib.Interactions, split: splits.SplitIndices,
                     svd_seeds: Sequence[int] = ()) -> Dict[str, np.ndarray]:
  """Trains each peer of `PEERS` (and SVD with each of `svd_seeds`) on the train rows, predicts the eval rows.

  Returns:
    peer name (`PEERS`, then `surprise_svd_seed<seed>`) -> predicted stars, float `[num_eval]`, in eval row
    order.

  Raises:
    ImportError: if scikit-surprise is not installed (install the project's dev dependency group).
  """
  import pandas as pd  # pylint: disable=g-import-not-at-top
  import surprise  # pylint: disable=g-import-not-at-top
  frame = pd.DataFrame({'user': interactions.column(features.USER_ID),
                        'item': interactions.column(features.ITEM_ID),
                        'rating': interactions.column(features.RATING)})
  reader = surprise.Reader(rating_scale=interactions_lib.DEFAULT_RATING_SCALE)
  trainset = surprise.Dataset.load_from_df(frame.iloc[split.train], reader).build_full_trainset()
  testset = list(frame.iloc[split.eval].itertuples(index=False, name=None))
  algorithms = {BASELINE_ONLY_PEER: surprise.BaselineOnly(verbose=False),
                SVD_PEER: surprise.SVD(random_state=SVD_RANDOM_STATE)}
  algorithms.update({f'{SVD_PEER}_seed{seed}': surprise.SVD(random_state=seed) for seed in svd_seeds})
  predictions = {}
  for name, algorithm in algorithms.items():
    algorithm.fit(trainset)
    predictions[name] = np.asarray([p.est for p in algorithm.test(testset)], dtype=np.float64)
  return predictions


def segment_metrics(evaluation: EvalPredictions) -> Tuple[float, List[segment_rules.SegmentMetrics]]:
  """The overall RMSE and the RMSE of every segment (one value of one slicing column), stars."""
  squared_errors = (evaluation.predictions - evaluation.ratings) ** 2
  segments = []
  for column, values in sorted(evaluation.segments.items()):
    for value in sorted(set(values.tolist()) - {''}):
      in_segment = values == value
      segments.append(segment_rules.SegmentMetrics(
          column=column, value=value, rmse=math.sqrt(float(squared_errors[in_segment].mean())),
          example_count=int(in_segment.sum())))
  return math.sqrt(float(squared_errors.mean())), segments


def worst_user_segment(segment_rows: Sequence[Mapping]) -> Optional[Mapping]:
  """The gated user segment with the largest margin, from a segment table in its JSON form, or None.

  A gated segment whose margin is not a finite number — None (null: how a segment gate's report, strict JSON,
  holds a NaN or infinite margin), NaN or infinite (in a `segment_report` not yet written) — is a segment the
  model fails (its RMSE is not finite, and the rule refuses it): it is the worst, before every finite margin, in
  the segment gate's own order (`segment_rules.worst_first`: NaN or None first, then the largest number; ties by
  column and value).

  Args:
    segment_rows: `segment_rules.verdict_to_json(...)['segments']` (a segment gate's or `segment_report`'s).

  Returns:
    E.g. the row with margin None of rows with margins [0.03, None]; None when no user segment is gated.
  """
  rows = [r for r in segment_rows if r['gated'] and r['column'] in features.USER_SEGMENT_COLUMNS]
  return min(rows, key=lambda r: segment_rules.worst_first(_margin_or_nan(r['margin']), (r['column'], r['value'])),
             default=None)


def _margin_or_nan(margin: Optional[float]) -> float:
  """A margin of a segment table in JSON form as a float: NaN for None (null, a NaN or infinite margin)."""
  return math.nan if margin is None else float(margin)


def _shown(value: Optional[float], spec: str = '.4f') -> str:
  """A figure of a segment table formatted with `spec`; 'n/a' for None (null in a JSON report: not finite)."""
  return 'n/a' if value is None else format(value, spec)


def segment_mask(evaluation: EvalPredictions, column: str, value: str) -> np.ndarray:
  """bool `[num_eval_examples]`: the examples in segment `column`=`value`.

  Raises:
    ValueError: if no example is in the segment.
  """
  in_segment = evaluation.segments[column] == value
  if not in_segment.any():
    raise ValueError(f'No evaluation example has {column}={value!r}; pick a segment of the table.')
  return in_segment


def concentration(evaluation: EvalPredictions, column: str, value: str) -> Dict:
  """How much of a segment's squared error one user holds: the user with the largest share.

  Args:
    evaluation: the system's predictions.
    column, value: the segment, e.g. `user_occupation`, 'healthcare'.

  Returns:
    {'segment', 'segment_examples', 'segment_rmse', 'user_id', 'user_examples', 'user_rmse',
     'share_of_squared_error' (in [0, 1]), 'rmse_without_user' (None when the segment has one user)}.

  Raises:
    ValueError: if no example is in the segment.
  """
  in_segment = segment_mask(evaluation, column, value)
  squared_errors = ((evaluation.predictions - evaluation.ratings) ** 2)[in_segment]
  users = evaluation.user_ids[in_segment]
  user_values, user_index = np.unique(users, return_inverse=True)
  user_sums = np.bincount(user_index, weights=squared_errors)
  top = int(np.argmax(user_sums))
  of_user = user_index == top
  rest = squared_errors[~of_user]
  return {
      'segment': f'{column}={value}', 'segment_examples': int(in_segment.sum()),
      'segment_rmse': math.sqrt(float(squared_errors.mean())), 'user_id': str(user_values[top]),
      'user_examples': int(of_user.sum()), 'user_rmse': math.sqrt(float(squared_errors[of_user].mean())),
      'share_of_squared_error': float(user_sums[top] / squared_errors.sum()),
      'rmse_without_user': math.sqrt(float(rest.mean())) if rest.size else None,
  }


def segment_report(evaluation: EvalPredictions, gate: configs.SegmentGate = configs.SegmentGate(),
                   concentration_segments: Sequence[segment_rules.SegmentKey] = ()) -> Dict:
  """The segment gate's table for one system, its worst user segment and that segment's concentration.

  Args:
    evaluation: the system's predictions.
    gate: min examples and margin (default: the pipeline's segment gate defaults); no baseline is compared.
    concentration_segments: (column, value) of further segments whose concentration to report, e.g. another
      system's worst user segment.

  Returns:
    `segment_rules.verdict_to_json` (overall_rmse, segments, worst_segment, passed, reasons) plus
    'worst_user_segment' (a row or None), 'concentration' (see `concentration`, None without a worst user
    segment), 'segment_concentrations' ({'column=value': concentration} of `concentration_segments`) and
    'thresholds' ({'min_examples', 'max_margin'}).
  """
  overall_rmse, segments = segment_metrics(evaluation)
  verdict = segment_rules.judge_segments(overall_rmse, segments, None, min_examples=gate.min_examples,
                                         max_margin=gate.max_margin, max_regression=gate.max_regression)
  report = segment_rules.verdict_to_json(verdict, overall_rmse)
  worst = worst_user_segment(report['segments'])
  report.update({
      'worst_user_segment': worst,
      'concentration': concentration(evaluation, worst['column'], worst['value']) if worst else None,
      'segment_concentrations': {f'{column}={value}': concentration(evaluation, column, value)
                                 for column, value in concentration_segments},
      'thresholds': {'min_examples': gate.min_examples, 'max_margin': gate.max_margin},
  })
  return report


def split_of_seed(seed: int) -> splits.SplitSpec:
  """The 80/20 random split with permutation seed `seed`: the canonical split for `splits.CANONICAL_SEED`."""
  if seed == splits.CANONICAL_SEED:
    return splits.SplitSpec('seed')
  return splits.SplitSpec('random', splits.CANONICAL_EVAL_FRACTION, seed)


def peer_evaluations(data_dir: str, svd_seeds: Sequence[int] = (),
                     split_spec: splits.SplitSpec = splits.SplitSpec('seed')) -> Dict[str, EvalPredictions]:
  """Trains the peers on a split of the MovieLens 100K folder `data_dir` and predicts its eval rows.

  Args:
    data_dir: the ml-100k folder.
    svd_seeds: also SVD with these seeds (see `peer_predictions`).
    split_spec: the split (default: the canonical one).

  Returns:
    peer name -> its predictions on the eval rows, with their segments.

  Raises:
    movielens.MovieLensError: if `data_dir` is not a MovieLens 100K folder.
    ImportError: if scikit-surprise is not installed.
  """
  interactions = movielens.read_movielens(data_dir)
  split = splits.split_interactions(interactions.num_rows, split_spec)
  segments = canonical_split_segments(interactions, split)
  user_ids = np.asarray(interactions.column(features.USER_ID), dtype=str)[split.eval]
  ratings = np.asarray(interactions.column(features.RATING), dtype=np.float64)[split.eval]
  return {name: EvalPredictions(user_ids, ratings, predicted, segments)
          for name, predicted in peer_predictions(interactions, split, svd_seeds).items()}


def peer_segment_reports(data_dir: str, gate: configs.SegmentGate = configs.SegmentGate(),
                         svd_seeds: Sequence[int] = (),
                         concentration_segments: Sequence[segment_rules.SegmentKey] = ()) -> Dict[str, Dict]:
  """Trains the peers on the canonical split of the MovieLens 100K folder `data_dir` and reports their segments.

  Args:
    data_dir: the ml-100k folder.
    gate: min examples and margin of the segment table.
    svd_seeds: also SVD with these seeds (see `peer_predictions`).
    concentration_segments: see `segment_report`.

  Returns:
    peer name -> `segment_report`.

  Raises:
    movielens.MovieLensError: if `data_dir` is not a MovieLens 100K folder.
    ImportError: if scikit-surprise is not installed.
  """
  return {name: segment_report(evaluation, gate, concentration_segments)
          for name, evaluation in peer_evaluations(data_dir, svd_seeds).items()}


def check_same_eval_rows(ours: EvalPredictions, peer: EvalPredictions, split_seed: int) -> None:
  """Raises ValueError unless both systems' eval examples are the same (user, rating) rows, in any order.

  A pipeline run's eval examples are in its own order, so the check compares the sorted (user, rating) pairs.
  """
  def pairs(evaluation: EvalPredictions) -> List[Tuple[str, float]]:
    return sorted(zip(evaluation.user_ids.tolist(), evaluation.ratings.tolist()))
  if pairs(ours) != pairs(peer):
    raise ValueError(
        f'The run\'s eval examples ({ours.ratings.size}) are not the eval rows of the split with seed {split_seed} '
        f'({peer.ratings.size}): pass the --split-seed the run was made with (local_runner.py --split random '
        '--split-seed S; the canonical --split seed is 42).')


def user_error_sums(evaluation: EvalPredictions, column: str, value: str) -> Dict[str, np.ndarray]:
  """Each eval user's squared error and example count, overall and in one segment.

  Args:
    evaluation: the system's predictions.
    column, value: the segment, e.g. `user_age_bucket`, '45-49'.

  Returns:
    {'squared_error', 'examples', 'segment_squared_error', 'segment_examples'}: float `[num_users]` each, users
    in sorted id order (squared stars; example counts).

  Raises:
    ValueError: if no example is in the segment.
  """
  _, user_index = np.unique(evaluation.user_ids, return_inverse=True)
  squared_errors = (evaluation.predictions - evaluation.ratings) ** 2
  in_segment = segment_mask(evaluation, column, value).astype(np.float64)
  return {'squared_error': np.bincount(user_index, weights=squared_errors),
          'examples': np.bincount(user_index).astype(np.float64),
          'segment_squared_error': np.bincount(user_index, weights=squared_errors * in_segment),
          'segment_examples': np.bincount(user_index, weights=in_segment)}


def weighted_segment_rmse(user_weights: np.ndarray, sums: Mapping[str, np.ndarray]) -> np.ndarray:
  """The segment's RMSE when each user's eval ratings count `user_weights` times.

  Args:
    user_weights: float `[num_draws, num_users]` (a bootstrap draw: how often each user was drawn).
    sums: `user_error_sums`.

  Returns:
    float `[num_draws]`, stars; NaN for a draw holding none of the segment's examples.
  """
  segment_examples = user_weights @ sums['segment_examples']
  with np.errstate(invalid='ignore', divide='ignore'):
    segment = np.sqrt(user_weights @ sums['segment_squared_error'] / segment_examples)
  return np.where(segment_examples > 0, segment, np.nan)


def weighted_margins(user_weights: np.ndarray, sums: Mapping[str, np.ndarray]) -> np.ndarray:
  """The segment's RMSE minus the overall RMSE when each user's eval ratings count `user_weights` times.

  Args:
    user_weights: float `[num_draws, num_users]` (a bootstrap draw: how often each user was drawn).
    sums: `user_error_sums`.

  Returns:
    float `[num_draws]`, stars; NaN for a draw holding none of the segment's examples.
  """
  overall = np.sqrt(user_weights @ sums['squared_error'] / (user_weights @ sums['examples']))
  return weighted_segment_rmse(user_weights, sums) - overall


def margin_interval(evaluation: EvalPredictions, column: str, value: str, draws: int, seed: int = 0,
                    target_margin: float = TARGET_WORST_MARGIN, level: float = INTERVAL_LEVEL) -> Dict:
  """A segment's margin over the overall RMSE, and its spread when the eval users are drawn again.

  Each of `draws` bootstrap draws takes as many users as the eval split has, with replacement, every drawn user
  with all his eval ratings (his errors are not independent of each other), and recomputes the margin.

  Args:
    evaluation: the system's predictions.
    column, value: the segment.
    draws: number of bootstrap draws (>= 1).
    seed: the draws' numpy seed.
    target_margin: the share of draws with a margin at most this is reported, stars.
    level: the interval spans this central share of the draws' margins.

  Returns:
    {'segment', 'margin' (the eval split's own), 'low', 'high' (the interval's ends), 'level', 'draws' (those
     holding the segment), 'target_margin', 'share_within_target' (in [0, 1])}.

  Raises:
    ValueError: if `draws` < 1, no eval example is in the segment or no draw holds one.
  """
  if draws < 1:
    raise ValueError(f'draws={draws} must be at least 1.')
  sums = user_error_sums(evaluation, column, value)
  num_users = sums['examples'].size
  weights = np.random.default_rng(seed).multinomial(num_users, np.full(num_users, 1.0 / num_users), size=draws)
  margins = weighted_margins(weights.astype(np.float64), sums)
  margins = margins[~np.isnan(margins)]
  if not margins.size:
    raise ValueError(f'None of the {draws} draws of the eval users holds an example of {column}={value!r}; draw more '
                     '(--bootstrap-draws).')
  low, high = np.quantile(margins, [(1 - level) / 2, (1 + level) / 2])
  return {'segment': f'{column}={value}', 'margin': float(weighted_margins(np.ones((1, num_users)), sums)[0]),
          'low': float(low), 'high': float(high), 'level': level, 'draws': int(margins.size),
          'target_margin': target_margin, 'share_within_target': float(np.mean(margins <= target_margin))}


def format_intervals(intervals: Mapping[str, Mapping]) -> str:
  """Markdown: per system its worst user segment's margin, the bootstrap interval and the share within target.

  Args:
    intervals: system name -> `margin_interval`.
  """
  lines = ['| system | worst user segment | margin | interval | draws within target |', '|---|---|---|---|---|']
  for name, found in intervals.items():
    lines.append(f'| {name} | {found["segment"]} | {found["margin"]:+.4f} | {found["low"]:+.4f} … '
                 f'{found["high"]:+.4f} ({100 * found["level"]:.0f} %) | '
                 f'{100 * found["share_within_target"]:.1f} % ≤ {found["target_margin"]} of {found["draws"]} |')
  return '\n'.join(lines)


def run_predictions(output_dir: str) -> EvalPredictions:
  """This project's model of the latest pipeline run in `output_dir` on that run's eval examples.

  Calls the trained ranking model's `serving_default` on the prepared eval examples (what the Evaluator
  read); the derived segment columns come from its `transform_features` signature, so they are the
  Evaluator's slices; the raw ones (gender, occupation) are parsed from the examples.

  Raises:
    ValueError: if the run's store records no trained ranking model.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfx.utils import path_utils  # pylint: disable=g-import-not-at-top
  from ingestion import examples as examples_lib, prepare  # pylint: disable=g-import-not-at-top
  from pipeline import run_summary  # pylint: disable=g-import-not-at-top
  from trainer.ranking import export  # pylint: disable=g-import-not-at-top
  summary = run_summary.latest_run(run_summary.open_store(os.path.join(output_dir, configs.METADATA_FILE)),
                                   configs.PIPELINE_NAME)
  trained = summary.output_artifacts.get(configs.RANKING_TRAINER_ID, {}).get('model') if summary else None
  if not trained:
    raise ValueError(f'No trained ranking model is recorded under {output_dir}; run local_runner.py there first.')
  model = tf.saved_model.load(path_utils.serving_model_path(trained[0].uri))
  derived = set(model.signatures[export.TRANSFORM_SIGNATURE].structured_outputs) & set(features.SEGMENT_COLUMNS)
  spec = {features.USER_ID: tf.io.FixedLenFeature([], tf.string),
          features.RATING: tf.io.FixedLenFeature([], tf.float32)}
  spec.update({c: tf.io.FixedLenFeature([], tf.string, default_value='')
               for c in features.SEGMENT_COLUMNS if c not in derived})
  path = examples_lib.example_path(os.path.join(output_dir, configs.PREPARED_DATA_SUBDIR, prepare.EXAMPLES_DIR_NAME),
                                   splits.EVAL_SPLIT)
  batches: Dict[str, List[np.ndarray]] = {}
  for batch in tf.data.TFRecordDataset(path, compression_type=examples_lib.TFRECORD_COMPRESSION).batch(
      _PREDICT_BATCH_SIZE):
    columns = {k: v.numpy() for k, v in tf.io.parse_example(batch, spec).items()}
    transformed = model.signatures[export.TRANSFORM_SIGNATURE](examples=batch)
    columns.update({c: transformed[c].numpy() for c in derived})
    columns['predictions'] = model.signatures[export.SERVING_SIGNATURE](
        examples=batch)[export.PREDICTIONS_OUTPUT].numpy().reshape([-1])
    for key, values in columns.items():
      batches.setdefault(key, []).append(values)
  joined = {k: np.concatenate(v) for k, v in batches.items()}
  text = {k: np.char.decode(v.astype(bytes), 'utf-8') for k, v in joined.items() if v.dtype == object}
  return EvalPredictions(user_ids=text[features.USER_ID], ratings=joined[features.RATING].astype(np.float64),
                         predictions=joined['predictions'].astype(np.float64),
                         segments={c: text[c] for c in features.SEGMENT_COLUMNS if c in text})


def format_summary(reports: Mapping[str, Mapping], target_margin: Optional[float] = None) -> str:
  """Markdown: per system its overall RMSE and worst user segment, then the concentration sentences.

  Args:
    reports: system name -> a segment table in JSON form with 'overall_rmse' and 'segments' (a `segment_report`
      or a segment gate's report) and optionally 'concentration'.
    target_margin: when given, a column says whether the worst user segment is within it of overall (stars).
  """
  target_header = f' within {target_margin} |' if target_margin is not None else ''
  lines = [f'| system | overall RMSE | worst user segment | eval examples | RMSE | margin |{target_header}',
           '|---|---|---|---|---|---|' + ('---|' if target_margin is not None else '')]
  sentences = []
  for name, report in reports.items():
    worst = worst_user_segment(report['segments'])
    if worst is None:
      lines.append(f'| {name} | {_shown(report["overall_rmse"])} | none gated | | | |' +
                   (' |' if target_margin is not None else ''))
      continue
    met = ''
    if target_margin is not None:
      # A margin that is not a finite number (None in a JSON report, NaN) is within no target: the segment fails.
      within = worst['margin'] is not None and worst['margin'] <= target_margin
      met = f' {"yes" if within else "no"} |'
    lines.append(f'| {name} | {_shown(report["overall_rmse"])} | {worst["column"]}={worst["value"]} | '
                 f'{worst["example_count"]} | {_shown(worst["rmse"])} | {_shown(worst["margin"], "+.4f")} |{met}')
    if report.get('concentration'):
      sentences.append(f'- {name}: {concentration_sentence(report["concentration"])}')
  if sentences:
    lines += ['', 'Concentration: the user holding the largest share of the worst user segment\'s squared error.',
              '', *sentences]
  return '\n'.join(lines)


def concentration_sentence(found: Mapping) -> str:
  """One sentence of a `concentration` result."""
  without = found['rmse_without_user']
  return (f'`{found["segment"]}` ({found["segment_examples"]} eval ratings, RMSE {found["segment_rmse"]:.4f}): '
          f'user {found["user_id"]} has {found["user_examples"]} of them and '
          f'{100 * found["share_of_squared_error"]:.1f} % of the squared error (RMSE {found["user_rmse"]:.4f} on '
          f'them); without that user the segment\'s RMSE is '
          + ('— (the only user)' if without is None else f'{without:.4f}') + '.')


def format_concentrations(reports: Mapping[str, Mapping], segment: str) -> List[str]:
  """Markdown list: each system's concentration on `segment` ('column=value'), from 'segment_concentrations'."""
  return [f'- {name}: {concentration_sentence(report["segment_concentrations"][segment])}'
          for name, report in reports.items() if segment in report.get('segment_concentrations', {})]


def segment_key(text: str) -> segment_rules.SegmentKey:
  """Parses 'column=value' (e.g. 'user_occupation=healthcare') into (column, value).

  Raises:
    ValueError: if `text` has no '=' or names a column that is not a slicing column.
  """
  column, separator, value = text.partition('=')
  if not separator or column not in features.SEGMENT_COLUMNS:
    raise ValueError(f'{text!r} is not a segment: write COLUMN=VALUE with COLUMN one of '
                     f'{", ".join(features.SEGMENT_COLUMNS)}, e.g. {features.USER_OCCUPATION}=healthcare.')
  return column, value


def format_segment_table(reports: Mapping[str, Mapping]) -> str:
  """Markdown: every segment gated for the first system, one RMSE/margin column pair per system.

  Rows are ordered by the first system's margin, worst first (systems share the eval examples, so they share
  the segments and their sizes).
  """
  names = list(reports)
  by_system = {n: {(r['column'], r['value']): r for r in reports[n]['segments']} for n in names}
  header = ''.join(f' {n} RMSE | margin |' for n in names)
  lines = [f'| segment | eval examples |{header}', '|---|---|' + '---|---|' * len(names)]
  for row in reports[names[0]]['segments'] if names else []:
    if not row['gated']:
      continue
    cells = ''
    for name in names:
      other = by_system[name].get((row['column'], row['value']))
      cells += f' {_shown(other["rmse"])} | {_shown(other["margin"], "+.4f")} |' if other else ' — | — |'
    lines.append(f'| {row["column"]}={row["value"]} | {row["example_count"]} |{cells}')
  return '\n'.join(lines)


def _segment_argument(text: str) -> segment_rules.SegmentKey:
  try:
    return segment_key(text)
  except ValueError as e:
    raise argparse.ArgumentTypeError(str(e)) from e


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
  """Parses the command line."""
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--data-dir', required=True, type=movielens.folder_argument,
                      help='Local MovieLens 100K folder (u.data, u.item, u.user, u.genre).')
  parser.add_argument('--run-dir', type=run_outputs.run_dir_argument,
                      help='Also this project\'s model: a local_runner.py --output-dir of a run on the same split '
                      '(the canonical one: --split seed).')
  parser.add_argument('--svd-seeds', type=benchmark_flags.seed, nargs='*', action=benchmark_flags.DistinctValues,
                      default=[],
                      help=f'Also SVD with these seeds (the bench seed, {SVD_RANDOM_STATE}, always runs).')
  parser.add_argument('--concentration-segment', type=_segment_argument, action=benchmark_flags.AppendDistinct,
                      default=[],
                      metavar='COLUMN=VALUE', help='Also every system\'s concentration on this segment (repeatable), '
                      'e.g. user_occupation=healthcare.')
  parser.add_argument('--split-seed', type=benchmark_flags.seed, default=splits.CANONICAL_SEED,
                      help='The 80/20 random split with this permutation seed (default: the canonical split, '
                      f'{splits.CANONICAL_SEED}); a --run-dir run must be on the same split.')
  parser.add_argument('--bootstrap-draws', type=benchmark_flags.non_negative_int, default=0, metavar='N',
                      help='Also each system\'s worst user segment margin over N draws of the eval users with '
                      'replacement (an interval and the share of draws within the target); 0: off.')
  parser.add_argument('--json', help='Also write the reports as JSON to this file.')
  args = parser.parse_args(argv)
  if SVD_RANDOM_STATE in args.svd_seeds:
    parser.error(f'--svd-seeds {SVD_RANDOM_STATE} is the bench seed, which always runs (as {SVD_PEER}); give other '
                 'seeds.')
  return args


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Prints the peers' (and optionally our) segment reports. Returns the process exit code."""
  args = parse_args(argv)
  environment.use_legacy_keras()
  if not surprise_installed():
    print('scikit-surprise is not installed: install the project\'s dev dependency group (uv sync --group dev).',
          file=sys.stderr)
    return 2
  evaluations: Dict[str, EvalPredictions] = {}
  try:
    if args.run_dir:
      evaluations[f'this project ({args.run_dir})'] = run_predictions(args.run_dir)
  except ValueError as e:  # no trained ranking model in the run
    print(f'--run-dir: {e}', file=sys.stderr)
    return 2
  peers = peer_evaluations(args.data_dir, args.svd_seeds, split_of_seed(args.split_seed))
  try:
    for ours in evaluations.values():
      check_same_eval_rows(ours, next(iter(peers.values())), args.split_seed)
  except ValueError as e:  # the run was made on another split than --split-seed's
    print(f'--run-dir/--split-seed: {e}', file=sys.stderr)
    return 2
  evaluations.update(peers)
  for column, value in args.concentration_segment:
    without = [name for name, evaluation in evaluations.items()
               if not np.any(evaluation.segments.get(column, np.asarray([], dtype=str)) == value)]
    if without:
      print(f'--concentration-segment {column}={value}: no eval example of {", ".join(without)} is in that segment; '
            'pick a segment of the table (values are case-sensitive, e.g. user_occupation=healthcare).',
            file=sys.stderr)
      return 2
  reports = {name: segment_report(evaluation, concentration_segments=args.concentration_segment)
             for name, evaluation in evaluations.items()}
  gate = configs.SegmentGate()
  split_name = ('canonical split' if args.split_seed == splits.CANONICAL_SEED
                else f'random 80/20 split, seed {args.split_seed}')
  print(f'MovieLens 100K ({args.data_dir}), {split_name}; gated segments: >= {gate.min_examples} eval '
        f'examples.\n')
  print(format_summary(reports))
  for column, value in args.concentration_segment:
    print('\n'.join(['', f'Concentration on `{column}={value}`:', '',
                     *format_concentrations(reports, f'{column}={value}')]))
  print('\n' + format_segment_table(reports))
  if args.bootstrap_draws:
    intervals = {}
    for name, report in reports.items():
      worst = report['worst_user_segment']
      if worst:
        intervals[name] = margin_interval(evaluations[name], worst['column'], worst['value'], args.bootstrap_draws)
        report['worst_user_segment_interval'] = intervals[name]
    print(f'\nThe worst user segment\'s margin over {args.bootstrap_draws} draws of the eval users with '
          'replacement:\n')
    print(format_intervals(intervals))
  if args.json:
    with open(args.json, 'w', encoding='utf-8') as f:
      # Strict JSON: a NaN or infinite figure as null, as the segment gate and the Trainers write them.
      f.write(run_files.run_file_json(reports, indent=2))
  return 0


if __name__ == '__main__':
  sys.exit(main())
