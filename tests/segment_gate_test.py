"""The segmentation rule worked by hand, its configuration round-trips, and the gate in a pipeline run.

The pipeline test runs on generated interactions whose female users' ratings carry 2 stars of extra noise
(`ingestion.fixtures.generate_interactions(segment_rating_noise={'F': 2.0})`): the Evaluator's overall gate
(loose here) blesses the model, the segment gate refuses it and nothing is pushed.
"""

import dataclasses
import json
import os

import pytest

from components import segment_gate, segment_rules
from components.segment_rules import SegmentMetrics
from pipeline import configs, run_config, run_summary
from tests import pipeline_runs
from trainer.ranking import hparams as hparams_lib

SEGMENTS = [
    SegmentMetrics('user_gender', 'F', rmse=1.00, example_count=600),  # +0.10 over 0.90: fails at 0.08
    SegmentMetrics('user_gender', 'M', rmse=0.88, example_count=1400),  # -0.02: passes
    SegmentMetrics('user_occupation', 'writer', rmse=1.30, example_count=40),  # +0.40 but too small to gate
    SegmentMetrics('user_age_bucket', '45-49', rmse=0.98, example_count=500),  # +0.08 exactly: passes
]


def test_segment_above_the_margin_is_refused_and_small_segments_are_only_reported():
  verdict = segment_rules.judge_segments(0.90, SEGMENTS, None, min_examples=500, max_margin=0.08,
                                         max_regression=0.02)
  assert not verdict.passed
  assert len(verdict.reasons) == 1 and verdict.reasons[0].startswith('user_gender=F (600 examples)')
  # Rows are sorted by margin: writer +0.40 (not gated), F +0.10, 45-49 +0.08, M -0.02.
  assert [r.segment.name for r in verdict.rows] == [
      'user_occupation=writer', 'user_gender=F', 'user_age_bucket=45-49', 'user_gender=M']
  assert [r.gated for r in verdict.rows] == [False, True, True, True]
  assert verdict.worst.segment.name == 'user_gender=F'
  assert verdict.worst.margin == pytest.approx(0.10)


def test_segment_regression_against_the_last_blessed_model_is_refused():
  # With margin 0.2 nobody fails the margin; F was 0.97 under the last blessed model: +0.03 > 0.02.
  # M was 0.87: +0.01 passes; 45-49 has no baseline figure and is not checked for regression.
  baseline = {('user_gender', 'F'): 0.97, ('user_gender', 'M'): 0.87, ('user_occupation', 'writer'): 0.50}
  verdict = segment_rules.judge_segments(0.90, SEGMENTS, baseline, min_examples=500, max_margin=0.2,
                                         max_regression=0.02)
  assert not verdict.passed
  assert len(verdict.reasons) == 1
  assert 'user_gender=F' in verdict.reasons[0] and 'regressed from RMSE 0.9700' in verdict.reasons[0]
  rows = {r.segment.name: r for r in verdict.rows}
  assert rows['user_gender=M'].baseline_rmse == 0.87 and not rows['user_gender=M'].violations
  # writer got far worse (0.50 -> 1.30) but has 40 examples: reported, not gated.
  assert not rows['user_occupation=writer'].violations


def test_model_passes_when_every_large_segment_is_within_the_margin():
  verdict = segment_rules.judge_segments(0.90, SEGMENTS, None, min_examples=500, max_margin=0.10,
                                         max_regression=0.0)
  assert verdict.passed and verdict.reasons == ()
  report = segment_rules.verdict_to_json(verdict, 0.90)
  assert json.loads(json.dumps(report))['worst_segment']['value'] == 'F'


def test_no_segment_large_enough_passes_without_a_worst_segment_and_says_it_checked_nothing():
  verdict = segment_rules.judge_segments(0.90, SEGMENTS, None, min_examples=10_000, max_margin=0.0,
                                         max_regression=0.0)
  assert verdict.passed and verdict.worst is None
  # Before, this passed silently: the largest of the four segments is user_gender=M with 1400 examples.
  assert verdict.warnings == (
      'no segment has at least 10000 evaluation examples (the largest, user_gender=M, has 1400), so the segment '
      'rule checked nothing; lower --segment-min-examples to gate smaller segments',)
  assert segment_rules.verdict_to_json(verdict, 0.90)['warnings'] == list(verdict.warnings)


