"""Reads the raw interaction examples the retrieval Trainer receives: training pairs and the item catalogue.

The retrieval Trainer takes ExampleGen's raw examples (not Transform's materialized ones) together with the
Transform graph, because the candidate set must hold every item of the catalogue with its raw `item_id`,
including items that appear only in the evaluation split (their id is out of vocabulary, but their `item_*`
features still place them). Features are transformed here with the Transform layer, so vocabularies are the
ones the ranking model uses.
"""

from typing import Dict, Sequence

from absl import logging
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from ingestion import attributes
from ingestion import example_columns
from ingestion import examples
from ingestion.interactions import ColumnType
from schema import features
from trainer.common import inputs
from trainer.common.feature_specs import RawFeatureSpec

# Rows parsed and transformed per step (not the training batch size).
_READ_BATCH_SIZE = 4096


def user_feature_spec(tf_transform_output: tft.TFTransformOutput) -> Dict[str, RawFeatureSpec]:
  """The raw columns a query is parsed from: `user_id` and every `user_*` column of the raw schema."""
  return {k: v for k, v in tf_transform_output.raw_feature_spec().items()
          if k == features.USER_ID or features.is_user_feature(k)}


def item_feature_spec(tf_transform_output: tft.TFTransformOutput) -> Dict[str, RawFeatureSpec]:
  """The raw columns a candidate is parsed from: `item_id` and every `item_*` column of the raw schema."""
  return {k: v for k, v in tf_transform_output.raw_feature_spec().items()
          if k == features.ITEM_ID or features.is_item_feature(k)}


def transformed_pairs(file_patterns: Sequence[str], tf_transform_output: tft.TFTransformOutput,
                      transform_layer: tf.keras.layers.Layer) -> tf.data.Dataset:
  """Batches of interactions: the transformed user and item features plus the raw `item_id`.

  Args:
    file_patterns: the split's raw example files.
    tf_transform_output: the Transform graph (its raw schema parses the examples).
    transform_layer: `tf_transform_output.transform_features_layer()`, created once by the caller.

  Returns:
    A dataset of batches (dicts keyed by transformed names, plus `features.ITEM_ID`, string `[batch]`), in file
    order; `trainer.common.inputs.in_memory` reads it into memory.
  """
  spec = {**user_feature_spec(tf_transform_output), **item_feature_spec(tf_transform_output)}

  # Traced without AutoGraph (trainer/common/tracing.py says why): nothing here tests a tensor.
  @tf.autograph.experimental.do_not_convert
  def parsed_and_transformed(batch: tf.Tensor) -> Dict[str, tf.Tensor]:
    return _transformed_with_item_id(transform_layer, tf.io.parse_example(batch, spec))

  return example_columns.serialized_examples(file_patterns).batch(_READ_BATCH_SIZE).map(parsed_and_transformed)


def item_shares(pairs: inputs.InMemorySplit, num_item_indices: int) -> np.ndarray:
  """Each item's share of the interactions in `pairs`, indexed by transformed `item_id`.

  Args:
    pairs: the interactions (`transformed_pairs`, read into memory).
    num_item_indices: the item vocabulary size plus its out-of-vocabulary buckets.

  Returns:
    float64 `[num_item_indices]` summing to 1.

  Raises:
    ValueError: if `pairs` is empty, or holds an item index outside [0, num_item_indices).
  """
  item_indices = np.reshape(pairs.columns[features.transformed_name(features.ITEM_ID)].numpy(), [-1])
  outside = item_indices[(item_indices < 0) | (item_indices >= num_item_indices)]
  if outside.size:
    raise ValueError(f'Item index {int(outside[0])} is outside [0, num_item_indices={num_item_indices}); pass the '
                     'item vocabulary size plus its out-of-vocabulary buckets (the item id feature\'s input_dim).')
  counts = np.bincount(item_indices, minlength=num_item_indices).astype(np.float64)
  if counts.sum() == 0:
    raise ValueError('The training split holds no interactions; check the interactions file and the split.')
  return counts / counts.sum()


def _transformed_with_item_id(transform_layer: tf.keras.layers.Layer,
                              raw: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
  """Transformed features plus the raw item id, string `[batch]` (FactorizedTopK's identifiers)."""
  transformed = dict(transform_layer(raw))
  transformed[features.ITEM_ID] = tf.reshape(raw[features.ITEM_ID], [-1])
  return transformed


def catalogue_examples(file_patterns: Sequence[str]) -> tf.Tensor:
  """One serialized example per distinct item of the files: the candidate catalogue.

  Each example holds the item's `item_id` and, for every `item_*` column, its latest non-missing value over the
  item's rows (`ingestion.attributes`, the rule of the serving catalogue and the item catalog too).

  Args:
    file_patterns: raw example files of every split whose items are candidates (train and eval).

  Returns:
    string `[num_items]`, items in order of first appearance.
  """
  item_attributes = attributes.LatestAttributes()
  column_types: Dict[str, ColumnType] = {}
  for columns, types in example_columns.column_batches(file_patterns):
    item_columns = {c: columns[c] for c in columns if c == features.ITEM_ID or features.is_item_feature(c)}
    column_types.update((c, types[c]) for c in item_columns)
    item_attributes.add_columns(columns[features.ITEM_ID], example_columns.timestamps(columns), item_columns)
  if item_attributes.varying_key_count():
    logging.info('%d catalogue items have item_* values that differ between their rows; each column takes its '
                 'latest value.', item_attributes.varying_key_count())
  serialized = [examples.serialize_example(item_attributes.attributes(item_id), column_types)
                for item_id in item_attributes.keys()]
  return tf.constant(np.array(serialized, dtype=object), dtype=tf.string)
