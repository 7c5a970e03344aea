"""Serving assets written from raw example files: columns missing from some examples, types, bad input.

`serving.assets.write_serving_assets` reads the raw ExampleGen splits; these invented examples are written
directly as gzipped tf.Example TFRecords so that each one can lack a column or hold two values of one, as
another writer's files might. Every expected value is worked out by hand from the rows below.
"""

import os
from typing import Mapping, Sequence, Union

import pytest
import tensorflow as tf

from ingestion.interactions import ColumnType
from schema import features
from serving import assets as assets_lib

Value = Union[str, int, float, Sequence[str]]


def example(columns: Mapping[str, Value]) -> bytes:
  """One serialized tf.Example; a list value becomes a feature with several values."""
  proto = tf.train.Example()
  for name, value in columns.items():
    feature = proto.features.feature[name]
    values = value if isinstance(value, list) else [value]
    if isinstance(values[0], str):
      feature.bytes_list.value.extend(v.encode('utf-8') for v in values)
    elif isinstance(values[0], int):
      feature.int64_list.value.extend(values)
    else:
      feature.float_list.value.extend(values)
  return proto.SerializeToString()


def write_split(rows: Sequence[Mapping[str, Value]], path: str) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with tf.io.TFRecordWriter(path, options='GZIP') as writer:
    for row in rows:
      writer.write(example(row))


def interaction(user: str, item: str, rating: float, timestamp: int, **columns: Value) -> dict:
  return {features.USER_ID: user, features.ITEM_ID: item, features.RATING: rating,
          features.TIMESTAMP: timestamp, **columns}


# u1 has a gender but no age; u2 an age but no gender. Only item i1 has a release year; its title has an accent.
TRAIN_ROWS = [
    interaction('u1', 'i1', 5.0, 10, user_gender='F', item_title='Amélie', item_release_year=2001),
    interaction('u1', 'i2', 3.0, 20, user_gender='F', item_title='Heat'),
    interaction('u2', 'i2', 4.0, 15, user_age=30, item_title='Heat'),
]
# i3 is only in the eval split: a catalogue item no training user has seen.
EVAL_ROWS = [interaction('u2', 'i3', 2.0, 30, user_age=30, item_title='Ran')]


def write_assets(tmp_path, train_rows=TRAIN_ROWS, eval_rows=EVAL_ROWS) -> assets_lib.ServingAssets:
  write_split(train_rows, str(tmp_path / 'train' / 'data.gz'))
  write_split(eval_rows, str(tmp_path / 'eval' / 'data.gz'))
  assets_dir = str(tmp_path / 'assets')
  assets_lib.write_serving_assets([str(tmp_path / 'train' / '*')],
                                  [str(tmp_path / split / '*') for split in ('train', 'eval')], assets_dir)
  return assets_lib.load_serving_assets(assets_dir)


def test_columns_missing_from_some_examples_are_left_out_of_their_rows(tmp_path) -> None:
  assets = write_assets(tmp_path)
  assert assets.items == {
      'i1': {features.ITEM_ID: 'i1', features.ITEM_TITLE: 'Amélie', features.ITEM_RELEASE_YEAR: 2001},
      'i2': {features.ITEM_ID: 'i2', features.ITEM_TITLE: 'Heat'},
      'i3': {features.ITEM_ID: 'i3', features.ITEM_TITLE: 'Ran'},
  }
  assert assets.user_profiles == {'u1': {features.USER_ID: 'u1', features.USER_GENDER: 'F'},
                                  'u2': {features.USER_ID: 'u2', features.USER_AGE: 30}}
  assert assets.seen_items == {'u1': frozenset({'i1', 'i2'}), 'u2': frozenset({'i2'})}
  # u1's last ratings 5 and 3 average 4; u2 has one training rating, 4.
  assert assets.recent_ratings == {'u1': 4.0, 'u2': 4.0}


def test_column_types_are_those_of_the_examples_holding_each_column(tmp_path) -> None:
  assets = write_assets(tmp_path)
  assert assets.column_types == {
      features.USER_ID: ColumnType.STRING, features.ITEM_ID: ColumnType.STRING,
      features.RATING: ColumnType.FLOAT, features.TIMESTAMP: ColumnType.INT,
      features.USER_GENDER: ColumnType.STRING, features.USER_AGE: ColumnType.INT,
      features.ITEM_TITLE: ColumnType.STRING, features.ITEM_RELEASE_YEAR: ColumnType.INT,
      # Requests carry it even though no example does.
      features.RECENT_RATING: ColumnType.FLOAT,
  }


def test_popularity_counts_training_interactions_per_segment(tmp_path) -> None:
  assets = write_assets(tmp_path)
  # i2 twice (u1, u2), i1 once; the eval split's i3 is not counted.
  assert assets.popularity.global_items == (('i2', 2), ('i1', 1))
  assert assets.popularity.segment_items[features.USER_GENDER] == {'F': (('i1', 1), ('i2', 1))}
  assert assets.popularity.segment_items[features.USER_AGE_BUCKET] == {'25-34': (('i2', 1),)}
  # Totals before any cut: 3 training interactions, F (u1) 2, 25-34 (u2) 1.
  assert assets.popularity.global_total == 3
  assert assets.popularity.segment_totals[features.USER_GENDER] == {'F': 2}
  assert assets.popularity.segment_totals[features.USER_AGE_BUCKET] == {'25-34': 1}


def test_a_column_with_two_values_in_one_example_is_refused(tmp_path) -> None:
  rows = TRAIN_ROWS[:2] + [interaction('u2', 'i2', 4.0, 15, item_title=['Heat', 'Heat (1995)'])]
  with pytest.raises(ValueError, match="Column 'item_title' holds several values in one example"):
    write_assets(tmp_path, train_rows=rows)


