"""The TF Serving client's timeout is a deadline for the whole call, not for each socket operation: a server
dribbling its answer (4 bytes every 0.2 s) cannot hold a call past it, nor can a host name's look-up that hangs.

Over a raw loopback socket server: it reads the request, then sends a 200 answer whose 40-byte JSON body comes 4
bytes at a time, 0.2 s apart (about 2 s in all, each wait well under the 0.5 s timeout). The look-ups go to a
`socket.getaddrinfo` stand-in: one that hangs (a DNS server that does not answer), one that answers a name with
loopback addresses.
"""

import json
import socket
import threading
import time
from typing import Any

import pytest

from serving import models, tf_serving_backend
from tests import loopback_http, tf_serving_fixtures

BODY = json.dumps({'model_version_status': [{'version': '1', 'state': 'AVAILABLE'}]}).encode()[:40]
CHUNK_BYTES, CHUNK_PAUSE_S = 4, 0.2


class DribblingServer:
  """Answers one connection at a time with headers at once, then `body` in `CHUNK_BYTES` every `CHUNK_PAUSE_S`."""

  def __init__(self, body: bytes) -> None:
    self.body = body
    self.listener = socket.create_server(('127.0.0.1', 0))
    self.url = f'http://127.0.0.1:{self.listener.getsockname()[1]}'
    self.closed = threading.Event()
    threading.Thread(target=self._serve, daemon=True).start()

  def _serve(self) -> None:
    while not self.closed.is_set():
      try:
        connection, _ = self.listener.accept()
      except OSError:  # the listener was closed: the test is over
        return
      with connection:
        connection.recv(65536)  # the request (small, one segment on loopback)
        try:
          connection.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n'
                             b'Content-Length: %d\r\n\r\n' % len(self.body))
          for start in range(0, len(self.body), CHUNK_BYTES):
            time.sleep(CHUNK_PAUSE_S)
            connection.sendall(self.body[start:start + CHUNK_BYTES])
        except OSError:  # the client gave up and closed the connection
          pass

  def close(self) -> None:
    self.closed.set()
    self.listener.close()


def test_the_body_is_valid_json_that_takes_about_two_seconds_to_send():
  assert len(BODY) == 40 and (len(BODY) // CHUNK_BYTES) * CHUNK_PAUSE_S == pytest.approx(2.0)
  assert BODY.startswith(b'{"model_version_status"')


def test_a_dribbled_answer_times_out_at_the_calls_deadline():
  server = DribblingServer(BODY + b'}')  # any bytes: the call must end before the body is complete
  try:
    client = tf_serving_backend.TFServingClient(server.url, timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(tf_serving_backend.TFServingError) as error:
      client.model_status(models.RETRIEVAL_MODEL, 1)
    elapsed = time.monotonic() - started
  finally:
    server.close()
  # Before, each read waited at most 0.5 s and got its 4 bytes after 0.2 s: the call took the whole 2 s.
  assert 0.45 <= elapsed < 1.0
  assert str(error.value).startswith('TF Serving GET /v1/models/retrieval/versions/1 at '
                                     f'{client.address} did not answer: TimeoutError')
  # The same error as any timeout: retryable, no status (the service answers 503).
  assert error.value.retryable and error.value.status is None


def test_a_host_name_look_up_that_hangs_times_out_at_the_calls_deadline(monkeypatch):
  # Before, socket.create_connection's getaddrinfo was not bounded: a DNS server that did not answer held every
  # call (and /healthz, whose probe has 1 s) for as long as the resolver waited, e.g. 'tf-serving' tried under each
  # Kubernetes search domain.
  released = threading.Event()
  real_getaddrinfo = socket.getaddrinfo

  def hanging(host: str, *args: Any, **kwargs: Any) -> Any:
    if host != 'tf-serving':
      return real_getaddrinfo(host, *args, **kwargs)
    released.wait(30.0)  # far longer than the deadline; released when the test ends
    raise socket.gaierror(socket.EAI_AGAIN, 'Temporary failure in name resolution')

  monkeypatch.setattr(socket, 'getaddrinfo', hanging)
  client = tf_serving_backend.TFServingClient('http://tf-serving:8501', timeout_s=0.5)
  try:
    started = time.monotonic()
    with pytest.raises(tf_serving_backend.TFServingError) as error:
      client.model_status(models.RETRIEVAL_MODEL, 1)
    elapsed = time.monotonic() - started
    reason = tf_serving_backend.TFServingModels(client, models.ServedVersions(1, None)).unavailable_reason()
  finally:
    released.set()
  assert elapsed < 0.5 + 2.0  # the deadline and a generous margin, not the 30 s the look-up would have taken
  assert str(error.value) == ('TF Serving GET /v1/models/retrieval/versions/1 at tf-serving:8501 did not answer: '
                              "TimeoutError: looking up host 'tf-serving' did not end within the call's deadline "
                              'of 0.5 s')
  assert error.value.retryable and error.value.status is None  # as any timeout: the service answers 503
  assert reason == str(error.value)  # /healthz: unavailable, saying why


class AvailableStatus(tf_serving_fixtures.RestHandler):

  def do_GET(self) -> None:  # pylint: disable=invalid-name
    self.answer_json(200, {'model_version_status': [{'version': '1', 'state': 'AVAILABLE'}]})


def test_a_host_name_is_looked_up_and_its_addresses_tried_in_turn(monkeypatch):
  with socket.socket() as probe:  # a port nothing listens on: the first address refuses
    probe.bind(('127.0.0.1', 0))
    refusing = probe.getsockname()[1]
  with loopback_http.serving(AvailableStatus) as server:
    port = int(server.url.rsplit(':', 1)[1])
    looked_up = []

    def tf_serving_on_loopback(host: str, *args: Any, **kwargs: Any) -> Any:
      looked_up.append(host)
      return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, '', ('127.0.0.1', refusing)),
              (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, '', ('127.0.0.1', port))]

    monkeypatch.setattr(socket, 'getaddrinfo', tf_serving_on_loopback)
    client = tf_serving_backend.TFServingClient('http://tf-serving:8501', timeout_s=2.0)
    assert client.model_status(models.RETRIEVAL_MODEL, 1) == ('AVAILABLE', '')
    assert client.model_state(models.RETRIEVAL_MODEL, 1) == 'AVAILABLE'  # on the kept-alive connection
  assert looked_up == ['tf-serving']
