"""Item-item neighbourhood rating model (k nearest neighbours with baselines), blended into the ranking model.

The neighbourhood model predicts a user's rating of item i from the ratings the user gave the items most similar
to i (Koren, "Factor in the neighbors", 2010, eq. 3; Surprise's KNNBaseline with item-based `pearson_baseline`
similarities):

    r(u, i) = b(u, i) + sum_j s_ij (r_uj - b(u, j)) / sum_j s_ij,    b(u, i) = mu + b_u + b_i,

where j runs over the (at most k) items the user rated in training that are most similar to i with s_ij > 0,
looked for among i's `num_candidates` most similar items (all of them when it is at least the item count - 1).
Baselines are fitted by alternating least squares; s_ij is the Pearson correlation of the baseline residuals of
items i and j over the users who rated both, shrunk towards 0 by (n_ij - 1) / (n_ij - 1 + shrinkage).

It is fitted in closed form on the training examples after the network is trained (no gradient) and stored in
the exported model as tables (non-trainable variables), so serving needs nothing beyond user_id and item_id:
like the id embeddings, a user's ratings enter at the next training. The ranking model's rating is
(1 - w) * network + w * neighbourhood, w chosen on the validation slice among
`RankingHyperparameters.neighbourhood_weight_choices` or fixed by `neighbourhood_weight`.
"""

import dataclasses
from typing import Any, Dict, Tuple

import numpy as np
import tensorflow as tf

from schema import features

# Surprise's defaults for the alternating-least-squares baselines (regularisation in pseudo-ratings, passes).
BASELINE_USER_REG = 15.0
BASELINE_ITEM_REG = 10.0
BASELINE_PASSES = 10
# The similarity computation accumulates 4 float64 [512, num_items] sums per block of items (1.6 GB at this
# many items); refuse above it.
MAX_ITEMS = 100_000
# Items whose similarities are computed at once.
_SIMILARITY_BLOCK = 512
# Users whose ratings are laid out as dense [users, num_items] rows at once (memory: this x num_items float64 x 2).
_USER_CHUNK = 2048


@dataclasses.dataclass(frozen=True)
class NeighbourhoodTables:
  """What the neighbourhood model needs at prediction time (numpy arrays).

  Indices are the transformed `user_id` / `item_id` (vocabulary indices); a user or item index at or above the
  tables' sizes (unseen in training) has bias 0 and no ratings.

  Attributes:
    global_mean: mu, mean training rating (stars).
    user_bias: b_u, float32 `[num_users]` (stars).
    item_bias: b_i, float32 `[num_items]` (stars).
    neighbour_items: int64 `[num_items, num_candidates]`, each item's most similar other items, most similar
      first; padded with 0 where fewer have a positive similarity.
    neighbour_similarity: float32 `[num_items, num_candidates]`, their shrunk similarities (> 0; 0 = padding).
    rating_keys: int64 `[num_ratings]`, sorted: user * num_items + item of every training rating.
    rating_residuals: float32 `[num_ratings]`, r_uj - b(u, j) of those ratings, in the same order.
  """
  global_mean: float
  user_bias: np.ndarray
  item_bias: np.ndarray
  neighbour_items: np.ndarray
  neighbour_similarity: np.ndarray
  rating_keys: np.ndarray
  rating_residuals: np.ndarray

  @property
  def num_items(self) -> int:
    return int(self.item_bias.shape[0])


