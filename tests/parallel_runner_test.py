"""ParallelLocalDagRunner: independent components run side by side, dependencies and failures are respected."""

import contextlib
import fcntl
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time
from typing import Iterator, List, Tuple

import pytest
from tfx import v1 as tfx
from tfx.dsl.component.experimental.annotations import Parameter
from tfx.dsl.component.experimental.decorators import component

import local_runner
from pipeline import parallel_runner
from tests import pipeline_runs

# How long a rendezvous component waits for its partner to start: generous, because the partner may first
# have to start a worker process (imports ~10 s, more on a loaded CI machine).
RENDEZVOUS_TIMEOUT_SECONDS = 240.0
EVENTS_FILE = 'events.log'
# The repository root: the runner subprocesses of the SIGINT tests import the project from there.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _record(marker_dir: str, name: str, event: str) -> None:
  """Appends '<name> <event>' to the events file (one line per write, appends are atomic at this size)."""
  with open(os.path.join(marker_dir, EVENTS_FILE), 'a', encoding='utf-8') as events:
    events.write(f'{name} {event}\n')


def _events(marker_dir: str) -> List[Tuple[str, str]]:
  with open(os.path.join(marker_dir, EVENTS_FILE), encoding='utf-8') as events:
    return [tuple(line.split()) for line in events]


@component
def Rendezvous(marker_dir: Parameter[str], name: Parameter[str], partner: Parameter[str]) -> None:
  """Starts, then waits until `partner` started too: finishes only if both run at the same time."""
  _record(marker_dir, name, 'start')
  deadline = time.monotonic() + RENDEZVOUS_TIMEOUT_SECONDS
  while (partner, 'start') not in _events(marker_dir):
    if time.monotonic() > deadline:
      raise TimeoutError(f'{name}: {partner} did not start within {RENDEZVOUS_TIMEOUT_SECONDS} s')
    time.sleep(0.05)
  _record(marker_dir, name, 'end')


@component
def Step(marker_dir: Parameter[str], name: Parameter[str], fail: Parameter[int] = 0) -> None:
  """Records its start and end; raises RuntimeError naming itself when `fail` is 1."""
  _record(marker_dir, name, 'start')
  if fail:
    raise RuntimeError(f'{name} failed on purpose')
  _record(marker_dir, name, 'end')


@component
def Sleep(marker_dir: Parameter[str], name: Parameter[str], seconds: Parameter[int]) -> None:
  """Writes its process id to `<name>.pid`, records its start, sleeps `seconds`, records its end."""
  with open(os.path.join(marker_dir, f'{name}.pid'), 'w', encoding='utf-8') as pid_file:
    pid_file.write(str(os.getpid()))
  _record(marker_dir, name, 'start')
  time.sleep(seconds)
  _record(marker_dir, name, 'end')


@component
def InterruptOwnThread(marker_dir: Parameter[str], name: Parameter[str], partner: Parameter[str],
                       seconds: Parameter[int]) -> None:
  """Like Sleep, but once `partner` started it sends SIGINT to its own thread (the signal lands there, not on the
  runner's main thread, as the kernel may deliver a terminal's Ctrl-C), then sleeps `seconds`."""
  with open(os.path.join(marker_dir, f'{name}.pid'), 'w', encoding='utf-8') as pid_file:
    pid_file.write(str(os.getpid()))
  _record(marker_dir, name, 'start')
  deadline = time.monotonic() + RENDEZVOUS_TIMEOUT_SECONDS
  while (partner, 'start') not in _events(marker_dir) and time.monotonic() < deadline:
    time.sleep(0.05)
  _record(marker_dir, name, 'interrupts')
  signal.pthread_kill(threading.get_ident(), signal.SIGINT)
  time.sleep(seconds)
  _record(marker_dir, name, 'end')


@component
def WhereAndHowNice(marker_dir: Parameter[str], name: Parameter[str]) -> None:
  """Writes '<process id> <niceness>' to `<name>.where` and records its start and end."""
  _record(marker_dir, name, 'start')
  with open(os.path.join(marker_dir, f'{name}.where'), 'w', encoding='utf-8') as where:
    where.write(f'{os.getpid()} {os.nice(0)}')
  _record(marker_dir, name, 'end')


def _where_and_how_nice(marker_dir: str, name: str) -> Tuple[int, int]:
  with open(os.path.join(marker_dir, f'{name}.where'), encoding='utf-8') as where:
    pid, niceness = where.read().split()
  return int(pid), int(niceness)


