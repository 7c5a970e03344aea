"""The ranking model: predicts the rating (stars) a user gives an item, trained with mean squared error."""

from typing import Dict, Optional, Sequence, Tuple

import tensorflow as tf
import tensorflow_recommenders as tfrs

from schema import features
from trainer.common.encoders import FeatureEncoder
from trainer.common.feature_specs import FeatureSpec, TowerFeatures
from trainer.common.tracing import StepsTracedWithoutAutograph
from trainer.ranking.hparams import RankingHyperparameters


class RatingNetwork(tf.keras.Model):
  """Rating = network(user encoding ++ item encoding [++ context]) [+ user bias + item bias]
  [+ sum_f (w_f + s_{u,f}) x_f] + rating offset.

  The network is optional deep & cross layers (DCN-v2: x_{l+1} = x0 * (W x_l + b) + x_l, explicit feature
  crosses such as age x genre) followed by the ReLU layers and a linear output, plus an optional
  factorization term <P_u user encoding, P_i item encoding> (matrix factorization over all features).

  The last optional term gives each slope feature x_f (a z-scored context feature such as the user's recent
  rating) a global slope w_f plus a per-user slope s_{u,f} (both start at 0; the per-user ones are L2-penalised).

  The offset (the training mean rating) centres the output so the network learns deviations from it.
  """

  def __init__(self, tower_features: TowerFeatures, hparams: RankingHyperparameters,
               rating_offset: float) -> None:
    super().__init__()
    self.user_encoder = FeatureEncoder(
        tower_features.user, hparams.id_embedding_dim, hparams.feature_embedding_dim, hparams.embedding_l2,
        name='user_encoder')
    self.item_encoder = FeatureEncoder(
        tower_features.item, hparams.id_embedding_dim, hparams.feature_embedding_dim, hparams.embedding_l2,
        name='item_encoder')
    self.context_encoder = None
    if tower_features.context:
      self.context_encoder = FeatureEncoder(
          tower_features.context, hparams.id_embedding_dim, hparams.feature_embedding_dim, hparams.embedding_l2,
          name='context_encoder')
    self.cross_layers = [
        tfrs.layers.dcn.Cross(projection_dim=hparams.cross_projection_dim, kernel_initializer='glorot_uniform',
                              name=f'cross_{i}')
        for i in range(hparams.cross_layers)]
    layers = []
    for units in hparams.hidden_units:
      layers.append(tf.keras.layers.Dense(units, activation='relu'))
      if hparams.dropout:
        layers.append(tf.keras.layers.Dropout(hparams.dropout, seed=hparams.seed))
    layers.append(tf.keras.layers.Dense(1))
    self.rating_layers = tf.keras.Sequential(layers, name='rating_layers')
    self.user_projection = self.item_projection = None
    if hparams.factorization_dim:
      self.user_projection = tf.keras.layers.Dense(hparams.factorization_dim, use_bias=False,
                                                   name='user_projection')
      self.item_projection = tf.keras.layers.Dense(hparams.factorization_dim, use_bias=False,
                                                   name='item_projection')
    self.user_bias = self._bias(tower_features.user, features.USER_ID, hparams, 'user_bias')
    self.item_bias = self._bias(tower_features.item, features.ITEM_ID, hparams, 'item_bias')
    self.rating_offset = float(rating_offset)
    self.slope_keys = [spec.transformed_key for spec in tower_features.slopes]
    self.global_slopes = self.user_slopes = None
    if self.slope_keys:
      user_ids = [s for s in tower_features.user if s.raw_key == features.USER_ID]
      if not user_ids:
        raise ValueError(f'Slope features {[s.raw_key for s in tower_features.slopes]} need the user_id feature '
                         'for per-user slopes; add user_id to user_features.')
      self.global_slopes = tf.keras.layers.Dense(1, use_bias=False, kernel_initializer='zeros',
                                                 name='global_slopes')
      self.user_slopes = tf.keras.layers.Embedding(
          user_ids[0].input_dim, len(self.slope_keys), embeddings_initializer='zeros',
          embeddings_regularizer=tf.keras.regularizers.l2(hparams.user_slope_l2) if hparams.user_slope_l2 else None,
          name='user_slopes')

  @staticmethod
  def _bias(specs: Sequence[FeatureSpec], id_key: str, hparams: RankingHyperparameters,
            name: str) -> Optional[tf.keras.layers.Embedding]:
    """A per-id rating bias (stars, starting at 0) when `bias_terms` is on; else None.

    Raises:
      ValueError: if `bias_terms` is on and the side does not encode `id_key` (the bias is an embedding of it).
    """
    if not hparams.bias_terms:
      return None
    id_specs = [s for s in specs if s.raw_key == id_key]
    if not id_specs:
      raise ValueError(f'bias_terms=True needs the {id_key!r} feature for the {name}, but the side encodes only '
                       f'{[s.raw_key for s in specs]}; add {id_key!r} to its features, or set bias_terms to false.')
    return tf.keras.layers.Embedding(id_specs[0].input_dim, 1, embeddings_initializer='zeros', name=name)

  def call(self, inputs: Dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
    """Args: inputs: transformed features, `[batch]` each (token bags SparseTensor `[batch, None]`). Returns:
    predicted ratings, float32 `[batch, 1]`."""
    return self.rating_and_factors(inputs, training=training)[0]

  def rating_and_factors(self, inputs: Dict[str, tf.Tensor], training: bool = False
                         ) -> Tuple[tf.Tensor, Optional[tf.Tensor], Optional[tf.Tensor]]:
    """The predicted ratings and the factorization term's user and item vectors.

    Args:
      inputs: transformed features, `[batch]` each (token bags SparseTensor `[batch, None]`).
      training: whether dropout is on.

    Returns:
      (ratings float32 `[batch, 1]`; user and item vectors float32 `[batch, factorization_dim]` each, or None
      without a factorization term).
    """
    user_encoded, item_encoded = self.user_encoder(inputs), self.item_encoder(inputs)
    parts = [user_encoded, item_encoded]
    if self.context_encoder is not None:
      parts.append(self.context_encoder(inputs))
    encoded = tf.concat(parts, axis=1)
    crossed = encoded
    for cross in self.cross_layers:
      crossed = cross(encoded, crossed)
    encoded = crossed
    rating = self.rating_layers(encoded, training=training) + self.rating_offset
    user_factors = item_factors = None
    if self.user_projection is not None:
      user_factors, item_factors = self.user_projection(user_encoded), self.item_projection(item_encoded)
      rating += tf.reduce_sum(user_factors * item_factors, axis=1, keepdims=True)
    if self.user_bias is not None:
      rating += self.user_bias(tf.reshape(inputs[features.transformed_name(features.USER_ID)], [-1]))
    if self.item_bias is not None:
      rating += self.item_bias(tf.reshape(inputs[features.transformed_name(features.ITEM_ID)], [-1]))
    if self.slope_keys:
      slope_inputs = tf.concat([tf.reshape(tf.cast(inputs[k], tf.float32), [-1, 1]) for k in self.slope_keys],
                               axis=1)  # [batch, num_slope_features]
      user_slopes = self.user_slopes(tf.reshape(inputs[features.transformed_name(features.USER_ID)], [-1]))
      rating += self.global_slopes(slope_inputs) + tf.reduce_sum(user_slopes * slope_inputs, axis=1, keepdims=True)
    return rating, user_factors, item_factors


def in_batch_softmax_loss(user_factors: tf.Tensor, item_factors: tf.Tensor, temperature: float,
                          item_ids: Optional[tf.Tensor] = None,
                          item_log_probabilities: Optional[tf.Tensor] = None) -> tf.Tensor:
  """Mean cross-entropy of picking each row's own item among the batch's items (the retrieval task's loss).

  Args:
    user_factors: float32 `[batch, d]`, one per interaction.
    item_factors: float32 `[batch, d]`, the interactions' items in the same order.
    temperature: the scores <user, item> are divided by it before the softmax.
    item_ids: int64 `[batch]`, the interactions' items; when given, another row's item that is the row's own item
      again is no negative of that row (TFRS's remove_accidental_hits).
    item_log_probabilities: float32 `[batch]`, log of each row's item's share of the training interactions; when
      given it is subtracted from that item's column of scores (the sampling-bias "logQ" correction: popular items
      are in-batch negatives more often than rare ones).

  Returns:
    Scalar float32: mean over rows r of -log softmax_c(<u_r, i_c> / temperature - log q_c)[r], the columns c of
    accidental hits left out.
  """
  logits = tf.matmul(user_factors, item_factors, transpose_b=True) / temperature  # [batch, batch]
  if item_log_probabilities is not None:
    logits -= tf.reshape(item_log_probabilities, [1, -1])
  if item_ids is not None:
    item_ids = tf.reshape(item_ids, [-1])
    same_item = tf.equal(tf.reshape(item_ids, [-1, 1]), tf.reshape(item_ids, [1, -1]))
    accidental = tf.logical_and(same_item, tf.logical_not(tf.eye(tf.shape(item_ids)[0], dtype=tf.bool)))
    logits = tf.where(accidental, tf.float32.min, logits)
  # Row r's label is column r (sparse labels: 3x faster than a dense identity matrix on a 1,024 batch).
  return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=tf.range(tf.shape(logits)[0]), logits=logits))


