"""Model backend that calls TensorFlow Serving's REST API instead of loading the models in process.

TF Serving (see `serving/models.config` and `serving/docker-compose.yaml`) serves the two models from the same
serving directory the pipeline pushes to, so the service reads the serving assets from that directory and asks
TF Serving for exactly the versions it found there:

* `GET  <url>/v1/models/<model>/versions/<v>` — the bundle is used only once its versions are AVAILABLE
  (until then the registry keeps the previous bundle and retries at the next poll; a version TF Serving reports
  as END — it failed to load, or was unloaded — counts as a version that failed, which the registry skips);
* `POST <url>/v1/models/<model>/versions/<v>:predict` with the columnar body
  `{"signature_name": "serving_default", "inputs": {"examples": [{"b64": ...}, ...]}}`; the answer is
  `{"outputs": {name: values}}`, or `{"outputs": values}` when the signature has a single output. A 404 ("Servable
  not found") is not retryable on a request (the service answers 502), but at the registry's warm-up it means TF
  Serving has not finished loading a version its status already reports AVAILABLE: the registry keeps the
  previous bundle and tries again at the next poll (`TFServingError.version_not_found`, `serving.models.warm_up`).

Errors that may pass (no answer, 408, 429, 502, 503, 504) are retryable: the service answers 503 and the registry
tries the version again at the next poll. Any other 4xx or 5xx is not (TF Serving's 500 is an INTERNAL or UNKNOWN
error, e.g. an op of the model failing on these examples, which the same call meets again): the service answers 502
and logs it, and at load the registry skips the version. See `TFServingError.retryable`.

Degraded mode: with no ranking version on disk (`ServedVersions.ranking` None) only the retrieval model is
asked for; the ranking model's status is not checked and it is never called. TF Serving itself must then not
be configured with the ranking model: it does not start while a configured model has no version
(tensorflow/serving#1175), which is why `serving.tf_serving_config` writes its model config from the models
found on disk.

Health: `TFServingModels.unavailable_reason` (what `GET /healthz` reports) asks TF Serving for the status of the
served versions with a short timeout (`HEALTH_PROBE_TIMEOUT_S`), so an unreachable, hanging or restarted TF
Serving (one that no longer serves those versions), or a host name whose look-up hangs, makes the service report
that it cannot answer, within about a second.

Connections are kept alive, one per thread.
"""

import base64
import http.client
import ipaddress
import json
import socket
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from serving import backend_flags
from serving import models as models_lib
from trainer.ranking import export as ranking_export
from trainer.retrieval import export as retrieval_export

AVAILABLE_STATE = 'AVAILABLE'
# TF Serving's state of a version it will not serve (any more): its load failed, or it was unloaded.
END_STATE = 'END'
# Seconds TF Serving has to answer one call (host name look-up, connect, send and read together).
DEFAULT_TIMEOUT_S = 10.0
# Seconds the health probe waits for TF Serving (for the whole call): /healthz must not hang with it.
HEALTH_PROBE_TIMEOUT_S = 1.0


# 4xx statuses that ask the client to try again later (RFC 9110 §15.5.9, RFC 6585 §4) rather than blame the request:
# the service answers them 503 and the registry polls the version again instead of skipping it. TF Serving answers
# 429 for RESOURCE_EXHAUSTED (e.g. out of memory for a batch).
RETRYABLE_CLIENT_STATUSES = (408, 429)
# The 5xx statuses that may pass, answered 503 and polled again likewise: 502 Bad Gateway and 504 Gateway Timeout
# (a proxy that found no TF Serving or waited too long; TF Serving's own 504 is DEADLINE_EXCEEDED), 503 (TF Serving's
# UNAVAILABLE, e.g. its batching queue is full). TF Serving's other 5xx say that the call itself fails, and will
# again: 500 for INTERNAL, UNKNOWN and DATA_LOSS (e.g. an op of the model failing on these examples), 501 for
# UNIMPLEMENTED (`ToHTTPStatusCode` in tensorflow_serving/model_servers/http_server.cc); the service answers them
# 502 and logs them, the registry skips the version.
RETRYABLE_SERVER_STATUSES = (502, 503, 504)
# What TF Serving answers for a version it does not serve (yet): "Servable not found for request: Specific(m, v)".
NOT_FOUND_STATUS = 404


