"""Transform's preprocessing_fn: shared vocabularies and feature transforms for both recommender models.

Every model input is derived here, once, so ranking and retrieval see the same ids:

* `user_id`, `item_id` -> int64 vocabulary index `[batch]`, vocabularies named 'user_id' / 'item_id' with one
  out-of-vocabulary bucket (index == vocabulary size) for users and items unseen in training.
* string `user_*` / `item_*` columns -> a bag of vocabulary indices (SparseTensor `[batch, None]`): the raw
  value is split on '|' so multi-valued fields (genres) and single-valued ones (gender) share one path.
* numeric `user_*` / `item_*` columns -> z-score float32 `[batch]` over the rows that hold a value; a missing
  value scores 0 (the training mean).
* `rating` -> float32 label `[batch]`, passed through.
* `user_age` (when present) -> also a string `user_age_bucket` `[batch]` used only to slice evaluation.
* `item_id` -> also a string `item_popularity_bucket` `[batch]` ('head'/'torso'/'tail' by the item's share of
  training interactions, 'unseen' for items without any), used only to slice evaluation, and the model input
  `item_popularity` float32 `[batch]`: log(1 + the item's training interactions), z-scored over the items.
* `timestamp` -> the context features `interaction_time` (days) and, with `item_release_year`,
  `interaction_item_age` (years): float32 `[batch]`, clipped to the training range, then z-scored; an interaction
  with a film of unknown release year has item age z-score 0 (the training mean).
* `recent_rating` (the context feature ingestion derives: the mean of the user's last training ratings) ->
  z-score float32 `[batch]` over the rows that hold one; missing (no earlier rating) scores 0.

Every statistic (vocabularies, counts, means, variances, ranges) is computed over the raw data, none over the
output of another, so tf.Transform analyzes the data in one pass (one analysis phase). Chaining a z-score onto a
mean-imputed value took a second phase: one more traced SavedModel and pass over the data (docs/performance.md).
"""

from typing import Dict, FrozenSet, Iterable, Tuple, Union

import tensorflow as tf
import tensorflow_transform as tft

from schema import features

Tensor = Union[tf.Tensor, tf.SparseTensor, tf.RaggedTensor]

# Out-of-vocabulary buckets of every vocabulary: one, shared by all unseen values.
NUM_OOV_BUCKETS = 1
# Label of the age bucket of users whose age is missing.
UNKNOWN_AGE_BUCKET = 'unknown'
SECONDS_PER_DAY = 86400.0
# Mean Gregorian year, days; the epoch (day 0) is 1970-01-01.
DAYS_PER_YEAR = 365.2425
EPOCH_YEAR = 1970.0
# The values tf.Transform leaves out of a (text) vocabulary, so they map to its OOV bucket: the empty string and any
# value holding a line break (tensorflow_transform.analyzers._EMPTY_STRING_OR_NEWLINE_CHARS_REGEX).
_LEFT_OUT_OF_VOCABULARY_REGEX = r'^$|\C*[\n\r]\C*'


def model_input_columns(columns: Iterable[str]) -> FrozenSet[str]:
  """The raw names of the model inputs `preprocessing_fn` produces from raw data with these columns (what
  `trainer.common.feature_specs.available_features` finds in its output), known before Transform runs.

  E.g. `user_id, item_id, rating, timestamp, user_age, item_release_year` give `user_id, item_id, user_age,
  item_release_year, item_popularity, interaction_time, interaction_item_age`; the label, the raw timestamp and
  the slicing-only buckets (`user_age_bucket`, `item_popularity_bucket`) are no model inputs.
  """
  columns = frozenset(columns)
  inputs = {c for c in columns
            if c in (features.USER_ID, features.ITEM_ID, features.RECENT_RATING)
            or features.is_user_feature(c) or features.is_item_feature(c)}
  if features.ITEM_ID in columns:
    inputs.add(features.ITEM_POPULARITY)
  if features.TIMESTAMP in columns:
    inputs.add(features.INTERACTION_TIME)
    if features.ITEM_RELEASE_YEAR in columns:
      inputs.add(features.INTERACTION_ITEM_AGE)
  return frozenset(inputs - {features.USER_AGE_BUCKET, features.ITEM_POPULARITY_BUCKET})


