"""Caller-given user columns of a recommendation request (serving.requests.coerce_user_features): the raw
columns the models read, and `user_age_bucket`, the segment of the popular-items fallback."""

import pytest

from ingestion.interactions import ColumnType
from schema import features
from serving import assets as assets_lib
from serving import requests as requests_lib

COLUMN_TYPES = {features.USER_AGE: ColumnType.INT, features.USER_GENDER: ColumnType.STRING,
                features.ITEM_TITLE: ColumnType.STRING}
# By hand from features.AGE_BUCKET_BOUNDARIES (18, 25, 35, 45, 50, 56).
AGE_BUCKETS = ('<18', '18-24', '25-34', '35-44', '45-49', '50-55', '56+')


def test_the_age_bucket_labels_are_those_of_the_boundaries():
  assert assets_lib.age_bucket_labels() == AGE_BUCKETS
  assert [assets_lib.age_bucket_label(age) for age in (17, 18, 24, 25, 44, 45, 49, 50, 55, 56)] == [
      '<18', '18-24', '18-24', '25-34', '35-44', '45-49', '45-49', '50-55', '50-55', '56+']


def test_raw_columns_are_converted_to_their_types():
  assert requests_lib.coerce_user_features({features.USER_AGE: '40', features.USER_GENDER: 'M'},
                                           COLUMN_TYPES) == {features.USER_AGE: 40, features.USER_GENDER: 'M'}


def test_string_values_lose_the_spaces_around_them_as_in_the_interactions_file():
  assert requests_lib.coerce_user_features({features.USER_GENDER: ' M '}, COLUMN_TYPES) == {features.USER_GENDER: 'M'}
  with pytest.raises(requests_lib.InvalidRequestError, match='user_gender is empty'):  # no token: as in the file
    requests_lib.coerce_user_features({features.USER_GENDER: ' | '}, COLUMN_TYPES)


@pytest.mark.parametrize('age', ['0', '121', '-1'])
def test_an_age_outside_1_to_120_is_refused_as_in_the_interactions_file(age):
  with pytest.raises(requests_lib.InvalidRequestError, match=rf"user_age='{age}' is outside 1..120"):
    requests_lib.coerce_user_features({features.USER_AGE: age}, COLUMN_TYPES)
  assert requests_lib.coerce_user_features({features.USER_AGE: '120'}, COLUMN_TYPES) == {features.USER_AGE: 120}


def test_a_numeric_column_without_a_range_takes_any_value_of_its_type():
  column_types = {**COLUMN_TYPES, 'user_score': ColumnType.FLOAT}
  assert requests_lib.coerce_user_features({'user_score': '-1e9'}, column_types) == {'user_score': -1e9}


@pytest.mark.parametrize('value, shown, stored', [
    ('1e-50', "'1e-50'", '0'),  # a query string's text; before, accepted and sent to the models as 0
    (1e-50, '1e-50', '0'),  # a number, as a Python caller passes it
    ('-1e-40', "'-1e-40'", '-9.99995e-41'),  # a subnormal
])
def test_a_non_zero_float_too_close_to_0_for_float32_is_refused_as_in_the_interactions_file(value, shown, stored):
  column_types = {**COLUMN_TYPES, 'user_score': ColumnType.FLOAT}
  with pytest.raises(requests_lib.InvalidRequestError) as e:
    requests_lib.coerce_user_features({'user_score': value}, column_types)
  assert str(e.value) == (
      f'user_score={shown} is too close to 0 for float32, the type it is stored as: it would be stored as {stored} '
      "(a non-zero magnitude below 1.175e-38, float32's smallest normal number, becomes 0 or loses digits); send 0 "
      'if the value is zero, or leave user_score out if it is not known.')


def test_zero_and_the_smallest_normal_float32_are_accepted_in_a_float_column():
  column_types = {**COLUMN_TYPES, 'user_score': ColumnType.FLOAT}
  assert requests_lib.coerce_user_features({'user_score': '0'}, column_types) == {'user_score': 0.0}
  assert requests_lib.coerce_user_features({'user_score': '1.2e-38'}, column_types) == {'user_score': 1.2e-38}


