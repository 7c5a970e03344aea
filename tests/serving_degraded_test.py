"""Retrieval-only (degraded) serving: a retrieval version without a ranking version is served, in retrieval order.

Three layers, each with hand-worked expectations:
* a fake backend with fixed retrieval scores behind `ModelRegistry` (exact order, no ranking call, the swap
  to two-stage once ranking/1 appears);
* the hand-made SavedModels of tests/serving_recommender_test.py loaded in process, the HTTP service, the CLI;
* the TF Serving REST backend against the stand-in server of tests/serving_tf_serving_test.py.
"""

import json
import os
import subprocess
import sys
import time
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np
import pytest
import tensorflow as tf

from components import serving_pusher
from ingestion.interactions import ColumnType
from schema import features
from serving import app, models, recommender, tf_serving_backend
from serving import assets as assets_lib
from serving import requests as requests_lib
from tests import serving_http_test
from tests import serving_recommender_test as fixture
from tests import serving_tf_serving_test

# The fake retrieval model answers this top-6 for every user, best first as a model would not necessarily be:
# i2 and i1 are u1's training items, i7 is not in the catalogue, i4 and i6 tie.
FAKE_TOP_K = [('i2', 0.95), ('i1', 0.9), ('i7', 0.8), ('i4', 0.5), ('i5', 0.7), ('i6', 0.5)]
# Predicted stars of the fake ranking model.
FAKE_RATINGS = {'i4': 2.0, 'i5': 4.0, 'i6': 3.0}
FAKE_COLUMN_TYPES = {features.USER_ID: ColumnType.STRING, features.ITEM_ID: ColumnType.STRING,
                     features.USER_AGE: ColumnType.INT}


def fake_assets() -> assets_lib.ServingAssets:
  """Catalogue i1..i6; u1 saw i1, i2; popularity i1 3, i2 1, i3 1 (of 5 interactions)."""
  return assets_lib.ServingAssets(
      items={f'i{n}': {features.ITEM_ID: f'i{n}'} for n in range(1, 7)},
      user_profiles={'u1': {features.USER_ID: 'u1', features.USER_AGE: 23}},
      seen_items={'u1': frozenset({'i1', 'i2'})},
      popularity=assets_lib.Popularity(global_items=(('i1', 3), ('i2', 1), ('i3', 1)), segment_items={}),
      column_types=FAKE_COLUMN_TYPES)


class FakeBackend:
  """Fixed retrieval scores; ranking answers FAKE_RATINGS unless the bundle has no ranking model, where any
  ranking call fails the test."""

  def __init__(self, versions: models.ServedVersions):
    self.versions = versions
    self.retrieve_calls = 0
    self.rating_calls = 0

  def retrieve(self, requests: Sequence[bytes]) -> Tuple[np.ndarray, np.ndarray]:
    self.retrieve_calls += 1
    item_ids = np.array([[item for item, _ in FAKE_TOP_K]] * len(requests), dtype=str)
    scores = np.array([[score for _, score in FAKE_TOP_K]] * len(requests), dtype=np.float32)
    return item_ids, scores

  def predict_ratings(self, requests: Sequence[bytes]) -> np.ndarray:
    assert self.versions.has_ranking, 'the ranking model was called in retrieval-only mode'
    self.rating_calls += 1
    return np.array([FAKE_RATINGS.get(_item_of(r), 3.0) for r in requests], dtype=np.float32)

  def unavailable_reason(self) -> Optional[str]:
    return None


def _item_of(request: bytes) -> str:
  return tf.train.Example.FromString(request).features.feature[features.ITEM_ID].bytes_list.value[0].decode()


class FakeLoader:
  """A `BundleLoader` building fake bundles; remembers the backends it built."""

  def __init__(self):
    self.backends: List[FakeBackend] = []

  def __call__(self, serving_dir: str, versions: models.ServedVersions) -> models.ModelBundle:
    backend = FakeBackend(versions)
    self.backends.append(backend)
    serving_assets = fake_assets()
    return models.ModelBundle(versions=versions, backend=backend, assets=serving_assets,
                              encoder=requests_lib.RequestEncoder(serving_assets))


def mark_complete(serving_dir: str, model: str, version: int) -> None:
  """Makes `<serving_dir>/<model>/<version>` a complete version (as far as version discovery looks)."""
  path = os.path.join(serving_dir, model, str(version))
  os.makedirs(path)
  with open(os.path.join(path, models.SAVED_MODEL_FILE), 'wb'):
    pass


def ids(result: recommender.Recommendations) -> List[str]:
  return [item.item_id for item in result.items]


# --- version discovery and the registry over a fake backend ---------------------------------------------------

