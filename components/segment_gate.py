"""SegmentGate: blesses the ranking model only if the Evaluator did and no large user or item segment is left behind.

The Evaluator gates the overall RMSE (a threshold and no regression against the last blessed model). This
component reads the same evaluation (TFMA metrics per slice, written by the Evaluator; with a baseline model
they hold the candidate's and the baseline's metrics for every slice) and applies the segmentation rule of
`components.segment_rules`: every segment (one value of one slicing column) with at least `min_examples`
evaluation examples must have an RMSE at most `max_margin` above the overall RMSE (less `margin_standard_errors`
standard errors of its RMSE, when that is set above 0), and at most `max_regression` above the last blessed
model's RMSE on the same segment.

Output `blessing` (ModelBlessing), read by the ranking Pusher and by the resolver of the last blessed model:
custom properties `blessed` (1/0), `current_model`/`current_model_id` (and `baseline_model`/`baseline_model_id`
when there was one), `reasons` (JSON list of sentences, empty when blessed), `warnings` (JSON list of the checks
the rule could not make, e.g. no segment large enough to gate; they do not refuse the model), `worst_segment` and
`worst_segment_margin` (left out when the worst segment's margin is NaN or infinite: ML Metadata stores no such
number); files `BLESSED`/`NOT_BLESSED` (the reasons, one per line) and `segment_gate.json` (the whole segment table,
strict JSON: a NaN or infinite RMSE or margin is null, as in the Trainers' run files).
"""

import json
import math
import os
from typing import Dict, List, Optional, Tuple, Union

import tensorflow as tf
import tensorflow_model_analysis as tfma
from absl import logging
from tensorflow_model_analysis.proto import metrics_for_slice_pb2, validation_result_pb2
from tfx import v1 as tfx
from tfx.types import artifact

from components import mlmd_properties, segment_rules
from pipeline import configs
from trainer.common import run_files

# TFMA metric names of the metrics the rule reads (configured in pipeline/eval_configs.py).
RMSE_METRIC = 'root_mean_squared_error'
EXAMPLE_COUNT_METRIC = 'example_count'
# Absent from evaluations made before the Evaluator measured it (pipeline/rating_metrics.py).
RMSE_STANDARD_ERROR_METRIC = 'rmse_standard_error'
# The model name TFX's Evaluator gives the last blessed model when a baseline is resolved (the candidate's is
# tfma.CANDIDATE_KEY then, and '' without a baseline; read_slice_metrics files both under tfma.CANDIDATE_KEY).
BASELINE_MODEL_NAME = tfma.BASELINE_KEY
# Blessing custom properties, as tfx.components.Evaluator writes them (Pusher and the resolver read them).
BLESSED_KEY = 'blessed'
CURRENT_MODEL_KEY = 'current_model'
CURRENT_MODEL_ID_KEY = 'current_model_id'
BASELINE_MODEL_KEY = 'baseline_model'
BASELINE_MODEL_ID_KEY = 'baseline_model_id'
REASONS_KEY = 'reasons'
WARNINGS_KEY = 'warnings'
WORST_SEGMENT_KEY = 'worst_segment'
WORST_SEGMENT_MARGIN_KEY = 'worst_segment_margin'
BLESSED_FILE = 'BLESSED'
NOT_BLESSED_FILE = 'NOT_BLESSED'
REPORT_FILE = 'segment_gate.json'

# (column, value) of a slice; () for the overall slice.
SliceKey = Tuple[Tuple[str, str], ...]


def read_slice_metrics(evaluation_uri: str) -> Dict[str, Dict[SliceKey, Dict[str, float]]]:
  """Reads the Evaluator's metrics per model and slice.

  Args:
    evaluation_uri: the Evaluator's `evaluation` (ModelEvaluation) artifact URI.

  Returns:
    {'candidate' | 'baseline': {slice key: {metric name: value}}}; 'baseline' only when the Evaluator had a
    baseline model. Diff metrics (candidate minus baseline) are left out: they follow from the two.

  Raises:
    ValueError: if the evaluation holds no metrics.
  """
  by_model: Dict[str, Dict[SliceKey, Dict[str, float]]] = {}
  for metrics_for_slice in tfma.load_metrics(evaluation_uri):
    slice_key = tuple((column, _text(value)) for column, value in
                      tfma.slicer.deserialize_slice_key(metrics_for_slice.slice_key))
    for entry in metrics_for_slice.metric_keys_and_values:
      if entry.key.is_diff or not entry.value.HasField('double_value'):
        continue
      model = tfma.BASELINE_KEY if entry.key.model_name == BASELINE_MODEL_NAME else tfma.CANDIDATE_KEY
      by_model.setdefault(model, {}).setdefault(slice_key, {})[entry.key.name] = entry.value.double_value.value
  if tfma.CANDIDATE_KEY not in by_model:
    raise ValueError(f'The evaluation at {evaluation_uri} holds no metrics; the Evaluator must run with the '
                     'ranking eval config (pipeline/eval_configs.py) before the segment gate.')
  return by_model