class RankingModel(StepsTracedWithoutAutograph, tfrs.models.Model):
  """TFRS wrapper: mean squared error between predicted and given ratings, RMSE as metric; with
  `retrieval_loss_weight` also the retrieval task on the factorization vectors (joint training, as TFRS's
  multitask recommenders): which of the batch's items did each user rate."""

  def __init__(self, tower_features: TowerFeatures, hparams: RankingHyperparameters,
               rating_offset: float, item_log_probabilities: Optional[tf.Tensor] = None) -> None:
    super().__init__()
    self.rating_network = RatingNetwork(tower_features, hparams, rating_offset)
    self.task = tfrs.tasks.Ranking(
        loss=tf.keras.losses.MeanSquaredError(),
        metrics=[tf.keras.metrics.RootMeanSquaredError(name='rmse')])
    self.retrieval_loss_weight = float(hparams.retrieval_loss_weight)
    self.retrieval_loss_temperature = float(hparams.retrieval_loss_temperature)
    self.remove_accidental_hits = bool(hparams.retrieval_remove_accidental_hits)
    self.item_log_probabilities = item_log_probabilities

  def call(self, inputs: Dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
    """Predicted ratings, float32 `[batch, 1]`."""
    return self.rating_network(inputs, training=training)

  def compute_loss(self, inputs: Dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
    """Mean squared error of the batch [+ retrieval_loss_weight x `in_batch_softmax_loss`] (plus regularisation
    losses, added by tfrs.Model). The popularity (logQ) correction applies when `training` only."""
    labels = tf.reshape(inputs[features.transformed_name(features.LABEL_KEY)], [-1, 1])
    rating, user_factors, item_factors = self.rating_network.rating_and_factors(inputs, training=training)
    loss = self.task(labels=labels, predictions=rating)
    if self.retrieval_loss_weight:
      item_ids = tf.reshape(inputs[features.transformed_name(features.ITEM_ID)], [-1])
      # The logQ correction is one of training's sampling (and its table holds the training items only).
      log_q = (tf.gather(self.item_log_probabilities, item_ids)
               if training and self.item_log_probabilities is not None else None)
      loss += self.retrieval_loss_weight * in_batch_softmax_loss(
          user_factors, item_factors, self.retrieval_loss_temperature,
          item_ids=item_ids if self.remove_accidental_hits else None, item_log_probabilities=log_q)
    return loss


class RatingEnsemble(tf.keras.Model):
  """The mean of the predicted ratings of several rating models trained alike with different seeds."""

  def __init__(self, members: Sequence[tf.keras.Model]) -> None:
    super().__init__()
    if not members:
      raise ValueError('RatingEnsemble needs at least one member model.')
    self.members = list(members)

  def call(self, inputs: Dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
    """Predicted ratings, float32 `[batch, 1]`: the members' mean."""
    return tf.add_n([member(inputs, training=training) for member in self.members]) / len(self.members)
