"""RankingModel.compute_loss on a four-row batch with weights set by hand, and the hyperparameter codec."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from schema import features
from trainer.common import inputs
from trainer.common.feature_specs import FeatureKind, FeatureSpec, TowerFeatures
from trainer.ranking import hparams as hparams_lib
from trainer.ranking import run as run_lib
from trainer.ranking import model as model_lib
from trainer.ranking.model import RankingModel, RatingEnsemble

X = features.transformed_name
TOWERS = TowerFeatures(user=[FeatureSpec(features.USER_ID, FeatureKind.ID, 3)],
                       item=[FeatureSpec(features.ITEM_ID, FeatureKind.ID, 3)])
BATCH = {
    X(features.USER_ID): tf.constant([0, 1, 2, 0], tf.int64),
    X(features.ITEM_ID): tf.constant([0, 1, 2, 2], tf.int64),
    X(features.RATING): tf.constant([4.0, 5.0, 5.0, 2.0]),
}


def _model_with_weights(bias_terms: bool) -> RankingModel:
  hparams = hparams_lib.RankingHyperparameters(id_embedding_dim=1, hidden_units=(), bias_terms=bias_terms)
  model = RankingModel(TOWERS, hparams, rating_offset=3.0)
  model(BATCH)  # builds the weights
  values = {
      'user_id_embedding': [[1.0], [2.0], [3.0]],
      'item_id_embedding': [[0.5], [0.0], [-1.0]],
      'user_bias': [[0.1], [0.0], [0.0]],
      'item_bias': [[0.0], [0.0], [0.0]],
  }
  _set_weights(model, values)
  dense = model.rating_network.rating_layers.layers[-1]
  dense.set_weights([np.array([[1.0], [1.0]], np.float32), np.array([0.0], np.float32)])
  return model


def _set_weights(model: tf.keras.Model, values: dict) -> None:
  """Assigns each named layer's weight (e.g. 'user_bias': [[0.1], [0.0], [0.0]])."""
  for weight in model.weights:
    for name, value in values.items():
      if f'/{name}/' in weight.name or weight.name.startswith(f'{name}/'):
        weight.assign(value)


def test_predictions_and_loss_without_bias_terms():
  model = _model_with_weights(bias_terms=False)
  # rating = 3 (offset) + user embedding + item embedding: 4.5, 5, 5, 3 against labels 4, 5, 5, 2.
  np.testing.assert_allclose(model(BATCH).numpy().ravel(), [4.5, 5.0, 5.0, 3.0], rtol=1e-6)
  # squared errors 0.25, 0, 0, 1 -> mean 0.3125
  assert float(model.compute_loss(BATCH)) == pytest.approx(0.3125, rel=1e-6)


def test_loss_with_user_and_item_bias_terms():
  model = _model_with_weights(bias_terms=True)
  # user 0 has bias 0.1: predictions 4.6, 5, 5, 3.1 -> squared errors 0.36, 0, 0, 1.21 -> mean 0.3925
  np.testing.assert_allclose(model(BATCH).numpy().ravel(), [4.6, 5.0, 5.0, 3.1], rtol=1e-6)
  assert float(model.compute_loss(BATCH)) == pytest.approx(0.3925, rel=1e-5)


