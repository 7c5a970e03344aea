"""Tests for ingestion.splits: canonical seed, random and temporal train/eval splits."""

from typing import Any, Dict, List

import numpy as np
import pytest

from ingestion import splits


def test_seed_split_is_the_canonical_split() -> None:
  perm = np.random.default_rng(42).permutation(10)
  got = splits.split_interactions(10, splits.SplitSpec('seed'))
  np.testing.assert_array_equal(got.train, np.sort(perm[:8]))
  np.testing.assert_array_equal(got.eval, np.sort(perm[8:]))


def test_seed_split_on_100k_rows_matches_the_bench_definition() -> None:
  perm = np.random.default_rng(42).permutation(100000)
  train, eval_ = splits.split_interactions(np.zeros(100000, dtype=np.int64))
  assert len(train) == 80000 and len(eval_) == 20000
  np.testing.assert_array_equal(train, np.sort(perm[:80000]))
  np.testing.assert_array_equal(eval_, np.sort(perm[80000:]))


def test_random_split_uses_fraction_and_seed() -> None:
  perm = np.random.default_rng(7).permutation(10)
  got = splits.split_interactions(10, splits.SplitSpec('random', eval_fraction=0.3, seed=7))
  np.testing.assert_array_equal(got.train, np.sort(perm[:7]))
  np.testing.assert_array_equal(got.eval, np.sort(perm[7:]))
  canonical = splits.split_interactions(10, splits.SplitSpec('seed'))
  same = splits.split_interactions(10, splits.SplitSpec('random', 0.2, 42))
  np.testing.assert_array_equal(same.train, canonical.train)


@pytest.mark.parametrize('num_rows, eval_fraction, num_eval', [
    (90, 0.3, 27),   # 0.7 * 90 is 62.99999999999999 in floating point: int() gave 62 train rows, not 63
    (10, 0.9, 9),    # 0.1 * 10 is 0.9999999999999998: int() left no train row and the split was refused
    (10, 0.25, 3),   # 2.5 eval rows round half up
    (7, 0.2, 1),     # 1.4 -> 1
    # Halves that floating point puts just below: 0.7 * 45 is 31.499999999999996, 0.29 * 50 14.499999999999998,
    # 0.285 * 100 28.499999999999996; int(x + 0.5) rounded them down.
    (45, 0.7, 32),   # 31.5 -> 32
    (50, 0.29, 15),  # 14.5 -> 15
    (100, 0.285, 29),  # 28.5 -> 29
])
def test_random_and_temporal_splits_round_the_eval_share_to_the_nearest_row(
    num_rows: int, eval_fraction: float, num_eval: int) -> None:
  for method in ('random', 'temporal'):
    got = splits.split_interactions(np.arange(num_rows), splits.SplitSpec(method, eval_fraction, seed=1))
    assert (len(got.train), len(got.eval)) == (num_rows - num_eval, num_eval)


def test_temporal_split_puts_latest_rows_in_eval_ties_by_row_order() -> None:
  # Order by (timestamp, row): rows 1(10), 4(20), 2(30), 3(30), 0(50); 3 train rows, 2 eval rows.
  got = splits.split_interactions([50, 10, 30, 30, 20], splits.SplitSpec('temporal', eval_fraction=0.4))
  np.testing.assert_array_equal(got.train, [1, 2, 4])
  np.testing.assert_array_equal(got.eval, [0, 3])


@pytest.mark.parametrize('kwargs, words', [
    (dict(method='chrono'), ["method='chrono'", 'seed, random, temporal']),
    (dict(method='random', eval_fraction=0.0), ['eval_fraction=0.0', 'between 0 and 1']),
    (dict(method='random', eval_fraction=1.0), ['eval_fraction=1.0']),
    (dict(method='temporal', eval_fraction=-0.1), ['eval_fraction=-0.1']),
    (dict(method='random', seed=-1), ['seed=-1']),
    (dict(method='seed', eval_fraction=0.3), ["method='random'"]),
])
def test_invalid_spec_names_parameter_and_choices(kwargs: Dict[str, Any], words: List[str]) -> None:
  with pytest.raises(ValueError) as e:
    splits.SplitSpec(**kwargs)
  for word in words:
    assert word in str(e.value)


def test_temporal_needs_timestamps_and_splits_must_not_be_empty() -> None:
  with pytest.raises(ValueError, match='timestamps'):
    splits.split_interactions(10, splits.SplitSpec('temporal'))
  # The fix names what can change: the seed split's fraction cannot (before, both said 'change eval_fraction').
  with pytest.raises(ValueError) as e:
    splits.split_interactions(1, splits.SplitSpec('seed'))
  assert str(e.value) == ("Splitting 1 rows with eval_fraction=0.2 leaves the train split empty. Fix: provide more "
                          "rows (the seed split's eval_fraction is fixed; --split random takes another).")
  # 1 - 1e-17 rounds to 1.0, so every row would go to train.
  with pytest.raises(ValueError) as e:
    splits.split_interactions(3, splits.SplitSpec('random', eval_fraction=1e-17))
  assert str(e.value) == ('Splitting 3 rows with eval_fraction=1e-17 leaves the eval split empty. Fix: provide more '
                          'rows, or change eval_fraction (--eval-fraction).')


@pytest.mark.parametrize('timestamps, words', [
    # Before: text sorted as text, so '100' (the latest) came first and went to train while '9' went to eval.
    (['50', '9', '100'], ["timestamps of dtype <U3", 'numbers']),
    # Before: NaN sorted last, so the row without a time went to eval as the latest one.
    ([50.0, float('nan'), 10.0], ['timestamp nan at row 1', 'finite time']),
    ([50.0, float('inf'), 10.0], ['timestamp inf at row 1', 'finite time']),
])
def test_temporal_split_refuses_timestamps_that_do_not_order_in_time(timestamps: List[Any], words: List[str]) -> None:
  with pytest.raises(ValueError) as e:
    splits.split_interactions(timestamps, splits.SplitSpec('temporal', eval_fraction=1 / 3))
  for word in words:
    assert word in str(e.value)


def test_temporal_split_orders_float_timestamps_by_value() -> None:
  got = splits.split_interactions([50.5, 9.0, 100.25], splits.SplitSpec('temporal', eval_fraction=1 / 3))
  np.testing.assert_array_equal(got.train, [0, 1])
  np.testing.assert_array_equal(got.eval, [2])


@pytest.mark.parametrize('method', ['seed', 'random'])
def test_a_negative_row_count_is_refused(method: str) -> None:
  # Before: permutation(-5) is empty, so -5 rows gave an empty train and an empty eval split without a word.
  with pytest.raises(ValueError, match='rows=-5 is a negative row count'):
    splits.split_interactions(-5, splits.SplitSpec(method))
