"""recommend() on a hand-made fixture: expected order, seen-item exclusion, padding and the popular fallback.

The two models here are small SavedModels with hand-set outputs that honour the exported signatures'
contracts (`serving_default(examples)` -> `item_ids`/`scores` `[batch, K]`, and -> `predictions` `[batch, 1]`,
parsing the raw columns the real models require), so every expected order below is worked out by hand. They
are loaded through the same `serving.models` path as pushed models; the serving assets are written from
gzipped tf.Example files by `serving.assets.write_serving_assets`, as the retrieval Trainer does.
The project's real exported models are exercised in tests/serving_pipeline_test.py.
"""

import json
import os
import subprocess
import sys
from typing import Dict, List, Mapping, Sequence, Tuple

import numpy as np
import pytest
import tensorflow as tf

from ingestion import examples as examples_lib
from ingestion.interactions import ColumnType
from schema import features
from serving import assets as assets_lib
from serving import backend_flags, models, recommend, recommender
from serving import requests as requests_lib
from transform import preprocessing
from trainer.ranking import export as ranking_export
from trainer.retrieval import export as retrieval_export

COLUMN_TYPES = {features.USER_AGE: ColumnType.INT, features.USER_GENDER: ColumnType.STRING,
                features.ITEM_TITLE: ColumnType.STRING, features.ITEM_GENRES: ColumnType.STRING}


def row(user: str, item: str, age: int, gender: str, genres: str = 'Drama', rating: float = 4.0,
        timestamp: int = 1) -> Dict:
  """One invented interaction (not MovieLens data)."""
  return {features.USER_ID: user, features.ITEM_ID: item, features.RATING: rating, features.TIMESTAMP: timestamp,
          features.USER_AGE: age, features.USER_GENDER: gender, features.ITEM_TITLE: f'Title {item}',
          features.ITEM_GENRES: genres}


# u1 (23, F) saw i1 (5 stars), i2 (2 stars); u2 (40, M) saw i1, i3; u3 (23, M) saw i1 (4 stars each). i4..i6
# appear only in the eval split.
TRAIN_ROWS = [row('u1', 'i1', 23, 'F', rating=5.0, timestamp=1), row('u1', 'i2', 23, 'F', rating=2.0, timestamp=2),
              row('u2', 'i1', 40, 'M'),
              row('u2', 'i3', 40, 'M'), row('u3', 'i1', 23, 'M')]
EVAL_ROWS = [row('u1', 'i4', 23, 'F'), row('u2', 'i5', 40, 'M'), row('u3', 'i6', 23, 'M')]

# Retrieval's top-5 per user (hand-set), best first.
RETRIEVAL_V1 = {
    'u1': [('i1', 0.9), ('i4', 0.8), ('i5', 0.6), ('i2', 0.5), ('i6', 0.4)],
    'u2': [('i4', 0.7), ('i1', 0.6), ('i6', 0.5), ('i5', 0.4), ('i3', 0.3)],
    'u3': [('i2', 0.9), ('i3', 0.8), ('i4', 0.7), ('i5', 0.6), ('i6', 0.5)],
}
# Predicted stars per (user, item); other pairs get DEFAULT_RATING.
RATINGS = {('u1', 'i1'): 5.0, ('u1', 'i2'): 1.0, ('u1', 'i4'): 2.0, ('u1', 'i5'): 4.0, ('u1', 'i6'): 3.0}
DEFAULT_RATING = 3.0


def write_examples(rows: Sequence[Mapping], path: str) -> None:
  """Gzipped TFRecord of tf.Example, as ExampleGen writes a split."""
  examples_lib.write_tfrecord((examples_lib.serialize_example(r, COLUMN_TYPES) for r in rows), path)


