"""Reads Transform's materialized examples into batched tf.data datasets for training and evaluation."""

from typing import Dict, List, Union

import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

# Rows read per step while loading a split into memory (not the training batch size).
_READ_BATCH_SIZE = 4096
# Hash buckets of the row keys that put a split in canonical order (2^62: collisions are left in stored order).
_ORDER_HASH_BUCKETS = 2**62


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


def in_canonical_order(split: tf.data.Dataset) -> tf.data.Dataset:
  """The same elements in an order that depends only on their values, not on the order they were stored in.

  Beam writes ExampleGen's and Transform's outputs in an order that changes from run to run, so without this the
  training shuffle and the validation slice (and with them the trained model) differ between two runs of the same
  data. Each row's key is a hash of its dense integer and string features (names sorted): ids, vocabulary indices,
  segment labels. Float features are left out of the key, as analyzers' sums can differ in the last bits between
  runs, and token bags too. Rows are sorted by the key (stable: rows with equal keys keep their stored order).

  Args:
    split: an unbatched dataset of dicts: dense features (scalars) and SparseTensor features `[None]`; held in
      memory at once (as the callers' cache holds it anyway).

  Returns:
    An unbatched, cached dataset with the same features; a token bag's rows become SparseTensors `[width]` (the
    widest bag of the split) instead of `[None]`, which the sparse embedding lookups read the same way.
  """
  chunks = list(split.batch(_READ_BATCH_SIZE))
  if not chunks:
    return split
  columns = {key: (tf.sparse.concat(0, [chunk[key] for chunk in chunks], expand_nonconcat_dims=True)
                   if isinstance(value, tf.SparseTensor) else tf.concat([chunk[key] for chunk in chunks], 0))
             for key, value in chunks[0].items()}
  dense_keys = sorted(k for k, v in columns.items()
                      if not isinstance(v, tf.SparseTensor) and (v.dtype.is_integer or v.dtype == tf.string))
  if not dense_keys:
    raise ValueError('A canonical order needs at least one dense integer or string feature (e.g. the user id) to '
                     'key the rows on.')
  row_keys = tf.strings.join([_as_text(columns[k]) for k in dense_keys], separator='|')
  order = tf.argsort(tf.strings.to_hash_bucket_fast(row_keys, _ORDER_HASH_BUCKETS), stable=True)
  ordered: Dict[str, Union[tf.Tensor, tf.SparseTensor]] = {}
  for key, value in columns.items():
    if isinstance(value, tf.SparseTensor):
      # Sliced rows of an `[N, width]` SparseTensor are `[width]` SparseTensors: batches of them stay sparse.
      ordered[key] = tf.gather(tf.RaggedTensor.from_sparse(value), order).to_sparse()
    else:
      ordered[key] = tf.gather(value, order)
  return tf.data.Dataset.from_tensor_slices(ordered).cache()


def _as_text(values: tf.Tensor) -> tf.Tensor:
  """One string per row of a dense integer or string `[N, ...]` feature (a row's values joined by ',')."""
  if values.dtype != tf.string:
    values = tf.strings.as_string(values)
  return tf.strings.reduce_join(tf.reshape(values, [tf.shape(values)[0], -1]), axis=1, separator=',')