def overall_and_segments(metrics: Dict[SliceKey, Dict[str, float]]
                         ) -> Tuple[float, List[segment_rules.SegmentMetrics]]:
  """Splits one model's slices into its overall RMSE and its per-segment metrics.

  Args:
    metrics: one model's {slice key: {metric name: value}}, as `read_slice_metrics` returns them.

  Returns:
    (overall RMSE, one `SegmentMetrics` per other slice in slice-key order; a slice crossing several columns is
    one segment whose column and value join the columns' names and values with ',').

  Raises:
    ValueError: if the overall slice or its RMSE is missing, or a segment's RMSE or example count.
  """
  overall = metrics.get(())
  if overall is None or RMSE_METRIC not in overall:
    raise ValueError(f'The evaluation has no overall {RMSE_METRIC!r}; configure it in the eval config (found '
                     f'slices {sorted(metrics)[:5]}...).')
  segments = []
  for slice_key, values in sorted(metrics.items()):
    if not slice_key:
      continue
    if RMSE_METRIC not in values or EXAMPLE_COUNT_METRIC not in values:
      raise ValueError(f'Slice {slice_key} lacks {RMSE_METRIC!r} or {EXAMPLE_COUNT_METRIC!r}; add both to the '
                       'eval config\'s metrics (ExampleCount, RootMeanSquaredError).')
    segments.append(segment_rules.SegmentMetrics(
        column=','.join(c for c, _ in slice_key), value=','.join(v for _, v in slice_key),
        rmse=values[RMSE_METRIC], example_count=int(round(values[EXAMPLE_COUNT_METRIC])),
        rmse_standard_error=values.get(RMSE_STANDARD_ERROR_METRIC)))
  return overall[RMSE_METRIC], segments


def sliced_columns(evaluation_uri: str) -> List[str]:
  """The single columns the Evaluator was configured to slice by, from the eval config stored with its output.

  Args:
    evaluation_uri: the Evaluator's `evaluation` artifact URI.

  Returns:
    E.g. ['user_gender', 'user_occupation', 'user_age_bucket', 'item_popularity_bucket'] for
    `pipeline.eval_configs.ranking_eval_config`; the overall slice and crosses of several columns are left out.
  """
  config = tfma.load_eval_result(evaluation_uri).config
  return [spec.feature_keys[0] for spec in config.slicing_specs
          if len(spec.feature_keys) == 1 and not spec.feature_values]


def evaluator_refusal_reasons(evaluation_uri: str) -> List[str]:
  """Why the Evaluator did not bless the model, one sentence per failed threshold, from its validation result.

  Args:
    evaluation_uri: the Evaluator's `evaluation` artifact URI (its `validations` file).

  Returns:
    E.g. ['the Evaluator did not bless the model: overall root_mean_squared_error 1.1283 is above --max-rmse
    1.0']; a general sentence when the Evaluator recorded no failure this reads.
  """
  failures = []
  if tf.io.gfile.glob(os.path.join(evaluation_uri, 'validations*')):
    validation = tfma.load_validation_result(evaluation_uri)
    failures = [(per_slice.slice_key, failure) for per_slice in validation.metric_validations_per_slice
                for failure in per_slice.failures]
  if not failures:
    return ['the Evaluator did not bless the model and recorded no failed threshold; see its log (the overall '
            'RMSE gates: --max-rmse, --max-rmse-increase)']
  return [f'the Evaluator did not bless the model: {threshold_failure_sentence(slice_key, failure)}'
          for slice_key, failure in failures]


def threshold_failure_sentence(slice_key: metrics_for_slice_pb2.SliceKey,
                               failure: validation_result_pb2.ValidationFailure) -> str:
  """One TFMA `ValidationFailure` (of the slice `slice_key`, a TFMA SliceKey proto) as a sentence naming the slice
  (as the segment rule names it, e.g. `user_gender=F`), the value, the bound and the flag that sets it
  (`pipeline/eval_configs.py` maps `--max-rmse` to the RMSE's upper bound and `--max-rmse-increase` to its absolute
  change threshold)."""
  where = ', '.join(f'{column}={_text(value)}'
                    for column, value in tfma.slicer.deserialize_slice_key(slice_key)) or 'overall'
  name = failure.metric_key.name
  value = failure.metric_value.double_value.value if failure.metric_value.HasField('double_value') else None
  shown = 'no value' if value is None else f'{value:.4f}'
  threshold = failure.metric_threshold
  if threshold.HasField('change_threshold') and threshold.change_threshold.HasField('absolute'):
    allowed = threshold.change_threshold.absolute.value
    return (f'{where} {name} changed by {shown} against the last blessed model, more than --max-rmse-increase '
            f'{allowed:g} allows')
  bound = threshold.value_threshold
  if bound.HasField('upper_bound'):
    return f'{where} {name} {shown} is above --max-rmse {bound.upper_bound.value:g}'
  if bound.HasField('lower_bound'):
    return f'{where} {name} {shown} is below its lower bound {bound.lower_bound.value:g}'
  return f'{where} {name} {shown} fails {failure.message or "its threshold"}'


