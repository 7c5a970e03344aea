"""The one-pass rating metrics (pipeline/rating_metrics.py) worked by hand, alone and inside TFMA.

Three ratings, worked by hand: labels 4, 2, 5 and predictions 3.5, 3, 5 give errors 0.5, -1, 0, so
RMSE = sqrt((0.25 + 1 + 0) / 3) = sqrt(5/12) = 0.645497, MAE = 1.5 / 3 = 0.5, mean label 11/3, mean
prediction 11.5/3. With example weights 1, 2, 1: RMSE = sqrt((0.25 + 2) / 4) = 0.75, MAE = (0.5 + 2) / 4 = 0.625,
mean label (4 + 4 + 5) / 4 = 3.25, mean prediction (3.5 + 6 + 5) / 4 = 3.625.

The RMSE's standard error: unweighted, the squared errors 0.25, 1, 0 have mean m = 5/12 and the fourth powers
0.0625, 1, 0 mean 17/48, so var(m) = (17/48 - 25/144) / 3 = 13/216 and the standard error is
sqrt(13/216) / (2 sqrt(5/12)) = 0.190029. Weighted 1, 2, 1: m = 0.5625 and sum w^2 (e^2 - m)^2 =
0.09765625 + 4 * 0.19140625 + 0.31640625 = 1.1796875, so sqrt(1.1796875) / 4 / (2 * 0.75) = 0.181023.
"""

import json
import math
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import metric_types

from pipeline import configs, eval_configs, rating_metrics

LABELS = [4.0, 2.0, 5.0]
PREDICTIONS = [3.5, 3.0, 5.0]
WEIGHTS = [1.0, 2.0, 1.0]
METRIC_CLASSES = (rating_metrics.RatingRMSE, rating_metrics.RatingMAE, rating_metrics.RatingMeanLabel,
                  rating_metrics.RatingMeanPrediction, rating_metrics.RatingRMSEStandardError)


def _inputs(label: float, prediction: float, weight: float) -> metric_types.StandardMetricInputs:
  return metric_types.StandardMetricInputs(labels=np.array([label]), predictions=np.array([prediction]),
                                           example_weights=np.array([weight]))


def _compute(example_weighted: bool, batches):
  """Runs each metric's sums combiner over `batches` (lists of (label, prediction, weight)), merges the
  batches' accumulators and derives the metrics, as TFMA does."""
  values = {}
  for metric_class in METRIC_CLASSES:
    computations = metric_class().computations(example_weighted=example_weighted)
    sums, derived = computations
    accumulators = []
    for batch in batches:
      accumulator = sums.combiner.create_accumulator()
      for row in batch:
        accumulator = sums.combiner.add_input(accumulator, _inputs(*row))
      accumulators.append(accumulator)
    merged = sums.combiner.merge_accumulators(accumulators)
    values.update(derived.result(sums.combiner.extract_output(merged)))
  return {key.name: value for key, value in values.items()}


def test_unweighted_metrics_worked_by_hand_across_merged_accumulators():
  rows = list(zip(LABELS, PREDICTIONS, WEIGHTS))
  values = _compute(False, [rows[:1], rows[1:]])  # two accumulators merged: same as one pass
  assert values == pytest.approx({'root_mean_squared_error': math.sqrt(5 / 12), 'mean_absolute_error': 0.5,
                                  'mean_label': 11 / 3, 'mean_prediction': 11.5 / 3,
                                  'rmse_standard_error': math.sqrt(13 / 216) / (2 * math.sqrt(5 / 12))})


def test_example_weights_count_when_the_evaluation_is_weighted():
  values = _compute(True, [list(zip(LABELS, PREDICTIONS, WEIGHTS))])
  assert values == pytest.approx({'root_mean_squared_error': 0.75, 'mean_absolute_error': 0.625,
                                  'mean_label': 3.25, 'mean_prediction': 3.625,
                                  'rmse_standard_error': math.sqrt(1.1796875) / 4 / 1.5})


def test_an_empty_slice_has_no_value_rather_than_a_division_error():
  values = _compute(False, [[]])
  assert all(math.isnan(value) for value in values.values()) and len(values) == 5


def test_the_metrics_share_one_sums_computation_per_model():
  # TFMA drops duplicate computations (same combiner class and keys), so each model's examples are summed once.
  computations = [c for metric_class in METRIC_CLASSES
                  for c in metric_class().computations(model_names=['candidate', 'baseline'])]
  combined = {c for c in computations if isinstance(c, metric_types.MetricComputation)}
  assert sorted(key.model_name for c in combined for key in c.keys) == ['baseline', 'candidate']
  derived = [key for c in computations if isinstance(c, metric_types.DerivedMetricComputation) for key in c.keys]
  assert len(derived) == 10


