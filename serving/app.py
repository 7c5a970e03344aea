"""HTTP service: JSON recommendations from the newest pushed models, swapping in new pushes while serving.

  python -m serving.app --serving-dir OUTPUT_DIR/serving [--host 127.0.0.1] [--port 8080] \
      [--poll-interval-s 5] [--tf-serving-url http://127.0.0.1:8501] [--shutdown-delay-s 0]

Endpoints:

* `GET /v1/recommendations?user_id=42&k=10[&exclude_seen=false][&user_gender=F&user_age=23...]` -> 200 with
  `Recommendations.to_json_dict()`; `user_age_bucket=18-24` (a label of `serving.assets.age_bucket_labels()`,
  '+' sent as %2B) chooses an unknown user's age segment like `user_age` does. 400 `{"error": ...}` for a
  missing/empty user_id, a k that is not an integer in 1..max_k, an exclude_seen that is not true/false, an
  unknown parameter or a bad user column value (an age bucket that is not a label or disagrees with the
  `user_age` sent with it), or a request with a body (the parameters go in the query string); 503 while no
  model is loaded or the backend (TF Serving) cannot be reached, times out or answers an error that may pass
  (502, 503, 504, 408 or 429: a retryable `serving.models.BackendError`), so the client may retry; 502 `{"error": <the backend's
  message>}`, logged as an ERROR, for a backend fault that retrying will not fix (a `BackendError` that is not
  retryable: TF Serving answering a 4xx such as 400 INVALID_ARGUMENT or a 500 INTERNAL, outputs that are not the export's, a
  ranking model predicting NaN or inf, see `serving.recommender`), while /healthz stays 200 (the backend is up
  and serves the versions: taking the instance out of rotation would not help); 500 for any other failure
  (logged with its traceback), e.g. an answer holding a NaN or infinite score the recommender let through (not
  JSON; the error names it).
* `GET /healthz` -> 200 `{"status": "ok", "model_versions": {...}, "missing_models": []}` once both models are
  loaded; 200 `{"status": "degraded", "model_versions": {"retrieval": 7, "ranking": null},
  "missing_models": ["ranking"]}` while only the retrieval model is (recommendations in retrieval order);
  503 while no retrieval model is loaded. With TF Serving as the backend each check also asks it for the served
  versions' status (at most `tf_serving_backend.HEALTH_PROBE_TIMEOUT_S`, 1 s for the whole call): while it
  cannot be reached, hangs or does not serve them, 503 `{"status": "unavailable", "model_versions": {...},
  "missing_models": [...], "error": <why>}`, so a load balancer takes the instance out of rotation. Each change
  of status or versions between two checks is logged once (`HealthChangeLog`: WARNING when unavailable).
* A request target in absolute form (`GET http://host:8080/v1/recommendations?user_id=42`, as proxies send it;
  RFC 9112 section 3.2.2) is answered as its path and query; any other path -> 404.
* Any other method (POST, PUT, DELETE, PATCH, OPTIONS, HEAD) -> 405 with `Allow: GET` (a JSON error but for HEAD).

Binds loopback (127.0.0.1) unless told otherwise, before any model loads (a port in use is reported at once), and
answers while the first versions load (503 until then).
A connection idle for 30 s is closed. A thread polls the serving directory and swaps in newly
pushed versions (see `serving.models.ModelRegistry`); each request uses the bundle it started with, so none
is dropped during a swap. On SIGTERM (docker stop, Kubernetes) or Ctrl-C it closes its listening socket (a new
connection is refused at once, for the client or proxy to retry elsewhere, rather than left in the backlog until the
process exits) and drains (`drain`): the requests in flight finish (at most `DRAIN_TIMEOUT_S`), then it exits 0. While draining, every answer
carries `Connection: close` and closes its connection, so kept-alive clients reconnect to another instance and
cannot keep the drain going request after request. A request arriving on a kept-alive connection during the drain
is answered (with `Connection: close`), not refused with 503: Kubernetes sends SIGTERM while it removes the pod from
the Service's endpoints, so requests keep arriving for seconds after it, the service can still answer them, and a
503 would only hand them back as errors for each client to retry (http.client retries nothing); proxies drain
HTTP/1.1 the same way (Envoy adds `Connection: close` to its answers while draining). A connection idle through the
drain is closed when the process exits, as an idle one is after `CONNECTION_TIMEOUT_S`. Once the shutdown has
begun, `/healthz` answers 503 `{"status": "shutting down", "error": ...}`, so a readiness probe that still reaches
the instance takes it out of rotation.

With `--shutdown-delay-s D` (default 0) the listening socket stays open for D more seconds after the signal
(`keep_answering`): new connections are still answered, each with `Connection: close`, and `/healthz` answers 503
as above, before the drain. Kubernetes removes a terminating pod from the Service's endpoints while it sends the
signal, and kube-proxy and load balancers learn of it a few seconds later: during that time new connections keep
arriving, and a closed socket refuses them (a client error; kube-proxy retries nothing). D of about 5 s covers the
usual propagation, as a `preStop` sleep would without a shell in the image; D plus `DRAIN_TIMEOUT_S` must fit in the
pod's `terminationGracePeriodSeconds` (30 s by default).
"""