def preprocessing_fn(inputs: Dict[str, Tensor]) -> Dict[str, Tensor]:
  """Maps raw interaction features to model inputs.

  Args:
    inputs: raw features parsed with the pipeline schema: dense `[batch]` or `[batch, 1]` tensors for
      required columns, SparseTensor `[batch, 1]` for optional columns with missing values.

  Returns:
    Transformed features keyed by `features.transformed_name(raw_key)`, plus the slicing-only features
    `features.USER_AGE_BUCKET` and `features.ITEM_POPULARITY_BUCKET`.
  """
  outputs: Dict[str, Tensor] = {}
  for key, value in sorted(inputs.items()):
    if key in (features.USER_ID, features.ITEM_ID):
      ids = _to_dense(value, default_value='')
      outputs[features.transformed_name(key)] = tft.compute_and_apply_vocabulary(
          ids, num_oov_buckets=NUM_OOV_BUCKETS, vocab_filename=features.vocabulary_name(key))
    elif key == features.LABEL_KEY:
      outputs[features.transformed_name(key)] = tf.cast(_to_dense(value, default_value=0.0), tf.float32)
    elif key == features.RECENT_RATING:
      outputs[features.transformed_name(key)] = _standardized(value)
    elif features.is_user_feature(key) or features.is_item_feature(key):
      if value.dtype == tf.string:
        outputs[features.transformed_name(key)] = _token_bag_ids(value, key)
      else:
        outputs[features.transformed_name(key)] = _standardized(value)
  if features.USER_AGE in inputs:
    outputs[features.USER_AGE_BUCKET] = age_bucket(inputs[features.USER_AGE])
  if features.TIMESTAMP in inputs:
    outputs.update(context_features(inputs))
  if features.ITEM_ID in inputs:
    item_counts = ItemCounts.analyze(_to_dense(inputs[features.ITEM_ID], default_value=''))
    item_indices = outputs[features.transformed_name(features.ITEM_ID)]
    outputs[features.ITEM_POPULARITY_BUCKET] = popularity_bucket(item_counts, item_indices)
    outputs[features.transformed_name(features.ITEM_POPULARITY)] = item_popularity(item_counts, item_indices)
  return outputs


def context_features(inputs: Dict[str, Tensor]) -> Dict[str, tf.Tensor]:
  """The interaction-time features of `inputs` (which hold `timestamp`), keyed by transformed name.

  E.g. timestamps of days 0..5 give interaction_time (d - 2.5) / 1.708; a serving request of day 100 is clipped
  to day 5. With release year 1995, an interaction on 2000-01-01 (day 10957) is 5.0 years after release; without
  a release year, the item age scores 0 and is left out of the item-age statistics.

  Returns:
    float32 `[batch]` each: `interaction_time`, and `interaction_item_age` when `item_release_year` is present.
  """
  days = tf.cast(_to_dense(inputs[features.TIMESTAMP], default_value=tf.constant(0, tf.int64)),
                 tf.float64) / SECONDS_PER_DAY
  outputs = {features.transformed_name(features.INTERACTION_TIME): _z_score_where_present(
      days, tf.ones_like(days, dtype=tf.bool), clip_to_training_range=True)}
  if features.ITEM_RELEASE_YEAR in inputs:
    release_year, has_release_year = _values_and_presence(inputs[features.ITEM_RELEASE_YEAR])
    item_age = EPOCH_YEAR + days / DAYS_PER_YEAR - release_year
    outputs[features.transformed_name(features.INTERACTION_ITEM_AGE)] = _z_score_where_present(
        item_age, has_release_year, clip_to_training_range=True)
  return outputs


class ItemCounts:
  """The training interactions of every item, as the analysis of the training data found them.

  Attributes:
    descending: int64 `[num_items]`, the items' training counts, largest first. The `item_id` vocabulary is
      ordered by training count, most frequent first, so vocabulary index r holds the count `descending[r]`.
  """

  def __init__(self, descending: tf.Tensor) -> None:
    self.descending = descending

  @classmethod
  def analyze(cls, item_ids: tf.Tensor) -> 'ItemCounts':
    """Counts the raw item ids (string `[batch]`) over the analyzed (training) data: one tft analyzer.

    Only the ids the `item_id` vocabulary holds are counted: an empty id (a missing one) or an id with a line
    break is out of the vocabulary, so an unseen item, and counting it would shift every less popular item's count.
    """
    in_vocabulary = tf.logical_not(tf.strings.regex_full_match(item_ids, _LEFT_OUT_OF_VOCABULARY_REGEX))
    _, counts = tft.count_per_key(tf.boolean_mask(item_ids, in_vocabulary))
    return cls(tf.sort(tf.cast(counts, tf.int64), direction='DESCENDING'))

  @property
  def num_items(self) -> tf.Tensor:
    return tf.size(self.descending, out_type=tf.int64)

  def seen(self, item_indices: tf.Tensor) -> tf.Tensor:
    """True for items with training interactions (the OOV index marks unseen ones); bool `[batch]`."""
    return item_indices < self.num_items

  def of(self, item_indices: tf.Tensor) -> tf.Tensor:
    """The training count of each `item_id` vocabulary index (int64 `[batch]`); 0 for unseen items."""
    return self.look_up(self.descending, item_indices, tf.zeros([], tf.int64))

  def look_up(self, by_index: tf.Tensor, item_indices: tf.Tensor, unseen: tf.Tensor) -> tf.Tensor:
    """`by_index[i]` for each vocabulary index i of `item_indices` (`[batch]`), `unseen` for unseen items.

    Args:
      by_index: one value per seen item, `[num_items]` in vocabulary order (as `descending`).
      item_indices: `item_id` vocabulary indices, int64 `[batch]`.
      unseen: the scalar given to unseen items, of `by_index`'s dtype.
    """
    # Index num_items (the OOV bucket) and beyond take `unseen`, appended to the table: there may be no seen item.
    table = tf.concat([by_index, tf.reshape(unseen, [1])], axis=0)
    return tf.gather(table, tf.minimum(item_indices, self.num_items))