class RetrievalStub(tf.Module):
  """A retrieval SavedModel with hand-set top-K lists per user (unknown users get the last list)."""

  def __init__(self, top_k: Mapping[str, List[Tuple[str, float]]]):
    super().__init__()
    users = sorted(top_k)
    self.rows = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(users), tf.range(len(users), dtype=tf.int64)),
        default_value=len(users) - 1)
    self.item_ids = tf.constant([[item for item, _ in top_k[u]] for u in users])
    self.scores = tf.constant([[score for _, score in top_k[u]] for u in users], tf.float32)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=retrieval_export.EXAMPLES_INPUT)])
  def serve(self, examples: tf.Tensor) -> Dict[str, tf.Tensor]:
    # The user columns the real model requires; item columns are not parsed.
    parsed = tf.io.parse_example(examples, {
        features.USER_ID: tf.io.FixedLenFeature([1], tf.string),
        features.USER_AGE: tf.io.FixedLenFeature([1], tf.int64),
        features.USER_GENDER: tf.io.FixedLenFeature([1], tf.string)})
    rows = self.rows.lookup(tf.reshape(parsed[features.USER_ID], [-1]))
    return {retrieval_export.ITEM_IDS_OUTPUT: tf.gather(self.item_ids, rows),
            retrieval_export.SCORES_OUTPUT: tf.gather(self.scores, rows)}


class RankingStub(tf.Module):
  """A ranking SavedModel predicting hand-set stars per (user, item)."""

  def __init__(self, ratings: Mapping[Tuple[str, str], float]):
    super().__init__()
    keys = [f'{user}/{item}' for user, item in ratings]
    self.stars = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(keys), tf.constant(list(ratings.values()), tf.float32)),
        default_value=DEFAULT_RATING)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=ranking_export.EXAMPLES_INPUT)])
  def serve(self, examples: tf.Tensor) -> Dict[str, tf.Tensor]:
    # Every raw column but the rating, as the real model parses them (all required).
    parsed = tf.io.parse_example(examples, {
        name: tf.io.FixedLenFeature([1], tf.int64 if name in (features.USER_AGE, features.TIMESTAMP) else tf.string)
        for name in (features.USER_ID, features.ITEM_ID, features.TIMESTAMP, features.USER_AGE,
                     features.USER_GENDER, features.ITEM_TITLE, features.ITEM_GENRES)})
    keys = tf.strings.join([parsed[features.USER_ID], parsed[features.ITEM_ID]], separator='/')
    return {ranking_export.PREDICTIONS_OUTPUT: self.stars.lookup(keys)}


def save_retrieval(top_k: Mapping[str, List[Tuple[str, float]]], version_dir: str, examples_dir: str) -> str:
  """Saves a retrieval stub with serving assets written from the fixture's example files."""
  stub = RetrievalStub(top_k)
  tf.saved_model.save(stub, version_dir, signatures={retrieval_export.SERVING_SIGNATURE: stub.serve})
  assets_lib.write_serving_assets([os.path.join(examples_dir, 'train', '*')],
                                  [os.path.join(examples_dir, split, '*') for split in ('train', 'eval')],
                                  assets_lib.assets_dir_of(version_dir))
  return version_dir


def save_ranking(ratings: Mapping[Tuple[str, str], float], version_dir: str) -> str:
  stub = RankingStub(ratings)
  tf.saved_model.save(stub, version_dir, signatures={ranking_export.SERVING_SIGNATURE: stub.serve})
  return version_dir


def build_serving_dir(root: str) -> str:
  """`<root>/serving` holding retrieval/1 and ranking/1 of the fixture; returns the serving dir."""
  examples_dir = os.path.join(root, 'examples')
  write_examples(TRAIN_ROWS, os.path.join(examples_dir, 'train', 'data.gz'))
  write_examples(EVAL_ROWS, os.path.join(examples_dir, 'eval', 'data.gz'))
  serving_dir = os.path.join(root, 'serving')
  save_retrieval(RETRIEVAL_V1, os.path.join(serving_dir, models.RETRIEVAL_MODEL, '1'), examples_dir)
  save_ranking(RATINGS, os.path.join(serving_dir, models.RANKING_MODEL, '1'))
  return serving_dir


