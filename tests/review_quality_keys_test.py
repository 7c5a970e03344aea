"""benchmarks/peer_segments.py: items are matched to their training counts by the same (text) key."""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmarks'))
import peer_segments  # pylint: disable=g-import-not-at-top,wrong-import-position


def test_popularity_buckets_match_non_text_item_ids_to_their_training_counts():
  # Train counts 7: 3, 8: 1 (4 interactions): more popular than 7 hold 0/4 -> head, than 8 3/4 -> tail; 9 unseen.
  # Before, the training ids were keyed as text and the labelled ones as given, so every int id was 'unseen'.
  expected = ['head', 'tail', 'unseen']
  assert peer_segments.popularity_buckets([7, 7, 7, 8], [7, 8, 9]).tolist() == expected
  assert peer_segments.popularity_buckets(np.array([7, 7, 7, 8]), np.array([7, 8, 9])).tolist() == expected
  assert peer_segments.popularity_buckets(['7', '7', '7', '8'], ['7', '8', '9']).tolist() == expected
