"""Retrieval export: catalogue from both splits -> export -> delete the Transform output -> reload -> query."""

import os
import shutil
import subprocess
import sys
from typing import Dict, List, Mapping

import numpy as np
import pytest
import tensorflow as tf

from schema import features
from tests.transform_fixtures import analyzed_copy, movielens_like_row
from trainer.common import feature_specs
from components import retrieval_gate
from trainer.retrieval import candidates, export, hparams as hparams_lib, item_item, loading
from trainer.retrieval.model import RetrievalModel

TRAIN_ROWS = [
    movielens_like_row('u1', 'i1', 4.0, genres='Action|Comedy'),
    movielens_like_row('u2', 'i2', 2.0, age=50, gender='M', genres='Drama', year=()),
    movielens_like_row('u3', 'i1', 5.0, age=19, genres='Comedy'),
    movielens_like_row('u3', 'i3', 3.0, age=19, genres='Horror', year=(1980,)),
]
# 'i9' appears only in the evaluation split: it must still be a candidate, under its raw id.
EVAL_ROWS = [movielens_like_row('u1', 'i9', 5.0, genres='Drama|Comedy'),
             movielens_like_row('u2', 'i3', 4.0, age=50, gender='M', genres='Horror', year=(1980,))]


def serialized(row: Mapping, keep=lambda column: True) -> bytes:
  """A tf.Example of `row`'s columns that `keep` accepts."""
  feature = {}
  for key, value in row.items():
    if not keep(key):
      continue
    values = value if isinstance(value, list) else [value]
    if isinstance(value, str):
      feature[key] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))
    elif isinstance(value, float):
      feature[key] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
    else:
      feature[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
  return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_split(rows: List[Dict], path: str) -> None:
  """Writes `rows` as a gzipped TFRecord of tf.Example, as ExampleGen does."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with tf.io.TFRecordWriter(path, options='GZIP') as writer:
    for row in rows:
      writer.write(serialized(row))


def is_user_column(column: str) -> bool:
  return column == features.USER_ID or features.is_user_feature(column)


def test_catalogue_holds_every_item_of_both_splits_once(tmp_path):
  write_split(TRAIN_ROWS, str(tmp_path / 'Split-train' / 'data.gz'))
  write_split(EVAL_ROWS, str(tmp_path / 'Split-eval' / 'data.gz'))
  catalogue = candidates.catalogue_examples([str(tmp_path / 'Split-train' / '*'), str(tmp_path / 'Split-eval' / '*')])
  item_ids = [tf.train.Example.FromString(e).features.feature[features.ITEM_ID].bytes_list.value[0]
              for e in catalogue.numpy()]
  assert item_ids == [b'i1', b'i2', b'i3', b'i9']


def test_catalogue_examples_hold_each_item_column_latest_value(tmp_path):
  # i1's genres change at t=20 and its year is dropped on that row; the eval split holds an older row (t=5).
  train = [movielens_like_row('u1', 'i1', 4.0, genres='Comedy', year=(1995,), timestamp=10),
           movielens_like_row('u2', 'i1', 3.0, genres='Action|Comedy', year=(), timestamp=20)]
  eval_ = [movielens_like_row('u3', 'i1', 5.0, genres='Drama', year=(1994,), timestamp=5)]
  write_split(train, str(tmp_path / 'Split-train' / 'data.gz'))
  write_split(eval_, str(tmp_path / 'Split-eval' / 'data.gz'))
  catalogue = candidates.catalogue_examples([str(tmp_path / 'Split-train' / '*'), str(tmp_path / 'Split-eval' / '*')])
  (only,) = [tf.train.Example.FromString(e).features.feature for e in catalogue.numpy()]
  assert sorted(only) == [features.ITEM_GENRES, features.ITEM_ID, features.ITEM_RELEASE_YEAR]  # item columns only
  assert only[features.ITEM_ID].bytes_list.value == [b'i1']
  assert only[features.ITEM_GENRES].bytes_list.value == [b'Action|Comedy']
  assert only[features.ITEM_RELEASE_YEAR].int64_list.value == [1995]


def test_exported_model_answers_after_the_transform_output_is_deleted(tmp_path):
  transform_dir = str(tmp_path / 'transform')
  tf_transform_output = analyzed_copy(TRAIN_ROWS, transform_dir)
  hparams = hparams_lib.RetrievalHyperparameters(id_embedding_dim=4, feature_embedding_dim=2, embedding_dim=3,
                                                 top_k=2, item_item_weight=0.0)
  tower_features = feature_specs.model_features(tf_transform_output)
  model = RetrievalModel(tower_features, hparams)
  transform_layer = tf_transform_output.transform_features_layer()
  catalogue = tf.constant([serialized(r) for r in (TRAIN_ROWS[0], TRAIN_ROWS[1], EVAL_ROWS[0])])
  item_ids, item_embeddings = export.embed_catalogue(model.candidate_tower, catalogue, tf_transform_output,
                                                     transform_layer)
  assert item_ids.numpy().tolist() == [b'i1', b'i2', b'i9']

  # Requests hold only the user columns; 'u404' is not in the vocabulary.
  users = [TRAIN_ROWS[0], TRAIN_ROWS[1], movielens_like_row('u404', 'i1', 1.0, age=33, gender='M')]
  requests = tf.constant([serialized(r, keep=is_user_column) for r in users])
  # Expected: the in-memory query tower and catalogue, while the Transform output exists.
  queries = model.query_tower(transform_layer(
      tf.io.parse_example(requests, candidates.user_feature_spec(tf_transform_output)))).numpy()
  expected_scores = queries @ item_embeddings.numpy().T  # [3 users, 3 items]
  expected_top = np.argsort(-expected_scores, axis=1)[:, :2]

  export_dir = str(tmp_path / 'serving_model')
  export.export_retrieval_model(model.query_tower, item_ids, item_embeddings, tf_transform_output, hparams,
                                export_dir)
  shutil.rmtree(transform_dir)
  assert not os.path.exists(transform_dir)
  assert loading.scann_ops_of(export_dir) == frozenset()  # brute force: plain TensorFlow ops

  reloaded = tf.saved_model.load(export_dir)
  answer = reloaded.signatures[export.SERVING_SIGNATURE](examples=requests)
  assert answer[export.ITEM_IDS_OUTPUT].dtype == tf.string and answer[export.ITEM_IDS_OUTPUT].shape == (3, 2)
  assert answer[export.SCORES_OUTPUT].dtype == tf.float32 and answer[export.SCORES_OUTPUT].shape == (3, 2)
  np.testing.assert_array_equal(answer[export.ITEM_IDS_OUTPUT].numpy(), item_ids.numpy()[expected_top])
  np.testing.assert_allclose(answer[export.SCORES_OUTPUT].numpy(),
                             np.take_along_axis(expected_scores, expected_top, axis=1), rtol=1e-5)

  # The unknown user is answered from the out-of-vocabulary row of the user id embedding.
  user_id_spec = tower_features.user[0]
  assert user_id_spec.raw_key == features.USER_ID
  oov_index = user_id_spec.input_dim - 1
  transformed = reloaded.signatures[export.TRANSFORM_SIGNATURE](examples=requests)
  assert transformed[features.transformed_name(features.USER_ID)].numpy()[2] == oov_index
  assert [v.decode() for v in transformed[features.USER_AGE_BUCKET].numpy()] == ['25-34', '50-55', '25-34']
  # Saved without the call functions Keras traces for its own loader (trainer/common/transform_layer.py).
  assert not hasattr(reloaded.transform.layer, 'call_and_return_all_conditional_losses')

  embedded = reloaded.signatures[export.QUERY_EMBEDDING_SIGNATURE](examples=requests)[export.EMBEDDINGS_OUTPUT]
  np.testing.assert_allclose(embedded.numpy(), queries, rtol=1e-5)
  catalogue_out = reloaded.signatures[export.CANDIDATE_EMBEDDINGS_SIGNATURE]()
  assert catalogue_out[export.ITEM_IDS_OUTPUT].numpy().tolist() == [b'i1', b'i2', b'i9']
  np.testing.assert_allclose(catalogue_out[export.EMBEDDINGS_OUTPUT].numpy(), item_embeddings.numpy())


def _scann_export(tmp_path, catalogue_rows, top_k=2):
  transform_dir = str(tmp_path / 'transform')
  tf_transform_output = analyzed_copy(TRAIN_ROWS, transform_dir)
  hparams = hparams_lib.RetrievalHyperparameters(id_embedding_dim=4, feature_embedding_dim=2, embedding_dim=3,
                                                 top_k=top_k, index=hparams_lib.SCANN_INDEX, item_item_weight=0.0)
  model = RetrievalModel(feature_specs.model_features(tf_transform_output), hparams)
  catalogue = tf.constant([serialized(r) for r in catalogue_rows])
  item_ids, item_embeddings = export.embed_catalogue(model.candidate_tower, catalogue, tf_transform_output,
                                                     tf_transform_output.transform_features_layer())
  export_dir = str(tmp_path / 'scann_model')
  export.export_retrieval_model(model.query_tower, item_ids, item_embeddings, tf_transform_output, hparams,
                                export_dir)
  shutil.rmtree(transform_dir)
  return export_dir


def test_scann_index_export_loads_and_answers_with_scann_ops(tmp_path):
  # ScaNN's ops are registered by importing scann (a ScaNN-enabled server has them built in).
  import scann  # pylint: disable=g-import-not-at-top,unused-import
  genres = ['Action', 'Comedy', 'Drama', 'Horror']
  catalogue_ids = {f'i{n}'.encode() for n in range(20)}
  export_dir = _scann_export(tmp_path, [
      movielens_like_row('u1', f'i{n}', 3.0, genres=genres[n % 4], year=(1950 + n,)) for n in range(20)])

  requests = tf.constant([serialized(r, keep=is_user_column) for r in (TRAIN_ROWS[0], TRAIN_ROWS[1])])
  answer = tf.saved_model.load(export_dir).signatures[export.SERVING_SIGNATURE](examples=requests)
  ids, scores = answer[export.ITEM_IDS_OUTPUT].numpy(), answer[export.SCORES_OUTPUT].numpy()
  assert ids.shape == (2, 2) and scores.shape == (2, 2)
  # Every answer is a catalogue item, each user's two answers differ, best first.
  assert set(ids.ravel()) <= catalogue_ids
  assert all(row[0] != row[1] for row in ids)
  assert np.all(scores[:, 0] >= scores[:, 1])


def test_scann_index_on_a_tiny_catalogue_is_refused_naming_the_fix(tmp_path):
  with pytest.raises(ValueError, match='brute_force'):
    _scann_export(tmp_path, [TRAIN_ROWS[0], TRAIN_ROWS[1], EVAL_ROWS[0]])


def test_scann_index_whose_searched_leaves_hold_fewer_than_k_items_is_refused_naming_the_fix(tmp_path):
  import scann  # pylint: disable=g-import-not-at-top,unused-import
  # 20 items in 20 leaves, 10 searched: about half the items are candidates, fewer than K = 18.
  rows = [movielens_like_row('u1', f'i{n}', 3.0, year=(1950 + n,)) for n in range(20)]
  with pytest.raises(ValueError, match=r'fewer than top_k=18 candidates.*10 of 20 leaves.*scann_num_leaves_to_search'):
    _scann_export(tmp_path, rows, top_k=18)


def test_item_item_scores_are_added_to_unseen_items_only_and_rank_the_answer(tmp_path):
  transform_dir = str(tmp_path / 'transform')
  tf_transform_output = analyzed_copy(TRAIN_ROWS, transform_dir)
  hparams = hparams_lib.RetrievalHyperparameters(id_embedding_dim=4, feature_embedding_dim=2, embedding_dim=3,
                                                 top_k=3, item_item_weight=3.0, item_item_l2=1.0)
  model = RetrievalModel(feature_specs.model_features(tf_transform_output), hparams)
  transform_layer = tf_transform_output.transform_features_layer()
  catalogue = tf.constant([serialized(r) for r in (TRAIN_ROWS[0], TRAIN_ROWS[1], TRAIN_ROWS[3], EVAL_ROWS[0])])
  item_ids, item_embeddings = export.embed_catalogue(model.candidate_tower, catalogue, tf_transform_output,
                                                     transform_layer)
  assert item_ids.numpy().tolist() == [b'i1', b'i2', b'i3', b'i9']
  train_dir = tmp_path / 'Split-train'
  write_split(TRAIN_ROWS, str(train_dir / 'data.gz'))
  histories = item_item.read_histories([str(train_dir / '*')], item_ids.numpy())
  scorer = item_item.ItemItemScorer(histories, item_item.fit_weights(histories, 4, hparams.item_item_l2), 4)
  export_dir = str(tmp_path / 'serving_model')
  export.export_retrieval_model(model.query_tower, item_ids, item_embeddings, tf_transform_output, hparams,
                                export_dir, item_item=scorer)

  users = [TRAIN_ROWS[0], TRAIN_ROWS[2], movielens_like_row('u404', 'i1', 1.0, age=33, gender='M')]
  requests = tf.constant([serialized(r, keep=is_user_column) for r in users])
  towers = model.query_tower(transform_layer(
      tf.io.parse_example(requests, candidates.user_feature_spec(tf_transform_output)))).numpy() @ \
      item_embeddings.numpy().T
  # u1 has i1, u3 has i1 and i3: with l2 = 1, B[i1, i3] = 1 / (2 + 1) (i3's column regressed on i1's: u1 and u3
  # have i1, u3 has i3). u1's unseen i3 gets 3 * 1/3; u3's unseen items co-occur with nothing; u404 has no items.
  expected = towers + np.array([[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
  reloaded = tf.saved_model.load(export_dir)
  scores = reloaded.signatures[export.CATALOGUE_SCORES_SIGNATURE](examples=requests)[export.SCORES_OUTPUT].numpy()
  np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
  answer = reloaded.signatures[export.SERVING_SIGNATURE](examples=requests)
  expected_top = np.argsort(-expected, axis=1, kind='stable')[:, :3]
  np.testing.assert_array_equal(answer[export.ITEM_IDS_OUTPUT].numpy(), item_ids.numpy()[expected_top])
  np.testing.assert_allclose(answer[export.SCORES_OUTPUT].numpy(), np.take_along_axis(expected, expected_top, 1),
                             rtol=1e-5, atol=1e-6)
  # The retrieval gate ranks by the same scores.
  np.testing.assert_allclose(retrieval_gate.catalogue_scores(reloaded, requests, item_embeddings.numpy()), expected,
                             rtol=1e-5, atol=1e-6)


def test_scann_with_item_item_scores_answers_the_union_of_both_candidate_lists_re_scored(tmp_path):
  import scann  # pylint: disable=g-import-not-at-top,unused-import
  tf_transform_output = analyzed_copy(TRAIN_ROWS, str(tmp_path / 'transform'))
  hparams = hparams_lib.RetrievalHyperparameters(id_embedding_dim=4, feature_embedding_dim=2, embedding_dim=3,
                                                 top_k=2, index=hparams_lib.SCANN_INDEX, item_item_weight=100.0)
  model = RetrievalModel(feature_specs.model_features(tf_transform_output), hparams)
  genres = ['Action', 'Comedy', 'Drama', 'Horror']
  catalogue = tf.constant([serialized(movielens_like_row('u1', f'i{n}', 3.0, genres=genres[n % 4],
                                                         year=(1950 + n,))) for n in range(20)])
  item_ids, item_embeddings = export.embed_catalogue(model.candidate_tower, catalogue, tf_transform_output,
                                                     tf_transform_output.transform_features_layer())
  column = {item.decode(): c for c, item in enumerate(item_ids.numpy())}
  # Covered items i0, i1, i7, i12 (in column order); B[from, to] by hand: i0 -> i7 1, i1 -> i7 2, i0 -> i12 1,
  # i7 -> i0 5. u1 has i0 and i1: i7 scores 1 + 2 = 3, i12 1. u2 has i7: i0 scores 5. u404 is unknown.
  covered = sorted(column[i] for i in ('i0', 'i1', 'i7', 'i12'))
  position = {c: p for p, c in enumerate(covered)}
  weights = np.zeros([4, 4], np.float32)
  for source, target, weight in (('i0', 'i7', 1.0), ('i1', 'i7', 2.0), ('i0', 'i12', 1.0), ('i7', 'i0', 5.0)):
    weights[position[column[source]], position[column[target]]] = weight
  histories = item_item.histories_from_sets({b'u1': {column['i0'], column['i1']}, b'u2': {column['i7']}})
  scorer = item_item.ItemItemScorer(histories, item_item.ItemItemWeights(np.array(covered), weights), 20)
  export_dir = str(tmp_path / 'scann_item_item')
  export.export_retrieval_model(model.query_tower, item_ids, item_embeddings, tf_transform_output, hparams,
                                export_dir, item_item=scorer)

  requests = tf.constant([serialized(r, keep=is_user_column) for r in (
      TRAIN_ROWS[0], TRAIN_ROWS[1], movielens_like_row('u404', 'i1', 1.0, age=33, gender='M'))])
  reloaded = tf.saved_model.load(export_dir)
  exact = reloaded.signatures[export.CATALOGUE_SCORES_SIGNATURE](examples=requests)[export.SCORES_OUTPUT].numpy()
  answer = reloaded.signatures[export.SERVING_SIGNATURE](examples=requests)
  ids = [[column[i.decode()] for i in row] for row in answer[export.ITEM_IDS_OUTPUT].numpy()]
  scores = answer[export.SCORES_OUTPUT].numpy()
  # The towers' scores are within [-1, 1] (normalised embeddings), so 100 x the item-item scores decide: u1's
  # best two are i7 (300 + tower) and i12 (100 + tower), u2's best is i0 (500 + tower), whatever ScaNN found.
  assert ids[0] == [column['i7'], column['i12']]
  assert ids[1][0] == column['i0']
  # Every answer is re-scored exactly (as catalogue_scores), best first, each item once.
  for user in range(3):
    np.testing.assert_allclose(scores[user], exact[user, ids[user]], rtol=1e-5, atol=1e-5)
    assert scores[user, 0] >= scores[user, 1] and ids[user][0] != ids[user][1]
  assert np.all(np.abs(scores[2]) <= 1.0 + 1e-5)  # the unknown user: the towers' scores alone

  # A process that never imported scann (the retrieval gate's container, a serving process) loads it through
  # loading.load_retrieval_model, which registers ScaNN's ops first; the answer is the same.
  assert 'Scann>ScannSearchBatched' in loading.scann_ops_of(export_dir)
  np.save(str(tmp_path / 'requests.npy'), requests.numpy())
  script = ('import sys, numpy as np\n'
            'from pipeline import environment\n'
            'environment.use_legacy_keras()\n'
            'import tensorflow as tf\n'
            'from trainer.retrieval import loading\n'
            'assert "scann" not in sys.modules\n'
            'model = loading.load_retrieval_model(sys.argv[1])\n'
            'ids = model.signatures["serving_default"](examples=tf.constant(np.load(sys.argv[2], allow_pickle=True)))'
            '["item_ids"].numpy()\n'
            'print(" ".join(i.decode() for i in ids.ravel()))\n')
  repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  answered = subprocess.run([sys.executable, '-c', script, export_dir, str(tmp_path / 'requests.npy')], cwd=repo_root,
                            check=True, capture_output=True, text=True).stdout.split()
  assert answered == [i.decode() for i in answer[export.ITEM_IDS_OUTPUT].numpy().ravel()]


def test_loading_a_scann_export_without_the_scann_package_names_the_fix(tmp_path, monkeypatch):
  import scann  # pylint: disable=g-import-not-at-top,unused-import
  export_dir = _scann_export(tmp_path, [
      movielens_like_row('u1', f'i{n}', 3.0, year=(1950 + n,)) for n in range(16)])
  monkeypatch.setitem(sys.modules, 'scann', None)  # `import scann` now raises ImportError
  with pytest.raises(ImportError, match=r'holds a ScaNN index.*uv sync --extra scann.*--retrieval-index brute_force'):
    loading.load_retrieval_model(export_dir)


def test_item_item_weight_without_a_scorer_is_refused(tmp_path):
  tf_transform_output = analyzed_copy(TRAIN_ROWS, str(tmp_path / 'transform'))
  hparams = hparams_lib.RetrievalHyperparameters(id_embedding_dim=4, feature_embedding_dim=2, embedding_dim=3)
  model = RetrievalModel(feature_specs.model_features(tf_transform_output), hparams)
  with pytest.raises(ValueError, match='item_item='):
    export.export_retrieval_model(model.query_tower, tf.constant([b'i1']), tf.zeros([1, 3]), tf_transform_output,
                                  hparams, str(tmp_path / 'model'))
