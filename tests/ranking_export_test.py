"""Export -> delete the Transform output -> reload -> serving_default on serialized tf.Examples."""

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from schema import features
from tests.transform_fixtures import analyzed_copy, movielens_like_row
from trainer.common import feature_specs
from trainer.ranking import export, hparams as hparams_lib, neighbourhood
from trainer.ranking.model import RankingModel, RatingEnsemble

ROWS = [
    movielens_like_row('u1', 'i1', 4.0, genres='Action|Comedy'),
    movielens_like_row('u2', 'i2', 2.0, age=50, gender='M', genres='Drama', year=()),
    movielens_like_row('u3', 'i1', 5.0, age=19, genres='Comedy'),
]


def _serialized(row) -> bytes:
  """A serving request row: every raw column but the rating."""
  feature = {}
  for key, value in row.items():
    if key == features.RATING:
      continue
    values = value if isinstance(value, list) else [value]
    if not values:
      continue  # a missing optional value
    if isinstance(value, str):
      feature[key] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))
    elif isinstance(values[0], float):
      feature[key] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
    else:
      feature[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
  return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def test_exported_model_answers_after_the_transform_output_is_deleted(tmp_path):
  transform_dir = str(tmp_path / 'transform')
  tf_transform_output = analyzed_copy(ROWS, transform_dir)
  hparams = hparams_lib.RankingHyperparameters(id_embedding_dim=4, feature_embedding_dim=2, hidden_units=(8,))
  towers = feature_specs.model_features(tf_transform_output)
  assert [s.raw_key for s in towers.user] == ['user_id', 'user_age', 'user_gender']
  # item_popularity is derived by Transform from item_id (not a column of the requests).
  assert [s.raw_key for s in towers.item] == ['item_id', 'item_genres', 'item_popularity', 'item_release_year']
  model = RankingModel(towers, hparams, rating_offset=3.5)

  requests = tf.constant([_serialized(r) for r in ROWS])
  # Expected: the in-memory model on the same requests, transformed while the Transform output exists.
  transform_layer = tf_transform_output.transform_features_layer()
  expected = model(transform_layer(
      tf.io.parse_example(requests, export.serving_feature_spec(tf_transform_output)))).numpy()
  export_dir = str(tmp_path / 'serving_model')
  export.export_ranking_model(model, tf_transform_output, export_dir)
  shutil.rmtree(transform_dir)
  assert not os.path.exists(transform_dir)

  reloaded = tf.saved_model.load(export_dir)
  serving = reloaded.signatures[export.SERVING_SIGNATURE]
  predictions = serving(examples=requests)[export.PREDICTIONS_OUTPUT]
  assert predictions.shape == (3, 1) and predictions.dtype == tf.float32
  np.testing.assert_allclose(predictions.numpy(), expected, rtol=1e-5)

  segments = reloaded.signatures[export.TRANSFORM_SIGNATURE](examples=requests)
  assert [v.decode() for v in segments[features.USER_AGE_BUCKET].numpy()] == ['25-34', '50-55', '18-24']
  # The Transform layer is saved with its tables and vocabularies (the answers above need them) but without the
  # call functions and default signature Keras traces for its own loader (trainer/common/transform_layer.py).
  assert not hasattr(reloaded.transform.layer, 'call_and_return_all_conditional_losses')
  assert not hasattr(reloaded.transform.layer, '_default_save_signature')


def test_exported_model_reads_the_request_time(tmp_path):
  day = 86400
  rows = [movielens_like_row('u1', 'i1', 4.0, timestamp=0), movielens_like_row('u2', 'i2', 2.0, timestamp=10 * day),
          movielens_like_row('u3', 'i1', 5.0, timestamp=20 * day)]
  tf_transform_output = analyzed_copy(rows, str(tmp_path / 'transform'))
  context = (features.INTERACTION_TIME, features.INTERACTION_ITEM_AGE)
  hparams = hparams_lib.RankingHyperparameters(id_embedding_dim=4, feature_embedding_dim=2, hidden_units=(8,),
                                               context_features=context)
  towers = feature_specs.model_features(tf_transform_output, context_features=context)
  assert [s.raw_key for s in towers.context] == list(context)
  export_dir = str(tmp_path / 'serving_model')
  export.export_ranking_model(RankingModel(towers, hparams, rating_offset=3.5), tf_transform_output, export_dir)
  serving = tf.saved_model.load(export_dir).signatures[export.SERVING_SIGNATURE]

  def predict(timestamp: int) -> float:
    request = _serialized(movielens_like_row('u1', 'i1', 0.0, timestamp=timestamp))
    return float(serving(examples=tf.constant([request]))[export.PREDICTIONS_OUTPUT][0, 0])

  # Day 10 and day 20 of the training period differ; days after the period are clipped to its last day.
  assert predict(10 * day) != predict(20 * day)
  assert predict(400 * day) == predict(20 * day)


def test_context_features_must_be_interaction_time_features(tmp_path):
  tf_transform_output = analyzed_copy(ROWS, str(tmp_path / 'transform'))
  with pytest.raises(ValueError, match=r"context_features names \['user_age'\]"):
    feature_specs.model_features(tf_transform_output, context_features=(features.USER_AGE,))


def test_exported_ensemble_reads_the_recent_rating_through_per_user_slopes(tmp_path):
  rows = [movielens_like_row('u1', 'i1', 4.0, recent=(2.0,)), movielens_like_row('u2', 'i2', 2.0, recent=(4.0,)),
          movielens_like_row('u3', 'i1', 5.0)]
  tf_transform_output = analyzed_copy(rows, str(tmp_path / 'transform'))
  slopes = (features.RECENT_RATING,)
  hparams = hparams_lib.RankingHyperparameters(id_embedding_dim=4, feature_embedding_dim=2, hidden_units=(8,),
                                               user_slope_features=slopes)
  towers = feature_specs.model_features(tf_transform_output, slope_features=slopes)
  members = [RankingModel(towers, hparams, rating_offset=3.5), RankingModel(towers, hparams, rating_offset=3.5)]
  request = tf.constant([_serialized(movielens_like_row('u1', 'i1', 0.0, recent=(5.0,)))])
  transformed = tf_transform_output.transform_features_layer()(
      tf.io.parse_example(request, export.serving_feature_spec(tf_transform_output)))
  for member, global_slope in zip(members, (1.0, 0.5)):
    member(transformed)
    member.rating_network.global_slopes.set_weights([np.array([[global_slope]], np.float32)])
  export_dir = str(tmp_path / 'serving_model')
  export.export_ranking_model(RatingEnsemble(members), tf_transform_output, export_dir)
  serving = tf.saved_model.load(export_dir).signatures[export.SERVING_SIGNATURE]

  def predict(recent) -> float:
    row = movielens_like_row('u1', 'i1', 0.0, recent=recent)
    return float(serving(examples=tf.constant([_serialized(row)]))[export.PREDICTIONS_OUTPUT][0, 0])

  # recent_rating 2 and 4 (u3 has none) have mean 3 and population std 1, so 5 stars is z = 2 (no value: 0) and
  # the members' slopes 1 and 0.5 (per-user slopes 0) add (1 + 0.5) / 2 * 2 = 1.5 to the no-history answer.
  assert predict((5.0,)) - predict(()) == pytest.approx(1.5, abs=1e-4)
  assert predict((3.0,)) == pytest.approx(predict(()), abs=1e-5)


def test_exported_blend_carries_the_neighbourhood_tables(tmp_path):
  transform_dir = str(tmp_path / 'transform')
  tf_transform_output = analyzed_copy(ROWS, transform_dir)
  towers = feature_specs.model_features(tf_transform_output)
  network = RankingModel(towers, hparams_lib.RankingHyperparameters(id_embedding_dim=4, feature_embedding_dim=2,
                                                                     hidden_units=(8,)), rating_offset=3.5)
  transform_layer = tf_transform_output.transform_features_layer()
  train = transform_layer(tf.io.parse_example(tf.constant([_serialized(r) for r in ROWS]),
                                              export.serving_feature_spec(tf_transform_output)))
  tables = neighbourhood.fit_tables(train[features.transformed_name(features.USER_ID)].numpy(), train[features.transformed_name(features.ITEM_ID)].numpy(),
                                    np.array([r[features.RATING] for r in ROWS]), shrinkage=100.0, num_candidates=5)
  blend = neighbourhood.NeighbourhoodBlend(network, neighbourhood.NeighbourhoodRating(tables, 40), weight=0.35)
  requests = tf.constant([_serialized(r) for r in ROWS + [movielens_like_row('u9', 'i1', 0.0)]])
  transformed = transform_layer(tf.io.parse_example(requests, export.serving_feature_spec(tf_transform_output)))
  expected = blend(transformed).numpy()
  # The unseen user u9 gets the network's answer blended with mu + item i1's bias.
  i1 = int(transformed[features.transformed_name(features.ITEM_ID)][3])
  np.testing.assert_allclose(
      expected[3, 0], 0.65 * network(transformed).numpy()[3, 0] + 0.35 * (tables.global_mean + tables.item_bias[i1]),
      rtol=1e-6)
  export_dir = str(tmp_path / 'serving_model')
  export.export_ranking_model(blend, tf_transform_output, export_dir)
  shutil.rmtree(transform_dir)

  serving = tf.saved_model.load(export_dir).signatures[export.SERVING_SIGNATURE]
  np.testing.assert_allclose(serving(examples=requests)[export.PREDICTIONS_OUTPUT].numpy(), expected, rtol=1e-5)
