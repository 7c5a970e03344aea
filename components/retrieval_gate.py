"""RetrievalGate: measures the retrieval model on the evaluation split and blesses it for the Pusher.

TFMA has no recommender metrics, so this component ranks the whole catalogue for every evaluation user with the
exported model (its `catalogue_scores` signature, the scores `serving_default` ranks by; query · candidate
embeddings for exports without it) and computes, as
`components.retrieval_metrics` defines them, top-K accuracy (seen items kept) and Recall@K with the user's
training items removed, overall and per user segment (gender, occupation, age bucket, when present).

Outputs:
* `evaluation` (ModelEvaluation): the metrics as custom properties (visible in ML Metadata; a NaN one, e.g. the
  Recall@K of no user, is left out: ML Metadata stores no such number) and in `metrics.json` (with the
  per-segment table and the baseline's metrics; strict JSON: a NaN or infinite figure is null, as in the Trainers'
  run files).
* `blessing` (ModelBlessing): custom property `blessed` 1/0 (what Pusher reads), `current_model_id` (what
  LatestBlessedModelStrategy reads), `current_model`, `baseline_model`/`baseline_model_id` when there was one,
  `reasons` (JSON list of why not) and `blessing_gate`; file `BLESSED` or `NOT_BLESSED` (the reasons). Blessed
  only when Recall@100 and top-100 accuracy reach their minimums and neither falls below the last blessed model's
  (re-measured on this evaluation split) by more than the tolerance, and, when `segment_max_shortfall` is below 1
  (opt-in; 1, the default, refuses nothing), no user segment with at least `segment_min_users` Recall@100 users has
  a Recall@100 more than `segment_max_shortfall` below the overall one. Every segment is reported either way.
A model whose scores are NaN (training diverged) is not blessed, with a reason naming the
first NaN score and the fix, and its metrics are NaN: the run goes on and the served version stays.
"""

import collections
import dataclasses
import math
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

import numpy as np
import tensorflow as tf
from absl import logging
from tfx import v1 as tfx
from tfx.types import artifact, artifact_utils
from tfx.utils import path_utils

from components import mlmd_properties, retrieval_metrics
from ingestion import example_columns
from pipeline import configs
from schema import features
from trainer.common import run_files
from trainer.retrieval import export as retrieval_export
from trainer.retrieval import loading

TRAIN_SPLIT = 'train'
EVAL_SPLIT = 'eval'
# Cut-offs of the reported metrics; the gate uses GATED_K.
CUTOFFS: Tuple[int, ...] = (10, 100)
GATED_K = 100
METRICS_FILE = 'metrics.json'
# Blessing custom properties, as tfx.components.Evaluator writes them (Pusher and the resolver read them).
BLESSED_KEY = 'blessed'
# JSON list of the sentences saying why the model was not blessed (empty when blessed), as the segment gate's.
REASONS_KEY = 'reasons'
CURRENT_MODEL_KEY = 'current_model'
CURRENT_MODEL_ID_KEY = 'current_model_id'
BASELINE_MODEL_KEY = 'baseline_model'
BASELINE_MODEL_ID_KEY = 'baseline_model_id'
# The gated user segment with the largest Recall@100 shortfall ('column=value') and that shortfall.
WORST_SEGMENT_KEY = 'worst_segment'
WORST_SEGMENT_SHORTFALL_KEY = 'worst_segment_shortfall'
BLESSED_FILE = 'BLESSED'
NOT_BLESSED_FILE = 'NOT_BLESSED'
# Examples read per step.
_READ_BATCH_SIZE = 4096
# By how much a figure may miss its minimum or allowed decrease and still count as reaching it: float rounding of a
# mean (six users' recall of 0.55 average 0.5499999999999999) or a difference (0.101 - 0.01 > 0.091), far below
# the 4 digits the reasons print.
_ROUNDING_TOLERANCE = 1e-9


def recall_key(k: int) -> str:
  """Name of the Recall@k (training items removed) metric, e.g. 'recall_at_100'."""
  return f'recall_at_{k}'


def accuracy_key(k: int) -> str:
  """Name of the top-k categorical accuracy metric, e.g. 'top_100_accuracy'."""
  return f'top_{k}_accuracy'


