"""recommend() and the HTTP service over the models the fixture pipeline run pushed (the project's real exports)."""

import http.client
import json
import shutil
import threading

import pytest

from serving import app, assets as assets_lib, models, recommender

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def registry(fixture_pipeline_run) -> models.ModelRegistry:
  registry = models.ModelRegistry(fixture_pipeline_run.serving_dir)
  assert registry.refresh(), f'no retrieval + ranking versions under {fixture_pipeline_run.serving_dir}'
  return registry


def test_pushed_retrieval_version_carries_the_serving_assets(fixture_pipeline_run):
  versions = models.newest_versions(fixture_pipeline_run.serving_dir)
  retrieval_dir = models.version_dir(fixture_pipeline_run.serving_dir, models.RETRIEVAL_MODEL, versions.retrieval)
  loaded = assets_lib.load_serving_assets(assets_lib.assets_dir_of(retrieval_dir))
  assert loaded.items and loaded.user_profiles and loaded.popularity.global_items
  assert set(loaded.seen_items) == set(loaded.user_profiles)


def test_known_user_gets_k_unseen_two_stage_items_in_final_score_order(registry):
  bundle = registry.current()
  user_id = sorted(bundle.assets.user_profiles)[0]
  result = recommender.Recommender(registry).recommend(user_id, k=5)
  assert result.known_user and len(result.items) == 5
  ids = [item.item_id for item in result.items]
  assert len(set(ids)) == 5
  assert not set(ids) & bundle.assets.seen_items[user_id]
  two_stage = [item for item in result.items if item.source == recommender.SOURCE_TWO_STAGE]
  assert two_stage, 'every item came from the popularity fallback'
  scores = [item.score for item in two_stage]
  assert scores == sorted(scores, reverse=True)
  for item in two_stage:
    assert item.item_title == bundle.assets.items[item.item_id].get('item_title')
    assert item.retrieval_score is not None and 0.5 <= item.predicted_rating <= 5.5


def test_http_service_answers_over_the_pushed_models(registry):
  server = app.make_server(recommender.Recommender(registry), registry, port=0)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  try:
    connection = http.client.HTTPConnection('127.0.0.1', server.server_address[1], timeout=60)
    connection.request('GET', '/v1/recommendations?user_id=never-seen-user&k=3')
    response = connection.getresponse()
    body = json.loads(response.read())
    assert response.status == 200 and body['known_user'] is False and len(body['items']) == 3
    connection.close()
  finally:
    server.shutdown()
    server.server_close()


def test_pushed_retrieval_model_alone_serves_in_retrieval_order(fixture_pipeline_run, tmp_path):
  """Degraded mode over the real exported retrieval model: a serving dir holding only its pushed version."""
  versions = models.newest_versions(fixture_pipeline_run.serving_dir)
  serving_dir = str(tmp_path / 'serving')
  shutil.copytree(models.version_dir(fixture_pipeline_run.serving_dir, models.RETRIEVAL_MODEL, versions.retrieval),
                  models.version_dir(serving_dir, models.RETRIEVAL_MODEL, versions.retrieval))
  registry = models.ModelRegistry(serving_dir)
  assert registry.refresh()
  bundle = registry.current()
  assert bundle.versions == models.ServedVersions(retrieval=versions.retrieval, ranking=None)
  user_id = sorted(bundle.assets.user_profiles)[0]
  result = recommender.Recommender(registry).recommend(user_id, k=5)
  assert len(result.items) == 5 and not {item.item_id for item in result.items} & bundle.assets.seen_items[user_id]
  retrieved = [item for item in result.items if item.source == recommender.SOURCE_RETRIEVAL_ONLY]
  assert retrieved, 'every item came from the popularity fallback'
  assert all(item.predicted_rating is None and item.score == item.retrieval_score for item in retrieved)
  scores = [item.retrieval_score for item in retrieved]
  assert scores == sorted(scores, reverse=True)