def test_a_model_judged_on_every_segment_has_no_warnings():
  verdict = segment_rules.judge_segments(
      0.90, SEGMENTS, None, min_examples=500, max_margin=0.10, max_regression=0.0,
      expected_columns=('user_gender', 'user_occupation', 'user_age_bucket'))
  assert verdict.passed and verdict.warnings == ()


def test_a_slicing_column_the_examples_lack_is_named_in_a_warning():
  # Own data without occupations: the Evaluator was asked to slice by user_occupation but found no value.
  segments = [s for s in SEGMENTS if s.column != 'user_occupation']
  verdict = segment_rules.judge_segments(
      0.90, segments, None, min_examples=500, max_margin=0.10, max_regression=0.0,
      expected_columns=('user_gender', 'user_occupation', 'user_age_bucket'))
  assert verdict.passed
  assert verdict.warnings == ('no user_occupation segment in the evaluation: the examples have no user_occupation '
                              'values, so no user_occupation segment is gated',)


def test_an_evaluation_without_segments_says_the_rule_checked_nothing():
  verdict = segment_rules.judge_segments(0.90, [], None, min_examples=500, max_margin=0.08, max_regression=0.02,
                                         expected_columns=('user_gender',))
  assert verdict.passed and verdict.rows == ()
  assert verdict.warnings[-1] == ('the evaluation has no segments (no slicing column has values), so the segment '
                                  'rule checked nothing; add user or item columns to the examples')
  assert len(verdict.warnings) == 2 and verdict.warnings[0].startswith('no user_gender segment')


def test_a_last_blessed_model_without_a_segment_rmse_skips_that_regression_check():
  # Before, a NaN baseline figure on F refused every candidate ('regressed from RMSE nan'), whatever its RMSE.
  baseline = {('user_gender', 'F'): float('nan'), ('user_gender', 'M'): 0.87,
              ('user_occupation', 'writer'): float('inf')}
  verdict = segment_rules.judge_segments(0.90, SEGMENTS, baseline, min_examples=500, max_margin=0.2,
                                         max_regression=0.02)
  assert verdict.passed, verdict.reasons
  rows = {r.segment.name: r for r in verdict.rows}
  assert rows['user_gender=F'].baseline_rmse is None and rows['user_gender=M'].baseline_rmse == 0.87
  # writer (40 examples) is not gated, so its missing baseline needs no warning; 45-49 is gated and absent from it.
  assert verdict.warnings == ('user_gender=F: the last blessed model has no RMSE on it (nan); not checked for '
                              'regression',
                              'user_age_bucket=45-49: the last blessed model has no RMSE on it (not in its '
                              'evaluation); not checked for regression')
  # M is still checked: 0.87 -> 0.88 is +0.01, more than a max_regression of 0.005 allows.
  strict = segment_rules.judge_segments(0.90, SEGMENTS, baseline, min_examples=500, max_margin=0.2,
                                        max_regression=0.005)
  assert len(strict.reasons) == 1 and strict.reasons[0].startswith('user_gender=M (1400 examples)')
  assert 'regressed from RMSE 0.8700 (last blessed model) to 0.8800' in strict.reasons[0]


def test_a_segment_without_an_rmse_is_the_worst_and_the_rest_stay_in_order():
  # Before, a NaN margin left the sort undone: the worst segment was reported as A (+0.05) instead of B.
  segments = [SegmentMetrics('g', 'A', rmse=0.95, example_count=600),
              SegmentMetrics('g', 'B', rmse=float('nan'), example_count=600),
              SegmentMetrics('g', 'C', rmse=0.99, example_count=600)]
  verdict = segment_rules.judge_segments(0.90, segments, None, min_examples=500, max_margin=0.08,
                                         max_regression=0.02)
  assert not verdict.passed
  assert [r.segment.value for r in verdict.rows] == ['B', 'C', 'A']
  assert verdict.worst.segment.value == 'B'