def test_no_matching_file_is_refused(tmp_path) -> None:
  with pytest.raises(ValueError, match='No example files match'):
    assets_lib.write_serving_assets([str(tmp_path / 'absent' / '*')], [str(tmp_path / 'absent' / '*')],
                                    str(tmp_path / 'assets'))


def test_profiles_and_catalogue_take_each_columns_latest_value(tmp_path) -> None:
  # u1 turned 31 at t=20 and gave no gender then; i1 was renamed at t=20, and the eval split (t=40) renames it
  # again: the catalogue reads both splits, the profiles the training split only. The rows are written newest
  # first, so the first row met is not the answer.
  train_rows = [interaction('u1', 'i1', 4.0, 20, user_age=31, item_title='Heat (1995)'),
                interaction('u1', 'i2', 3.0, 10, user_age=30, user_gender='F', item_title='Ran', item_release_year=1985),
                interaction('u2', 'i1', 5.0, 5, user_age=40, item_title='Heat', item_release_year=1995)]
  eval_rows = [interaction('u1', 'i1', 2.0, 40, user_age=32, item_title='Heat (Director\'s Cut)')]
  assets = write_assets(tmp_path, train_rows=train_rows, eval_rows=eval_rows)
  assert assets.user_profiles['u1'] == {features.USER_ID: 'u1', features.USER_AGE: 31, features.USER_GENDER: 'F'}
  assert assets.items['i1'] == {features.ITEM_ID: 'i1', features.ITEM_TITLE: "Heat (Director's Cut)",
                                features.ITEM_RELEASE_YEAR: 1995}
  # The segment counts use the profile: u1 is 25-34 (31), u2 35-44.
  assert assets.popularity.segment_items[features.USER_AGE_BUCKET] == {'25-34': (('i1', 1), ('i2', 1)),
                                                                        '35-44': (('i1', 1),)}


def _written_assets_dir(tmp_path) -> str:
  write_assets(tmp_path)
  return str(tmp_path / 'assets')


def test_a_damaged_jsonl_file_is_refused_naming_the_file_and_line(tmp_path) -> None:
  # Before: json's "Unterminated string starting at: line 1 column 19 (char 18)", naming neither file nor line.
  assets_dir = _written_assets_dir(tmp_path)
  catalogue = os.path.join(assets_dir, assets_lib.CATALOGUE_FILE)
  with open(catalogue, encoding='utf-8') as f:
    lines = f.read().splitlines()
  assert len(lines) == 3  # i1, i2, i3
  with open(catalogue, 'w', encoding='utf-8') as f:
    f.write('\n'.join([lines[0], lines[1][:10], lines[2]]) + '\n')  # line 2 cut short, as by a truncated copy
  with pytest.raises(ValueError) as error:
    assets_lib.load_serving_assets(assets_dir)
  assert str(error.value).startswith(f'{catalogue} line 2: not valid JSON (')
  assert 'Fix: push the retrieval model version again' in str(error.value)


@pytest.mark.parametrize('name', [assets_lib.POPULARITY_FILE, assets_lib.COLUMN_TYPES_FILE])
def test_a_damaged_json_file_is_refused_naming_the_file(tmp_path, name) -> None:
  assets_dir = _written_assets_dir(tmp_path)
  path = os.path.join(assets_dir, name)
  with open(path, 'w', encoding='utf-8') as f:
    f.write('')  # an empty copy
  with pytest.raises(ValueError) as error:
    assets_lib.load_serving_assets(assets_dir)
  assert str(error.value).startswith(f'{path}: not valid JSON (Expecting value: line 1 column 1 (char 0))')


@pytest.mark.parametrize('column', [features.USER_ID, features.ITEM_ID, features.RATING, features.TIMESTAMP])
def test_a_training_example_without_a_required_column_is_refused_naming_it(tmp_path, column) -> None:
  # Before: without `rating`, u3's recent_rating was written as NaN (sent to the ranking model); without
  # `item_id` or `timestamp`, a TypeError ("'<' not supported between instances of 'str' and 'NoneType'",
  # "int() argument must be ... not 'NoneType'") naming no column; without `user_id`, ingestion.attributes'
  # error naming neither the files nor the number of examples.
  row = {name: value for name, value in interaction('u3', 'i1', 4.0, 25).items() if name != column}
  with pytest.raises(ValueError) as error:
    write_assets(tmp_path, train_rows=TRAIN_ROWS + [row])
  train_files = [str(tmp_path / 'train' / '*')]
  assert str(error.value).startswith(
      f'1 training example(s) in {train_files} lack {column!r}, a required column of the interactions format')


def test_a_training_rating_that_is_not_finite_is_refused(tmp_path) -> None:
  # Before: u1's recent_rating (the mean of 5, 3 and NaN) was written as NaN.
  with pytest.raises(ValueError, match=r"^1 training example\(s\) in .* have a 'rating' that is not finite "
                                       r'\(e.g. nan\); it would make the users\' recent_rating NaN'):
    write_assets(tmp_path, train_rows=TRAIN_ROWS + [interaction('u1', 'i3', float('nan'), 30)])


def test_a_catalogue_example_without_an_item_id_is_refused(tmp_path) -> None:
  # Before: ingestion.attributes' "A row without a key (None)" error, naming neither the files nor the count.
  row = {name: value for name, value in EVAL_ROWS[0].items() if name != features.ITEM_ID}
  with pytest.raises(ValueError, match=r"^1 catalogue example\(s\) in .* lack 'item_id'"):
    write_assets(tmp_path, eval_rows=EVAL_ROWS + [row])
