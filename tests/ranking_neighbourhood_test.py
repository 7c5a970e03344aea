"""The item-item neighbourhood model: baselines, similarities, predictions, the blend and its hyperparameters."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from schema import features
from trainer.ranking import hparams as hparams_lib
from trainer.ranking import neighbourhood

USER = features.transformed_name(features.USER_ID)
ITEM = features.transformed_name(features.ITEM_ID)


def _predict(layer: tf.keras.layers.Layer, users, items) -> np.ndarray:
  return layer({USER: tf.constant(users, tf.int64), ITEM: tf.constant(items, tf.int64)}).numpy().reshape(-1)


def test_one_pass_of_baselines_fits_item_biases_then_user_biases():
  # mu = 4. Items: b_0 = ((5-4) + (4-4)) / (1 + 2) = 1/3, b_1 = (3-4) / (1 + 1) = -1/2.
  # Users: b_0 = ((5-4-1/3) + (3-4+1/2)) / (1 + 2) = 1/18, b_1 = (4-4-1/3) / (1 + 1) = -1/6.
  mu, user_bias, item_bias = neighbourhood.fit_baselines(
      np.array([0, 0, 1]), np.array([0, 1, 0]), np.array([5.0, 3.0, 4.0]), num_users=2, num_items=2,
      user_reg=1.0, item_reg=1.0, passes=1)
  assert mu == 4.0
  np.testing.assert_allclose(item_bias, [1 / 3, -1 / 2])
  np.testing.assert_allclose(user_bias, [1 / 18, -1 / 6])


def test_indices_without_ratings_have_bias_zero_also_without_regularisation():
  # mu = 4; item 1: ((5-4) + (3-4)) / (0 + 2) = 0; users 0, 1: (5-4-0) / 1 = 1, (3-4-0) / 1 = -1. Item 0 and user 2
  # have no ratings: 0 / 0 with penalties 0, bias 0 (before: NaN, so NaN predictions for them).
  mu, user_bias, item_bias = neighbourhood.fit_baselines(
      np.array([0, 1]), np.array([1, 1]), np.array([5.0, 3.0]), num_users=3, num_items=2,
      user_reg=0.0, item_reg=0.0, passes=1)
  assert mu == 4.0
  np.testing.assert_array_equal(item_bias, [0.0, 0.0])
  np.testing.assert_array_equal(user_bias, [1.0, -1.0, 0.0])


@pytest.mark.parametrize('penalty', ['user_reg', 'item_reg'])
def test_a_negative_baseline_penalty_is_refused_naming_it(penalty):
  with pytest.raises(ValueError, match=f'{penalty}=-1.0 must be >= 0'):
    neighbourhood.fit_baselines(np.array([0]), np.array([0]), np.array([4.0]), 1, 1, **{penalty: -1.0})


@pytest.mark.parametrize('user_chunk', [2048, 1, 2])
def test_similarities_are_shrunk_pearson_correlations_over_common_users(user_chunk, monkeypatch):
  # Summed over users in chunks of 1 or 2 users or all at once: the same similarities.
  monkeypatch.setattr(neighbourhood, '_USER_CHUNK', user_chunk)
  # Residuals: user 0 rated items 0, 1, 2 (+1, +1, -1); user 1 items 0, 1 (-1, -0.5); user 2 items 0, 2 (+2, +1).
  users = np.array([0, 0, 0, 1, 1, 2, 2])
  items = np.array([0, 1, 2, 0, 1, 0, 2])
  residuals = np.array([1.0, 1.0, -1.0, -1.0, -0.5, 2.0, 1.0])
  neighbours, similarity = neighbourhood.item_similarities(
      users, items, residuals, num_users=3, num_items=3, shrinkage=1.0, num_candidates=2)
  # s_01 over users 0, 1: (1*1 + -1*-0.5) / sqrt((1 + 1) * (1 + 0.25)) = 0.948683, times (2-1) / (2-1+1) = 0.474342.
  # s_02 over users 0, 2: (1*-1 + 2*1) / sqrt((1 + 4) * (1 + 1)) = 0.316228, times 1/2 = 0.158114.
  # s_12 over user 0 alone: (1-1) / (1-1+1) = 0, not a neighbour (padding: item 0, similarity 0).
  np.testing.assert_array_equal(neighbours, [[1, 2], [0, 0], [0, 0]])
  np.testing.assert_allclose(similarity, [[0.474342, 0.158114], [0.474342, 0.0], [0.158114, 0.0]], atol=1e-6)


@pytest.mark.parametrize('shrinkage,num_candidates,message', [
    (-0.5, 2, r'neighbourhood_shrinkage=-0.5 must be >= 0'), (1.0, -1, r'neighbourhood_candidates=-1 must be >= 0')])
def test_a_negative_shrinkage_or_candidate_count_is_refused_naming_it(shrinkage, num_candidates, message):
  # Before, shrinkage -0.5 scaled a similarity of 2 common users by 1 / (1 - 0.5) = 2 (beyond 1), and -1 candidates
  # failed in numpy with "negative dimensions are not allowed".
  with pytest.raises(ValueError, match=message):
    neighbourhood.item_similarities(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]), np.array([1.0, 1.0, -1.0, -1.0]),
                                    num_users=2, num_items=2, shrinkage=shrinkage, num_candidates=num_candidates)


def _tables() -> neighbourhood.NeighbourhoodTables:
  """mu 3; user biases 0.5, 0; item biases 0, 0.2, -0.2, 0.1. Item 0's neighbours 1, 2, 3 (similarity 0.9, 0.5,
  0.2); item 1's neighbour 0 (0.9). User 0 rated items 1 (residual +1) and 3 (-0.5), user 1 item 2 (+0.4)."""
  num_items = 4
  return neighbourhood.NeighbourhoodTables(
      global_mean=3.0, user_bias=np.array([0.5, 0.0], np.float32),
      item_bias=np.array([0.0, 0.2, -0.2, 0.1], np.float32),
      neighbour_items=np.array([[1, 2, 3], [0, 0, 0], [0, 0, 0], [0, 0, 0]], np.int64),
      neighbour_similarity=np.array([[0.9, 0.5, 0.2], [0.9, 0, 0], [0, 0, 0], [0, 0, 0]], np.float32),
      rating_keys=np.array([0 * num_items + 1, 0 * num_items + 3, 1 * num_items + 2], np.int64),
      rating_residuals=np.array([1.0, -0.5, 0.4], np.float32))


