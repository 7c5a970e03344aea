"""benchmarks/quality_report.py on generated interactions: its figures match the runs' ML Metadata stores."""

import json
import os
import sys

import pytest

from components import segment_gate
from pipeline import configs, run_report, run_summary
from tests import pipeline_runs

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmarks'))
import quality_report  # pylint: disable=g-import-not-at-top,wrong-import-position


def test_peer_output_lines_are_parsed():
  ranking, retrieval = {}, {}
  quality_report.parse_peer_output(
      'seed_tfrs_ranking_3ep rmse=1.1065 wall_s=12.5\nsurprise not installed\n'
      'popularity top100_acc=0.2948 recall@100_seen_removed=0.4250\n'
      'popularity top10_acc=0.0500 recall@10_seen_removed=0.2160\npopularity wall_s=0.40\n', ranking, retrieval)
  assert ranking == {'seed_tfrs_ranking_3ep': {'rmse': 1.1065, 'wall_seconds': 12.5, 'note': ''}}
  assert retrieval == {'popularity': {'top_100_accuracy': 0.2948, 'recall_at_100': 0.425,
                                      'top_10_accuracy': 0.05, 'recall_at_10': 0.216}}


@pytest.mark.slow
def test_report_on_generated_interactions_matches_the_metrics_store(tmp_path, capsys):
  csv = pipeline_runs.write_fixture_interactions(str(tmp_path / 'interactions.csv'))
  json_path, markdown_path = str(tmp_path / 'report.json'), str(tmp_path / 'report.md')
  exit_code = quality_report.main([
      '--interactions', csv, '--work-dir', str(tmp_path / 'work'), '--json', json_path,
      '--markdown', markdown_path, '--', '--epochs', '3', '--batch-size', '64', '--max-rmse', '3.0',
      '--schema', configs.CURATED_SCHEMA_PATH])
  assert exit_code == 0
  with open(json_path, encoding='utf-8') as f:
    report = json.load(f)
  assert [c['name'] for c in report['configurations']] == ['seed', 'default']
  assert report['peers'] is None  # the peers are MovieLens scripts
  for config in report['configurations']:
    store = run_summary.open_store(os.path.join(config['output_dir'], configs.METADATA_FILE))
    outputs = run_summary.latest_run(store, configs.PIPELINE_NAME).output_artifacts
    evaluation_uri = outputs[configs.RANKING_EVALUATOR_ID]['evaluation'][0].uri
    assert config['rmse'] == pytest.approx(run_report.overall_metric(evaluation_uri, run_report.RMSE_METRIC))
    gate_report = segment_gate.read_report(outputs[configs.RANKING_SEGMENT_GATE_ID]['blessing'][0].uri)
    assert config['segments'] == gate_report
    assert config['segments']['overall_rmse'] == pytest.approx(config['rmse'])
    assert {s['column'] for s in config['segments']['segments']} >= {'user_gender', 'item_popularity_bucket'}
  with open(markdown_path, encoding='utf-8') as f:
    markdown = f.read()
  assert markdown in capsys.readouterr().out
  seed_rmse = report['configurations'][0]['rmse']
  assert f'| this project, `seed` configuration | {seed_rmse:.4f} |' in markdown
  assert '### Segments of the `default` configuration' in markdown
