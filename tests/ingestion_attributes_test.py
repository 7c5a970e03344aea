"""The latest-value rule for item and user attributes (`ingestion.attributes`), on rows worked out by hand."""

import itertools

import pytest

from ingestion import attributes


def test_each_column_takes_its_latest_non_missing_value() -> None:
  latest = attributes.LatestAttributes()
  latest.add('i1', 5, {'item_genre': 'Drama', 'item_title': 'Heat'})
  latest.add('i1', 9, {'item_genre': None, 'item_title': 'Heat (1995)'})  # the newest row has no genre
  latest.add('i1', 7, {'item_genre': 'Crime', 'item_title': 'Heat'})      # older than t=9: title stays
  latest.add('i2', 1, {'item_genre': None, 'item_title': 'Ran'})
  assert latest.attributes('i1') == {'item_genre': 'Crime', 'item_title': 'Heat (1995)'}
  assert latest.attributes('i2') == {'item_title': 'Ran'}  # a column missing on every row is absent
  assert latest.keys() == ['i1', 'i2']
  assert latest.varying_key_count() == 1  # i1's genre and title both changed; i2 never did


def test_the_answer_does_not_depend_on_the_order_of_the_rows() -> None:
  rows = [('u1', 3, {'user_age': 30}), ('u1', 8, {'user_age': 31}), ('u1', 8, {'user_age': 29}),
          ('u1', None, {'user_age': 99}), ('u1', 2, {'user_age': 28})]
  answers = set()
  for order in itertools.permutations(rows):
    latest = attributes.LatestAttributes()
    for key, timestamp, values in order:
      latest.add(key, timestamp, values)
    answers.add(latest.attributes('u1')['user_age'])
  # t=8 is the latest second; of its two values the greater, 31. The row without a timestamp is the oldest.
  assert answers == {31}


def test_a_row_without_timestamp_is_used_only_when_no_other_row_has_the_column() -> None:
  latest = attributes.LatestAttributes()
  latest.add('u1', None, {'user_gender': 'F', 'user_zip': '01002'})
  latest.add('u1', 0, {'user_gender': 'M', 'user_zip': None})
  assert latest.attributes('u1') == {'user_gender': 'M', 'user_zip': '01002'}


def test_add_columns_reads_row_i_from_every_column() -> None:
  latest = attributes.LatestAttributes()
  latest.add_columns(['i1', 'i2', 'i1'], [10, 20, 30],
                     {'item_id': ['i1', 'i2', 'i1'], 'item_release_year': [1995, None, 1996]})
  assert latest.attributes('i1') == {'item_id': 'i1', 'item_release_year': 1996}
  assert latest.attributes('i2') == {'item_id': 'i2'}
  assert latest.varying_key_count() == 1


def test_add_columns_refuses_columns_of_another_length() -> None:
  latest = attributes.LatestAttributes()
  with pytest.raises(ValueError, match=r'2 keys but columns of lengths \[2, 3\]'):
    latest.add_columns(['i1', 'i2'], [1, 2], {'item_title': ['a', 'b', 'c']})


def test_a_column_of_two_kinds_of_value_is_refused_naming_the_column_key_and_types() -> None:
  latest = attributes.LatestAttributes()
  latest.add('i1', 5, {'item_code': '7'})
  # Without the check, the tie at t=5 compared '7' with 7 and raised a bare TypeError.
  with pytest.raises(ValueError, match=r"Column 'item_code' of 'i1' holds a value of type str \('7'\) "
                                       r"and one of type int \(7\)"):
    latest.add('i1', 5, {'item_code': 7})


def test_ints_and_floats_of_one_column_compare_as_numbers() -> None:
  latest = attributes.LatestAttributes()
  latest.add('u1', 4, {'user_score': 2})
  latest.add('u1', 4, {'user_score': 2.5})  # same second: the greater value, 2.5
  assert latest.attributes('u1') == {'user_score': 2.5}


def test_a_row_without_a_key_is_refused_showing_its_values() -> None:
  latest = attributes.LatestAttributes()
  # An example without its item_id: the catalogue held an item None, and sorting the ids then raised
  # "'<' not supported between instances of 'NoneType' and 'str'".
  with pytest.raises(ValueError, match=r"A row without a key \(None\) holds \{'item_title': 'Ran'\}: each row needs "
                                       r"the id of the item or user it describes"):
    latest.add_columns(['i1', None], [1, 2], {'item_title': ['Heat', 'Ran']})
  assert latest.attributes('i1') == {'item_title': 'Heat'}
