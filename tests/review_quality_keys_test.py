"""benchmarks/peer_segments.py: items are matched to their training counts by the same (text) key."""

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmarks'))
import peer_segments  # pylint: disable=g-import-not-at-top,wrong-import-position


def test_popularity_buckets_match_non_text_item_ids_to_their_training_counts():
  # Train counts 7: 3, 8: 1 (4 interactions): more popular than 7 hold 0/4 -> head, than 8 3/4 -> tail; 9 unseen.
  # Before, the training ids were keyed as text and the labelled ones as given, so every int id was 'unseen'.
  expected = ['head', 'tail', 'unseen']
  assert peer_segments.popularity_buckets([7, 7, 7, 8], [7, 8, 9]).tolist() == expected
  assert peer_segments.popularity_buckets(np.array([7, 7, 7, 8]), np.array([7, 8, 9])).tolist() == expected
  assert peer_segments.popularity_buckets(['7', '7', '7', '8'], ['7', '8', '9']).tolist() == expected


def test_margin_interval_says_when_no_draw_holds_the_segment():
  # user_gender=M is u3's alone; the one draw of seed 1 takes u1 once, u2 twice and u3 never (users in id order),
  # so no margin is defined. Before, np.quantile of no margins raised 'IndexError: index -1 is out of bounds'.
  evaluation = peer_segments.EvalPredictions(
      user_ids=np.array(['u1', 'u2', 'u3']), ratings=np.array([3.0, 3.0, 3.0]), predictions=np.array([4.0, 3.0, 5.0]),
      segments={'user_gender': np.array(['F', 'F', 'M'])})
  assert np.random.default_rng(1).multinomial(3, [1 / 3] * 3, size=1).tolist() == [[1, 2, 0]]
  with pytest.raises(ValueError, match="None of the 1 draws of the eval users holds an example of user_gender='M'"):
    peer_segments.margin_interval(evaluation, 'user_gender', 'M', draws=1, seed=1)
  # Seed 0 draws each once: M's RMSE 2 against overall sqrt(5 / 3) = 1.2910, margin +0.7090.
  found = peer_segments.margin_interval(evaluation, 'user_gender', 'M', draws=1, seed=0)
  assert found['low'] == found['high'] == pytest.approx(2 - np.sqrt(5 / 3))