@pytest.fixture(scope='module')
def serving_dir(tmp_path_factory) -> str:
  return build_serving_dir(str(tmp_path_factory.mktemp('serving_fixture')))


@pytest.fixture(scope='module')
def registry(serving_dir) -> models.ModelRegistry:
  registry = models.ModelRegistry(serving_dir)
  assert registry.refresh()
  return registry


def ids(result: recommender.Recommendations) -> List[str]:
  return [item.item_id for item in result.items]


def test_assets_hold_catalogue_profiles_seen_items_and_segment_popularity(serving_dir):
  loaded = assets_lib.load_serving_assets(
      assets_lib.assets_dir_of(os.path.join(serving_dir, models.RETRIEVAL_MODEL, '1')))
  assert sorted(loaded.items) == ['i1', 'i2', 'i3', 'i4', 'i5', 'i6']
  assert loaded.items['i4'] == {features.ITEM_ID: 'i4', features.ITEM_TITLE: 'Title i4',
                                features.ITEM_GENRES: 'Drama'}
  assert loaded.user_profiles['u2'] == {features.USER_ID: 'u2', features.USER_AGE: 40, features.USER_GENDER: 'M'}
  assert loaded.seen_items == {'u1': {'i1', 'i2'}, 'u2': {'i1', 'i3'}, 'u3': {'i1'}}
  assert loaded.popularity.global_items == (('i1', 3), ('i2', 1), ('i3', 1))
  assert loaded.popularity.segment_items[features.USER_GENDER]['M'] == (('i1', 2), ('i3', 1))
  assert loaded.popularity.segment_items[features.USER_AGE_BUCKET]['18-24'] == (('i1', 2), ('i2', 1))
  assert loaded.column_types[features.USER_AGE] == ColumnType.INT
  assert loaded.column_types[features.ITEM_TITLE] == ColumnType.STRING
  # The mean of each user's last (up to 10) training ratings: u1 (5 + 2) / 2.
  assert loaded.recent_ratings == {'u1': 3.5, 'u2': 4.0, 'u3': 4.0}
  assert loaded.column_types[features.RECENT_RATING] == ColumnType.FLOAT


def test_age_bucket_label_agrees_with_transform():
  ages = [5, 17, 18, 24, 25, 34, 35, 44, 45, 49, 50, 55, 56, 80]
  expected = [v.decode() for v in preprocessing.age_bucket(tf.constant(ages, tf.int64)).numpy()]
  assert [assets_lib.age_bucket_label(a) for a in ages] == expected
  assert assets_lib.age_bucket_label(23) == '18-24'


def test_ranking_requests_are_full_examples():
  serving_assets = assets_lib.ServingAssets(
      items={'i1': {features.ITEM_ID: 'i1', features.ITEM_TITLE: 'T é'}}, user_profiles={}, seen_items={},
      popularity=assets_lib.Popularity((), {}),
      column_types={**COLUMN_TYPES, features.RECENT_RATING: ColumnType.FLOAT})
  user = {features.USER_ID: 'u1', features.USER_AGE: 23}
  request = requests_lib.RequestEncoder(serving_assets).ranking_requests(user, ['i1'], timestamp=7)[0]
  expected = examples_lib.serialize_example({**user, features.ITEM_ID: 'i1', features.ITEM_TITLE: 'T é',
                                             features.TIMESTAMP: 7}, COLUMN_TYPES)
  assert tf.train.Example.FromString(request) == tf.train.Example.FromString(expected)
  with_recent = requests_lib.RequestEncoder(serving_assets).ranking_requests(user, ['i1'], timestamp=7,
                                                                             recent_rating=3.5)[0]
  assert tf.train.Example.FromString(with_recent).features.feature[features.RECENT_RATING].float_list.value == [3.5]


