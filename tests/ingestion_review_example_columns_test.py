"""Reading raw examples (`ingestion.example_columns`) on edge inputs, with values worked out by hand."""

import os
import pathlib

import pytest
import tensorflow as tf

from ingestion import example_columns
from ingestion import examples
from ingestion.interactions import ColumnType


def _write(folder: pathlib.Path, rows: list) -> str:
  """Writes `rows` (column -> value) as one gzipped TFRecord file under `folder`; returns its path."""
  path = str(folder / examples.EXAMPLES_FILE_NAME)
  types = {'item_title': ColumnType.STRING}
  examples.write_tfrecord((examples.serialize_example(row, types) for row in rows), path)
  return path


def test_one_string_instead_of_a_list_of_patterns_is_refused(tmp_path: pathlib.Path) -> None:
  path = _write(tmp_path / 'train', [{'user_id': 'u1', 'item_id': 'i1', 'timestamp': 5}])
  pattern = os.path.join(str(tmp_path), 'train', '*')
  # A str is a Sequence[str]: each of its characters was globbed, '/' matching the root folder and '*' every file
  # of the working directory, so the reader opened folders and unrelated files.
  with pytest.raises(ValueError, match=r"file_patterns=.* is one string; pass a list of patterns"):
    example_columns.example_files(pattern)
  with pytest.raises(ValueError, match='is one string'):
    next(example_columns.column_batches(pattern))
  assert example_columns.example_files([pattern]) == [path]


def test_a_string_value_that_is_not_utf8_is_refused_naming_the_column(tmp_path: pathlib.Path) -> None:
  _write(tmp_path / 'train', [{'user_id': 'u1', 'item_id': 'i1', 'item_title': b'Caf\xe9'},  # Latin-1, not UTF-8
                              {'user_id': 'u2', 'item_id': 'i2', 'item_title': 'Café'}])
  pattern = os.path.join(str(tmp_path), 'train', '*')
  # Before: a bare UnicodeDecodeError naming neither the column nor the files.
  with pytest.raises(ValueError, match=r"Column 'item_title' holds a value that is not UTF-8 text \(b'Caf\\xe9'\) "
                                       r"in the examples of \[.*train.*\]"):
    next(example_columns.column_batches([pattern]))


def test_a_file_two_patterns_match_is_read_once(tmp_path: pathlib.Path) -> None:
  train = _write(tmp_path / 'train', [{'user_id': 'u1', 'item_id': 'i1', 'timestamp': 5}])
  eval_ = _write(tmp_path / 'eval', [{'user_id': 'u2', 'item_id': 'i2', 'timestamp': 7}])
  patterns = [os.path.join(str(tmp_path), 'train', '*'), os.path.join(str(tmp_path), '*', '*')]
  # The second pattern matches both files, eval first in sorted order; train was listed (and read) twice.
  assert example_columns.example_files(patterns) == [train, eval_]
  (columns, _), = list(example_columns.column_batches(patterns))
  assert columns['user_id'] == ['u1', 'u2']


def test_several_values_in_one_example_are_refused_naming_the_files(tmp_path: pathlib.Path) -> None:
  path = str(tmp_path / 'train' / examples.EXAMPLES_FILE_NAME)
  example = tf.train.Example.FromString(examples.serialize_example({'user_id': 'u1', 'item_id': 'i1'}, {}))
  example.features.feature['item_genres'].bytes_list.value.extend([b'Drama', b'Crime'])
  examples.write_tfrecord([example.SerializeToString()], path)
  pattern = os.path.join(str(tmp_path), 'train', '*')
  # Before, the message named the column but not where the example was.
  with pytest.raises(ValueError, match=r"Column 'item_genres' holds several values in one example \(of \[.*train.*\]\)"
                                       r"; the interactions format has one value per column"):
    next(example_columns.column_batches([pattern]))


def test_a_pattern_matching_a_folder_is_refused_with_the_pattern_of_its_files(tmp_path: pathlib.Path) -> None:
  _write(tmp_path / 'Split-train', [{'user_id': 'u1', 'item_id': 'i1', 'timestamp': 5}])
  folder = os.path.join(str(tmp_path), 'Split-train')
  # The split folder instead of its files: before, TFRecordDataset failed on first read with
  # "FailedPreconditionError: ...; Is a directory", saying nothing of the fix.
  with pytest.raises(ValueError, match=r"match the folders \['.*Split-train'\], not example files; pass the files "
                                       r"in them, e.g. \['.*Split-train/\*'\]"):
    example_columns.example_files([folder])
  with pytest.raises(ValueError, match='not example files'):
    example_columns.serialized_examples([folder])