def item_popularity(item_counts: ItemCounts, item_indices: tf.Tensor) -> tf.Tensor:
  """The items' popularity as a model input: log(1 + training count), z-scored over the training items.

  With training counts i3: 3, i2: 2, i1: 1, the logs are ln 4, ln 3, ln 2 (mean 1.0594, population std 0.2843),
  so i3 -> 1.150, i2 -> 0.138, i1 -> -1.288 and an unseen item (count 0, ln 1 = 0) -> -3.726.

  Args:
    item_counts: the training counts of the items.
    item_indices: `item_id` vocabulary indices, int64 `[batch]`.

  Returns:
    float32 `[batch]`.

  The values are looked up in a table computed over all items at once, not computed per row: vectorised and
  scalar float code round differently in the last bit, so per-row values depended on where a row fell in its
  Beam batch and two runs of the same data differed (18 of 80,000 training rows, by up to 3.6e-7), enough to
  train a different model.
  """
  logs = tf.math.log1p(tf.cast(item_counts.descending, tf.float32))  # [num_items], vocabulary order
  # Without any training item the mean would be NaN (the std is, and scales by 0): every item scores 0.
  mean = tf.where(item_counts.num_items > 0, tf.reduce_mean(logs), 0.0)
  std = tf.math.reduce_std(logs)
  unseen = _z_score(tf.zeros([], tf.float32), mean, std)  # log1p(0) = 0
  return item_counts.look_up(_z_score(logs, mean, std), item_indices, unseen)


def popularity_bucket(item_counts: ItemCounts, item_indices: tf.Tensor) -> tf.Tensor:
  """Labels each item with its popularity bucket in the analyzed (training) data, e.g. 'head' or 'unseen'.

  With training counts i3: 3, i2: 2, i1: 1 (6 interactions), the items more popular than i3 hold 0/6, than
  i2 3/6 and than i1 5/6 of them, so with shares (1/3, 2/3) i3 -> 'head', i2 -> 'torso', i1 -> 'tail'.

  Args:
    item_counts: the training counts of the items.
    item_indices: `item_id` vocabulary indices, int64 `[batch]`.

  Returns:
    string `[batch]`, one of `features.POPULARITY_BUCKET_LABELS` or `features.UNSEEN_ITEM_BUCKET`.
  """
  ascending = tf.reverse(item_counts.descending, axis=[0])
  # prefix[i] = interactions of the i least popular items; prefix[-1] = all interactions.
  prefix = tf.concat([tf.zeros([1], tf.int64), tf.cumsum(ascending)], axis=0)
  total = prefix[-1]
  at_most = tf.searchsorted(ascending, item_counts.of(item_indices), side='right', out_type=tf.int64)
  above = tf.cast(total - tf.gather(prefix, at_most), tf.float32)
  share_above = above / tf.cast(tf.maximum(total, 1), tf.float32)
  index = tf.raw_ops.Bucketize(input=share_above, boundaries=list(features.POPULARITY_BUCKET_SHARES))
  bucket = tf.gather(tf.constant(features.POPULARITY_BUCKET_LABELS), index)
  return tf.where(item_counts.seen(item_indices), bucket, tf.constant(features.UNSEEN_ITEM_BUCKET))


def age_bucket(age: Tensor) -> tf.Tensor:
  """Labels each user's age with its bucket, e.g. 23 -> '18-24', 61 -> '56+', missing -> 'unknown'.

  Args:
    age: ages in years, int or float, dense `[batch]`/`[batch, 1]` or SparseTensor `[batch, 1]`.

  Returns:
    string `[batch]`.
  """
  present = _presence(age)
  years = tf.cast(_to_dense(age, default_value=tf.constant(0, age.dtype)), tf.float32)
  boundaries = features.AGE_BUCKET_BOUNDARIES
  labels = [f'<{boundaries[0]}']
  labels += [f'{low}-{high - 1}' for low, high in zip(boundaries[:-1], boundaries[1:])]
  labels.append(f'{boundaries[-1]}+')
  index = tf.raw_ops.Bucketize(input=years, boundaries=[float(b) for b in boundaries])
  bucket = tf.gather(tf.constant(labels), index)
  return tf.where(present, bucket, tf.constant(UNKNOWN_AGE_BUCKET))