def test_prediction_is_the_baseline_plus_the_similarity_weighted_residuals_of_the_rated_neighbours():
  layer = neighbourhood.NeighbourhoodRating(_tables(), max_neighbours=40)
  predictions = _predict(layer, [0, 1, 0, 7, 0], [0, 0, 1, 0, 9])
  np.testing.assert_allclose(predictions, [
      3.5 + (0.9 * 1.0 + 0.2 * -0.5) / (0.9 + 0.2),  # user 0, item 0: neighbours 1 and 3 rated, 2 not: 4.227273
      3.0 + 0.4,                                    # user 1, item 0: neighbour 2 alone
      3.5 + 0.2,                                    # user 0, item 1: his rating of item 1 is not its own neighbour
      3.0,                                          # a user unseen in training: mu + item 0's bias 0
      3.5,                                          # an item unseen in training: mu + user 0's bias
  ], rtol=1e-6)


def test_only_the_k_most_similar_rated_neighbours_count():
  layer = neighbourhood.NeighbourhoodRating(_tables(), max_neighbours=1)
  # User 0's rated neighbours of item 0 are items 1 (0.9) and 3 (0.2); with k = 1 only item 1: 3.5 + 1.0.
  np.testing.assert_allclose(_predict(layer, [0], [0]), [4.5], rtol=1e-6)


def test_fitted_tables_predict_what_surprise_knnbaseline_predicts():
  surprise = pytest.importorskip('surprise')  # in the dev dependency group that CI installs
  import pandas as pd  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(3)
  pairs = rng.choice(30 * 20, size=300, replace=False)
  users, items = pairs // 20, pairs % 20
  ratings = rng.integers(1, 6, size=pairs.size).astype(np.float64)
  train = np.arange(250)
  # Test pairs whose user and item were both rated in training (Surprise refuses the others).
  test = np.array([k for k in range(250, 300) if users[k] in users[train] and items[k] in items[train]])
  assert test.size >= 40
  tables = neighbourhood.fit_tables(users[train], items[train], ratings[train], shrinkage=100.0, num_candidates=19)
  ours = _predict(neighbourhood.NeighbourhoodRating(tables, max_neighbours=5), users[test], items[test])

  frame = pd.DataFrame({'user': users[train], 'item': items[train], 'rating': ratings[train]})
  trainset = surprise.Dataset.load_from_df(frame, surprise.Reader(rating_scale=(1, 5))).build_full_trainset()
  knn = surprise.KNNBaseline(k=5, sim_options={'name': 'pearson_baseline', 'user_based': False}, verbose=False)
  knn.fit(trainset)
  theirs = [knn.predict(user, item, clip=False).est for user, item in zip(users[test], items[test])]
  np.testing.assert_allclose(ours, theirs, atol=1e-5)
  # Not a trivial agreement: the neighbours move the predictions away from the baselines.
  baselines = tables.global_mean + tables.user_bias[users[test]] + tables.item_bias[items[test]]
  assert np.abs(ours - baselines).max() > 0.1


def test_a_pair_rated_twice_keeps_its_last_rating():
  tables = neighbourhood.fit_tables(np.array([0, 0]), np.array([0, 0]), np.array([2.0, 4.0]), 100.0, 5)
  assert tables.global_mean == 4.0
  np.testing.assert_array_equal(tables.rating_keys, [0])


def test_blend_weights_the_two_models():
  blend = neighbourhood.NeighbourhoodBlend(_Constant(4.0), neighbourhood.NeighbourhoodRating(_tables(), 40), 0.25)
  # 0.75 * 4 + 0.25 * (user 1, item 0: 3.4) = 3.85
  np.testing.assert_allclose(_predict(blend, [1], [0]), [3.85], rtol=1e-6)