def test_two_stage_requests_carry_the_users_recent_rating(registry, monkeypatch):
  backend = registry.current().backend
  sent: List[bytes] = []
  predict = backend.predict_ratings

  def recording(requests):
    sent.extend(requests)
    return predict(requests)

  monkeypatch.setattr(backend, 'predict_ratings', recording)
  recommender.Recommender(registry).recommend('u1', k=3)
  assert len(sent) == 3  # u1's unseen candidates i4, i5, i6
  assert {tuple(tf.train.Example.FromString(r).features.feature[features.RECENT_RATING].float_list.value)
          for r in sent} == {(3.5,)}


def test_recommend_orders_by_the_blend_and_excludes_seen_items(registry):
  # u1's unseen candidates i4, i5, i6 have retrieval scores 0.8, 0.6, 0.4 -> z = +1.2247, 0, -1.2247 and
  # predicted stars 2, 4, 3 -> z = -1.2247, +1.2247, 0. Blend 0.5/0.5: i4 0, i5 +0.6124, i6 -0.6124.
  result = recommender.Recommender(registry, ranking_weight=0.5).recommend('u1', k=3)
  assert result.known_user and ids(result) == ['i5', 'i4', 'i6']
  np.testing.assert_allclose([i.score for i in result.items], [0.61237, 0.0, -0.61237], atol=1e-4)
  first = result.items[0]
  assert (first.item_title, first.predicted_rating, first.source) == ('Title i5', 4.0, 'two_stage')
  assert first.retrieval_score == pytest.approx(0.6)
  # Weight 0 is the retrieval order, weight 1 the predicted-rating order.
  assert ids(recommender.Recommender(registry, ranking_weight=0.0).recommend('u1', k=3)) == ['i4', 'i5', 'i6']
  assert ids(recommender.Recommender(registry, ranking_weight=1.0).recommend('u1', k=3)) == ['i5', 'i6', 'i4']


def test_recommend_keeps_seen_items_when_asked(registry):
  result = recommender.Recommender(registry, ranking_weight=0.0).recommend('u1', k=5, exclude_seen=False)
  assert ids(result) == ['i1', 'i4', 'i5', 'i2', 'i6']


def test_short_candidate_lists_are_completed_with_popular_unseen_items(registry):
  # u1 has 3 unseen candidates; the 4th item is the most popular unseen one (i3: 1 of 5 interactions), and
  # no further item has training interactions.
  result = recommender.Recommender(registry, ranking_weight=0.5).recommend('u1', k=5)
  assert ids(result) == ['i5', 'i4', 'i6', 'i3']
  assert result.items[3].source == 'popular' and result.items[3].score == pytest.approx(0.2)
  assert result.items[3].predicted_rating is None


def test_items_without_training_interactions_complete_no_list(registry):
  # i4..i6 are in the catalogue (eval split) but in no popularity list: a stranger asking for 5 gets the 3 items
  # with training interactions (i1 3/5, i2 1/5, i3 1/5), as recommend()'s docstring says.
  result = recommender.Recommender(registry).recommend('stranger', k=5)
  assert ids(result) == ['i1', 'i2', 'i3']