def fit_baselines(users: np.ndarray, items: np.ndarray, ratings: np.ndarray, num_users: int, num_items: int,
                  user_reg: float = BASELINE_USER_REG, item_reg: float = BASELINE_ITEM_REG,
                  passes: int = BASELINE_PASSES) -> Tuple[float, np.ndarray, np.ndarray]:
  """Fits mu + b_u + b_i by alternating regularised least squares (item biases first, as Surprise does).

  Args:
    users, items: int `[n]` indices; ratings: float `[n]` stars.
    num_users, num_items: table sizes (greater than every index).
    user_reg, item_reg: L2 penalties in pseudo-ratings (b_i = sum(r - mu - b_u) / (item_reg + n_i)).
    passes: alternations.

  Returns:
    (mu, b_u float64 `[num_users]`, b_i float64 `[num_items]`); an index without ratings has bias 0 (also with a
    penalty of 0, where its formula is 0/0).

  Raises:
    ValueError: if a penalty is negative.
  """
  for name, value in (('user_reg', user_reg), ('item_reg', item_reg)):
    if not value >= 0:
      raise ValueError(f'{name}={value} must be >= 0 (a pseudo-rating count; {name}=0 fits unregularised biases).')
  mu = float(np.mean(ratings, dtype=np.float64))
  user_denominator = user_reg + np.bincount(users, minlength=num_users)
  item_denominator = item_reg + np.bincount(items, minlength=num_items)
  user_bias = np.zeros(num_users)
  item_bias = np.zeros(num_items)
  for _ in range(passes):
    item_bias = np.divide(np.bincount(items, ratings - mu - user_bias[users], minlength=num_items),
                          item_denominator, out=np.zeros(num_items), where=item_denominator > 0)
    user_bias = np.divide(np.bincount(users, ratings - mu - item_bias[items], minlength=num_users),
                          user_denominator, out=np.zeros(num_users), where=user_denominator > 0)
  return mu, user_bias, item_bias


def item_similarities(users: np.ndarray, items: np.ndarray, residuals: np.ndarray, num_users: int, num_items: int,
                      shrinkage: float, num_candidates: int) -> Tuple[np.ndarray, np.ndarray]:
  """Each item's `num_candidates` most similar other items by shrunk Pearson correlation of baseline residuals.

  s_ij = sum_u e_ui e_uj / sqrt(sum_u e_ui^2 * sum_u e_uj^2) * (n_ij - 1) / (n_ij - 1 + shrinkage), the sums over
  the n_ij users who rated both i and j; 0 where n_ij <= 1 (with shrinkage 0 the factor is 0/0 there: dropped too).
  Only positive similarities are kept.

  Args:
    users, items: int `[n]` indices of the training ratings (each (user, item) at most once); residuals: float
      `[n]`, rating minus baseline.
    num_users, num_items: table sizes.
    shrinkage: pseudo-count pulling similarities supported by few common users towards 0.
    num_candidates: neighbours kept per item.

  Returns:
    (neighbour items int64 `[num_items, num_candidates]`, their similarities float32, most similar first,
    padded with item 0 / similarity 0).

  Raises:
    ValueError: if `num_items` exceeds `MAX_ITEMS`, `shrinkage` is negative or `num_candidates` is.
  """
  if not shrinkage >= 0:
    raise ValueError(f'neighbourhood_shrinkage={shrinkage} must be >= 0 (a pseudo-count of common users).')
  if num_candidates < 0:
    raise ValueError(f'neighbourhood_candidates={num_candidates} must be >= 0 (similar items kept per item).')
  if num_items > MAX_ITEMS:
    raise ValueError(
        f'The neighbourhood model computes item-item similarities for {num_items:,} items (limit {MAX_ITEMS:,}); '
        'set neighbourhood_weight=0 and neighbourhood_weight_choices=[] in the ranking hyperparameters '
        '(--ranking-hparams) to train without it on a catalogue this large.')
  by_user = np.argsort(users, kind='stable')
  users, items, residuals = users[by_user], items[by_user], residuals[by_user]
  chunk_starts = np.searchsorted(users, np.arange(0, num_users, _USER_CHUNK))
  chunk_ends = np.append(chunk_starts[1:], users.size)
  candidates = min(num_candidates, max(num_items - 1, 0))
  neighbour_items = np.zeros((num_items, num_candidates), np.int64)
  neighbour_similarity = np.zeros((num_items, num_candidates), np.float32)
  for start in range(0, num_items, _SIMILARITY_BLOCK):
    block = slice(start, min(start + _SIMILARITY_BLOCK, num_items))
    width = block.stop - block.start
    # Sums over users: of e_ui e_uj, e_ui^2 [j rated], [i rated] e_uj^2, [i and j rated]; each [block, num_items].
    products, squared_left, squared_right, common = (np.zeros((width, num_items)) for _ in range(4))
    for first, last in zip(chunk_starts, chunk_ends):
      if first == last:
        continue
      chunk_users = users[first:last] - users[first]
      residual = np.zeros((int(chunk_users[-1]) + 1, num_items))
      residual[chunk_users, items[first:last]] = residuals[first:last]
      rated = np.zeros_like(residual)
      rated[chunk_users, items[first:last]] = 1.0
      squared = residual * residual
      products += residual[:, block].T @ residual
      squared_left += squared[:, block].T @ rated
      squared_right += rated[:, block].T @ squared
      common += rated[:, block].T @ rated
    norms = np.sqrt(squared_left * squared_right)
    with np.errstate(divide='ignore', invalid='ignore'):
      similarity = np.where(norms > 0, products / norms, 0.0) * np.maximum(common - 1, 0) / (
          np.maximum(common - 1, 0) + shrinkage)
    rows = np.arange(width)
    similarity[rows, rows + start] = -np.inf                  # an item is not its own neighbour
    if candidates == 0:
      continue
    top = np.argpartition(-similarity, candidates - 1, axis=1)[:, :candidates]
    top_similarity = np.take_along_axis(similarity, top, axis=1)
    order = np.argsort(-top_similarity, axis=1, kind='stable')
    top = np.take_along_axis(top, order, axis=1)
    top_similarity = np.take_along_axis(top_similarity, order, axis=1)
    positive = top_similarity > 0
    neighbour_items[block, :candidates] = np.where(positive, top, 0)
    neighbour_similarity[block, :candidates] = np.where(positive, top_similarity, 0.0)
  return neighbour_items, neighbour_similarity


