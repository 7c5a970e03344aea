"""Reads Transform's materialized examples into batched tf.data datasets for training and evaluation."""

from typing import List

import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

# Rows read per step while loading a split into memory (not the training batch size).
_READ_BATCH_SIZE = 4096


def load_split(file_pattern: List[str], data_accessor: tfx.components.DataAccessor,
               tf_transform_output: tft.TFTransformOutput) -> tf.data.Dataset:
  """Reads a split of transformed examples once and caches it in memory, one element per interaction.

  Args:
    file_pattern: the split's transformed example files (Trainer's `fn_args.train_files`/`eval_files`).
    data_accessor: the Trainer's data accessor.
    tf_transform_output: the Transform graph, whose transformed schema parses the examples.

  Returns:
    A dataset of feature dicts keyed by transformed names (label included), unbatched and cached.
  """
  dataset = data_accessor.tf_dataset_factory(
      file_pattern,
      tfxio.TensorFlowDatasetOptions(batch_size=_READ_BATCH_SIZE, num_epochs=1, shuffle=False),
      tf_transform_output.transformed_metadata.schema)
  return dataset.unbatch().cache()


def training_batches(split: tf.data.Dataset, batch_size: int, seed: int) -> tf.data.Dataset:
  """Shuffles (anew each epoch) and batches a cached split for `model.fit`."""
  return split.shuffle(200_000, seed=seed, reshuffle_each_iteration=True).batch(batch_size).prefetch(
      tf.data.AUTOTUNE)


def evaluation_batches(split: tf.data.Dataset, batch_size: int) -> tf.data.Dataset:
  """Batches a cached split in its stored order."""
  return split.batch(batch_size).prefetch(tf.data.AUTOTUNE)
