"""How the HTTP service and its flags treat failures: which errors are the client's (400) and which are the
server's (503, 502, 500), idle and vanished clients, and flags refused before any model loads.

Over a fake recommender and registry (no model is loaded): each test says what `recommend` raises.
"""

import contextlib
import http.client
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

import pytest

from serving import app, backend_flags, models, tf_serving_backend
from serving import requests as requests_lib
from tests import tf_serving_fixtures
from tests.serving_http_test import get_json


class FakeBackend:
  """Only tells /healthz whether it can answer: `reason` (None: it can)."""

  def __init__(self) -> None:
    self.reason: Optional[str] = None

  def unavailable_reason(self) -> Optional[str]:
    return self.reason


class FakeRegistry:
  """Serves versions (1, 1) to /healthz, over one FakeBackend."""

  def __init__(self) -> None:
    self.backend = FakeBackend()

  def current(self) -> Any:
    return models.ModelBundle(versions=models.ServedVersions(1, 1), backend=self.backend, assets=None, encoder=None)


class FakeRecommendations:
  def to_json_dict(self) -> Dict[str, Any]:
    return {'items': ['i1']}


class FakeRecommender:
  """`recommend` runs `behaviour()` (which may raise or block) and answers one item."""

  def __init__(self) -> None:
    self.behaviour: Callable[[], None] = lambda: None

  def recommend(self, user_id: str, **unused: Any) -> FakeRecommendations:
    del user_id, unused
    self.behaviour()
    return FakeRecommendations()


@contextlib.contextmanager
def running_server(registry: Any, recommender: Optional[FakeRecommender] = None) -> Iterator[int]:
  """Serves `recommender` (a new FakeRecommender by default) and `registry` on a free loopback port; yields it."""
  server = app.make_server(recommender or FakeRecommender(), registry, host=app.LOOPBACK_HOST, port=0)
  threading.Thread(target=server.serve_forever, daemon=True).start()
  try:
    yield server.server_address[1]
  finally:
    server.shutdown()
    server.server_close()


@pytest.fixture()
def service(monkeypatch) -> Iterator[Tuple[FakeRecommender, int]]:
  monkeypatch.setattr(app, 'CONNECTION_TIMEOUT_S', 0.5)
  fake = FakeRecommender()
  with running_server(FakeRegistry(), fake) as port:
    yield fake, port


def _raise(error: Exception) -> Callable[[], None]:
  def behaviour() -> None:
    raise error
  return behaviour


@pytest.mark.parametrize('error, status', [
    (requests_lib.InvalidRequestError('k=0 must be an integer from 1 to 100.'), 400),
    (models.BackendError('TF Serving answered 503', retryable=True), 503),
    # A fault a retry will not fix (before: 503, which tells the client to retry): 502 Bad Gateway.
    (models.BackendError('TF Serving answered 400: Could not parse example input', retryable=False), 502),
    (models.ModelsNotReadyError('No model loaded yet'), 503),
    # A ValueError from the service's own code is not the client's fault.
    (ValueError('operands could not be broadcast together'), 500),
])
def test_only_an_invalid_request_is_the_clients_error(service, error, status):
  fake, port = service
  fake.behaviour = _raise(error)
  code, body = get_json(port, '/v1/recommendations?user_id=u1&k=3')
  assert code == status
  assert str(error) in body['error']


def test_health_is_503_with_the_reason_while_the_backend_cannot_answer():
  registry = FakeRegistry()
  assert app.health_answer(registry.current()) == (200, {
      'status': 'ok', 'model_versions': {'retrieval': 1, 'ranking': 1}, 'missing_models': []})
  registry.backend.reason = 'TF Serving GET /v1/models/retrieval/versions/1 at tfs:8501 did not answer'
  degraded = models.ModelBundle(versions=models.ServedVersions(7, None), backend=registry.backend, assets=None,
                                encoder=None)
  assert app.health_answer(degraded) == (503, {
      'status': 'unavailable', 'model_versions': {'retrieval': 7, 'ranking': None}, 'missing_models': ['ranking'],
      'error': 'TF Serving GET /v1/models/retrieval/versions/1 at tfs:8501 did not answer'})


