"""Holds a split of examples in memory as columns and serves it as batched tf.data datasets.

A split is read once into columns (one tensor per feature, one row per interaction); training and evaluation
batches gather rows by index. Shuffling indices instead of rows keeps tf.data from slicing and re-batching every
row's tensors each epoch (token bags are sparse, which makes that slow): on the 80,000-row MovieLens train split
one epoch's batches took 1.2 s that way, and carving the validation slice out of a row dataset 7.6 s
(`benchmarks/trainer_phases.py` prints the phases).
"""

import dataclasses
import fractions
from typing import Dict, List, Mapping, Optional, Tuple, Union

import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from schema import features

# Rows read per step while loading a split into memory (not the training batch size).
_READ_BATCH_SIZE = 4096
# Hash buckets of the row keys that put a split in canonical order (2^62: collisions are left in stored order).
_ORDER_HASH_BUCKETS = 2**62
# A share of rows given as a float is read as the nearest fraction p / q with q at most this.
_SHARE_MAX_DENOMINATOR = 10**6

# The float feature that orders rows of equal ids first in `in_canonical_order`: a re-rating after the rating.
INTERACTION_TIME_KEY = features.transformed_name(features.INTERACTION_TIME)

# One column: a dense Tensor `[num_rows, ...]`, or a RaggedTensor `[num_rows, None]` for a token bag.
Column = Union[tf.Tensor, tf.RaggedTensor]
# One batch as the models read it: dense Tensors `[batch, ...]`, SparseTensors `[batch, None]` for token bags.
Batch = Dict[str, Union[tf.Tensor, tf.SparseTensor]]


@dataclasses.dataclass(frozen=True)
class InMemorySplit:
  """A split of examples held in memory, one row per interaction.

  Attributes:
    columns: feature name -> its column (`Column`); all columns have the same number of rows.
  """
  columns: Mapping[str, Column]

  @property
  def num_rows(self) -> int:
    """The number of rows (0 for a split without columns)."""
    for column in self.columns.values():
      return int(column.nrows() if isinstance(column, tf.RaggedTensor) else tf.shape(column)[0])
    return 0

  def rows(self, indices: tf.Tensor) -> 'InMemorySplit':
    """The rows at `indices` (int `[k]`, repeats allowed), in that order."""
    return InMemorySplit({key: tf.gather(column, indices) for key, column in self.columns.items()})

  def batch(self, indices: tf.Tensor) -> Batch:
    """The rows at `indices` (int64 `[batch]`) as a model batch (token bags as SparseTensors)."""
    return {key: rows.to_sparse() if isinstance(rows, tf.RaggedTensor) else rows
            for key, rows in self.rows(indices).columns.items()}


def in_memory(batches: tf.data.Dataset) -> InMemorySplit:
  """Reads a dataset of feature-dict batches (dense Tensors `[batch, ...]`, SparseTensors `[batch, None]`).

  The batches may have any sizes; the split's rows are theirs, in order.
  """
  chunks = list(batches)
  if not chunks:
    return InMemorySplit({key: _empty_column(spec) for key, spec in batches.element_spec.items()})
  columns: Dict[str, Column] = {}
  for key, value in chunks[0].items():
    if isinstance(value, tf.SparseTensor):
      columns[key] = tf.concat([tf.RaggedTensor.from_sparse(chunk[key]) for chunk in chunks], 0)
    else:
      columns[key] = tf.concat([chunk[key] for chunk in chunks], 0)
  return InMemorySplit(columns)


def _empty_column(spec: Union[tf.TensorSpec, tf.SparseTensorSpec]) -> Column:
  """A column without rows for a batch's `spec` (`[batch, ...]`)."""
  if isinstance(spec, tf.SparseTensorSpec):
    return tf.RaggedTensor.from_row_lengths(tf.zeros([0], spec.dtype), tf.zeros([0], tf.int64))
  return tf.zeros([0] + spec.shape.as_list()[1:], spec.dtype)


