"""Item-item retrieval scores from the user's own training items (EASE), added to the two-tower scores.

The two-tower model places a user by id and profile; what the user has consumed enters only through the user id
embedding. An item-item model scores an item by the items the user has: EASE (Steck, "Embarrassingly Shallow
Autoencoders for Sparse Data", WWW 2019) learns the weights `B` `[num_items, num_items]` of a linear
model predicting each item's column of the user x item matrix `X` (1 where the user interacted, 0 otherwise)
from the other columns, in closed form:

    P = (XᵀX + l2 · I)⁻¹,   B[i, j] = -P[i, j] / P[j, j],   B[j, j] = 0,

and a user's score of item j is `x_u · B[:, j]` (sum over the user's items i of B[i, j]). The export ranks the
catalogue by `query · candidate + weight · x_u · B` for the items the user has not interacted with and by the
two-tower score alone for the items they have (a user's own items are what B predicts best, and the serving
recommender drops them anyway), so the top-K holds more unseen candidates. Users outside the training data have
no items: their scores are the two-tower scores.

Cost: `XᵀX` and its inverse are `[n, n]` float64 (time ∝ n³), n the items covered: those with training users, at
most `item_item_max_items` (default `MAX_ITEMS`; the most popular; the others get no item-item score). At serving, a user with h training items
costs h · n multiply-adds.
"""

from typing import Dict, NamedTuple, Sequence, Tuple

import numpy as np
import tensorflow as tf

from ingestion import example_columns
from schema import features
from trainer.retrieval import hparams as hparams_lib

# Most items the item-item model covers by default (the ones with the most training users; the setting is
# `item_item_max_items`). At 10,000 covered items the fit took 130 s and the process peaked at 4.1 GB (50,000
# generated users, 2-core machine with a test run beside it; benchmarks/item_item_fit.py).
MAX_ITEMS = hparams_lib.RetrievalHyperparameters.item_item_max_items
# Training examples parsed per step while reading the users' items.
_READ_BATCH_SIZE = 4096
# Users whose items are summed into XᵀX at once.
_USER_CHUNK = 2048


class Histories(NamedTuple):
  """Each training user's distinct items, as catalogue columns, in compressed-row form.

  Attributes:
    user_ids: string `[num_users]`, raw user ids, sorted.
    row_splits: int64 `[num_users + 1]`; user r's items are `item_columns[row_splits[r]:row_splits[r + 1]]`.
    item_columns: int64 `[num_interactions]`, catalogue columns, ascending within each user.
  """
  user_ids: np.ndarray
  row_splits: np.ndarray
  item_columns: np.ndarray


def read_histories(train_file_patterns: Sequence[str], item_ids: np.ndarray) -> Histories:
  """Reads every training user's distinct items from ExampleGen's raw training examples.

  Args:
    train_file_patterns: the training split's raw example files.
    item_ids: string `[num_items]`, the catalogue's raw item ids in the order of the export's columns.

  Raises:
    ValueError: if a training item is missing from `item_ids` (the catalogue must be read from the same files).
  """
  column_of = {item: column for column, item in enumerate(item_ids.tolist())}
  spec = {features.USER_ID: tf.io.FixedLenFeature([], tf.string),
          features.ITEM_ID: tf.io.FixedLenFeature([], tf.string)}
  by_user: Dict[bytes, set] = {}
  for batch in example_columns.serialized_examples(train_file_patterns).batch(_READ_BATCH_SIZE):
    parsed = tf.io.parse_example(batch, spec)
    for user, item in zip(parsed[features.USER_ID].numpy().tolist(), parsed[features.ITEM_ID].numpy().tolist()):
      if item not in column_of:
        raise ValueError(f'Training item {item!r} is not in the retrieval catalogue; build the catalogue from the '
                         'training files too (candidates.catalogue_examples).')
      by_user.setdefault(user, set()).add(column_of[item])
  return histories_from_sets(by_user)


