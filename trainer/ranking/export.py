"""Exports the ranking model as a self-contained SavedModel for TF Serving and TFMA.

Signatures (both take `examples`: string `[batch]` of serialized tf.Example with the raw interaction columns,
`rating` absent or ignored):

* `serving_default` -> `predictions`: float32 `[batch, 1]`, predicted stars.
* `transform_features` -> the dense Transform outputs (e.g. `user_age_bucket`), which the Evaluator uses to
  slice metrics by user segment.

The Transform graph is attached to the saved object, so the export answers after the pipeline's Transform
output is deleted. The export is a plain SavedModel (signatures and variables), not a Keras model:
`tf.saved_model.load` reads it, `tf.keras.models.load_model` does not.
"""

from typing import Dict

import tensorflow as tf
import tensorflow_transform as tft

from schema import features
from trainer.common.feature_specs import RawFeatureSpec
from trainer.common.transform_layer import ExportedTransform

SERVING_SIGNATURE = 'serving_default'
TRANSFORM_SIGNATURE = 'transform_features'
EXAMPLES_INPUT = 'examples'
PREDICTIONS_OUTPUT = 'predictions'


def serving_feature_spec(tf_transform_output: tft.TFTransformOutput
                         ) -> Dict[str, RawFeatureSpec]:
  """The raw feature spec a serving request is parsed with: every raw column but the label.

  A column the schema lets be missing (`value_count` without `shape`, e.g. `recent_rating`) is a VarLenFeature,
  parsed as a SparseTensor; the others are FixedLenFeatures.
  """
  spec = dict(tf_transform_output.raw_feature_spec())
  spec.pop(features.LABEL_KEY, None)
  return spec


def export_ranking_model(model: tf.keras.Model, tf_transform_output: tft.TFTransformOutput,
                         export_dir: str) -> None:
  """Saves `model` with the Transform layer and the serving signatures to `export_dir`.

  Args:
    model: the trained ranking model; called on transformed features, returns `[batch, 1]`.
    tf_transform_output: the Transform graph the model was trained on.
    export_dir: the Trainer's serving model directory.
  """
  # The saved root is a plain tf.Module holding the model's variables and the Transform graph, not the Keras model:
  # saving a Keras model also traces every layer's `call` for Keras' own loader, which nothing here uses (TF
  # Serving, the Evaluator and serving/ call the signatures). On the fixture run the save took 12.6 s instead of
  # 25.2 s (docs/performance.md). The Transform graph is saved without Keras traces too
  # (trainer/common/transform_layer.py).
  root = tf.Module()
  root.transform = ExportedTransform(tf_transform_output)
  feature_spec = serving_feature_spec(tf_transform_output)

  # Traced without AutoGraph, as the training steps are (trainer/common/tracing.py says why).
  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)], autograph=False)
  def serve_examples(examples: tf.Tensor) -> Dict[str, tf.Tensor]:
    transformed = root.transform(tf.io.parse_example(examples, feature_spec))
    return {PREDICTIONS_OUTPUT: model(transformed)}

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)], autograph=False)
  def transform_features(examples: tf.Tensor) -> Dict[str, tf.Tensor]:
    transformed = root.transform(tf.io.parse_example(examples, feature_spec))
    return {k: v for k, v in transformed.items() if isinstance(v, tf.Tensor)}

  serve_examples.get_concrete_function()  # builds a model that has not been called yet
  root.model_variables = list(model.variables)
  tf.saved_model.save(
      root, export_dir,
      signatures={SERVING_SIGNATURE: serve_examples, TRANSFORM_SIGNATURE: transform_features})