def judge_evaluation(evaluation_uri: str, evaluator_blessed: bool, *, min_examples: int, max_margin: float,
                     max_regression: float, margin_standard_errors: float = 0.0) -> Tuple[bool, List[str], Dict]:
  """Applies the Evaluator's verdict and the segmentation rule to an evaluation (`judge_metrics` on its files).

  Args:
    evaluation_uri: the Evaluator's `evaluation` artifact URI.
    evaluator_blessed: whether the Evaluator blessed the candidate (its overall thresholds).
    min_examples, max_margin, max_regression, margin_standard_errors: the rule's settings
      (`segment_rules.judge_segments`).

  Returns:
    As `judge_metrics`.

  Raises:
    ValueError: if the evaluation lacks the metrics the rule reads, or a setting is out of range.
  """
  by_model = read_slice_metrics(evaluation_uri)
  evaluator_reasons = [] if evaluator_blessed else evaluator_refusal_reasons(evaluation_uri)
  return judge_metrics(by_model, evaluator_reasons, sliced_columns(evaluation_uri), min_examples=min_examples,
                       max_margin=max_margin, max_regression=max_regression,
                       margin_standard_errors=margin_standard_errors)


def judge_metrics(by_model: Dict[str, Dict[SliceKey, Dict[str, float]]], evaluator_reasons: List[str],
                  expected_columns: List[str], *, min_examples: int, max_margin: float, max_regression: float,
                  margin_standard_errors: float = 0.0) -> Tuple[bool, List[str], Dict]:
  """Applies the Evaluator's verdict and the segmentation rule to metrics read from an evaluation.

  A NaN or infinite overall RMSE (a diverged model predicting NaN or infinite ratings) refuses the model with
  that reason: no segment can be judged against it, and nothing is pushed.

  Args:
    by_model: the evaluation's metrics, as `read_slice_metrics` returns them.
    evaluator_reasons: why the Evaluator refused the candidate (`evaluator_refusal_reasons`), empty when it
      blessed it.
    expected_columns: the columns the Evaluator sliced by (`sliced_columns`).
    min_examples, max_margin, max_regression, margin_standard_errors: the rule's settings
      (`segment_rules.judge_segments`).

  Returns:
    (blessed, reasons for refusal, the JSON report written next to the blessing; its 'warnings' list the checks
    the rule could not make).

  Raises:
    ValueError: if the metrics lack what the rule reads, or a setting is out of range.
  """
  segment_rules.check_settings(min_examples=min_examples, max_margin=max_margin, max_regression=max_regression,
                               margin_standard_errors=margin_standard_errors)
  overall_rmse, segments = overall_and_segments(by_model[tfma.CANDIDATE_KEY])
  if math.isfinite(overall_rmse):
    baseline_rmse: Optional[Dict[segment_rules.SegmentKey, float]] = None
    if tfma.BASELINE_KEY in by_model:
      _, baseline_segments = overall_and_segments(by_model[tfma.BASELINE_KEY])
      baseline_rmse = {s.key: s.rmse for s in baseline_segments}
    verdict = segment_rules.judge_segments(overall_rmse, segments, baseline_rmse, min_examples=min_examples,
                                           max_margin=max_margin, max_regression=max_regression,
                                           margin_standard_errors=margin_standard_errors,
                                           expected_columns=expected_columns)
    report = segment_rules.verdict_to_json(verdict, overall_rmse)
  else:
    report = {'passed': False, 'overall_rmse': overall_rmse, 'worst_segment': None, 'warnings': [], 'segments': [],
              'reasons': [f'the overall RMSE is {overall_rmse}: the model predicts NaN or infinite ratings on the '
                          'evaluation examples (training diverged: lower the learning rate); no segment can be '
                          'judged against it']}
  reasons = list(evaluator_reasons) + report['reasons']
  report.update({
      'blessed': not reasons, 'evaluator_blessed': not evaluator_reasons, 'reasons': reasons,
      'has_baseline': tfma.BASELINE_KEY in by_model,
      'thresholds': {'min_examples': min_examples, 'max_margin': max_margin, 'max_regression': max_regression,
                     'margin_standard_errors': margin_standard_errors},
  })
  return not reasons, reasons, report