def test_padded_retrieval_answers_count_each_item_once_and_skip_non_finite_scores(tmp_path):
  # As ScaNN pads a short answer: u3's list ends with i4 repeated, scored -inf and nan. u3 (saw i1) keeps i2, i3,
  # i4 with retrieval scores 0.9, 0.8, 0.7 -> z = +1.2247, 0, -1.2247; predicted stars all 3 (z = 0). Blend with
  # weight 0.2: 0.8 z.
  padded = {**RETRIEVAL_V1, 'u3': [('i2', 0.9), ('i3', 0.8), ('i4', 0.7), ('i4', float('-inf')), ('i4', float('nan'))]}
  examples_dir = str(tmp_path / 'examples')
  write_examples(TRAIN_ROWS, os.path.join(examples_dir, 'train', 'data.gz'))
  write_examples(EVAL_ROWS, os.path.join(examples_dir, 'eval', 'data.gz'))
  serving_dir = str(tmp_path / 'serving')
  save_retrieval(padded, os.path.join(serving_dir, models.RETRIEVAL_MODEL, '1'), examples_dir)
  save_ranking(RATINGS, os.path.join(serving_dir, models.RANKING_MODEL, '1'))
  padded_registry = models.ModelRegistry(serving_dir)
  assert padded_registry.refresh()
  result = recommender.Recommender(padded_registry, ranking_weight=0.2).recommend('u3', k=3)
  assert ids(result) == ['i2', 'i3', 'i4']
  np.testing.assert_allclose([i.score for i in result.items], [0.97980, 0.0, -0.97980], atol=1e-4)
  assert all(i.source == 'two_stage' for i in result.items)
  # Asked for more, the list is completed with popular unseen items, never the padding.
  longer = recommender.Recommender(padded_registry, ranking_weight=0.2).recommend('u3', k=5)
  assert ids(longer)[:3] == ['i2', 'i3', 'i4'] and len(set(ids(longer))) == len(ids(longer))
  assert all(np.isfinite(i.score) for i in longer.items)


def non_finite_ranking_registry(root: str) -> models.ModelRegistry:
  """The fixture's models but for a ranking version 1 predicting u2's i5 as NaN and i6 as +inf (i4: 3 stars).

  u2, not u1: the registry's warm-up ranks the first user's (u1's) candidates and would refuse the version; this
  one passes it and is served, so a request for u2 meets the non-finite ratings (the request-time check).
  """
  examples_dir = os.path.join(root, 'examples')
  write_examples(TRAIN_ROWS, os.path.join(examples_dir, 'train', 'data.gz'))
  write_examples(EVAL_ROWS, os.path.join(examples_dir, 'eval', 'data.gz'))
  serving_dir = os.path.join(root, 'serving')
  save_retrieval(RETRIEVAL_V1, os.path.join(serving_dir, models.RETRIEVAL_MODEL, '1'), examples_dir)
  save_ranking({**RATINGS, ('u2', 'i5'): float('nan'), ('u2', 'i6'): float('inf')},
               os.path.join(serving_dir, models.RANKING_MODEL, '1'))
  broken = models.ModelRegistry(serving_dir)
  assert broken.refresh()
  return broken


NON_FINITE_RATINGS_MESSAGE = (
    'The ranking model version 1 predicted ratings that are not finite for 2 of 3 candidates: i6=inf, i5=nan; '
    'check its export and its inputs, and push a version that predicts finite stars.')


def test_non_finite_predicted_ratings_are_a_backend_error_naming_the_items(tmp_path):
  # u2's unseen candidates i4, i6, i5 (retrieval order) get 3 stars, +inf and NaN. Before, the NaN and inf passed
  # into the blend: i6 and i5 scored nan (i4 too: the standardized ratings are all nan), and the HTTP service
  # answered 500.
  broken = non_finite_ranking_registry(str(tmp_path))
  with pytest.raises(models.BackendError) as error:
    recommender.Recommender(broken, ranking_weight=0.5).recommend('u2', k=3)
  assert str(error.value) == NON_FINITE_RATINGS_MESSAGE
  assert not error.value.retryable  # the same call predicts the same
  # Candidates whose ratings are all finite are answered by the same model: u1's blend as in
  # test_recommend_orders_by_the_blend_and_excludes_seen_items (i5 +0.6124, i4 0, i6 -0.6124).
  assert ids(recommender.Recommender(broken, ranking_weight=0.5).recommend('u1', k=3)) == ['i5', 'i4', 'i6']