import argparse
import dataclasses
import http.server
import json
import math
import signal
import sys
import threading
import time
import urllib.parse
from typing import Any, Dict, List, Optional, Tuple

from absl import logging

from ingestion import interactions
from pipeline import environment
from schema import features
from serving import backend_flags

RECOMMENDATIONS_PATH = '/v1/recommendations'
HEALTH_PATH = '/healthz'
HEALTH_OK = 'ok'
HEALTH_DEGRADED = 'degraded'
HEALTH_UNAVAILABLE = 'unavailable'
HEALTH_SHUTTING_DOWN = 'shutting down'
USER_ID_PARAM = 'user_id'
K_PARAM = 'k'
EXCLUDE_SEEN_PARAM = 'exclude_seen'
DEFAULT_K = 10
LOOPBACK_HOST = '127.0.0.1'
DEFAULT_PORT = 8080
# Seconds a kept-alive connection may stay idle (or a client take to send its request) before it is closed.
CONNECTION_TIMEOUT_S = 30.0
# Seconds a shutdown waits for the requests in flight (within Kubernetes' default 30 s grace period).
DRAIN_TIMEOUT_S = 10.0
# Longest --shutdown-delay-s: with the drain after it, within Kubernetes' default 30 s grace period.
MAX_SHUTDOWN_DELAY_S = 20.0
_TRUE_VALUES = ('true', '1', 'yes')
_FALSE_VALUES = ('false', '0', 'no')


class RequestsInFlight:
  """Counts the requests being answered, so a shutdown can wait for them (`wait_idle`). Thread-safe; use as a
  context manager around each request."""

  def __init__(self) -> None:
    self._idle = threading.Condition()
    self._count = 0

  def __enter__(self) -> 'RequestsInFlight':
    with self._idle:
      self._count += 1
    return self

  def __exit__(self, *exc_info: Any) -> None:
    with self._idle:
      self._count -= 1
      if not self._count:
        self._idle.notify_all()

  @property
  def count(self) -> int:
    with self._idle:
      return self._count

  def wait_idle(self, timeout_s: float) -> bool:
    """Waits until no request is in flight, at most `timeout_s` seconds; True if none is left."""
    deadline = time.monotonic() + timeout_s
    with self._idle:
      while self._count:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
          return False
        self._idle.wait(remaining)
      return True


class _Terminated(BaseException):
  """Raised in the main thread by the SIGTERM handler, to leave `serve_forever` as Ctrl-C does. A BaseException,
  as KeyboardInterrupt is: an `except Exception` it interrupts (logging's, around writing a record) lets it through."""


def _raise_terminated(signum: int, frame: Any) -> None:  # pylint: disable=unused-argument
  raise _Terminated()


class BadRequestError(ValueError):
  """A request parameter is missing or invalid; the message says which and what to send."""