def gate(model: artifact.Artifact, evaluation: artifact.Artifact, evaluator_blessing: artifact.Artifact,
         blessing: artifact.Artifact, *, min_examples: int, max_margin: float, max_regression: float,
         margin_standard_errors: float = 0.0) -> bool:
  """The component's work on artifacts (callable without a pipeline, e.g. in tests). Returns `blessed`."""
  evaluator_blessed = evaluator_blessing.get_int_custom_property(BLESSED_KEY) == 1
  blessed, reasons, report = judge_evaluation(
      evaluation.uri, evaluator_blessed, min_examples=min_examples, max_margin=max_margin,
      max_regression=max_regression, margin_standard_errors=margin_standard_errors)
  logging.info('Segment gate: blessed=%s; worst segment %s; reasons: %s', blessed, report['worst_segment'],
               reasons)
  for warning in report['warnings']:
    logging.warning('Segment gate: %s', warning)

  blessing.set_int_custom_property(BLESSED_KEY, 1 if blessed else 0)
  blessing.set_string_custom_property(configs.BLESSING_GATE_KEY, configs.RANKING_SEGMENT_GATE_ID)
  blessing.set_string_custom_property(CURRENT_MODEL_KEY, model.uri)
  blessing.set_int_custom_property(CURRENT_MODEL_ID_KEY, model.id)
  if evaluator_blessing.has_custom_property(BASELINE_MODEL_ID_KEY):
    blessing.set_string_custom_property(
        BASELINE_MODEL_KEY, evaluator_blessing.get_string_custom_property(BASELINE_MODEL_KEY))
    blessing.set_int_custom_property(
        BASELINE_MODEL_ID_KEY, evaluator_blessing.get_int_custom_property(BASELINE_MODEL_ID_KEY))
  blessing.set_string_custom_property(REASONS_KEY, run_files.run_file_json(reasons))
  blessing.set_string_custom_property(WARNINGS_KEY, run_files.run_file_json(report['warnings']))
  worst = report['worst_segment']
  if worst is not None:
    blessing.set_string_custom_property(WORST_SEGMENT_KEY, f'{worst["column"]}={worst["value"]}')
    # A NaN or infinite margin (a segment without a finite RMSE, which the rule refuses) is left out (ML Metadata's
    # SQL store refuses it); the reasons say why.
    mlmd_properties.set_finite_float_property(blessing, WORST_SEGMENT_MARGIN_KEY, worst['margin'])
  tf.io.gfile.makedirs(blessing.uri)
  with tf.io.gfile.GFile(os.path.join(blessing.uri, REPORT_FILE), 'w') as f:
    f.write(run_files.run_file_json(report, indent=2))  # strict JSON: NaN or infinite numbers as null
  with tf.io.gfile.GFile(os.path.join(blessing.uri, BLESSED_FILE if blessed else NOT_BLESSED_FILE), 'w') as f:
    f.write('\n'.join(reasons))
  return blessed


def read_report(blessing_uri: str) -> Dict:
  """The segment table a SegmentGate wrote next to its blessing (see `judge_evaluation`).

  A number the gate could not compute (a NaN or infinite RMSE or margin: the gate refused the model) is None; a
  reader must take it as such, not as a figure (`benchmarks.peer_segments.worst_user_segment` puts a gated segment
  with a None margin first, `inspection.queries.segment_gate_report` reads it as NaN).
  """
  with tf.io.gfile.GFile(os.path.join(blessing_uri, REPORT_FILE)) as f:
    return json.load(f)


def _text(value: Union[bytes, str, int, float]) -> str:
  """A slice value as text: bytes decoded as UTF-8, a whole float without its '.0' (1.0 -> '1')."""
  if isinstance(value, bytes):
    return value.decode('utf-8')
  if isinstance(value, float) and math.isfinite(value) and value == int(value):
    return str(int(value))
  return str(value)


@tfx.dsl.components.component
def SegmentGate(
    model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    evaluation: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelEvaluation],
    evaluator_blessing: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    blessing: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    min_examples: tfx.dsl.components.Parameter[int],
    max_margin: tfx.dsl.components.Parameter[float],
    max_regression: tfx.dsl.components.Parameter[float],
    margin_standard_errors: tfx.dsl.components.Parameter[float],
) -> None:
  """Blesses `model` when the Evaluator did and every large segment passes (see the module docstring)."""
  gate(model, evaluation, evaluator_blessing, blessing, min_examples=min_examples, max_margin=max_margin,
       max_regression=max_regression, margin_standard_errors=margin_standard_errors)
