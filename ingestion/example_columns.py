"""Reads raw interaction examples (ExampleGen's gzipped tf.Example TFRecords): serialized, or as Python columns.

Whatever reads the raw examples opens them here: the retrieval Trainer and gate parse the serialized records in a
TensorFlow graph (`serialized_examples`); what needs the raw columns outside a graph reads them as batches of
columns (`column_batches`): the serving assets (`serving.assets`: catalogue, profiles, popularity) and the
retrieval candidates (`trainer.retrieval.candidates`).
The examples are decoded with tfx_bsl, a batch at a time, without a schema: a column's type is the kind of
values its examples hold.
"""

from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import tensorflow as tf
from tfx_bsl.coders import example_coder

from ingestion import examples
from ingestion.interactions import ColumnType
from schema import features

# Examples decoded per batch.
_READ_BATCH_SIZE = 4096

# The value type of each kind of tf.Example column, by the Arrow type tfx_bsl decodes its values to.
_COLUMN_TYPE_OF_ARROW_VALUES = ((pa.types.is_binary, ColumnType.STRING), (pa.types.is_large_binary, ColumnType.STRING),
                                (pa.types.is_integer, ColumnType.INT), (pa.types.is_floating, ColumnType.FLOAT))

Columns = Dict[str, List[Any]]


def _column_type(name: str, arrow_type: pa.DataType) -> Optional[ColumnType]:
  """The value type of a decoded column (a list of values per example); None for a column no example fills."""
  if pa.types.is_null(arrow_type):  # the column is named but holds no kind of value in any example of the batch
    return None
  values_type = arrow_type.value_type
  for is_type, column_type in _COLUMN_TYPE_OF_ARROW_VALUES:
    if is_type(values_type):
      return column_type
  raise ValueError(f'Column {name!r} has values of type {values_type}; tf.Example holds bytes, int64 or float.')


def example_files(file_patterns: Sequence[str]) -> List[str]:
  """The files matching `file_patterns`, each pattern's sorted; a file two patterns match is listed once (first).

  Raises:
    ValueError: if `file_patterns` is one string rather than a sequence of patterns, no file matches, or a
      pattern matches a folder.
  """
  if isinstance(file_patterns, (str, bytes)):  # a str is a Sequence[str]: each character would be globbed
    raise ValueError(f'file_patterns={file_patterns!r} is one string; pass a list of patterns, '
                     f'e.g. [{file_patterns!r}].')
  files: List[str] = []
  for pattern in file_patterns:
    files.extend(path for path in sorted(tf.io.gfile.glob(pattern)) if path not in files)
  if not files:
    raise ValueError(f'No example files match {list(file_patterns)}; pass the raw ExampleGen split files.')
  folders = [path for path in files if tf.io.gfile.isdir(path)]  # TFRecordDataset fails on them when first read
  if folders:
    in_folders = [folder.rstrip('/') + '/*' for folder in folders]
    raise ValueError(f'{list(file_patterns)} match the folders {folders}, not example files; pass the files in '
                     f'them, e.g. {in_folders}.')
  return files


def serialized_examples(file_patterns: Sequence[str]) -> tf.data.Dataset:
  """The serialized tf.Example records (scalar string tensors) of the files matching `file_patterns`, in file order.

  ExampleGen writes each split as gzipped TFRecord files, as `ingestion.examples` does.

  Raises:
    ValueError: if `file_patterns` is one string, no file matches, or a pattern matches a folder.
  """
  return tf.data.TFRecordDataset(example_files(file_patterns), compression_type=examples.TFRECORD_COMPRESSION)


def column_batches(file_patterns: Sequence[str]) -> Iterator[Tuple[Columns, Dict[str, ColumnType]]]:
  """Yields the tf.Examples of the gzipped TFRecord files as batches of columns, with the columns' types.

  A batch's columns and types are those of any of its examples (a column no example of the batch holds is absent).
  A column holds one value per example (str for STRING, int, float), None where the example lacks it or its
  value list is empty.

  Raises:
    ValueError: if `file_patterns` is one string, no file matches, a pattern matches a folder, an example holds a
      column with more than one value, or a string value that is not UTF-8.
  """
  decoder = example_coder.ExamplesToRecordBatchDecoder()
  for batch in serialized_examples(file_patterns).batch(_READ_BATCH_SIZE).as_numpy_iterator():
    record_batch = decoder.DecodeBatch(list(batch))
    columns: Columns = {}
    types: Dict[str, ColumnType] = {}
    for name, array in zip(record_batch.schema.names, record_batch.columns):
      column_type = _column_type(name, array.type)
      if column_type is None:
        continue
      lengths = pc.list_value_length(array).fill_null(0).to_numpy(zero_copy_only=False)
      if np.any(lengths > 1):
        raise ValueError(f'Column {name!r} holds several values in one example (of {list(file_patterns)}); the '
                         'interactions format has one value per column (join multiple values with '
                         f'{features.MULTI_VALUE_SEPARATOR!r}).')
      values = array.flatten().to_numpy(zero_copy_only=False).tolist()  # one per example with a value, in order
      if column_type == ColumnType.STRING:
        try:
          values = [value.decode('utf-8') for value in values]
        except UnicodeDecodeError as e:
          raise ValueError(f'Column {name!r} holds a value that is not UTF-8 text ({e.object[:40]!r}) in the '
                           f'examples of {list(file_patterns)}; string features are UTF-8 text: write the column '
                           'as UTF-8 (as ingestion.examples does).') from e
      column: List[Any] = [None] * len(lengths)
      for row, value in zip(np.flatnonzero(lengths).tolist(), values):
        column[row] = value
      columns[name] = column
      types[name] = column_type
    yield columns, types


def timestamps(columns: Columns) -> List[Optional[int]]:
  """The batch's `timestamp` column (unix seconds), None for every example if no example of the batch has one."""
  if features.TIMESTAMP in columns:
    return columns[features.TIMESTAMP]
  rows = len(next(iter(columns.values()))) if columns else 0
  return [None] * rows