@pytest.mark.parametrize('rmse', [float('nan'), float('inf')])
def test_a_gated_segment_without_a_finite_rmse_is_refused_with_one_reason_saying_so(rmse):
  # Before: 'has RMSE nan, +nan above the overall 0.9000; the allowed margin is 0.0800' and, with a last blessed
  # model, a second reason 'regressed from RMSE 0.9700 (last blessed model) to nan, by +nan'.
  segments = [SegmentMetrics('user_gender', 'F', rmse=rmse, example_count=600, rmse_standard_error=0.01),
              SegmentMetrics('user_gender', 'M', rmse=0.88, example_count=1400, rmse_standard_error=0.01)]
  verdict = segment_rules.judge_segments(0.90, segments, {('user_gender', 'F'): 0.97, ('user_gender', 'M'): 0.87},
                                         min_examples=500, max_margin=0.08, max_regression=0.02,
                                         margin_standard_errors=2.0)
  assert not verdict.passed
  assert verdict.reasons == (
      f'user_gender=F (600 examples) has RMSE {rmse}, not a finite number: the model predicts NaN or infinite '
      'ratings on its evaluation examples (training diverged: lower the learning rate); a gated segment must have a '
      'finite RMSE',)
  assert verdict.worst.segment.value == 'F' and verdict.warnings == ()
  # Too small to be gated, it is only reported, as any small segment.
  small = [SegmentMetrics('user_gender', 'F', rmse=rmse, example_count=40),
           SegmentMetrics('user_gender', 'M', rmse=0.88, example_count=1400)]
  verdict = segment_rules.judge_segments(0.90, small, None, min_examples=500, max_margin=0.08, max_regression=0.02)
  assert verdict.passed and verdict.worst.segment.value == 'M'


def test_with_standard_errors_a_segment_is_refused_only_beyond_its_sampling_noise():
  # F is +0.10 over the overall 0.90. With 2 standard errors of 0.015 its margin counts as 0.10 - 0.03 = 0.07,
  # within 0.08; with a standard error of 0.005, as 0.09: refused.
  noisy = [dataclasses.replace(SEGMENTS[0], rmse_standard_error=0.015)] + [
      dataclasses.replace(s, rmse_standard_error=0.01) for s in SEGMENTS[1:]]
  verdict = segment_rules.judge_segments(0.90, noisy, None, min_examples=500, max_margin=0.08,
                                         max_regression=0.02, margin_standard_errors=2.0)
  assert verdict.passed and verdict.warnings == ()
  assert verdict.worst.segment.name == 'user_gender=F' and verdict.worst.margin == pytest.approx(0.10)
  precise = [dataclasses.replace(noisy[0], rmse_standard_error=0.005)] + noisy[1:]
  verdict = segment_rules.judge_segments(0.90, precise, None, min_examples=500, max_margin=0.08,
                                         max_regression=0.02, margin_standard_errors=2.0)
  assert verdict.reasons == ('user_gender=F (600 examples) has RMSE 1.0000, +0.1000 above the overall 0.9000 '
                             '(+0.0900 after 2 standard errors of 0.0050); the allowed margin is 0.0800',)
  assert segment_rules.verdict_to_json(verdict, 0.90)['worst_segment']['rmse_standard_error'] == 0.005
  # Without a standard error F is judged on its plain margin, and the warning says so; 0 standard errors (the
  # default) is the plain rule whatever the errors are.
  verdict = segment_rules.judge_segments(0.90, SEGMENTS, None, min_examples=500, max_margin=0.08,
                                         max_regression=0.02, margin_standard_errors=2.0)
  assert not verdict.passed
  assert verdict.warnings[0] == ('user_gender=F: the evaluation has no standard error of its RMSE; its margin is '
                                 'judged without --segment-margin-standard-errors')
  assert not segment_rules.judge_segments(0.90, noisy, None, min_examples=500, max_margin=0.08,
                                          max_regression=0.02).passed
  with pytest.raises(ValueError, match='margin_standard_errors=-1'):
    segment_rules.judge_segments(0.90, noisy, None, min_examples=500, max_margin=0.08, max_regression=0.02,
                                 margin_standard_errors=-1.0)


