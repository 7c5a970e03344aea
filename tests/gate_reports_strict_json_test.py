"""The gates' reports are strict JSON (a NaN or infinite figure is null, as in the Trainers' run files), their ML
Metadata properties hold no NaN (the SQL store refuses one), and every reader takes a null where a number was.

Before, `segment_gate.json` and the retrieval gate's `metrics.json` were written with `json.dump`: a diverged
model's NaN RMSE or a Recall@100 of no user came out as the tokens `NaN` / `Infinity`, which JavaScript's
JSON.parse, jq and Go refuse; and a gated segment with a null margin made `peer_segments.worst_user_segment` fail.
"""

import json
import math
import os
import sys
from typing import Any, Dict

import pytest
from ml_metadata import errors as mlmd_errors
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.types import artifact as artifact_lib
from tfx.types import standard_artifacts

from components import retrieval_gate, segment_gate
from inspection import queries
from pipeline import configs, run_report, run_summary
from tests.mlmd_fixtures import mlmd_artifact

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmarks'))
import peer_segments  # pylint: disable=g-import-not-at-top,wrong-import-position
import quality_report  # pylint: disable=g-import-not-at-top,wrong-import-position

_NAN_SEGMENT_REASON = ('user_gender=F (600 examples) has RMSE nan, not a finite number: the model predicts NaN or '
                       'infinite ratings on its evaluation examples (training diverged: lower the learning rate); a '
                       'gated segment must have a finite RMSE')


def _refuse_constant(token: str) -> Any:
  raise ValueError(f'{token} is not JSON')


def _strict_json(text: str) -> Any:
  """`text` parsed as strict JSON: the tokens NaN, Infinity and -Infinity are refused (ValueError)."""
  return json.loads(text, parse_constant=_refuse_constant)


def _publish(*artifacts: artifact_lib.Artifact) -> None:
  """Puts the artifacts into an ML Metadata store, as TFX publishes a component's outputs."""
  config = metadata_store_pb2.ConnectionConfig()
  config.fake_database.SetInParent()
  store = metadata_store.MetadataStore(config)
  for artifact in artifacts:
    proto = metadata_store_pb2.Artifact()
    proto.CopyFrom(artifact.mlmd_artifact)
    proto.ClearField('id')
    proto.type_id = store.put_artifact_type(metadata_store_pb2.ArtifactType(name=artifact.type_name))
    store.put_artifacts([proto])


def test_the_store_refuses_a_nan_property_so_the_gates_must_not_write_one():
  # What the gates' property guards are for: a NaN figure would fail the run on publishing, not refuse the model.
  blessing = standard_artifacts.ModelBlessing()
  blessing.set_float_custom_property(segment_gate.WORST_SEGMENT_MARGIN_KEY, math.nan)
  with pytest.raises(mlmd_errors.InternalError, match='no such column: nan'):
    _publish(blessing)


def _run_segment_gate(tmp_path, monkeypatch, evaluation: Dict) -> Any:
  """`segment_gate.gate` on the candidate metrics `evaluation` (the TFMA files' reading replaced), the Evaluator
  having blessed the model. Returns (blessed, blessing artifact, the text of its report file)."""
  monkeypatch.setattr(segment_gate, 'read_slice_metrics', lambda uri: {'candidate': evaluation})
  monkeypatch.setattr(segment_gate, 'sliced_columns', lambda uri: ['user_gender'])
  model, evaluator_evaluation = standard_artifacts.Model(), standard_artifacts.ModelEvaluation()
  evaluator_blessing, blessing = standard_artifacts.ModelBlessing(), standard_artifacts.ModelBlessing()
  model.uri, model.id = str(tmp_path / 'model'), 7
  evaluator_evaluation.uri = str(tmp_path / 'evaluation')
  evaluator_blessing.set_int_custom_property(segment_gate.BLESSED_KEY, 1)
  blessing.uri = str(tmp_path / 'blessing')
  blessed = segment_gate.gate(model, evaluator_evaluation, evaluator_blessing, blessing, min_examples=500,
                              max_margin=0.08, max_regression=0.02)
  with open(os.path.join(blessing.uri, segment_gate.REPORT_FILE), encoding='utf-8') as f:
    return blessed, blessing, f.read()