def fit_tables(users: np.ndarray, items: np.ndarray, ratings: np.ndarray, shrinkage: float,
               num_candidates: int) -> NeighbourhoodTables:
  """Fits the baselines and the similarities on training ratings.

  Args:
    users, items: int `[n]` transformed user_id / item_id; ratings: float `[n]` stars. A (user, item) pair
      rated twice keeps its last rating.
    shrinkage, num_candidates: see `item_similarities`.

  Returns:
    The tables, sized by the largest user and item index + 1.

  Raises:
    ValueError: if there are no ratings, more items than `MAX_ITEMS`, or a negative shrinkage / num_candidates.
  """
  if users.size == 0:
    raise ValueError('The neighbourhood model needs training ratings; the training split is empty.')
  users, items = users.astype(np.int64), items.astype(np.int64)
  ratings = ratings.astype(np.float64)
  num_users, num_items = int(users.max()) + 1, int(items.max()) + 1
  keys = users * num_items + items
  # One rating per (user, item): the last one (np.unique keeps the first of the reversed order).
  keys, last = np.unique(keys[::-1], return_index=True)
  last = users.size - 1 - last
  users, items, ratings = users[last], items[last], ratings[last]
  mu, user_bias, item_bias = fit_baselines(users, items, ratings, num_users, num_items)
  residuals = ratings - (mu + user_bias[users] + item_bias[items])
  neighbour_items, neighbour_similarity = item_similarities(
      users, items, residuals, num_users, num_items, shrinkage, num_candidates)
  return NeighbourhoodTables(
      global_mean=mu, user_bias=user_bias.astype(np.float32), item_bias=item_bias.astype(np.float32),
      neighbour_items=neighbour_items, neighbour_similarity=neighbour_similarity,
      rating_keys=keys, rating_residuals=residuals.astype(np.float32))


def blend_rmse(network: np.ndarray, neighbourhood: np.ndarray, labels: np.ndarray, weight: float) -> float:
  """RMSE (stars) of (1 - weight) * network + weight * neighbourhood against labels (all float `[n]`)."""
  blended = (1.0 - weight) * network + weight * neighbourhood
  return float(np.sqrt(np.mean((blended - labels) ** 2)))