def parse_recommendation_query(query: str) -> Tuple[str, int, bool, Dict[str, str]]:
  """Parses the query string of a recommendations request.

  Args:
    query: e.g. 'user_id=42&k=10&user_gender=F'.

  Returns:
    (user_id, k, exclude_seen, user_features as text).

  Raises:
    BadRequestError: for a missing, empty or repeated parameter, a k that is not an int64 integer, an
      exclude_seen that is not true/false, or a parameter that is neither known nor a `user_*` column.
  """
  params = urllib.parse.parse_qs(query, keep_blank_values=True)
  repeated = sorted(name for name, values in params.items() if len(values) > 1)
  if repeated:
    raise BadRequestError(f'Parameters {repeated} are repeated; send each once.')
  values = {name: v[0] for name, v in params.items()}
  user_id = values.pop(USER_ID_PARAM, '').strip()
  if not user_id:
    raise BadRequestError(f'Missing {USER_ID_PARAM}: send e.g. {RECOMMENDATIONS_PATH}?{USER_ID_PARAM}=42&k=10.')
  k_text = values.pop(K_PARAM, str(DEFAULT_K))
  k = interactions.parse_int(k_text)
  if k is None:
    raise BadRequestError(f'{K_PARAM}={k_text!r} is not an integer within int64; send e.g. {K_PARAM}=10.')
  exclude_text = values.pop(EXCLUDE_SEEN_PARAM, 'true').lower()
  if exclude_text not in _TRUE_VALUES + _FALSE_VALUES:
    raise BadRequestError(f'{EXCLUDE_SEEN_PARAM}={exclude_text!r} must be true or false.')
  unknown = sorted(name for name in values if not features.is_user_feature(name))
  if unknown:
    raise BadRequestError(f'Unknown parameters {unknown}; use {USER_ID_PARAM}, {K_PARAM}, {EXCLUDE_SEEN_PARAM} '
                          'and user_* columns.')
  return user_id, k, exclude_text in _TRUE_VALUES, values


def request_target_parts(target: str) -> Tuple[str, str]:
  """The path and query string of an HTTP request target.

  Args:
    target: the request line's target: origin form ('/v1/recommendations?user_id=42') or absolute form
      ('http://host:8080/v1/recommendations?user_id=42', which RFC 9112 section 3.2.2 says a server must accept,
      as proxies send it).

  Returns:
    (path, query), e.g. ('/v1/recommendations', 'user_id=42'); an absolute form's path is '/' when it has none
    (RFC 9110 section 4.2.3). A target in neither form (e.g. 'ftp://host/healthz', '*') comes back as its own
    path, which names no endpoint.

  Raises:
    BadRequestError: for an absolute form that is not a URI (e.g. 'http://[::1/healthz', an unclosed IPv6
      address).
  """
  if not target.startswith('/'):
    try:
      parts = urllib.parse.urlsplit(target)
    except ValueError as e:
      raise BadRequestError(f'The request target {target!r} is not a URI ({e}); send e.g. GET '
                            f'{RECOMMENDATIONS_PATH}?{USER_ID_PARAM}=42.') from e
    if parts.scheme in ('http', 'https') and parts.netloc:
      return parts.path or '/', parts.query
  path, _, query = target.partition('?')
  return path, query


class NonFiniteAnswerError(ValueError):
  """An answer holds a number that is not finite (NaN, inf), which JSON cannot carry; the message names where."""


def _non_finite_fields(value: Any, path: str = '') -> List[str]:
  """The paths (e.g. 'items[0].score') of the non-finite floats in a JSON-ready `value`, in order."""
  if isinstance(value, float):
    return [] if math.isfinite(value) else [f'{path}={value}']
  if isinstance(value, dict):
    return [field for key, item in value.items()
            for field in _non_finite_fields(item, f'{path}.{key}' if path else str(key))]
  if isinstance(value, (list, tuple)):
    return [field for index, item in enumerate(value) for field in _non_finite_fields(item, f'{path}[{index}]')]
  return []


