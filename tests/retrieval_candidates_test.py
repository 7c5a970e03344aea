"""Item shares of the training interactions (the sampling-bias correction's probabilities)."""

import numpy as np
import pytest
import tensorflow as tf

from schema import features
from trainer.common import inputs
from trainer.retrieval import candidates

ITEM = features.transformed_name(features.ITEM_ID)


def _pairs(item_indices) -> inputs.InMemorySplit:
  return inputs.InMemorySplit({ITEM: tf.constant(item_indices, tf.int64)})


def test_shares_are_each_items_fraction_of_the_interactions():
  # 4 interactions: item 0 once, item 2 three times; items 1 and 3 (e.g. the OOV bucket) none.
  np.testing.assert_array_equal(candidates.item_shares(_pairs([2, 0, 2, 2]), 4), [0.25, 0.0, 0.75, 0.0])


@pytest.mark.parametrize('item_indices', [[0, 4, 1], [0, -1, 1]])
def test_an_item_index_outside_the_table_is_refused_naming_it(item_indices):
  # Before, index 4 was cut off silently (shares 1/2, 1/2 over the other two) and -1 failed inside np.bincount.
  with pytest.raises(ValueError, match=rf'Item index {item_indices[1]} .*num_item_indices=4'):
    candidates.item_shares(_pairs(item_indices), 4)


def test_no_interactions_are_refused():
  with pytest.raises(ValueError, match='no interactions'):
    candidates.item_shares(_pairs(np.zeros([0], np.int64)), 4)
