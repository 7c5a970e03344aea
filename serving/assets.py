"""Serving assets: the item catalogue, users' profiles and training items, and popularity, beside a model.

The two-stage recommender needs more than the two models: item titles and features (the ranking model scores
full rows), each known user's profile (the models' user columns) and training items (to exclude what the user
has seen), and item popularity (the fallback for unknown users, per user segment). The retrieval Trainer
writes them with `write_serving_assets` into its SavedModel's `assets.extra/` directory (TF Serving's place for
extra files), so they travel with the model version: the pusher publishes both in one atomic rename, and
`load_serving_assets` always reads the files that belong to the model being served.

Files (UTF-8):

* `catalogue.jsonl`: one JSON object per item, its raw `item_id` and `item_*` columns, each column's latest
  non-missing value over the item's rows (`ingestion.attributes`).
* `users.jsonl`: one JSON object per training user: `profile` (raw `user_id` and `user_*` columns, each the latest
  non-missing value over the user's training rows),
  `seen_item_ids` (the items of the user's training interactions, sorted) and `recent_rating` (the mean of the
  user's last `features.RECENT_RATING_WINDOW` training ratings, the ranking model's context at serving time).
* `popularity.json`: training interaction counts, best first, as `[item_id, count]` pairs: `global` and
  `segments[column][value]` for the user segment columns (`features.USER_SEGMENT_COLUMNS`), each list cut
  at `max_popular_items`; and each list's training interaction total before the cut (`global_total`,
  `segment_totals[column][value]`), so shares stay shares of all interactions when a list is cut.
* `column_types.json`: the value type (`string`, `int`, `float`) of every column seen, so requests are
  serialized as the models parse them.
"""

import collections
import dataclasses
import json
import math
import os
from typing import Any, Dict, FrozenSet, Iterable, List, Mapping, Optional, Sequence, Tuple

import tensorflow as tf
from absl import logging

from ingestion import attributes
from ingestion import example_columns
from ingestion import history
from ingestion.interactions import ColumnType
from schema import features

ASSETS_DIR = 'assets.extra'
CATALOGUE_FILE = 'catalogue.jsonl'
USERS_FILE = 'users.jsonl'
POPULARITY_FILE = 'popularity.json'
COLUMN_TYPES_FILE = 'column_types.json'
ASSET_FILES: Tuple[str, ...] = (CATALOGUE_FILE, USERS_FILE, POPULARITY_FILE, COLUMN_TYPES_FILE)

# Keys inside the files (not feature names).
PROFILE_KEY = 'profile'
SEEN_ITEMS_KEY = 'seen_item_ids'
RECENT_RATING_KEY = features.RECENT_RATING
GLOBAL_KEY = 'global'
SEGMENTS_KEY = 'segments'
GLOBAL_TOTAL_KEY = 'global_total'
SEGMENT_TOTALS_KEY = 'segment_totals'

# Popular items kept per list (global and each segment value).
DEFAULT_MAX_POPULAR_ITEMS = 1000

PopularityList = Tuple[Tuple[str, int], ...]


@dataclasses.dataclass(frozen=True)
class Popularity:
  """Training interaction counts of the most popular items.

  Attributes:
    global_items: (item_id, count) pairs, most interactions first.
    segment_items: segment column (e.g. `user_gender`) -> segment value (e.g. 'F') -> (item_id, count)
      pairs of the users of that segment, most interactions first.
    global_total: all training interactions (the global list's total before it was cut at the list length);
      None for assets written before totals were stored, whose lists are then taken as complete.
    segment_totals: segment column -> value -> the segment's training interactions, likewise (a missing entry:
      the list is taken as complete).
  """
  global_items: PopularityList
  segment_items: Mapping[str, Mapping[str, PopularityList]]
  global_total: Optional[int] = None
  segment_totals: Mapping[str, Mapping[str, int]] = dataclasses.field(default_factory=dict)

  def total(self, pairs: PopularityList, column: Optional[str] = None, value: Optional[str] = None) -> int:
    """The interactions `pairs` (the global list, or the list of segment `column`=`value`) are counted out of.

    The stored total when there is one, else the list's own sum (a complete list); at least 1.
    """
    stored = self.global_total if column is None else self.segment_totals.get(column, {}).get(value)
    return max(stored if stored is not None else sum(count for _, count in pairs), 1)


