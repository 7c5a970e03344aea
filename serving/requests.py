"""Serialized tf.Example requests of the two models: one per user (retrieval), one per user-item pair (ranking).

A ranking request holds every raw column but the rating: the user's columns, the candidate's columns, a
timestamp and the user's recent rating. Serializing a hundred full examples per recommendation in Python would cost milliseconds, so each
catalogue item's feature entries are serialized once per model version and a request is assembled by joining
byte strings: a tf.Example is `Example{features: Features{feature: map entries}}`, and the map entries of
different columns can be concatenated into one `Features` message (protobuf wire format), which
`tf.io.parse_example` reads as one example.
"""

import time
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ingestion import examples as examples_lib
from ingestion import interactions as interactions_lib
from ingestion.interactions import ColumnType
from schema import features
from serving import assets as assets_lib

# Wire tag of `Example.features` (field 1, length-delimited).
_FEATURES_TAG = 0x0A


class InvalidRequestError(ValueError):
  """An argument of a recommendation request (k, user_id, a user column) is invalid; the message names it and
  what to send. The HTTP service answers it with 400, any other error with 5xx."""


def _feature_entries(serialized_example: bytes) -> bytes:
  """The `Features` payload (the concatenated map entries) of a serialized tf.Example.

  Raises:
    ValueError: if the bytes do not start with the `features` field of an Example, or hold more than that field.
  """
  if not serialized_example:
    return b''
  if serialized_example[0] != _FEATURES_TAG:
    raise ValueError(f'Not a serialized tf.Example with features: starts with byte {serialized_example[0]:#x}.')
  length, shift, position = 0, 0, 1
  while True:
    byte = serialized_example[position]
    length |= (byte & 0x7F) << shift
    position += 1
    shift += 7
    if not byte & 0x80:
      break
  if position + length != len(serialized_example):
    raise ValueError('A serialized tf.Example with more than one features field cannot be joined.')
  return serialized_example[position:]


def _example_of_entries(entries: bytes) -> bytes:
  """Wraps concatenated `Features` map entries into a serialized tf.Example."""
  return examples_lib.length_delimited(_FEATURES_TAG, entries)


def coerce_user_features(user_features: Optional[Mapping[str, Any]],
                         column_types: Mapping[str, ColumnType]) -> Dict[str, Any]:
  """Validates caller-given user columns and converts their values (e.g. query-string text) to column types.

  Besides the raw `user_*` columns of the models, `user_age_bucket` (the age segment Transform derives from
  `user_age`, which chooses an unknown user's popular items) is accepted when the models know `user_age`: its
  value must be one of `serving.assets.age_bucket_labels()` ('<18', '18-24', ..., '56+'), and must agree with a
  `user_age` given with it. It is not a model input (`model_columns` leaves it out of the models' requests).

  Args:
    user_features: raw `user_*` column (or `user_age_bucket`) -> value (str, int or float), or None.
    column_types: the models' column types (`ServingAssets.column_types`).

  Returns:
    The columns with values of their types (a None value is dropped).

  Raises:
    InvalidRequestError: naming the column, for a column that is not a `user_*` column the models know, an
      empty value, a value that does not convert to the column's type (a float: finite, within float32, and not a
      non-zero value float32 stores as 0 or a subnormal, such as 1e-50) or is outside its range
      (`features.NUMERIC_COLUMN_RANGES`), an age bucket that is not a bucket label,
      or one that disagrees with the `user_age` given with it.
  """
  coerced: Dict[str, Any] = {}
  known = sorted(c for c in column_types if features.is_user_feature(c))
  if features.USER_AGE in column_types:
    known = sorted(known + [features.USER_AGE_BUCKET])
  for column, value in (user_features or {}).items():
    if column not in known:
      raise InvalidRequestError(f'{column!r} is not a user feature of the served models; use one of {known}.')
    if value is None:
      continue
    if column == features.USER_AGE_BUCKET:
      coerced[column] = _age_bucket(value)
      continue
    if isinstance(value, str) and interactions_lib.is_missing(value):  # `user_gender=` (or `=+`) in a query
      # string: it replaced a known user's gender with ''; the interactions file reads it as a missing value too
      raise InvalidRequestError(f'{column} is empty; leave it out to keep the user\'s profile value (for an unknown '
                                'user: to choose the popular items without it), or send a value.')
    column_type = column_types[column]
    if column_type == ColumnType.STRING:  # as the interactions file's values: `F ` is `F`
      coerced[column] = interactions_lib.normalized_text(str(value))
      continue
    # The rules of the interactions file: ASCII numbers, int64 integers, finite float32 floats that do not underflow.
    parsed = (interactions_lib.parse_int if column_type == ColumnType.INT else interactions_lib.parse_float)(
        str(value))
    if parsed is None or (column_type == ColumnType.FLOAT and not interactions_lib.fits_float32(parsed)):
      kind = 'an integer within int64' if column_type == ColumnType.INT else 'a finite float32 number'
      raise InvalidRequestError(f'{column}={value!r} is not {kind}; pass e.g. {column}=30.')
    if column_type == ColumnType.FLOAT and interactions_lib.underflows_float32(parsed):  # 1e-50: stored as 0
      raise InvalidRequestError(
          interactions_lib.float32_underflow_problem(f'{column}={value!r}', parsed)
          + f'; send 0 if the value is zero, or leave {column} out if it is not known.')
    value_range = features.NUMERIC_COLUMN_RANGES.get(column)
    if value_range is not None and not value_range[0] <= parsed <= value_range[1]:  # as the file's values
      low, high = value_range
      raise InvalidRequestError(f'{column}={value!r} is outside {low}..{high}; send a value within it, or leave '
                                f'{column} out if it is not known.')
    coerced[column] = parsed
  bucket, age = coerced.get(features.USER_AGE_BUCKET), coerced.get(features.USER_AGE)
  if bucket is not None and age is not None and assets_lib.age_bucket_label(age) != bucket:
    raise InvalidRequestError(
        f'{features.USER_AGE}={age} is in age bucket {assets_lib.age_bucket_label(age)!r} but '
        f'{features.USER_AGE_BUCKET}={bucket!r}; send only one of them, or values that agree.')
  return coerced