@dataclasses.dataclass(frozen=True)
class EvaluationData:
  """What the metrics need from the examples, keyed by raw ids.

  Attributes:
    user_ids: the evaluation users, `[num_users]`.
    user_examples: one serialized raw evaluation example per user (its query), `[num_users]`.
    pairs: (user id, item id) of every evaluation interaction.
    seen_items: user id -> the item ids of the user's training interactions.
  """
  user_ids: List[bytes]
  user_examples: List[bytes]
  pairs: List[Tuple[bytes, bytes]]
  seen_items: Dict[bytes, Set[bytes]]


def read_evaluation_data(train_files: Sequence[str], eval_files: Sequence[str]) -> EvaluationData:
  """Reads the user/item pairs of both splits and one query example per evaluation user.

  Args:
    train_files: file patterns of the raw training examples (gzipped TFRecords of tf.Examples).
    eval_files: file patterns of the raw evaluation examples.

  Returns:
    The evaluation users (in order of first appearance), their first example each, every evaluation pair and
    each user's training items.

  Raises:
    ValueError: if a pattern matches no file or the evaluation split holds no examples.
  """
  id_spec = {features.USER_ID: tf.io.FixedLenFeature([], tf.string),
             features.ITEM_ID: tf.io.FixedLenFeature([], tf.string)}
  seen: Dict[bytes, Set[bytes]] = collections.defaultdict(set)
  for batch in example_columns.serialized_examples(train_files).batch(_READ_BATCH_SIZE):
    ids = tf.io.parse_example(batch, id_spec)
    for user, item in zip(ids[features.USER_ID].numpy(), ids[features.ITEM_ID].numpy()):
      seen[user].add(item)
  first_example: Dict[bytes, bytes] = {}
  pairs: List[Tuple[bytes, bytes]] = []
  for batch in example_columns.serialized_examples(eval_files).batch(_READ_BATCH_SIZE):
    ids = tf.io.parse_example(batch, id_spec)
    for user, item, record in zip(ids[features.USER_ID].numpy(), ids[features.ITEM_ID].numpy(), batch.numpy()):
      first_example.setdefault(user, record)
      pairs.append((user, item))
  if not pairs:
    raise ValueError(f'The evaluation split {list(eval_files)} holds no examples; the retrieval model cannot '
                     'be measured. Check the split settings.')
  return EvaluationData(user_ids=list(first_example), user_examples=list(first_example.values()), pairs=pairs,
                        seen_items=dict(seen))


def user_segments(user_examples: Sequence[bytes], transformed_users: Mapping[str, np.ndarray],
                  columns: Sequence[str] = features.USER_SEGMENT_COLUMNS) -> Dict[str, List[str]]:
  """Each user's value of each segment column present in the data (raw column or Transform output).

  Args:
    user_examples: one serialized raw example per user.
    transformed_users: the export's `transform_features` outputs for those examples, `[num_users]` each.
    columns: the segment columns to look for.

  Returns:
    column -> one string per user; columns found neither raw nor transformed are left out. A raw column's
    values are joined with '|'; a user whose example lacks a raw column that others have gets ''.
  """
  parsed = [tf.train.Example.FromString(e).features.feature for e in user_examples]
  segments: Dict[str, List[str]] = {}
  for column in columns:
    if column in transformed_users:
      segments[column] = [v.decode() if isinstance(v, bytes) else str(v) for v in transformed_users[column]]
    elif any(column in f for f in parsed):
      segments[column] = [_feature_text(f[column]) if column in f else '' for f in parsed]
  return segments


def _feature_text(feature: tf.train.Feature) -> str:
  kind = feature.WhichOneof('kind')
  values = list(getattr(feature, kind).value) if kind else []
  return '|'.join(v.decode() if isinstance(v, bytes) else str(v) for v in values)