def load_split(file_pattern: List[str], data_accessor: tfx.components.DataAccessor,
               tf_transform_output: tft.TFTransformOutput) -> InMemorySplit:
  """Reads a split of transformed examples into memory, in the order they are stored.

  Args:
    file_pattern: the split's transformed example files (Trainer's `fn_args.train_files`/`eval_files`).
    data_accessor: the Trainer's data accessor.
    tf_transform_output: the Transform graph, whose transformed schema parses the examples.

  Returns:
    The split's columns, keyed by transformed names (label included).
  """
  dataset = data_accessor.tf_dataset_factory(
      file_pattern,
      tfxio.TensorFlowDatasetOptions(batch_size=_READ_BATCH_SIZE, num_epochs=1, shuffle=False),
      tf_transform_output.transformed_metadata.schema)
  return in_memory(dataset)


def training_batches(split: InMemorySplit, batch_size: int, seed: int) -> tf.data.Dataset:
  """Batches of the split's rows for `model.fit`, in an order shuffled anew each epoch (every row once)."""
  return tf.data.Dataset.range(split.num_rows).shuffle(
      max(split.num_rows, 1), seed=seed, reshuffle_each_iteration=True).batch(batch_size).map(
          split.batch).prefetch(tf.data.AUTOTUNE)


def evaluation_batches(split: InMemorySplit, batch_size: int) -> tf.data.Dataset:
  """Batches of the split's rows in their order."""
  return tf.data.Dataset.range(split.num_rows).batch(batch_size).map(split.batch).prefetch(tf.data.AUTOTUNE)


def every_nth(split: InMemorySplit, every: int) -> Tuple[InMemorySplit, InMemorySplit]:
  """Splits off every `every`-th row (rows 0, every, 2 * every, ...).

  Returns:
    (the other rows, the rows split off), each in the split's order.
  """
  if every < 2:
    raise ValueError(f'every={every} must be >= 2 (every row would be split off).')
  return split_off_share(split, fractions.Fraction(1, every))


def share_as_fraction(share: Union[float, fractions.Fraction]) -> fractions.Fraction:
  """The share of rows `split_off_share` splits off, exactly: a Fraction as it is, a float as the nearest fraction
  p / q with q at most 10^6 (0.05 is 1/20; 0.4999999 is 1/2)."""
  # Only a float is approximated: an exact Fraction (every_nth's 1 / every) with q > 10^6 would move to another one.
  if isinstance(share, fractions.Fraction):
    return share
  return fractions.Fraction(share).limit_denominator(_SHARE_MAX_DENOMINATOR)


def split_off_share(split: InMemorySplit,
                    share: Union[float, fractions.Fraction]) -> Tuple[InMemorySplit, InMemorySplit]:
  """Splits off `share` of the rows, spread evenly: row i when a multiple of q lies in [i * p, (i + 1) * p).

  `share` = p / q in lowest terms (a float is read as the nearest fraction with q <= 10^6, a Fraction as it is):
  of every q consecutive rows exactly p are split off, the first of them row 0. 1/20 splits off rows 0, 20, 40,
  ...; 2/5 rows 0, 2, 5, 7, 10, ... (two in five).

  Returns:
    (the other rows, the rows split off), each in the split's order.
  """
  fraction = share_as_fraction(share)
  if 0 < share < 1 and not 0 < fraction < 1:
    raise ValueError(f'share={share} is read as {fraction} (the nearest fraction with a denominator of at most '
                     f'{_SHARE_MAX_DENOMINATOR}), which would split off none or every row: give a share in '
                     f'[{1 / _SHARE_MAX_DENOMINATOR}, {1 - 1 / _SHARE_MAX_DENOMINATOR}].')
  if not 0 < fraction < 1:
    raise ValueError(f'share={share} must be in (0, 1) (none or every row would be split off).')
  positions = tf.range(split.num_rows, dtype=tf.int64)
  # A multiple of q lies in [i * p, i * p + p) exactly when (-i * p) mod q < p.
  split_off = tf.math.floormod(-positions * fraction.numerator, fraction.denominator) < fraction.numerator
  return (split.rows(tf.boolean_mask(positions, tf.logical_not(split_off))),
          split.rows(tf.boolean_mask(positions, split_off)))