def test_a_segment_gate_report_holds_a_nan_segment_rmse_and_margin_as_null(tmp_path, monkeypatch):
  evaluation = {(): {'root_mean_squared_error': 0.90},
                (('user_gender', 'F'),): {'root_mean_squared_error': math.nan, 'example_count': 600.0},
                (('user_gender', 'M'),): {'root_mean_squared_error': 0.88, 'example_count': 1400.0}}
  blessed, blessing, text = _run_segment_gate(tmp_path, monkeypatch, evaluation)
  assert not blessed
  report = _strict_json(text)  # before: ValueError, the file held "rmse": NaN and "margin": NaN
  female = {'column': 'user_gender', 'value': 'F', 'rmse': None, 'rmse_standard_error': None, 'example_count': 600,
            'margin': None, 'gated': True, 'baseline_rmse': None, 'violations': [_NAN_SEGMENT_REASON]}
  assert report['worst_segment'] == female
  assert report['segments'][0] == female  # worst first
  assert report['segments'][1]['value'] == 'M' and report['segments'][1]['margin'] == pytest.approx(-0.02)
  assert report['overall_rmse'] == 0.90
  assert report['blessed'] is False and report['reasons'] == [_NAN_SEGMENT_REASON]
  assert segment_gate.read_report(blessing.uri) == report
  assert _strict_json(blessing.get_string_custom_property(segment_gate.REASONS_KEY)) == [_NAN_SEGMENT_REASON]
  # The worst segment is named; its margin, not a number, is left out of the properties (the store refuses it).
  assert blessing.get_string_custom_property(segment_gate.WORST_SEGMENT_KEY) == 'user_gender=F'
  assert not blessing.has_custom_property(segment_gate.WORST_SEGMENT_MARGIN_KEY)
  _publish(blessing)  # before: 'no such column: nan', the run failed instead of recording the refusal


@pytest.mark.parametrize('overall', [math.nan, math.inf])
def test_a_segment_gate_report_holds_a_non_finite_overall_rmse_as_null(tmp_path, monkeypatch, overall):
  evaluation = {(): {'root_mean_squared_error': overall},
                (('user_gender', 'F'),): {'root_mean_squared_error': 1.0, 'example_count': 600.0}}
  blessed, blessing, text = _run_segment_gate(tmp_path, monkeypatch, evaluation)
  assert not blessed
  report = _strict_json(text)
  assert report['overall_rmse'] is None and report['worst_segment'] is None and report['segments'] == []
  assert report['reasons'] == [f'the overall RMSE is {overall}: the model predicts NaN or infinite ratings on the '
                               'evaluation examples (training diverged: lower the learning rate); no segment can be '
                               'judged against it']
  _publish(blessing)


def test_a_retrieval_gate_report_holds_a_recall_of_no_user_as_null(tmp_path, monkeypatch):
  # Every evaluation item of every user was one of the user's training items: Recall@K averages no user (NaN).
  overall = {'num_eval_pairs': 4, 'num_unknown_eval_items': 0, 'top_10_accuracy': 0.5, 'recall_at_10': math.nan,
             'top_100_accuracy': 1.0, 'recall_at_100': math.nan, 'num_recall_users': 0}
  monkeypatch.setattr(retrieval_gate, 'read_evaluation_data', lambda train_files, eval_files: 'data')
  monkeypatch.setattr(retrieval_gate, 'measure', lambda model_dir, data, unknown_items_miss=False: {
      'overall': dict(overall), 'segments': {'user_gender': {}}})
  examples, model = standard_artifacts.Examples(), standard_artifacts.Model()
  evaluation, blessing = standard_artifacts.ModelEvaluation(), standard_artifacts.ModelBlessing()
  examples.uri, examples.split_names = str(tmp_path / 'examples'), json.dumps(['train', 'eval'])
  model.uri, model.id = str(tmp_path / 'model'), 3
  evaluation.uri, blessing.uri = str(tmp_path / 'evaluation'), str(tmp_path / 'blessing')
  blessed = retrieval_gate.evaluate_and_bless(examples, model, None, evaluation, blessing, min_recall_at_100=0.55,
                                              min_top_100_accuracy=0.30, max_decrease=0.01)
  assert not blessed and blessing.get_int_custom_property(retrieval_gate.BLESSED_KEY) == 0
  reason = ('recall_at_100 is not a number: no evaluation user has an evaluation item outside their training items '
            '(num_recall_users=0), so it cannot be measured against the minimum 0.5500 (--min-recall-at-100); the '
            'evaluation split must hold interactions with items the users did not train on')
  with open(os.path.join(evaluation.uri, retrieval_gate.METRICS_FILE), encoding='utf-8') as f:
    report = _strict_json(f.read())  # before: ValueError, the file held "recall_at_100": NaN
  assert report['metrics'] == {**overall, 'recall_at_10': None, 'recall_at_100': None}
  assert report['blessed'] is False and report['reasons_not_blessed'] == [reason]
  assert report['worst_segment'] is None and report['segments'] == {'user_gender': {}}
  assert _strict_json(blessing.get_string_custom_property(retrieval_gate.REASONS_KEY)) == [reason]
  # The NaN recalls are left out of the evaluation's properties; the measured figures are there.
  assert not evaluation.has_custom_property('recall_at_100') and not evaluation.has_custom_property('recall_at_10')
  assert evaluation.get_float_custom_property('top_100_accuracy') == 1.0
  _publish(evaluation, blessing)  # before: 'no such column: nan'


def _user_row(value: str, margin: Any, rmse: Any = 1.0) -> Dict:
  return {'column': 'user_gender', 'value': value, 'rmse': rmse, 'rmse_standard_error': None, 'example_count': 600,
          'margin': margin, 'gated': True, 'baseline_rmse': None, 'violations': []}


