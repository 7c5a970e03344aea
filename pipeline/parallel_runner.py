"""ParallelLocalDagRunner: TFX's LocalDagRunner, launching components whose upstream nodes finished side by side.

TFX 1.16's LocalDagRunner launches the pipeline's nodes one after another in topological order (its own source
leaves running independent components in parallel as a TODO, b/171319478). After Transform this pipeline has two
independent branches, ranking (Trainer -> Evaluator -> segment gate -> Pusher) and retrieval (Trainer -> gate ->
Pusher), and each of their components keeps about one core busy (TF graphs of small batches, Beam's in-memory
runner). This runner is LocalDagRunner with one change: a node is launched as soon as every node upstream of it
finished, up to `max_parallel` at a time, so the retrieval branch runs beside the ranking one.

The run lasts as long as its longest chain of nodes, so that chain gets the CPU first. Of the nodes ready at once,
the one with the longest chain of nodes below it is launched first and, when this process is free, in this
process (the ranking Trainer, with Evaluator, segment gate and Pusher below it, before the retrieval Trainer, with
gate and Pusher); worker processes run `WORKER_NICENESS` steps nicer than this one. A niced worker still has a core
of its own whenever this process leaves one idle; when both want the same core (TensorFlow's thread pools, Beam),
this process gets it. Ties keep the IR's order (TFX's: by depth, then by node id).

Each node is launched exactly as LocalDagRunner launches it (the same portable `Launcher`, IR, run id, executor
specs and ML Metadata store); only where it runs differs: one node at a time in this process (a thread), the
others in worker processes started with `spawn` (TensorFlow is not fork-safe once its thread pools exist). Worker
processes start when the run starts, so their imports (~10 s) overlap ExampleGen. Ctrl-C stops the run at once:
the workers are terminated, and the node in this process runs on a daemon thread, which ends with the process.

ML Metadata's SQLite store sets no busy timeout: a commit that meets another connection's open transaction fails
with 'database is locked', fatally in MLMD's C++. Every connection a launcher opens therefore holds an exclusive
lock on `<store>.lock` while it is open. Launchers open it only to read or write ML Metadata (resolve inputs,
register, publish), never while their executor runs, so components still run side by side.

When a node fails, no further node is launched, the running ones finish (and are recorded in ML Metadata), and
the first failure is raised, as LocalDagRunner raises it. Partial runs (`run_options`) and `max_parallel=1` are
handed to LocalDagRunner unchanged.
"""

import concurrent.futures
import datetime
import fcntl
import multiprocessing
import os
import threading
import types
from typing import Any, Callable, Dict, List, Optional, Set, Type

from absl import logging
from ml_metadata.proto import metadata_store_pb2
from tfx.dsl.compiler import constants
from tfx.orchestration import metadata
from tfx.orchestration.local import runner_utils
from tfx.orchestration.local.local_dag_runner import LocalDagRunner
from tfx.orchestration.portable import launcher, runtime_parameter_utils
from tfx.proto.orchestration import local_deployment_config_pb2, pipeline_pb2
from tfx.utils import telemetry_utils

from pipeline import environment

# Suffix of the lock file beside a SQLite ML Metadata store.
METADATA_LOCK_SUFFIX = '.lock'
# How often the runner's main thread wakes up while components run, to act on a Ctrl-C (see _Schedule.run).
WAKE_UP_SECONDS = 1.0
# How much nicer (lower CPU priority, `os.nice`) worker processes run than the runner's own process: at 10 the
# kernel gives a busy worker about a tenth of the CPU share of a busy runner on the same core.
WORKER_NICENESS = 10


class LockedMetadata(metadata.Metadata):
  """An ML Metadata connection that holds an exclusive file lock while it is open (entered).

  Re-entering the same connection (the Launcher nests `with` blocks) does not lock again; the lock is released
  when the outermost block exits. `lock_path` None (a store that is not SQLite) takes no lock.
  """

  def __init__(self, connection_config: metadata_store_pb2.ConnectionConfig, lock_path: Optional[str]) -> None:
    super().__init__(connection_config)
    self._lock_path = lock_path
    self._lock_file = None
    self._depth = 0
    self._depth_lock = threading.Lock()

  def __enter__(self) -> 'LockedMetadata':
    with self._depth_lock:
      if self._depth == 0 and self._lock_path:
        lock_file = open(self._lock_path, 'a')  # pylint: disable=consider-using-with  (closed in _release)
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        self._lock_file = lock_file
      self._depth += 1
    try:
      super().__enter__()
    except BaseException:
      self._release()
      raise
    return self

  def __exit__(self, exc_type: Optional[Type[BaseException]] = None, exc_value: Optional[BaseException] = None,
               exc_tb: Optional[types.TracebackType] = None) -> None:
    try:
      super().__exit__(exc_type, exc_value, exc_tb)
    finally:
      self._release()

  def _release(self) -> None:
    with self._depth_lock:
      self._depth -= 1
      if self._depth == 0 and self._lock_file is not None:
        fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        self._lock_file.close()
        self._lock_file = None