def test_retrieval_loss_adds_the_in_batch_softmax_of_the_factorization_vectors():
  hparams = hparams_lib.RankingHyperparameters(id_embedding_dim=1, hidden_units=(), bias_terms=False,
                                               factorization_dim=1, retrieval_loss_weight=0.5, embedding_l2=0.0)
  model = RankingModel(TOWERS, hparams, rating_offset=3.0)
  model(BATCH)
  _set_weights(model, {'user_id_embedding': [[1.0], [2.0], [3.0]], 'item_id_embedding': [[0.5], [0.0], [-1.0]],
                       'user_projection': [[1.0]], 'item_projection': [[1.0]]})
  model.rating_network.rating_layers.layers[-1].set_weights(
      [np.array([[1.0], [1.0]], np.float32), np.array([0.0], np.float32)])
  # Rows (user, item): (0, 0), (1, 1), (2, 2), (0, 2); vectors u = 1, 2, 3, 1 and i = 0.5, 0, -1, -1.
  # rating = 3 + u + i + u * i: 5, 5, 2, 2 against 4, 5, 5, 2 -> squared errors 1, 0, 9, 0 -> MSE 2.5.
  np.testing.assert_allclose(model(BATCH).numpy().ravel(), [5.0, 5.0, 2.0, 2.0], rtol=1e-6)
  # Scores u_r * i_c; row 0: (0.5, 0, -1, -1), its own 0.5: log(e^0.5 + 1 + 2 e^-1) - 0.5 = 0.71920;
  # row 1: (1, 0, -2, -2), own 0: log(e + 1 + 2 e^-2) = 1.38353; row 2: (1.5, 0, -3, -3), own -3:
  # log(e^1.5 + 1 + 2 e^-3) + 3 = 4.71942; row 3 as row 0 but its own item scores -1: 2.21920. Mean 2.26034.
  assert float(model_lib.in_batch_softmax_loss(tf.constant([[1.0], [2.0], [3.0], [1.0]]),
                                               tf.constant([[0.5], [0.0], [-1.0], [-1.0]]), 1.0)) == pytest.approx(
                                                   2.26034, rel=1e-5)
  assert float(model.compute_loss(BATCH)) == pytest.approx(2.5 + 0.5 * 2.26034, rel=1e-5)
  # Without the weight the loss is the MSE alone.
  plain = RankingModel(TOWERS, dataclasses.replace(hparams, retrieval_loss_weight=0.0), rating_offset=3.0)
  plain(BATCH)
  plain.set_weights(model.get_weights())
  assert float(plain.compute_loss(BATCH)) == pytest.approx(2.5, rel=1e-5)


def test_retrieval_loss_temperature_divides_the_scores():
  # Scores doubled (temperature 0.5): rows (1, 0, -2, -2), (2, 0, -4, -4), (3, 0, -6, -6), (1, 0, -2, -2) with own
  # scores 1, 0, -6, -2: log(e + 1 + 2e^-2) - 1 = 0.38353, log(e^2 + 1 + 2e^-4) = 2.13129,
  # log(e^3 + 1 + 2e^-6) + 6 = 9.04882, 0.38353 + 3 = 3.38353; mean 3.73679.
  loss = model_lib.in_batch_softmax_loss(tf.constant([[1.0], [2.0], [3.0], [1.0]]),
                                         tf.constant([[0.5], [0.0], [-1.0], [-1.0]]), 0.5)
  assert float(loss) == pytest.approx(3.73679, rel=1e-4)


def test_retrieval_loss_without_accidental_hits():
  # Rows 2 and 3 both rated item 2, so column 3 is no negative of row 2 and column 2 none of row 3. Row 2:
  # (1.5, 0, -3), own -3: log(e^1.5 + 1 + e^-3) + 3 = 4.71046; row 3: (0.5, 0, -1), own -1:
  # log(e^0.5 + 1 + e^-1) + 1 = 2.10413; rows 0 and 1 unchanged (0.71920, 1.38353). Mean 2.22933.
  loss = model_lib.in_batch_softmax_loss(tf.constant([[1.0], [2.0], [3.0], [1.0]]),
                                         tf.constant([[0.5], [0.0], [-1.0], [-1.0]]), 1.0,
                                         item_ids=BATCH[X(features.ITEM_ID)])
  assert float(loss) == pytest.approx(2.22933, rel=1e-5)


def test_retrieval_loss_with_popularity_correction():
  # log q = (1, 0, 0, 0) is subtracted from column 0. Row 0: (-0.5, 0, -1, -1), own -0.5:
  # log(e^-0.5 + 1 + 2e^-1) + 0.5 = 1.35113; row 1: (0, 0, -2, -2), own 0: log(2 + 2e^-2) = 0.82008;
  # row 2: (0.5, 0, -3, -3), own -3: log(e^0.5 + 1 + 2e^-3) + 3 = 4.01098; row 3 as row 0 with own -1: 1.85113.
  # Mean 2.00833.
  loss = model_lib.in_batch_softmax_loss(tf.constant([[1.0], [2.0], [3.0], [1.0]]),
                                         tf.constant([[0.5], [0.0], [-1.0], [-1.0]]), 1.0,
                                         item_log_probabilities=tf.constant([1.0, 0.0, 0.0, 0.0]))
  assert float(loss) == pytest.approx(2.00833, rel=1e-5)


