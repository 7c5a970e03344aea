"""Encodes one side's features (a user or an item) into a single dense vector.

Ids get an embedding of `id_embedding_dim`, token bags (genres, occupation, ...) the mean of their tokens'
embeddings of `feature_embedding_dim`, numeric features pass through. The concatenation is the input of the
ranking network and of the retrieval towers.
"""

from typing import Dict, Optional, Sequence

import tensorflow as tf

from trainer.common.feature_specs import FeatureKind, FeatureSpec


class TokenBagEmbedding(tf.keras.layers.Layer):
  """Mean of the embeddings of the tokens in each row; an empty row encodes to zeros.

  Ids below 0 are dropped before the mean (`tf.nn.safe_embedding_lookup_sparse`), so a row of only such ids
  encodes to zeros too; ids at or past `input_dim` are an error.
  """

  def __init__(self, input_dim: int, output_dim: int, l2: float = 0.0, **kwargs) -> None:
    super().__init__(**kwargs)
    self._input_dim = input_dim
    self._output_dim = output_dim
    self._l2 = l2

  def build(self, input_shape: tf.TensorShape) -> None:
    self.embeddings = self.add_weight(
        name='embeddings', shape=(self._input_dim, self._output_dim),
        initializer=tf.keras.initializers.RandomUniform(-0.05, 0.05),
        regularizer=tf.keras.regularizers.l2(self._l2) if self._l2 else None)
    super().build(input_shape)

  def call(self, token_ids: tf.SparseTensor) -> tf.Tensor:
    """Args: token_ids: SparseTensor int64 `[batch, None]`. Returns: float32 `[batch, output_dim]`."""
    return tf.nn.safe_embedding_lookup_sparse(self.embeddings, token_ids, combiner='mean')


class FeatureEncoder(tf.keras.layers.Layer):
  """Concatenates the encodings of a list of transformed features into `[batch, output_dim]`.

  In the order of `specs`: `id_embedding_dim` columns per ID feature, `feature_embedding_dim` per token bag and
  one per numeric feature, so `output_dim` is the sum of those widths.
  """

  def __init__(self, specs: Sequence[FeatureSpec], id_embedding_dim: int, feature_embedding_dim: int,
               embedding_l2: float = 0.0, **kwargs) -> None:
    """Args:
      specs: the features to encode (one side of the model).
      id_embedding_dim: width of the embedding of ID features (user_id, item_id).
      feature_embedding_dim: width of the embeddings of token-bag features.
      embedding_l2: L2 penalty on every embedding weight.

    Raises:
      ValueError: if `specs` is empty.
    """
    super().__init__(**kwargs)
    if not specs:
      raise ValueError('FeatureEncoder needs at least one feature; got an empty feature list.')
    self._specs = list(specs)
    self._encoders: Dict[str, Optional[tf.keras.layers.Layer]] = {}
    regularizer = tf.keras.regularizers.l2(embedding_l2) if embedding_l2 else None
    for spec in self._specs:
      if spec.kind == FeatureKind.ID:
        self._encoders[spec.transformed_key] = tf.keras.layers.Embedding(
            spec.input_dim, id_embedding_dim, embeddings_regularizer=regularizer,
            name=f'{spec.raw_key}_embedding')
      elif spec.kind == FeatureKind.TOKEN_BAG:
        self._encoders[spec.transformed_key] = TokenBagEmbedding(
            spec.input_dim, feature_embedding_dim, l2=embedding_l2, name=f'{spec.raw_key}_embedding')
      else:
        self._encoders[spec.transformed_key] = None

  @property
  def specs(self) -> Sequence[FeatureSpec]:
    return self._specs

  def call(self, inputs: Dict[str, tf.Tensor]) -> tf.Tensor:
    """Args: inputs: transformed features (extra keys ignored). Returns: float32 `[batch, output_dim]`."""
    parts = []
    for spec in self._specs:
      value = inputs[spec.transformed_key]
      encoder = self._encoders[spec.transformed_key]
      if spec.kind == FeatureKind.NUMERIC:
        parts.append(tf.reshape(tf.cast(value, tf.float32), [-1, 1]))
      elif spec.kind == FeatureKind.ID:
        parts.append(encoder(tf.reshape(value, [-1])))
      else:
        parts.append(encoder(value))
    return tf.concat(parts, axis=1)
