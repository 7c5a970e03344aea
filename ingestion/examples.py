"""Writes interactions as GZIP TFRecord files of tf.train.Example, one file per split, for ImportExampleGen.

Layout: `<examples_dir>/<split>/interactions.tfrecord.gz`, so ImportExampleGen reads it with
`input_config` split patterns `train/*` and `eval/*`. Feature lists: `user_id`/`item_id` bytes,
`rating` float, `timestamp` int64, optional columns by their ColumnType (STRING -> bytes (UTF-8), INT -> int64,
FLOAT -> float); a missing optional value omits the feature. Serialization is deterministic (map keys
sorted), so the same interactions always give byte-identical files.
"""

import math
import os
import struct
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Sequence, Tuple

from absl import logging
import numpy as np
import tensorflow as tf

from ingestion import interactions as interactions_lib

ColumnType = interactions_lib.ColumnType

EXAMPLES_FILE_NAME = 'interactions.tfrecord.gz'
TFRECORD_COMPRESSION = 'GZIP'


def example_path(examples_dir: str, split_name: str) -> str:
  """Returns the TFRecord file of split `split_name` under `examples_dir`."""
  return os.path.join(examples_dir, split_name, EXAMPLES_FILE_NAME)


def _add_value(example: tf.train.Example, name: str, value: Any, column_type: ColumnType) -> None:
  """Sets feature `name` of `example` to the single `value` of type `column_type`.

  Raises:
    ValueError: for a float that is not a whole number in an INT column (int() would truncate 3.7 to 3), or a
      finite number beyond float32 in a FLOAT column (it would be stored as inf) or non-zero and too close to 0
      (it would be stored as 0 or a subnormal: `interactions.underflows_float32`).
  """
  feature = example.features.feature[name]
  if column_type == ColumnType.STRING:
    feature.bytes_list.value.append(value if isinstance(value, bytes) else str(value).encode('utf-8'))
  elif column_type == ColumnType.INT:
    if isinstance(value, float) and not value.is_integer():
      raise ValueError(f'{value!r} is not a whole number')
    feature.int64_list.value.append(int(value))
  else:
    number = float(value)
    if math.isfinite(number) and not interactions_lib.fits_float32(number):
      raise ValueError(f'{value!r} is beyond float32, the type float features are stored as')
    if interactions_lib.underflows_float32(number):
      raise ValueError(interactions_lib.float32_underflow_problem(repr(value), number))
    feature.float_list.value.append(number)


def serialize_example(row: Mapping[str, Any], column_types: Mapping[str, ColumnType]) -> bytes:
  """Serializes one interaction (or a serving request) as a tf.train.Example.

  Any column may be absent or None (e.g. `rating` in a serving request) and is then omitted.

  Args:
    row: column name -> value (str/bytes, int or float; numpy scalars allowed).
    column_types: types of the optional columns in `row` (required columns have their contract types
      and need not be listed).

  Returns:
    The serialized tf.train.Example (deterministic bytes).

  Raises:
    ValueError: if `row` has a column with no known type, or a value that does not fit its type (a float that is
      not a whole number or is infinite in an INT column, a number beyond float32 or non-zero and too close to 0
      for it in a FLOAT column).
  """
  types = dict(interactions_lib.REQUIRED_COLUMN_TYPES)
  types.update(column_types)
  unknown = [name for name in row if name not in types]
  if unknown:
    raise ValueError(f'Columns {unknown} have no type; pass them in column_types '
                     f'(known: {sorted(types)}) or drop them from the row.')
  example = tf.train.Example()
  for name in sorted(row):
    value = row[name]
    if value is None:
      continue
    if isinstance(value, np.generic):
      value = value.item()
    try:
      _add_value(example, name, value, types[name])
    except (TypeError, ValueError, OverflowError) as e:
      raise ValueError(f'Column {name!r}: value {value!r} is not {types[name].name} ({e}). '
                       f'Fix: pass a {types[name].name.lower()} value or None.') from e
  return example.SerializeToString(deterministic=True)


def encode_varint(value: int) -> bytes:
  """Protobuf base-128 varint of `value` (negative int64 as 10-byte two's complement)."""
  value &= (1 << 64) - 1
  out = bytearray()
  while value > 0x7F:
    out.append((value & 0x7F) | 0x80)
    value >>= 7
  out.append(value)
  return bytes(out)


def length_delimited(tag: int, payload: bytes) -> bytes:
  """Wire bytes of a length-delimited field: tag byte, varint length, payload."""
  return bytes([tag]) + encode_varint(len(payload)) + payload