def test_ranking_model_options_reach_the_retrieval_loss():
  hparams = hparams_lib.RankingHyperparameters(id_embedding_dim=1, hidden_units=(), bias_terms=False,
                                               factorization_dim=1, retrieval_loss_weight=1.0,
                                               retrieval_remove_accidental_hits=True,
                                               retrieval_popularity_correction=True)
  # Item log-probabilities by item index; gathered per row: (1, 0, 0, 0) as in the test above.
  model = RankingModel(TOWERS, hparams, rating_offset=3.0, item_log_probabilities=tf.constant([1.0, 0.0, 0.0]))
  model(BATCH)
  _set_weights(model, {'user_id_embedding': [[1.0], [2.0], [3.0]], 'item_id_embedding': [[0.5], [0.0], [-1.0]],
                       'user_projection': [[1.0]], 'item_projection': [[1.0]]})
  model.rating_network.rating_layers.layers[-1].set_weights([np.array([[0.0], [0.0]], np.float32),
                                                             np.array([0.0], np.float32)])
  # Ratings 3 + u * i: 3.5, 3, 0, 2 against 4, 5, 5, 2 -> MSE (0.25 + 4 + 25 + 0) / 4 = 7.3125. Retrieval loss
  # with both options: rows 0 and 1 as with the correction (1.35113, 0.82008), row 2 with column 3 left out:
  # log(e^0.5 + 1 + e^-3) + 3 = 3.99270, row 3 with column 2 left out: log(e^-0.5 + 1 + e^-1) + 1 = 1.68027.
  # Mean 1.96104.
  assert float(model.compute_loss(BATCH, training=True)) == pytest.approx(7.3125 + 1.96104, rel=1e-5)
  # Evaluating (the watched split may hold items the training table lacks) leaves the correction out: accidental
  # hits removed only, 2.22933 as in the test above.
  assert float(model.compute_loss(BATCH, training=False)) == pytest.approx(7.3125 + 2.22933, rel=1e-5)


def test_item_log_probabilities_are_training_shares():
  split = inputs.in_memory(tf.data.Dataset.from_tensors(
      {X(features.ITEM_ID): tf.constant([0, 2, 2, 0, 0, 2], tf.int64)}))
  # Items 0 and 2 hold 3 of the 6 examples each; item 1 none (log(1/6), never gathered in training).
  np.testing.assert_allclose(run_lib.item_log_probabilities(split).numpy(),
                             np.log([0.5, 1 / 6, 0.5]), rtol=1e-6)


def test_one_training_step_lowers_the_loss():
  model = _model_with_weights(bias_terms=True)
  model.compile(optimizer=tf.keras.optimizers.SGD(learning_rate=0.1))
  before = float(model.compute_loss(BATCH))
  model.fit(tf.data.Dataset.from_tensors(BATCH), epochs=1, verbose=0)
  assert float(model.compute_loss(BATCH)) < before


def test_hyperparameters_round_trip_through_custom_config():
  hparams = dataclasses.replace(hparams_lib.SEED_NOTEBOOK, epochs=7)
  config = hparams.to_config()
  assert config['hidden_units'] == [256, 64] and config['item_features'] == ['item_title']
  assert hparams_lib.RankingHyperparameters.from_config(config) == hparams


def test_seed_configuration_matches_the_seed_notebook():
  seed = hparams_lib.named_configuration('seed')
  assert (seed.id_embedding_dim, seed.hidden_units, seed.optimizer, seed.learning_rate, seed.batch_size,
          seed.epochs) == (32, (256, 64), 'adagrad', 0.1, 8192, 3)
  assert seed.user_features == ('user_id',) and seed.item_features == ('item_title',)