def measure(model_dir: str, data: EvaluationData, unknown_items_miss: bool = False) -> Dict:
  """Ranks the catalogue for every evaluation user with the SavedModel at `model_dir` and measures it.

  Args:
    model_dir: the retrieval SavedModel.
    data: the evaluation users, pairs and seen items.
    unknown_items_miss: count evaluation items missing from the model's catalogue as items it cannot retrieve
      (for the last blessed model, whose catalogue predates items new since); False refuses them.

  Returns:
    {'overall': {metric: value, 'num_eval_pairs', 'num_recall_users', 'num_unknown_eval_items'},
     'segments': {column: {value: {'recall_at_100': r, 'num_users': n}}}}.

  Raises:
    ValueError: if the export lacks the signatures the gate needs, or (without `unknown_items_miss`) an
      evaluation item is not in its catalogue.
    retrieval_metrics.NonFiniteScoresError: if a score the model gives is NaN.
  """
  loaded = loading.load_retrieval_model(model_dir)
  missing = [s for s in (retrieval_export.QUERY_EMBEDDING_SIGNATURE, retrieval_export.CANDIDATE_EMBEDDINGS_SIGNATURE,
                         retrieval_export.TRANSFORM_SIGNATURE) if s not in loaded.signatures]
  if missing:
    raise ValueError(f'The model at {model_dir} has no {missing} signatures; export it with '
                     'trainer.retrieval.export.export_retrieval_model.')
  catalogue = loaded.signatures[retrieval_export.CANDIDATE_EMBEDDINGS_SIGNATURE]()
  item_ids = catalogue[retrieval_export.ITEM_IDS_OUTPUT].numpy()
  examples = tf.constant(data.user_examples, dtype=tf.string)
  scores = catalogue_scores(loaded, examples, catalogue[retrieval_export.EMBEDDINGS_OUTPUT].numpy())
  transformed_users = {k: v.numpy() for k, v in
                       loaded.signatures[retrieval_export.TRANSFORM_SIGNATURE](examples=examples).items()}

  column_of = {item: column for column, item in enumerate(item_ids)}
  row_of = {user: row for row, user in enumerate(data.user_ids)}
  unknown = sorted({item for _, item in data.pairs if item not in column_of})
  if unknown and not unknown_items_miss:
    raise ValueError(f'{len(unknown)} evaluation items (e.g. {unknown[:3]}) are not in the model\'s catalogue; '
                     'the retrieval Trainer must take its candidates from both splits.')
  # An unknown item gets a column past the scored ones: never in a top k, so a miss in every metric.
  column_of.update({item: len(item_ids) + j for j, item in enumerate(unknown)})
  pair_users = [row_of[user] for user, _ in data.pairs]
  pair_items = [column_of[item] for _, item in data.pairs]
  eval_items: List[Set[int]] = [set() for _ in data.user_ids]
  for row, column in zip(pair_users, pair_items):
    eval_items[row].add(column)
  seen_items = [{column_of[i] for i in data.seen_items.get(user, ()) if i in column_of} for user in data.user_ids]

  overall: Dict[str, float] = {'num_eval_pairs': len(data.pairs), 'num_unknown_eval_items': len(unknown)}
  recalls_at_gate = None
  for k in CUTOFFS:
    overall[accuracy_key(k)] = retrieval_metrics.top_k_accuracy(scores, pair_users, pair_items, k)
    recalls = retrieval_metrics.recall_per_user(scores, eval_items, seen_items, k)
    overall[recall_key(k)] = retrieval_metrics.mean_recall(recalls)
    if k == GATED_K:
      recalls_at_gate = recalls
      overall['num_recall_users'] = int(np.sum(~np.isnan(recalls)))
  segments: Dict[str, Dict[str, Dict[str, float]]] = {}
  for column, values in user_segments(data.user_examples, transformed_users).items():
    by_value: Dict[str, List[float]] = collections.defaultdict(list)
    for value, recall in zip(values, recalls_at_gate):
      if not np.isnan(recall):
        by_value[value].append(recall)
    segments[column] = {value: {recall_key(GATED_K): float(np.mean(r)), 'num_users': len(r)}
                        for value, r in sorted(by_value.items())}
  return {'overall': overall, 'segments': segments}


def unmeasured_result(data: EvaluationData) -> Dict:
  """`measure`'s result for a model whose scores are NaN: every metric NaN, the counts that do not depend on the
  scores, no segments (`metrics.json` holds the metrics as null; the gate's properties leave them out)."""
  overall: Dict[str, float] = {'num_eval_pairs': len(data.pairs)}
  for k in CUTOFFS:
    overall[accuracy_key(k)] = float('nan')
    overall[recall_key(k)] = float('nan')
  return {'overall': overall, 'segments': {}}