def metadata_lock_path(connection_config: metadata_store_pb2.ConnectionConfig) -> Optional[str]:
  """The lock file beside a SQLite store (`<filename_uri>.lock`); None for any other store."""
  if connection_config.WhichOneof('config') != 'sqlite':
    return None
  return connection_config.sqlite.filename_uri + METADATA_LOCK_SUFFIX


def launch_node(pipeline_ir: bytes, node_id: str) -> None:
  """Launches one node of a pipeline IR (run id already substituted) as LocalDagRunner does.

  Runs in the runner's process or in a worker process; both parse the same serialized IR.

  Raises:
    Whatever the node's launch raises (e.g. its executor's error).
  """
  pipeline = pipeline_pb2.Pipeline.FromString(pipeline_ir)
  deployment_config = runner_utils.extract_local_deployment_config(pipeline)
  connection_config = _connection_config(deployment_config)
  pipeline_node = next(node.pipeline_node for node in pipeline.nodes
                       if node.pipeline_node.node_info.id == node_id)
  logging.info('Component %s is running.', node_id)
  launcher.Launcher(
      pipeline_node=pipeline_node,
      mlmd_connection=LockedMetadata(connection_config, metadata_lock_path(connection_config)),
      pipeline_info=pipeline.pipeline_info,
      pipeline_runtime_spec=pipeline.runtime_spec,
      executor_spec=runner_utils.extract_executor_spec(deployment_config, node_id),
      custom_driver_spec=runner_utils.extract_custom_driver_spec(deployment_config, node_id),
  ).launch()
  logging.info('Component %s is finished.', node_id)


def _connection_config(
    deployment_config: local_deployment_config_pb2.LocalDeploymentConfig) -> metadata_store_pb2.ConnectionConfig:
  """The ML Metadata connection of a local deployment config (as LocalDagRunner reads it)."""
  config = deployment_config.metadata_connection_config
  return getattr(config, config.WhichOneof('connection_config'))


def _start_worker(verbosity: int, niceness: int) -> None:
  """Worker process initializer: checks Keras 2 is in use (TFRS needs it; `TF_USE_LEGACY_KERAS` is inherited
  from the parent), takes the parent's log verbosity and runs `niceness` steps nicer than the parent."""
  environment.use_legacy_keras()
  logging.set_verbosity(verbosity)
  os.nice(niceness)


def _warm_up() -> None:
  """A task that only makes a worker process start (and import TFX) before its first node is ready."""


def _in_daemon_thread(thread_name: str, function: Callable[..., None], *args: Any) -> concurrent.futures.Future:
  """Calls `function(*args)` in a new daemon thread named `thread_name`; the future holds what it returns or
  raises.

  A daemon thread, unlike a ThreadPoolExecutor's, does not keep the process alive: on Ctrl-C the runner raises
  KeyboardInterrupt without waiting for the node running in this process to finish.
  """
  future: concurrent.futures.Future = concurrent.futures.Future()

  def call() -> None:
    future.set_running_or_notify_cancel()
    try:
      future.set_result(function(*args))
    except BaseException as error:  # pylint: disable=broad-except  # handed to the future, which re-raises it
      future.set_exception(error)

  threading.Thread(target=call, name=thread_name, daemon=True).start()
  return future


def longest_chains_below(pipeline: pipeline_pb2.Pipeline) -> Dict[str, int]:
  """Per node id: how many nodes the longest chain of downstream nodes starting below it holds (0: a leaf).

  Raises:
    RuntimeError: when the IR's nodes are not in topological order (a downstream node listed before its parent).
  """
  chain_lengths: Dict[str, int] = {}
  for node in reversed(pipeline.nodes):  # the IR lists a node before every node downstream of it
    node_id = node.pipeline_node.node_info.id
    below = list(node.pipeline_node.downstream_nodes)
    unknown = [child for child in below if child not in chain_lengths]
    if unknown:
      raise RuntimeError(f'Node {node_id} is listed after its downstream nodes {unknown}: the pipeline IR is not '
                         'in topological order.')
    chain_lengths[node_id] = max((chain_lengths[child] + 1 for child in below), default=0)
  return chain_lengths


def default_max_parallel() -> int:
  """One component per core this process may use (its CPU affinity, e.g. a container's cpuset), at least 1."""
  return max(1, len(os.sched_getaffinity(0)))