def _token_bag_ids(value: Tensor, key: str) -> tf.SparseTensor:
  """Splits '|'-separated values and maps each token to its vocabulary index; SparseTensor `[batch, None]`."""
  text = _to_dense(value, default_value='')
  tokens = tf.strings.split(text, sep=features.MULTI_VALUE_SEPARATOR)
  tokens = tf.ragged.boolean_mask(tokens, tf.strings.length(tokens) > 0)
  return tft.compute_and_apply_vocabulary(
      tokens.to_sparse(), num_oov_buckets=NUM_OOV_BUCKETS, vocab_filename=features.vocabulary_name(key))


def _standardized(value: Tensor) -> tf.Tensor:
  """Z-scores a numeric feature over the training rows that hold a value; a missing value scores 0. float32 `[batch]`.

  E.g. training values 2, 4 and one missing: mean 3, std 1, so 2 -> -1, 4 -> 1, missing -> 0.
  """
  values, present = _values_and_presence(value)
  return _z_score_where_present(values, present, clip_to_training_range=False)


def _values_and_presence(value: Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
  """A single-valued numeric feature as float64 `[batch]` (0 where missing) and its presence, bool `[batch]`."""
  present = tf.reshape(_presence(value), [-1])
  values = tf.cast(_to_dense(value, default_value=tf.constant(0, value.dtype)), tf.float64)
  return values, present


def _z_score_where_present(value: tf.Tensor, present: tf.Tensor, clip_to_training_range: bool) -> tf.Tensor:
  """Z-scores float64 `[batch]` values with the mean and std of the present training values; float32 `[batch]`.

  Rows where `present` is False score exactly 0 and take no part in the statistics; when no training row holds a
  value, or every one holds the same, every row scores 0. With
  `clip_to_training_range` the z-score is clipped to [z(training min), z(training max)], so serving requests
  outside the training period score as its first or last day. That is the clip of the value itself, applied to
  the z-score so that every statistic comes from the one analysis phase.

  The statistics are float64: tft.mean/tft.var combine partial results in whatever order Beam hands them over,
  and in float32 two runs of the same data gave means a few ulps apart, so most rows' z-scores differed in the
  last bit (and the trained models by 0.0003 RMSE). In float64 those differences are ~1e-16 relative and vanish
  when the z-score is rounded to float32.
  """
  training = tf.boolean_mask(value, present)
  mean = tft.mean(training)
  std = tf.sqrt(tft.var(training))
  z_score = _z_score(value, mean, std)
  if clip_to_training_range:
    z_score = tf.clip_by_value(z_score, _z_score(tft.min(training), mean, std),
                               _z_score(tft.max(training), mean, std))
  # Without any training value the statistics are empty (mean 0, std 0, range +-inf): an eval row or a request
  # that holds a value could score NaN once clipped (0 * inf); the model never saw the feature vary: every row 0.
  seen_in_training = tft.size(training) > 0
  return tf.cast(tf.where(present & seen_in_training, z_score, tf.zeros_like(z_score)), tf.float32)


def _z_score(value: tf.Tensor, mean: tf.Tensor, std: tf.Tensor) -> tf.Tensor:
  """(value - mean) / std, of `value`'s dtype; a zero std (constant training values) scores every value 0.

  The model never saw such a feature vary (every training row scores 0), so an eval row or a request with another
  value would feed it an unscaled difference (-65 for a 1930 film when every training film is of 1995).
  """
  return (value - mean) * tf.where(std > 0, 1.0 / std, tf.zeros_like(std))


def _presence(value: Tensor) -> tf.Tensor:
  """True where a row holds a value; bool `[batch]`."""
  if isinstance(value, tf.SparseTensor):
    counts = tf.sparse.reduce_sum(
        tf.SparseTensor(value.indices, tf.ones_like(value.indices[:, 0]), value.dense_shape), axis=1,
        output_is_sparse=False)
    return counts > 0
  return tf.ones_like(tf.reshape(value, [-1]), dtype=tf.bool)


def _to_dense(value: Tensor, default_value: Union[str, float, tf.Tensor]) -> tf.Tensor:
  """Turns a single-valued feature into a dense `[batch]` tensor, filling missing rows with `default_value`."""
  if isinstance(value, tf.SparseTensor):
    value = tf.sparse.to_dense(
        tf.sparse.reset_shape(value, [value.dense_shape[0], 1]), default_value=default_value)
  elif isinstance(value, tf.RaggedTensor):
    value = value.to_tensor(default_value=default_value, shape=[None, 1])
  return tf.reshape(value, [-1])