@pytest.mark.parametrize('field,value,message', [
    ('optimizer', 'rmsprop', 'optimizer'),
    ('learning_rate', 0.0, 'learning_rate'),
    ('dropout', 1.0, 'dropout'),
    ('epochs', 0, 'epochs'),
    ('validation_fraction', 0.5, r'validation_fraction=0.5 must be 0 \(no validation slice\) or in \[1e-06, 0.5\)'),
    # Too small to hold out a row in a million: the Trainer's split would have failed after Transform.
    ('validation_fraction', 1e-7, r'validation_fraction=1e-07 must be 0'),
    # Below 0.5 as a float, but the slice reads it as 1/2 (|p/q - 1/2| >= 1/(2q) >= 5e-7 for any other q <= 10^6).
    ('validation_fraction', 0.4999999, r'^validation_fraction=0.4999999 is read as 1/2 when the slice is carved .* '
                                       r'give a share below 0.4999997 \(e.g. 0.05\)\.$'),
    # Before: "FeatureEncoder needs at least one feature" from the Trainer, after reading the data.
    ('user_features', (), r"user_features=\[\] leaves the user side without inputs; name at least 'user_id'"),
    ('item_features', (), r"item_features=\[\] leaves the item side without inputs; name at least 'item_id'"),
    # An item column on the user side gave the user's vector (the factorization term's, joint training's query
    # tower) the row's own item; a context feature on a side trained without a word: it belongs in context_features.
    ('user_features', ('user_id', 'item_genres'),
     r"user_features names \['item_genres'\], which are not user features: the user side reads 'user_id' and user_\* "
     r"columns only \(context features such as 'recent_rating' go in context_features\)\. Remove them\."),
    ('item_features', ('item_id', 'interaction_time'), r"item_features names \['interaction_time'\], which are not item"),
    # A repeated name put the feature's encoding twice in the side's vector (FeatureEncoder) without a word.
    ('user_features', ('user_id', 'user_gender', 'user_id'),
     r"user_features=\['user_id', 'user_gender', 'user_id'\] names \['user_id'\] more than once; name each feature "
     r"once\."),
    ('item_features', ('item_id', 'item_genres', 'item_genres'), r"item_features=.* names \['item_genres'\] more than"),
    ('context_features', ('interaction_time', 'interaction_time'),
     r"context_features=\['interaction_time', 'interaction_time'\] names \['interaction_time'\] more than once"),
    ('user_slope_features', ('recent_rating', 'interaction_time', 'recent_rating'),
     r"user_slope_features=.* names \['recent_rating'\] more than once"),
])
def test_invalid_hyperparameters_are_refused_with_their_name(field, value, message):
  with pytest.raises(ValueError, match=message):
    dataclasses.replace(hparams_lib.DEFAULT, **{field: value})


def test_unknown_hyperparameter_in_custom_config_is_refused():
  with pytest.raises(ValueError, match='embeding_dim'):
    hparams_lib.RankingHyperparameters.from_config({'embeding_dim': 8})


def test_context_features_feed_the_rating_network():
  towers = dataclasses.replace(TOWERS, context=[FeatureSpec(features.INTERACTION_TIME, FeatureKind.NUMERIC)])
  hparams = hparams_lib.RankingHyperparameters(id_embedding_dim=1, hidden_units=(), bias_terms=False,
                                               context_features=(features.INTERACTION_TIME,))
  model = RankingModel(towers, hparams, rating_offset=3.0)
  batch = {**BATCH, X(features.INTERACTION_TIME): tf.constant([0.0, 1.0, -1.0, 2.0])}
  model(batch)
  _set_weights(model, {'user_id_embedding': [[1.0], [2.0], [3.0]], 'item_id_embedding': [[0.5], [0.0], [-1.0]]})
  # Output layer input: [user embedding, item embedding, interaction time] with weights 1, 1, 0.5.
  model.rating_network.rating_layers.layers[-1].set_weights(
      [np.array([[1.0], [1.0], [0.5]], np.float32), np.array([0.0], np.float32)])
  # 3 + u + i + 0.5 t: 3 + 1 + 0.5 + 0 = 4.5; 3 + 2 + 0 + 0.5 = 5.5; 3 + 3 - 1 - 0.5 = 4.5; 3 + 1 - 1 + 1 = 4.
  np.testing.assert_allclose(model(batch).numpy().ravel(), [4.5, 5.5, 4.5, 4.0], rtol=1e-6)


