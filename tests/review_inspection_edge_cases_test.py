"""Inspection on edge inputs: non-finite TFMA metrics, records written before a setting existed, missing files."""

import json
import math

from google.protobuf import json_format
from tensorflow_model_analysis.proto import metrics_for_slice_pb2

from inspection import queries, tables


def _tfma_value(**fields: float) -> dict:
  """A TFMA MetricValue as `tfma.load_eval_result` hands it over: through protobuf's MessageToDict."""
  value = metrics_for_slice_pb2.MetricValue()
  if 'double' in fields:
    value.double_value.value = fields['double']
  if 'bounded' in fields:
    value.bounded_value.value.value = fields['bounded']
  return json_format.MessageToDict(value)


def test_nan_and_infinite_tfma_metrics_are_kept_not_dropped():
  # MessageToDict spells them 'NaN', 'Infinity', '-Infinity'; before, those strings failed the number check and
  # the metric vanished from the slice (its table cell empty, its --json key missing).
  metrics = {'': {'': {'root_mean_squared_error': _tfma_value(double=math.nan),
                       'mean_label': _tfma_value(double=3.5),
                       'max_error': _tfma_value(double=math.inf),
                       'min_error': _tfma_value(bounded=-math.inf),
                       'example_count': _tfma_value(double=0.0)}}}
  assert metrics['']['']['root_mean_squared_error'] == {'doubleValue': 'NaN'}
  values = queries._metric_values(metrics)  # pylint: disable=protected-access
  assert sorted(values) == ['example_count', 'max_error', 'mean_label', 'min_error', 'root_mean_squared_error']
  assert math.isnan(values['root_mean_squared_error'])
  assert (values['max_error'], values['min_error'], values['mean_label'], values['example_count']) == (
      math.inf, -math.inf, 3.5, 0.0)
  # --json writes them as null (strict JSON has no NaN), under their names.
  validation = queries.ModelValidation('Evaluator', 'r1', '/e', None, None, False,
                                       [queries.SliceMetrics('user_gender=X', values)], [], [])
  [evaluation] = json.loads(tables.to_json([validation]))
  assert evaluation['slices'][0]['metrics'] == {'example_count': 0, 'max_error': None, 'mean_label': 3.5,
                                                'min_error': None, 'root_mean_squared_error': None}


def test_segment_gate_section_says_when_the_minimum_of_examples_is_not_recorded():
  from inspection import report  # pylint: disable=g-import-not-at-top
  # An execution without the min_examples setting: before, the sentence read 'at least None eval examples'.
  gate = queries.segment_gate_report('ranking_segment_gate', {'passed': True, 'overall_rmse': 0.9, 'segments': []},
                                     max_margin=None, min_examples=None)
  section = report._segment_gate_section([gate])  # pylint: disable=protected-access
  assert 'None' not in section
  assert ('<p>Overall RMSE 0.9000; a gated segment (the minimum of eval examples is not recorded) may be at most '
          'not recorded stars above it (the dashed line).</p>') in section
  recorded = queries.segment_gate_report('ranking_segment_gate', {'passed': True, 'overall_rmse': 0.9,
                                                                  'segments': []}, max_margin=0.08, min_examples=500)
  assert ('<p>Overall RMSE 0.9000; a segment with at least 500 eval examples may be at most 0.08 stars above it '
          '(the dashed line).</p>') in report._segment_gate_section([recorded])  # pylint: disable=protected-access
