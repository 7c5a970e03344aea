"""The user's recent ratings as a feature of each interaction: the mean of the user's last ratings before it.

A user's ratings drift within a rating session (MovieLens user 405 gives 4.3 stars on average to the first tenth
of his 737 ratings, made within 90 minutes, and 1.1 to the last tenth), and what a user rated just before is
known when the next item is ranked. `recent_rating` (schema.features.RECENT_RATING) of an interaction is the mean
of the user's last `window` TRAINING ratings made strictly before it (an earlier second), in stars; it is missing
(NaN) when the user has none. Only training ratings count, for the eval rows too, so an eval label never reaches
a feature. At serving time the same definition at the request's moment is the mean of the user's last `window`
training ratings (`latest_recent_ratings`).
"""

from typing import Dict, Sequence

import numpy as np

from schema import features

# Event kinds, in the order events of one user and one second are sorted: a row is asked about before the
# history ratings of its own second count, so only strictly earlier ratings reach it.
_QUERY, _HISTORY = 0, 1


def _check_window(window: int) -> None:
  if window < 1:
    raise ValueError(f'window={window} must be at least 1 (the number of earlier ratings averaged); '
                     'fix the recent-rating window.')


def recent_ratings(user_ids: Sequence[str], timestamps: np.ndarray, ratings: np.ndarray,
                   history_rows: Sequence[int], window: int = features.RECENT_RATING_WINDOW) -> np.ndarray:
  """The `recent_rating` of every row: the mean of its user's last `window` history ratings before it.

  E.g. a user with history ratings 5 (t=10), 1 (t=20), 3 (t=30) and window 2: a row at t=10 has none (NaN),
  at t=25 the mean of 5 and 1 (3.0), at t=30 again 3.0 (the rating at t=30 is not before it), at t=31 2.0.

  Args:
    user_ids: the user of each row, `[num_rows]`.
    timestamps: int64 unix seconds of each row, `[num_rows]`.
    ratings: float stars of each row, `[num_rows]` (only the history rows' ratings are read).
    history_rows: 0-based indices of the rows whose ratings are known history (the training split), each
      once, in any order. History ratings of one user and one second count in row order, as in
      `latest_recent_ratings`.
    window: how many of the latest earlier ratings are averaged (>= 1).

  Returns:
    float64 `[num_rows]`, NaN where the user has no history rating before the row.

  Raises:
    ValueError: if `window` < 1, the inputs' lengths differ, a history row is out of range or repeated, or a
      history rating is not finite.
  """
  _check_window(window)
  num_rows = len(user_ids)
  if len(timestamps) != num_rows or len(ratings) != num_rows:
    raise ValueError(f'user_ids, timestamps and ratings must have one value per row; got lengths '
                     f'{num_rows}, {len(timestamps)} and {len(ratings)}.')
  _, user_codes = np.unique(np.asarray(user_ids, dtype=object).astype(str), return_inverse=True)
  timestamps = np.asarray(timestamps, dtype=np.int64)
  ratings = np.asarray(ratings, dtype=np.float64)
  history = np.asarray(history_rows, dtype=np.int64).reshape(-1)
  out_of_range = history[(history < 0) | (history >= num_rows)]
  if len(out_of_range):
    raise ValueError(f'history_rows {out_of_range[:3].tolist()} are not row indices in [0, {num_rows}); pass '
                     'the 0-based rows of the training split.')
  unique_history, counts = np.unique(history, return_counts=True)
  if np.any(counts > 1):
    raise ValueError(f'history_rows repeats rows {unique_history[counts > 1][:3].tolist()}; a repeated row '
                     'would count its rating more than once. Pass each training row once.')
  not_finite = history[~np.isfinite(ratings[history])]
  if len(not_finite):
    raise ValueError(f'the ratings of history rows {not_finite[:3].tolist()} are not finite '
                     f'({ratings[not_finite[:3]].tolist()}); through the running sums they would spoil the '
                     'recent_rating of later rows and of other users. Drop or fix those rows.')
  if num_rows == 0:
    return np.full(0, np.nan)
  # One event per row (a query) and one per history row, sorted by user, time, kind (queries first), then row.
  rows = np.concatenate([np.arange(num_rows), history])
  kinds = np.concatenate([np.full(num_rows, _QUERY), np.full(len(history), _HISTORY)])
  order = np.lexsort((rows, kinds, timestamps[rows], user_codes[rows]))
  rows, kinds, users = rows[order], kinds[order], user_codes[rows[order]]
  is_history = kinds == _HISTORY
  # History ratings before each event (all users), and their prefix sums in event order.
  history_before = np.cumsum(is_history) - is_history
  prefix = np.concatenate([[0.0], np.cumsum(ratings[rows[is_history]])])
  # The count at each user's first event: where that user's history starts.
  first_event = np.r_[True, users[1:] != users[:-1]]
  user_start = history_before[first_event][np.cumsum(first_event) - 1]
  queries = ~is_history
  before, start = history_before[queries], user_start[queries]
  first = np.maximum(start, before - window)
  count = before - first
  means = np.full(num_rows, np.nan)
  has_history = count > 0
  means[rows[queries][has_history]] = (
      (prefix[before] - prefix[first])[has_history] / count[has_history])
  return means


def latest_recent_ratings(user_ids: Sequence[str], timestamps: np.ndarray, ratings: np.ndarray,
                          window: int = features.RECENT_RATING_WINDOW) -> Dict[str, float]:
  """Each user's `recent_rating` after all the given (training) ratings: the mean of the last `window`.

  Ratings of the same second keep their given order, so the last `window` are well defined. E.g. user u
  rating 5 (t=10), 1 (t=20), 3 (t=30) with window 2 -> {'u': 2.0}.

  Args:
    user_ids, timestamps, ratings: one value per training interaction, `[num_rows]`.
    window: how many of the latest ratings are averaged (>= 1).

  Returns:
    user_id -> mean of that user's last `window` ratings, stars.

  Raises:
    ValueError: if `window` < 1 or the inputs' lengths differ.
  """
  _check_window(window)
  if not len(user_ids) == len(timestamps) == len(ratings):
    raise ValueError(f'user_ids, timestamps and ratings must have one value per rating; got lengths '
                     f'{len(user_ids)}, {len(timestamps)} and {len(ratings)}.')
  if len(user_ids) == 0:
    return {}
  user_ids = np.asarray(user_ids, dtype=object).astype(str)
  timestamps = np.asarray(timestamps, dtype=np.int64)
  ratings = np.asarray(ratings, dtype=np.float64)
  order = np.lexsort((np.arange(len(user_ids)), timestamps, user_ids))
  sorted_users = user_ids[order]
  boundaries = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1], True])
  return {str(sorted_users[start]): float(ratings[order[max(start, end - window):end]].mean())
          for start, end in zip(boundaries[:-1], boundaries[1:])}