def test_the_gate_reads_each_segments_standard_error_when_the_evaluation_has_it():
  metrics = {(): {'root_mean_squared_error': 0.9},
             (('user_gender', 'F'),): {'root_mean_squared_error': 1.0, 'example_count': 600.0,
                                       'rmse_standard_error': 0.031},
             (('user_gender', 'M'),): {'root_mean_squared_error': 0.88, 'example_count': 1400.0}}  # older evaluation
  overall, segments = segment_gate.overall_and_segments(metrics)
  assert overall == 0.9
  assert segments == [SegmentMetrics('user_gender', 'F', rmse=1.0, example_count=600, rmse_standard_error=0.031),
                      SegmentMetrics('user_gender', 'M', rmse=0.88, example_count=1400)]


def _failure(text: str):
  from tensorflow_model_analysis.proto import validation_result_pb2  # pylint: disable=g-import-not-at-top
  from google.protobuf import text_format  # pylint: disable=g-import-not-at-top
  return text_format.Parse(text, validation_result_pb2.ValidationFailure())


def test_evaluator_refusals_name_the_value_the_bound_and_the_flag(tmp_path):
  from tensorflow_model_analysis.proto import validation_result_pb2  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  above = _failure('metric_key { name: "root_mean_squared_error" } '
                   'metric_threshold { value_threshold { upper_bound { value: 1.0 } } } '
                   'metric_value { double_value { value: 1.12826 } }')
  worse = _failure('metric_key { name: "root_mean_squared_error" is_diff: true } '
                   'metric_threshold { change_threshold { direction: LOWER_IS_BETTER absolute { value: 0.01 } } } '
                   'metric_value { double_value { value: 0.0153 } }')
  result = validation_result_pb2.ValidationResult(validation_ok=False)
  overall = result.metric_validations_per_slice.add()
  overall.failures.extend([above, worse])
  with tf.io.TFRecordWriter(str(tmp_path / 'validations.tfrecord')) as writer:
    writer.write(result.SerializeToString())
  assert segment_gate.evaluator_refusal_reasons(str(tmp_path)) == [
      'the Evaluator did not bless the model: overall root_mean_squared_error 1.1283 is above --max-rmse 1',
      'the Evaluator did not bless the model: overall root_mean_squared_error changed by 0.0153 against the last '
      'blessed model, more than --max-rmse-increase 0.01 allows']
  # Before, every refusal said 'overall RMSE above its threshold or worse than the last blessed model'.
  assert segment_gate.evaluator_refusal_reasons(str(tmp_path / 'none')) == [
      'the Evaluator did not bless the model and recorded no failed threshold; see its log (the overall RMSE '
      'gates: --max-rmse, --max-rmse-increase)']


@pytest.mark.parametrize('kwargs', [{'min_examples': 0}, {'max_margin': -0.1}, {'max_regression': -1.0},
                                    {'margin_standard_errors': -1.0}, {'margin_standard_errors': float('nan')}])
def test_invalid_segment_gate_settings_are_refused(kwargs):
  with pytest.raises(ValueError, match=next(iter(kwargs))):
    configs.SegmentGate(**kwargs)


def test_segment_gate_flags_round_trip():
  import local_runner
  args = local_runner.parse_args(['--output-dir', '/tmp/x', '--segment-min-examples', '120',
                                  '--segment-max-margin', '0.05', '--segment-max-regression', '0.01',
                                  '--segment-margin-standard-errors', '2'])
  assert run_config.segment_gate(args) == configs.SegmentGate(min_examples=120, max_margin=0.05,
                                                              max_regression=0.01, margin_standard_errors=2.0)
  defaults = local_runner.parse_args(['--output-dir', '/tmp/x'])
  assert run_config.segment_gate(defaults) == configs.SegmentGate(min_examples=500, max_margin=0.08,
                                                                  max_regression=0.02, margin_standard_errors=0.0)


def test_new_ranking_hyperparameters_round_trip_through_custom_config():
  hparams = dataclasses.replace(hparams_lib.DEFAULT, cross_layers=2, cross_projection_dim=16,
                                factorization_dim=8, validation_fraction=0.1, early_stopping_patience=2)
  assert hparams_lib.RankingHyperparameters.from_config(json.loads(json.dumps(hparams.to_config()))) == hparams
  with pytest.raises(ValueError, match='validation_fraction'):
    hparams_lib.RankingHyperparameters(validation_fraction=0.0, early_stopping_patience=3)


