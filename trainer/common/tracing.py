"""Traces the models' Keras training and evaluation steps without AutoGraph.

AutoGraph rewrites every Python function a traced step calls unless a rule exempts its module; TensorFlow 2.16
exempts `keras` but not `tf_keras` (Keras 2, which TFRS needs) nor `tensorflow_recommenders`, so each trace
re-parses and rewrites the source of every Keras layer and TFRS task it meets. On the 2-core machine that cost
14.0 s of the ranking trainer's first step (2.7 s without it; `benchmarks/trainer_phases.py` prints it).

Only code that never branches on a tensor in Python can do without it. The ranking model qualifies (its `if`/`for`
test configuration, and TFRS's Ranking task none); should it ever test a tensor, tracing fails loudly ("using a
symbolic tf.Tensor as a Python bool is not allowed"), it does not compute something else. TFRS 0.7's Retrieval
task calls `len(tf.shape(...))`, which only AutoGraph traces: the retrieval model converts that task alone
(`trainer.retrieval.model.RetrievalTask`), so its first step takes 3.6 s instead of 10.9 s.
"""

from typing import Any, Dict

import tensorflow as tf


class StepsTracedWithoutAutograph:
  """Mixin for `tfrs.models.Model` subclasses (put it first): `fit`/`evaluate` trace their steps unconverted.

  `tf.autograph.experimental.do_not_convert` disables AutoGraph for everything the step calls, Keras layers
  included (they convert `call` only while AutoGraph is enabled).
  """

  @tf.autograph.experimental.do_not_convert
  def train_step(self, inputs: Dict[str, tf.Tensor]) -> Dict[str, Any]:
    """One optimisation step on a batch (tfrs.models.Model's), traced without AutoGraph."""
    return super().train_step(inputs)  # type: ignore[misc]

  @tf.autograph.experimental.do_not_convert
  def test_step(self, inputs: Dict[str, tf.Tensor]) -> Dict[str, Any]:
    """One evaluation step on a batch (tfrs.models.Model's), traced without AutoGraph."""
    return super().test_step(inputs)  # type: ignore[misc]