def _run(tmp_path, components, max_parallel: int = 2) -> None:
  pipeline = tfx.dsl.Pipeline(
      pipeline_name='parallel-runner-test',
      pipeline_root=str(tmp_path / 'root'),
      components=components,
      metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
          str(tmp_path / 'metadata.sqlite')),
      enable_cache=False)
  parallel_runner.ParallelLocalDagRunner(max_parallel=max_parallel).run(pipeline)


@pytest.mark.slow
def test_independent_components_run_at_once_and_a_common_child_after_both(tmp_path):
  marker_dir = str(tmp_path)
  first = Rendezvous(marker_dir=marker_dir, name='first', partner='second').with_id('first')
  second = Rendezvous(marker_dir=marker_dir, name='second', partner='first').with_id('second')
  child = Step(marker_dir=marker_dir, name='child').with_id('child')
  child.add_upstream_node(first)
  child.add_upstream_node(second)

  _run(tmp_path, [first, second, child])

  events = _events(marker_dir)
  # Each rendezvous ended, so each saw the other start before it ended: they overlapped.
  assert sorted(events[:4]) == [('first', 'end'), ('first', 'start'), ('second', 'end'), ('second', 'start')]
  assert events[4:] == [('child', 'start'), ('child', 'end')]


@pytest.mark.slow
def test_the_longest_chain_runs_in_this_process_and_the_others_in_lower_priority_workers(tmp_path):
  marker_dir = str(tmp_path)
  # Both roots are ready at once. TFX orders the IR by depth, then by id, so `a_short` comes first, but `b_head`
  # has two nodes below it (head -> middle -> tail), `a_short` none: `b_head` takes this process, `a_short` a worker.
  short = WhereAndHowNice(marker_dir=marker_dir, name='short').with_id('a_short')
  head = WhereAndHowNice(marker_dir=marker_dir, name='head').with_id('b_head')
  middle = WhereAndHowNice(marker_dir=marker_dir, name='middle').with_id('c_middle')
  tail = WhereAndHowNice(marker_dir=marker_dir, name='tail').with_id('d_tail')
  middle.add_upstream_node(head)
  tail.add_upstream_node(middle)

  _run(tmp_path, [short, head, middle, tail])

  here, niceness_here = os.getpid(), os.nice(0)
  assert _where_and_how_nice(marker_dir, 'head') == (here, niceness_here)
  short_pid, short_niceness = _where_and_how_nice(marker_dir, 'short')
  assert short_pid != here
  # The worker asked for WORKER_NICENESS (10) more than this process has; the kernel's ceiling is 19.
  assert short_niceness == min(niceness_here + 10, 19)


def test_the_ranking_branch_has_the_longest_chain_after_transform():
  from tfx.dsl.compiler import compiler  # pylint: disable=g-import-not-at-top
  from pipeline import configs  # pylint: disable=g-import-not-at-top
  ir = compiler.Compiler().compile(pipeline_runs.kubeflow_pipeline())

  chains = parallel_runner.longest_chains_below(ir)

  # ranking: Trainer -> Evaluator -> segment gate -> Pusher; retrieval: Trainer -> gate -> Pusher.
  assert chains[configs.RANKING_TRAINER_ID] == 3
  assert chains[configs.RETRIEVAL_TRAINER_ID] == 2
  assert chains[configs.RANKING_PUSHER_ID] == chains[configs.RETRIEVAL_PUSHER_ID] == 0
  assert chains[configs.TRANSFORM_ID] == 4


def test_an_ir_out_of_topological_order_is_refused():
  from tfx.proto.orchestration import pipeline_pb2  # pylint: disable=g-import-not-at-top

  def ir_listing(*node_ids: str) -> pipeline_pb2.Pipeline:
    ir = pipeline_pb2.Pipeline()
    for node_id in node_ids:
      node = ir.nodes.add().pipeline_node
      node.node_info.id = node_id
      if node_id == 'parent':
        node.downstream_nodes.append('child')
    return ir

  assert parallel_runner.longest_chains_below(ir_listing('parent', 'child')) == {'parent': 1, 'child': 0}
  with pytest.raises(RuntimeError, match=r"Node parent is listed after its downstream nodes \['child'\]"):
    parallel_runner.longest_chains_below(ir_listing('child', 'parent'))


def test_a_negative_worker_niceness_is_refused():
  with pytest.raises(ValueError, match='worker_niceness=-1 must be >= 0'):
    parallel_runner.ParallelLocalDagRunner(worker_niceness=-1)