@dataclasses.dataclass(frozen=True)
class ServingAssets:
  """Everything the recommender needs beside the two models.

  Attributes:
    items: item_id -> raw item columns (`item_id` and every `item_*` column), the candidate catalogue.
    user_profiles: user_id -> raw user columns (`user_id` and every `user_*` column) of each training user.
    seen_items: user_id -> the items of that user's training interactions.
    popularity: the fallback lists.
    column_types: column -> value type of every column of the examples.
    recent_ratings: user_id -> the mean of the user's last training ratings (stars), the `recent_rating` of
      a ranking request now; users without one (and models exported before the feature) send none.
  """
  items: Mapping[str, Mapping[str, Any]]
  user_profiles: Mapping[str, Mapping[str, Any]]
  seen_items: Mapping[str, FrozenSet[str]]
  popularity: Popularity
  column_types: Mapping[str, ColumnType]
  recent_ratings: Mapping[str, float] = dataclasses.field(default_factory=dict)


def age_bucket_label(age: int) -> str:
  """The age bucket of `age` years, labelled as `transform.preprocessing.age_bucket` does (23 -> '18-24').

  Kept in pure Python so segment lookups for unknown users need no TensorFlow call; a test checks it agrees
  with the Transform function.
  """
  boundaries = features.AGE_BUCKET_BOUNDARIES
  if age < boundaries[0]:
    return f'<{boundaries[0]}'
  for low, high in zip(boundaries[:-1], boundaries[1:]):
    if low <= age < high:
      return f'{low}-{high - 1}'
  return f'{boundaries[-1]}+'


def age_bucket_labels() -> Tuple[str, ...]:
  """Every age bucket label `age_bucket_label` answers, youngest first (e.g. '<18', '18-24', ..., '56+')."""
  boundaries = features.AGE_BUCKET_BOUNDARIES
  return (age_bucket_label(boundaries[0] - 1),) + tuple(age_bucket_label(age) for age in boundaries)


def user_segments(user_columns: Mapping[str, Any]) -> Dict[str, str]:
  """The user's segment values, keyed by `features.USER_SEGMENT_COLUMNS` entries, from raw user columns.

  `user_age` gives `user_age_bucket` (an explicit `user_age_bucket` value is used as given: a request's value is
  checked by `serving.requests.coerce_user_features` to be one of `age_bucket_labels()` and to agree with a
  `user_age` sent with it); columns that are absent or None give no segment.
  """
  columns = dict(user_columns)
  if columns.get(features.USER_AGE) is not None and columns.get(features.USER_AGE_BUCKET) is None:
    columns[features.USER_AGE_BUCKET] = age_bucket_label(int(columns[features.USER_AGE]))
  return {column: str(columns[column]) for column in features.USER_SEGMENT_COLUMNS
          if columns.get(column) is not None}


def _ranked(counts: Mapping[str, int], limit: int) -> List[List[Any]]:
  """[item_id, count] pairs, most interactions first (ties: item_id ascending), at most `limit`."""
  return [[item, count] for item, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]


# Every raw training example must hold the interactions format's required columns (features.REQUIRED_COLUMNS) for
# the assets; every catalogue example must hold this one.
_CATALOGUE_REQUIRED_COLUMNS: Tuple[str, ...] = (features.ITEM_ID,)


def _check_required_columns(columns: Mapping[str, Sequence[Any]], required: Sequence[str],
                            file_patterns: Sequence[str], split: str) -> None:
  """Refuses a batch of examples lacking a required column, or (training) holding a rating that is not finite.

  Raises:
    ValueError: naming the column, how many examples of the batch lack it, the files and the fix.
  """
  rows = max((len(values) for values in columns.values()), default=0)
  for column in required:
    values = columns.get(column)
    missing = rows if values is None else sum(value is None for value in values)
    if missing:
      raise ValueError(f'{missing} {split} example(s) in {list(file_patterns)} lack {column!r}, a required column of '
                       'the interactions format; the serving assets need it on every example. Fix: write the '
                       'examples with ingestion.prepare (it refuses rows without it), or fill the column.')
  if features.RATING in required:
    bad = [value for value in columns[features.RATING] if not math.isfinite(value)]
    if bad:
      raise ValueError(f'{len(bad)} {split} example(s) in {list(file_patterns)} have a {features.RATING!r} that is '
                       f'not finite (e.g. {bad[0]}); it would make the users\' {RECENT_RATING_KEY} NaN. Fix: drop or '
                       'correct those examples (ingestion.prepare refuses them).')


