"""Every feature, label and vocabulary name of the interactions data contract, in one place.

The interactions format (see README, "Data contract") is a UTF-8 CSV with a header and one row per
interaction. Four columns are required; any number of optional user and item feature columns may follow,
recognised by their prefixes. Multi-valued fields hold their values separated by `MULTI_VALUE_SEPARATOR`.
"""

from typing import Iterable, List, Mapping, Tuple

# Required columns of the interactions format.
USER_ID = 'user_id'
ITEM_ID = 'item_id'
RATING = 'rating'
TIMESTAMP = 'timestamp'
REQUIRED_COLUMNS: Tuple[str, ...] = (USER_ID, ITEM_ID, RATING, TIMESTAMP)

# Optional feature columns are recognised by these prefixes.
USER_FEATURE_PREFIX = 'user_'
ITEM_FEATURE_PREFIX = 'item_'
MULTI_VALUE_SEPARATOR = '|'

# The label the ranking model predicts (stars, float).
LABEL_KEY = RATING

# Optional columns written by the MovieLens 100K adapter (and by the synthetic fixture generator).
USER_AGE = 'user_age'
USER_GENDER = 'user_gender'
USER_OCCUPATION = 'user_occupation'
USER_ZIP = 'user_zip'
ITEM_TITLE = 'item_title'
ITEM_GENRES = 'item_genres'
ITEM_RELEASE_YEAR = 'item_release_year'
MOVIELENS_COLUMNS: Tuple[str, ...] = REQUIRED_COLUMNS + (
    USER_AGE, USER_GENDER, USER_OCCUPATION, USER_ZIP, ITEM_TITLE, ITEM_GENRES, ITEM_RELEASE_YEAR)

# Optional columns Transform computes with as numbers, and what it computes from them: the interactions file must
# hold them as numbers (INT or FLOAT; `05` is 5 here, not a code), since a STRING one would crash Transform.
NUMERIC_COLUMN_USES: Mapping[str, str] = {
    USER_AGE: 'the age bucket the evaluation is sliced by',
    ITEM_RELEASE_YEAR: "the item's age at each interaction",
}

# Inclusive (min, max) of the values an interactions file may hold in a column, checked on reading with or without
# a curated schema (schema/schema.pbtxt declares the same int_domain): an age of 0 or 999 stands for "unknown"
# in some exports, and would put the user in the youngest or the oldest age bucket.
NUMERIC_COLUMN_RANGES: Mapping[str, Tuple[int, int]] = {
    USER_AGE: (1, 120),
}

# Derived features Transform adds for evaluation slicing (not model inputs).
USER_AGE_BUCKET = 'user_age_bucket'
# Upper bounds (exclusive) of the age buckets, years; the last bucket is open-ended.
AGE_BUCKET_BOUNDARIES: Tuple[int, ...] = (18, 25, 35, 45, 50, 56)

# Columns the evaluation is sliced by (user segments), when present in the data.
USER_SEGMENT_COLUMNS: Tuple[str, ...] = (USER_GENDER, USER_OCCUPATION, USER_AGE_BUCKET)

# Derived item feature for evaluation slicing: the item's popularity in the training split. Items are ordered by
# their number of training interactions; an item is in the 'head' while the items more popular than it hold
# less than the first share of all training interactions, in the 'torso' while they hold less than the second,
# and in the 'tail' otherwise. Items without training interactions are 'unseen'.
ITEM_POPULARITY_BUCKET = 'item_popularity_bucket'
POPULARITY_BUCKET_SHARES: Tuple[float, ...] = (1 / 3, 2 / 3)
POPULARITY_BUCKET_LABELS: Tuple[str, ...] = ('head', 'torso', 'tail')
UNSEEN_ITEM_BUCKET = 'unseen'

# Derived item feature Transform adds as a model input of both models: the item's popularity in the training
# split, log(1 + training interactions) z-scored over the training items (an item without any counts 0). With it
# the models learn how much each user follows popularity: some users rate obscure items far lower than their
# average (MovieLens user 405 gives 1 star to 89 of the 97 items with at most 5 training interactions he rated).
ITEM_POPULARITY = 'item_popularity'

