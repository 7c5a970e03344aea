"""Retrieval quality from a full user x item score matrix: top-K accuracy and Recall@K with seen items removed.

The definitions are those of `../shared/bench/retrieval_baselines.py`, so figures compare with its peers:

* top-K categorical accuracy (as TFRS's FactorizedTopK): over every evaluation (user, item) pair, the share
  whose item is among the user's K best-scored catalogue items, all items scored, training items kept.
* Recall@K, training items removed: per user, truth = evaluation items minus training items; the user's
  training items are excluded from the ranking; recall = |truth ∩ top K| / min(|truth|, K); averaged over the
  users whose truth is non-empty.
"""

from typing import Iterable, List, Sequence, Set

import numpy as np


class NonFiniteScoresError(ValueError):
  """Some scores are NaN: the model's embeddings or scores are not numbers (e.g. training diverged)."""


def top_k_columns(scores: np.ndarray, k: int) -> np.ndarray:
  """The column indices of each row's `k` largest scores, in no particular order.

  Args:
    scores: float `[num_users, num_items]`.
    k: how many to keep; more than `num_items` keeps every column.

  Returns:
    int `[num_users, min(k, num_items)]`.

  Raises:
    ValueError: if `k` < 1.
    NonFiniteScoresError: if a score is NaN.
  """
  if k < 1:
    raise ValueError(f'k={k} must be a positive integer.')
  nan_rows, nan_columns = np.nonzero(np.isnan(scores))
  if len(nan_rows):
    # Ranked silently, a NaN sorts below every number: the item is never retrieved, and a row of NaN keeps
    # arbitrary columns, so the metrics would measure the sort instead of the model.
    raise NonFiniteScoresError(f'{len(nan_rows)} scores are NaN (the first of user row {nan_rows[0]}, item column '
                     f'{nan_columns[0]}); the model\'s embeddings or scores are not numbers, e.g. after training '
                     'diverged. Fix the model (lower the learning rate) before measuring it.')
  num_items = scores.shape[1]
  if k >= num_items:
    return np.tile(np.arange(num_items), (scores.shape[0], 1))
  return np.argpartition(-scores, k, axis=1)[:, :k]


def top_k_accuracy(scores: np.ndarray, pair_users: Sequence[int], pair_items: Sequence[int], k: int) -> float:
  """Share of evaluation pairs whose item is among its user's top `k` (all items scored, seen kept).

  Args:
    scores: float `[num_users, num_items]`, every catalogue item scored for every evaluated user.
    pair_users: row of `scores` of each evaluation pair, `[num_pairs]`.
    pair_items: column of `scores` of each evaluation pair's item, `[num_pairs]`. A column at or past
      `num_items` stands for an item the model does not score: never in a top k, the pair is a miss.
    k: the cut-off.

  Returns:
    The accuracy in [0, 1].

  Raises:
    ValueError: if there are no pairs, the two sequences differ in length or `k` < 1;
      `NonFiniteScoresError` (a ValueError) if a score is NaN.
  """
  pair_users, pair_items = np.asarray(pair_users), np.asarray(pair_items)
  if len(pair_users) == 0 or len(pair_users) != len(pair_items):
    raise ValueError(f'Need one item per evaluation pair and at least one pair; got {len(pair_users)} users '
                     f'and {len(pair_items)} items.')
  top = top_k_columns(scores, k)
  hits = (top[pair_users] == pair_items[:, None]).any(axis=1)
  return float(hits.mean())


def recall_per_user(scores: np.ndarray, eval_items: Sequence[Set[int]], seen_items: Sequence[Set[int]],
                    k: int) -> np.ndarray:
  """Recall@k of each user with the user's training items removed from both the ranking and the truth.

  Args:
    scores: float `[num_users, num_items]`.
    eval_items: per row of `scores`, the columns of the user's evaluation items.
    seen_items: per row of `scores`, the columns of the user's training items. Columns at or past `num_items`
      stand for items the model does not score (new since it was trained): never in a top k, they are only
      removed from the truth.
    k: the cut-off.

  Returns:
    float `[num_users]`: |truth ∩ top k| / min(|truth|, k), NaN for users whose truth is empty.

  Raises:
    ValueError: if `eval_items` or `seen_items` do not have one entry per row of `scores`, `k` < 1 or a score
      is NaN.
  """
  num_users = scores.shape[0]
  if len(eval_items) != num_users or len(seen_items) != num_users:
    raise ValueError(f'scores has {num_users} users but eval_items has {len(eval_items)} and seen_items '
                     f'{len(seen_items)}; pass one set per user row.')
  masked = np.array(scores, dtype=np.float64, copy=True)
  for row, seen in enumerate(seen_items):
    scored = [column for column in seen if column < masked.shape[1]]  # columns past them: items not scored
    if scored:
      masked[row, scored] = -np.inf
  top = top_k_columns(masked, k)
  recalls = np.full(num_users, np.nan)
  for row in range(num_users):
    truth = set(eval_items[row]) - set(seen_items[row])
    if truth:
      recalls[row] = len(truth & set(top[row].tolist())) / min(len(truth), k)
  return recalls


def mean_recall(recalls: Iterable[float]) -> float:
  """Mean of per-user recalls over users that have one (not NaN); NaN when none has."""
  values = np.asarray(list(recalls), dtype=np.float64)
  values = values[~np.isnan(values)]
  return float(values.mean()) if len(values) else float('nan')


def users_with_truth(recalls: np.ndarray) -> List[int]:
  """Rows whose recall is defined (non-empty truth)."""
  return [int(i) for i in np.nonzero(~np.isnan(recalls))[0]]
