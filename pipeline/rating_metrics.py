"""Rating error metrics for TFMA in one pass: RMSE, its standard error, MAE, mean label and mean prediction per slice.

The ranking Evaluator reports five metrics of the predicted ratings on every slice (overall and each segment).
As separate TFMA metrics (Keras' RootMeanSquaredError and MeanAbsoluteError wrapped by TFMA, TFMA's MeanLabel
and MeanPrediction) each one walks every example of every slice on its own; here one combiner sums what all five
need, once per example, and the five (those four and the RMSE's standard error) are derived from its sums:

- weight: sum of example weights w (1 per example unless the Evaluator is example-weighted);
- squared_error, absolute_error: sum of w * (label - prediction)^2 and w * |label - prediction| (stars^2, stars);
- label, prediction: sum of w * label and w * prediction (stars);
- squared_weight, squared_weight_squared_error, squared_weight_fourth_power_error: sum of w^2, w^2 * e^2 and
  w^2 * e^4 (e = label - prediction), what the standard error of the mean squared error needs.

The standard error of the RMSE (`rmse_standard_error`, stars) says how far a slice's RMSE could move by the
draw of its examples alone: the mean squared error m = sum w e^2 / sum w has the plug-in variance
sum w^2 (e^2 - m)^2 / (sum w)^2 (with unit weights (mean(e^4) - m^2) / n), and by the delta method the RMSE's
standard error is sqrt(that variance) / (2 sqrt(m)). A segment of 500 MovieLens ratings has one of about 0.03.

The metrics keep TFMA's names (`root_mean_squared_error`, `mean_absolute_error`, `mean_label`,
`mean_prediction`; `rmse_standard_error` is ours), so thresholds, the segment gate and the notebooks read them unchanged. They are configured
with `module='pipeline.rating_metrics'` and the class names below (TFMA's own MeanLabel would shadow a class of
the same name).
"""

import dataclasses
import math
from typing import Any, Callable, Dict, Iterable, Optional

import apache_beam as beam
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import metric_types
from tensorflow_model_analysis.metrics import metric_util

MODULE = __name__

RMSE_NAME = 'root_mean_squared_error'
MAE_NAME = 'mean_absolute_error'
MEAN_LABEL_NAME = 'mean_label'
MEAN_PREDICTION_NAME = 'mean_prediction'
RMSE_STANDARD_ERROR_NAME = 'rmse_standard_error'
_SUMS_NAME = '_rating_error_sums'


@dataclasses.dataclass
class RatingErrorSums:
  """Weighted sums over a slice's examples (see the module docstring)."""
  weight: float = 0.0
  squared_error: float = 0.0
  absolute_error: float = 0.0
  label: float = 0.0
  prediction: float = 0.0
  squared_weight: float = 0.0
  squared_weight_squared_error: float = 0.0
  squared_weight_fourth_power_error: float = 0.0

  def merge(self, other: 'RatingErrorSums') -> None:
    """Adds `other`'s sums to these, in place."""
    for field in dataclasses.fields(self):
      setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))


class _RatingErrorSumsCombiner(beam.CombineFn):
  """Sums weights, errors, labels and predictions of one model's output over a slice."""

  def __init__(self, key: metric_types.MetricKey, eval_config: Optional[tfma.EvalConfig],
               example_weighted: bool):
    self._key = key
    self._eval_config = eval_config
    self._example_weighted = example_weighted

  def create_accumulator(self) -> RatingErrorSums:
    return RatingErrorSums()

  def add_input(self, accumulator: RatingErrorSums,
                element: metric_types.StandardMetricInputs) -> RatingErrorSums:
    for label, prediction, example_weight in metric_util.to_label_prediction_example_weight(
        element, eval_config=self._eval_config, model_name=self._key.model_name,
        output_name=self._key.output_name, example_weighted=self._example_weighted):
      # Each is a one-element array (TFMA flattens the output to one value per example).
      weight = float(metric_util.safe_to_scalar(example_weight))
      label = float(metric_util.safe_to_scalar(label))
      prediction = float(metric_util.safe_to_scalar(prediction))
      error = label - prediction
      accumulator.weight += weight
      accumulator.squared_error += weight * error * error
      accumulator.absolute_error += weight * abs(error)
      accumulator.label += weight * label
      accumulator.prediction += weight * prediction
      accumulator.squared_weight += weight * weight
      accumulator.squared_weight_squared_error += weight * weight * error * error
      accumulator.squared_weight_fourth_power_error += weight * weight * error ** 4
    return accumulator

  def merge_accumulators(self, accumulators: Iterable[RatingErrorSums]) -> RatingErrorSums:
    accumulators = iter(accumulators)
    result = next(accumulators)
    for accumulator in accumulators:
      result.merge(accumulator)
    return result

  def extract_output(self, accumulator: RatingErrorSums) -> Dict[metric_types.MetricKey, RatingErrorSums]:
    return {self._key: accumulator}