def test_newest_versions_needs_retrieval_and_makes_ranking_optional(tmp_path):
  serving_dir = str(tmp_path)
  assert models.newest_versions(serving_dir) is None
  mark_complete(serving_dir, models.RANKING_MODEL, 3)
  assert models.newest_versions(serving_dir) is None  # ranking alone serves nothing
  mark_complete(serving_dir, models.RETRIEVAL_MODEL, 1)
  mark_complete(serving_dir, models.RETRIEVAL_MODEL, 2)
  assert models.newest_versions(serving_dir) == models.ServedVersions(retrieval=2, ranking=3)


def test_retrieval_without_ranking_is_degraded(tmp_path):
  serving_dir = str(tmp_path)
  mark_complete(serving_dir, models.RETRIEVAL_MODEL, 1)
  os.makedirs(os.path.join(serving_dir, models.RANKING_MODEL, '.staging-2'))  # a push in progress: not a version
  versions = models.newest_versions(serving_dir)
  assert versions == models.ServedVersions(retrieval=1, ranking=None)
  assert not versions.has_ranking and versions.missing_models() == ('ranking',)
  assert models.ServedVersions(retrieval=1, ranking=1).missing_models() == ()


def test_degraded_registry_warms_up_without_ranking_then_swaps_in_the_first_ranking_version(tmp_path):
  serving_dir = str(tmp_path)
  mark_complete(serving_dir, models.RETRIEVAL_MODEL, 1)
  loader = FakeLoader()
  registry = models.ModelRegistry(serving_dir, loader=loader)
  assert registry.refresh()
  assert registry.current().versions == models.ServedVersions(retrieval=1, ranking=None)
  warmed = loader.backends[-1]
  assert (warmed.retrieve_calls, warmed.rating_calls) == (1, 0)  # warm-up: retrieval only
  assert not registry.refresh()  # nothing new

  # u1's unseen catalogue candidates: i4 0.5, i5 0.7, i6 0.5 (i1, i2 seen; i7 not in the catalogue).
  # Retrieval order, the tie i4/i6 by item id: i5, i4, i6.
  service = recommender.Recommender(registry, ranking_weight=0.5)
  degraded = service.recommend('u1', k=3)
  assert ids(degraded) == ['i5', 'i4', 'i6']
  assert recommender.SOURCE_RETRIEVAL_ONLY == 'retrieval_only'
  assert {item.source for item in degraded.items} == {'retrieval_only'}
  assert all(item.predicted_rating is None for item in degraded.items)
  np.testing.assert_allclose([item.score for item in degraded.items], [0.7, 0.5, 0.5], rtol=1e-6)
  np.testing.assert_allclose([item.retrieval_score for item in degraded.items], [0.7, 0.5, 0.5], rtol=1e-6)
  assert warmed.rating_calls == 0
  assert degraded.to_json_dict()['model_versions'] == {'retrieval': 1, 'ranking': None}

  mark_complete(serving_dir, models.RANKING_MODEL, 1)
  assert registry.refresh()
  assert registry.current().versions == models.ServedVersions(retrieval=1, ranking=1)
  assert loader.backends[-1].rating_calls == 1  # the new bundle's warm-up asked the ranking model
  # Two-stage with weight 0.5 over i4, i5, i6: retrieval 0.5, 0.7, 0.5 -> z -0.7071, +1.4142, -0.7071;
  # stars 2, 4, 3 -> z -1.2247, +1.2247, 0; blend -0.9659, +1.3195, -0.3536 -> i5, i6, i4.
  two_stage = service.recommend('u1', k=3)
  assert ids(two_stage) == ['i5', 'i6', 'i4']
  np.testing.assert_allclose([item.score for item in two_stage.items], [1.3195, -0.3536, -0.9659], atol=1e-4)
  assert [item.predicted_rating for item in two_stage.items] == [4.0, 3.0, 2.0]
  assert {item.source for item in two_stage.items} == {recommender.SOURCE_TWO_STAGE}


def test_degraded_short_lists_are_completed_with_popular_items_and_unknown_users_get_popular(tmp_path):
  serving_dir = str(tmp_path)
  mark_complete(serving_dir, models.RETRIEVAL_MODEL, 1)
  registry = models.ModelRegistry(serving_dir, loader=FakeLoader())
  assert registry.refresh()
  service = recommender.Recommender(registry)
  # 3 unseen candidates, then the most popular unseen item i3 (1 of 5 interactions); no further item.
  padded = service.recommend('u1', k=5)
  assert ids(padded) == ['i5', 'i4', 'i6', 'i3']
  assert [item.source for item in padded.items] == ['retrieval_only'] * 3 + ['popular']
  assert padded.items[3].score == pytest.approx(0.2)
  # Seen items kept: i2 0.95, i1 0.9, i5 0.7, i4 0.5, i6 0.5.
  assert ids(service.recommend('u1', k=5, exclude_seen=False)) == ['i2', 'i1', 'i5', 'i4', 'i6']
  stranger = service.recommend('stranger', k=2)
  assert not stranger.known_user and ids(stranger) == ['i1', 'i2']
  assert {item.source for item in stranger.items} == {recommender.SOURCE_POPULAR}


