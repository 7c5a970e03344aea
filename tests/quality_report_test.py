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


def _row(column, value, rmse, examples, margin):
  return {'column': column, 'value': value, 'rmse': rmse, 'example_count': examples, 'margin': margin,
          'gated': True, 'baseline_rmse': None, 'violations': []}


def _report_with_peer_segments(peer_segment_reports):
  """Our `default` run (worst user segment healthcare +0.10) beside one peer (writer +0.08, healthcare +0.04)."""
  healthcare = _row('user_occupation', 'healthcare', 1.1, 572, 0.1)
  ours = quality_report.ConfigurationResult(
      name='default', output_dir='/nowhere', exit_code=0, wall_seconds=None, rmse=1.0, blessed=False,
      segments={'overall_rmse': 1.0, 'worst_segment': _row('item_popularity_bucket', 'tail', 1.2, 600, 0.2),
                'thresholds': {'min_examples': 500, 'max_margin': 0.08, 'max_regression': 0.02},
                'segments': [_row('item_popularity_bucket', 'tail', 1.2, 600, 0.2), healthcare,
                             _row('user_gender', 'F', 1.03, 5000, 0.03)]},
      concentration={'segment': 'user_occupation=healthcare', 'segment_examples': 572, 'segment_rmse': 1.1,
                     'user_id': '405', 'user_examples': 158, 'user_rmse': 1.3, 'share_of_squared_error': 0.44,
                     'rmse_without_user': 0.9})
  return quality_report.to_json([ours], {'ranking': {}, 'retrieval': {}}, 'test data', peer_segment_reports)


def test_markdown_sets_the_peers_worst_user_segments_beside_ours():
  peer = {'overall_rmse': 0.95, 'thresholds': {'min_examples': 500, 'max_margin': 0.08}, 'concentration': None,
          'segments': [_row('user_occupation', 'writer', 1.03, 1105, 0.08),
                       _row('user_occupation', 'healthcare', 0.99, 572, 0.04)],
          'segment_concentrations': {'user_occupation=healthcare': {
              'segment': 'user_occupation=healthcare', 'segment_examples': 572, 'segment_rmse': 0.99, 'user_id': '405',
              'user_examples': 158, 'user_rmse': 1.2, 'share_of_squared_error': 0.4, 'rmse_without_user': None}}}
  markdown = quality_report.format_markdown(_report_with_peer_segments({'note': '', 'peers': {'surprise_svd': peer}}))
  assert ('Concentration of the worst user segment: `user_occupation=healthcare` (572 eval ratings, RMSE 1.1000): '
          'user 405 has 158 of them and 44.0 % of the squared error (RMSE 1.3000 on them); without that user the '
          'segment\'s RMSE is 0.9000.') in markdown
  section = markdown[markdown.index('### Segments of the peers'):]  # the last section: no retrieval figures
  assert '| system | overall RMSE | worst user segment | eval examples | RMSE | margin | within 0.05 |' in section
  # Ours: the item segment tail is worse, but the target is about user segments.
  assert ('| this project, `default` configuration | 1.0000 | user_occupation=healthcare | 572 | 1.1000 | +0.1000 '
          '| no |') in section
  assert '| surprise_svd | 0.9500 | user_occupation=writer | 1105 | 1.0300 | +0.0800 | no |' in section
  assert ('The peers on `user_occupation=healthcare` (our last configuration\'s worst user segment): '
          'surprise_svd +0.0400.') in section
  assert ('- surprise_svd: `user_occupation=healthcare` (572 eval ratings, RMSE 0.9900): user 405 has 158 of them '
          'and 40.0 % of the squared error (RMSE 1.2000 on them); without that user the segment\'s RMSE is — (the '
          'only user).') in section


def test_markdown_says_when_the_peers_segments_cannot_run():
  not_installed = quality_report.format_markdown(
      _report_with_peer_segments({'note': quality_report.NOT_INSTALLED, 'peers': {}}))
  assert 'Peers: not installed (scikit-surprise).' in not_installed
  assert '| this project, `default` configuration | 1.0000 | user_occupation=healthcare |' in not_installed
  not_run = quality_report.format_markdown(_report_with_peer_segments(None))  # --interactions or --no-peers
  assert '### Segments of the peers' not in not_run


def test_peer_segments_are_reported_not_installed_without_surprise(monkeypatch):
  monkeypatch.setattr(quality_report.peer_segments, 'surprise_installed', lambda: False)
  assert quality_report.run_peer_segments('/no/movielens/needed') == {'note': quality_report.NOT_INSTALLED,
                                                                      'peers': {}}
