"""Two-tower retrieval model: a user (query) tower and an item (candidate) tower trained with in-batch softmax."""

from typing import Dict, Optional, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from schema import features
from trainer.common.encoders import FeatureEncoder
from trainer.common.feature_specs import FeatureSpec, TowerFeatures
from trainer.common.tracing import StepsTracedWithoutAutograph
from trainer.retrieval.hparams import RetrievalHyperparameters

# Cut-offs of the FactorizedTopK accuracies reported on evaluation.
TOP_K_METRIC_CUTOFFS = (10, 100)


class Tower(tf.keras.Model):
  """Maps one side's transformed features to an embedding: encoder -> ReLU layers -> linear projection.

  With `normalize_embeddings` the output has unit L2 norm, so a query-candidate score is a cosine.
  """

  def __init__(self, specs: Sequence[FeatureSpec], hparams: RetrievalHyperparameters, name: str) -> None:
    super().__init__(name=name)
    self.encoder = FeatureEncoder(specs, hparams.id_embedding_dim, hparams.feature_embedding_dim,
                                  hparams.embedding_l2, name=f'{name}_encoder')
    layers = [tf.keras.layers.Dense(units, activation='relu') for units in hparams.hidden_units]
    layers.append(tf.keras.layers.Dense(hparams.embedding_dim))
    self.projection = tf.keras.Sequential(layers, name=f'{name}_projection')
    self._normalize = hparams.normalize_embeddings

  @property
  def specs(self) -> Sequence[FeatureSpec]:
    return self.encoder.specs

  def call(self, inputs: Dict[str, tf.Tensor]) -> tf.Tensor:
    """Args: inputs: transformed features (extra keys ignored). Returns: float32 `[batch, embedding_dim]`."""
    embedding = self.projection(self.encoder(inputs))
    return tf.math.l2_normalize(embedding, axis=1) if self._normalize else embedding


class RetrievalTask(tfrs.tasks.Retrieval):
  """TFRS's Retrieval task, its `call` converted by AutoGraph once, here, whatever the caller's tracing.

  TFRS 0.7's `Retrieval.call` tests `len(tf.shape(query_embeddings))`, which only AutoGraph can trace; the
  model's steps are traced without AutoGraph (`StepsTracedWithoutAutograph`), so this call brings its own
  conversion. Converting only the task (and what it calls) instead of the whole step: the retrieval model's first
  training step took 3.6 s instead of 10.9 s, with the same losses (on MovieLens 100K, 2-core machine;
  `benchmarks/trainer_phases.py --trainer retrieval`).
  """

  def __init__(self, **kwargs) -> None:
    # Converted when the first task is built, not at import: processes that only serve import this module (for
    # `Tower`) and need not pay for the conversion (~0.2 s).
    if RetrievalTask.call is tfrs.tasks.Retrieval.call:
      RetrievalTask.call = tf.autograph.to_graph(tfrs.tasks.Retrieval.call)
    super().__init__(**kwargs)


class RetrievalModel(StepsTracedWithoutAutograph, tfrs.models.Model):
  """In-batch softmax over (user, item) interactions; FactorizedTopK over the catalogue on evaluation only.

  Each training row's item is the positive of its user; the other items of the batch are the negatives.
  Logits are divided by `temperature`, and optionally corrected for the popularity-proportional sampling of
  the negatives (see `__init__`).
  """

  def __init__(self, tower_features: TowerFeatures, hparams: RetrievalHyperparameters,
               item_sampling_probability: Optional[np.ndarray] = None) -> None:
    """Args:
      tower_features: the features of the user side (query tower) and of the item side (candidate tower).
      hparams: the model's configuration.
      item_sampling_probability: float `[item vocabulary size + OOV buckets]`, each item's share of the
        training interactions, indexed by transformed `item_id`. When given, the log of the positive item's
        share is subtracted from its logits (sampling-bias correction: in-batch negatives are drawn in
        proportion to popularity, and without it the scores lose the popularity signal). None disables it.
    """
    super().__init__()
    self.query_tower = Tower(tower_features.user, hparams, name='query_tower')
    self.candidate_tower = Tower(tower_features.item, hparams, name='candidate_tower')
    self.task = RetrievalTask(temperature=hparams.temperature, remove_accidental_hits=hparams.remove_accidental_hits)
    self._item_sampling_probability = None
    if item_sampling_probability is not None:
      self._item_sampling_probability = tf.constant(item_sampling_probability, tf.float32)

  def measure_top_k_against(self, catalogue_index: tfrs.layers.factorized_top_k.TopK,
                            ks: Sequence[int] = TOP_K_METRIC_CUTOFFS) -> None:
    """Makes evaluation compute FactorizedTopK accuracies against `catalogue_index` (items by raw id).

    Set after training, with the catalogue embedded by the trained candidate tower, so evaluation scores every
    item once instead of re-embedding the catalogue per batch.
    """
    # A list: TFRS 0.7.7's setter silently drops a metric passed on its own.
    self.task.factorized_metrics = [tfrs.metrics.FactorizedTopK(candidates=catalogue_index, ks=ks)]

  def compute_loss(self, inputs: Dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
    """Softmax cross-entropy of each user against the batch's items (plus regularisation, added by tfrs).

    Args:
      inputs: a batch of interactions: transformed features `[batch]` and raw item ids string `[batch]`.
      training: True while fitting; top-K metrics are computed only when False (they score the catalogue).
    """
    query_embeddings = self.query_tower(inputs)
    candidate_embeddings = self.candidate_tower(inputs)
    sampling_probability = None
    if self._item_sampling_probability is not None:
      sampling_probability = tf.gather(
          self._item_sampling_probability, tf.reshape(inputs[features.transformed_name(features.ITEM_ID)], [-1]))
    return self.task(query_embeddings, candidate_embeddings, candidate_sampling_probability=sampling_probability,
                     candidate_ids=inputs[features.ITEM_ID], compute_metrics=not training)