@pytest.mark.slow
def test_pipeline_refuses_a_model_that_serves_one_segment_much_worse(tmp_path):
  csv = pipeline_runs.write_fixture_interactions(str(tmp_path / 'noisy.csv'), segment_rating_noise={'F': 2.0})
  run = pipeline_runs.run_pipeline(
      str(tmp_path / 'output'), csv,
      extra_args=pipeline_runs.FAST_TRAINING_ARGS + ('--max-rmse', '3.0', '--segment-min-examples', '20'))
  assert run.exit_code == 0  # the run succeeded; the gate said no
  store = run_summary.open_store(os.path.join(run.output_dir, configs.METADATA_FILE))
  outputs = run_summary.latest_run(store, configs.PIPELINE_NAME).output_artifacts
  evaluator_blessing = outputs[configs.RANKING_EVALUATOR_ID]['blessing'][0]
  gate_blessing = outputs[configs.RANKING_SEGMENT_GATE_ID]['blessing'][0]
  assert evaluator_blessing.custom_properties[segment_gate.BLESSED_KEY].int_value == 1
  assert gate_blessing.custom_properties[segment_gate.BLESSED_KEY].int_value == 0
  # What the Kubeflow resolver of the last blessed ranking model filters on (kubeflow_runner.py).
  assert gate_blessing.custom_properties['blessing_gate'].string_value == 'ranking_segment_gate'
  reasons = json.loads(gate_blessing.custom_properties[segment_gate.REASONS_KEY].string_value)
  assert any(r.startswith('user_gender=F ') for r in reasons), reasons
  report = segment_gate.read_report(gate_blessing.uri)
  sliced_columns = {row['column'] for row in report['segments']}
  assert sliced_columns == {'user_gender', 'user_occupation', 'user_age_bucket', 'item_popularity_bucket'}
  assert report['warnings'] == []  # every column sliced, segments of 20 or more examples gated
  assert all(row['rmse_standard_error'] > 0 for row in report['segments'])  # each measured by the Evaluator
  assert report['thresholds']['margin_standard_errors'] == 0.0
  female = next(r for r in report['segments'] if r['column'] == 'user_gender' and r['value'] == 'F')
  assert female['margin'] > 0.08 and female['violations']
  assert os.path.exists(os.path.join(gate_blessing.uri, segment_gate.NOT_BLESSED_FILE))
  assert run.pushed_versions() == []


def test_whole_number_segment_gate_settings_build_the_pipeline():
  # SegmentGate(max_margin=0, margin_standard_errors=2) is valid (its error message suggests 'e.g. 2'), but TFX
  # refused the ints for the component's float parameters: TypeError "Expected type <class 'float'> for parameter
  # 'max_margin' but got 0 instead" when the pipeline was built.
  built = pipeline_runs.local_pipeline(segment_gate=configs.SegmentGate(min_examples=300, max_margin=0,
                                                                        max_regression=1, margin_standard_errors=2))
  [gate] = [c for c in built.components if c.id == configs.RANKING_SEGMENT_GATE_ID]
  assert {name: gate.exec_properties[name] for name in ('min_examples', 'max_margin', 'max_regression',
                                                         'margin_standard_errors')} == {
      'min_examples': 300, 'max_margin': 0.0, 'max_regression': 1.0, 'margin_standard_errors': 2.0}
  assert all(isinstance(gate.exec_properties[name], float)
             for name in ('max_margin', 'max_regression', 'margin_standard_errors'))