@pytest.mark.parametrize('missing', [None, math.nan])
def test_a_gated_user_segment_without_a_finite_margin_is_the_worst(missing):
  # Before: max() compared None with 0.03 (TypeError), and a NaN margin was picked or not by its place in the list.
  low, unknown = _user_row('F', 0.03), _user_row('M', missing)
  assert peer_segments.worst_user_segment([low, unknown]) is unknown
  assert peer_segments.worst_user_segment([unknown, low]) is unknown
  # Finite margins: the largest, as before; an item segment is no user segment; no gated user segment: None.
  assert peer_segments.worst_user_segment([_user_row('F', -0.01), low]) is low
  tail = {**_user_row('tail', None), 'column': 'item_popularity_bucket'}
  assert peer_segments.worst_user_segment([tail, low]) is low
  assert peer_segments.worst_user_segment([tail, {**unknown, 'gated': False}]) is None


def test_the_peer_summary_shows_a_null_figure_as_na_and_its_segment_outside_the_target():
  # A segment gate's report read back: the overall RMSE is finite, the worst user segment's RMSE and margin null.
  report = {'overall_rmse': 0.9, 'segments': [_user_row('F', 0.03, rmse=0.93), _user_row('M', None, rmse=None)]}
  summary = peer_segments.format_summary({'ours': report}, target_margin=0.05)
  assert summary.splitlines()[2] == '| ours | 0.9000 | user_gender=M | 600 | n/a | n/a | no |'
  assert peer_segments.format_segment_table({'ours': report}).splitlines()[2:] == [
      '| user_gender=F | 600 | 0.9300 | +0.0300 |', '| user_gender=M | 600 | n/a | n/a |']


def test_the_quality_report_says_a_null_worst_margin_misses_the_target():
  unknown = {**_user_row('M', None, rmse=None), 'violations': [_NAN_SEGMENT_REASON.replace('=F', '=M')]}
  segments = {'overall_rmse': 0.9, 'worst_segment': unknown,
              'thresholds': {'min_examples': 500, 'max_margin': 0.08, 'max_regression': 0.02},
              'segments': [unknown, _user_row('F', 0.03, rmse=0.93)]}
  ours = quality_report.ConfigurationResult(name='default', output_dir='/nowhere', exit_code=0, wall_seconds=None,
                                            rmse=0.9, blessed=False, segments=segments)
  markdown = quality_report.format_markdown(quality_report.to_json([ours], None, 'test data'))
  assert (f'worst gated user segment within {quality_report.TARGET_WORST_MARGIN} of overall (not met)'
          in markdown)
  assert 'Worst gated segment: `user_gender=M` RMSE — (—, 600 examples)' in markdown
  assert '| user_gender=M | 600 | — | — | yes | fails |' in markdown


def test_the_inspection_report_reads_null_figures_as_nan_and_draws_no_bar_for_them():
  from inspection import report  # pylint: disable=g-import-not-at-top
  verdict = {'passed': False, 'blessed': False, 'overall_rmse': None, 'warnings': [], 'reasons': ['diverged'],
             'segments': [_user_row('F', 0.03, rmse=0.93), _user_row('M', None, rmse=None)]}
  gate = queries.segment_gate_report('ranking_segment_gate', verdict, max_margin=0.08, min_examples=500)
  assert math.isnan(gate.overall_rmse)  # before: float(None), TypeError
  assert [math.isnan(row['margin']) for row in gate.segments] == [False, True]
  bars, line = report.segment_gate_bars(gate)
  assert bars[0][0] == 'user_gender=M' and math.isnan(bars[0][1]) and bars[1] == ('user_gender=F', 0.93)
  assert math.isnan(line)  # overall RMSE + margin: no dashed line is drawn
  section = report._segment_gate_section([gate])  # pylint: disable=protected-access
  assert 'Overall RMSE nan;' in section and 'no value' in section


def test_the_run_report_says_which_figures_the_gates_could_not_store():
  ranking = run_summary.RunSummary(run_id='r1', components=[], output_artifacts={
      configs.RANKING_SEGMENT_GATE_ID: {'blessing': [mlmd_artifact(
          blessed=0, **{segment_gate.REASONS_KEY: json.dumps([_NAN_SEGMENT_REASON]),
                        segment_gate.WORST_SEGMENT_KEY: 'user_gender=F'})]}})
  assert run_report._segment_gate_lines(ranking) == [  # pylint: disable=protected-access
      'Ranking model blessed (overall RMSE and every segment large enough to gate): no',
      '  refused: ' + _NAN_SEGMENT_REASON,
      '  worst gated segment: user_gender=F, RMSE not a finite number']
  retrieval = run_summary.RunSummary(run_id='r1', components=[], output_artifacts={
      configs.RETRIEVAL_GATE_ID: {'evaluation': [mlmd_artifact(top_10_accuracy=0.5, top_100_accuracy=1.0)]}})
  assert run_report._retrieval_lines(retrieval) == [  # pylint: disable=protected-access
      'Retrieval eval (recall: seen items removed; accuracy: seen kept): recall_at_10=n/a recall_at_100=n/a '
      'top_10_accuracy=0.5000 top_100_accuracy=1.0000']
