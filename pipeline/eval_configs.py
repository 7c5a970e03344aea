"""TFMA evaluation configs: what the Evaluator measures, how it slices, and when it blesses."""

import json
from typing import Any, List, Sequence

import tensorflow_model_analysis as tfma

from pipeline import rating_metrics
from pipeline.configs import RankingGate
from schema import features
from trainer.ranking import export as ranking_export


def ranking_eval_config(gate: RankingGate,
                        segment_columns: Sequence[str] = features.SEGMENT_COLUMNS) -> tfma.EvalConfig:
  """RMSE overall and per user/item segment; blesses when the overall RMSE is at most `gate.max_rmse` (TFMA's
  upper bound is inclusive) and at most `gate.max_rmse_increase` above the baseline's (TFMA skips that check
  while there is no baseline, i.e. on the first run).

  The model is called through its `serving_default` signature on raw examples (TFMA cannot call a TFRS model
  object), its `transform_features` signature supplies derived slicing columns (the age and item popularity
  buckets), and the default metrics are off because a TFRS model has no compiled loss TFMA understands.
  RMSE, its standard error, MAE, mean label and mean prediction come from one pass over each slice
  (`pipeline.rating_metrics`): as Keras and TFMA metrics, one pass each, the Evaluator took 56-72 s on
  MovieLens 100K instead of 35-38 s (benchmarks/evaluator_metrics.py).

  Args:
    gate: the blessing thresholds.
    segment_columns: raw or transformed columns to slice by, one slice spec each.

  Returns:
    The Evaluator's `eval_config`: one TF_GENERIC model spec, the overall slice plus one per segment column,
    and the threshold on the overall slice only (components/segment_gate.py gates the segments).
  """
  rmse_threshold = tfma.MetricThreshold(
      value_threshold=tfma.GenericValueThreshold(upper_bound={'value': gate.max_rmse}),
      change_threshold=tfma.GenericChangeThreshold(
          direction=tfma.MetricDirection.LOWER_IS_BETTER, absolute={'value': gate.max_rmse_increase}))
  return tfma.EvalConfig(
      model_specs=[
          tfma.ModelSpec(
              # A plain SavedModel (trainer/ranking/export.py); named, so TFMA does not first try to load it
              # as a Keras model to find out.
              model_type=tfma.TF_GENERIC,
              signature_name=ranking_export.SERVING_SIGNATURE,
              preprocessing_function_names=[ranking_export.TRANSFORM_SIGNATURE],
              label_key=features.LABEL_KEY,
              prediction_key=ranking_export.PREDICTIONS_OUTPUT)
      ],
      slicing_specs=[tfma.SlicingSpec()] + _segment_slices(segment_columns),
      metrics_specs=[
          tfma.MetricsSpec(metrics=[
              tfma.MetricConfig(class_name='ExampleCount'),
              # The Evaluator gates the overall slice only; components/segment_gate.py gates the segments.
              _rating_metric(
                  rating_metrics.RatingRMSE, rating_metrics.RMSE_NAME,
                  per_slice_thresholds=[
                      tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()], threshold=rmse_threshold)
                  ]),
              _rating_metric(rating_metrics.RatingMAE, rating_metrics.MAE_NAME),
              _rating_metric(rating_metrics.RatingMeanLabel, rating_metrics.MEAN_LABEL_NAME),
              _rating_metric(rating_metrics.RatingMeanPrediction, rating_metrics.MEAN_PREDICTION_NAME),
              # What the segment gate's --segment-margin-standard-errors discounts a segment's margin by.
              _rating_metric(rating_metrics.RatingRMSEStandardError, rating_metrics.RMSE_STANDARD_ERROR_NAME),
          ])
      ],
      options=tfma.Options(include_default_metrics={'value': False}))


def _rating_metric(metric_class: type, name: str, **kwargs: Any) -> tfma.MetricConfig:
  """A metric of `pipeline.rating_metrics`, named explicitly (the name its values and thresholds carry)."""
  return tfma.MetricConfig(class_name=metric_class.__name__, module=rating_metrics.MODULE,
                           config=json.dumps({'name': name}), **kwargs)


def _segment_slices(columns: Sequence[str]) -> List[tfma.SlicingSpec]:
  """One slice spec per column (each column's values are the slices).

  Raises:
    ValueError: if `columns` is one string (it would slice by each of its characters), or holds an empty or a
      repeated name (a repeated slice spec would be computed twice and its segments reported twice).
  """
  if isinstance(columns, (str, bytes)):
    raise ValueError(f'segment_columns={columns!r} is one string, which would slice by each of its characters; '
                     f'pass a sequence of column names, e.g. [{columns!r}].')
  seen = set()
  for column in columns:
    if not isinstance(column, str) or not column:
      raise ValueError(f'segment_columns holds {column!r}; each must be a column name, e.g. '
                       f'{features.SEGMENT_COLUMNS[0]!r}.')
    if column in seen:
      raise ValueError(f'segment_columns names {column!r} twice; list each column once.')
    seen.add(column)
  return [tfma.SlicingSpec(feature_keys=[column]) for column in columns]
