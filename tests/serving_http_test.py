"""Real HTTP requests to the recommendation service on loopback, including a new version pushed mid-run.

The service (serving.app.make_server, polling every POLL_INTERVAL_S) runs in a thread of this process over the
hand-made fixture of tests/serving_recommender_test.py; requests go through http.client over 127.0.0.1.
"""

import http.client
import json
import os
import shutil
import threading
import time
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from components import serving_pusher
from serving import app, models, recommender
from tests import serving_recommender_test as fixture

POLL_INTERVAL_S = 0.2
# Above the unix-time versions the pusher writes (until 2286).
HALF_WRITTEN_VERSION = 9_999_999_999
# u1's retrieval list in the new version: i6 is now the best unseen candidate.
RETRIEVAL_V2 = {**fixture.RETRIEVAL_V1,
                'u1': [('i6', 0.95), ('i1', 0.9), ('i4', 0.8), ('i5', 0.6), ('i2', 0.5)]}


def get_json(port: int, path: str) -> Tuple[int, Dict[str, Any]]:
  """GET `path` from the service on loopback `port`, over a connection of its own: (status, decoded JSON body)."""
  connection = http.client.HTTPConnection(app.LOOPBACK_HOST, port, timeout=30)
  try:
    connection.request('GET', path)
    response = connection.getresponse()
    return response.status, json.loads(response.read())
  finally:
    connection.close()


class Service:
  """A running service on a free loopback port."""

  def __init__(self, serving_dir: str):
    self.registry = models.ModelRegistry(serving_dir, poll_interval_s=POLL_INTERVAL_S)
    self.registry.refresh()
    self.registry.start_polling()
    self.server = app.make_server(recommender.Recommender(self.registry, ranking_weight=0.0), self.registry,
                                  host=app.LOOPBACK_HOST, port=0)
    self.port = self.server.server_address[1]
    self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
    self.thread.start()

  def get(self, path: str) -> Tuple[int, Dict[str, Any]]:
    return get_json(self.port, path)

  def close(self) -> None:
    self.server.shutdown()
    self.server.server_close()
    self.registry.stop_polling()


@pytest.fixture()
def service(tmp_path) -> Iterator[Service]:
  running = Service(fixture.build_serving_dir(str(tmp_path)))
  yield running
  running.close()


def test_binds_loopback_and_answers_health(service):
  assert service.server.server_address[0] == '127.0.0.1'
  assert service.get('/healthz') == (200, {'status': 'ok', 'model_versions': {'retrieval': 1, 'ranking': 1},
                                           'missing_models': []})


def test_recommendations_happy_path(service):
  status, body = service.get('/v1/recommendations?user_id=u1&k=3')
  assert status == 200
  assert body['user_id'] == 'u1' and body['known_user'] is True
  # ranking_weight 0: retrieval order of u1's unseen candidates (i1, i2 seen).
  assert [item['item_id'] for item in body['items']] == ['i4', 'i5', 'i6']
  assert body['items'][0] == {'item_id': 'i4', 'item_title': 'Title i4', 'score': pytest.approx(1.2247449),
                              'retrieval_score': pytest.approx(0.8), 'predicted_rating': 2.0,
                              'source': 'two_stage'}
  status, body = service.get('/v1/recommendations?user_id=u1&k=2&exclude_seen=false')
  assert [item['item_id'] for item in body['items']] == ['i1', 'i4']


def test_unknown_user_gets_popular_items(service):
  status, body = service.get('/v1/recommendations?user_id=nobody&k=3&user_gender=M')
  assert status == 200 and body['known_user'] is False
  assert [item['item_id'] for item in body['items']] == ['i1', 'i3', 'i2']
  assert {item['source'] for item in body['items']} == {'popular'}


def test_an_age_bucket_chooses_an_unknown_users_segment(service):
  # Age 35-44 is u2 (age 40) alone, who saw i1 and i3: half of the segment's interactions each (ties by item id);
  # the global list completes it with i2 (1 of 5 interactions). All users' list alone would be i1, i2, i3.
  for query in ('user_age_bucket=35-44', 'user_age=40&user_age_bucket=35-44'):
    status, body = service.get(f'/v1/recommendations?user_id=nobody&k=3&{query}')
    assert status == 200, body
    assert [(item['item_id'], item['score'], item['source']) for item in body['items']] == [
        ('i1', pytest.approx(0.5), 'popular'), ('i3', pytest.approx(0.5), 'popular'),
        ('i2', pytest.approx(0.2), 'popular')]


def test_an_age_bucket_is_accepted_for_a_known_user_and_not_sent_to_the_models(service):
  # The models read user_age (Transform derives the bucket); u1's answer is the one without the parameter.
  status, body = service.get('/v1/recommendations?user_id=u1&k=3&user_age_bucket=56%2B')
  assert status == 200, body
  assert [item['item_id'] for item in body['items']] == ['i4', 'i5', 'i6']


@pytest.mark.parametrize('query, message', [
    ('user_id=nobody&user_age_bucket=30-40', "user_age_bucket='30-40' is not an age bucket; use one of ['<18', "),
    ('user_id=nobody&user_age_bucket=56+', "user_age_bucket='56 ' is not an age bucket"),
    ('user_id=nobody&user_age=23&user_age_bucket=35-44',
     "user_age=23 is in age bucket '18-24' but user_age_bucket='35-44'"),
])
def test_a_bad_age_bucket_gets_400_naming_it(service, query, message):
  status, body = service.get(f'/v1/recommendations?{query}')
  assert status == 400
  assert message in body['error']