def catalogue_scores(loaded: Any, examples: tf.Tensor, item_embeddings: np.ndarray) -> np.ndarray:
  """Every catalogue item's score for each query, float32 `[num_queries, num_items]`, as the export ranks them.

  From the export's `catalogue_scores` signature (two-tower plus item-item scores); an export that predates it is
  scored as query · candidate embeddings.

  Args:
    loaded: the loaded SavedModel.
    examples: string `[num_queries]`, serialized user examples.
    item_embeddings: float32 `[num_items, embedding_dim]` from its `candidate_embeddings` signature.
  """
  batches = tf.data.Dataset.from_tensor_slices(examples).batch(_READ_BATCH_SIZE)
  if retrieval_export.CATALOGUE_SCORES_SIGNATURE in loaded.signatures:
    signature = loaded.signatures[retrieval_export.CATALOGUE_SCORES_SIGNATURE]
    return np.concatenate([signature(examples=batch)[retrieval_export.SCORES_OUTPUT].numpy() for batch in batches])
  signature = loaded.signatures[retrieval_export.QUERY_EMBEDDING_SIGNATURE]
  return np.concatenate([signature(examples=batch)[retrieval_export.EMBEDDINGS_OUTPUT].numpy()
                         for batch in batches]) @ item_embeddings.T


def blessing_decision(candidate: Mapping[str, float], baseline: Optional[Mapping[str, float]],
                      min_recall_at_100: float, min_top_100_accuracy: float,
                      max_decrease: float) -> Tuple[bool, List[str]]:
  """Whether to bless, and why not.

  Args:
    candidate: the new model's overall metrics.
    baseline: the last blessed model's overall metrics on the same data, or None on the first run.
    min_recall_at_100: Recall@100 (seen removed) must be at least this (up to float rounding, as below).
    min_top_100_accuracy: top-100 accuracy must be at least this.
    max_decrease: neither may fall below the baseline's by more than this; a figure at the minimum or exactly
      this below the baseline's up to float rounding (`_ROUNDING_TOLERANCE`) passes.

  Returns:
    (blessed, reasons for refusal — empty when blessed). A NaN Recall@100 (no user has an evaluation item
    outside the training items) refuses the model, with a reason saying so; so does any other gated figure that is
    not a finite number (e.g. a NaN top-100 accuracy: the model's scores were not numbers), with one reason
    naming the value, the cause and the fix, and no comparison with the baseline.
  """
  reasons = []
  for key, minimum, flag in ((recall_key(GATED_K), min_recall_at_100, '--min-recall-at-100'),
                             (accuracy_key(GATED_K), min_top_100_accuracy, '--min-top-100-accuracy')):
    value = candidate[key]
    if key == recall_key(GATED_K) and math.isnan(value):
      # mean_recall of no user: every evaluation item of every user is also one of the user's training items.
      reasons.append(f'{key} is not a number: no evaluation user has an evaluation item outside their training '
                     f'items (num_recall_users={candidate.get("num_recall_users", 0)}), so it cannot be measured '
                     f'against the minimum {minimum:.4f} ({flag}); the evaluation split must hold interactions '
                     'with items the users did not train on')
    elif not math.isfinite(value):
      # Not from `measure`, which refuses NaN scores (retrieval_metrics.top_k_columns): figures a caller passes.
      reasons.append(f'{key} is {value}, not a finite number: the model\'s scores are NaN or infinite (training '
                     'diverged: check the training loss, lower the learning rate), so it cannot be measured against '
                     f'the minimum {minimum:.4f} ({flag})')
    elif not value >= minimum - _ROUNDING_TOLERANCE:
      reasons.append(f'{key}={value:.4f} is below the minimum {minimum:.4f} ({flag})')
    if baseline is not None and math.isfinite(value) and value < baseline[key] - max_decrease - _ROUNDING_TOLERANCE:
      reasons.append(f'{key}={value:.4f} is worse than the last blessed model\'s {baseline[key]:.4f} by more '
                     f'than {max_decrease:.4f} (--max-retrieval-decrease)')
  return not reasons, reasons


@dataclasses.dataclass(frozen=True)
class SegmentShortfall:
  """One user segment's Recall@100 against the overall one.

  Attributes:
    column, value: the segment, e.g. ('user_occupation', 'writer').
    recall: its users' mean Recall@100 (seen items removed).
    num_users: its users with a Recall@100 (an evaluation item outside their training items).
    shortfall: the overall Recall@100 minus `recall` (positive: the segment is served worse).
  """
  column: str
  value: str
  recall: float
  num_users: int
  shortfall: float

  def to_json(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)


