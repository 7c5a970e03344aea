"""benchmarks/serving_http_load.py against a stub service on loopback: its flags, and the requests it sends."""

import http.server
import json
import os
import re
import sys
import urllib.parse

import pytest

from tests import loopback_http

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmarks'))
import serving_http_load  # pylint: disable=g-import-not-at-top,wrong-import-position


class _StubService(http.server.BaseHTTPRequestHandler):
  """Answers /healthz like serving.app and every recommendation request with 200; records the user ids asked."""
  protocol_version = 'HTTP/1.1'  # kept-alive connections, as the benchmark's clients expect
  wbufsize = 1 << 16  # headers and body in one write (flushed after each request), no Nagle/delayed-ACK stalls
  disable_nagle_algorithm = True
  user_ids = []

  def do_GET(self):  # pylint: disable=invalid-name
    url = urllib.parse.urlparse(self.path)
    if url.path == '/healthz':
      body = json.dumps({'model_versions': {'retrieval': 1, 'ranking': 1}}).encode()
    else:
      _StubService.user_ids.append(urllib.parse.parse_qs(url.query)['user_id'][0])
      body = b'{}'
    self.send_response(200)
    self.send_header('Content-Length', str(len(body)))
    self.end_headers()
    self.wfile.write(body)

  def log_message(self, *args):  # pylint: disable=arguments-differ
    pass


@pytest.fixture
def stub_url():
  _StubService.user_ids = []
  with loopback_http.serving(_StubService) as server:
    yield server.url


@pytest.mark.parametrize('flags, message', [
    (['--client-processes', '0'], 'argument --client-processes: 0 must be at least 1.'),
    (['--clients', '0'], 'argument --clients: 0 must be at least 1.'),
    (['--clients', 'x'], "argument --clients: 'x' is not an integer."),
    (['--duration-s', '-1'], 'argument --duration-s: -1 must be a number of seconds above 0 and at most '),
    (['--unknown-every', '-3'], 'argument --unknown-every: -3 must be >= 0.'),
])
def test_a_bad_count_is_a_usage_error_naming_the_flag(stub_url, flags, message, capsys):
  # Before, --client-processes 0 was a ZeroDivisionError traceback, and the others ran a load of no requests.
  with pytest.raises(SystemExit) as exit_info:
    serving_http_load.main(['--url', stub_url, '--user-ids', '1', *flags])
  assert exit_info.value.code == 2
  assert message in capsys.readouterr().err
  assert _StubService.user_ids == []


@pytest.mark.parametrize('url', ['127.0.0.1:8080', 'localhost:8080', 'https://127.0.0.1:8080', 'http://h:port'])
def test_a_url_that_is_not_http_with_a_host_is_a_usage_error(url, capsys):
  # Before, 'localhost:8080' (no scheme: no host) was a TypeError traceback from http.client.
  with pytest.raises(SystemExit) as exit_info:
    serving_http_load.main(['--url', url, '--user-ids', '1'])
  assert exit_info.value.code == 2
  assert f'--url {url}: not an http:// URL with a host and port; write e.g. http://127.0.0.1:8080.' in (
      capsys.readouterr().err)


@pytest.mark.parametrize('unknown_every, cycle', [
    # Every 3rd request asks for an unknown user (U); the known ones in turn, the list a whole number of 3.
    (3, ['1', '2', 'U', '3', '1', 'U']),
    (2, ['1', 'U', '2', 'U', '3', 'U']),
    (1, ['U']),  # every request
    (0, ['1', '2', '3']),  # never
])
def test_every_nth_request_asks_for_an_unknown_user(stub_url, unknown_every, cycle, capsys):
  # Before, an unknown user came before every n-th known one: with 3 users and --unknown-every 3 the requests
  # cycled through [U, 1, 2, 3] (one in 4), with --unknown-every 1 through [U, 1, U, 2, U, 3] (one in 2).
  assert serving_http_load.main(['--url', stub_url, '--user-ids', '1,2,3', '--unknown-every', str(unknown_every),
                                 '--clients', '1', '--client-processes', '1', '--duration-s', '0.5']) == 0
  asked = ['U' if user.startswith('unknown-') else user for user in _StubService.user_ids]
  assert len(asked) >= 4 * len(cycle)
  assert asked[:4 * len(cycle)] == cycle * 4
  assert 'errors=0 ' in capsys.readouterr().out


