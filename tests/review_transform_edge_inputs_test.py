"""preprocessing_fn on edge inputs: item ids the vocabulary leaves out, constant training values."""

import numpy as np
import pytest
import tensorflow as tf

from schema import features
from tests.transform_fixtures import movielens_like_row, run_transform
from transform import preprocessing

X = features.transformed_name

# i3 x3, i1 x1, and two ids tf.Transform leaves out of the item_id vocabulary: '' (a missing id) x2 and an id
# holding a line break x2. Every row has release year 1995 and recent rating 3.0 (constant training values).
ROWS = ([movielens_like_row('u1', 'i3', 4.0, recent=(3.0,))] * 3
        + [movielens_like_row('u1', '', 4.0, recent=(3.0,))] * 2
        + [movielens_like_row('u1', 'x\ny', 4.0, recent=(3.0,))] * 2
        + [movielens_like_row('u1', 'i1', 4.0, recent=(3.0,))])


@pytest.fixture(scope='module')
def transformed(tmp_path_factory):
  # A request for an unseen item released in 1930, with recent rating 5.0.
  new_rows = [movielens_like_row('u1', 'i9', 3.0, year=(1930,), recent=(5.0,))]
  return run_transform(ROWS, str(tmp_path_factory.mktemp('tft')), new_rows=new_rows)


def test_ids_out_of_the_vocabulary_are_unseen_and_not_counted(transformed):
  tft_output, rows, new_rows = transformed
  assert tft_output.vocabulary_by_name('item_id') == [b'i3', b'i1']
  # Counted are i3: 3 and i1: 1 (4 interactions): more popular than i3 hold 0/4 (head), than i1 3/4 (tail). The
  # rows of '' and 'x\ny' are out of the vocabulary: unseen, like the request's i9. Before, '' and 'x\ny' were
  # counted (3, 2, 2, 1): i1 took count 2 (torso) and the OOV index counted as a seen item (tail).
  assert [r[features.ITEM_POPULARITY_BUCKET].decode() for r in rows] == (
      ['head'] * 3 + ['unseen'] * 4 + ['tail'])
  assert new_rows[0][features.ITEM_POPULARITY_BUCKET].decode() == 'unseen'
  # Logs ln 4 = 2 ln 2 and ln 2: mean 1.5 ln 2, population std 0.5 ln 2, so i3 -> 1, i1 -> -1, unseen -> -3.
  np.testing.assert_allclose([float(r[X(features.ITEM_POPULARITY)]) for r in rows],
                             [1.0] * 3 + [-3.0] * 4 + [-1.0], atol=1e-5)
  assert float(new_rows[0][X(features.ITEM_POPULARITY)]) == pytest.approx(-3.0, abs=1e-5)


def test_numeric_features_with_constant_training_values_score_zero(transformed):
  _, rows, new_rows = transformed
  # Every training row has release year 1995 and recent rating 3.0: std 0, so the model never saw them vary and
  # every row scores 0. Before, a zero std scaled by 1: the request's 1930 and 5.0 scored -65.0 and 2.0.
  keys = (features.ITEM_RELEASE_YEAR, features.RECENT_RATING)
  assert [[float(r[X(k)]) for k in keys] for r in rows] == [[0.0, 0.0]] * len(ROWS)
  assert [float(new_rows[0][X(k)]) for k in keys] == [0.0, 0.0]


def test_item_popularity_of_items_with_equal_training_counts_is_zero_also_for_unseen_items():
  # Two items with 2 training interactions each: logs ln 3, ln 3, std 0. Index 2 is the OOV bucket (unseen); it
  # scored -ln 3 = -1.0986 before, a value the model never saw.
  counts = preprocessing.ItemCounts(tf.constant([2, 2], tf.int64))
  np.testing.assert_array_equal(
      preprocessing.item_popularity(counts, tf.constant([0, 1, 2], tf.int64)).numpy(), [0.0, 0.0, 0.0])


def test_item_features_without_any_counted_training_item_are_unseen_and_zero():
  # No training id the item_id vocabulary holds (every one '' say): no counts. tf.Transform's vocabulary then
  # holds one placeholder, so indices 0 and 1 both occur; every item is unseen and scores 0. Before, the lookup
  # gathered index 0 from the empty table: InvalidArgumentError 'indices[0] = 0 is not in [0, 0)'.
  counts = preprocessing.ItemCounts(tf.constant([], tf.int64))
  indices = tf.constant([0, 1], tf.int64)
  assert [b.decode() for b in preprocessing.popularity_bucket(counts, indices).numpy()] == ['unseen', 'unseen']
  np.testing.assert_array_equal(preprocessing.item_popularity(counts, indices).numpy(), [0.0, 0.0])
