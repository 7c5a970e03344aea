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
  assert _ranking_push_lines(pushed=1, pushed_destination='/srv/serving/ranking/1005', pushed_version='1005',
                             already_served=0) == ['Ranking model pushed to /srv/serving/ranking/1005']
  # Written before the Pusher recorded whether it copied the model: as before.
  assert _ranking_push_lines(pushed=1, pushed_destination='/srv/serving/ranking/1005', pushed_version='1005') == [
      'Ranking model pushed to /srv/serving/ranking/1005']


def test_a_model_the_pusher_found_already_served_is_not_reported_as_pushed_by_this_run():
  # An unchanged rerun: the Pusher found the model's files served as 1005 and copied nothing (pushed=1, the
  # destination that version's). Before, this read 'Ranking model pushed to /srv/serving/ranking/1005'.
  expected = ['Ranking model already served as version 1005 (unchanged since an earlier run; not copied again)']
  assert _ranking_push_lines(pushed=1, pushed_destination='/srv/serving/ranking/1005', pushed_version='1005',
                             already_served=1) == expected
  # Without pushed_version the version is the destination's last directory.
  assert _ranking_push_lines(pushed=1, pushed_destination='/srv/serving/ranking/1005', already_served=1) == expected


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
                        segment_gate.WARNINGS_KEY: json.dumps(warnings)})]}},
      execution_properties={configs.RANKING_SEGMENT_GATE_ID: {'min_examples': 500, 'max_margin': 0.08}})
  assert run_report._segment_gate_lines(summary) == [  # pylint: disable=protected-access
      'Ranking model blessed (overall RMSE and every segment of >= 500 examples): no',
      '  refused: ' + reasons[0],
      '  warning: ' + warnings[0]]
  # A blessing written before the gate recorded warnings has no such property; nor are its settings known here.
  older = run_summary.RunSummary(run_id='r0', components=[], output_artifacts={
      configs.RANKING_SEGMENT_GATE_ID: {'blessing': [mlmd_artifact(blessed=1, **{segment_gate.REASONS_KEY: '[]'})]}})
  assert run_report._segment_gate_lines(older) == [  # pylint: disable=protected-access
      'Ranking model blessed (overall RMSE and every segment large enough to gate): yes']


def test_the_ranking_blessing_line_names_the_configured_minimum_of_examples_of_a_gated_segment():
  # Before: '(overall and every user segment)', though item-popularity segments are gated too, and only segments
  # with at least --segment-min-examples eval examples.
  summary = run_summary.RunSummary(run_id='r1', components=[], output_artifacts={
      configs.RANKING_SEGMENT_GATE_ID: {'blessing': [mlmd_artifact(blessed=1, reasons='[]')]}},
      execution_properties={configs.RANKING_SEGMENT_GATE_ID: {'min_examples': 120}})
  assert run_report._segment_gate_lines(summary) == [  # pylint: disable=protected-access
      'Ranking model blessed (overall RMSE and every segment of >= 120 examples): yes']


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


def test_both_gates_report_their_worst_segment():
  from components import segment_gate  # pylint: disable=g-import-not-at-top
  summary = run_summary.RunSummary(run_id='r1', components=[], output_artifacts={
      configs.RANKING_SEGMENT_GATE_ID: {'blessing': [mlmd_artifact(
          blessed=1, **{segment_gate.REASONS_KEY: '[]', segment_gate.WORST_SEGMENT_KEY: 'user_age_bucket=45-49',
                        segment_gate.WORST_SEGMENT_MARGIN_KEY: 0.0593})]},
      configs.RETRIEVAL_GATE_ID: {'blessing': [mlmd_artifact(
          blessed=1, **{retrieval_gate.REASONS_KEY: '[]',
                        retrieval_gate.WORST_SEGMENT_KEY: 'user_occupation=librarian',
                        retrieval_gate.WORST_SEGMENT_SHORTFALL_KEY: 0.0504})]}},
      execution_properties={configs.RANKING_SEGMENT_GATE_ID: {'min_examples': 500}})
  assert run_report._segment_gate_lines(summary) == [  # pylint: disable=protected-access
      'Ranking model blessed (overall RMSE and every segment of >= 500 examples): yes',
      '  worst gated segment: user_age_bucket=45-49, RMSE +0.0593 from the overall']
  # Neither the gate's evaluation nor its settings known (the line says nothing of gating then).
  assert run_report._retrieval_lines(summary) == [  # pylint: disable=protected-access
      'Retrieval model blessed: yes',
      '  worst user segment: user_occupation=librarian, recall_at_100 0.0504 below the overall']