@pytest.mark.parametrize('bucket', AGE_BUCKETS)
def test_every_age_bucket_is_accepted_as_given(bucket):
  assert requests_lib.coerce_user_features({features.USER_AGE_BUCKET: bucket}, COLUMN_TYPES) == {
      features.USER_AGE_BUCKET: bucket}


def test_an_age_bucket_that_agrees_with_the_age_is_accepted():
  given = {features.USER_AGE: '40', features.USER_AGE_BUCKET: '35-44'}
  assert requests_lib.coerce_user_features(given, COLUMN_TYPES) == {features.USER_AGE: 40,
                                                                    features.USER_AGE_BUCKET: '35-44'}
  assert assets_lib.user_segments(requests_lib.coerce_user_features(given, COLUMN_TYPES)) == {
      features.USER_AGE_BUCKET: '35-44'}


@pytest.mark.parametrize('bucket', ['30-40', '35-45', '56 ', '', '35-44 ', 'old'])
def test_an_unknown_age_bucket_is_refused_with_the_allowed_labels(bucket):
  with pytest.raises(requests_lib.InvalidRequestError) as e:
    requests_lib.coerce_user_features({features.USER_AGE_BUCKET: bucket}, COLUMN_TYPES)
  assert str(e.value).startswith(f'user_age_bucket={bucket!r} is not an age bucket; use one of '
                                 "['<18', '18-24', '25-34', '35-44', '45-49', '50-55', '56+']")
  assert '%2B' in str(e.value)  # '56+' in a query string must be sent as 56%2B


@pytest.mark.parametrize('column', [features.USER_GENDER, features.USER_AGE])
def test_an_empty_value_is_refused_naming_the_column(column):
  # Before, user_gender= replaced a known user's gender with '' (and changed his ranking); user_age= was told
  # '' is not an integer.
  with pytest.raises(requests_lib.InvalidRequestError) as e:
    requests_lib.coerce_user_features({column: ''}, COLUMN_TYPES)
  assert str(e.value) == (f"{column} is empty; leave it out to keep the user's profile value (for an unknown user: "
                          'to choose the popular items without it), or send a value.')


@pytest.mark.parametrize('column', [features.USER_GENDER, features.USER_AGE])
@pytest.mark.parametrize('value', [' ', '\t'])
def test_a_value_of_white_space_only_is_refused_as_empty(column, value):
  # `user_gender=+` or `user_gender=%20` in a query string: white space only is a missing value in the interactions
  # file too. Before, ' ' replaced a known user's gender (and user_age was told ' ' is not an integer).
  with pytest.raises(requests_lib.InvalidRequestError) as e:
    requests_lib.coerce_user_features({column: value}, COLUMN_TYPES)
  assert str(e.value).startswith(f'{column} is empty; leave it out')


def test_an_age_bucket_that_disagrees_with_the_age_is_refused():
  with pytest.raises(requests_lib.InvalidRequestError) as e:
    requests_lib.coerce_user_features({features.USER_AGE: '23', features.USER_AGE_BUCKET: '35-44'}, COLUMN_TYPES)
  assert str(e.value) == ("user_age=23 is in age bucket '18-24' but user_age_bucket='35-44'; send only one of "
                          'them, or values that agree.')


def test_an_age_bucket_is_refused_when_the_models_have_no_age():
  with pytest.raises(requests_lib.InvalidRequestError, match="'user_age_bucket' is not a user feature"):
    requests_lib.coerce_user_features({features.USER_AGE_BUCKET: '35-44'}, {features.USER_GENDER: ColumnType.STRING})


def test_model_columns_leave_out_the_age_bucket():
  given = {features.USER_AGE: 40, features.USER_AGE_BUCKET: '35-44', features.USER_GENDER: 'M'}
  assert requests_lib.model_columns(given) == {features.USER_AGE: 40, features.USER_GENDER: 'M'}
