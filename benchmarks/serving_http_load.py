"""Benchmark: HTTP load on the recommendation service over loopback — requests/s, latency and errors.

  .venv/bin/python benchmarks/serving_http_load.py --serving-dir OUTPUT_DIR/serving \
      [--clients 32] [--duration-s 30] [--client-processes 2]
  .venv/bin/python benchmarks/serving_http_load.py --url http://127.0.0.1:8080 --user-ids 1,2,3   # running service

Without --url it starts `python -m serving.app` on a free loopback port, waits for /healthz and stops it at the
end; if the service exits before it is healthy, or during the load, the error (exit code 1) shows the end of its
stderr. `--clients` concurrent clients (threads spread over `--client-processes` processes, each with a
kept-alive connection) send `GET /v1/recommendations?user_id=...&k=10` back to back for `--duration-s`, cycling through
the known users (and one unknown user in every `--unknown-every` requests). An error is any answer other
than 200 or a failed connection. Targets on the 2-core machine: >= 200 requests/s and 0 errors.
"""

import argparse
import http.client
import json
import multiprocessing
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from typing import IO, Dict, List, Optional, Tuple

import numpy as np

import benchmark_flags
from pipeline import environment
from serving import backend_flags

STARTUP_TIMEOUT_S = 180.0
# How much of the service's stderr an error shows: its last lines (a traceback's end, a logged error).
STDERR_TAIL_LINES = 20
_STDERR_TAIL_BYTES = 64 * 1024


class ServiceError(RuntimeError):
  """The started service exited, or never became healthy; the message ends with the tail of its stderr."""


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _get(host: str, port: int, path: str, timeout_s: float = 5.0) -> Tuple[int, bytes]:
  connection = http.client.HTTPConnection(host, port, timeout=timeout_s)
  try:
    connection.request('GET', path)
    response = connection.getresponse()
    return response.status, response.read()
  finally:
    connection.close()


def service_command(serving_dir: str, host: str, port: int) -> List[str]:
  """The command that starts the recommendation service on `serving_dir` at host:port."""
  return [sys.executable, '-m', 'serving.app', '--serving-dir', serving_dir, '--host', host, '--port', str(port)]


def stderr_tail(stderr: IO[bytes], lines: int = STDERR_TAIL_LINES) -> str:
  """The last `lines` lines of the service's stderr file (at most its last 64 KiB), or a note that it is empty."""
  stderr.flush()
  stderr.seek(0, 2)
  size = stderr.tell()
  stderr.seek(max(0, size - _STDERR_TAIL_BYTES))
  text = stderr.read().decode('utf-8', errors='replace').rstrip()
  if not text:
    return 'Its stderr is empty.'
  all_lines = text.splitlines()
  if len(all_lines) <= lines:
    return 'Its stderr:\n' + '\n'.join(all_lines)
  return f'Its stderr (last {lines} lines):\n' + '\n'.join(all_lines[-lines:])


def _exited_error(process: subprocess.Popen, stderr: IO[bytes], when: str) -> ServiceError:
  return ServiceError(f'The service exited with code {process.returncode} {when}. {stderr_tail(stderr)}')


def _wait_healthy(host: str, port: int, process: Optional[subprocess.Popen],
                  stderr: Optional[IO[bytes]] = None) -> Dict:
  """The service's /healthz answer once it is 200.

  Args:
    host: the service's host.
    port: the service's port.
    process: the started service (None: an already running one at `host:port`).
    stderr: the file `process` writes its stderr to, shown in the error.

  Raises:
    ServiceError: `process` exited first, or no 200 came within `STARTUP_TIMEOUT_S`.
  """
  deadline = time.time() + STARTUP_TIMEOUT_S
  while time.time() < deadline:
    if process is not None and process.poll() is not None:
      raise _exited_error(process, stderr, 'before becoming healthy')
    try:
      status, body = _get(host, port, '/healthz')
      if status == 200:
        return json.loads(body)
    except OSError:
      pass
    time.sleep(0.5)
  tail = f' {stderr_tail(stderr)}' if stderr is not None else ''
  raise ServiceError(f'The service on {host}:{port} was not healthy after {STARTUP_TIMEOUT_S:.0f} s.{tail}')


def _client_process(host: str, port: int, paths: List[str], clients: int, duration_s: float, offset: int,
                    results: 'multiprocessing.Queue') -> None:
  """Runs `clients` threads for `duration_s`; puts (latencies_s, errors, error_samples, start, end) on `results`.

  start and end (time.time(), s) bound the threads' requests, so the caller's rate leaves out process start-up.
  """
  latencies: List[float] = []
  errors = [0]
  samples: List[str] = []
  lock = threading.Lock()
  window_start = time.time()
  stop_at = window_start + duration_s

  def client(index: int) -> None:
    connection = http.client.HTTPConnection(host, port, timeout=30)
    local_latencies, local_errors, i = [], 0, offset + index * 7919
    while time.time() < stop_at:
      path = paths[i % len(paths)]
      i += 1
      start = time.perf_counter()
      try:
        connection.request('GET', path)
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
          local_errors += 1
          if len(samples) < 5:
            samples.append(f'{response.status} {body[:200]!r}')
        else:
          local_latencies.append(time.perf_counter() - start)
      except (OSError, http.client.HTTPException) as e:
        local_errors += 1
        if len(samples) < 5:
          samples.append(repr(e))
        connection.close()
        connection = http.client.HTTPConnection(host, port, timeout=30)
    connection.close()
    with lock:
      latencies.extend(local_latencies)
      errors[0] += local_errors

  threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  results.put((latencies, errors[0], samples, window_start, time.time()))