def write_serving_assets(train_file_patterns: Sequence[str], catalogue_file_patterns: Sequence[str],
                         assets_dir: str, max_popular_items: int = DEFAULT_MAX_POPULAR_ITEMS) -> None:
  """Writes the serving assets of a model trained on `train_file_patterns` to `assets_dir`.

  Args:
    train_file_patterns: the raw training examples (gzipped tf.Example TFRecords, as ExampleGen writes):
      users' profiles, seen items and popularity come from these.
    catalogue_file_patterns: the raw examples whose items are candidates (train and eval): the catalogue.
    assets_dir: e.g. `<serving_model_dir>/assets.extra`; created if needed.
    max_popular_items: length limit of each popularity list.

  Raises:
    ValueError: if no file matches a pattern, or `max_popular_items` < 1; naming the column and the files, if a
      training example lacks `user_id`, `item_id`, `rating` or `timestamp` or has a rating that is not finite, or
      a catalogue example lacks `item_id`.
  """
  if max_popular_items < 1:
    raise ValueError(f'max_popular_items={max_popular_items} must be at least 1.')
  column_types: Dict[str, ColumnType] = {}
  seen: Dict[str, set] = collections.defaultdict(set)
  global_counts: Dict[str, int] = collections.Counter()
  segment_counts: Dict[str, Dict[str, Dict[str, int]]] = collections.defaultdict(
      lambda: collections.defaultdict(collections.Counter))
  user_item_counts: Dict[str, Dict[str, int]] = collections.defaultdict(collections.Counter)
  rating_history: Dict[str, List[Any]] = {features.USER_ID: [], features.TIMESTAMP: [], features.RATING: []}
  user_attributes = attributes.LatestAttributes()
  for columns, types in example_columns.column_batches(train_file_patterns):
    _check_required_columns(columns, features.REQUIRED_COLUMNS, train_file_patterns, 'training')
    column_types.update(types)
    user_ids = columns[features.USER_ID]
    user_attributes.add_columns(user_ids, example_columns.timestamps(columns),
                                {c: columns[c] for c in columns if c == features.USER_ID or features.is_user_feature(c)})
    for user_id, item_id in zip(user_ids, columns[features.ITEM_ID]):
      user_item_counts[user_id][item_id] += 1
    for name, values in rating_history.items():
      values.extend(columns[name])
  profiles = {user_id: user_attributes.attributes(user_id) for user_id in user_attributes.keys()}
  recent = history.latest_recent_ratings(rating_history[features.USER_ID], rating_history[features.TIMESTAMP],
                                         rating_history[features.RATING])
  # Requests carry it even when no training example had an earlier rating to hold it.
  column_types[features.RECENT_RATING] = ColumnType.FLOAT
  for user_id, item_counts in user_item_counts.items():
    seen[user_id] = set(item_counts)
    global_counts.update(item_counts)
    for column, value in user_segments(profiles[user_id]).items():
      segment_counts[column][value].update(item_counts)
  item_attributes = attributes.LatestAttributes()
  for columns, types in example_columns.column_batches(catalogue_file_patterns):
    _check_required_columns(columns, _CATALOGUE_REQUIRED_COLUMNS, catalogue_file_patterns, 'catalogue')
    column_types.update(types)
    item_attributes.add_columns(columns[features.ITEM_ID], example_columns.timestamps(columns),
                                {c: columns[c] for c in columns if c == features.ITEM_ID or features.is_item_feature(c)})
  items = {item_id: item_attributes.attributes(item_id) for item_id in item_attributes.keys()}

  tf.io.gfile.makedirs(assets_dir)
  with tf.io.gfile.GFile(os.path.join(assets_dir, CATALOGUE_FILE), 'w') as f:
    for item_id in sorted(items):
      f.write(json.dumps(items[item_id], sort_keys=True) + '\n')
  with tf.io.gfile.GFile(os.path.join(assets_dir, USERS_FILE), 'w') as f:
    for user_id in sorted(profiles):
      f.write(json.dumps({PROFILE_KEY: profiles[user_id], SEEN_ITEMS_KEY: sorted(seen[user_id]),
                          RECENT_RATING_KEY: recent[user_id]}, sort_keys=True) + '\n')
  popularity = {
      GLOBAL_KEY: _ranked(global_counts, max_popular_items),
      SEGMENTS_KEY: {column: {value: _ranked(counts, max_popular_items) for value, counts in sorted(by_value.items())}
                     for column, by_value in sorted(segment_counts.items())},
      GLOBAL_TOTAL_KEY: sum(global_counts.values()),
      SEGMENT_TOTALS_KEY: {column: {value: sum(counts.values()) for value, counts in sorted(by_value.items())}
                           for column, by_value in sorted(segment_counts.items())},
  }
  with tf.io.gfile.GFile(os.path.join(assets_dir, POPULARITY_FILE), 'w') as f:
    json.dump(popularity, f, sort_keys=True)
  with tf.io.gfile.GFile(os.path.join(assets_dir, COLUMN_TYPES_FILE), 'w') as f:
    json.dump({k: v.value for k, v in sorted(column_types.items())}, f, sort_keys=True)
  logging.info('Serving assets written to %s: %d items, %d users.', assets_dir, len(items), len(profiles))
  for kind, latest in (('items', item_attributes), ('users', user_attributes)):
    if latest.varying_key_count():
      logging.info('%d %s have attribute values that differ between their rows; the serving assets take each '
                   "column's latest value.", latest.varying_key_count(), kind)


