"""Top-K accuracy, Recall@K with seen items removed, and the blessing rule, on hand-worked cases."""

import math

import numpy as np
import pytest

from components import retrieval_gate, retrieval_metrics

# 3 users x 4 items.
SCORES = np.array([
    [0.9, 0.8, 0.1, 0.5],  # user 0 trained on item 0
    [0.65, 0.2, 0.1, 0.6],  # user 1 trained on nothing
    [0.3, 0.2, 0.1, 0.0],  # user 2 trained on item 2, its only eval item
])
SEEN = [{0}, set(), {2}]
EVAL_ITEMS = [{0, 1, 2}, {0, 3}, {2}]
PAIR_USERS = [0, 0, 0, 1, 1, 2]
PAIR_ITEMS = [0, 1, 2, 3, 0, 2]


def test_top_k_accuracy_keeps_seen_items():
  # Top 2 (seen kept): user 0 {0, 1} hits items 0 and 1, misses 2; user 1 {0, 3} hits both; user 2 {0, 1}
  # misses 2 -> 4 of 6 pairs.
  assert retrieval_metrics.top_k_accuracy(SCORES, PAIR_USERS, PAIR_ITEMS, 2) == pytest.approx(4 / 6)
  # Top 1: user 0 {0} hits item 0; user 1 {0} hits item 0; user 2 {0} misses -> 2 of 6.
  assert retrieval_metrics.top_k_accuracy(SCORES, PAIR_USERS, PAIR_ITEMS, 1) == pytest.approx(2 / 6)
  # k beyond the catalogue: every pair is a hit.
  assert retrieval_metrics.top_k_accuracy(SCORES, PAIR_USERS, PAIR_ITEMS, 10) == 1.0


def test_recall_removes_training_items_from_ranking_and_truth():
  # User 0: item 0 removed -> ranking 1 (0.8), 3 (0.5), 2 (0.1); truth {1, 2}.
  #   @2: {1, 3} ∩ {1, 2} = 1 of min(2, 2) -> 0.5.  @1: {1} -> 1 of min(2, 1) -> 1.0.
  # User 1: ranking 0, 3, 1, 2; truth {0, 3}. @2: 2 of 2 -> 1.0.  @1: {0} -> 1 of 1 -> 1.0.
  # User 2: its only eval item was trained on -> empty truth, left out (NaN).
  recalls_at_2 = retrieval_metrics.recall_per_user(SCORES, EVAL_ITEMS, SEEN, 2)
  np.testing.assert_allclose(recalls_at_2[:2], [0.5, 1.0])
  assert math.isnan(recalls_at_2[2])
  assert retrieval_metrics.mean_recall(recalls_at_2) == pytest.approx(0.75)
  assert retrieval_metrics.mean_recall(retrieval_metrics.recall_per_user(SCORES, EVAL_ITEMS, SEEN, 1)) == 1.0


def test_recall_with_training_and_eval_items_the_model_does_not_score():
  # Column 4 is an item new since the scored model (SCORES has columns 0-3): user 0 trained on it, user 1 has it
  # in eval. Before, masking user 0's column 4 raised IndexError and the retrieval gate failed the run.
  # User 0: ranking as above (items 0 and 4 removed), truth {1, 2} -> @2 0.5. User 1: truth {0, 3, 4}, top 2
  # {0, 3} -> 2 of min(3, 2) = 1.0; @1 {0} -> 1 of 1. User 2 as above (NaN).
  seen = [{0, 4}, set(), {2}]
  eval_items = [{0, 1, 2}, {0, 3, 4}, {2}]
  recalls_at_2 = retrieval_metrics.recall_per_user(SCORES, eval_items, seen, 2)
  np.testing.assert_allclose(recalls_at_2[:2], [0.5, 1.0])
  assert math.isnan(recalls_at_2[2])
  # @4 user 1 finds 0 and 3 of its three eval items, never the unscored one: 2 of min(3, 4).
  assert retrieval_metrics.recall_per_user(SCORES, eval_items, seen, 4)[1] == pytest.approx(2 / 3)


def test_recall_rejects_a_truth_list_of_the_wrong_length():
  with pytest.raises(ValueError, match='one set per user row'):
    retrieval_metrics.recall_per_user(SCORES, EVAL_ITEMS[:2], SEEN, 2)


def test_blessing_needs_both_minimums_and_no_regression():
  good = {'recall_at_100': 0.60, 'top_100_accuracy': 0.33}
  assert retrieval_gate.blessing_decision(good, None, 0.55, 0.30, 0.01) == (True, [])
  # First run: no baseline, only the minimums apply.
  blessed, reasons = retrieval_gate.blessing_decision(
      {'recall_at_100': 0.50, 'top_100_accuracy': 0.33}, None, 0.55, 0.30, 0.01)
  assert not blessed and reasons == ['recall_at_100=0.5000 is below the minimum 0.5500 (--min-recall-at-100)']
  # 0.605 vs baseline 0.62: a drop of 0.015 > 0.01 tolerance; 0.615 (drop 0.005) passes.
  baseline = {'recall_at_100': 0.62, 'top_100_accuracy': 0.33}
  blessed, reasons = retrieval_gate.blessing_decision(
      {'recall_at_100': 0.605, 'top_100_accuracy': 0.33}, baseline, 0.55, 0.30, 0.01)
  assert not blessed and reasons == ["recall_at_100=0.6050 is worse than the last blessed model's 0.6200 by more "
                                     'than 0.0100 (--max-retrieval-decrease)']
  assert retrieval_gate.blessing_decision(
      {'recall_at_100': 0.615, 'top_100_accuracy': 0.33}, baseline, 0.55, 0.30, 0.01)[0]


def test_nan_scores_are_refused_rather_than_ranked_last():
  # User 1 scores item 3 NaN. Before, argpartition sorted the NaN below every number: top 1 of user 1 stayed
  # {0} and the pairs (1, 3) simply missed, so a model with broken embeddings was measured without a word.
  scores = SCORES.copy()
  scores[1, 3] = np.nan
  with pytest.raises(ValueError, match=r'1 scores are NaN \(the first of user row 1, item column 3\)'):
    retrieval_metrics.top_k_accuracy(scores, PAIR_USERS, PAIR_ITEMS, 2)
  with pytest.raises(ValueError, match='scores are NaN'):
    retrieval_metrics.recall_per_user(scores, EVAL_ITEMS, SEEN, 2)
  # -inf is an ordinary score (never retrieved), as for the seen items recall masks itself.
  scores[1, 3] = -np.inf
  # Top 2 now: user 1 {0, 1} hits 0, misses 3 -> 3 of 6 pairs.
  assert retrieval_metrics.top_k_accuracy(scores, PAIR_USERS, PAIR_ITEMS, 2) == pytest.approx(3 / 6)