def test_the_rate_is_over_the_clients_time_not_the_client_processes_start_up(stub_url, capsys):
  # Before, the duration (and so requests_per_s) counted from before the client processes were spawned, a fresh
  # Python importing numpy each (0.15 s or more here): --duration-s 1 printed duration=1.2s or more.
  assert serving_http_load.main(['--url', stub_url, '--user-ids', '1,2,3', '--clients', '2', '--client-processes',
                                 '1', '--duration-s', '1']) == 0
  out = capsys.readouterr().out
  duration, ok, rate = re.search(r'duration=([\d.]+)s ok=(\d+) errors=0 requests_per_s=([\d.]+)', out).groups()
  assert 1.0 <= float(duration) < 1.1
  assert int(ok) == len(_StubService.user_ids)
  assert float(rate) == pytest.approx(int(ok) / float(duration), rel=0.06)  # duration is printed to 0.1 s


def _service(monkeypatch, script: str) -> None:
  """Makes the benchmark start `python -c script HOST PORT` instead of serving.app."""
  monkeypatch.setattr(serving_http_load, 'service_command',
                      lambda serving_dir, host, port: [sys.executable, '-c', script, host, str(port)])


def test_a_service_that_fails_to_start_shows_the_end_of_its_stderr(monkeypatch, tmp_path, capsys):
  # Before, the service's stderr went to /dev/null: a RuntimeError traceback said only 'exited with code 3'.
  _service(monkeypatch, 'import sys\nfor i in range(1, 26):\n  print(f"line {i}", file=sys.stderr)\n'
                        'print("ValueError: no retrieval model under the serving dir", file=sys.stderr)\nsys.exit(3)')
  assert serving_http_load.main(['--serving-dir', str(tmp_path), '--duration-s', '0.5']) == 1
  captured = capsys.readouterr()
  assert captured.err == ('error: The service exited with code 3 before becoming healthy. Its stderr (last 20 '
                          'lines):\n' + ''.join(f'line {i}\n' for i in range(7, 26)) +
                          'ValueError: no retrieval model under the serving dir\n')
  assert captured.out == ''


def test_a_short_or_empty_stderr_is_shown_whole(monkeypatch, tmp_path, capsys):
  _service(monkeypatch, 'import sys\nsys.stderr.write("usage: app.py\\napp.py: error: bad --port\\n")\nsys.exit(2)')
  assert serving_http_load.main(['--serving-dir', str(tmp_path)]) == 1
  assert capsys.readouterr().err == ('error: The service exited with code 2 before becoming healthy. Its stderr:\n'
                                     'usage: app.py\napp.py: error: bad --port\n')
  _service(monkeypatch, 'pass')
  assert serving_http_load.main(['--serving-dir', str(tmp_path)]) == 1
  assert capsys.readouterr().err == ('error: The service exited with code 0 before becoming healthy. Its stderr is '
                                     'empty.\n')


_DYING_SERVICE = '''
import http.server, json, os, sys
class Handler(http.server.BaseHTTPRequestHandler):
  protocol_version = 'HTTP/1.1'
  answered = 0
  def do_GET(self):
    if self.path == '/healthz':
      body = json.dumps({'model_versions': {'retrieval': 1, 'ranking': 1}}).encode()
    else:
      Handler.answered += 1
      if Handler.answered > 10:  # dies during the load, after 10 recommendations
        sys.stderr.write('MemoryError: the ranking model ran out of memory\\n')
        sys.stderr.flush()
        os._exit(5)
      body = b'{}'
    self.send_response(200)
    self.send_header('Content-Length', str(len(body)))
    self.end_headers()
    self.wfile.write(body)
  def log_message(self, *args):
    pass
http.server.HTTPServer((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
'''


def test_a_service_that_dies_during_the_load_shows_the_end_of_its_stderr(monkeypatch, tmp_path, capsys):
  # Before, the load ended with errors=N and exit code 0, and nothing said why the service had gone.
  _service(monkeypatch, _DYING_SERVICE)
  assert serving_http_load.main(['--serving-dir', str(tmp_path), '--user-ids', '1,2', '--clients', '1',
                                 '--client-processes', '1', '--duration-s', '0.5']) == 1
  captured = capsys.readouterr()
  assert re.search(r'ok=10 errors=[1-9]\d* ', captured.out)
  assert captured.err == ('error: The service exited with code 5 during the load. Its stderr:\n'
                          'MemoryError: the ranking model ran out of memory\n')