def test_each_change_of_health_is_logged_once(caplog):
  registry = FakeRegistry()
  reason = 'TF Serving GET /v1/models/retrieval/versions/1 at tfs:8501 did not answer'
  with running_server(registry) as port:
    with caplog.at_level('INFO', logger='absl'):  # absl's own level: tf.saved_model.save sets it to WARNING
      # ok, ok, unavailable, unavailable (another reason), ok: three changes, counting the first answer.
      for backend_reason, status in ((None, 200), (None, 200), (reason, 503), ('another reason', 503), (None, 200)):
        registry.backend.reason = backend_reason
        assert get_json(port, '/healthz')[0] == status
  versions = '{"ranking": 1, "retrieval": 1}'
  assert [(r.levelname, r.getMessage()) for r in caplog.records if r.getMessage().startswith('Health:')] == [
      ('INFO', f'Health: ok, versions {versions} (was not checked before).'),
      ('WARNING', f'Health: unavailable, versions {versions} (was ok, versions {versions}): {reason}'),
      ('INFO', f'Health: ok, versions {versions} (was unavailable, versions {versions}).'),
  ]


def test_concurrent_health_changes_are_logged_in_the_order_they_are_recorded(monkeypatch):
  # Check A records 'unavailable' and is still writing its WARNING when check B records the recovery. B's line
  # must come after A's: the last line logged is the state kept ('ok'). Logged outside the lock, B logged first
  # and the log ended with 'unavailable' while the service was ok, with no further line until another change.
  lines = []
  a_logging, a_may_finish = threading.Event(), threading.Event()

  def slow_warning(message: str, *args: Any) -> None:
    a_logging.set()
    a_may_finish.wait(5)
    lines.append(('WARNING', message % args))

  monkeypatch.setattr(app.logging, 'warning', slow_warning)
  monkeypatch.setattr(app.logging, 'info', lambda message, *args: lines.append(('INFO', message % args)))
  health_log = app.HealthChangeLog()
  versions = {'retrieval': 1, 'ranking': 1}
  ok = {'status': 'ok', 'model_versions': versions, 'missing_models': []}
  health_log.record(ok, health_log.begin())
  a, b = health_log.begin(), health_log.begin()  # A began first, so B's answer is the newer one
  check_a = threading.Thread(target=health_log.record,
                             args=({**ok, 'status': 'unavailable', 'error': 'down'}, a))
  check_b = threading.Thread(target=health_log.record, args=(ok, b))
  check_a.start()
  assert a_logging.wait(5)
  check_b.start()
  check_b.join(0.3)  # B waits for A's line (before the fix it logged at once)
  a_may_finish.set()
  check_a.join(5)
  check_b.join(5)
  text = '{"ranking": 1, "retrieval": 1}'
  assert lines == [
      ('INFO', f'Health: ok, versions {text} (was not checked before).'),
      ('WARNING', f'Health: unavailable, versions {text} (was ok, versions {text}): down'),
      ('INFO', f'Health: ok, versions {text} (was unavailable, versions {text}).'),
  ]


class HangingOnceBackend(FakeBackend):
  """Its second health probe hangs until `release` is set, then finds TF Serving gone; every other finds it ok."""

  def __init__(self) -> None:
    super().__init__()
    self.probes = 0
    self.hanging, self.release = threading.Event(), threading.Event()

  def unavailable_reason(self) -> Optional[str]:
    self.probes += 1
    if self.probes != 2:
      return None
    self.hanging.set()
    self.release.wait(5)
    return 'TF Serving GET /v1/models/retrieval/versions/1 at tfs:8501 did not answer: TimeoutError'


def test_a_slow_checks_older_answer_does_not_replace_a_later_checks(caplog):
  # Check A's probe hangs; check B, begun after it, finds TF Serving ok; then A answers 503 (its own client gets
  # it) and check C finds ok. B's answer is the newer news: nothing changes after the first answer. Before, A's
  # answer was recorded last: a WARNING 'unavailable (was ok)' after B had found it ok, then C's 'recovery'.
  registry = FakeRegistry()
  registry.backend = HangingOnceBackend()
  answers = {}
  with running_server(registry) as port:
    with caplog.at_level('INFO', logger='absl'):  # absl's own level: tf.saved_model.save sets it to WARNING
      assert get_json(port, '/healthz')[0] == 200
      check_a = threading.Thread(target=lambda: answers.update(a=get_json(port, '/healthz')[0]))
      check_a.start()
      assert registry.backend.hanging.wait(5)
      answers['b'] = get_json(port, '/healthz')[0]
      registry.backend.release.set()
      check_a.join(10)
      answers['c'] = get_json(port, '/healthz')[0]
  assert answers == {'a': 503, 'b': 200, 'c': 200}
  versions = '{"ranking": 1, "retrieval": 1}'
  assert [(r.levelname, r.getMessage()) for r in caplog.records if r.getMessage().startswith('Health:')] == [
      ('INFO', f'Health: ok, versions {versions} (was not checked before).')]