def _retrieval_gate_summary(tmp_path, segment_max_shortfall: float, blessed: int = 1,
                            metrics_file: bool = True) -> run_summary.RunSummary:
  """A run whose retrieval gate measured Recall@100 0.7162 overall and found user_occupation=librarian (51 users,
  Recall@100 0.6658) the worst segment of >= 50 users, with this setting of --retrieval-segment-max-shortfall; its
  metrics.json (as the gate writes it, unless `metrics_file` is False) in tmp_path."""
  worst = retrieval_gate.SegmentShortfall('user_occupation', 'librarian', recall=0.6658, num_users=51,
                                          shortfall=0.0504)
  if metrics_file:
    (tmp_path / retrieval_gate.METRICS_FILE).write_text(json.dumps(
        {'metrics': {'recall_at_100': 0.7162}, 'worst_segment': worst.to_json()}))
  reasons = [] if blessed else [
      'user_occupation=librarian (51 users) has recall_at_100=0.6658, 0.0504 below the overall 0.7162; '
      '--retrieval-segment-max-shortfall allows 0.0400']
  return run_summary.RunSummary(run_id='r1', components=[], output_artifacts={
      configs.RETRIEVAL_GATE_ID: {
          'evaluation': [metadata_store_pb2.Artifact(uri=str(tmp_path), custom_properties={
              'recall_at_100': metadata_store_pb2.Value(double_value=0.7162)})],
          'blessing': [mlmd_artifact(
              blessed=blessed, **{retrieval_gate.REASONS_KEY: json.dumps(reasons),
                                  retrieval_gate.WORST_SEGMENT_KEY: 'user_occupation=librarian',
                                  retrieval_gate.WORST_SEGMENT_SHORTFALL_KEY: 0.0504})]}},
      execution_properties={configs.RETRIEVAL_GATE_ID: {'segment_max_shortfall': segment_max_shortfall,
                                                        'segment_min_users': 50, 'min_recall_at_100': 0.55}})


def test_the_worst_retrieval_segment_reads_reported_not_gated_while_the_segment_rule_is_off(tmp_path):
  # The default --retrieval-segment-max-shortfall 1 refuses nothing. Before: 'worst gated user segment:
  # user_occupation=librarian, recall_at_100 0.0504 below the overall', neither gated nor giving the segment's figure.
  lines = run_report._retrieval_lines(_retrieval_gate_summary(tmp_path, 1.0))  # pylint: disable=protected-access
  assert lines == [
      'Retrieval eval (recall: seen items removed; accuracy: seen kept): recall_at_10=n/a recall_at_100=0.7162 '
      'top_10_accuracy=n/a top_100_accuracy=n/a',
      'Retrieval model blessed: yes',
      '  worst user segment of >= 50 users: user_occupation=librarian, recall_at_100 0.6658 over 51 users, 0.0504 '
      'below the overall 0.7162 (reported; not gated: --retrieval-segment-max-shortfall is 1)']


def test_the_worst_retrieval_segment_reads_gated_while_the_segment_rule_is_on(tmp_path):
  lines = run_report._retrieval_lines(_retrieval_gate_summary(tmp_path, 0.04, blessed=0))  # pylint: disable=protected-access
  assert lines[1:] == [
      'Retrieval model blessed: no',
      '  refused: user_occupation=librarian (51 users) has recall_at_100=0.6658, 0.0504 below the overall 0.7162; '
      '--retrieval-segment-max-shortfall allows 0.0400',
      '  worst gated user segment of >= 50 users: user_occupation=librarian, recall_at_100 0.6658 over 51 users, '
      '0.0504 below the overall 0.7162 (--retrieval-segment-max-shortfall allows 0.0400)']