def segment_shortfalls(overall_recall: float, segments: Mapping[str, Mapping[str, Mapping[str, float]]],
                       min_users: int) -> List[SegmentShortfall]:
  """The segments with at least `min_users` users, largest shortfall first (ties by column, then value).

  Args:
    overall_recall: the overall Recall@100 (finite).
    segments: `measure(...)['segments']`: {column: {value: {'recall_at_100': r, 'num_users': n}}}.
    min_users: smaller segments are left out (reported in `metrics.json`, not gated).
  """
  key = recall_key(GATED_K)
  rows = [SegmentShortfall(column, value, metrics[key], int(metrics['num_users']), overall_recall - metrics[key])
          for column, by_value in segments.items() for value, metrics in by_value.items()
          if metrics['num_users'] >= min_users]
  return sorted(rows, key=lambda r: (-r.shortfall, r.column, r.value))


def segment_reasons(overall_recall: float, segments: Mapping[str, Mapping[str, Mapping[str, float]]],
                    min_users: int, max_shortfall: float) -> Tuple[List[str], Optional[SegmentShortfall]]:
  """The segment rule: why the model is refused, and the gated segment served worst.

  Args:
    overall_recall: the overall Recall@100; NaN (refused by `blessing_decision`) judges no segment.
    segments: as for `segment_shortfalls`.
    min_users: segments with fewer Recall@100 users are not gated.
    max_shortfall: a gated segment's Recall@100 may be at most this below the overall one (up to float rounding,
      `_ROUNDING_TOLERANCE`); 1 or more refuses nothing (a recall is in [0, 1]).

  Returns:
    (one sentence per gated segment beyond `max_shortfall`, worst first, each naming the flag; the gated segment
    with the largest shortfall, None when none has `min_users` users or the overall recall is NaN).
  """
  if math.isnan(overall_recall):
    return [], None
  rows = segment_shortfalls(overall_recall, segments, min_users)
  reasons = [f'{r.column}={r.value} ({r.num_users} users) has {recall_key(GATED_K)}={r.recall:.4f}, '
             f'{r.shortfall:.4f} below the overall {overall_recall:.4f}; --retrieval-segment-max-shortfall allows '
             f'{max_shortfall:.4f}'
             for r in rows if r.shortfall > max_shortfall + _ROUNDING_TOLERANCE]
  return reasons, (rows[0] if rows else None)


