"""trainer.common.tracing: Keras traces the models' steps without AutoGraph."""

import pytest
import tensorflow as tf
import tensorflow_recommenders as tfrs

from trainer.common import tracing

# Two batches of one invented feature: the sum of the first is positive, of the second negative.
BATCHES = [{'x': tf.constant([1.0, 2.0])}, {'x': tf.constant([-3.0, 1.0])}]


class _BranchesOnTensor(tfrs.models.Model):
  """Loss w * |sum(x)| written with a Python `if` on a tensor, which only AutoGraph can trace (as a tf.cond)."""

  def __init__(self) -> None:
    super().__init__()
    self.w = tf.Variable(1.0)

  def compute_loss(self, inputs, training=False):
    total = tf.reduce_sum(inputs['x'])
    if total > 0:
      return self.w * total
    return -self.w * total


class _BranchesOnTensorUnconverted(tracing.StepsTracedWithoutAutograph, _BranchesOnTensor):
  pass


def _evaluate(model: tfrs.models.Model) -> float:
  model.compile(optimizer=tf.keras.optimizers.SGD(0.1))
  return model.evaluate(tf.data.Dataset.from_tensor_slices(BATCHES[1]).batch(2), return_dict=True)['loss']


def test_the_same_model_traced_with_autograph_evaluates_the_python_if():
  # sum(x) = -2 for the evaluated batch, so the `else` branch: -1 * -2 = 2.
  assert _evaluate(_BranchesOnTensor()) == pytest.approx(2.0)


def test_steps_are_traced_without_autograph():
  with pytest.raises(TypeError, match='symbolic `tf.Tensor` as a Python `bool` is not allowed'):
    _evaluate(_BranchesOnTensorUnconverted())


def test_training_steps_are_traced_without_autograph():
  model = _BranchesOnTensorUnconverted()
  model.compile(optimizer=tf.keras.optimizers.SGD(0.1))
  with pytest.raises(TypeError, match='symbolic `tf.Tensor` as a Python `bool` is not allowed'):
    model.fit(tf.data.Dataset.from_tensor_slices(BATCHES[0]).batch(2), verbose=0)


def test_retrieval_task_is_converted_even_where_the_step_is_not():
  # Two users, two items, embeddings the unit vectors: scores are the identity matrix, each user's positive is
  # its own item. Softmax cross-entropy per user: -log(e / (e + 1)) = log(1 + 1/e) = 0.313262; TFRS sums them.
  from trainer.retrieval import model as retrieval_model  # pylint: disable=g-import-not-at-top
  unit = tf.constant([[1.0, 0.0], [0.0, 1.0]])

  def loss_of(task: tfrs.tasks.Retrieval) -> tf.Tensor:
    return tf.function(lambda: task(unit, unit, compute_metrics=False), autograph=False)()

  assert float(loss_of(retrieval_model.RetrievalTask())) == pytest.approx(2 * 0.313262, abs=1e-5)
  with pytest.raises(TypeError, match='len is not well defined'):
    loss_of(tfrs.tasks.Retrieval())