def test_blend_rmse_weights_the_two_predictions():
  network, neighbours, labels = np.array([3.0, 4.0]), np.array([5.0, 2.0]), np.array([4.0, 3.0])
  assert neighbourhood.blend_rmse(network, neighbours, labels, 0.0) == 1.0   # errors -1, +1
  assert neighbourhood.blend_rmse(network, neighbours, labels, 1.0) == 1.0   # errors +1, -1
  assert neighbourhood.blend_rmse(network, neighbours, labels, 0.5) == 0.0   # blended 4, 3
  assert neighbourhood.blend_rmse(network, neighbours, labels, 0.25) == pytest.approx(0.5)  # 3.5, 3.5


class _Constant(tf.keras.Model):
  """A rating model predicting `value` stars for every example."""

  def __init__(self, value: float) -> None:
    super().__init__()
    self.value = value

  def call(self, inputs, training=False):
    return tf.fill([tf.shape(inputs[USER])[0], 1], self.value)


@pytest.mark.parametrize('label,choices,expected', [
    (3.4, (0.0, 0.5, 1.0), 1.0),   # the neighbourhood model's 3.4 is exact: RMSE 0.6, 0.3, 0
    (3.7, (0.0, 1.0), 0.0),        # both 0.3 off: the tie goes to the smaller weight
    (3.7, (0.0, 0.5, 1.0), 0.5),   # 0.5 * 4 + 0.5 * 3.4 = 3.7
])
def test_the_trainer_chooses_the_weight_with_the_lowest_validation_rmse(label, choices, expected):
  from trainer.common import inputs  # pylint: disable=g-import-not-at-top
  from trainer.ranking import run  # pylint: disable=g-import-not-at-top
  split = inputs.InMemorySplit({USER: tf.constant([1], tf.int64), ITEM: tf.constant([0], tf.int64),
                                features.transformed_name(features.LABEL_KEY): tf.constant([label])})
  weight, rmse = run.choose_neighbourhood_weight(_Constant(4.0), neighbourhood.NeighbourhoodRating(_tables(), 40),
                                                 split, choices)
  assert weight == expected
  assert rmse[expected] == pytest.approx(min(rmse.values()))
  assert rmse[0.0] == pytest.approx(abs(4.0 - label), abs=1e-6)


@pytest.mark.parametrize('changes,message', [
    ({'neighbourhood_weight_choices': (0.2, 1.2)}, r'must hold weights in \[0, 1\]'),
    ({'neighbourhood_weight_choices': (0.2,), 'validation_fraction': 0.0, 'early_stopping_patience': 0},
     'validation_fraction > 0'),
    ({'neighbourhood_weight_choices': (0.2,), 'neighbourhood_weight': 0.3}, 'both set'),
])
def test_weight_choices_need_a_validation_slice_and_no_fixed_weight(changes, message):
  with pytest.raises(ValueError, match=message):
    dataclasses.replace(hparams_lib.DEFAULT, **changes)


@pytest.mark.parametrize('field,value', [
    ('neighbourhood_weight', 1.5), ('neighbourhood_weight', -0.1), ('neighbourhood_k', 0),
    ('neighbourhood_candidates', 0), ('neighbourhood_shrinkage', -1.0)])
def test_invalid_neighbourhood_hyperparameters_are_refused_with_their_name(field, value):
  with pytest.raises(ValueError, match=field):
    dataclasses.replace(hparams_lib.DEFAULT, **{field: value})


def test_neighbourhood_settings_round_trip_through_custom_config():
  hparams = dataclasses.replace(hparams_lib.DEFAULT, neighbourhood_weight_choices=(0.2, 0.4), neighbourhood_k=10)
  assert hparams_lib.RankingHyperparameters.from_config(hparams.to_config()) == hparams


def test_the_trainer_fits_the_neighbourhood_on_the_split_columns_with_its_hyperparameters():
  from trainer.common import inputs  # pylint: disable=g-import-not-at-top
  from trainer.ranking import run  # pylint: disable=g-import-not-at-top
  users, items = np.array([0, 0, 1, 1, 2]), np.array([0, 1, 0, 1, 1])
  ratings = np.array([5.0, 4.0, 4.0, 3.0, 1.0], np.float32)
  split = inputs.InMemorySplit({USER: tf.constant(users, tf.int64), ITEM: tf.constant(items, tf.int64),
                                features.transformed_name(features.LABEL_KEY): tf.constant(ratings)})
  hparams = dataclasses.replace(hparams_lib.DEFAULT, neighbourhood_k=3, neighbourhood_candidates=7,
                                neighbourhood_shrinkage=0.0)
  layer = run.fit_neighbourhood(split, hparams)
  assert layer.max_neighbours == 3
  assert layer.neighbour_items.shape == (2 + 1, 7)  # 2 items (+ the unseen row), 7 candidates each
  expected = neighbourhood.NeighbourhoodRating(
      neighbourhood.fit_tables(users, items, ratings, shrinkage=0.0, num_candidates=7), 3)
  np.testing.assert_allclose(_predict(layer, [0, 2, 2], [1, 0, 1]), _predict(expected, [0, 2, 2], [1, 0, 1]))
