"""benchmarks/item_item_fit.py: the generated histories and a small run."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmarks'))
import item_item_fit  # pylint: disable=g-import-not-at-top,wrong-import-position


def test_generated_users_have_the_asked_number_of_distinct_catalogue_items():
  histories = item_item_fit.generated_histories(num_items=5, num_users=3, items_per_user=2, seed=0)
  assert sorted(histories) == [b'u0', b'u1', b'u2']
  assert all(len(items) == 2 and items <= set(range(5)) for items in histories.values())
  # More items per user than the catalogue holds: every user has the whole catalogue.
  assert item_item_fit.generated_histories(3, 2, 10, 0) == {b'u0': {0, 1, 2}, b'u1': {0, 1, 2}}


def test_a_small_run_prints_its_figures(capsys):
  assert item_item_fit.main(['--items', '30', '--users', '40', '--items-per-user', '5']) == 0
  out = capsys.readouterr().out
  assert 'items=30 users=40 interactions=200 ' in out
  assert 'fit_s=' in out and 'peak_rss_gb=' in out


@pytest.mark.parametrize('flag', ['--items', '--users', '--items-per-user'])
def test_a_count_below_1_is_a_usage_error_naming_the_flag(flag, capsys):
  # Before: a ValueError traceback from numpy's choice (--items 0), from the scorer (--users 0), or a "fit" of
  # empty histories (--items-per-user 0).
  with pytest.raises(SystemExit) as exit_info:
    item_item_fit.main(['--items', '30', '--users', '40', '--items-per-user', '5', flag, '0'])
  assert exit_info.value.code == 2
  assert f'argument {flag}: 0 must be at least 1.' in capsys.readouterr().err


def test_a_negative_seed_is_a_usage_error_naming_the_flag(capsys):
  # Before: a ValueError traceback from numpy.random.default_rng (expected non-negative integer).
  with pytest.raises(SystemExit) as exit_info:
    item_item_fit.main(['--items', '30', '--users', '40', '--items-per-user', '5', '--seed', '-1'])
  assert exit_info.value.code == 2
  assert 'argument --seed: -1 must be in [0, 2**32) (a numpy seed).' in capsys.readouterr().err
