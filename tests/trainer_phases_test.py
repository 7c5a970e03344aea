"""benchmarks/trainer_phases.py on the fixture pipeline run: every phase is timed and the trained model is sane."""

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmarks'))
import trainer_phases  # pylint: disable=g-import-not-at-top,wrong-import-position

PHASES = ['read train split in canonical order', 'one pass over the training batches', 'fit (train_ranking_model)',
          'first training step, traced without AutoGraph', 'first training step, traced with AutoGraph',
          'eval RMSE', 'export']
RETRIEVAL_PHASES = ['retrieval: read train pairs in canonical order',
                    'retrieval: first training step, task alone converted',
                    'retrieval: first training step, whole step converted', 'retrieval: fit (train_retrieval_model)',
                    'retrieval: item-item scores', 'retrieval: export', 'retrieval: serving assets']


@pytest.mark.slow
def test_phases_of_the_ranking_trainer_on_the_fixture_run(fixture_pipeline_run, tmp_path):
  json_path = str(tmp_path / 'phases.json')
  assert trainer_phases.main(['--run-dir', fixture_pipeline_run.output_dir, '--json', json_path]) == 0
  with open(json_path, encoding='utf-8') as f:
    figures = json.load(f)
  assert list(figures['seconds']) == PHASES
  assert all(seconds > 0 for seconds in figures['seconds'].values())
  # The default configuration trains at most 30 epochs; ratings are 1-5 stars, so an RMSE is below 4.
  assert 1 <= figures['epochs'] <= 30
  assert 0 < figures['eval_rmse'] < 4


@pytest.mark.slow
def test_retrieval_phases_on_the_fixture_run(fixture_pipeline_run, tmp_path):
  json_path = str(tmp_path / 'phases.json')
  assert trainer_phases.main(['--run-dir', fixture_pipeline_run.output_dir, '--trainer', 'retrieval',
                              '--json', json_path]) == 0
  with open(json_path, encoding='utf-8') as f:
    figures = json.load(f)
  assert list(figures['seconds']) == RETRIEVAL_PHASES
  assert all(seconds > 0 for seconds in figures['seconds'].values())


def test_a_directory_without_a_run_is_refused(tmp_path, capsys):
  assert trainer_phases.main(['--run-dir', str(tmp_path)]) == 2
  assert 'No ML Metadata store at' in capsys.readouterr().err