def test_the_worst_retrieval_segment_without_its_metrics_file_gives_the_figures_the_store_holds(tmp_path):
  # The output dir pruned (metrics.json gone): the segment's own Recall@100 and users are left out, nothing fails.
  lines = run_report._retrieval_lines(  # pylint: disable=protected-access
      _retrieval_gate_summary(tmp_path, 1.0, metrics_file=False))
  assert lines[-1] == (
      '  worst user segment of >= 50 users: user_occupation=librarian, recall_at_100 0.0504 below the overall 0.7162 '
      '(reported; not gated: --retrieval-segment-max-shortfall is 1)')


def test_a_run_that_started_no_component_is_not_reported_as_the_previous_run(tmp_path, monkeypatch):
  # Before, a rerun into the same --output-dir that failed before its first component printed the previous run's
  # components, RMSE and pushes as if they were this run's.
  previous = run_summary.RunSummary(run_id='2026-12-07T10:00:00', components=[], output_artifacts={},
                                    started_ms=1_796_600_000_000)  # 1,796,600,000 s
  monkeypatch.setattr(run_summary, 'open_store', lambda path: object())
  monkeypatch.setattr(run_summary, 'latest_run', lambda store, name: previous)
  assert run_report.format_run_report(str(tmp_path), total_seconds=3.0, started_at_s=1_796_600_100.0) == (
      f'No component of this run started (3 s wall in all, data preparation included); the newest run recorded '
      f'under {tmp_path}, 2026-12-07T10:00:00, is an earlier one.')
  # The run this invocation started (its context recorded 0.4 s after, or within the store's rounding) is reported.
  for started_at_s in (1_796_599_999.6, 1_796_600_000.9):
    assert run_report.format_run_report(str(tmp_path), total_seconds=3.0, started_at_s=started_at_s).startswith(
        'Run 2026-12-07T10:00:00 (3 s wall in all, data preparation included; TFX run 0.0 s wall):')
  # Without a start time (an older caller), the newest run is reported as before.
  assert run_report.format_run_report(str(tmp_path), total_seconds=3.0).startswith('Run 2026-12-07T10:00:00')


def test_the_run_header_tells_the_whole_invocation_from_the_tfx_run_that_inspection_lists(tmp_path, monkeypatch):
  # The runner's figure covers data preparation too; `inspection.cli runs` gives the TFX run's (first component's
  # start to the last one's end). Before, '97 s wall in all' here and '91.8 s wall' there, both unlabelled.
  components = [run_summary.ComponentRun('example_gen', 'COMPLETE', 10.0, execution_id=1, started_ms=1_000_000),
                run_summary.ComponentRun('ranking_pusher', 'COMPLETE', 1.8, execution_id=2, started_ms=1_090_000)]
  run = run_summary.RunSummary(run_id='2026-12-07T10:00:00', components=components, output_artifacts={},
                               started_ms=1_000_000)
  monkeypatch.setattr(run_summary, 'open_store', lambda path: object())
  monkeypatch.setattr(run_summary, 'latest_run', lambda store, name: run)
  assert run_report.format_run_report(str(tmp_path), total_seconds=97.2).split('\n') == [
      'Run 2026-12-07T10:00:00 (97 s wall in all, data preparation included; TFX run 91.8 s wall):',
      '  example_gen                              COMPLETE     10.0 s',
      '  ranking_pusher                           COMPLETE      1.8 s']
  from inspection import queries, tables  # pylint: disable=g-import-not-at-top
  assert tables.runs_table([queries.PipelineRun(run.run_id, run.started_ms, components)]).split('\n')[0] == (
      f'Run 2026-12-07T10:00:00 (started {tables.timestamp(1_000_000)}, TFX run 91.8 s wall)')