def json_payload(body: Dict[str, Any]) -> bytes:
  """`body` as strict JSON, UTF-8.

  Raises:
    NonFiniteAnswerError: for a NaN or infinite number in `body` (Python's json would write the invalid tokens
      NaN / Infinity, which strict JSON parsers refuse), naming the fields that hold one.
  """
  try:
    return json.dumps(body, ensure_ascii=False, allow_nan=False).encode('utf-8')
  except ValueError as e:
    fields = _non_finite_fields(body)
    if not fields:
      raise
    raise NonFiniteAnswerError(
        f'The answer holds numbers that are not finite, which JSON cannot carry: {", ".join(fields[:5])}'
        f'{f" (and {len(fields) - 5} more)" if len(fields) > 5 else ""}; a served model predicts NaN or inf '
        '(check its export and its inputs).') from e


def health_body(versions: Any) -> Dict[str, Any]:
  """The /healthz answer for the served `serving.models.ServedVersions`: status ok, or degraded while a model
  (the ranking one) is missing, with the versions (null for a missing model) and the missing models' names."""
  missing = list(versions.missing_models())
  return {'status': HEALTH_DEGRADED if missing else HEALTH_OK, 'model_versions': dataclasses.asdict(versions),
          'missing_models': missing}


def health_answer(bundle: Any) -> Tuple[int, Dict[str, Any]]:
  """The /healthz (status, body) for the served `serving.models.ModelBundle`.

  Returns:
    (200, `health_body`) while the bundle's backend can answer; (503, the same fields with status
    'unavailable' and the backend's reason as 'error') while it cannot (TF Serving unreachable, hanging, or not
    serving the versions).
  """
  body = health_body(bundle.versions)
  reason = bundle.backend.unavailable_reason()
  if reason is None:
    return 200, body
  return 503, {**body, 'status': HEALTH_UNAVAILABLE, 'error': reason}


class HealthChangeLog:
  """Logs each change of the /healthz answer's status or served versions, once: a WARNING (with the reason) when
  the service becomes unavailable, INFO for the first answer and every other change (recovery, a new version, a
  missing ranking model). Changes are seen when /healthz is asked (the orchestrator's probe).

  Thread-safe, and in the order the checks started: a check takes a number from `begin` before it asks the
  backend and hands it to `record` with its answer; an answer of a check that started before the last one
  recorded is older news and is not recorded (a check waiting its 1 s probe timeout on a hanging TF Serving
  logged 'unavailable' after a later check had found it ok, then the next check a recovery). A change is logged
  under the lock that records it, so the last line logged is always the state kept."""

  def __init__(self) -> None:
    self._lock = threading.Lock()
    self._last: Optional[Tuple[str, str]] = None
    self._checks_begun = 0
    self._last_check = 0  # the number of the check whose answer `_last` is; 0: none yet

  def begin(self) -> int:
    """The number of a check about to ask for the health (1, 2, ...): pass it to `record` with its answer."""
    with self._lock:
      self._checks_begun += 1
      return self._checks_begun

  def record(self, body: Dict[str, Any], check: int) -> None:
    """Notes the /healthz answer `body` (`health_answer`'s) of check number `check` (from `begin`), logging it
    if it differs from the last answer recorded; ignored if a check begun after it was recorded already."""
    state = (body['status'], json.dumps(body['model_versions'], sort_keys=True))
    with self._lock:
      if check < self._last_check:
        return
      previous, self._last, self._last_check = self._last, state, check
      if state == previous:
        return
      was = f'{previous[0]}, versions {previous[1]}' if previous else 'not checked before'
      if body['status'] == HEALTH_UNAVAILABLE:
        logging.warning('Health: unavailable, versions %s (was %s): %s', state[1], was, body['error'])
      else:
        logging.info('Health: %s, versions %s (was %s).', state[0], state[1], was)