class NeighbourhoodRating(tf.keras.layers.Layer):
  """Predicts ratings with the neighbourhood model's tables (held as non-trainable variables)."""

  def __init__(self, tables: NeighbourhoodTables, max_neighbours: int, **kwargs: Any) -> None:
    """Args: tables: `fit_tables`' output; max_neighbours: k, the most rated neighbours averaged per prediction;
    kwargs: Keras layer arguments (e.g. name).

    Raises:
      ValueError: if `max_neighbours` < 1.
    """
    super().__init__(**kwargs)
    if max_neighbours < 1:
      raise ValueError(f'neighbourhood_k={max_neighbours} must be a positive integer.')
    self.max_neighbours = max_neighbours
    self.num_items = tables.num_items
    self.global_mean = float(tables.global_mean)

    def table(name: str, values: np.ndarray) -> tf.Variable:
      return tf.Variable(values, trainable=False, name=name)

    # One extra zero row: indices of users and items unseen in training are mapped to it.
    self.user_bias = table('user_bias', np.append(tables.user_bias, 0.0).astype(np.float32))
    self.item_bias = table('item_bias', np.append(tables.item_bias, 0.0).astype(np.float32))
    self.neighbour_items = table('neighbour_items', np.concatenate(
        [tables.neighbour_items, np.zeros((1, tables.neighbour_items.shape[1]), np.int64)]))
    self.neighbour_similarity = table('neighbour_similarity', np.concatenate(
        [tables.neighbour_similarity, np.zeros((1, tables.neighbour_similarity.shape[1]), np.float32)]))
    # A sentinel key above every real key keeps the search's insertion point inside the table.
    self.rating_keys = table('rating_keys', np.append(tables.rating_keys, np.iinfo(np.int64).max))
    self.rating_residuals = table('rating_residuals', np.append(tables.rating_residuals, 0.0).astype(np.float32))

  def call(self, inputs: Dict[str, tf.Tensor]) -> tf.Tensor:
    """Args: inputs: transformed features (user_id and item_id indices, `[batch]`). Returns: float32 `[batch, 1]`."""
    users = tf.reshape(tf.cast(inputs[features.transformed_name(features.USER_ID)], tf.int64), [-1])
    items = tf.reshape(tf.cast(inputs[features.transformed_name(features.ITEM_ID)], tf.int64), [-1])
    num_users = tf.shape(self.user_bias, out_type=tf.int64)[0] - 1
    known_users = tf.where((users >= 0) & (users < num_users), users, num_users)
    known_items = tf.where((items >= 0) & (items < self.num_items), items, self.num_items)
    baseline = (self.global_mean + tf.gather(self.user_bias, known_users)
                + tf.gather(self.item_bias, known_items))                                   # [batch]
    neighbours = tf.gather(self.neighbour_items, known_items)                               # [batch, candidates]
    similarity = tf.gather(self.neighbour_similarity, known_items)                          # [batch, candidates]
    keys = tf.expand_dims(known_users, 1) * self.num_items + neighbours
    flat_keys = tf.reshape(keys, [-1])
    position = tf.searchsorted(self.rating_keys, flat_keys, side='left')
    found = tf.reshape(tf.gather(self.rating_keys, position) == flat_keys, tf.shape(keys))
    # Neighbours are ordered most similar first: keep the first max_neighbours the user rated. (An unseen user's
    # keys, num_users * num_items + j, lie above every rating's key: none is found.)
    rated = found & (similarity > 0)
    used = rated & (tf.cumsum(tf.cast(rated, tf.int32), axis=1) <= self.max_neighbours)
    weights = tf.where(used, similarity, 0.0)
    residuals = tf.reshape(tf.gather(self.rating_residuals, position), tf.shape(keys))
    weighted = tf.reduce_sum(weights * tf.where(used, residuals, 0.0), axis=1)
    total = tf.reduce_sum(weights, axis=1)
    correction = tf.math.divide_no_nan(weighted, total)
    return tf.reshape(baseline + correction, [-1, 1])


class NeighbourhoodBlend(tf.keras.Model):
  """(1 - weight) * rating model + weight * neighbourhood model, float32 `[batch, 1]` stars."""

  def __init__(self, rating_model: tf.keras.Model, neighbourhood: NeighbourhoodRating, weight: float) -> None:
    super().__init__()
    if not 0.0 < weight <= 1.0:
      raise ValueError(f'neighbourhood_weight={weight} must be in (0, 1] to blend (0 leaves the model alone).')
    self.rating_model = rating_model
    self.neighbourhood = neighbourhood
    self.weight = float(weight)

  def call(self, inputs: Dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
    """Predicted ratings, float32 `[batch, 1]`."""
    return ((1.0 - self.weight) * self.rating_model(inputs, training=training)
            + self.weight * self.neighbourhood(inputs))