def test_a_segment_exactly_at_the_margin_or_the_regression_allowance_passes():
  # 0.51 - 0.50 is 0.010000000000000009 and 0.88 - 0.86 is 0.020000000000000018 in floats: before, both were
  # refused ('+0.0100 above the overall 0.5000; the allowed margin is 0.0100', 'by +0.0200; the allowed regression
  # is 0.0200') though neither is more than its allowance.
  at_margin = [SegmentMetrics('user_gender', 'F', rmse=0.51, example_count=500)]
  verdict = segment_rules.judge_segments(0.50, at_margin, None, min_examples=500, max_margin=0.01,
                                         max_regression=0.02)
  assert verdict.passed, verdict.reasons
  at_regression = [SegmentMetrics('user_gender', 'F', rmse=0.88, example_count=500)]
  verdict = segment_rules.judge_segments(0.88, at_regression, {('user_gender', 'F'): 0.86}, min_examples=500,
                                         max_margin=0.08, max_regression=0.02)
  assert verdict.passed, verdict.reasons
  # A ten-thousandth of a star more is refused, and the reason names the segment, the figures and the allowance.
  verdict = segment_rules.judge_segments(0.88, [dataclasses.replace(at_regression[0], rmse=0.8801)],
                                         {('user_gender', 'F'): 0.86}, min_examples=500, max_margin=0.08,
                                         max_regression=0.02)
  assert verdict.reasons == ('user_gender=F (500 examples) regressed from RMSE 0.8600 (last blessed model) to '
                             '0.8801, by +0.0201; the allowed regression is 0.0200',)
  verdict = segment_rules.judge_segments(0.50, [dataclasses.replace(at_margin[0], rmse=0.5101)], None,
                                         min_examples=500, max_margin=0.01, max_regression=0.02)
  assert verdict.reasons == ('user_gender=F (500 examples) has RMSE 0.5101, +0.0101 above the overall 0.5000; '
                             'the allowed margin is 0.0100',)


def test_a_non_finite_standard_error_is_judged_on_the_plain_margin_with_a_warning():
  # F is +0.10 over 0.90, above a margin of 0.08. Before, an infinite standard error discounted it to -inf and
  # passed it silently; a NaN one made it NaN and refused M (-0.02, well within) as 'nan after 2 standard errors'.
  segments = [SegmentMetrics('user_gender', 'F', rmse=1.00, example_count=600, rmse_standard_error=float('inf')),
              SegmentMetrics('user_gender', 'M', rmse=0.88, example_count=1400, rmse_standard_error=float('nan'))]
  verdict = segment_rules.judge_segments(0.90, segments, None, min_examples=500, max_margin=0.08,
                                         max_regression=0.02, margin_standard_errors=2.0)
  assert verdict.reasons == ('user_gender=F (600 examples) has RMSE 1.0000, +0.1000 above the overall 0.9000; '
                             'the allowed margin is 0.0800',)
  assert verdict.warnings == (
      'user_gender=F: the evaluation has no standard error of its RMSE (inf); its margin is judged without '
      '--segment-margin-standard-errors',
      'user_gender=M: the evaluation has no standard error of its RMSE (nan); its margin is judged without '
      '--segment-margin-standard-errors')


def test_an_evaluator_refusal_on_a_segment_names_it_as_the_segment_rule_does():
  from tensorflow_model_analysis.proto import metrics_for_slice_pb2  # pylint: disable=g-import-not-at-top
  from google.protobuf import text_format  # pylint: disable=g-import-not-at-top
  above = _failure('metric_key { name: "root_mean_squared_error" } '
                   'metric_threshold { value_threshold { upper_bound { value: 1.0 } } } '
                   'metric_value { double_value { value: 1.2 } }')
  # A string slice value is stored as bytes: before, the sentence said "user_occupation=b'writer'".
  slice_key = text_format.Parse('single_slice_keys { column: "user_occupation" bytes_value: "writer" } '
                                'single_slice_keys { column: "user_age" int64_value: 25 }',
                                metrics_for_slice_pb2.SliceKey())
  assert segment_gate.threshold_failure_sentence(slice_key, above) == (
      'user_occupation=writer, user_age=25 root_mean_squared_error 1.2000 is above --max-rmse 1')
  assert segment_gate.threshold_failure_sentence(metrics_for_slice_pb2.SliceKey(), above) == (
      'overall root_mean_squared_error 1.2000 is above --max-rmse 1')