def make_server(recommender: Any, registry: Any, host: str = LOOPBACK_HOST,
                port: int = DEFAULT_PORT) -> http.server.ThreadingHTTPServer:
  """Builds the threaded HTTP server (not started: call `serve_forever()`).

  Args:
    recommender: a `serving.recommender.Recommender`.
    registry: the `serving.models.ModelRegistry` it answers from (for /healthz).
    host: interface to bind; loopback by default.
    port: TCP port; 0 picks a free one (see `server.server_address`).
  """
  # pylint: disable=g-import-not-at-top  (imports TensorFlow: not before the entry point's Keras setting)
  from serving import models
  from serving import requests as requests_lib

  health_log = HealthChangeLog()
  in_flight = RequestsInFlight()
  # Set once the shutdown begins (`keep_answering`, `drain`): every answer from then on closes its connection, and
  # /healthz answers 503.
  draining = threading.Event()

  class RecommendationHandler(http.server.BaseHTTPRequestHandler):
    """Answers the two GET endpoints with JSON; keeps connections alive (HTTP/1.1), closing one that stays idle
    (or sends nothing) for `timeout` seconds, so idle clients do not hold a thread each for ever, and closing each
    after its answer (`Connection: close`) once the server drains."""
    protocol_version = 'HTTP/1.1'
    timeout = CONNECTION_TIMEOUT_S

    def handle(self) -> None:
      try:
        super().handle()
      except ConnectionError as e:
        # A client (or proxy) resetting a kept-alive connection while it is waiting for the next request: routine,
        # not a server error (socketserver printed a traceback to stderr, outside the log).
        logging.info('%s closed the connection between requests: %s', self.address_string(), e)

    def do_GET(self) -> None:  # pylint: disable=invalid-name
      with in_flight:
        self._answer_get()

    def _answer_get(self) -> None:
      if self._has_body():
        # Its bytes are not read: the connection closes, so they are not taken for the next request.
        self._send(400, {'error': 'A GET request takes no body; send the parameters in the query string, e.g. '
                                  f'{RECOMMENDATIONS_PATH}?{USER_ID_PARAM}=42&{K_PARAM}=10.'}, close=True)
        return
      try:
        path, query = request_target_parts(self.path)
        if path == HEALTH_PATH and draining.is_set():
          self._send(503, {'status': HEALTH_SHUTTING_DOWN,
                           'error': 'The service is shutting down; send requests to another instance.'})
        elif path == HEALTH_PATH:
          check = health_log.begin()
          status, body = health_answer(registry.current())
          health_log.record(body, check)
          self._send(status, body)
        elif path == RECOMMENDATIONS_PATH:
          user_id, k, exclude_seen, user_features = parse_recommendation_query(query)
          result = recommender.recommend(user_id, k=k, exclude_seen=exclude_seen, user_features=user_features)
          self._send(200, result.to_json_dict())
        else:
          self._send(404, {'error': f'No endpoint {path!r}; use {RECOMMENDATIONS_PATH} or {HEALTH_PATH}.'})
      except (BadRequestError, requests_lib.InvalidRequestError) as e:
        self._send(400, {'error': str(e)})
      except models.BackendError as e:
        if e.retryable:  # unreachable, timed out, 502/503/504: the same request may succeed later
          self._send(503, {'status': HEALTH_UNAVAILABLE, 'error': str(e)})
        else:  # the backend answered, but wrongly for these versions: a retry gets the same answer
          logging.error('Request %s: the model backend failed: %s', self.path, e)
          self._send(502, {'error': str(e)})
      except models.ModelsNotReadyError as e:
        self._send(503, {'status': HEALTH_UNAVAILABLE, 'error': str(e)})
      except Exception as e:  # pylint: disable=broad-except
        # The request boundary: log the failure with its traceback and answer 500 instead of dropping
        # the connection; the server keeps serving other requests.
        logging.exception('Request %s failed.', self.path)
        self._send(500, {'error': f'{type(e).__name__}: {e}'})

    def do_HEAD(self) -> None:  # pylint: disable=invalid-name
      self._method_not_allowed(with_body=False)

    def do_POST(self) -> None:  # pylint: disable=invalid-name
      self._method_not_allowed()

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_POST

    def _method_not_allowed(self, with_body: bool = True) -> None:
      body = {'error': f'{self.command} is not supported; send GET {RECOMMENDATIONS_PATH}?{USER_ID_PARAM}=42 or '
                       f'GET {HEALTH_PATH}.'}
      self._send(405, body, close=self._has_body(), extra_headers={'Allow': 'GET'}, with_body=with_body)

    def _has_body(self) -> bool:
      return bool(self.headers.get('Transfer-Encoding')) or self.headers.get('Content-Length', '0').strip() != '0'

    def _send(self, status: int, body: Dict[str, Any], close: bool = False,
              extra_headers: Optional[Dict[str, str]] = None, with_body: bool = True) -> None:
      close = close or draining.is_set()
      payload = json_payload(body)
      try:
        self.send_response(status)
        self.send_header('Content-Type', 'application/json; charset=utf-8')
        self.send_header('Content-Length', str(len(payload)))
        for name, value in (extra_headers or {}).items():
          self.send_header(name, value)
        if close:
          self.send_header('Connection', 'close')
          self.close_connection = True
        self.end_headers()
        if with_body:
          self.wfile.write(payload)
      except ConnectionError as e:  # BrokenPipeError, ConnectionResetError: the client left before the answer
        self.close_connection = True
        logging.info('%s closed the connection before the %d answer to %s: %s', self.address_string(), status,
                     self.path, e)

    def log_message(self, format: str, *args: Any) -> None:  # pylint: disable=redefined-builtin
      logging.debug('%s %s', self.address_string(), format % args)

  server = http.server.ThreadingHTTPServer((host, port), RecommendationHandler)
  server.daemon_threads = True
  server.requests_in_flight = in_flight  # what a shutdown waits for (`RequestsInFlight.wait_idle`)
  server.draining = draining  # set by `drain`
  return server