def histories_from_sets(items_by_user: Dict[bytes, set]) -> Histories:
  """Compressed-row `Histories` of user id -> set of catalogue columns."""
  users = sorted(items_by_user)
  lengths = [len(items_by_user[u]) for u in users]
  row_splits = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
  columns = [np.array(sorted(items_by_user[u]), np.int64) for u in users]
  item_columns = np.concatenate(columns) if columns else np.zeros([0], np.int64)
  return Histories(np.array(users, dtype=object), row_splits, item_columns)


class ItemItemWeights(NamedTuple):
  """EASE weights over the catalogue items the item-item model covers.

  Attributes:
    columns: int64 `[num_covered]`, the covered catalogue columns, ascending.
    weights: float32 `[num_covered, num_covered]`, B between them (zero diagonal).
  """
  columns: np.ndarray
  weights: np.ndarray


def covered_columns(histories: Histories, num_items: int, max_items: int = MAX_ITEMS) -> np.ndarray:
  """The catalogue columns the item-item model covers: items with training users, at most `max_items` of them.

  Above `max_items`, the items with the most training users are kept (ties: the lower column); the others get no
  item-item score (the two-tower score alone ranks them).

  Returns:
    int64 `[num_covered]`, ascending.

  Raises:
    ValueError: if `max_items` < 1.
  """
  if max_items < 1:
    raise ValueError(f'item_item_max_items={max_items} must be a positive integer (the most items covered).')
  users_per_item = np.bincount(histories.item_columns, minlength=num_items)
  with_users = np.flatnonzero(users_per_item)
  if with_users.size > max_items:
    # Stable sort on -count: equal counts keep ascending column order.
    with_users = np.sort(np.argsort(-users_per_item, kind='stable')[:max_items])
  return with_users.astype(np.int64)


def fit_weights(histories: Histories, num_items: int, l2: float, max_items: int = MAX_ITEMS) -> ItemItemWeights:
  """EASE weights `B` of the users' items (formula in the module docstring), over `covered_columns`.

  Args:
    histories: the training users' items (`read_histories`).
    num_items: catalogue size.
    l2: the ridge penalty added to XᵀX's diagonal (> 0); larger shrinks B towards 0.
    max_items: the most items covered (memory: 3 x 8 x max_items² bytes while fitting).

  Raises:
    ValueError: if `l2` is not positive or `max_items` < 1.
  """
  if l2 <= 0:
    raise ValueError(f'item_item_l2={l2} must be positive.')
  columns = covered_columns(histories, num_items, max_items)
  position = np.full(num_items, -1, np.int64)
  position[columns] = np.arange(columns.size)
  gram = np.zeros([columns.size, columns.size], np.float64)
  # XᵀX summed over chunks of users, so memory does not grow with the number of users.
  for first in range(0, len(histories.user_ids), _USER_CHUNK):
    last = min(first + _USER_CHUNK, len(histories.user_ids))
    begin, end = histories.row_splits[first], histories.row_splits[last]
    rows = np.repeat(np.arange(last - first), np.diff(histories.row_splits[first:last + 1]))
    items = position[histories.item_columns[begin:end]]
    kept = items >= 0
    chunk = np.zeros([last - first, columns.size], np.float64)
    chunk[rows[kept], items[kept]] = 1.0
    gram += chunk.T @ chunk
  gram[np.diag_indices(columns.size)] += l2
  weights = np.linalg.inv(gram)
  del gram
  # In place, so the fit holds one more matrix at most: B = -P / diag(P) column by column.
  weights /= -np.diag(weights).copy()[np.newaxis, :]
  weights[np.diag_indices(columns.size)] = 0.0
  return ItemItemWeights(columns, weights.astype(np.float32))