def _served_user_ids(serving_dir: str, retrieval_version: int) -> List[str]:
  """The known users of the served retrieval version's assets, in file order."""
  environment.use_legacy_keras()
  # pylint: disable=g-import-not-at-top  (TensorFlow loads here, after the Keras setting)
  from serving import assets as assets_lib
  from serving import models as models_lib
  assets_dir = assets_lib.assets_dir_of(
      models_lib.version_dir(serving_dir, models_lib.RETRIEVAL_MODEL, retrieval_version))
  return sorted(assets_lib.load_serving_assets(assets_dir).user_profiles)


def main(argv: Optional[List[str]] = None) -> int:
  """Runs the load and prints its figures. Returns the process exit code: 1 when the started service exits."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--serving-dir', help='Start the service on this serving directory.')
  parser.add_argument('--url', help='Load an already running service instead (needs --user-ids).')
  parser.add_argument('--user-ids', help='Comma-separated user ids to request (default: the assets\' users).')
  parser.add_argument('--clients', type=benchmark_flags.positive_int, default=32)
  parser.add_argument('--client-processes', type=benchmark_flags.positive_int, default=2)
  parser.add_argument('--duration-s', type=backend_flags.positive_seconds, default=30.0)
  parser.add_argument('--k', type=int, default=10)
  parser.add_argument('--unknown-every', type=benchmark_flags.non_negative_int, default=20,
                      help='Every n-th request asks for an unknown user (0: never).')
  args = parser.parse_args(argv)
  if bool(args.serving_dir) == bool(args.url):
    parser.error('Pass exactly one of --serving-dir and --url.')

  process, stderr = None, None
  if args.url:
    parsed = urllib.parse.urlparse(args.url)
    try:
      host, port = parsed.hostname, parsed.port or 80
    except ValueError:  # a port that is not a number in 0-65535
      host = None
    if parsed.scheme != 'http' or not host:
      parser.error(f'--url {args.url}: not an http:// URL with a host and port; write e.g. http://127.0.0.1:8080.')
    if not args.user_ids:
      parser.error('--url needs --user-ids.')
  else:
    host, port = '127.0.0.1', _free_port()
    # A file, not a pipe: nothing reads the service's log during the load, and a full pipe would block it.
    stderr = tempfile.TemporaryFile()  # pylint: disable=consider-using-with  (closed in the finally below)
    process = subprocess.Popen(service_command(args.serving_dir, host, port), stdout=subprocess.DEVNULL,
                               stderr=stderr)
  try:
    return _load(args, host, port, process, stderr)
  except ServiceError as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  finally:
    if process is not None:
      process.terminate()
      process.wait(timeout=30)
    if stderr is not None:
      stderr.close()


def _load(args: argparse.Namespace, host: str, port: int, process: Optional[subprocess.Popen],
          stderr: Optional[IO[bytes]]) -> int:
  """Waits for the service, runs the clients and prints the figures. Returns the process exit code.

  Raises:
    ServiceError: the started service exited before it was healthy or during the load, or never became healthy.
  """
  health = _wait_healthy(host, port, process, stderr)
  if args.user_ids:
    users = args.user_ids.split(',')
  else:
    users = _served_user_ids(args.serving_dir, int(health['model_versions']['retrieval']))
  known = [f'/v1/recommendations?user_id={urllib.parse.quote(user)}&k={args.k}' for user in users]
  every = args.unknown_every
  # Positions n-1, 2n-1, ... ask for an unknown user, the others for the known users in turn, until each known
  # user is asked once and the list (which the clients cycle through) is a whole number of n requests.
  total = len(known) if every <= 1 else -(-len(known) // (every - 1)) * every
  paths = []
  for position in range(total):
    if every and position % every == every - 1:
      paths.append(f'/v1/recommendations?user_id=unknown-{position}&k={args.k}')
    else:
      paths.append(known[(position - (position // every if every else 0)) % len(known)])

  # Client processes are spawned (not forked from this process, which may have loaded TensorFlow).
  context = multiprocessing.get_context('spawn')
  results = context.Queue()
  per_process = [args.clients // args.client_processes + (i < args.clients % args.client_processes)
                 for i in range(args.client_processes)]
  workers = [context.Process(target=_client_process,
                             args=(host, port, paths, n, args.duration_s, i * 104729, results))
             for i, n in enumerate(per_process) if n]
  for worker in workers:
    worker.start()
  latencies: List[float] = []
  errors, samples, starts, ends = 0, [], [], []
  for _ in workers:
    worker_latencies, worker_errors, worker_samples, worker_start, worker_end = results.get()
    latencies += worker_latencies
    errors += worker_errors
    samples += worker_samples
    starts.append(worker_start)
    ends.append(worker_end)
  for worker in workers:
    worker.join()
  # From the first client's start to the last one's end: spawning the client processes is not load.
  wall = max(ends) - min(starts)
  ms = np.array(latencies) * 1e3
  print(f'model_versions {health["model_versions"]}')
  print(f'clients={args.clients} (processes={len(workers)}) duration={wall:.1f}s ok={len(latencies)} '
        f'errors={errors} requests_per_s={len(latencies) / wall:.1f}')
  if len(ms):
    print(f'latency p50={np.percentile(ms, 50):.1f}ms p99={np.percentile(ms, 99):.1f}ms')
  for sample in samples[:5]:
    print(f'error sample: {sample}')
  if process is not None and process.poll() is not None:  # the figures above are of a service that died
    raise _exited_error(process, stderr, 'during the load')
  return 0


if __name__ == '__main__':
  sys.exit(main())
