"""What the TF Serving backend makes of TF Serving's answers when they are not the happy path: a version it
reports as END, one it does not know, a server it cannot reach, a 200 answer that is not JSON, outputs missing
or mis-shaped, non-finite floats, and which error statuses are retried (those that may pass: 408, 429, 502,
503, 504).

Over a loopback server answering fixed bodies (tests/tf_serving_fixtures.py's LoopbackServer); no model is
loaded: the loader checks the versions' states before it reads anything from disk.
"""

import argparse
import json
import re
import socket
from typing import Dict, Iterator, Tuple, Type

import numpy as np
import pytest

from serving import backend_flags, models, tf_serving_backend
from tests import loopback_http, tf_serving_fixtures

# (model, version) -> the model_version_status entry TF Serving answers; any other version gets 404.
STATUSES = {
    (models.RETRIEVAL_MODEL, 1): {'version': '1', 'state': 'AVAILABLE', 'status': {'error_code': 'OK'}},
    (models.RANKING_MODEL, 1): {'version': '1', 'state': 'AVAILABLE', 'status': {'error_code': 'OK'}},
    (models.RANKING_MODEL, 2): {'version': '2', 'state': 'END', 'status': {
        'error_code': 'NOT_FOUND', 'error_message': 'Could not find SavedModel .pb or .pbtxt'}},
    (models.RANKING_MODEL, 3): {'version': '3', 'state': 'LOADING', 'status': {'error_code': 'OK'}},
}


class FixedAnswers(tf_serving_fixtures.LoopbackServer):
  """GET: the STATUSES entry (404 for others); POST: `post_body` with status 200 and `post_type`."""

  def __init__(self) -> None:
    self.post_body = b'<html>Bad gateway</html>'
    server = self

    class Handler(tf_serving_fixtures.RestHandler):

      def do_GET(self) -> None:  # pylint: disable=invalid-name
        entry = STATUSES.get(self.model_version())
        if entry is None:
          self.answer_json(404, {'error': 'Servable not found'})
        else:
          self.answer_json(200, {'model_version_status': [entry]})

      def do_POST(self) -> None:  # pylint: disable=invalid-name
        self.read_body()
        self.answer(200, server.post_body)

    self._start(Handler)


@pytest.fixture()
def tf_serving() -> Iterator[FixedAnswers]:
  server = FixedAnswers()
  yield server
  server.close()


def test_a_version_tf_serving_ended_is_the_versions_failure(tf_serving):
  load = tf_serving_backend.bundle_loader(tf_serving.url)
  with pytest.raises(models.BackendError) as error:
    load('/not/read', models.ServedVersions(1, 2))
  assert not error.value.retryable  # the registry skips ranking 2 and serves ranking 1 beside retrieval 1
  assert "ranking version 2 as 'END'" in str(error.value)
  assert 'NOT_FOUND: Could not find SavedModel .pb or .pbtxt' in str(error.value)


@pytest.mark.parametrize('versions, state', [(models.ServedVersions(1, 3), "'LOADING'"),
                                             (models.ServedVersions(1, 4), "'not known (yet)'")])
def test_a_version_still_loading_or_not_known_is_waited_for(tf_serving, versions, state):
  with pytest.raises(models.VersionNotAvailableError,
                     match=re.escape(f'ranking version {versions.ranking} as {state}')):
    tf_serving_backend.bundle_loader(tf_serving.url)('/not/read', versions)


def test_an_unreachable_tf_serving_is_a_passing_backend_error_not_an_unknown_version():
  with socket.socket() as probe:  # a port nothing listens on
    probe.bind(('127.0.0.1', 0))
    port = probe.getsockname()[1]
  load = tf_serving_backend.bundle_loader(f'http://127.0.0.1:{port}', timeout_s=2.0)
  with pytest.raises(tf_serving_backend.TFServingError, match='did not answer: ConnectionRefusedError') as error:
    load('/not/read', models.ServedVersions(1, 1))
  assert error.value.retryable


@pytest.mark.parametrize('body, message', [
    (b'<html>Bad gateway</html>', 'answered 200 with a body that is not JSON'),
    (b'\xff\xfe', 'answered 200 with a body that is not JSON'),
    (b'[1, 2]', 'answered 200 with JSON that is not an object'),
    (b'{"error": "none"}', 'answered 200 without "outputs"'),
])
def test_an_answer_that_is_not_tf_servings_is_a_passing_backend_error(tf_serving, body, message):
  # Before, json.loads' ValueError reached the HTTP service, which answered the client 400 (its own fault).
  tf_serving.post_body = body
  client = tf_serving_backend.TFServingClient(tf_serving.url)
  with pytest.raises(tf_serving_backend.TFServingError, match=message) as error:
    client.predict(models.RETRIEVAL_MODEL, 1, [b''])
  assert error.value.retryable and error.value.status is None