def test_unknown_users_get_popular_items_of_their_segment(registry):
  service = recommender.Recommender(registry)
  everyone = service.recommend('stranger', k=3)
  assert not everyone.known_user and ids(everyone) == ['i1', 'i2', 'i3']
  np.testing.assert_allclose([i.score for i in everyone.items], [0.6, 0.2, 0.2])
  # Men (u2, u3): i1 2/3, i3 1/3; then the global list completes it with i2.
  assert ids(service.recommend('stranger', k=3, user_features={features.USER_GENDER: 'M'})) == ['i1', 'i3', 'i2']
  # 18-24 (u1, u3): i1 2/3, i2 1/3; averaged with men: i1 2/3, i2 1/6, i3 1/6.
  both = service.recommend('stranger', k=3, user_features={features.USER_GENDER: 'M', features.USER_AGE: '23'})
  assert ids(both) == ['i1', 'i2', 'i3']
  np.testing.assert_allclose([i.score for i in both.items], [2 / 3, 1 / 6, 1 / 6])


@pytest.mark.parametrize('k', [0, 101, -1, 2.5, True])
def test_bad_k_is_refused(registry, k):
  with pytest.raises(requests_lib.InvalidRequestError, match='k='):
    recommender.Recommender(registry).recommend('u1', k=k)


def test_bad_user_features_are_refused(registry):
  service = recommender.Recommender(registry)
  with pytest.raises(requests_lib.InvalidRequestError, match='user_age'):
    service.recommend('stranger', user_features={features.USER_AGE: 'old'})
  with pytest.raises(requests_lib.InvalidRequestError, match='user_shoe_size'):
    service.recommend('stranger', user_features={'user_shoe_size': '42'})


def test_the_newest_complete_version_is_found_from_the_newest_name_down_with_one_check_per_name_looked_at(
    tmp_path, monkeypatch):
  fake = tmp_path / 'ranking'
  # '²' passes str.isdigit but int() refuses it (before, it made every poll raise): no version name.
  for name in ('1', '3', '10', '12', '.staging-13', 'notes', '²'):
    (fake / name).mkdir(parents=True)
  for name in ('1', '3', '10', '.staging-13', '²'):
    (fake / name / models.SAVED_MODEL_FILE).write_bytes(b'')
  checked = []
  real_exists = tf.io.gfile.exists
  monkeypatch.setattr(tf.io.gfile, 'exists', lambda path: checked.append(path) or real_exists(path))
  # By number, not by name ('3' > '10' > '12' as text): 12 is half-written, 10 the newest complete.
  assert models.newest_complete_version(str(fake)) == 10
  assert checked == [os.path.join(str(fake), name, models.SAVED_MODEL_FILE) for name in ('12', '10')]
  del checked[:]
  # 10 failed to load: skipped without a check; 3 is next.
  assert models.newest_complete_version(str(fake), skipped={10}) == 3
  assert checked == [os.path.join(str(fake), name, models.SAVED_MODEL_FILE) for name in ('12', '3')]
  assert models.newest_complete_version(str(fake), skipped={1, 3, 10}) is None
  assert models.newest_complete_version(str(tmp_path / 'nowhere')) is None
  assert models.complete_versions(str(fake)) == [1, 3, 10]


def test_registry_loads_only_complete_numeric_versions(tmp_path, serving_dir):
  ranking = os.path.join(serving_dir, models.RANKING_MODEL)
  assert models.complete_versions(ranking) == [1]
  fake = tmp_path / 'ranking'
  for name in ('1', '7', '.staging-9', 'notes'):
    (fake / name).mkdir(parents=True)
  (fake / '1' / models.SAVED_MODEL_FILE).write_bytes(b'')
  (fake / '.staging-9' / models.SAVED_MODEL_FILE).write_bytes(b'')
  # '7' is half-written (no saved_model.pb yet); '.staging-9' is the pusher's copy in progress.
  assert models.complete_versions(str(fake)) == [1]
  assert models.newest_versions(str(tmp_path)) is None  # no retrieval model there


def test_no_models_yet_is_reported(tmp_path):
  registry = models.ModelRegistry(str(tmp_path))
  assert not registry.refresh()
  with pytest.raises(models.ModelsNotReadyError, match='retrieval'):
    registry.current()


