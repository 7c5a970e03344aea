"""Test session setup: Keras 2 for TFRS before anything imports TensorFlow, and shared fixtures."""

from pipeline import environment

environment.use_legacy_keras()

# pylint: disable=g-import-not-at-top,wrong-import-position
import pytest

from tests import pipeline_runs


@pytest.fixture(scope='session')
def fixture_pipeline_run(tmp_path_factory) -> pipeline_runs.PipelineRun:
  """One completed local pipeline run on generated interactions, shared read-only by the tests of a session.

  Tests must not change its output directory; a test that needs to run the pipeline again uses its own.
  """
  root = tmp_path_factory.mktemp('fixture_run')
  csv = pipeline_runs.write_fixture_interactions(str(root / 'interactions.csv'))
  run = pipeline_runs.run_pipeline(str(root / 'output'), csv)
  assert run.exit_code == 0, f'the fixture pipeline run failed; see the log above ({run.output_dir})'
  return run
