"""benchmarks/evaluator_metrics.py on the fixture pipeline run: both metric sets run and agree on the RMSE."""

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmarks'))
import evaluator_metrics  # pylint: disable=g-import-not-at-top,wrong-import-position

from components import segment_gate  # pylint: disable=g-import-not-at-top,wrong-import-position
from pipeline import configs, run_summary  # pylint: disable=g-import-not-at-top,wrong-import-position


@pytest.mark.slow
def test_one_pass_and_separate_metrics_give_the_pipelines_rmse(fixture_pipeline_run, tmp_path):
  json_path = str(tmp_path / 'figures.json')
  assert evaluator_metrics.main(['--run-dir', fixture_pipeline_run.output_dir, '--metric-sets', 'one_pass',
                                 'separate', '--json', json_path]) == 0
  with open(json_path, encoding='utf-8') as f:
    figures = json.load(f)
  assert list(figures['seconds']) == ['one_pass', 'separate']
  assert all(seconds > 0 for seconds in figures['seconds'].values())
  # Same model, same examples: the pipeline's own Evaluator found this RMSE in the run.
  assert figures['rmse']['one_pass'] == pytest.approx(figures['rmse']['separate'], abs=1e-5)
  store = run_summary.open_store(os.path.join(fixture_pipeline_run.output_dir, configs.METADATA_FILE))
  run = run_summary.latest_run(store, configs.PIPELINE_NAME)
  evaluation = run.output_artifacts[configs.RANKING_EVALUATOR_ID]['evaluation'][0].uri
  overall = segment_gate.read_slice_metrics(evaluation)['candidate'][()]
  assert figures['rmse']['one_pass'] == pytest.approx(overall[segment_gate.RMSE_METRIC], abs=1e-5)


def test_a_directory_without_a_run_is_refused(tmp_path, capsys):
  assert evaluator_metrics.main(['--run-dir', str(tmp_path)]) == 2
  assert 'No ML Metadata store at' in capsys.readouterr().err