def test_cli_prints_json(serving_dir):
  completed = subprocess.run(
      [sys.executable, '-m', 'serving.recommend', '--serving-dir', serving_dir, '--user-id', 'u1', '--k', '3',
       '--ranking-weight', '0.5'], capture_output=True, text=True, check=False, timeout=300)
  assert completed.returncode == 0, completed.stderr[-2000:]
  body = json.loads(completed.stdout)
  assert [item['item_id'] for item in body['items']] == ['i5', 'i4', 'i6']
  assert body['model_versions'] == {'retrieval': 1, 'ranking': 1}


@pytest.mark.parametrize('weight, message', [('2', 'outside [0, 1]'), ('half', 'is not a number')])
def test_cli_refuses_a_ranking_weight_outside_0_1_before_loading_models(tmp_path, capsys, weight, message):
  with pytest.raises(SystemExit) as e:  # argparse's exit: status 2 with the message, no traceback
    recommend.main(['--serving-dir', str(tmp_path / 'absent'), '--user-id', 'u1', '--ranking-weight', weight])
  assert e.value.code == 2
  assert message in capsys.readouterr().err


def test_cli_reads_user_id_and_k_as_the_http_service_does(monkeypatch, capsys):
  # Before, ' 42' was looked up as it is (an unknown user: popular items) and --k 1_0 was read as 10 by int(),
  # while over HTTP user_id is stripped and k=1_0 refused.
  calls = []

  class RecordingRecommender:
    def recommend(self, user_id, k, exclude_seen, user_features):
      calls.append((user_id, k, exclude_seen, user_features))
      raise requests_lib.InvalidRequestError('stop here')

  monkeypatch.setattr(backend_flags, 'recommender_from_flags', lambda args: (None, RecordingRecommender()))
  assert recommend.main(['--serving-dir', '/not/read', '--user-id', ' u1 ', '--k', '7']) == 2
  assert calls == [('u1', 7, True, {})]
  with pytest.raises(SystemExit) as e:
    recommend.main(['--serving-dir', '/not/read', '--user-id', 'u1', '--k', '1_0'])
  assert e.value.code == 2
  assert "argument --k: '1_0' is not an integer; pass e.g. --k 10." in capsys.readouterr().err


def test_cli_does_not_report_a_fault_inside_recommend_as_a_bad_argument(monkeypatch, capsys):
  # A ranking model answering two predictions per candidate: numpy's broadcast ValueError. Before, every ValueError
  # of recommend() printed 'error: ...' and exited 2 (a bad flag) without a traceback; only an invalid request
  # (InvalidRequestError) is one, as the HTTP service answers only it with 400.
  class FaultyRecommender:
    def recommend(self, *args, **kwargs):
      raise ValueError('operands could not be broadcast together with shapes (3,) (6,)')

  monkeypatch.setattr(backend_flags, 'recommender_from_flags', lambda args: (None, FaultyRecommender()))
  with pytest.raises(ValueError, match='could not be broadcast'):
    recommend.main(['--serving-dir', '/not/read', '--user-id', 'u1'])
  assert capsys.readouterr().err == ''


def test_cli_reports_a_backend_that_fails_to_answer_without_a_traceback(monkeypatch, capsys):
  # TF Serving answering 503 to the predict call after its versions were found AVAILABLE: before, the
  # BackendError escaped main() and the CLI ended with a traceback.
  class FailingRecommender:
    def recommend(self, *args, **kwargs):
      raise models.BackendError('TF Serving POST /v1/models/retrieval/versions/1:predict answered 503: overloaded',
                                retryable=True)

  monkeypatch.setattr(backend_flags, 'recommender_from_flags', lambda args: (None, FailingRecommender()))
  assert recommend.main(['--serving-dir', '/not/read', '--user-id', 'u1', '--tf-serving-url',
                         'http://127.0.0.1:8501']) == 1
  assert capsys.readouterr().err == (
      'error: TF Serving POST /v1/models/retrieval/versions/1:predict answered 503: overloaded\n')