def test_status_entries_are_read_with_their_error(tf_serving):
  client = tf_serving_backend.TFServingClient(tf_serving.url)
  statuses: Dict[Tuple[str, int], Tuple[str, str]] = {
      key: client.model_status(*key) for key in [*STATUSES, (models.RANKING_MODEL, 9)]}
  assert statuses == {
      (models.RETRIEVAL_MODEL, 1): ('AVAILABLE', ''), (models.RANKING_MODEL, 1): ('AVAILABLE', ''),
      (models.RANKING_MODEL, 2): ('END', 'NOT_FOUND: Could not find SavedModel .pb or .pbtxt'),
      (models.RANKING_MODEL, 3): ('LOADING', ''), (models.RANKING_MODEL, 9): ('', '')}


@pytest.mark.parametrize('url', [
    'http://127.0.0.1:8501/tfs',         # a path: every call went to /v1/... at the root, the path dropped
    'http://127.0.0.1:8501/v1/models',
    'http://127.0.0.1:8501?model=x',     # a query, dropped
    'http://127.0.0.1:8501#x',           # a fragment, dropped
    'http://user:secret@127.0.0.1:8501',  # credentials, never sent
    'http://tf serving:8501',            # a host with a space: a DNS failure at every call
    'http://127.0.0.1:0',                # port 0: the client called port 80
])
def test_a_url_that_is_more_or_less_than_host_and_port_is_refused(url):
  with pytest.raises(argparse.ArgumentTypeError, match='is not http://HOST:PORT'):
    backend_flags.tf_serving_url(url)
  with pytest.raises(ValueError, match=re.escape(f'tf_serving_url={url!r} must look like http://HOST:PORT')):
    tf_serving_backend.TFServingClient(url)


@pytest.mark.parametrize('url, address', [
    ('http://127.0.0.1:8501', '127.0.0.1:8501'),
    ('http://127.0.0.1:8501/', '127.0.0.1:8501'),  # an empty path
    ('HTTP://TF-Serving:8501', 'tf-serving:8501'),
    ('http://tf-serving', 'tf-serving:80'),
    ('http://[::1]:8501', '[::1]:8501'),
])
def test_a_host_and_port_url_is_taken(url, address):
  assert backend_flags.tf_serving_url(url) == url
  assert tf_serving_backend.TFServingClient(url).address == address


def test_a_client_port_out_of_range_is_refused_with_the_url():
  # Before: urllib's own ValueError 'Port out of range 0-65535', naming neither the URL nor the fix.
  with pytest.raises(ValueError, match=r"tf_serving_url='http://127.0.0.1:99999' must look like http://HOST:PORT"):
    tf_serving_backend.TFServingClient('http://127.0.0.1:99999')


@pytest.mark.parametrize('timeout_s', [0.0, -1.0, float('nan'), float('inf')])
def test_a_timeout_that_is_not_a_positive_number_of_seconds_is_refused(timeout_s):
  # Before: 0 made every call fail at once (a non-blocking socket: BlockingIOError, "did not answer"), and a
  # negative or NaN timeout raised ValueError from inside the first call, which the registry took for the
  # version's failure and skipped that version.
  with pytest.raises(ValueError, match=f'timeout_s={timeout_s!r} must be a number of seconds above 0'):
    tf_serving_backend.TFServingClient('http://127.0.0.1:8501', timeout_s=timeout_s)


@pytest.mark.parametrize('method, body, message', [
    # A retrieval version exported without the named outputs (recommenders#744: output_1/output_2).
    ('retrieve', {'outputs': {'output_1': [[0.5]], 'output_2': [['i1']]}},
     "retrieval version 1 answered outputs ['output_1', 'output_2'] without 'item_ids'"),
    ('retrieve', {'outputs': [[0.5]]}, "retrieval version 1 answered a single unnamed output without 'item_ids'"),
    ('predict_ratings', {'outputs': {'output_1': [[3.5]], 'output_2': [[1.0]]}},
     "ranking version 1 answered outputs ['output_1', 'output_2'] without 'predictions'"),
])
def test_an_answer_without_the_exported_outputs_is_the_versions_error_naming_them(tf_serving, method, body, message):
  # Before: a KeyError or TypeError ('list indices must be integers'), which the HTTP service answered with 500
  # and which named neither the model, its version, nor the outputs it has.
  tf_serving.post_body = json.dumps(body).encode()
  backend = tf_serving_backend.TFServingModels(tf_serving_backend.TFServingClient(tf_serving.url),
                                               models.ServedVersions(1, 1))
  with pytest.raises(models.BackendError, match=re.escape(message)) as error:
    getattr(backend, method)([b''])
  assert not error.value.retryable  # the version's export is at fault: the registry skips it