class TFServingError(models_lib.BackendError):
  """TF Serving answered with an error status, or could not be reached or read.

  Attributes:
    status: the HTTP status TF Serving answered, None when it gave no answer.
    retryable: True when the same call may succeed later: no answer (unreachable, timed out, an answer that is not
      TF Serving's), a status that is not an error (a proxy's redirect, a 204), 408 Request Timeout and 429 Too
      Many Requests, which say "later", not "never" (`RETRYABLE_CLIENT_STATUSES`), and 502, 503 and 504
      (`RETRYABLE_SERVER_STATUSES`). False for any other 4xx (the request does not fit the model version) and any
      other 5xx: TF Serving's 500 (INTERNAL, UNKNOWN, DATA_LOSS) and 501 (UNIMPLEMENTED) fail the same call again.
    version_not_found: True for a 404 ("Servable not found"): not retryable on a request, but the registry's
      warm-up takes it for a version TF Serving is still loading (see `serving.models.BackendError`).
  """

  def __init__(self, message: str, status: Optional[int] = None) -> None:
    super().__init__(message, retryable=status is None or not 400 <= status < 600
                     or status in RETRYABLE_CLIENT_STATUSES + RETRYABLE_SERVER_STATUSES,
                     version_not_found=status == NOT_FOUND_STATUS)
    self.status = status


class _DeadlineSocket(socket.socket):
  """A socket whose sends and receives wait only until `deadline` (`time.monotonic()` seconds), all together.

  A socket timeout bounds each operation: a server sending a few bytes before each timeout runs out could hold a
  call for ever. Before each operation the timeout is set to what is left of the call's deadline; once it has
  passed, the operation raises `TimeoutError('timed out')`, as a socket timeout does.
  """

  def __init__(self, connected: socket.socket, deadline: float) -> None:
    super().__init__(connected.family, connected.type, connected.proto, fileno=connected.detach())
    self.deadline = deadline

  def _time_left(self) -> None:
    remaining = self.deadline - time.monotonic()
    if remaining <= 0:
      raise TimeoutError('timed out')
    self.settimeout(remaining)

  def recv_into(self, *args: Any, **kwargs: Any) -> int:
    self._time_left()
    return super().recv_into(*args, **kwargs)

  def recv(self, *args: Any, **kwargs: Any) -> bytes:
    self._time_left()
    return super().recv(*args, **kwargs)

  def send(self, *args: Any, **kwargs: Any) -> int:
    self._time_left()
    return super().send(*args, **kwargs)

  def sendall(self, *args: Any, **kwargs: Any) -> None:  # its timeout bounds the whole send (Python >= 3.5)
    self._time_left()
    super().sendall(*args, **kwargs)