def _from_sums(name: str, value_of_sums: Callable[[RatingErrorSums], float],
               eval_config: Optional[tfma.EvalConfig], model_name: str, output_name: str,
               example_weighted: bool) -> metric_types.MetricComputations:
  """The sums computation (the same for every metric of a model and output) plus `name` derived from it."""
  sums_key = metric_types.MetricKey(name=_SUMS_NAME, model_name=model_name, output_name=output_name,
                                    example_weighted=example_weighted)
  key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name,
                               example_weighted=example_weighted)

  def result(metrics: Dict[metric_types.MetricKey, Any]) -> Dict[metric_types.MetricKey, float]:
    sums = metrics[sums_key]
    return {key: value_of_sums(sums) if sums.weight > 0 else float('nan')}

  return [
      metric_types.MetricComputation(
          keys=[sums_key], preprocessors=None,
          combiner=_RatingErrorSumsCombiner(sums_key, eval_config, example_weighted)),
      metric_types.DerivedMetricComputation(keys=[key], result=result),
  ]


class _RatingMetric(metric_types.Metric):
  """A metric derived from the shared sums: a subclass sets its DEFAULT_NAME and `value_of_sums`."""
  DEFAULT_NAME = ''

  def __init__(self, name: Optional[str] = None) -> None:
    value_of_sums = self.value_of_sums

    # TFMA passes a computation function only the arguments its signature names, so this one lists them.
    def computations(name: str, eval_config: Optional[tfma.EvalConfig] = None, model_name: str = '',
                     output_name: str = '', example_weighted: bool = False) -> metric_types.MetricComputations:
      return _from_sums(name, value_of_sums, eval_config, model_name, output_name, example_weighted)

    super().__init__(metric_util.merge_per_key_computations(computations), name=name or self.DEFAULT_NAME)

  @staticmethod
  def value_of_sums(sums: RatingErrorSums) -> float:
    """The metric's value from a slice's sums (weight > 0)."""
    raise NotImplementedError


class RatingRMSE(_RatingMetric):
  """Root mean squared error of the predicted rating (stars): sqrt(sum w (y - p)^2 / sum w)."""
  DEFAULT_NAME = RMSE_NAME

  @staticmethod
  def value_of_sums(sums: RatingErrorSums) -> float:
    return math.sqrt(sums.squared_error / sums.weight)


class RatingMAE(_RatingMetric):
  """Mean absolute error of the predicted rating (stars): sum w |y - p| / sum w."""
  DEFAULT_NAME = MAE_NAME

  @staticmethod
  def value_of_sums(sums: RatingErrorSums) -> float:
    return sums.absolute_error / sums.weight


class RatingMeanLabel(_RatingMetric):
  """Mean rating given (stars): sum w y / sum w."""
  DEFAULT_NAME = MEAN_LABEL_NAME

  @staticmethod
  def value_of_sums(sums: RatingErrorSums) -> float:
    return sums.label / sums.weight


class RatingMeanPrediction(_RatingMetric):
  """Mean predicted rating (stars): sum w p / sum w."""
  DEFAULT_NAME = MEAN_PREDICTION_NAME

  @staticmethod
  def value_of_sums(sums: RatingErrorSums) -> float:
    return sums.prediction / sums.weight


class RatingRMSEStandardError(_RatingMetric):
  """Standard error of the RMSE over the slice's examples (stars), by the delta method (module docstring).

  It is 0 where the plug-in variance is: a slice of one example, or one whose squared errors are all equal (e.g.
  every prediction exact); NaN for a slice without weight, as the other metrics.
  """
  DEFAULT_NAME = RMSE_STANDARD_ERROR_NAME

  @staticmethod
  def value_of_sums(sums: RatingErrorSums) -> float:
    mse = sums.squared_error / sums.weight
    if mse <= 0.0:
      return 0.0  # every prediction exact: nothing to vary
    # sum w^2 (e^2 - m)^2, expanded into the accumulated sums; clipped at 0 against rounding.
    spread = max(sums.squared_weight_fourth_power_error - 2.0 * mse * sums.squared_weight_squared_error +
                 mse * mse * sums.squared_weight, 0.0)
    return math.sqrt(spread) / sums.weight / (2.0 * math.sqrt(mse))