@pytest.mark.parametrize('method, requests, body, message', [
    # Scores for fewer candidates than item ids: the recommender zipped them and dropped the third id silently.
    ('retrieve', 1, {'outputs': {'item_ids': [['i1', 'i2', 'i3']], 'scores': [[0.9, 0.8]]}},
     "'item_ids' of shape [1, 3] and 'scores' of shape [1, 2] for 1 request(s); both must be [1, k]"),
    # One row for two requests: the second request's candidates were missing.
    ('retrieve', 2, {'outputs': {'item_ids': [['i1', 'i2']], 'scores': [[0.9, 0.8]]}},
     "'item_ids' of shape [1, 2] and 'scores' of shape [1, 2] for 2 request(s); both must be [2, k]"),
    # Ragged rows: numpy's own ValueError ('inhomogeneous shape'), answered 500 by the HTTP service.
    ('retrieve', 2, {'outputs': {'item_ids': [['i1', 'i2'], ['i3']], 'scores': [[0.9, 0.8], [0.7]]}},
     "answered 'item_ids' that is not a dense array of str (ValueError: "),
    ('retrieve', 1, {'outputs': {'item_ids': [['i1']], 'scores': [['high']]}},
     "answered 'scores' that is not a dense array of float32 (ValueError: could not convert string to float"),
    # Two values per request: reshape([-1]) made 2 ratings of 1 request, 6 of 3.
    ('predict_ratings', 1, {'outputs': [[3.5, 1.0]]},
     "ranking version 1 answered 'predictions' of shape [1, 2] for 1 request(s); it must be [1] or [1, 1]"),
    ('predict_ratings', 3, {'outputs': {'predictions': [[4.0]]}},
     "ranking version 1 answered 'predictions' of shape [1, 1] for 3 request(s); it must be [3] or [3, 1]"),
])
def test_an_answer_with_mis_shaped_outputs_is_the_versions_error(tf_serving, method, requests, body, message):
  # Before: accepted as they came (candidates or ratings silently dropped or made up), or numpy's ValueError.
  tf_serving.post_body = json.dumps(body).encode()
  backend = tf_serving_backend.TFServingModels(tf_serving_backend.TFServingClient(tf_serving.url),
                                               models.ServedVersions(1, 1))
  with pytest.raises(models.BackendError, match=re.escape(message)) as error:
    getattr(backend, method)([b''] * requests)
  assert not error.value.retryable


def test_well_shaped_answers_with_nan_and_infinity_are_taken_as_tf_serving_writes_them(tf_serving):
  # TF Serving writes non-finite floats as the bare tokens NaN, Infinity, -Infinity (util/json_tensor.cc); the
  # recommender drops non-finite retrieval scores itself.
  backend = tf_serving_backend.TFServingModels(tf_serving_backend.TFServingClient(tf_serving.url),
                                               models.ServedVersions(1, 1))
  tf_serving.post_body = (b'{"outputs": {"item_ids": [["i1", "i2"], ["i3", "i1"]], '
                          b'"scores": [[0.5, NaN], [-Infinity, 0.25]]}}')
  item_ids, scores = backend.retrieve([b'', b''])
  assert item_ids.tolist() == [['i1', 'i2'], ['i3', 'i1']] and scores.dtype == np.float32
  np.testing.assert_array_equal(scores, np.array([[0.5, np.nan], [-np.inf, 0.25]], dtype=np.float32))
  tf_serving.post_body = b'{"outputs": [[3.5], [Infinity]]}'  # the single unnamed output, [batch, 1]
  np.testing.assert_array_equal(backend.predict_ratings([b'', b'']), np.array([3.5, np.inf], dtype=np.float32))
  tf_serving.post_body = b'{"outputs": {"predictions": [2.0, 4.5, 1.0]}}'  # named, [batch]
  np.testing.assert_array_equal(backend.predict_ratings([b''] * 3), np.array([2.0, 4.5, 1.0], dtype=np.float32))