def in_canonical_order(split: InMemorySplit, first_tie_breaker: Optional[str] = INTERACTION_TIME_KEY) -> InMemorySplit:
  """The same rows in an order that depends only on their values, not on the order they were stored in.

  Beam writes ExampleGen's and Transform's outputs in an order that changes from run to run, so without this the
  training shuffle and the validation slice (and with them the trained model) differ between two runs of the same
  data. Each row's key is a hash of its dense integer and string features (names sorted): ids, vocabulary indices,
  segment labels. Float features are left out of the key, as analyzers' sums can differ in the last bits between
  runs, and token bags too. Rows are sorted by the key; rows with equal keys (the same user and item again, e.g. a
  re-rating at another time) by the values of their single-valued float features: `first_tie_breaker` first, then
  the others by name. Values, unlike their hash, keep their order when they move by a few ulps. A NaN comes after
  every number (a sort of the raw values would let one NaN anywhere in the split scramble the order of the other
  rows, depending on their stored order). Rows equal in all of these keep their stored order.

  Args:
    split: the rows.
    first_tie_breaker: the float feature that orders rows with equal keys first; by default the interaction time,
      so a user's repeated interactions with an item are in time order (the neighbourhood model keeps the last
      one); None or a name the split lacks: by name only.

  Raises:
    ValueError: if the split has no dense integer or string feature to key the rows on.
  """
  dense_keys = sorted(k for k, v in split.columns.items()
                      if isinstance(v, tf.Tensor) and (v.dtype.is_integer or v.dtype == tf.string))
  if not dense_keys:
    raise ValueError('A canonical order needs at least one dense integer or string feature (e.g. the user id) to '
                     'key the rows on.')
  if not split.num_rows:
    return split
  tie_breakers = sorted(k for k, v in split.columns.items()
                        if isinstance(v, tf.Tensor) and v.dtype.is_floating and v.shape.num_elements() == v.shape[0])
  if first_tie_breaker in tie_breakers:
    tie_breakers.remove(first_tie_breaker)
    tie_breakers.insert(0, first_tie_breaker)
  row_keys = tf.strings.to_hash_bucket_fast(
      tf.strings.join([_as_text(split.columns[k]) for k in dense_keys], separator='|'), _ORDER_HASH_BUCKETS)
  # Stable sorts from the least significant key to the most: the order of (hash, first tie breaker, ...).
  order = tf.range(split.num_rows, dtype=tf.int64)
  for key in reversed(tie_breakers):
    values = tf.reshape(split.columns[key], [-1])
    is_nan = tf.math.is_nan(values)
    # (is NaN, value) as two stable sorts; NaNs tie among themselves (their value is taken as 0).
    numbers = tf.gather(tf.where(is_nan, tf.zeros_like(values), values), order)
    order = tf.gather(order, tf.argsort(numbers, stable=True))
    order = tf.gather(order, tf.argsort(tf.cast(tf.gather(is_nan, order), tf.int32), stable=True))
  order = tf.gather(order, tf.argsort(tf.gather(row_keys, order), stable=True))
  return split.rows(order)


def _as_text(values: tf.Tensor) -> tf.Tensor:
  """One string per row of a dense integer or string `[N, ...]` feature (a row's values joined by ',')."""
  if values.dtype != tf.string:
    values = tf.strings.as_string(values)
  return tf.strings.reduce_join(tf.reshape(values, [tf.shape(values)[0], -1]), axis=1, separator=',')