def _feature_entry(name: bytes, value: Any, column_type: ColumnType) -> bytes:
  """Wire bytes of one `Features.feature` map entry holding a single value.

  The same bytes protobuf's deterministic serialization writes (checked by the tests): entry{key=1,
  value=2: Feature{bytes_list=1 | float_list=2 | int64_list=3: {packed value=1}}}.
  """
  if column_type == ColumnType.STRING:
    feature = length_delimited(0x0A, length_delimited(0x0A, value))
  elif column_type == ColumnType.INT:
    feature = length_delimited(0x1A, length_delimited(0x0A, encode_varint(value)))
  else:
    feature = length_delimited(0x12, length_delimited(0x0A, struct.pack('<f', value)))
  return length_delimited(0x0A, length_delimited(0x0A, name) + length_delimited(0x12, feature))


def serialize_interactions(interactions: interactions_lib.Interactions,
                           indices: Sequence[int]) -> Iterator[bytes]:
  """Yields the serialized tf.train.Example of each row in `indices` (0-based), in that order.

  Byte-identical to `serialize_example(interactions.row(i), ...)`, but encodes the protobuf wire format
  directly with each distinct (column, value) entry encoded once: ~10x faster on MovieLens 100K.
  """
  columns: List[Tuple[Any, Dict[Any, bytes], Any]] = []
  for name in sorted(interactions.column_names):  # sorted: the deterministic map order
    values = interactions.column(name)
    if isinstance(values, np.ndarray):
      values = values.tolist()
    column_type = interactions.column_types[name]
    key = name.encode('utf-8')
    if column_type == ColumnType.STRING:
      def encode(v: str, key: bytes = key) -> bytes:
        return _feature_entry(key, v.encode('utf-8'), ColumnType.STRING)
    elif column_type == ColumnType.FLOAT and any(v == 0 and math.copysign(1.0, v) < 0
                                                 for v in values if v is not None):
      # -0.0 == 0.0, so the two would share one cache entry (the bytes of whichever came first): key this column's
      # values by (value, sign) instead.
      values = [None if v is None else (v, math.copysign(1.0, v)) for v in values]

      def encode(v: Tuple[float, float], key: bytes = key) -> bytes:
        return _feature_entry(key, v[0], ColumnType.FLOAT)
    else:
      def encode(v: Any, key: bytes = key, column_type: ColumnType = column_type) -> bytes:
        return _feature_entry(key, v, column_type)
    columns.append((values, {}, encode))
  for i in indices:
    entries = []
    for values, cache, encode in columns:
      value = values[i]
      if value is None:
        continue
      entry = cache.get(value)
      if entry is None:
        entry = cache[value] = encode(value)
      entries.append(entry)
    yield length_delimited(0x0A, b''.join(entries))


def write_tfrecord(records: Iterable[bytes], path: str) -> int:
  """Writes `records` to a GZIP TFRecord file at `path` (folder created if needed); returns the count."""
  folder = os.path.dirname(path)
  if folder:
    os.makedirs(folder, exist_ok=True)
  count = 0
  with tf.io.TFRecordWriter(path, options=TFRECORD_COMPRESSION) as writer:
    for record in records:
      writer.write(record)
      count += 1
  return count


def write_examples(interactions: interactions_lib.Interactions,
                   split_indices: Mapping[str, Sequence[int]], examples_dir: str) -> Dict[str, int]:
  """Writes one `<examples_dir>/<split>/interactions.tfrecord.gz` per split.

  Args:
    interactions: the interactions.
    split_indices: split name -> row indices (0-based) of that split, e.g. {'train': ..., 'eval': ...}.
    examples_dir: the folder to hold one sub-folder per split.

  Returns:
    Split name -> number of examples written.
  """
  counts: Dict[str, int] = {}
  for split_name, indices in split_indices.items():
    path = example_path(examples_dir, split_name)
    counts[split_name] = write_tfrecord(serialize_interactions(interactions, indices), path)
    logging.info('Wrote %d %s examples to %s', counts[split_name], split_name, path)
  return counts


def read_examples(path: str) -> List[tf.train.Example]:
  """Reads back every tf.train.Example of a GZIP TFRecord file (for tests and inspection)."""
  dataset = tf.data.TFRecordDataset(path, compression_type=TFRECORD_COMPRESSION)
  return [tf.train.Example.FromString(record.numpy()) for record in dataset]