def keep_answering(server: http.server.ThreadingHTTPServer, delay_s: float,
                   ended: Optional[threading.Event] = None) -> None:
  """Answers new connections for `delay_s` more seconds after a shutdown signal, before `drain` (the Kubernetes
  endpoint-removal window: see the module docstring).

  The server (one of `make_server`) must not be serving: `serve_forever` has returned, as in `main` after the
  signal. From now on every answer carries `Connection: close` and `/healthz` answers 503 'shutting down'; the
  listening socket stays open, and `serve_forever` runs in a thread of its own until the delay ends.

  Args:
    server: the server.
    delay_s: seconds to keep accepting connections, >= 0.
    ended: an event that ends the delay early when set (a test's, or None).
  """
  server.draining.set()
  serving = threading.Thread(target=server.serve_forever, name='shutdown-delay', daemon=True)
  serving.start()
  try:
    (ended or threading.Event()).wait(delay_s)
  finally:
    server.shutdown()  # returns once that serve_forever has
    serving.join()


def drain(server: http.server.ThreadingHTTPServer, timeout_s: float) -> bool:
  """Drains a server (one of `make_server`) whose `serve_forever` has returned: its listening socket is closed, so
  new connections are refused, from now on every answer carries `Connection: close` and closes its connection
  (and `/healthz` answers 503 'shutting down'), and this waits for the requests in flight.

  Args:
    server: the server; its handler threads may still be answering on open connections.
    timeout_s: seconds to wait at most for the requests in flight.

  Returns:
    True if no request is left in flight, False if some still are after `timeout_s`.
  """
  # New connections are refused at once (a proxy or client retries them elsewhere) instead of waiting in the
  # listen backlog until the drain ends and then being reset; the open connections have sockets of their own.
  server.socket.close()
  server.draining.set()
  return server.requests_in_flight.wait_idle(timeout_s)


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  backend_flags.add_backend_flags(parser)
  parser.add_argument('--host', default=LOOPBACK_HOST,
                      help='Interface to bind (default loopback; 0.0.0.0 exposes the service to the network).')
  parser.add_argument('--port', type=port_number, default=DEFAULT_PORT, help=f'TCP port (default {DEFAULT_PORT}).')
  parser.add_argument('--poll-interval-s', type=backend_flags.positive_seconds, default=None,
                      help='Seconds between looks for newly pushed versions (default 5).')
  parser.add_argument('--shutdown-delay-s', type=shutdown_delay_seconds, default=0.0,
                      help='Seconds to keep answering new connections after SIGTERM, before the drain (default 0; '
                           'about 5 on Kubernetes, where endpoint removal takes that long to propagate; with the '
                           f'{DRAIN_TIMEOUT_S:g} s drain it must fit in terminationGracePeriodSeconds).')
  return parser