class ParallelLocalDagRunner(LocalDagRunner):
  """LocalDagRunner that launches independent components side by side (see the module docstring)."""

  def __init__(self, max_parallel: Optional[int] = None, worker_niceness: int = WORKER_NICENESS) -> None:
    """Args:
      max_parallel: components running at once (one in this process, the rest in worker processes); None: one
        per core. 1 is LocalDagRunner itself.
      worker_niceness: how many steps nicer than this process the worker processes run (0: as nice as it).
    """
    super().__init__()
    self._max_parallel = default_max_parallel() if max_parallel is None else max_parallel
    if self._max_parallel < 1:
      raise ValueError(f'max_parallel={self._max_parallel} must be >= 1 (1 runs components one at a time).')
    if worker_niceness < 0:
      raise ValueError(f'worker_niceness={worker_niceness} must be >= 0: a worker may be as nice as the runner '
                       'or nicer (raising its priority needs privileges).')
    self._worker_niceness = worker_niceness

  def run_with_ir(self, pipeline: pipeline_pb2.Pipeline,
                  run_options: Optional[pipeline_pb2.RunOptions] = None) -> None:
    """Runs the pipeline IR, launching each node once its upstream nodes finished.

    Raises:
      The first node failure, after the nodes running beside it finished.
    """
    if run_options or self._max_parallel == 1:
      super().run_with_ir(pipeline, run_options)
      return
    runtime_parameter_utils.substitute_runtime_parameter(
        pipeline, {constants.PIPELINE_RUN_ID_PARAMETER_NAME:
                   datetime.datetime.now().isoformat()})
    logging.info('Running %s with up to %d components at once.', pipeline.pipeline_info.id, self._max_parallel)
    with telemetry_utils.scoped_labels({telemetry_utils.LABEL_TFX_RUNNER: 'local'}):
      _Schedule(pipeline, self._max_parallel, self._worker_niceness).run()


class _Schedule:
  """One run's launches: which nodes are waiting, running and finished, and where each runs."""

  def __init__(self, pipeline: pipeline_pb2.Pipeline, max_parallel: int, worker_niceness: int) -> None:
    self._pipeline_ir = pipeline.SerializeToString()
    chain_lengths = longest_chains_below(pipeline)
    # Node ids, the longest chain below first, ties in the IR's topological order (sorted() is stable); nodes a
    # partial run skips never get here (see run_with_ir).
    self._waiting: List[str] = sorted((node.pipeline_node.node_info.id for node in pipeline.nodes),
                                      key=lambda node_id: -chain_lengths[node_id])
    self._upstream: Dict[str, Set[str]] = {
        node.pipeline_node.node_info.id: set(node.pipeline_node.upstream_nodes) for node in pipeline.nodes}
    self._finished: Set[str] = set()
    self._num_workers = max_parallel - 1
    self._worker_niceness = worker_niceness

  def run(self) -> None:
    """Launches every node once its upstream nodes finished; raises the first failure.

    Raises:
      KeyboardInterrupt: at once on Ctrl-C (SIGINT), after terminating the worker processes, without waiting for
        the node in this process: its thread is a daemon thread, which ends when the process does.
    """
    waiting = self._waiting
    running: Dict[concurrent.futures.Future, str] = {}
    in_process_future: Optional[concurrent.futures.Future] = None
    failure: Optional[BaseException] = None
    context = multiprocessing.get_context('spawn')
    children_before = set(multiprocessing.active_children())
    interrupted = False
    workers = concurrent.futures.ProcessPoolExecutor(max_workers=self._num_workers, mp_context=context,
                                                     initializer=_start_worker,
                                                     initargs=(logging.get_verbosity(), self._worker_niceness))
    try:
      for _ in range(self._num_workers):
        workers.submit(_warm_up)
      while True:
        if failure is None:
          for node_id in [n for n in waiting if self._upstream[n] <= self._finished]:
            if in_process_future is None:
              future = in_process_future = _in_daemon_thread(node_id, launch_node, self._pipeline_ir, node_id)
            elif len(running) - 1 < self._num_workers:  # `running` holds the in-process launch too
              future = workers.submit(launch_node, self._pipeline_ir, node_id)
            else:
              break
            running[future] = node_id
            waiting.remove(node_id)
        if not running:
          break
        # Wakes up every WAKE_UP_SECONDS even when no component finishes: the kernel may deliver a Ctrl-C
        # (SIGINT) to another thread of this process (the in-process component's, TensorFlow's), and then Python
        # raises KeyboardInterrupt only once this thread runs again; a wait without a timeout never returned.
        done, _ = concurrent.futures.wait(running, timeout=WAKE_UP_SECONDS,
                                          return_when=concurrent.futures.FIRST_COMPLETED)
        for future in done:
          node_id = running.pop(future)
          if future is in_process_future:
            in_process_future = None
          error = future.exception()
          if error is not None:
            logging.error('Component %s failed: %s', node_id, error)
            failure = failure or error
          else:
            self._finished.add(node_id)
    except KeyboardInterrupt:
      interrupted = True
      logging.error('Interrupted while %s ran: stopping the worker processes.', sorted(running.values()))
      # A terminal's Ctrl-C reaches the workers too; `kill -INT <runner pid>` reaches only this process.
      for child in set(multiprocessing.active_children()) - children_before:
        child.terminate()
      raise
    finally:
      workers.shutdown(wait=not interrupted, cancel_futures=interrupted)
    if failure is not None:
      raise failure
    if waiting:
      raise RuntimeError(f'Components {waiting} never had all their upstream nodes finish: the pipeline IR is '
                         'not a DAG.')
