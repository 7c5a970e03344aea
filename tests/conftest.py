"""Test session setup: Keras 2 for TFRS before anything imports TensorFlow, and shared fixtures."""

from pipeline import environment

environment.use_legacy_keras()

# pylint: disable=g-import-not-at-top,wrong-import-position
import fcntl
import os

import pytest

from tests import pipeline_runs


@pytest.fixture(scope='session')
def fixture_pipeline_run(tmp_path_factory) -> pipeline_runs.PipelineRun:
  """One completed local pipeline run on generated interactions, shared read-only by the tests of a session.

  Tests must not change its output directory; a test that needs to run the pipeline again uses its own. With
  pytest-xdist (bin/run-tests) the workers of a session share one run: the first worker that needs it runs
  it in their common temporary directory while the others wait on a lock.
  """
  root = tmp_path_factory.getbasetemp()
  if os.environ.get('PYTEST_XDIST_WORKER'):
    root = root.parent  # the session's directory; each worker's own is popen-gw<N> under it
  run_root = root / 'fixture_run'
  output_dir, csv = str(run_root / 'output'), str(run_root / 'interactions.csv')
  with open(root / 'fixture_run.lock', 'w', encoding='utf-8') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    exit_code_file = run_root / 'exit_code'
    if exit_code_file.exists():
      run = pipeline_runs.PipelineRun(output_dir, csv, int(exit_code_file.read_text(encoding='utf-8')))
    else:
      run_root.mkdir()
      pipeline_runs.write_fixture_interactions(csv)
      run = pipeline_runs.run_pipeline(output_dir, csv)
      exit_code_file.write_text(str(run.exit_code), encoding='utf-8')
  assert run.exit_code == 0, f'the fixture pipeline run failed; see the first test that used it ({output_dir})'
  return run


@pytest.fixture
def movielens_stub_dir(tmp_path) -> str:
  """A folder the benchmarks' --data-dir check accepts: the MovieLens 100K file names, empty (nothing reads them)."""
  for name in ('u.data', 'u.item', 'u.user', 'u.genre'):
    (tmp_path / name).write_text('')
  return str(tmp_path)