def _damaged(path: str, where: str, error: json.JSONDecodeError) -> ValueError:
  return ValueError(f'{path}{where}: not valid JSON ({error}); the serving assets are damaged (e.g. a truncated '
                    'copy). Fix: push the retrieval model version again, or retrain it with trainer.retrieval.run '
                    '(it writes them with serving.assets.write_serving_assets).')


def _json_lines(path: str) -> Iterable[Dict[str, Any]]:
  """The JSON object of each non-blank line of `path`.

  Raises:
    ValueError: naming the file and the line, for a line that is not JSON.
  """
  with tf.io.gfile.GFile(path, 'r') as f:
    for number, line in enumerate(f, start=1):
      if line.strip():
        try:
          yield json.loads(line)
        except json.JSONDecodeError as e:
          raise _damaged(path, f' line {number}', e) from e


def _json_file(path: str) -> Any:
  """The JSON value `path` holds.

  Raises:
    ValueError: naming the file, if it is not JSON.
  """
  with tf.io.gfile.GFile(path, 'r') as f:
    text = f.read()
  try:
    return json.loads(text)
  except json.JSONDecodeError as e:
    raise _damaged(path, '', e) from e


def _popularity_list(pairs: Sequence[Sequence[Any]]) -> PopularityList:
  return tuple((str(item), int(count)) for item, count in pairs)


def load_serving_assets(assets_dir: str) -> ServingAssets:
  """Reads the files `write_serving_assets` wrote.

  Raises:
    FileNotFoundError: if a file is missing (the model was exported without serving assets: retrain it with
      the retrieval Trainer, which writes them).
    ValueError: naming the file (and line), if a file is not valid JSON (damaged assets).
  """
  missing = [name for name in ASSET_FILES if not tf.io.gfile.exists(os.path.join(assets_dir, name))]
  if missing:
    raise FileNotFoundError(
        f'{assets_dir} lacks the serving assets {missing}; push a retrieval model exported by '
        'trainer.retrieval.run (it writes them with serving.assets.write_serving_assets).')
  items = {row[features.ITEM_ID]: row for row in _json_lines(os.path.join(assets_dir, CATALOGUE_FILE))}
  profiles: Dict[str, Mapping[str, Any]] = {}
  seen: Dict[str, FrozenSet[str]] = {}
  recent: Dict[str, float] = {}
  for user in _json_lines(os.path.join(assets_dir, USERS_FILE)):
    user_id = user[PROFILE_KEY][features.USER_ID]
    profiles[user_id] = user[PROFILE_KEY]
    seen[user_id] = frozenset(user[SEEN_ITEMS_KEY])
    if RECENT_RATING_KEY in user:
      recent[user_id] = float(user[RECENT_RATING_KEY])
  raw_popularity = _json_file(os.path.join(assets_dir, POPULARITY_FILE))
  popularity = Popularity(
      global_items=_popularity_list(raw_popularity[GLOBAL_KEY]),
      segment_items={column: {value: _popularity_list(pairs) for value, pairs in by_value.items()}
                     for column, by_value in raw_popularity[SEGMENTS_KEY].items()},
      global_total=(int(raw_popularity[GLOBAL_TOTAL_KEY]) if raw_popularity.get(GLOBAL_TOTAL_KEY) is not None
                    else None),
      segment_totals={column: {value: int(total) for value, total in by_value.items()}
                      for column, by_value in raw_popularity.get(SEGMENT_TOTALS_KEY, {}).items()})
  column_types = {k: ColumnType(v) for k, v in _json_file(os.path.join(assets_dir, COLUMN_TYPES_FILE)).items()}
  return ServingAssets(items=items, user_profiles=profiles, seen_items=seen, recent_ratings=recent,
                       popularity=popularity, column_types=column_types)


def assets_dir_of(model_version_dir: str) -> str:
  """The assets directory inside one pushed model version."""
  return os.path.join(model_version_dir, ASSETS_DIR)