def test_user_slope_features_add_a_global_plus_per_user_linear_term():
  towers = dataclasses.replace(TOWERS, slopes=[FeatureSpec(features.RECENT_RATING, FeatureKind.NUMERIC)])
  hparams = hparams_lib.RankingHyperparameters(id_embedding_dim=1, hidden_units=(), bias_terms=False,
                                               user_slope_features=(features.RECENT_RATING,), user_slope_l2=0.5,
                                               embedding_l2=0.0)
  model = RankingModel(towers, hparams, rating_offset=3.0)
  batch = {**BATCH, X(features.RECENT_RATING): tf.constant([1.0, -2.0, 0.0, -1.0])}
  model(batch)
  _set_weights(model, {'user_id_embedding': [[1.0], [2.0], [3.0]], 'item_id_embedding': [[0.5], [0.0], [-1.0]],
                       'user_slopes': [[0.5], [0.0], [-1.0]], 'global_slopes': [[0.25]]})
  model.rating_network.rating_layers.layers[-1].set_weights(
      [np.array([[1.0], [1.0]], np.float32), np.array([0.0], np.float32)])
  # 3 + u + i + (0.25 + s_u) x: 4.5 + 0.75 * 1 = 5.25; 5 + 0.25 * -2 = 4.5; 5 + (-0.75) * 0 = 5;
  # 3 + 0.75 * -1 = 2.25.
  np.testing.assert_allclose(model(batch).numpy().ravel(), [5.25, 4.5, 5.0, 2.25], rtol=1e-6)
  # Squared errors 1.5625, 0.25, 0, 0.0625 -> mean 0.46875; the regularisation loss (added by tfrs.Model when
  # training) is L2 0.5 * (0.25 + 0 + 1) = 0.625 on the per-user slopes only.
  assert float(model.compute_loss(batch)) == pytest.approx(0.46875, rel=1e-5)
  assert float(tf.add_n(model.losses)) == pytest.approx(0.625, rel=1e-5)


@pytest.mark.parametrize('fields,message', [
    ({'retrieval_loss_weight': -0.1, 'factorization_dim': 8}, 'retrieval_loss_weight=-0.1 must be >= 0'),
    ({'retrieval_loss_weight': 0.3, 'factorization_dim': 0}, 'set factorization_dim > 0'),
    ({'retrieval_loss_temperature': 0.0}, 'retrieval_loss_temperature=0.0 must be positive'),
    ({'retrieval_loss_weight': 0.0, 'retrieval_remove_accidental_hits': True},
     'retrieval_remove_accidental_hits=True .* set retrieval_loss_weight > 0'),
    ({'retrieval_loss_weight': 0.0, 'retrieval_popularity_correction': True},
     'retrieval_popularity_correction=True .* set retrieval_loss_weight > 0'),
])
def test_invalid_retrieval_loss_settings_are_refused_with_the_fix(fields, message):
  with pytest.raises(ValueError, match=message):
    dataclasses.replace(hparams_lib.DEFAULT, **fields)


def test_user_slope_features_need_the_user_id():
  with pytest.raises(ValueError, match="user_features must include 'user_id'"):
    hparams_lib.RankingHyperparameters(user_features=('user_age',), user_slope_features=(features.RECENT_RATING,))
  towers = TowerFeatures(user=[FeatureSpec(features.USER_AGE, FeatureKind.NUMERIC)], item=TOWERS.item,
                         slopes=[FeatureSpec(features.RECENT_RATING, FeatureKind.NUMERIC)])
  with pytest.raises(ValueError, match='add user_id to user_features'):
    RankingModel(towers, hparams_lib.RankingHyperparameters(user_slope_features=(features.RECENT_RATING,),
                                                            bias_terms=False), 3.0)


