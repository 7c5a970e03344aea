"""TF Serving answering 404 to the warm-up's predict (a version it reports AVAILABLE but whose predict endpoint does
not serve it yet) is "not ready yet": the registry keeps the served pair and tries the version again at the next
poll, instead of skipping it until a newer one is pushed. A 404 on a request is still the version's fault (502).
An error that may pass at the warm-up (503) is retried likewise, while TF Serving's 500 (an op of the model failing)
skips the version.

Over a loopback server answering fixed bodies: the model status says AVAILABLE for every version, predict answers
404 "Servable not found" for the versions in `not_found`, the status in `failing` for those in it, and a fixed
prediction for the others. The serving assets (one user u1, one item i1) are written by hand; no model is loaded.
"""

import json
import os
from typing import Dict, Iterator, List, Set, Tuple

import pytest

from schema import features
from serving import assets as assets_lib
from serving import models, tf_serving_backend
from tests import tf_serving_fixtures

RETRIEVAL, RANKING = models.RETRIEVAL_MODEL, models.RANKING_MODEL


class NotFoundWhileLoading(tf_serving_fixtures.LoopbackServer):
  """Model status AVAILABLE for every version; predict 404 for the (model, version)s in `not_found`, the error
  status `failing` maps them to, else retrieval [['i1']] / [[0.5]] and ranking [[3.5]]. `predicts` records every
  predict call's (model, version)."""

  def __init__(self) -> None:
    self.not_found: Set[Tuple[str, int]] = set()
    self.failing: Dict[Tuple[str, int], int] = {}
    self.predicts: List[Tuple[str, int]] = []
    server = self

    class Handler(tf_serving_fixtures.RestHandler):

      def do_GET(self) -> None:  # pylint: disable=invalid-name
        _, version = self.model_version()
        self.answer_json(200, {'model_version_status': [{'version': str(version), 'state': 'AVAILABLE',
                                                     'status': {'error_code': 'OK', 'error_message': ''}}]})

      def do_POST(self) -> None:  # pylint: disable=invalid-name
        self.read_body()
        name, version = self.model_version()
        server.predicts.append((name, version))
        if (name, version) in server.not_found:
          self.answer_json(404, {'error': f'Servable not found for request: Specific({name}, {version})'})
        elif (name, version) in server.failing:
          self.answer_json(server.failing[(name, version)], {'error': 'the model failed'})
        elif name == RETRIEVAL:
          self.answer_json(200, {'outputs': {'item_ids': [['i1']], 'scores': [[0.5]]}})
        else:
          self.answer_json(200, {'outputs': [[3.5]]})

    self._start(Handler)


def _push(serving_dir: str, model: str, version: int) -> None:
  """A complete version directory; a retrieval version gets the serving assets of user u1 and item i1."""
  path = models.version_dir(serving_dir, model, version)
  os.makedirs(path)
  with open(os.path.join(path, models.SAVED_MODEL_FILE), 'wb'):
    pass
  if model != RETRIEVAL:
    return
  assets_dir = assets_lib.assets_dir_of(path)
  os.makedirs(assets_dir)
  files = {
      assets_lib.CATALOGUE_FILE: json.dumps({features.ITEM_ID: 'i1'}) + '\n',
      assets_lib.USERS_FILE: json.dumps({assets_lib.PROFILE_KEY: {features.USER_ID: 'u1'},
                                         assets_lib.SEEN_ITEMS_KEY: []}) + '\n',
      assets_lib.POPULARITY_FILE: json.dumps({assets_lib.GLOBAL_KEY: [['i1', 1]], assets_lib.SEGMENTS_KEY: {}}),
      assets_lib.COLUMN_TYPES_FILE: json.dumps({features.USER_ID: 'string', features.ITEM_ID: 'string'}),
  }
  for name, text in files.items():
    with open(os.path.join(assets_dir, name), 'w', encoding='utf-8') as f:
      f.write(text)


@pytest.fixture()
def tf_serving() -> Iterator[NotFoundWhileLoading]:
  server = NotFoundWhileLoading()
  yield server
  server.close()