def _tcp_addresses(host: str, port: int, deadline: float, timeout_s: float) -> List[Tuple[Any, ...]]:
  """`socket.getaddrinfo(host, port)` for a TCP connection, looked up by `deadline` (`time.monotonic()` seconds).

  The look-up of a host name can wait for DNS servers for seconds (a Kubernetes resolver tries a short name such
  as `tf-serving` under each search domain), and `getaddrinfo` cannot be interrupted: it runs in a daemon thread,
  which is waited for until the deadline and then left to end on its own. A literal IP address is converted at
  once, without a thread.

  Args:
    host: a host name or a literal IP address.
    port: the TCP port.
    deadline: when the call must be answered.
    timeout_s: the call's timeout (what `deadline` was set from), for the message.

  Returns:
    (family, type, proto, canonname, sockaddr) entries, as `socket.getaddrinfo` returns them.

  Raises:
    TimeoutError: naming the host and `timeout_s`, when the look-up has not ended by `deadline`.
    OSError: as `socket.getaddrinfo` (e.g. `socket.gaierror` for a name that does not exist).
    UnicodeError: for a host name the IDNA codec refuses (e.g. 'a..b').
  """
  try:
    ipaddress.ip_address(host)
  except ValueError:
    pass
  else:
    return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
  outcome: Dict[str, Any] = {}

  def look_up() -> None:
    try:
      outcome['addresses'] = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    except Exception as e:  # pylint: disable=broad-except  (raised in the calling thread below)
      outcome['error'] = e

  lookup = threading.Thread(target=look_up, name=f'getaddrinfo {host}', daemon=True)
  lookup.start()
  lookup.join(max(0.0, deadline - time.monotonic()))
  if lookup.is_alive():
    raise TimeoutError(f'looking up host {host!r} did not end within the call\'s deadline of {timeout_s:g} s')
  if 'error' in outcome:
    raise outcome['error']
  return outcome['addresses']


class _DeadlineConnection(http.client.HTTPConnection):
  """An HTTP connection whose calls each end by a deadline (host name look-up, connect, send and read together);
  see `start_call`."""

  def __init__(self, host: str, port: int, timeout_s: float) -> None:
    super().__init__(host, port, timeout=timeout_s)
    self._deadline = time.monotonic() + timeout_s
    self._create_connection = self._connect_by_deadline

  def start_call(self, deadline: float) -> None:
    """Starts a call that must be answered by `deadline` (`time.monotonic()` seconds)."""
    self._deadline = deadline
    if self.sock is not None:  # kept alive from an earlier call
      self.sock.deadline = self._deadline

  def _connect_by_deadline(self, address: Tuple[str, int], timeout: Any = None,
                           source_address: Any = None) -> socket.socket:
    """`socket.create_connection` with the look-up and each connect attempt bounded by the call's deadline."""
    del timeout  # the time left of the call's deadline instead
    if self._deadline - time.monotonic() <= 0:
      raise TimeoutError('timed out')
    host, port = address
    error: Optional[OSError] = None
    for family, kind, proto, _, sockaddr in _tcp_addresses(host, port, self._deadline, self.timeout):
      remaining = self._deadline - time.monotonic()  # the addresses in turn, as socket.create_connection tries them
      if remaining <= 0:
        raise TimeoutError('timed out')
      connected = socket.socket(family, kind, proto)
      try:
        connected.settimeout(remaining)
        if source_address:
          connected.bind(source_address)
        connected.connect(sockaddr)
      except OSError as e:
        connected.close()
        error = e
        continue
      return _DeadlineSocket(connected, self._deadline)
    raise error or OSError(f'getaddrinfo found no address of {host!r}')