@pytest.mark.parametrize('fields,message', [
    ({'user_features': ('user_age',)},
     "bias_terms=True adds a per-user rating bias, an embedding of 'user_id', but user_features=['user_age'] does not "
     "include 'user_id': add 'user_id' to user_features (or set user_features to null), or set bias_terms to false."),
    ({'item_features': ('item_title', 'item_genres')},
     "bias_terms=True adds a per-item rating bias, an embedding of 'item_id', but item_features=['item_title', "
     "'item_genres'] does not include 'item_id': add 'item_id' to item_features (or set item_features to null), or "
     "set bias_terms to false."),
])
def test_bias_terms_without_the_sides_id_are_refused_before_training(fields, message):
  # Before, the side's bias was skipped without a word and the model trained without it (the bias is an embedding
  # of the side's id); the seed notebook's configuration (item_features=['item_title']) sets bias_terms=False.
  with pytest.raises(ValueError) as raised:
    hparams_lib.RankingHyperparameters(**fields)
  assert str(raised.value) == message
  with pytest.raises(ValueError, match=r"bias_terms=True adds a per-\w+ rating bias"):
    hparams_lib.RankingHyperparameters.from_config({k: list(v) for k, v in fields.items()})
  assert hparams_lib.RankingHyperparameters(bias_terms=False, **fields).bias_terms is False


def test_a_model_whose_side_lacks_its_id_refuses_bias_terms():
  # Towers built directly (the Trainer's come from hyperparameters checked above): before, RatingNetwork left the
  # item bias out silently, so this model had a user bias only.
  towers = TowerFeatures(user=TOWERS.user, item=[FeatureSpec(features.ITEM_GENRES, FeatureKind.TOKEN_BAG, 4)])
  with pytest.raises(ValueError, match=r"bias_terms=True needs the 'item_id' feature for the item_bias, but the side "
                                       r"encodes only \['item_genres'\]; add 'item_id' to its features, or set "
                                       r"bias_terms to false\."):
    RankingModel(towers, hparams_lib.RankingHyperparameters(), 3.0)
  assert RankingModel(towers, hparams_lib.RankingHyperparameters(bias_terms=False), 3.0).rating_network.item_bias is None


def test_ensemble_predicts_the_members_mean_rating():
  ensemble = RatingEnsemble([_model_with_weights(bias_terms=False), _model_with_weights(bias_terms=True)])
  # Members predict 4.5, 5, 5, 3 and 4.6, 5, 5, 3.1 (the two tests above).
  np.testing.assert_allclose(ensemble(BATCH).numpy().ravel(), [4.55, 5.0, 5.0, 3.05], rtol=1e-6)
  with pytest.raises(ValueError, match='at least one member'):
    RatingEnsemble([])
  with pytest.raises(ValueError, match='ensemble_size=0 must be a positive integer'):
    hparams_lib.RankingHyperparameters(ensemble_size=0)


def test_member_history_keys():
  assert [run_lib._member_key(k, m) for k, m in (('rmse', 0), ('val_rmse', 0), ('rmse', 1), ('val_rmse', 2))] == [
      'rmse', 'val_rmse', 'member1_rmse', 'val_member2_rmse']


def test_a_validation_slice_taking_the_only_training_example_is_refused_naming_validation_fraction():
  # One row: the slice takes row 0, so nothing was left to train on and the Trainer said "The training split holds
  # no examples; check the interactions file and the split" (it held one).
  one_row = inputs.InMemorySplit({features.transformed_name(features.RATING): tf.constant([4.0])})
  with pytest.raises(ValueError, match=r'^validation_fraction=0.05 holds out all 1 example\(s\) of the training '
                                       r'split .* set validation_fraction to 0, or train on more examples\.$'):
    run_lib.carve_validation(one_row, 0.05)
  # Two rows: row 0 held out (0 * 1 = 0 is a multiple of 20), row 1 trained on (no multiple of 20 in [1, 2)).
  remaining, validation = run_lib.carve_validation(
      inputs.InMemorySplit({features.transformed_name(features.RATING): tf.constant([4.0, 2.0])}), 0.05)
  assert remaining.columns['rating_xf'].numpy().tolist() == [2.0]
  assert validation.columns['rating_xf'].numpy().tolist() == [4.0]