def _age_bucket(value: Any) -> str:
  """A request's `user_age_bucket` value, checked against the bucket labels.

  Raises:
    InvalidRequestError: for a value that is not a label.
  """
  labels = assets_lib.age_bucket_labels()
  if not isinstance(value, str) or value not in labels:
    raise InvalidRequestError(
        f'{features.USER_AGE_BUCKET}={value!r} is not an age bucket; use one of {list(labels)} (in a query string '
        "'+' must be sent as %2B and '<' as %3C, e.g. user_age_bucket=56%2B), or send user_age instead.")
  return value


def model_columns(user_columns: Mapping[str, Any]) -> Dict[str, Any]:
  """The columns of `user_columns` the models read: all but the derived ones (`user_age_bucket`), which Transform
  computes from the raw columns."""
  return {column: value for column, value in user_columns.items() if column not in features.DERIVED_COLUMNS}


class RequestEncoder:
  """Builds the models' serialized requests from raw columns, with item entries serialized once."""

  def __init__(self, serving_assets: assets_lib.ServingAssets) -> None:
    """Serializes every catalogue item's columns once.

    Args:
      serving_assets: the catalogue and column types of the served models.
    """
    self._column_types = dict(serving_assets.column_types)
    self._item_entries: Dict[str, bytes] = {
        item_id: _feature_entries(examples_lib.serialize_example(row, self._column_types))
        for item_id, row in serving_assets.items.items()}

  def user_request(self, user_columns: Mapping[str, Any]) -> bytes:
    """The retrieval request of one user: `user_id` and `user_*` columns, serialized tf.Example."""
    return examples_lib.serialize_example(user_columns, self._column_types)

  def ranking_requests(self, user_columns: Mapping[str, Any], item_ids: Sequence[str],
                       timestamp: Optional[int] = None, recent_rating: Optional[float] = None) -> List[bytes]:
    """One serialized tf.Example per candidate: the user's columns, the item's columns, `timestamp` and
    `recent_rating`.

    Args:
      user_columns: `user_id` and `user_*` columns.
      item_ids: candidates; each must be in the catalogue.
      timestamp: seconds since the epoch; default now (the request time).
      recent_rating: the mean of the user's latest ratings, stars (`ServingAssets.recent_ratings`); None leaves
        it out (the model then uses the training mean).

    Raises:
      KeyError: for an item id missing from the catalogue.
    """
    shared = {**user_columns, features.TIMESTAMP: int(time.time()) if timestamp is None else timestamp}
    if recent_rating is not None:
      shared[features.RECENT_RATING] = recent_rating
    user_entries = _feature_entries(examples_lib.serialize_example(shared, self._column_types))
    return [_example_of_entries(user_entries + self._item_entries[item_id]) for item_id in item_ids]