# Interaction-time ("context") features Transform derives from `timestamp`: they describe the moment of the
# interaction, not the user or the item. At serving time the moment is the request's (its timestamp), clipped to
# the training period so a model is never asked about a time it has not seen.
# The interaction time, days since the epoch, z-scored.
INTERACTION_TIME = 'interaction_time'
# The item's age at the interaction, years (interaction year - item_release_year), z-scored; only derived when
# the data holds item_release_year. (Context names must not start with the user_/item_ column prefixes: those
# mark the columns of the user and item towers.)
INTERACTION_ITEM_AGE = 'interaction_item_age'
# The user's recent ratings: the mean of the user's last RECENT_RATING_WINDOW training ratings made strictly before
# the interaction, stars; missing when there are none. Ingestion (ingestion/history.py) derives it after the
# split, from training ratings only; at serving time it is the mean of the user's last training ratings. Users'
# ratings drift within a rating session (MovieLens user 405: 4.3 stars on average over his first tenth, 1.1 over
# his last), which neither the user's embedding nor the item's captures.
RECENT_RATING = 'recent_rating'
RECENT_RATING_WINDOW = 10
CONTEXT_FEATURES: Tuple[str, ...] = (INTERACTION_TIME, INTERACTION_ITEM_AGE, RECENT_RATING)

# Columns the evaluation is sliced by (user and item segments), when present in the data.
SEGMENT_COLUMNS: Tuple[str, ...] = USER_SEGMENT_COLUMNS + (ITEM_POPULARITY_BUCKET,)

# Names of the features the pipeline derives (Transform under the user_/item_ prefixes, ingestion the recent
# rating): an interactions file may not hold columns with these names (the derived feature would silently
# replace the column).
DERIVED_COLUMNS: Tuple[str, ...] = (USER_AGE_BUCKET, ITEM_POPULARITY_BUCKET, ITEM_POPULARITY, RECENT_RATING)

# Suffix of transformed (Transform output) feature names.
TRANSFORMED_SUFFIX = '_xf'


def transformed_name(key: str) -> str:
  """Returns the Transform output name of raw feature `key` (e.g. 'user_id' -> 'user_id_xf')."""
  return key + TRANSFORMED_SUFFIX


def raw_name(transformed_key: str) -> str:
  """Inverse of `transformed_name`.

  Raises:
    ValueError: if `transformed_key` does not end with the transformed suffix.
  """
  if not transformed_key.endswith(TRANSFORMED_SUFFIX):
    raise ValueError(
        f'{transformed_key!r} is not a transformed feature name: it should end with '
        f'{TRANSFORMED_SUFFIX!r}.')
  return transformed_key[:-len(TRANSFORMED_SUFFIX)]


def vocabulary_name(key: str) -> str:
  """Returns the name of the Transform vocabulary file of categorical feature `key`.

  The vocabulary is named after the raw column, so `user_id` and `item_id` vocabularies are found as
  'user_id' and 'item_id' by both the ranking and the retrieval trainers.
  """
  return key


def is_user_feature(column: str) -> bool:
  """True for optional user feature columns (`user_*` other than `user_id`)."""
  return column.startswith(USER_FEATURE_PREFIX) and column != USER_ID


def is_item_feature(column: str) -> bool:
  """True for optional item feature columns (`item_*` other than `item_id`)."""
  return column.startswith(ITEM_FEATURE_PREFIX) and column != ITEM_ID


def is_context_feature(name: str) -> bool:
  """True for the interaction-time features Transform derives (`CONTEXT_FEATURES`)."""
  return name in CONTEXT_FEATURES


def optional_columns(columns: Iterable[str]) -> List[str]:
  """Returns the optional user and item feature columns among `columns`, in their order."""
  return [c for c in columns if is_user_feature(c) or is_item_feature(c)]