def test_no_retrieval_version_is_still_not_ready(tmp_path):
  mark_complete(str(tmp_path), models.RANKING_MODEL, 1)
  registry = models.ModelRegistry(str(tmp_path), loader=FakeLoader())
  assert not registry.refresh()
  with pytest.raises(models.ModelsNotReadyError, match="'retrieval'"):
    recommender.Recommender(registry).recommend('u1')


# --- the hand-made SavedModels in process, the HTTP service and the CLI -----------------------------------------

def build_retrieval_only_dir(root: str) -> str:
  """`<root>/serving` holding only retrieval/1 of the serving_recommender_test fixture (examples in
  `<root>/examples`); returns the serving dir."""
  examples_dir = os.path.join(root, 'examples')
  fixture.write_examples(fixture.TRAIN_ROWS, os.path.join(examples_dir, 'train', 'data.gz'))
  fixture.write_examples(fixture.EVAL_ROWS, os.path.join(examples_dir, 'eval', 'data.gz'))
  serving_dir = os.path.join(root, 'serving')
  fixture.save_retrieval(fixture.RETRIEVAL_V1, models.version_dir(serving_dir, models.RETRIEVAL_MODEL, 1),
                         examples_dir)
  return serving_dir


@pytest.fixture()
def retrieval_only_dir(tmp_path) -> str:
  return build_retrieval_only_dir(str(tmp_path))


def test_saved_models_in_process_degraded_then_two_stage(retrieval_only_dir):
  registry = models.ModelRegistry(retrieval_only_dir)
  assert registry.refresh()
  bundle = registry.current()
  assert bundle.versions == models.ServedVersions(retrieval=1, ranking=None)
  with pytest.raises(models.ModelsNotReadyError, match='degraded'):
    bundle.backend.predict_ratings([b''])
  service = recommender.Recommender(registry, ranking_weight=0.5)
  # u1's retrieval list: i1 0.9, i4 0.8, i5 0.6, i2 0.5, i6 0.4; i1 and i2 seen.
  degraded = service.recommend('u1', k=3)
  assert ids(degraded) == ['i4', 'i5', 'i6']
  np.testing.assert_allclose([item.score for item in degraded.items], [0.8, 0.6, 0.4], rtol=1e-6)
  assert degraded.items[0].item_title == 'Title i4' and degraded.items[0].predicted_rating is None

  fixture.save_ranking(fixture.RATINGS, models.version_dir(retrieval_only_dir, models.RANKING_MODEL, 1))
  assert registry.refresh()
  # The blend worked out in serving_recommender_test: i5 +0.6124, i4 0, i6 -0.6124.
  two_stage = service.recommend('u1', k=3)
  assert two_stage.versions == models.ServedVersions(retrieval=1, ranking=1)
  assert ids(two_stage) == ['i5', 'i4', 'i6'] and two_stage.items[0].predicted_rating == 4.0


@pytest.fixture()
def degraded_service(retrieval_only_dir) -> Iterator[serving_http_test.Service]:
  running = serving_http_test.Service(retrieval_only_dir)  # ranking_weight 0, polls every 0.2 s
  yield running
  running.close()


def test_http_health_is_degraded_then_ok_when_a_ranking_model_is_pushed(degraded_service, tmp_path):
  assert degraded_service.get('/healthz') == (200, {'status': 'degraded',
                                                    'model_versions': {'retrieval': 1, 'ranking': None},
                                                    'missing_models': ['ranking']})
  status, body = degraded_service.get('/v1/recommendations?user_id=u1&k=2')
  assert status == 200 and body['model_versions'] == {'retrieval': 1, 'ranking': None}
  assert body['items'] == [
      {'item_id': 'i4', 'item_title': 'Title i4', 'score': pytest.approx(0.8), 'retrieval_score': pytest.approx(0.8),
       'predicted_rating': None, 'source': 'retrieval_only'},
      {'item_id': 'i5', 'item_title': 'Title i5', 'score': pytest.approx(0.6), 'retrieval_score': pytest.approx(0.6),
       'predicted_rating': None, 'source': 'retrieval_only'}]

  built = fixture.save_ranking(fixture.RATINGS, str(tmp_path / 'ranking_export'))
  pushed = serving_pusher.push_atomically(
      built, os.path.join(degraded_service.registry.serving_dir, models.RANKING_MODEL))
  deadline = time.time() + 30
  while time.time() < deadline and degraded_service.get('/healthz')[1]['status'] != 'ok':
    time.sleep(0.1)
  assert degraded_service.get('/healthz') == (200, {'status': 'ok',
                                                    'model_versions': {'retrieval': 1, 'ranking': pushed},
                                                    'missing_models': []})
  status, body = degraded_service.get('/v1/recommendations?user_id=u1&k=1')
  # ranking_weight 0: still the retrieval order, now from the two-stage path with a predicted rating.
  assert body['items'][0]['item_id'] == 'i4' and body['items'][0]['source'] == 'two_stage'
  assert body['items'][0]['predicted_rating'] == 2.0


