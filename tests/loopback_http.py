"""HTTP servers on a free loopback port for the tests that talk to one (TF Serving stand-ins, download sources,
a stub recommender service)."""

import contextlib
import http.server
import threading
from typing import Callable, Iterator


class LoopbackServer:
  """A threaded HTTP server on a free loopback port (`url`), serving until `close()`."""

  def _start(self, handler: Callable[..., http.server.BaseHTTPRequestHandler]) -> None:
    self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    self.url = f'http://127.0.0.1:{self.server.server_address[1]}'
    threading.Thread(target=self.server.serve_forever, daemon=True).start()

  def close(self) -> None:
    self.server.shutdown()
    self.server.server_close()


@contextlib.contextmanager
def serving(handler: Callable[..., http.server.BaseHTTPRequestHandler]) -> Iterator[LoopbackServer]:
  """A LoopbackServer answering with `handler` (a request handler class, or a partial of one), closed on exit."""
  server = LoopbackServer()
  server._start(handler)  # pylint: disable=protected-access
  try:
    yield server
  finally:
    server.close()