def evaluate_and_bless(examples: artifact.Artifact, model: artifact.Artifact,
                       baseline_model: Optional[artifact.Artifact], evaluation: artifact.Artifact,
                       blessing: artifact.Artifact, min_recall_at_100: float, min_top_100_accuracy: float,
                       max_decrease: float, segment_min_users: int = configs.RetrievalGate.segment_min_users,
                       segment_max_shortfall: float = configs.RetrievalGate.segment_max_shortfall) -> bool:
  """The component's work on artifacts (callable without a pipeline, e.g. in tests). Returns `blessed`.

  The settings are `pipeline.configs.RetrievalGate`'s (checked there); `segment_reasons` applies the last two.
  """
  split_names = artifact_utils.decode_split_names(examples.split_names)
  for split in (TRAIN_SPLIT, EVAL_SPLIT):
    if split not in split_names:
      raise ValueError(f'The examples have splits {split_names}; the retrieval gate needs {TRAIN_SPLIT!r} '
                       f'and {EVAL_SPLIT!r}.')
  data = read_evaluation_data(
      [os.path.join(artifact_utils.get_split_uri([examples], TRAIN_SPLIT), '*')],
      [os.path.join(artifact_utils.get_split_uri([examples], EVAL_SPLIT), '*')])
  try:
    result = measure(_serving_dir(model), data)
    unmeasurable = None
  except retrieval_metrics.NonFiniteScoresError as e:
    # A diverged model is refused with its reason recorded (and the served version stays), as the segment gate
    # refuses one that predicts NaN ratings, instead of failing the run without a verdict.
    result, unmeasurable = unmeasured_result(data), f'the model cannot be measured: {e}'
  # The last blessed model has not seen items new since it was trained: they count as its misses.
  baseline_result = (measure(_serving_dir(baseline_model), data, unknown_items_miss=True)
                     if baseline_model is not None else None)
  overall_recall = result['overall'][recall_key(GATED_K)]
  if unmeasurable is not None:
    reasons, worst = [unmeasurable], None
  else:
    _, reasons = blessing_decision(
        result['overall'], baseline_result['overall'] if baseline_result else None, min_recall_at_100,
        min_top_100_accuracy, max_decrease)
    shortfall_reasons, worst = segment_reasons(overall_recall, result['segments'], segment_min_users,
                                               segment_max_shortfall)
    reasons.extend(shortfall_reasons)
  blessed = not reasons  # the overall rule's and the segment rule's
  if worst is None and not math.isnan(overall_recall):
    logging.warning('Retrieval gate: no user segment has %d users with a Recall@100 (--retrieval-segment-min-users)'
                    '; no segment was gated.', segment_min_users)
  logging.info('Retrieval metrics: %s; baseline: %s; blessed: %s %s', result['overall'],
               baseline_result['overall'] if baseline_result else None, blessed, '; '.join(reasons))

  # A NaN or infinite figure is left out of the properties (ML Metadata's SQL store refuses it); metrics.json holds
  # it as null.
  for key, value in result['overall'].items():
    mlmd_properties.set_finite_float_property(evaluation, key, value)
  if baseline_result:
    for key, value in baseline_result['overall'].items():
      mlmd_properties.set_finite_float_property(evaluation, f'baseline_{key}', value)
  report = {'metrics': result['overall'], 'segments': result['segments'],
            'baseline_metrics': baseline_result['overall'] if baseline_result else None,
            'worst_segment': worst.to_json() if worst else None,
            'blessed': blessed, 'reasons_not_blessed': reasons,
            'thresholds': {'min_recall_at_100': min_recall_at_100, 'min_top_100_accuracy': min_top_100_accuracy,
                           'max_decrease': max_decrease, 'segment_min_users': segment_min_users,
                           'segment_max_shortfall': segment_max_shortfall}}
  tf.io.gfile.makedirs(evaluation.uri)
  with tf.io.gfile.GFile(os.path.join(evaluation.uri, METRICS_FILE), 'w') as f:
    f.write(run_files.run_file_json(report, indent=2))  # strict JSON: NaN or infinite numbers as null

  blessing.set_int_custom_property(BLESSED_KEY, 1 if blessed else 0)
  blessing.set_string_custom_property(REASONS_KEY, run_files.run_file_json(reasons))
  blessing.set_string_custom_property(configs.BLESSING_GATE_KEY, configs.RETRIEVAL_GATE_ID)
  blessing.set_string_custom_property(CURRENT_MODEL_KEY, model.uri)
  blessing.set_int_custom_property(CURRENT_MODEL_ID_KEY, model.id)
  if baseline_model is not None:
    blessing.set_string_custom_property(BASELINE_MODEL_KEY, baseline_model.uri)
    blessing.set_int_custom_property(BASELINE_MODEL_ID_KEY, baseline_model.id)
  if worst is not None:
    blessing.set_string_custom_property(WORST_SEGMENT_KEY, f'{worst.column}={worst.value}')
    blessing.set_float_custom_property(WORST_SEGMENT_SHORTFALL_KEY, float(worst.shortfall))
  tf.io.gfile.makedirs(blessing.uri)
  with tf.io.gfile.GFile(os.path.join(blessing.uri, BLESSED_FILE if blessed else NOT_BLESSED_FILE), 'w') as f:
    f.write('\n'.join(reasons))
  return blessed


def _serving_dir(model: artifact.Artifact) -> str:
  """The SavedModel directory inside a Trainer's Model artifact."""
  return path_utils.serving_model_path(model.uri)


@tfx.dsl.components.component
def RetrievalGate(
    examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
    model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    evaluation: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ModelEvaluation],
    blessing: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    min_recall_at_100: tfx.dsl.components.Parameter[float],
    min_top_100_accuracy: tfx.dsl.components.Parameter[float],
    max_decrease: tfx.dsl.components.Parameter[float],
    segment_min_users: tfx.dsl.components.Parameter[int],
    segment_max_shortfall: tfx.dsl.components.Parameter[float],
    baseline_model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model] = None,
) -> None:
  """Measures `model` on the eval split of raw `examples` and blesses it (see the module docstring)."""
  evaluate_and_bless(examples, model, baseline_model, evaluation, blessing, min_recall_at_100,
                     min_top_100_accuracy, max_decrease, segment_min_users, segment_max_shortfall)