def _write_examples(path: str, rows) -> None:
  with tf.io.TFRecordWriter(path) as writer:
    for segment, label, prediction in rows:
      example = tf.train.Example(features=tf.train.Features(feature={
          'segment': tf.train.Feature(bytes_list=tf.train.BytesList(value=[segment.encode()])),
          'rating': tf.train.Feature(float_list=tf.train.FloatList(value=[label])),
          'predicted_rating': tf.train.Feature(float_list=tf.train.FloatList(value=[prediction])),
      }))
      writer.write(example.SerializeToString())


def _evaluate(tmp_path, name: str, max_rmse: float):
  """The pipeline's metrics and RMSE bound on the examples of `_write_examples`, whose predictions TFMA reads
  from the examples instead of calling a model; returns ({(slice, metric name): value}, validation result)."""
  pipeline_config = eval_configs.ranking_eval_config(configs.RankingGate(max_rmse=max_rmse),
                                                     segment_columns=['segment'])
  eval_config = tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(label_key='rating', prediction_key='predicted_rating')],
      slicing_specs=pipeline_config.slicing_specs, metrics_specs=pipeline_config.metrics_specs,
      options=pipeline_config.options)
  for metric in eval_config.metrics_specs[0].metrics:
    for per_slice in metric.per_slice_thresholds:
      per_slice.threshold.ClearField('change_threshold')  # no baseline model without a model
  output = os.path.join(tmp_path, name)
  tfma.run_model_analysis(eval_config=eval_config, data_location=os.path.join(tmp_path, 'examples.tfrecord'),
                          output_path=output)
  values = {}
  for metrics_for_slice in tfma.load_metrics(output):
    slice_key = tuple((s.column, s.bytes_value.decode()) for s in metrics_for_slice.slice_key.single_slice_keys)
    for entry in metrics_for_slice.metric_keys_and_values:
      values[(slice_key, entry.key.name)] = entry.value.double_value.value
  return values, tfma.load_validation_result(output)


def test_tfma_computes_them_per_slice_and_gates_on_the_pipelines_rmse_bound(tmp_path):
  # Segment a: the three rows above (RMSE sqrt(5/12) = 0.6455); segment b: label 3, prediction 1 (error 2).
  # Overall: squared errors 0.25 + 1 + 0 + 4 = 5.25 over 4 -> RMSE sqrt(1.3125) = 1.1456.
  rows = [('a', label, prediction) for label, prediction in zip(LABELS, PREDICTIONS)] + [('b', 3.0, 1.0)]
  _write_examples(os.path.join(tmp_path, 'examples.tfrecord'), rows)

  values, validation = _evaluate(tmp_path, 'loose', max_rmse=1.2)
  assert values[((), 'root_mean_squared_error')] == pytest.approx(math.sqrt(1.3125))
  assert values[((('segment', 'a'),), 'root_mean_squared_error')] == pytest.approx(math.sqrt(5 / 12))
  assert values[((('segment', 'b'),), 'mean_absolute_error')] == pytest.approx(2.0)
  assert values[((), 'mean_label')] == pytest.approx(14 / 4)
  assert values[((), 'mean_prediction')] == pytest.approx(12.5 / 4)
  assert values[((('segment', 'a'),), 'example_count')] == 3
  assert values[((('segment', 'a'),), 'rmse_standard_error')] == pytest.approx(
      math.sqrt(13 / 216) / (2 * math.sqrt(5 / 12)))
  assert values[((('segment', 'b'),), 'rmse_standard_error')] == 0.0  # one example: e^4 = 16 = m^2
  assert validation.validation_ok  # 1.1456 < 1.2

  _, validation = _evaluate(tmp_path, 'strict', max_rmse=1.1)
  assert not validation.validation_ok
  failures = [failure for per_slice in validation.metric_validations_per_slice for failure in per_slice.failures]
  assert [failure.metric_key.name for failure in failures] == ['root_mean_squared_error']
  assert failures[0].metric_value.double_value.value == pytest.approx(math.sqrt(1.3125))


def test_the_metric_configs_name_their_values():
  metrics = eval_configs.ranking_eval_config(configs.RankingGate()).metrics_specs[0].metrics
  assert [(m.class_name, json.loads(m.config).get('name') if m.config else None) for m in metrics] == [
      ('ExampleCount', None), ('RatingRMSE', 'root_mean_squared_error'), ('RatingMAE', 'mean_absolute_error'),
      ('RatingMeanLabel', 'mean_label'), ('RatingMeanPrediction', 'mean_prediction'),
      ('RatingRMSEStandardError', 'rmse_standard_error')]
  assert {m.module for m in metrics[1:]} == {'pipeline.rating_metrics'}