def test_an_idle_connection_is_closed_after_the_timeout(service):
  _, port = service
  with socket.create_connection((app.LOOPBACK_HOST, port), timeout=10) as idle:
    started = time.monotonic()
    assert idle.recv(1024) == b''  # the server closed it without an answer: it sent nothing
    waited = time.monotonic() - started
  assert 0.4 <= waited < 5.0


def test_a_client_that_leaves_before_the_answer_is_no_server_error(service, caplog):
  fake, port = service
  left = threading.Event()
  fake.behaviour = lambda: left.wait(10) and time.sleep(0.2)  # answers once the client has gone
  client = socket.create_connection((app.LOOPBACK_HOST, port), timeout=10)
  client.sendall(b'GET /v1/recommendations?user_id=u1 HTTP/1.1\r\nHost: x\r\n\r\n')
  time.sleep(0.2)
  client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))  # close with a reset
  client.close()
  with caplog.at_level('INFO', logger='absl'):  # absl's own level: tf.saved_model.save sets it to WARNING
    left.set()
    deadline = time.monotonic() + 10
    while not any('closed the connection before the 200 answer' in r.getMessage() for r in caplog.records):
      assert time.monotonic() < deadline, 'the vanished client was not noticed'
      time.sleep(0.05)
    fake.behaviour = lambda: None
    assert get_json(port, '/healthz')[0] == 200  # still serving
  assert not [r for r in caplog.records if r.levelname in ('ERROR', 'CRITICAL')]


@pytest.mark.parametrize('flags, message', [
    (['--tf-serving-url', 'https://127.0.0.1:8501'], 'is not http://HOST:PORT'),
    (['--tf-serving-url', 'http://127.0.0.1:port'], 'is not http://HOST:PORT'),
    (['--tf-serving-url', 'http://[::1:8501'], 'is not http://HOST:PORT'),  # urlparse raises: was a traceback
    (['--poll-interval-s', '0'], 'above 0'),
    (['--poll-interval-s', '-1'], 'above 0'),
    (['--poll-interval-s', 'nan'], 'above 0'),
    (['--poll-interval-s', 'soon'], 'is not a number of seconds'),
    (['--shutdown-delay-s', '-1'], 'from 0 to 20'),
    (['--shutdown-delay-s', '21'], 'from 0 to 20'),
    (['--shutdown-delay-s', 'nan'], 'from 0 to 20'),
    (['--shutdown-delay-s', 'soon'], 'is not a number of seconds'),
    (['--port', '70000'], 'is not a TCP port'),
    (['--port', 'http'], 'is not a TCP port'),
])
def test_bad_flags_are_refused_by_the_parser(flags, message, capsys):
  with pytest.raises(SystemExit) as exit_info:
    app._parser().parse_args(['--serving-dir', '/nowhere', *flags])  # pylint: disable=protected-access
  assert exit_info.value.code == 2
  assert message in capsys.readouterr().err


def test_flag_values_that_pass_are_kept():
  args = app._parser().parse_args(['--serving-dir', '/s', '--tf-serving-url', 'http://tfs:8501',  # pylint: disable=protected-access
                                   '--poll-interval-s', '0.5', '--port', '0'])
  assert (args.tf_serving_url, args.poll_interval_s, args.port) == ('http://tfs:8501', 0.5, 0)
  assert args.shutdown_delay_s == 0.0  # the default: the drain starts at the signal
  assert app._parser().parse_args(['--serving-dir', '/s', '--shutdown-delay-s', '5']).shutdown_delay_s == 5.0  # pylint: disable=protected-access
  assert backend_flags.positive_seconds('5') == 5.0


