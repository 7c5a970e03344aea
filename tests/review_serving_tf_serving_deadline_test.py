"""The TF Serving client's timeout is a deadline for the whole call, not for each socket operation: a server
dribbling its answer (4 bytes every 0.2 s) cannot hold a call past it.

Over a raw loopback socket server: it reads the request, then sends a 200 answer whose 40-byte JSON body comes 4
bytes at a time, 0.2 s apart (about 2 s in all, each wait well under the 0.5 s timeout).
"""

import json
import socket
import threading
import time

import pytest

from serving import models, tf_serving_backend

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