class TFServingClient:
  """A minimal TF Serving REST client (predict and model status), one kept-alive connection per thread."""

  def __init__(self, url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
    """Args:
      url: TF Serving's REST address, e.g. 'http://127.0.0.1:8501' (port 80 when none is given).
      timeout_s: seconds one call may take, the host name's look-up, connect, send and read together (a deadline:
        neither a slow DNS server nor a server sending its answer slowly can hold a call longer), above 0 and at
        most `threading.TIMEOUT_MAX`.

    Raises:
      ValueError: for a URL that is not http://HOST[:PORT] (see `backend_flags.tf_serving_address`: a path, a
        query or credentials are refused, not dropped), or a timeout that is not a number of seconds above 0.
    """
    address = backend_flags.tf_serving_address(url)
    if address is None:
      raise ValueError(f'tf_serving_url={url!r} must look like http://HOST:PORT (TF Serving REST, port 8501), '
                       'with no path, query or credentials.')
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not (
        0.0 < timeout_s <= threading.TIMEOUT_MAX):
      raise ValueError(f'timeout_s={timeout_s!r} must be a number of seconds above 0 (and at most '
                       f'{threading.TIMEOUT_MAX:.0f}), e.g. {DEFAULT_TIMEOUT_S}.')
    self._host, self._port = address
    self._timeout_s = timeout_s
    self._local = threading.local()

  @property
  def address(self) -> str:
    """'host:port' of TF Serving ('[host]:port' for an IPv6 address), for messages."""
    return f'[{self._host}]:{self._port}' if ':' in self._host else f'{self._host}:{self._port}'

  def _connection(self) -> _DeadlineConnection:
    connection = getattr(self._local, 'connection', None)
    if connection is None:
      connection = _DeadlineConnection(self._host, self._port, self._timeout_s)
      self._local.connection = connection
    return connection

  def _call(self, method: str, path: str, body: Any = None) -> Dict[str, Any]:
    payload = None if body is None else json.dumps(body).encode('utf-8')
    headers = {'Content-Type': 'application/json'} if payload is not None else {}
    deadline = time.monotonic() + self._timeout_s  # for the whole call, a reopened connection included
    for attempt in range(2):  # a kept-alive connection the server closed is reopened once
      connection = self._connection()
      connection.start_call(deadline)
      try:
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        raw = response.read()
        break
      except (OSError, http.client.HTTPException, UnicodeError) as e:
        # Whatever went wrong (refused, timed out, closed; UnicodeError: a host name that cannot be looked up,
        # e.g. 'a..b'), the connection may be mid-request: a new one is opened for the next call instead of
        # failing with CannotSendRequest from then on.
        connection.close()
        self._local.connection = None
        closed_while_idle = isinstance(e, (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError))
        if attempt == 1 or not closed_while_idle:
          raise TFServingError(f'TF Serving {method} {path} at {self.address} did not answer: '
                               f'{type(e).__name__}: {e}') from e
    text = raw.decode('utf-8', errors='replace')
    if response.status != 200:
      raise TFServingError(f'TF Serving {method} {path} answered {response.status}: {text[:500]}',
                           status=response.status)
    try:
      answer = json.loads(raw.decode('utf-8'))
    except ValueError as e:  # UnicodeDecodeError and json.JSONDecodeError: a proxy's page, a server fault
      raise TFServingError(f'TF Serving {method} {path} at {self.address} answered 200 with a body '
                           f'that is not JSON ({e}): {text[:200]!r}') from e
    if not isinstance(answer, dict):
      raise TFServingError(f'TF Serving {method} {path} at {self.address} answered 200 with JSON that '
                           f'is not an object: {text[:200]!r}')
    return answer

  def model_status(self, model: str, version: int) -> Tuple[str, str]:
    """(state, error message) TF Serving reports for a model version, e.g. ('AVAILABLE', ''); ('', '') while it
    does not know the version (it answers 404 until it starts loading it).

    Raises:
      TFServingError: when TF Serving cannot be reached or answers another error status (retryable or not: see
        `TFServingError.retryable`).
    """
    try:
      status = self._call('GET', f'/v1/models/{model}/versions/{version}')
    except TFServingError as e:
      if e.status == NOT_FOUND_STATUS:
        return '', ''
      raise
    for entry in status.get('model_version_status', []):
      if str(entry.get('version')) == str(version):
        error = entry.get('status') or {}
        code = error.get('error_code', 'OK')
        return str(entry.get('state', '')), '' if code == 'OK' else f"{code}: {error.get('error_message', '')}"
    return '', ''

  def model_state(self, model: str, version: int) -> str:
    """The state TF Serving reports for a model version (e.g. 'AVAILABLE'); '' if it does not know it.

    Raises:
      TFServingError: as `model_status`.
    """
    return self.model_status(model, version)[0]

  def predict(self, model: str, version: int, examples: Sequence[bytes]) -> Any:
    """Calls `serving_default` of a model version on serialized examples; returns the `outputs` value (a dict of
    named outputs, or the values of a single output, which TF Serving leaves unnamed).

    Raises:
      TFServingError: when TF Serving cannot be reached, answers an error status (retryable or not: see
        `TFServingError.retryable`), or answers 200 without JSON `outputs` (retryable).
    """
    body = {
        'signature_name': retrieval_export.SERVING_SIGNATURE,
        'inputs': {retrieval_export.EXAMPLES_INPUT: [{'b64': base64.b64encode(e).decode('ascii')}
                                                     for e in examples]},
    }
    path = f'/v1/models/{model}/versions/{version}:predict'
    answer = self._call('POST', path, body)
    if 'outputs' not in answer:
      raise TFServingError(f'TF Serving POST {path} at {self.address} answered 200 without "outputs": '
                           f'{json.dumps(answer)[:200]}')
    return answer['outputs']


class TFServingModels:
  """`ModelBackend` over TF Serving for one set of versions (retrieval only when `versions.ranking` is None)."""

  def __init__(self, client: TFServingClient, versions: models_lib.ServedVersions,
               probe_client: Optional[TFServingClient] = None) -> None:
    """Args:
      client: calls the models.
      versions: the versions to call.
      probe_client: asks for the versions' status in `unavailable_reason`; give it a short timeout (default:
        `client`).
    """
    self._client = client
    self._versions = versions
    self._probe_client = probe_client or client

  def unavailable_reason(self) -> Optional[str]:
    """Why TF Serving cannot answer with the served versions now, or None when it serves them all.

    Asks for each served version's status (retrieval, then ranking unless degraded), stopping at the first
    that TF Serving does not report AVAILABLE or that gets no answer within the probe client's timeout.
    """
    served = [(models_lib.RETRIEVAL_MODEL, self._versions.retrieval)]
    if self._versions.has_ranking:
      served.append((models_lib.RANKING_MODEL, self._versions.ranking))
    for model, version in served:
      try:
        state, error = self._probe_client.model_status(model, version)
      except TFServingError as e:
        return str(e)
      if state != AVAILABLE_STATE:
        return (f'TF Serving at {self._probe_client.address} reports {model} version {version} as '
                f'{state or "not known (yet)"!r}{": " + error if error else ""}; the service cannot answer with it '
                'until TF Serving serves it again.')
    return None

  def retrieve(self, requests: Sequence[bytes]) -> Tuple[np.ndarray, np.ndarray]:
    """Item ids `[num_requests, k]` (str) and scores `[num_requests, k]` (float32) of the retrieval version.

    Raises:
      TFServingError: as `TFServingClient.predict`.
      serving.models.BackendError: not retryable, for an answer without the exported outputs, or with item ids
        and scores that are not both `[num_requests, k]`.
    """
    model, version = models_lib.RETRIEVAL_MODEL, self._versions.retrieval
    outputs = self._client.predict(model, version, requests)
    item_ids = _array(outputs, retrieval_export.ITEM_IDS_OUTPUT, str, model, version)
    scores = _array(outputs, retrieval_export.SCORES_OUTPUT, np.float32, model, version)
    if item_ids.ndim != 2 or len(item_ids) != len(requests) or scores.shape != item_ids.shape:
      raise models_lib.BackendError(
          f'TF Serving: {model} version {version} answered {retrieval_export.ITEM_IDS_OUTPUT!r} of shape '
          f'{list(item_ids.shape)} and {retrieval_export.SCORES_OUTPUT!r} of shape {list(scores.shape)} for '
          f'{len(requests)} request(s); both must be [{len(requests)}, k].', retryable=False)
    return item_ids, scores

  def predict_ratings(self, requests: Sequence[bytes]) -> np.ndarray:
    """Predicted ratings `[num_requests]` (float32) of the ranking version (its single output, or the named one).

    Raises:
      serving.models.ModelsNotReadyError: in degraded mode (no ranking version).
      TFServingError: as `TFServingClient.predict`.
      serving.models.BackendError: not retryable, for outputs without the exported predictions, or with other
        than one prediction per request (`[num_requests]` or `[num_requests, 1]`).
    """
    if not self._versions.has_ranking:
      raise models_lib.ModelsNotReadyError(models_lib.NO_RANKING_MESSAGE)
    model, version = models_lib.RANKING_MODEL, self._versions.ranking
    outputs = self._client.predict(model, version, requests)
    if not isinstance(outputs, dict):  # the single output, which TF Serving leaves unnamed
      outputs = {ranking_export.PREDICTIONS_OUTPUT: outputs}
    ratings = _array(outputs, ranking_export.PREDICTIONS_OUTPUT, np.float32, model, version)
    if ratings.ndim not in (1, 2) or len(ratings) != len(requests) or ratings.size != len(requests):
      raise models_lib.BackendError(
          f'TF Serving: {model} version {version} answered {ranking_export.PREDICTIONS_OUTPUT!r} of shape '
          f'{list(ratings.shape)} for {len(requests)} request(s); it must be [{len(requests)}] or '
          f'[{len(requests)}, 1].', retryable=False)
    return ratings.reshape([-1])


def _output(outputs: Any, name: str, model: str, version: int) -> Any:
  """The output `name` of a predict answer's `outputs` (a dict of named outputs).

  Raises:
    serving.models.BackendError: not retryable (the version's export is at fault), when there is no such output.
  """
  if isinstance(outputs, dict) and name in outputs:
    return outputs[name]
  has = f'outputs {sorted(outputs)}' if isinstance(outputs, dict) else 'a single unnamed output'
  raise models_lib.BackendError(
      f'TF Serving: {model} version {version} answered {has} without {name!r}; its serving_default signature '
      f'is not the one trainer/{model}/export.py exports (named outputs): re-export and push it.', retryable=False)


def _array(outputs: Any, name: str, dtype: Any, model: str, version: int) -> np.ndarray:
  """The output `name` of a predict answer's `outputs` (see `_output`) as an array of `dtype`.

  Raises:
    serving.models.BackendError: not retryable, when there is no such output or its values are not a dense
      array of `dtype` (ragged lists, values of another type).
  """
  values = _output(outputs, name, model, version)
  try:
    return np.array(values, dtype=dtype)
  except (ValueError, TypeError) as e:
    raise models_lib.BackendError(
        f'TF Serving: {model} version {version} answered {name!r} that is not a dense array of '
        f'{getattr(dtype, "__name__", dtype)} '
        f'({type(e).__name__}: {e}): {json.dumps(values)[:200]}', retryable=False) from e


def bundle_loader(url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> models_lib.BundleLoader:
  """A `ModelRegistry` loader whose bundles call TF Serving at `url` for the versions found on disk.

  Raises:
    ValueError: for a malformed url, or a timeout_s that is not a number of seconds above 0 (see `TFServingClient`).
  """
  client = TFServingClient(url, timeout_s)
  probe_client = TFServingClient(url, min(timeout_s, HEALTH_PROBE_TIMEOUT_S))

  def load(serving_dir: str, versions: models_lib.ServedVersions) -> models_lib.ModelBundle:
    served = [(models_lib.RETRIEVAL_MODEL, versions.retrieval)]
    if versions.has_ranking:
      served.append((models_lib.RANKING_MODEL, versions.ranking))
    for model, version in served:
      state, error = client.model_status(model, version)
      if state == END_STATE:
        raise models_lib.BackendError(
            f'TF Serving at {url} reports {model} version {version} as {END_STATE!r} (it failed to load or was '
            f'unloaded{": " + error if error else ""}); check its log and its model config.', retryable=False)
      if state != AVAILABLE_STATE:
        raise models_lib.VersionNotAvailableError(
            f'TF Serving at {url} reports {model} version {version} as {state or "not known (yet)"!r}'
            f'{": " + error if error else ""}; is the version in its model config (serving.tf_serving_config)?')
    retrieval_dir = models_lib.version_dir(serving_dir, models_lib.RETRIEVAL_MODEL, versions.retrieval)
    return models_lib.make_bundle(versions, TFServingModels(client, versions, probe_client), retrieval_dir)

  return load
