"""Stand-ins for TF Serving's REST API on loopback, shared by the serving tests.

`LoopbackServer` (tests/loopback_http.py) runs a threaded HTTP server on a free loopback port; `RestHandler` is the
base of the request handlers the tests give it: HTTP/1.1 answers with a Content-Length, the (model, version) a TF
Serving URL names, and no request log on stderr.
"""

import http.server
import json
from typing import Any, Tuple

from tests.loopback_http import LoopbackServer  # pylint: disable=unused-import  (the stand-ins' base)


class RestHandler(http.server.BaseHTTPRequestHandler):
  """A quiet HTTP/1.1 handler with the answer helpers a TF Serving stand-in needs."""

  protocol_version = 'HTTP/1.1'

  def answer(self, status: int, payload: bytes) -> None:
    """Sends `payload` as the whole body of a `status` answer."""
    self.send_response(status)
    self.send_header('Content-Length', str(len(payload)))
    self.end_headers()
    self.wfile.write(payload)

  def answer_json(self, status: int, body: Any) -> None:
    """Sends `body` as JSON."""
    self.answer(status, json.dumps(body).encode())

  def model_version(self) -> Tuple[str, int]:
    """(model name, version) of a `/v1/models/<name>/versions/<v>[:predict]` request."""
    parts = self.path.split(':')[0].split('/')
    return parts[3], int(parts[5])

  def read_body(self) -> bytes:
    """The request body (Content-Length bytes)."""
    return self.rfile.read(int(self.headers['Content-Length']))

  def log_message(self, *args: Any) -> None:  # pylint: disable=arguments-differ
    pass
