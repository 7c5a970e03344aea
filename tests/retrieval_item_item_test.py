"""Item-item (EASE) retrieval scores: closed-form weights, users' items, the scorer's masking, refusals."""

import numpy as np
import pytest
import tensorflow as tf

from tests.retrieval_export_test import write_split
from tests.transform_fixtures import movielens_like_row
from trainer.retrieval import item_item


def test_weights_are_ridge_regressions_of_each_item_on_the_others():
  # Users a {0, 1}, b {0}, c {0, 2}; l2 = 2. XᵀX = [[3, 1, 1], [1, 1, 0], [1, 0, 1]], so
  # G + 2I = [[5, 1, 1], [1, 3, 0], [1, 0, 3]]; det = 5*9 - 1*3 - 1*3 = 39;
  # P = adj / 39 with adj = [[9, -3, -3], [-3, 14, 1], [-3, 1, 14]].
  # B[i, j] = -P[i, j] / P[j, j]: B[0, 1] = 3/14, B[1, 0] = 3/9, B[2, 1] = -1/14, B[1, 2] = -1/14, B[0, 2] = 3/14.
  histories = item_item.histories_from_sets({b'a': {0, 1}, b'b': {0}, b'c': {0, 2}})
  fitted = item_item.fit_weights(histories, 3, l2=2.0)
  expected = np.array([[0.0, 3 / 14, 3 / 14], [3 / 9, 0.0, -1 / 14], [3 / 9, -1 / 14, 0.0]])
  assert fitted.columns.tolist() == [0, 1, 2]
  np.testing.assert_allclose(fitted.weights, expected, rtol=1e-6, atol=1e-7)


def test_users_are_summed_in_chunks_to_the_same_weights(monkeypatch):
  histories = item_item.histories_from_sets({b'a': {0, 1}, b'b': {0}, b'c': {0, 2}})
  whole = item_item.fit_weights(histories, 3, l2=2.0)
  monkeypatch.setattr(item_item, '_USER_CHUNK', 2)
  np.testing.assert_allclose(item_item.fit_weights(histories, 3, l2=2.0).weights, whole.weights, rtol=1e-6)


def test_items_without_users_and_beyond_the_limit_are_not_covered():
  # Item 3 has no user; with at most 2 items, item 2 (1 user) gives way to items 0 (3 users) and 1 (2 users).
  histories = item_item.histories_from_sets({b'a': {0, 1}, b'b': {0, 1}, b'c': {0, 2}})
  assert item_item.covered_columns(histories, 4).tolist() == [0, 1, 2]
  fitted = item_item.fit_weights(histories, 4, l2=1.0, max_items=2)
  assert fitted.columns.tolist() == [0, 1]
  # With two items each column is a ridge regression on the other: item 1's column [1, 1, 0] on item 0's
  # [1, 1, 1]: B[0, 1] = 2 / (3 + 1) = 1/2; item 0's on item 1's: B[1, 0] = 2 / (2 + 1) = 2/3.
  np.testing.assert_allclose(fitted.weights, [[0.0, 0.5], [2 / 3, 0.0]], rtol=1e-6)
  # c has item 0 (covered) and 2 (not): item 1 gets B[0, 1]; items 2 and 3 get no item-item score.
  scores = item_item.ItemItemScorer(histories, fitted, 4)(tf.constant([b'c']))
  np.testing.assert_allclose(scores.numpy(), [[0.0, 0.5, 0.0, 0.0]], rtol=1e-6)
  # The Trainer's entry point passes the limit through (hparams.item_item_max_items).
  assert item_item.ItemItemScorer.fit(histories, 4, l2=1.0, max_items=2).num_covered == 2
  assert item_item.ItemItemScorer.fit(histories, 4, l2=1.0).num_covered == 3


def test_scorer_scores_unseen_items_from_the_users_items_and_zero_for_unknown_users():
  histories = item_item.histories_from_sets({b'a': {0, 1}, b'b': {0}, b'c': {0, 2}})
  weights = item_item.ItemItemWeights(
      np.array([0, 1, 2]), np.array([[0.0, 0.5, 0.25], [1.0, 0.0, 2.0], [4.0, 8.0, 0.0]], np.float32))
  scorer = item_item.ItemItemScorer(histories, weights, 3)
  scores = scorer(tf.constant([b'b', b'a', b'zz', b'c']))
  # b: row 0 on unseen 1, 2; a: rows 0 + 1 on unseen 2 = 0.25 + 2 (its own items 0 and 1 get 0 although rows 0 and
  # 1 give them 1.0 and 0.5); c: rows 0 + 2 on unseen 1 = 0.5 + 8; zz is unknown: zeros.
  np.testing.assert_allclose(scores.numpy(), [[0.0, 0.5, 0.25], [0.0, 0.0, 2.25], [0.0, 0.0, 0.0], [0.0, 8.5, 0.0]])
  # On the covered items only (all three here, then the zero column), the same scores.
  np.testing.assert_allclose(scorer.unseen_covered_scores(tf.constant([b'a', b'c'])).numpy(),
                             [[0.0, 0.0, 2.25, 0.0], [0.0, 8.5, 0.0, 0.0]])


def test_histories_are_read_once_per_user_and_item_from_the_training_examples(tmp_path):
  rows = [movielens_like_row('u2', 'i9', 4.0), movielens_like_row('u1', 'i1', 3.0),
          movielens_like_row('u2', 'i1', 5.0), movielens_like_row('u2', 'i9', 2.0)]
  write_split(rows, str(tmp_path / 'Split-train' / 'data.gz'))
  histories = item_item.read_histories([str(tmp_path / 'Split-train' / '*')], np.array([b'i1', b'i5', b'i9'], object))
  assert histories.user_ids.tolist() == [b'u1', b'u2']
  assert histories.row_splits.tolist() == [0, 1, 3]
  assert histories.item_columns.tolist() == [0, 0, 2]
  with pytest.raises(ValueError, match="b'i9'.*not in the retrieval catalogue"):
    item_item.read_histories([str(tmp_path / 'Split-train' / '*')], np.array([b'i1'], object))


def test_a_non_positive_penalty_is_refused_naming_it():
  histories = item_item.histories_from_sets({b'a': {0, 1, 2}})
  with pytest.raises(ValueError, match='item_item_l2=0'):
    item_item.fit_weights(histories, 3, l2=0.0)


def test_a_scorer_without_training_users_is_refused_with_the_fix():
  # Before, TensorFlow's lookup table refused the empty user list: "keys and values cannot be empty tensors".
  histories = item_item.histories_from_sets({})
  with pytest.raises(ValueError, match='hold none.*item_item_weight=0'):
    item_item.ItemItemScorer.fit(histories, 3, l2=1.0)


@pytest.mark.parametrize('max_items', [0, -1])
def test_a_non_positive_item_limit_is_refused_naming_it(max_items):
  # Before, -1 sliced the ranking from the end: of three items with one user each, items 0 and 1 were covered.
  histories = item_item.histories_from_sets({b'a': {0, 1, 2}})
  with pytest.raises(ValueError, match=f'item_item_max_items={max_items} must be a positive integer'):
    item_item.covered_columns(histories, 3, max_items=max_items)