def test_a_404_at_the_warm_up_of_a_new_ranking_version_is_retried_at_the_next_poll(tmp_path, tf_serving, caplog):
  serving_dir = str(tmp_path)
  _push(serving_dir, RETRIEVAL, 1)
  _push(serving_dir, RANKING, 1)
  registry = models.ModelRegistry(serving_dir, loader=tf_serving_backend.bundle_loader(tf_serving.url))
  assert registry.refresh() and registry.current().versions == models.ServedVersions(1, 1)

  _push(serving_dir, RANKING, 2)
  tf_serving.not_found = {(RANKING, 2)}  # its status runs ahead of its predict endpoint
  tf_serving.predicts.clear()
  with caplog.at_level('INFO', logger='absl'):
    assert not registry.refresh()
  assert registry.current().versions == models.ServedVersions(1, 1)  # not served meanwhile
  # Only the pair's warm-up: no blame, the retrieval version is not warmed up alone.
  assert tf_serving.predicts == [(RETRIEVAL, 1), (RANKING, 2)]
  assert not [r for r in caplog.records if r.levelname == 'ERROR']  # before: "it is skipped until a newer one"
  assert any(r.getMessage().startswith('Versions ServedVersions(retrieval=1, ranking=2) are not available yet '
                                       '(still serving ServedVersions(retrieval=1, ranking=1)): ')
             and 'answered 404: {"error": "Servable not found for request: Specific(ranking, 2)"}' in r.getMessage()
             for r in caplog.records)

  assert not registry.refresh()  # still not found: tried again, still not served
  assert tf_serving.predicts[2:] == [(RETRIEVAL, 1), (RANKING, 2)]
  tf_serving.not_found = set()  # TF Serving has finished loading it
  assert registry.refresh() and registry.current().versions == models.ServedVersions(1, 2)


def test_a_404_at_the_first_warm_up_leaves_nothing_served_and_is_retried(tmp_path, tf_serving):
  serving_dir = str(tmp_path)
  _push(serving_dir, RETRIEVAL, 1)
  tf_serving.not_found = {(RETRIEVAL, 1)}
  registry = models.ModelRegistry(serving_dir, loader=tf_serving_backend.bundle_loader(tf_serving.url))
  assert not registry.refresh()
  with pytest.raises(models.ModelsNotReadyError) as error:
    registry.current()
  assert str(error.value).startswith(
      f'No model loaded yet from {serving_dir}: versions ServedVersions(retrieval=1, ranking=None) could not be '
      'loaded yet (VersionNotAvailableError: ')
  tf_serving.not_found = set()
  assert registry.refresh() and registry.current().versions == models.ServedVersions(1, None)


def test_a_404_on_a_request_is_still_the_versions_fault(tf_serving):
  tf_serving.not_found = {(RANKING, 2)}
  backend = tf_serving_backend.TFServingModels(tf_serving_backend.TFServingClient(tf_serving.url),
                                               models.ServedVersions(1, 2))
  with pytest.raises(tf_serving_backend.TFServingError) as error:
    backend.predict_ratings([b''])
  # Not retryable: the HTTP service answers 502, as before.
  assert (error.value.status, error.value.retryable) == (404, False)
  assert str(error.value) == ('TF Serving POST /v1/models/ranking/versions/2:predict answered 404: '
                              '{"error": "Servable not found for request: Specific(ranking, 2)"}')


@pytest.mark.parametrize('status, skipped', [(500, True), (503, False)])
def test_a_500_at_the_warm_up_skips_the_version_and_a_503_is_retried(tmp_path, tf_serving, caplog, status, skipped):
  serving_dir = str(tmp_path)
  _push(serving_dir, RETRIEVAL, 1)
  _push(serving_dir, RANKING, 1)
  registry = models.ModelRegistry(serving_dir, loader=tf_serving_backend.bundle_loader(tf_serving.url))
  assert registry.refresh()
  _push(serving_dir, RANKING, 2)
  tf_serving.failing = {(RANKING, 2): status}
  with caplog.at_level('INFO', logger='absl'):
    assert not registry.refresh()
  assert registry.current().versions == models.ServedVersions(1, 1)
  errors = [r.getMessage() for r in caplog.records if r.levelname == 'ERROR']
  if skipped:  # INTERNAL: the same warm-up fails again. Before, retried at every poll, blocking newer retrievals.
    assert len(errors) == 1 and errors[0].startswith(f'Could not load ranking version 2 from {serving_dir} ')
    assert f'answered {status}: {{"error": "the model failed"}}' in errors[0]
  else:  # UNAVAILABLE: TF Serving overloaded, the version is not at fault
    assert not errors
  tf_serving.failing = {}
  assert registry.refresh() is not skipped
  assert registry.current().versions == models.ServedVersions(1, 1 if skipped else 2)