@pytest.mark.parametrize('status, retryable', [(301, True), (307, True), (204, True), (None, True),
                                               (400, False), (404, False), (499, False),
                                               (408, True), (429, True),
                                               (500, False), (501, False), (502, True), (503, True), (504, True)])
def test_a_4xx_or_5xx_status_is_the_versions_fault_unless_it_may_pass(status, retryable):
  # Before: any status below 500 was not retryable, so a proxy's redirect (3xx) or a 204 while the versions
  # loaded made the registry skip them until newer ones were pushed. 408 and 429 (overloaded: "try later") are
  # retryable too: before, a 429 answered 502 and skipped the version at load. Of the 5xx only 502, 503 and 504 are:
  # TF Serving answers 500 for INTERNAL and UNKNOWN errors (an op of the model failing: the same call fails again),
  # which before were answered 503 without a log and retried at every poll instead of skipping the version.
  assert tf_serving_backend.TFServingError(f'answered {status}', status=status).retryable is retryable


# TF Serving's answer (status, and {"error": <the message>}) to a call failing with an error code (`ToHTTPStatusCode`,
# tensorflow_serving/model_servers/http_server.cc).
TF_SERVING_ERRORS = {
    500: 'The StringToNumber op of the model failed on input "x"',  # INTERNAL: the same examples fail again
    503: 'The batch scheduling queue to which this task was submitted is full',  # UNAVAILABLE
    404: 'Servable not found for request: Specific(retrieval, 1)',  # NOT_FOUND
    429: 'OOM when allocating tensor with shape[100,64]',  # RESOURCE_EXHAUSTED
}


def answering(status: int) -> Type[tf_serving_fixtures.RestHandler]:
  """A handler answering every predict with `status` and its TF_SERVING_ERRORS message, as TF Serving does."""

  class Handler(tf_serving_fixtures.RestHandler):

    def do_POST(self) -> None:  # pylint: disable=invalid-name
      self.read_body()
      self.answer_json(status, {'error': TF_SERVING_ERRORS[status]})

  return Handler


@pytest.mark.parametrize('status, retryable', [(500, False), (503, True), (404, False), (429, True)])
def test_tf_servings_error_answers_are_retryable_only_when_they_may_pass(status, retryable):
  with loopback_http.serving(answering(status)) as server:
    with pytest.raises(tf_serving_backend.TFServingError) as error:
      tf_serving_backend.TFServingClient(server.url).predict(models.RETRIEVAL_MODEL, 1, [b''])
  assert (error.value.status, error.value.retryable) == (status, retryable)
  assert error.value.version_not_found is (status == 404)
  assert str(error.value) == (f'TF Serving POST /v1/models/retrieval/versions/1:predict answered {status}: '
                              f'{json.dumps({"error": TF_SERVING_ERRORS[status]})}')


def test_a_redirect_while_loading_is_retried_at_the_next_poll_not_the_versions_failure():
  class Redirect(tf_serving_fixtures.RestHandler):

    def do_GET(self) -> None:  # pylint: disable=invalid-name
      self.send_response(302)
      self.send_header('Location', 'http://elsewhere:8501/')
      self.send_header('Content-Length', '0')
      self.end_headers()

  with loopback_http.serving(Redirect) as server, pytest.raises(tf_serving_backend.TFServingError,
                                                                 match='answered 302') as error:
    tf_serving_backend.bundle_loader(server.url)('/not/read', models.ServedVersions(1, 1))
  assert error.value.status == 302 and error.value.retryable


@pytest.mark.parametrize('host', ['tf..serving', 'a' * 64])  # an empty label; a label over 63 characters
def test_a_host_name_that_cannot_be_looked_up_is_a_passing_backend_error(host):
  # Before: the IDNA encoder's UnicodeError escaped every call: /healthz answered 500 and the registry took it for
  # the retrieval version's failure and skipped that version until a newer one was pushed.
  client = tf_serving_backend.TFServingClient(f'http://{host}:8501', timeout_s=1.0)
  with pytest.raises(tf_serving_backend.TFServingError, match=re.escape(
      f'TF Serving GET /v1/models/retrieval/versions/1 at {host}:8501 did not answer: UnicodeError: ')) as error:
    client.model_status(models.RETRIEVAL_MODEL, 1)
  assert error.value.retryable and error.value.status is None
  reason = tf_serving_backend.TFServingModels(client, models.ServedVersions(1, None)).unavailable_reason()
  assert reason.startswith(f'TF Serving GET /v1/models/retrieval/versions/1 at {host}:8501 did not answer: ')