@pytest.mark.parametrize('ranking_only', [False, True])
def test_http_without_a_retrieval_model_answers_503(tmp_path, ranking_only):
  serving_dir = str(tmp_path / 'serving')
  os.makedirs(serving_dir)
  if ranking_only:
    fixture.save_ranking(fixture.RATINGS, models.version_dir(serving_dir, models.RANKING_MODEL, 1))
  service = serving_http_test.Service(serving_dir)
  try:
    status, body = service.get('/healthz')
    assert status == 503 and body['status'] == 'unavailable' and "'retrieval'" in body['error']
    assert service.get('/v1/recommendations?user_id=u1')[0] == 503
  finally:
    service.close()


def test_cli_answers_in_retrieval_order_and_says_it_is_degraded(retrieval_only_dir):
  completed = subprocess.run(
      [sys.executable, '-m', 'serving.recommend', '--serving-dir', retrieval_only_dir, '--user-id', 'u1',
       '--k', '3'], capture_output=True, text=True, check=False, timeout=300)
  assert completed.returncode == 0, completed.stderr[-2000:]
  body = json.loads(completed.stdout)
  assert body['model_versions'] == {'retrieval': 1, 'ranking': None}
  assert [item['item_id'] for item in body['items']] == ['i4', 'i5', 'i6']
  assert {item['source'] for item in body['items']} == {'retrieval_only'}
  assert 'degraded mode' in completed.stderr


# --- TF Serving REST backend -----------------------------------------------------------------------------------

@pytest.fixture()
def degraded_stand_in(retrieval_only_dir) -> Iterator[Tuple[serving_tf_serving_test.StandInTFServing, str]]:
  server = serving_tf_serving_test.StandInTFServing(retrieval_only_dir)
  yield server, retrieval_only_dir
  server.close()


def test_tf_serving_backend_serves_retrieval_alone_then_waits_for_the_ranking_model(degraded_stand_in):
  server, serving_dir = degraded_stand_in
  registry = models.ModelRegistry(serving_dir, loader=tf_serving_backend.bundle_loader(server.url))
  server.available = {(models.RETRIEVAL_MODEL, 1)}  # TF Serving lists the retrieval model only
  assert registry.refresh()
  degraded = recommender.Recommender(registry, ranking_weight=0.5).recommend('u1', k=3)
  assert server.predict_calls == 2  # warm-up and this request: retrieval only, never the ranking model
  assert degraded.versions == models.ServedVersions(retrieval=1, ranking=None)
  assert ids(degraded) == ['i4', 'i5', 'i6'] and degraded.items[0].source == 'retrieval_only'

  # ranking/1 is pushed, but TF Serving has not loaded it yet: keep serving retrieval only, retry later.
  fixture.save_ranking(fixture.RATINGS, models.version_dir(serving_dir, models.RANKING_MODEL, 1))
  assert not registry.refresh()
  assert registry.current().versions.ranking is None
  server.available.add((models.RANKING_MODEL, 1))
  assert registry.refresh()
  two_stage = recommender.Recommender(registry, ranking_weight=0.5).recommend('u1', k=3)
  assert two_stage.versions == models.ServedVersions(retrieval=1, ranking=1)
  assert ids(two_stage) == ['i5', 'i4', 'i6'] and two_stage.items[0].predicted_rating == 4.0


def test_tf_serving_backend_refuses_ranking_calls_without_a_ranking_version():
  backend = tf_serving_backend.TFServingModels(tf_serving_backend.TFServingClient('http://127.0.0.1:1'),
                                               models.ServedVersions(retrieval=1, ranking=None))
  with pytest.raises(models.ModelsNotReadyError, match='degraded'):
    backend.predict_ratings([b''])
