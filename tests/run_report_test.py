"""The runner's end-of-run report on a hand-made run summary: a refused retrieval model says why."""

import json
from typing import List

from ml_metadata.proto import metadata_store_pb2

from components import retrieval_gate
from pipeline import configs, run_report, run_summary
from tests.mlmd_fixtures import mlmd_artifact


def test_a_refused_retrieval_model_is_reported_with_its_reasons_and_the_served_version_stays():
  reasons = ['recall_at_100=0.3572 is below the minimum 0.5500 (--min-recall-at-100)']
  summary = run_summary.RunSummary(run_id='r1', components=[], output_artifacts={
      configs.RETRIEVAL_GATE_ID: {
          'evaluation': [mlmd_artifact(recall_at_10=0.1, recall_at_100=0.3572, top_10_accuracy=0.05,
                                   top_100_accuracy=0.25)],
          'blessing': [mlmd_artifact(blessed=0, **{retrieval_gate.REASONS_KEY: json.dumps(reasons)})]},
      configs.RETRIEVAL_PUSHER_ID: {'pushed_model': [mlmd_artifact(pushed=0)]}})
  lines = run_report._retrieval_lines(summary)  # pylint: disable=protected-access
  assert lines == [
      'Retrieval eval (recall: seen items removed; accuracy: seen kept): recall_at_10=0.1000 recall_at_100=0.3572 '
      'top_10_accuracy=0.0500 top_100_accuracy=0.2500',
      'Retrieval model blessed: no',
      '  refused: recall_at_100=0.3572 is below the minimum 0.5500 (--min-recall-at-100)',
      'Retrieval model not pushed (not blessed); the previously served version stays.']


def _ranking_push_lines(**properties) -> List[str]:
  """The report's lines of a ranking pushed_model artifact with these custom properties."""
  summary = run_summary.RunSummary(run_id='r1', components=[], output_artifacts={
      configs.RANKING_PUSHER_ID: {'pushed_model': [mlmd_artifact(**properties)]}})
  return run_report._push_lines(summary, configs.RANKING_PUSHER_ID, 'Ranking')  # pylint: disable=protected-access


def test_a_superseded_push_is_reported_with_the_newer_version_that_stays_served():
  # A blessed model whose push a later-started push superseded (it published 1005 while this one copied). Before,
  # every pushed=0 read "not blessed", which this model was not.
  assert _ranking_push_lines(pushed=0, not_pushed_reason='superseded', superseded_by_version='1005') == [
      'Ranking model not pushed (superseded by version 1005 of a later push, which stays served).']
  assert _ranking_push_lines(pushed=0, not_pushed_reason='superseded') == [
      "Ranking model not pushed (superseded by a later push's newer version, which stays served)."]
  # A reason this report does not know is shown as recorded, claiming nothing about what is served.
  assert _ranking_push_lines(pushed=0, not_pushed_reason='destination_read_only') == [
      'Ranking model not pushed (destination_read_only).']


def test_a_model_not_pushed_for_want_of_a_blessing_reads_not_blessed_with_or_without_the_reason():
  expected = ['Ranking model not pushed (not blessed); the previously served version stays.']
  assert _ranking_push_lines(pushed=0, not_pushed_reason='not_blessed') == expected
  assert _ranking_push_lines(pushed=0) == expected  # written before the Pusher recorded a reason


def test_a_pushed_model_is_reported_with_its_destination():
  assert _ranking_push_lines(pushed=1, pushed_destination='/srv/serving/ranking/1005', pushed_version='1005') == [
      'Ranking model pushed to /srv/serving/ranking/1005']


def test_a_blessed_retrieval_model_lists_no_reasons():
  summary = run_summary.RunSummary(run_id='r1', components=[], output_artifacts={
      configs.RETRIEVAL_GATE_ID: {'blessing': [mlmd_artifact(blessed=1, **{retrieval_gate.REASONS_KEY: '[]'})]}})
  assert run_report._retrieval_lines(summary) == ['Retrieval model blessed: yes']  # pylint: disable=protected-access


def test_the_segment_gate_reports_its_refusals_and_the_checks_it_could_not_make():
  from components import segment_gate  # pylint: disable=g-import-not-at-top
  reasons = ['user_gender=F (600 examples) has RMSE 1.0000, +0.1000 above the overall 0.9000; the allowed margin '
             'is 0.0800']
  warnings = ['no user_occupation segment in the evaluation: the examples have no user_occupation values, so no '
              'user_occupation segment is gated']
  summary = run_summary.RunSummary(run_id='r1', components=[], output_artifacts={
      configs.RANKING_SEGMENT_GATE_ID: {'blessing': [mlmd_artifact(
          blessed=0, **{segment_gate.REASONS_KEY: json.dumps(reasons),
                        segment_gate.WARNINGS_KEY: json.dumps(warnings)})]}})
  assert run_report._segment_gate_lines(summary) == [  # pylint: disable=protected-access
      'Ranking model blessed (overall and every user segment): no',
      '  refused: ' + reasons[0],
      '  warning: ' + warnings[0]]
  # A blessing written before the gate recorded warnings has no such property.
  older = run_summary.RunSummary(run_id='r0', components=[], output_artifacts={
      configs.RANKING_SEGMENT_GATE_ID: {'blessing': [mlmd_artifact(blessed=1, **{segment_gate.REASONS_KEY: '[]'})]}})
  assert run_report._segment_gate_lines(older) == [  # pylint: disable=protected-access
      'Ranking model blessed (overall and every user segment): yes']


