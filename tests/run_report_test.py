"""The runner's end-of-run report on a hand-made run summary: a refused retrieval model says why."""

import json

from ml_metadata.proto import metadata_store_pb2

from components import retrieval_gate
from pipeline import configs, run_report, run_summary


def _artifact(**properties) -> metadata_store_pb2.Artifact:
  artifact = metadata_store_pb2.Artifact()
  for name, value in properties.items():
    if isinstance(value, int):
      artifact.custom_properties[name].int_value = value
    elif isinstance(value, float):
      artifact.custom_properties[name].double_value = value
    else:
      artifact.custom_properties[name].string_value = value
  return artifact


def test_a_refused_retrieval_model_is_reported_with_its_reasons_and_the_served_version_stays():
  reasons = ['recall_at_100=0.3572 is below the minimum 0.5500 (--min-recall-at-100)']
  summary = run_summary.RunSummary(run_id='r1', components=[], output_artifacts={
      configs.RETRIEVAL_GATE_ID: {
          'evaluation': [_artifact(recall_at_100=0.3572)],
          'blessing': [_artifact(blessed=0, **{retrieval_gate.REASONS_KEY: json.dumps(reasons)})]},
      configs.RETRIEVAL_PUSHER_ID: {'pushed_model': [_artifact(pushed=0)]}})
  lines = run_report._retrieval_lines(summary)  # pylint: disable=protected-access
  assert lines == [
      'Retrieval eval (recall: seen items removed; accuracy: seen kept): recall_at_100=0.3572',
      'Retrieval model blessed: no',
      '  refused: recall_at_100=0.3572 is below the minimum 0.5500 (--min-recall-at-100)',
      'Retrieval model not pushed (not blessed); the previously served version stays.']


def test_a_blessed_retrieval_model_lists_no_reasons():
  summary = run_summary.RunSummary(run_id='r1', components=[], output_artifacts={
      configs.RETRIEVAL_GATE_ID: {'blessing': [_artifact(blessed=1, **{retrieval_gate.REASONS_KEY: '[]'})]}})
  assert run_report._retrieval_lines(summary) == ['Retrieval model blessed: yes']  # pylint: disable=protected-access


def test_the_segment_gate_reports_its_refusals_and_the_checks_it_could_not_make():
  from components import segment_gate  # pylint: disable=g-import-not-at-top
  reasons = ['user_gender=F (600 examples) has RMSE 1.0000, +0.1000 above the overall 0.9000; the allowed margin '
             'is 0.0800']
  warnings = ['no user_occupation segment in the evaluation: the examples have no user_occupation values, so no '
              'user_occupation segment is gated']
  summary = run_summary.RunSummary(run_id='r1', components=[], output_artifacts={
      configs.RANKING_SEGMENT_GATE_ID: {'blessing': [_artifact(
          blessed=0, **{segment_gate.REASONS_KEY: json.dumps(reasons),
                        segment_gate.WARNINGS_KEY: json.dumps(warnings)})]}})
  assert run_report._segment_gate_lines(summary) == [  # pylint: disable=protected-access
      'Ranking model blessed (overall and every user segment): no',
      '  refused: ' + reasons[0],
      '  warning: ' + warnings[0]]
  # A blessing written before the gate recorded warnings has no such property.
  older = run_summary.RunSummary(run_id='r0', components=[], output_artifacts={
      configs.RANKING_SEGMENT_GATE_ID: {'blessing': [_artifact(blessed=1, **{segment_gate.REASONS_KEY: '[]'})]}})
  assert run_report._segment_gate_lines(older) == [  # pylint: disable=protected-access
      'Ranking model blessed (overall and every user segment): yes']