@pytest.mark.parametrize('query, message', [
    ('user_id=u1&k=0', 'k=0'),
    ('user_id=u1&k=ten', "k='ten'"),
    ('user_id=u1&k=1000', 'k=1000'),
    ('k=10', 'Missing user_id'),
    ('user_id=&k=10', 'Missing user_id'),
    ('user_id=u1&exclude_seen=maybe', 'exclude_seen'),
    ('user_id=u1&colour=red', 'Unknown parameters'),
    ('user_id=nobody&user_age=old', 'user_age'),
    ('user_id=u1&k=%EF%BC%92', "k='\uff12'"),  # a full-width 2: not an ASCII integer
    ('user_id=u1&k=1_0', "k='1_0'"),
    ('user_id=nobody&user_age=99999999999999999999', 'within int64'),  # refused for unknown users too
])
def test_invalid_parameters_get_400_with_a_message(service, query, message):
  status, body = service.get(f'/v1/recommendations?{query}')
  assert status == 400
  assert message in body['error']


def test_unknown_path_gets_404(service):
  assert service.get('/v2/whatever')[0] == 404


def test_other_methods_get_405_allowing_get(service):
  connection = http.client.HTTPConnection(app.LOOPBACK_HOST, service.port, timeout=30)
  try:
    connection.request('POST', '/v1/recommendations', body=b'{"user_id": "u1"}',
                       headers={'Content-Type': 'application/json'})
    response = connection.getresponse()
    assert (response.status, response.getheader('Allow')) == (405, 'GET')
    assert 'POST is not supported' in json.loads(response.read())['error']
    connection.close()
    connection.request('HEAD', '/v1/recommendations?user_id=u1')
    response = connection.getresponse()
    assert (response.status, response.getheader('Allow'), response.read()) == (405, 'GET', b'')
  finally:
    connection.close()


def test_a_get_with_a_body_gets_400_and_does_not_spoil_the_next_request(service):
  connection = http.client.HTTPConnection(app.LOOPBACK_HOST, service.port, timeout=30)
  try:
    # Before, the unread body was parsed as the next request line: the next request got an HTML 400.
    connection.request('GET', '/v1/recommendations?user_id=u1&k=1', body=b'{"user_id": "u2"}')
    response = connection.getresponse()
    assert response.status == 400 and 'takes no body' in json.loads(response.read())['error']
    connection.request('GET', '/v1/recommendations?user_id=u1&k=1')  # http.client reopens the closed connection
    response = connection.getresponse()
    assert response.status == 200
    assert [item['item_id'] for item in json.loads(response.read())['items']] == ['i4']
  finally:
    connection.close()


def test_new_version_is_picked_up_without_dropping_requests(service, tmp_path):
  """Clients keep asking while a new version is pushed (plus a half-written newer one and a staging dir that
  must stay unloaded); every answer is 200 and the answers switch to the new version once."""
  answers: List[Tuple[int, int, float, float]] = []  # status, retrieval version, start and end times
  stop = threading.Event()

  def client() -> None:
    while not stop.is_set():
      start = time.monotonic()
      status, body = service.get('/v1/recommendations?user_id=u1&k=1')
      answers.append((status, body.get('model_versions', {}).get('retrieval', -1), start, time.monotonic()))

  clients = [threading.Thread(target=client) for _ in range(4)]
  for thread in clients:
    thread.start()
  try:
    time.sleep(0.5)
    retrieval_base = os.path.join(service.registry.serving_dir, models.RETRIEVAL_MODEL)
    # A staging copy in progress: never loaded.
    shutil.copytree(os.path.join(retrieval_base, '1'), os.path.join(retrieval_base, '.staging-4'))
    # Version 2 through the pipeline's pusher: staged, then renamed into place.
    built = fixture.save_retrieval(RETRIEVAL_V2, str(tmp_path / 'v2_export'), str(tmp_path / 'examples'))
    pushed = serving_pusher.push_atomically(built, retrieval_base)
    assert pushed > 1
    # A half-written version numbered above the pushed one (no saved_model.pb yet): never loaded.
    os.makedirs(os.path.join(retrieval_base, str(HALF_WRITTEN_VERSION), 'variables'))
    deadline = time.time() + 30
    while time.time() < deadline and not (answers and answers[-1][1] == pushed):
      time.sleep(0.1)
    time.sleep(0.5)
  finally:
    stop.set()
    for thread in clients:
      thread.join()

  assert answers and all(a[0] == 200 for a in answers), [a for a in answers if a[0] != 200][:5]
  versions = [a[1] for a in answers]
  assert versions[0] == 1 and versions[-1] == pushed
  assert set(versions) == {1, pushed}
  # One swap: no request started after a new-version answer had arrived was answered by version 1.
  first_new_answer = min(end for _, version, _, end in answers if version == pushed)
  assert all(version == pushed for _, version, start, _ in answers if start > first_new_answer)
  status, body = service.get('/v1/recommendations?user_id=u1&k=1')
  assert body['items'][0]['item_id'] == 'i6'
  assert service.get('/healthz')[1]['model_versions'] == {'retrieval': pushed, 'ranking': 1}


def test_a_ranking_model_predicting_nan_or_inf_is_a_502_naming_the_items(tmp_path):
  # Before: 500 'NonFiniteAnswerError: ... items[0].score=nan, ...' from the JSON check, which named answer fields,
  # not the items, and did not say the backend was at fault.
  broken = fixture.non_finite_ranking_registry(str(tmp_path))
  server = app.make_server(recommender.Recommender(broken), broken, host=app.LOOPBACK_HOST, port=0)
  threading.Thread(target=server.serve_forever, daemon=True).start()
  try:
    port = server.server_address[1]
    assert get_json(port, '/v1/recommendations?user_id=u2&k=3') == (
        502, {'error': fixture.NON_FINITE_RATINGS_MESSAGE})
    assert get_json(port, '/healthz')[0] == 200
  finally:
    server.shutdown()
    server.server_close()