@pytest.mark.slow
def test_a_failure_stops_its_descendants_lets_its_sibling_finish_and_is_raised(tmp_path):
  marker_dir = str(tmp_path)
  broken = Step(marker_dir=marker_dir, name='broken', fail=1).with_id('broken')
  sibling = Step(marker_dir=marker_dir, name='sibling').with_id('sibling')
  descendant = Step(marker_dir=marker_dir, name='descendant').with_id('descendant')
  descendant.add_upstream_node(broken)

  with pytest.raises(RuntimeError, match='broken failed on purpose'):
    _run(tmp_path, [broken, sibling, descendant])

  events = _events(marker_dir)
  assert ('sibling', 'end') in events
  assert ('broken', 'start') in events and ('broken', 'end') not in events
  assert not [event for event in events if event[0] == 'descendant']


def _lock_is_free(lock_path: str) -> bool:
  """Whether another open file could take the exclusive lock now (and gives it back at once)."""
  with open(lock_path, 'a', encoding='utf-8') as probe:
    try:
      fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      return False
    fcntl.flock(probe, fcntl.LOCK_UN)
    return True


def test_a_metadata_connection_holds_the_store_lock_while_open_and_nested_opens_keep_it(tmp_path):
  config = tfx.orchestration.metadata.sqlite_metadata_connection_config(str(tmp_path / 'metadata.sqlite'))
  lock_path = parallel_runner.metadata_lock_path(config)
  assert lock_path == str(tmp_path / 'metadata.sqlite') + '.lock'
  connection = parallel_runner.LockedMetadata(config, lock_path)

  with connection as outer:
    assert not _lock_is_free(lock_path)
    with connection:
      assert outer.store.get_artifacts() == []
    assert not _lock_is_free(lock_path)  # the outer block still holds it
  assert _lock_is_free(lock_path)


def test_a_failed_connection_gives_the_lock_back(tmp_path):
  config = tfx.orchestration.metadata.sqlite_metadata_connection_config(str(tmp_path / 'metadata.sqlite'))
  connection = parallel_runner.LockedMetadata(config, str(tmp_path / 'store.lock'))
  with pytest.raises(ZeroDivisionError):
    with connection:
      _ = 1 / 0
  assert _lock_is_free(str(tmp_path / 'store.lock'))


def test_only_a_sqlite_store_has_a_lock_file():
  mysql = tfx.orchestration.metadata.mysql_metadata_connection_config(
      host='localhost', port=3306, database='mlmd', username='tfx', password='')
  assert parallel_runner.metadata_lock_path(mysql) is None


def test_max_parallel_below_one_is_refused():
  with pytest.raises(ValueError, match='max_parallel=0 must be >= 1'):
    parallel_runner.ParallelLocalDagRunner(max_parallel=0)


def test_local_runner_refuses_a_negative_parallel_components(capsys):
  with pytest.raises(SystemExit) as exit_info:
    local_runner.parse_args(['--data-dir', 'x', '--output-dir', 'y', '--parallel-components', '-1'])
  assert exit_info.value.code == 2
  assert '--parallel-components=-1 must be >= 0' in capsys.readouterr().err


# Runs two 600-second Sleep components side by side in a runner process of its own: 'a' (launched first) in the
# runner's process, 'b' in a worker process.
_TWO_SLEEPERS = """
import signal
# Ctrl-C handling as a terminal's shell starts a program: the test session's processes may have SIGINT ignored or
# blocked by the time this test runs (two fresh-clone CI runs of this suite), which this process would inherit.
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
from pipeline import environment
environment.use_legacy_keras()
import pathlib, sys
from tests import parallel_runner_test as t
marker_dir = pathlib.Path(sys.argv[1])
t._run(marker_dir, [t.Sleep(marker_dir=str(marker_dir), name=name, seconds=600).with_id(name) for name in 'ab'])
"""


def _alive(pid: int) -> bool:
  """True while process `pid` exists and is not a zombie."""
  try:
    with open(f'/proc/{pid}/stat', encoding='utf-8') as stat:
      return stat.read().rsplit(')', 1)[1].split()[0] != 'Z'
  except FileNotFoundError:
    return False