def test_a_gated_segment_the_last_blessed_model_was_not_measured_on_is_named_in_a_warning():
  # The baseline has F and M (and a segment the candidate lacks, which is ignored) but not age 45-49 (500
  # examples, gated): its regression cannot be checked. Before, that was silent, unlike a NaN baseline figure.
  baseline = {('user_gender', 'F'): 0.99, ('user_gender', 'M'): 0.88, ('user_occupation', 'writer'): 1.3,
              ('user_occupation', 'artist'): 0.70}
  verdict = segment_rules.judge_segments(0.90, SEGMENTS, baseline, min_examples=500, max_margin=0.2,
                                         max_regression=0.02)
  assert verdict.passed, verdict.reasons
  assert verdict.warnings == ('user_age_bucket=45-49: the last blessed model has no RMSE on it (not in its '
                              'evaluation); not checked for regression',)
  rows = {r.segment.name: r for r in verdict.rows}
  assert rows['user_age_bucket=45-49'].baseline_rmse is None and rows['user_gender=F'].baseline_rmse == 0.99
  # A first run has no baseline at all: nothing to warn about.
  assert segment_rules.judge_segments(0.90, SEGMENTS, None, min_examples=500, max_margin=0.2,
                                      max_regression=0.02).warnings == ()


@pytest.mark.parametrize('overall', [float('nan'), float('inf')])
def test_a_non_finite_overall_rmse_is_refused_naming_the_value_and_the_causes(overall):
  # Before: 'overall_rmse=inf is not a number; the evaluation produced no RMSE' - inf is a number, and the
  # evaluation did produce it (a diverged model's NaN predictions give NaN).
  with pytest.raises(ValueError) as raised:
    segment_rules.judge_segments(overall, SEGMENTS, None, min_examples=500, max_margin=0.08, max_regression=0.02)
  assert str(raised.value) == (
      f'overall_rmse={overall} is not a finite number: the model predicts NaN or infinite ratings on the '
      'evaluation examples (training diverged: lower the learning rate) or the evaluation has no examples; the '
      'segments cannot be judged against it.')


_EVALUATION = {(): {'root_mean_squared_error': 0.90},
               (('user_gender', 'F'),): {'root_mean_squared_error': 1.00, 'example_count': 600.0},
               (('user_gender', 'M'),): {'root_mean_squared_error': 0.88, 'example_count': 1400.0}}


def test_the_gate_judges_the_metrics_it_reads_and_adds_the_evaluators_refusal():
  blessed, reasons, report = segment_gate.judge_metrics(
      {'candidate': _EVALUATION}, ['the Evaluator did not bless the model: overall RMSE'], ['user_gender'],
      min_examples=500, max_margin=0.08, max_regression=0.02)
  assert not blessed
  assert reasons == ['the Evaluator did not bless the model: overall RMSE',
                     'user_gender=F (600 examples) has RMSE 1.0000, +0.1000 above the overall 0.9000; the allowed '
                     'margin is 0.0800']
  assert (report['evaluator_blessed'], report['passed'], report['has_baseline']) == (False, False, False)
  assert report['worst_segment']['value'] == 'F'


@pytest.mark.parametrize('overall', [float('nan'), float('inf')])
def test_a_diverged_models_non_finite_overall_rmse_refuses_it_instead_of_failing_the_run(overall):
  # Before, judge_segments' ValueError ended the SegmentGate execution: the run failed and no blessing recorded why.
  evaluation = {**_EVALUATION, (): {'root_mean_squared_error': overall}}
  blessed, reasons, report = segment_gate.judge_metrics(
      {'candidate': evaluation}, [], ['user_gender'], min_examples=500, max_margin=0.08, max_regression=0.02)
  assert not blessed
  assert reasons == [f'the overall RMSE is {overall}: the model predicts NaN or infinite ratings on the evaluation '
                     'examples (training diverged: lower the learning rate); no segment can be judged against it']
  assert report['blessed'] is False and report['evaluator_blessed'] is True and report['segments'] == []
  assert report['worst_segment'] is None and report['reasons'] == reasons
  # The report is written with json.dump and read back by the inspection CLI.
  assert json.loads(json.dumps(report))['reasons'] == reasons


def test_the_gate_checks_its_settings_before_a_non_finite_overall_rmse():
  evaluation = {**_EVALUATION, (): {'root_mean_squared_error': float('nan')}}
  with pytest.raises(ValueError, match='min_examples=0 must be >= 1'):
    segment_gate.judge_metrics({'candidate': evaluation}, [], ['user_gender'], min_examples=0, max_margin=0.08,
                               max_regression=0.02)
