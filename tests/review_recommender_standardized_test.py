"""recommender.standardized and final_scores: equal values standardize to 0, whatever the rounding of their mean."""

import numpy as np

from serving import recommender


def test_equal_values_standardize_to_zero_even_when_their_mean_is_rounded():
  # The float mean of three 0.1s is 0.10000000000000002, so their std is 1.4e-17, not 0: before, each z-score
  # came out as (0.1 - mean) / std = -1.
  np.testing.assert_array_equal(recommender.standardized(np.array([0.1, 0.1, 0.1])), [0.0, 0.0, 0.0])
  np.testing.assert_array_equal(recommender.standardized(np.full(7, 3.7)), np.zeros(7))


def test_equal_retrieval_scores_leave_the_blend_to_the_predicted_ratings():
  # Retrieval 0.1, 0.1, 0.1 -> z 0; stars 2, 4, 3 -> z -1.2247, +1.2247, 0; weight 0.5: -0.6124, +0.6124, 0.
  # Before, z(retrieval) was -1 each and every final score 0.5 lower.
  scores = recommender.final_scores(np.array([0.1, 0.1, 0.1]), np.array([2.0, 4.0, 3.0]), 0.5)
  np.testing.assert_allclose(scores, [-0.61237, 0.61237, 0.0], atol=1e-5)


def test_distinct_values_keep_their_z_scores():
  # 0.8, 0.6, 0.4: mean 0.6, std sqrt(0.08 / 3) = 0.16330 -> +1.2247, 0, -1.2247.
  np.testing.assert_allclose(recommender.standardized(np.array([0.8, 0.6, 0.4])), [1.22474, 0.0, -1.22474],
                             atol=1e-5)
