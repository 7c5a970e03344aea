"""Tests for ingestion.history: the recent_rating feature of each interaction and of a serving request."""

import numpy as np
import pytest

from ingestion import history

# User u rates 5 (t=10), 1 (t=20), 3 (t=30) in training; row 3 (t=25) and row 4 (t=31) are eval rows of u (their
# ratings 4 and 2 are not history); user v has one training rating 2 at t=5 and one eval row at t=5.
USERS = ['u', 'u', 'u', 'u', 'u', 'v', 'v']
TIMES = np.array([10, 20, 30, 25, 31, 5, 5])
RATINGS = np.array([5.0, 1.0, 3.0, 4.0, 2.0, 2.0, 4.0])
TRAIN_ROWS = [0, 1, 2, 5]


def test_recent_rating_is_the_mean_of_the_last_window_training_ratings_strictly_before() -> None:
  got = history.recent_ratings(USERS, TIMES, RATINGS, TRAIN_ROWS, window=2)
  # t=10: nothing before; t=20: 5; t=30: (5+1)/2 (its own rating is not before it); t=25: (5+1)/2;
  # t=31: (1+3)/2 (the eval rating at 25 is not history); v at t=5: its training rating has the same second.
  np.testing.assert_allclose(got, [np.nan, 5.0, 3.0, 3.0, 2.0, np.nan, np.nan])


def test_window_one_and_a_window_longer_than_the_history() -> None:
  np.testing.assert_allclose(history.recent_ratings(USERS, TIMES, RATINGS, TRAIN_ROWS, window=1),
                             [np.nan, 5.0, 1.0, 1.0, 3.0, np.nan, np.nan])
  np.testing.assert_allclose(history.recent_ratings(USERS, TIMES, RATINGS, TRAIN_ROWS, window=10),
                             [np.nan, 5.0, 3.0, 3.0, 3.0, np.nan, np.nan])


def test_rows_need_not_be_grouped_or_sorted() -> None:
  order = [4, 6, 0, 3, 5, 2, 1]
  rows_of = {old: new for new, old in enumerate(order)}
  got = history.recent_ratings([USERS[i] for i in order], TIMES[order], RATINGS[order],
                               [rows_of[i] for i in TRAIN_ROWS], window=2)
  np.testing.assert_allclose(got, np.array([np.nan, 5.0, 3.0, 3.0, 2.0, np.nan, np.nan])[order])


def test_latest_recent_rating_of_each_user_after_all_training_ratings() -> None:
  train = np.array(TRAIN_ROWS)
  assert history.latest_recent_ratings(np.array(USERS)[train], TIMES[train], RATINGS[train], window=2) == {
      'u': 2.0, 'v': 2.0}
  assert history.latest_recent_ratings([], np.array([]), np.array([])) == {}


def test_bad_window_and_lengths_are_refused() -> None:
  with pytest.raises(ValueError, match='window=0 must be at least 1'):
    history.recent_ratings(USERS, TIMES, RATINGS, TRAIN_ROWS, window=0)
  with pytest.raises(ValueError, match='one value per row'):
    history.recent_ratings(USERS, TIMES[:3], RATINGS, TRAIN_ROWS)


def test_ratings_of_one_second_count_in_row_order_whatever_the_order_of_history_rows() -> None:
  # User w rates 5 (row 0) and 1 (row 1) in the same second t=10; row 2 at t=20 asks with window 1. The later
  # of the two in row order is row 1 (rating 1), as latest_recent_ratings (serving) counts them. Before, the
  # order of history_rows decided: [1, 0] gave 5.0 in training while serving said 1.0.
  users, times, ratings = ['w', 'w', 'w'], np.array([10, 10, 20]), np.array([5.0, 1.0, 3.0])
  for rows in ([0, 1], [1, 0]):
    np.testing.assert_allclose(history.recent_ratings(users, times, ratings, rows, window=1), [np.nan, np.nan, 1.0])
  assert history.latest_recent_ratings(users[:2], times[:2], ratings[:2], window=1) == {'w': 1.0}


def test_a_non_finite_history_rating_is_refused_rather_than_spread_to_other_users() -> None:
  # Before, u's NaN at t=10 entered the shared prefix sums and made v's recent_rating at t=20 NaN (it is 1.0).
  with pytest.raises(ValueError, match=r'ratings of history rows \[0\] are not finite \(\[nan\]\)'):
    history.recent_ratings(['u', 'v', 'v'], np.array([10, 1, 20]), np.array([np.nan, 1.0, 3.0]), [0, 1])
  # An eval row's rating is never read, so it may be anything.
  np.testing.assert_allclose(
      history.recent_ratings(['u', 'v', 'v'], np.array([10, 1, 20]), np.array([np.nan, 1.0, 3.0]), [1]),
      [np.nan, np.nan, 1.0])


@pytest.mark.parametrize('rows, message', [
    ([-1], r'history_rows \[-1\] are not row indices in \[0, 7\)'),  # before: silently the last row
    ([7], r'history_rows \[7\] are not row indices in \[0, 7\)'),  # before: a bare IndexError
    ([0, 1, 1], r'history_rows repeats rows \[1\]'),  # before: rating 1 counted twice
])
def test_history_rows_out_of_range_or_repeated_are_refused(rows, message) -> None:
  with pytest.raises(ValueError, match=message):
    history.recent_ratings(USERS, TIMES, RATINGS, rows, window=2)


def test_latest_recent_ratings_refuses_inputs_of_different_lengths() -> None:
  with pytest.raises(ValueError, match='one value per rating; got lengths 2, 1 and 2'):
    history.latest_recent_ratings(['u', 'u'], np.array([1]), np.array([3.0, 4.0]))


def test_no_rows_and_a_single_row() -> None:
  # Before, no rows at all was an IndexError (the first-event mask had one entry for zero events).
  got = history.recent_ratings([], np.array([], dtype=np.int64), np.array([]), [])
  assert got.shape == (0,) and got.dtype == np.float64
  # One row, its own training rating: nothing strictly before it.
  np.testing.assert_allclose(history.recent_ratings(['u'], np.array([1]), np.array([3.0]), [0]), [np.nan])