class ItemItemScorer(tf.Module):
  """The item-item scores of users given by raw id, from tables saved with the export.

  Call with raw user ids, string `[batch]`; returns the scores, float32 `[batch, num_items]`: `x_u · B` on the
  items the user has not interacted with and 0 on those they have (the user's training items, `x_u`). Unknown
  users get zeros. `unseen_covered_scores` gives the same scores on the covered items only (what an approximate
  index's candidates are re-scored with, without a catalogue-wide tensor).
  """

  def __init__(self, histories: Histories, weights: ItemItemWeights, num_items: int, name: str = 'item_item') -> None:
    """Args: histories: the users' items; weights: `fit_weights`' output; num_items: catalogue size.

    Raises:
      ValueError: if `histories` holds no user (the user table cannot be empty).
    """
    num_users = len(histories.user_ids)
    if num_users == 0:
      raise ValueError('The item-item scorer needs training users, and the training files hold none; check the '
                       'training split, or set item_item_weight=0 to export the two-tower scores alone.')
    super().__init__(name=name)
    self.user_rows = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(list(histories.user_ids), tf.string),
                                            tf.range(num_users, dtype=tf.int64)), default_value=-1)
    self.row_splits = tf.Variable(histories.row_splits, dtype=tf.int64, trainable=False, name='row_splits')
    self.item_columns = tf.Variable(histories.item_columns, dtype=tf.int64, trainable=False, name='item_columns')
    # Catalogue column -> row of `weights` (covered items), or num_covered (a zero row/column) for the others.
    num_covered = int(weights.columns.size)
    position = np.full(num_items, num_covered, np.int64)
    position[weights.columns] = np.arange(num_covered)
    self.covered_position = tf.Variable(position, trainable=False, name='covered_position')
    self.covered_columns = tf.Variable(weights.columns.astype(np.int64), trainable=False, name='covered_columns')
    padded = np.zeros([num_covered + 1, num_covered + 1], np.float32)
    padded[:num_covered, :num_covered] = weights.weights
    self.weights = tf.Variable(padded, trainable=False, name='weights')

  @classmethod
  def fit(cls, histories: Histories, num_items: int, l2: float, max_items: int = MAX_ITEMS) -> 'ItemItemScorer':
    """The scorer of `fit_weights(histories, num_items, l2, max_items)`."""
    return cls(histories, fit_weights(histories, num_items, l2, max_items), num_items)

  @property
  def num_items(self) -> int:
    return int(self.covered_position.shape[0])

  @property
  def num_covered(self) -> int:
    """Items with item-item weights (the others get no item-item score)."""
    return int(self.weights.shape[0]) - 1

  def _user_items(self, user_ids: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(batch size, the users' item columns int64 `[n]`, the query row of each int64 `[n]`); unknown users: none."""
    user_ids = tf.reshape(user_ids, [-1])
    batch_size = tf.shape(user_ids, out_type=tf.int64)[0]
    rows = self.user_rows.lookup(user_ids)
    known = rows >= 0
    safe_rows = tf.where(known, rows, tf.zeros_like(rows))
    starts = tf.gather(self.row_splits, safe_rows)
    lengths = tf.where(known, tf.gather(self.row_splits, safe_rows + 1) - starts, tf.zeros_like(starts))
    positions = tf.ragged.range(starts, starts + lengths)
    return batch_size, tf.gather(self.item_columns, positions.flat_values), positions.value_rowids()

  def unseen_covered_scores(self, user_ids: tf.Tensor) -> tf.Tensor:
    """float32 `[batch, num_covered + 1]`: column p is covered item `covered_columns[p]`'s score `x_u · B` for
    the users who have not interacted with it, 0 for those who have; the last column is 0 (the position
    `covered_position` gives the items not covered)."""
    batch_size, items, query_of_item = self._user_items(user_ids)
    item_positions = tf.gather(self.covered_position, items)
    scores = tf.math.unsorted_segment_sum(tf.gather(self.weights, item_positions), query_of_item, batch_size)
    seen = tf.scatter_nd(tf.stack([query_of_item, item_positions], axis=1), tf.ones_like(items, tf.float32),
                         tf.stack([batch_size, tf.cast(self.num_covered + 1, tf.int64)]))
    return scores * (1.0 - tf.minimum(seen, 1.0))

  def __call__(self, user_ids: tf.Tensor) -> tf.Tensor:
    """float32 `[batch, num_items]`: the scores of every catalogue item (see the class docstring)."""
    return tf.gather(self.unseen_covered_scores(user_ids), self.covered_position, axis=1)