def test_a_port_in_use_is_refused_before_any_model_loads(tmp_path, monkeypatch, capsys):
  loads = []

  def loader(serving_dir: str, versions: models.ServedVersions) -> Optional[models.ModelBundle]:
    loads.append(versions)
    raise AssertionError('no model should load before the port is bound')

  monkeypatch.setattr(models, 'load_in_process', loader)
  for model in (models.RETRIEVAL_MODEL, models.RANKING_MODEL):
    (tmp_path / model / '1').mkdir(parents=True)
    (tmp_path / model / '1' / models.SAVED_MODEL_FILE).write_bytes(b'')
  with socket.socket() as taken:
    taken.bind((app.LOOPBACK_HOST, 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    with pytest.raises(SystemExit) as exit_info:
      app.main(['--serving-dir', str(tmp_path), '--port', str(port)])
  assert exit_info.value.code == 2
  assert f'cannot listen on --host 127.0.0.1 --port {port}' in capsys.readouterr().err
  assert not loads


def test_the_service_answers_503_while_its_first_versions_load(tmp_path, monkeypatch):
  # Before, main() loaded the first versions before serving: the port was bound but no request (not /healthz
  # either) got an answer until the load ended; now they get 503 saying the versions are loading.
  from tests import serving_degraded_test as degraded  # pylint: disable=g-import-not-at-top
  degraded.mark_complete(str(tmp_path), models.RETRIEVAL_MODEL, 1)
  loading, release, fake_loader = threading.Event(), threading.Event(), degraded.FakeLoader()

  def slow_loader(serving_dir: str, versions: models.ServedVersions) -> models.ModelBundle:
    loading.set()
    assert release.wait(30), 'the test never released the load'
    return fake_loader(serving_dir, versions)

  monkeypatch.setattr(models, 'load_in_process', slow_loader)
  servers = []
  make_server = app.make_server
  monkeypatch.setattr(app, 'make_server', lambda *args: servers.append(make_server(*args)) or servers[-1])
  main = threading.Thread(target=lambda: servers.append(app.main(['--serving-dir', str(tmp_path), '--port', '0'])),
                          daemon=True)
  main.start()
  try:
    deadline = time.monotonic() + 30
    while not servers:
      assert time.monotonic() < deadline, 'the server was never made'
      time.sleep(0.01)
    port = servers[0].server_address[1]
    # Once the load has begun (before it, the polling thread may not have looked at the directory yet).
    assert loading.wait(30), 'the first versions never began to load'
    connection = http.client.HTTPConnection(app.LOOPBACK_HOST, port, timeout=5)  # before: timed out
    try:
      connection.request('GET', '/healthz')
      response = connection.getresponse()
      status, body = response.status, json.loads(response.read())
    finally:
      connection.close()
    assert (status, body['status']) == (503, app.HEALTH_UNAVAILABLE)
    assert body['error'] == (f'No model loaded yet from {tmp_path}: versions '
                             'ServedVersions(retrieval=1, ranking=None) are loading')
    release.set()
    while get_json(port, '/healthz')[0] != 200:
      assert time.monotonic() < deadline, 'the loaded versions were never served'
      time.sleep(0.01)
    assert get_json(port, '/healthz')[1]['status'] == app.HEALTH_DEGRADED
  finally:
    release.set()
    if servers:
      servers[0].shutdown()
    main.join(30)
  assert servers[1:] == [0]  # main() returned 0


def test_requests_in_flight_are_counted_and_waited_for():
  in_flight = app.RequestsInFlight()
  assert (in_flight.count, in_flight.wait_idle(0)) == (0, True)
  with in_flight:
    with in_flight:
      assert in_flight.count == 2
    assert (in_flight.count, in_flight.wait_idle(0.05)) == (1, False)  # one still in flight after 50 ms
  assert (in_flight.count, in_flight.wait_idle(0)) == (0, True)


class HeldRecommender(FakeRecommender):
  """Holds each request in `recommend` until `release` is set; `answering` is set once one is held."""

  def __init__(self) -> None:
    super().__init__()
    self.answering, self.release = threading.Event(), threading.Event()
    self.behaviour = self._hold

  def _hold(self) -> None:
    self.answering.set()
    assert self.release.wait(30), 'the test never released the request'


def get_answer(port: int, path: str) -> Tuple[int, Optional[str], Dict[str, Any]]:
  """GET `path` over a connection of its own: (status, the answer's Connection header, decoded JSON body)."""
  connection = http.client.HTTPConnection(app.LOOPBACK_HOST, port, timeout=30)
  try:
    connection.request('GET', path)
    response = connection.getresponse()
    return response.status, response.getheader('Connection'), json.loads(response.read())
  finally:
    connection.close()


def test_a_shutdown_can_wait_for_a_request_in_flight():
  fake = HeldRecommender()
  server = app.make_server(fake, FakeRegistry(), host=app.LOOPBACK_HOST, port=0)
  threading.Thread(target=server.serve_forever, daemon=True).start()
  answers = []
  client = threading.Thread(
      target=lambda: answers.append(get_json(server.server_address[1], '/v1/recommendations?user_id=u1')))
  client.start()
  try:
    assert fake.answering.wait(30)
    server.shutdown()  # what main() does on SIGTERM: no new connections are taken ...
    assert server.requests_in_flight.count == 1
    assert not app.drain(server, 0.05)
    fake.release.set()
    assert app.drain(server, 30)  # ... and the one in flight is answered
    client.join(30)
    assert answers == [(200, {'items': ['i1']})]
  finally:
    fake.release.set()
    server.server_close()


def test_a_drain_answers_each_kept_alive_connection_once_more_then_closes_it():
  # Before, a connection kept alive across the start of the drain was still answered with keep-alive: its client
  # could send request after request (each one in flight), keeping the drain from going idle. Now the request it
  # sends during the drain is answered 200 (it was accepted; no 503) with Connection: close, and the server closes
  # the connection; so is the answer to the request in flight when the drain started.
  fake = HeldRecommender()
  server = app.make_server(fake, FakeRegistry(), host=app.LOOPBACK_HOST, port=0)
  threading.Thread(target=server.serve_forever, daemon=True).start()
  port = server.server_address[1]
  kept = http.client.HTTPConnection(app.LOOPBACK_HOST, port, timeout=10)
  held_answers, drained = [], []
  held = threading.Thread(target=lambda: held_answers.append(get_answer(port, '/v1/recommendations?user_id=u1')))
  drainer = threading.Thread(target=lambda: drained.append(app.drain(server, 30)))
  peer = None
  try:
    kept.request('GET', '/healthz')
    before = kept.getresponse()
    assert (before.status, before.getheader('Connection'), before.will_close) == (200, None, False)  # kept alive
    assert json.loads(before.read())['status'] == 'ok'
    sock = kept.sock
    peer = sock.dup()  # the same connection, still open once http.client closes its socket
    peer.settimeout(5)
    held.start()  # a request in flight on a connection of its own holds the drain open
    assert fake.answering.wait(30)
    server.shutdown()  # main() leaves serve_forever ...
    drainer.start()
    assert server.draining.wait(5)  # ... and drains
    with pytest.raises(ConnectionRefusedError):  # a new connection is refused at once, not left in the backlog
      socket.create_connection((app.LOOPBACK_HOST, port), timeout=5).close()
    assert kept.sock is sock  # http.client would reconnect silently without one: this is the kept-alive connection
    kept.request('GET', '/healthz')
    after = kept.getresponse()
    # A probe during the shutdown is told so (before, 200 'ok'): the instance leaves the rotation.
    assert (after.status, after.getheader('Connection'), after.will_close) == (503, 'close', True)
    assert json.loads(after.read())['status'] == 'shutting down'
    assert peer.recv(1) == b''  # the server closed the connection (a timeout here: it kept it open)
    assert (drained, server.requests_in_flight.count) == ([], 1)  # the held request only
    fake.release.set()
    drainer.join(30)
    held.join(30)
    assert drained == [True]
    assert held_answers == [(200, 'close', {'items': ['i1']})]
  finally:
    fake.release.set()
    kept.close()
    if peer is not None:
      peer.close()
    server.server_close()


def test_the_shutdown_delay_answers_new_connections_with_close_and_healthz_503_then_the_drain_refuses_them():
  # Kubernetes keeps routing new connections to a terminating pod until its endpoint removal has propagated;
  # without the delay the closed listening socket refuses them at once.
  server = app.make_server(FakeRecommender(), FakeRegistry(), host=app.LOOPBACK_HOST, port=0)
  threading.Thread(target=server.serve_forever, daemon=True).start()
  port = server.server_address[1]
  ended = threading.Event()
  delay = threading.Thread(target=lambda: app.keep_answering(server, 30, ended))
  try:
    assert get_answer(port, '/healthz')[0] == 200
    server.shutdown()  # main() leaves serve_forever on the signal ...
    delay.start()  # ... and keeps answering for the delay
    assert server.draining.wait(5)
    assert get_answer(port, '/v1/recommendations?user_id=u1') == (200, 'close', {'items': ['i1']})
    assert get_answer(port, '/healthz') == (
        503, 'close', {'status': 'shutting down',
                       'error': 'The service is shutting down; send requests to another instance.'})
    ended.set()
    delay.join(30)
    assert not delay.is_alive()  # serve_forever has stopped again
    assert app.drain(server, 5)
    with pytest.raises(ConnectionRefusedError):
      socket.create_connection((app.LOOPBACK_HOST, port), timeout=5).close()
  finally:
    ended.set()
    server.server_close()


# `python -m serving.app` with Python's own SIGINT handler (KeyboardInterrupt), as under a terminal. A process started
# with SIGINT ignored (a shell script's `service &`, a CI runner, nohup) inherits the ignoring, and Python then keeps
# it: before, that made the Ctrl-C test below fail under such a runner (the delay ran its 20 s; no "Interrupted").
SERVICE_MAIN = ('import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); '
                "runpy.run_module('serving.app', run_name='__main__', alter_sys=True)")


@contextlib.contextmanager
def service_process(serving_dir: str, *flags: str) -> Iterator[subprocess.Popen]:
  """`python -m serving.app` on a free port with its log (absl: stderr) piped, killed on leaving if still running."""
  process = subprocess.Popen(
      [sys.executable, '-c', SERVICE_MAIN, '--serving-dir', serving_dir, '--port', '0', *flags],
      stderr=subprocess.PIPE, text=True, env={**os.environ, 'PYTHONUNBUFFERED': '1'})
  try:
    yield process
  finally:
    if process.poll() is None:
      process.kill()
      process.wait()


def read_log_until(process: subprocess.Popen, text: str) -> str:
  """Reads the process's log up to the first line holding `text`; returns that line (fails if the log ends)."""
  logged = []
  for line in process.stderr:
    logged.append(line)
    if text in line:
      return line
  raise AssertionError(f'{text!r} never logged: {"".join(logged)[-2000:]}')


def rest_of_log(process: subprocess.Popen, timeout_s: float = 60.0) -> str:
  """Reads the process's log to its end and waits for the process to exit; returns that text.

  Unlike `communicate`, which reads the pipe's file descriptor itself, this reads through `process.stderr`, so the
  lines that `read_log_until` has already buffered are kept.

  Raises:
    AssertionError: if the process has not closed its log within `timeout_s` seconds (`service_process` kills it).
  """
  rest = []
  reader = threading.Thread(target=lambda: rest.append(process.stderr.read()), name='log-reader', daemon=True)
  reader.start()
  reader.join(timeout_s)
  if reader.is_alive():
    raise AssertionError(f'the service has not exited {timeout_s:g} s after the signal')
  process.wait(timeout_s)
  return rest[0]


def test_sigterm_shuts_the_service_down_with_exit_code_0(tmp_path):
  # Before, SIGTERM (docker stop, Kubernetes) killed the process at once: exit code -15, requests in flight cut.
  # The signal follows the 'Serving on' line at once. Before, that line was logged ahead of the handler (a signal
  # just after it: exit -15), and a signal landing inside the logging call was swallowed by logging (a hang).
  with service_process(str(tmp_path)) as process:
    read_log_until(process, 'Serving on http://127.0.0.1:')
    process.send_signal(signal.SIGTERM)
    rest = rest_of_log(process)
  assert process.returncode == 0, rest[-2000:]
  assert 'Terminated; shutting down once the 0 request(s) in flight are answered (at most 10 s).' in rest


def test_sigterm_with_a_shutdown_delay_answers_during_it_then_exits_0(tmp_path):
  with service_process(str(tmp_path), '--shutdown-delay-s', '20') as process:
    serving_line = read_log_until(process, 'Serving on http://127.0.0.1:')
    port = int(serving_line.split('http://127.0.0.1:')[1].split('/')[0])
    process.send_signal(signal.SIGTERM)
    assert 'Terminated; answering new connections for 20 s more' in read_log_until(process, '(--shutdown-delay-s)')
    # A new connection during the delay is answered; nothing is loaded (an empty serving dir): 503 shutting down.
    assert get_answer(port, '/healthz')[:2] == (503, 'close')
    process.send_signal(signal.SIGINT)  # a Ctrl-C ends the delay at once (a second SIGTERM would kill)
    rest = rest_of_log(process)
  assert process.returncode == 0, rest[-2000:]
  assert 'Interrupted again: the shutdown delay ends now.' in rest
  assert 'shutting down once the 0 request(s) in flight are answered' in rest


class FixedRecommender(FakeRecommender):
  """`recommend` answers `body` (a `Recommendations.to_json_dict()`)."""

  def __init__(self, body: Dict[str, Any]) -> None:
    super().__init__()
    self.body = body

  def recommend(self, user_id: str, **unused: Any) -> Any:
    del user_id, unused
    answer = FakeRecommendations()
    answer.to_json_dict = lambda: self.body
    return answer


def _refuse_constant(token: str) -> None:
  raise AssertionError(f'invalid JSON token {token}')


def test_a_nan_or_infinite_score_is_a_500_in_valid_json_naming_the_fields(caplog):
  # The last-resort check, for a non-finite number that reaches the answer (serving.recommender refuses a
  # ranking model's NaN/inf ratings as a 502 itself): before, the answer was 200 with the tokens NaN and
  # Infinity in its body, which strict JSON parsers (JavaScript's JSON.parse, Go, Java) refuse.
  nan, inf = float('nan'), float('inf')
  body = {'user_id': 'u1', 'items': [{'item_id': 'i1', 'score': nan, 'predicted_rating': nan},
                                     {'item_id': 'i2', 'score': 0.5, 'predicted_rating': inf}]}
  with running_server(FakeRegistry(), FixedRecommender(body)) as port:
    connection = http.client.HTTPConnection(app.LOOPBACK_HOST, port, timeout=30)
    try:
      with caplog.at_level('INFO', logger='absl'):
        connection.request('GET', '/v1/recommendations?user_id=u1&k=2')
        response = connection.getresponse()
        status, raw = response.status, response.read()
    finally:
      connection.close()
  assert status == 500
  assert json.loads(raw, parse_constant=_refuse_constant) == {'error': (
      'NonFiniteAnswerError: The answer holds numbers that are not finite, which JSON cannot carry: '
      'items[0].score=nan, items[0].predicted_rating=nan, items[1].predicted_rating=inf; a served model predicts '
      'NaN or inf (check its export and its inputs).')}
  assert [r.levelname for r in caplog.records if r.getMessage().startswith('Request /v1/recommendations')] == [
      'ERROR']  # logged with its traceback


def test_finite_answers_are_unchanged_by_the_strict_json():
  assert app.json_payload({'items': [{'item_id': 'é', 'score': 1.5}]}) == (
      '{"items": [{"item_id": "é", "score": 1.5}]}'.encode('utf-8'))


@pytest.mark.parametrize('k_text', ['99999999999999999999', 'ten', '1.5'])
def test_a_k_that_is_not_an_int64_integer_is_refused_saying_so(k_text):
  # Before, k=99999999999999999999 (an integer, beyond int64) was told it 'is not an integer'.
  with pytest.raises(app.BadRequestError) as e:
    app.parse_recommendation_query(f'user_id=u1&k={k_text}')
  assert str(e.value) == f"k='{k_text}' is not an integer within int64; send e.g. k=10."


def test_a_client_resetting_its_idle_kept_alive_connection_is_no_server_error(service, caplog, capfd):
  # Before, the reset raised ConnectionResetError out of the handler's wait for the next request: socketserver
  # printed 'Exception occurred during processing of request' and a traceback to stderr, outside the log.
  _, port = service
  with caplog.at_level('INFO', logger='absl'):  # absl's own level: tf.saved_model.save sets it to WARNING
    client = socket.create_connection((app.LOOPBACK_HOST, port), timeout=10)
    client.sendall(b'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
    assert client.recv(1024).startswith(b'HTTP/1.1 200 ')  # kept alive: the server waits for the next request
    time.sleep(0.1)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))  # close with a reset
    client.close()
    deadline = time.monotonic() + 5
    while not any('closed the connection between requests' in r.getMessage() for r in caplog.records):
      assert time.monotonic() < deadline, 'the reset was not logged'
      time.sleep(0.05)
    assert get_json(port, '/healthz')[0] == 200  # still serving
  assert 'Traceback' not in capfd.readouterr().err
  assert not [r for r in caplog.records if r.levelname in ('ERROR', 'CRITICAL')]


class RecordingRecommender(FakeRecommender):
  """Answers one item and records each call's (user_id, k, exclude_seen, user_features)."""

  def __init__(self) -> None:
    super().__init__()
    self.calls = []

  def recommend(self, user_id: str, k: int = 10, exclude_seen: bool = True,
                user_features: Optional[Dict[str, str]] = None) -> FakeRecommendations:
    self.calls.append((user_id, k, exclude_seen, user_features))
    return FakeRecommendations()


def raw_get(port: int, target: str) -> Tuple[int, Dict[str, Any]]:
  """Sends `GET <target> HTTP/1.1` as written (http.client would not send every target form): (status, JSON)."""
  with socket.create_connection((app.LOOPBACK_HOST, port), timeout=30) as sock:
    sock.sendall(f'GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n'.encode('ascii'))
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, json.loads(response.read())


def test_a_request_target_in_absolute_form_is_answered_as_its_path_and_query():
  # RFC 9112 section 3.2.2: a server MUST accept the absolute form (what a client sends through a proxy). Before,
  # the whole URI was taken for the path: 404 "No endpoint 'http://127.0.0.1:.../v1/recommendations'".
  recording = RecordingRecommender()
  with running_server(FakeRegistry(), recording) as port:
    assert raw_get(port, f'http://127.0.0.1:{port}/v1/recommendations?user_id=u7&k=3&exclude_seen=false'
                   '&user_gender=F') == (200, {'items': ['i1']})
    assert recording.calls == [('u7', 3, False, {'user_gender': 'F'})]
    assert raw_get(port, 'HTTP://Some-Host/healthz') == (200, {'status': 'ok', 'missing_models': [],
                                                               'model_versions': {'retrieval': 1, 'ranking': 1}})
    # Unknown paths stay 404, named by their path (an absolute form without one is '/').
    assert raw_get(port, f'http://127.0.0.1:{port}/recommendations?user_id=1') == (
        404, {'error': "No endpoint '/recommendations'; use /v1/recommendations or /healthz."})
    assert raw_get(port, 'http://127.0.0.1') == (404, {'error': "No endpoint '/'; use /v1/recommendations or "
                                                                '/healthz.'})
    assert raw_get(port, 'ftp://127.0.0.1/healthz')[0] == 404  # not an http(s) URI: no endpoint of this service
    # An absolute form that is no URI is the client's error, not a traceback and a dropped connection.
    assert raw_get(port, 'http://[::1/healthz') == (400, {'error': (
        "The request target 'http://[::1/healthz' is not a URI (Invalid IPv6 URL); send e.g. GET "
        '/v1/recommendations?user_id=42.')})
    assert raw_get(port, '/v1/recommendations?user_id=u8') == (200, {'items': ['i1']})  # origin form unchanged
  assert [call[0] for call in recording.calls] == ['u7', 'u8']


@pytest.mark.parametrize('target, parts', [
    ('/v1/recommendations?user_id=42&k=10', ('/v1/recommendations', 'user_id=42&k=10')),
    ('/healthz', ('/healthz', '')),
    ('http://host:8080/v1/recommendations?user_id=42', ('/v1/recommendations', 'user_id=42')),
    ('https://host/healthz', ('/healthz', '')),
    ('http://host:8080', ('/', '')),
    ('http://host:8080?user_id=1', ('/', 'user_id=1')),
    ('ftp://host/healthz', ('ftp://host/healthz', '')),
    ('*', ('*', '')),
])
def test_request_target_parts(target, parts):
  assert app.request_target_parts(target) == parts


class ErrorStatusTFServing(tf_serving_fixtures.LoopbackServer):
  """Answers every predict with `status` and TF Serving's error body `{"error": message}`."""

  def __init__(self) -> None:
    self.status, self.message = 400, ''
    server = self

    class Handler(tf_serving_fixtures.RestHandler):

      def do_POST(self) -> None:  # pylint: disable=invalid-name
        self.read_body()
        self.answer_json(server.status, {'error': server.message})

    self._start(Handler)


def test_a_tf_serving_error_a_retry_will_not_fix_is_a_502_naming_it_and_unavailability_stays_503(caplog):
  # Before, every TF Serving error status reached the client as 503 Service Unavailable, which tells it (and
  # proxies) to retry: a 400 INVALID_ARGUMENT (the examples do not fit the served version) answers the same every
  # time. /healthz stays 200: TF Serving is up and serves the versions, so leaving the rotation would not help.
  tf_serving = ErrorStatusTFServing()
  client = tf_serving_backend.TFServingClient(tf_serving.url)
  calls_tf_serving = FakeRecommender()
  calls_tf_serving.behaviour = lambda: client.predict(models.RANKING_MODEL, 1, [b''])
  try:
    with running_server(FakeRegistry(), calls_tf_serving) as port:
      tf_serving.message = 'Could not parse example input, value: \'\''
      with caplog.at_level('INFO', logger='absl'):
        assert get_json(port, '/v1/recommendations?user_id=u1') == (502, {'error': (
            'TF Serving POST /v1/models/ranking/versions/1:predict answered 400: '
            '{"error": "Could not parse example input, value: \'\'"}')})
      assert [(r.levelname, r.getMessage()) for r in caplog.records if 'model backend failed' in r.getMessage()] == [
          ('ERROR', 'Request /v1/recommendations?user_id=u1: the model backend failed: TF Serving POST '
                    '/v1/models/ranking/versions/1:predict answered 400: '
                    '{"error": "Could not parse example input, value: \'\'"}')]
      assert get_json(port, '/healthz')[0] == 200
      tf_serving.status, tf_serving.message = 503, 'Servable is loading'  # UNAVAILABLE: retrying may help
      assert get_json(port, '/v1/recommendations?user_id=u1') == (503, {'status': 'unavailable', 'error': (
          'TF Serving POST /v1/models/ranking/versions/1:predict answered 503: {"error": "Servable is loading"}')})
  finally:
    tf_serving.close()