def _write_overall_metrics(evaluation_dir, values) -> None:
  """A TFMA evaluation output holding only the overall slice's metrics {name: value}, as TFMA writes them."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorflow_model_analysis.proto import metrics_for_slice_pb2  # pylint: disable=g-import-not-at-top
  metrics = metrics_for_slice_pb2.MetricsForSlice()
  metrics.slice_key.SetInParent()  # the overall slice: no columns
  for name, value in values.items():
    entry = metrics.metric_keys_and_values.add()
    entry.key.name = name
    entry.value.double_value.value = value
  with tf.io.TFRecordWriter(str(evaluation_dir / 'metrics-00000-of-00001.tfrecord')) as writer:
    writer.write(metrics.SerializeToString())


def test_a_nan_or_infinite_overall_rmse_is_returned_as_a_float_the_report_can_format(tmp_path):
  import math  # pylint: disable=g-import-not-at-top
  # A model predicting NaN has RMSE NaN. TFMA's dict is protobuf JSON, where NaN is the string 'NaN': before, that
  # string was returned, and format_run_report's f'{rmse:.4f}' raised ValueError after the run.
  _write_overall_metrics(tmp_path, {'root_mean_squared_error': math.nan, 'mean_absolute_error': math.inf,
                                    'example_count': 3.0})
  rmse = run_report.overall_metric(str(tmp_path), run_report.RMSE_METRIC)
  assert isinstance(rmse, float) and math.isnan(rmse) and f'{rmse:.4f}' == 'nan'
  assert run_report.overall_metric(str(tmp_path), 'mean_absolute_error') == math.inf
  assert run_report.overall_metric(str(tmp_path), 'example_count') == 3.0
  assert run_report.overall_metric(str(tmp_path), 'mean_label') is None


def test_the_report_of_a_run_that_wrote_no_store_says_so_instead_of_raising(tmp_path):
  # The runner prints this report before the pipeline's own error; a pipeline that fails before ML Metadata is
  # opened (e.g. it does not compile) leaves no metadata.sqlite. Before, StoreError escaped as a traceback there,
  # and the runner's 'error: the pipeline stopped: ...' line was never printed.
  assert run_report.format_run_report(str(tmp_path), total_seconds=12.0) == (
      f'No pipeline run is recorded under {tmp_path}: No ML Metadata store at {tmp_path}/metadata.sqlite: pass '
      'the --output-dir of a pipeline run (it holds metadata.sqlite) or --metadata-path of the store file.')
  # A store without a run of the pipeline, as before.
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = str(tmp_path / 'metadata.sqlite')
  config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
  from ml_metadata import metadata_store  # pylint: disable=g-import-not-at-top
  metadata_store.MetadataStore(config)
  assert run_report.format_run_report(str(tmp_path), total_seconds=12.0) == (
      f'No pipeline run is recorded under {tmp_path}.')


def test_both_gates_report_their_worst_gated_segment():
  from components import segment_gate  # pylint: disable=g-import-not-at-top
  summary = run_summary.RunSummary(run_id='r1', components=[], output_artifacts={
      configs.RANKING_SEGMENT_GATE_ID: {'blessing': [mlmd_artifact(
          blessed=1, **{segment_gate.REASONS_KEY: '[]', segment_gate.WORST_SEGMENT_KEY: 'user_age_bucket=45-49',
                        segment_gate.WORST_SEGMENT_MARGIN_KEY: 0.0593})]},
      configs.RETRIEVAL_GATE_ID: {'blessing': [mlmd_artifact(
          blessed=1, **{retrieval_gate.REASONS_KEY: '[]',
                        retrieval_gate.WORST_SEGMENT_KEY: 'user_occupation=librarian',
                        retrieval_gate.WORST_SEGMENT_SHORTFALL_KEY: 0.0504})]}})
  assert run_report._segment_gate_lines(summary) == [  # pylint: disable=protected-access
      'Ranking model blessed (overall and every user segment): yes',
      '  worst gated segment: user_age_bucket=45-49, RMSE +0.0593 from the overall']
  assert run_report._retrieval_lines(summary) == [  # pylint: disable=protected-access
      'Retrieval model blessed: yes',
      '  worst gated user segment: user_occupation=librarian, recall_at_100 0.0504 below the overall']


def test_a_run_that_started_no_component_is_not_reported_as_the_previous_run(tmp_path, monkeypatch):
  # Before, a rerun into the same --output-dir that failed before its first component printed the previous run's
  # components, RMSE and pushes as if they were this run's.
  previous = run_summary.RunSummary(run_id='2026-12-07T10:00:00', components=[], output_artifacts={},
                                    started_ms=1_796_600_000_000)  # 1,796,600,000 s
  monkeypatch.setattr(run_summary, 'open_store', lambda path: object())
  monkeypatch.setattr(run_summary, 'latest_run', lambda store, name: previous)
  assert run_report.format_run_report(str(tmp_path), total_seconds=3.0, started_at_s=1_796_600_100.0) == (
      f'No component of this run started (3 s wall in all); the newest run recorded under {tmp_path}, '
      '2026-12-07T10:00:00, is an earlier one.')
  # The run this invocation started (its context recorded 0.4 s after, or within the store's rounding) is reported.
  for started_at_s in (1_796_599_999.6, 1_796_600_000.9):
    assert run_report.format_run_report(str(tmp_path), total_seconds=3.0, started_at_s=started_at_s).startswith(
        'Run 2026-12-07T10:00:00 (3 s wall in all):')
  # Without a start time (an older caller), the newest run is reported as before.
  assert run_report.format_run_report(str(tmp_path), total_seconds=3.0).startswith('Run 2026-12-07T10:00:00')