@contextlib.contextmanager
def _runner_process(script: str, marker_dir: pathlib.Path, log_path: pathlib.Path) -> Iterator[subprocess.Popen]:
  """Runs `script` (a runner script above, given `marker_dir`) in a Python subprocess logging to `log_path`.

  The process is killed on leaving the block if it is still running (a failed assertion must not leave it behind).
  """
  with open(log_path, 'w', encoding='utf-8') as log:
    runner = subprocess.Popen([sys.executable, '-c', script, str(marker_dir)], cwd=_ROOT, stdout=log,
                              stderr=subprocess.STDOUT, env={**os.environ, 'PYTHONPATH': _ROOT})
    try:
      yield runner
    finally:
      if runner.poll() is None:
        runner.kill()


def _assert_terminated_soon(pid: int, name: str) -> None:
  """Asserts process `pid` (the worker running component `name`) is gone within 30 s."""
  deadline = time.monotonic() + 30
  while _alive(pid) and time.monotonic() < deadline:
    time.sleep(0.2)
  assert not _alive(pid), f'the worker process running {name} should have been terminated'


@pytest.mark.slow
def test_sigint_stops_the_run_at_once_and_its_worker_processes(tmp_path):
  marker_dir = tmp_path / 'markers'
  marker_dir.mkdir()
  with _runner_process(_TWO_SLEEPERS, marker_dir, tmp_path / 'runner.log') as runner:
    deadline = time.monotonic() + RENDEZVOUS_TIMEOUT_SECONDS
    while not all(os.path.exists(marker_dir / f'{name}.pid') for name in 'ab') or len(_events(marker_dir)) < 2:
      assert runner.poll() is None and time.monotonic() < deadline, 'both sleepers should have started'
      time.sleep(0.2)
    pids = {name: int((marker_dir / f'{name}.pid').read_text(encoding='utf-8')) for name in 'ab'}
    assert pids['a'] == runner.pid and pids['b'] != runner.pid  # one in the runner, one in a worker

    interrupted_at = time.monotonic()
    os.kill(runner.pid, signal.SIGINT)  # to the runner only, as `kill -INT`; a terminal's Ctrl-C reaches all
    exit_code = runner.wait(timeout=300)
    seconds_to_stop = time.monotonic() - interrupted_at
  # Without the fix the runner waited for 'a' to finish its 600 s; 300 s leaves room for a loaded machine.
  assert seconds_to_stop < 300
  assert exit_code != 0
  assert 'KeyboardInterrupt' in (tmp_path / 'runner.log').read_text(encoding='utf-8')
  assert sorted(_events(str(marker_dir))) == [('a', 'start'), ('b', 'start')]  # neither finished its sleep
  _assert_terminated_soon(pids['b'], 'b')


_SIGINT_TO_A_COMPONENT_THREAD = """
import signal
# Ctrl-C handling as a terminal's shell starts a program: the test session's processes may have SIGINT ignored or
# blocked by the time this test runs (two fresh-clone CI runs of this suite), which this process would inherit.
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
from pipeline import environment
environment.use_legacy_keras()
import pathlib, sys
from tests import parallel_runner_test as t
marker_dir = pathlib.Path(sys.argv[1])
t._run(marker_dir, [t.InterruptOwnThread(marker_dir=str(marker_dir), name='a', partner='b', seconds=600).with_id('a'),
                    t.Sleep(marker_dir=str(marker_dir), name='b', seconds=600).with_id('b')])
"""


@pytest.mark.slow
def test_sigint_delivered_to_another_thread_still_stops_the_run(tmp_path):
  # The kernel may deliver a process's SIGINT to any thread that does not block it. The runner's main thread used
  # to wait on the components without a timeout, and with the signal on another thread that wait never returned:
  # run alone, this test hung with that runner (killed after 90 s).
  marker_dir = tmp_path / 'markers'
  marker_dir.mkdir()
  with _runner_process(_SIGINT_TO_A_COMPONENT_THREAD, marker_dir, tmp_path / 'runner.log') as runner:
    exit_code = runner.wait(timeout=RENDEZVOUS_TIMEOUT_SECONDS + 60)
  assert exit_code != 0
  assert 'KeyboardInterrupt' in (tmp_path / 'runner.log').read_text(encoding='utf-8')
  pids = {name: int((marker_dir / f'{name}.pid').read_text(encoding='utf-8')) for name in 'ab'}
  assert pids['a'] == runner.pid  # a ran in the runner, on a thread other than its main thread
  assert sorted(_events(str(marker_dir))) == [('a', 'interrupts'), ('a', 'start'), ('b', 'start')]
  _assert_terminated_soon(pids['b'], 'b')