def shutdown_delay_seconds(text: str) -> float:
  """--shutdown-delay-s's value: a number of seconds from 0 to `MAX_SHUTDOWN_DELAY_S`."""
  seconds = backend_flags.seconds_value(text)
  if not 0.0 <= seconds <= MAX_SHUTDOWN_DELAY_S:  # refuses NaN and inf too
    raise argparse.ArgumentTypeError(
        f'{text} must be a number of seconds from 0 to {MAX_SHUTDOWN_DELAY_S:g}, e.g. 5 (with the '
        f'{DRAIN_TIMEOUT_S:g} s drain after it, a longer delay would outlast Kubernetes\' default 30 s grace period; '
        'a deployment with a longer one can use a preStop hook instead).')
  return seconds


def port_number(text: str) -> int:
  """--port's value: an integer from 0 (any free port) to 65535."""
  port = interactions.parse_int(text)
  if port is None or not 0 <= port <= 65535:
    raise argparse.ArgumentTypeError(f'{text!r} is not a TCP port; pass an integer from 1 to 65535 (0: any free '
                                     'port), e.g. 8080.')
  return port


def main(argv: Optional[List[str]] = None) -> int:
  """Serves until interrupted (Ctrl-C) or terminated (SIGTERM), then waits for the requests in flight.

  Returns:
    0, the exit code, after a shutdown.

  Raises:
    SystemExit: with code 2 (argparse's), for bad flags or a port that cannot be bound.
  """
  parser = _parser()
  args = parser.parse_args(argv)
  environment.use_legacy_keras()
  logging.set_verbosity(logging.INFO)
  registry, two_stage = backend_flags.recommender_from_flags(args, poll_interval_s=args.poll_interval_s,
                                                             load=False)
  try:  # bound before the models load, which takes a while: a port in use is told at once
    server = make_server(two_stage, registry, args.host, args.port)
  except OSError as e:
    parser.error(f'cannot listen on --host {args.host} --port {args.port}: {e.strerror or e}; pass a free port '
                 '(or 0 for any) or stop the process using it.')
  # The first versions load in the polling thread while the server answers (503 until they are loaded).
  registry.start_polling(refresh_first=True)
  if args.host != LOOPBACK_HOST:
    logging.warning('Binding %s: the service is reachable from other machines.', args.host)
  in_main_thread = threading.current_thread() is threading.main_thread()  # signals reach the main thread only
  if in_main_thread:
    signal.signal(signal.SIGTERM, _raise_terminated)
  try:
    # Logged once SIGTERM is handled: a supervisor that signals on this line gets the drain, not the default kill.
    logging.info('Serving on http://%s:%d%s', *server.server_address[:2], RECOMMENDATIONS_PATH)
    server.serve_forever()
  except (KeyboardInterrupt, _Terminated) as e:
    if in_main_thread:
      signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    cause = 'Terminated' if isinstance(e, _Terminated) else 'Interrupted'
    if args.shutdown_delay_s > 0:
      logging.info('%s; answering new connections for %g s more (--shutdown-delay-s), /healthz says shutting down.',
                   cause, args.shutdown_delay_s)
      try:
        keep_answering(server, args.shutdown_delay_s)
      except KeyboardInterrupt:
        logging.info('Interrupted again: the shutdown delay ends now.')
    logging.info('%s; shutting down once the %d request(s) in flight are answered (at most %g s).',
                 cause, server.requests_in_flight.count, DRAIN_TIMEOUT_S)
    if not drain(server, DRAIN_TIMEOUT_S):
      logging.warning('%d request(s) still in flight after %g s are dropped.', server.requests_in_flight.count,
                      DRAIN_TIMEOUT_S)
  finally:
    server.server_close()
    registry.stop_polling()
  return 0


if __name__ == '__main__':
  sys.exit(main())
