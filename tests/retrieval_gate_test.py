"""Retrieval gate on artifacts in tmp_path: a good model is blessed and pushed; a bad one is neither, and the
served version stays."""

import dataclasses
import json
import os

import pytest
import tensorflow as tf
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.utils import proto_utils

from components import retrieval_gate
from components.serving_pusher import ServingPusherExecutor, served_versions
from schema import features
from tests import pipeline_runs
from tests.retrieval_export_test import write_split
from tests.transform_fixtures import analyzed_copy, movielens_like_row
from trainer.retrieval import export, hparams as hparams_lib

NUM_USERS = 10
ITEMS_PER_USER = 14  # 12 trained on, 2 evaluated; 140 items in all, so top 100 is a real cut.
NUM_EVAL_PER_USER = 2


def _rows():
  train, evaluation = [], []
  for user in range(NUM_USERS):
    for offset in range(ITEMS_PER_USER):
      row = movielens_like_row(f'u{user}', f'i{user * ITEMS_PER_USER + offset}', 4.0,
                               gender='F' if user % 2 else 'M')
      (evaluation if offset >= ITEMS_PER_USER - NUM_EVAL_PER_USER else train).append(row)
  return train, evaluation


class OneHotUserTower(tf.keras.Model):
  """Query embedding = one-hot of the user's vocabulary index, so item embedding columns are per-user scores."""

  def __init__(self, depth: int) -> None:
    super().__init__()
    self._depth = depth

  def call(self, inputs):
    return tf.one_hot(tf.reshape(inputs[features.transformed_name(features.USER_ID)], [-1]), self._depth)


def _export_model(uri, tf_transform_output, train_rows, eval_rows, truth_score):
  """A model scoring each user's eval items `truth_score` (a float, or one per user id) and every other item 0."""
  vocabulary = tf_transform_output.vocabulary_by_name(features.vocabulary_name(features.USER_ID))
  user_index = {user.decode(): i for i, user in enumerate(vocabulary)}
  depth = len(vocabulary) + 1
  item_ids = sorted({r[features.ITEM_ID] for r in train_rows + eval_rows})
  embeddings = [[0.0] * depth for _ in item_ids]
  for row in eval_rows:
    score = truth_score[row[features.USER_ID]] if isinstance(truth_score, dict) else truth_score
    embeddings[item_ids.index(row[features.ITEM_ID])][user_index[row[features.USER_ID]]] = score
  model = standard_artifacts.Model()
  model.uri = uri
  export.export_retrieval_model(
      OneHotUserTower(depth), tf.constant(item_ids), tf.constant(embeddings, tf.float32), tf_transform_output,
      hparams_lib.RetrievalHyperparameters(top_k=5, item_item_weight=0.0), os.path.join(uri, 'Format-Serving'))
  return model


def _gate_and_push(examples, model, baseline, tmp_path, name, serving_dir, **settings):
  evaluation, blessing = standard_artifacts.ModelEvaluation(), standard_artifacts.ModelBlessing()
  evaluation.uri, blessing.uri = str(tmp_path / f'{name}_evaluation'), str(tmp_path / f'{name}_blessing')
  settings = {'min_recall_at_100': 0.55, 'min_top_100_accuracy': 0.30, 'max_decrease': 0.01, **settings}
  blessed = retrieval_gate.evaluate_and_bless(examples, model, baseline, evaluation, blessing, **settings)
  pushed = standard_artifacts.PushedModel()
  pushed.uri = str(tmp_path / f'{name}_pushed')
  destination = pusher_pb2.PushDestination(
      filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=serving_dir))
  ServingPusherExecutor().Do(
      {standard_component_specs.MODEL_KEY: [model], standard_component_specs.MODEL_BLESSING_KEY: [blessing]},
      {standard_component_specs.PUSHED_MODEL_KEY: [pushed]},
      {standard_component_specs.PUSH_DESTINATION_KEY: proto_utils.proto_to_json(destination)})
  return blessed, evaluation, blessing, pushed


def _examples_and_transform(tmp_path):
  """(train rows, eval rows, their Examples artifact with both splits, the Transform output of the train rows)."""
  train_rows, eval_rows = _rows()
  examples = standard_artifacts.Examples()
  examples.uri = str(tmp_path / 'examples')
  examples.split_names = json.dumps(['train', 'eval'])
  write_split(train_rows, os.path.join(examples.uri, 'Split-train', 'data.gz'))
  write_split(eval_rows, os.path.join(examples.uri, 'Split-eval', 'data.gz'))
  return train_rows, eval_rows, examples, analyzed_copy(train_rows, str(tmp_path / 'transform'))


def test_bad_model_is_not_blessed_and_the_served_version_stays(tmp_path):
  train_rows, eval_rows, examples, tf_transform_output = _examples_and_transform(tmp_path)
  serving_dir = str(tmp_path / 'serving' / 'retrieval')

  good = _export_model(str(tmp_path / 'good'), tf_transform_output, train_rows, eval_rows, truth_score=1.0)
  good.id = 1
  blessed, evaluation, blessing, pushed = _gate_and_push(examples, good, None, tmp_path, 'good', serving_dir)
  # Each user's 2 eval items score 1, the other 138 items 0: both are in the top 100 with or without seen items.
  assert blessed
  assert evaluation.get_float_custom_property('recall_at_100') == 1.0
  assert evaluation.get_float_custom_property('top_100_accuracy') == 1.0
  assert blessing.get_int_custom_property('blessed') == 1
  assert json.loads(blessing.get_string_custom_property('reasons')) == []
  assert blessing.get_string_custom_property('blessing_gate') == 'retrieval_gate'  # the Kubeflow resolver's filter
  assert blessing.get_int_custom_property('current_model_id') == 1
  assert pushed.get_int_custom_property('pushed') == 1
  [version] = served_versions(serving_dir)
  with open(os.path.join(evaluation.uri, retrieval_gate.METRICS_FILE), encoding='utf-8') as f:
    report = json.load(f)
  assert report['segments'][features.USER_GENDER] == {
      'F': {'recall_at_100': 1.0, 'num_users': 5}, 'M': {'recall_at_100': 1.0, 'num_users': 5}}

  bad = _export_model(str(tmp_path / 'bad'), tf_transform_output, train_rows, eval_rows, truth_score=-1.0)
  bad.id = 2
  blessed, evaluation, blessing, pushed = _gate_and_push(examples, bad, good, tmp_path, 'bad', serving_dir)
  # The eval items now score -1, below 138 items at 0 (126 once seen items are removed): none in the top 100.
  assert not blessed
  assert evaluation.get_float_custom_property('recall_at_100') == 0.0
  assert evaluation.get_float_custom_property('baseline_recall_at_100') == 1.0
  assert blessing.get_int_custom_property('blessed') == 0
  # Both minimums missed and both figures 1.0 below the last blessed model's, each naming its flag.
  assert json.loads(blessing.get_string_custom_property('reasons')) == [
      'recall_at_100=0.0000 is below the minimum 0.5500 (--min-recall-at-100)',
      "recall_at_100=0.0000 is worse than the last blessed model's 1.0000 by more than 0.0100 "
      '(--max-retrieval-decrease)',
      'top_100_accuracy=0.0000 is below the minimum 0.3000 (--min-top-100-accuracy)',
      "top_100_accuracy=0.0000 is worse than the last blessed model's 1.0000 by more than 0.0100 "
      '(--max-retrieval-decrease)']
  assert pushed.get_int_custom_property('pushed') == 0
  assert served_versions(serving_dir) == [version]
  assert os.path.isfile(os.path.join(serving_dir, str(version), 'saved_model.pb'))


def test_items_new_since_the_last_blessed_model_count_as_its_misses(tmp_path):
  train_rows, eval_rows, examples, tf_transform_output = _examples_and_transform(tmp_path)
  # The last blessed model predates user u0's two eval items: its catalogue lacks them.
  old_eval_rows = [r for r in eval_rows if r[features.USER_ID] != 'u0']
  baseline = _export_model(str(tmp_path / 'old'), tf_transform_output, train_rows, old_eval_rows, truth_score=1.0)
  baseline.id = 1
  data = retrieval_gate.read_evaluation_data([os.path.join(examples.uri, 'Split-train', '*')],
                                             [os.path.join(examples.uri, 'Split-eval', '*')])
  baseline_dir = os.path.join(baseline.uri, 'Format-Serving')
  with pytest.raises(ValueError, match='2 evaluation items'):  # a candidate must know every evaluation item
    retrieval_gate.measure(baseline_dir, data)
  # u0's 2 items are misses, the other 9 users find both of theirs: recall 9/10, accuracy 18/20.
  overall = retrieval_gate.measure(baseline_dir, data, unknown_items_miss=True)['overall']
  assert (overall['recall_at_100'], overall['top_100_accuracy'], overall['num_unknown_eval_items']) == (0.9, 0.9, 2)
  # A new item is often in one user's training items and another's eval items: here u1 also trained on u0's
  # two new items. Before, the gate failed with IndexError on them; u1's figures (and so all) are unchanged.
  new_items = {item for user, item in data.pairs if user == b'u0'}
  also_seen = dataclasses.replace(data, seen_items={**data.seen_items,
                                                    b'u1': data.seen_items.get(b'u1', set()) | new_items})
  overall = retrieval_gate.measure(baseline_dir, also_seen, unknown_items_miss=True)['overall']
  assert (overall['recall_at_100'], overall['top_100_accuracy'], overall['num_unknown_eval_items']) == (0.9, 0.9, 2)

  candidate = _export_model(str(tmp_path / 'new'), tf_transform_output, train_rows, eval_rows, truth_score=1.0)
  candidate.id = 2
  blessed, evaluation, _, pushed = _gate_and_push(examples, candidate, baseline, tmp_path, 'new',
                                                  str(tmp_path / 'serving' / 'retrieval'))
  assert blessed and pushed.get_int_custom_property('pushed') == 1
  assert evaluation.get_float_custom_property('baseline_recall_at_100') == 0.9


def test_whole_number_retrieval_gate_settings_build_the_pipeline():
  # RetrievalGate(min_recall_at_100=0, min_top_100_accuracy=0, max_decrease=1) is valid, but TFX refused the ints
  # for the component's float parameters: TypeError "Expected type <class 'float'> for parameter
  # 'min_recall_at_100' but got 0 instead" when the pipeline was built.
  from pipeline import configs  # pylint: disable=g-import-not-at-top
  built = pipeline_runs.local_pipeline(
      retrieval_gate=configs.RetrievalGate(min_recall_at_100=0, min_top_100_accuracy=0, max_decrease=1))
  [gate] = [c for c in built.components if c.id == configs.RETRIEVAL_GATE_ID]
  settings = {name: gate.exec_properties[name] for name in ('min_recall_at_100', 'min_top_100_accuracy',
                                                             'max_decrease')}
  assert settings == {'min_recall_at_100': 0.0, 'min_top_100_accuracy': 0.0, 'max_decrease': 1.0}
  assert all(isinstance(value, float) for value in settings.values())


def test_a_recall_of_no_user_refuses_the_model_and_says_why():
  # Every evaluation item of every user was also one of the user's training items: Recall@100 averages no user
  # and is NaN. Before, the reason said 'recall_at_100=nan is below the minimum 0.5500'.
  candidate = {'recall_at_100': float('nan'), 'top_100_accuracy': 0.5, 'num_recall_users': 0}
  blessed, reasons = retrieval_gate.blessing_decision(candidate, None, min_recall_at_100=0.55,
                                                      min_top_100_accuracy=0.30, max_decrease=0.01)
  assert not blessed
  assert reasons == ['recall_at_100 is not a number: no evaluation user has an evaluation item outside their '
                     'training items (num_recall_users=0), so it cannot be measured against the minimum 0.5500 '
                     '(--min-recall-at-100); the evaluation split must hold interactions with items the users did '
                     'not train on']
  # A measured figure is still compared with its minimum and the last blessed model's: 0.54 misses 0.55, and
  # 0.29 is more than 0.01 below the last blessed 0.31.
  blessed, reasons = retrieval_gate.blessing_decision(
      {'recall_at_100': 0.54, 'top_100_accuracy': 0.29}, {'recall_at_100': 0.54, 'top_100_accuracy': 0.31},
      min_recall_at_100=0.55, min_top_100_accuracy=0.0, max_decrease=0.01)
  assert not blessed and reasons == [
      'recall_at_100=0.5400 is below the minimum 0.5500 (--min-recall-at-100)',
      "top_100_accuracy=0.2900 is worse than the last blessed model's 0.3100 by more than 0.0100 "
      '(--max-retrieval-decrease)']


@pytest.mark.parametrize('accuracy', [float('nan'), float('inf'), float('-inf')])
def test_a_top_100_accuracy_that_is_not_a_finite_number_refuses_the_model_and_says_why(accuracy):
  # Before: NaN read 'top_100_accuracy=nan is below the minimum 0.3300', +inf was blessed, and -inf got that reason
  # and 'top_100_accuracy=-inf is worse than the last blessed model's 0.4000'. Recall@100 0.60 passes 0.55 and
  # equals the last blessed model's: only the accuracy refuses.
  blessed, reasons = retrieval_gate.blessing_decision(
      {'recall_at_100': 0.60, 'top_100_accuracy': accuracy}, {'recall_at_100': 0.60, 'top_100_accuracy': 0.40},
      min_recall_at_100=0.55, min_top_100_accuracy=0.33, max_decrease=0.01)
  assert not blessed
  assert reasons == [f"top_100_accuracy is {accuracy}, not a finite number: the model's scores are NaN or infinite "
                     '(training diverged: check the training loss, lower the learning rate), so it cannot be '
                     'measured against the minimum 0.3300 (--min-top-100-accuracy)']


def test_a_recall_of_no_user_and_a_nan_accuracy_each_say_what_they_are():
  blessed, reasons = retrieval_gate.blessing_decision(
      {'recall_at_100': float('nan'), 'top_100_accuracy': float('nan'), 'num_recall_users': 0}, None,
      min_recall_at_100=0.55, min_top_100_accuracy=0.33, max_decrease=0.01)
  assert not blessed
  assert reasons == ['recall_at_100 is not a number: no evaluation user has an evaluation item outside their '
                     'training items (num_recall_users=0), so it cannot be measured against the minimum 0.5500 '
                     '(--min-recall-at-100); the evaluation split must hold interactions with items the users did '
                     'not train on',
                     "top_100_accuracy is nan, not a finite number: the model's scores are NaN or infinite (training "
                     'diverged: check the training loss, lower the learning rate), so it cannot be measured against '
                     'the minimum 0.3300 (--min-top-100-accuracy)']


def test_figures_exactly_at_the_minimum_or_the_allowed_decrease_pass():
  from components import retrieval_metrics  # pylint: disable=g-import-not-at-top
  # Six users with a recall of 0.55 each average 0.5499999999999999 in floats, and 0.101 - 0.01 is above 0.091:
  # before, the first was 'below the minimum 0.5500' and the second 'worse than 0.1010 by more than 0.0100'.
  recall = retrieval_metrics.mean_recall([0.55] * 6)
  blessed, reasons = retrieval_gate.blessing_decision(
      {'recall_at_100': recall, 'top_100_accuracy': 0.091}, {'recall_at_100': 0.55, 'top_100_accuracy': 0.101},
      min_recall_at_100=0.55, min_top_100_accuracy=0.0, max_decrease=0.01)
  assert blessed, reasons
  # A ten-thousandth less is refused.
  blessed, reasons = retrieval_gate.blessing_decision(
      {'recall_at_100': 0.5499, 'top_100_accuracy': 0.0909}, {'recall_at_100': 0.55, 'top_100_accuracy': 0.101},
      min_recall_at_100=0.55, min_top_100_accuracy=0.0, max_decrease=0.01)
  assert reasons == ['recall_at_100=0.5499 is below the minimum 0.5500 (--min-recall-at-100)',
                     "top_100_accuracy=0.0909 is worse than the last blessed model's 0.1010 by more than 0.0100 "
                     '(--max-retrieval-decrease)']


def test_a_user_segment_left_behind_refuses_the_model_only_when_segments_are_gated(tmp_path):
  train_rows, eval_rows, examples, tf_transform_output = _examples_and_transform(tmp_path)
  serving_dir = str(tmp_path / 'serving' / 'retrieval')
  # The 5 female users' eval items score 1 (both in their top 100: recall 1), the 5 male users' -1 (below their
  # 126 unseen items at 0: recall 0). Overall Recall@100 (1*5 + 0*5) / 10 = 0.5, top-100 accuracy 10/20 = 0.5.
  scores = {f'u{user}': 1.0 if user % 2 else -1.0 for user in range(NUM_USERS)}
  model = _export_model(str(tmp_path / 'model'), tf_transform_output, train_rows, eval_rows, truth_score=scores)
  model.id = 1
  lowered = {'min_recall_at_100': 0.4, 'min_top_100_accuracy': 0.4}

  # Reported, not gated (the default shortfall of 1): blessed; M is the worst gated segment, 0.5 below.
  blessed, evaluation, blessing, pushed = _gate_and_push(examples, model, None, tmp_path, 'reported', serving_dir,
                                                         segment_min_users=5, **lowered)
  assert blessed and pushed.get_int_custom_property('pushed') == 1
  assert blessing.get_string_custom_property('worst_segment') == 'user_gender=M'
  assert blessing.get_float_custom_property('worst_segment_shortfall') == 0.5
  with open(os.path.join(evaluation.uri, retrieval_gate.METRICS_FILE), encoding='utf-8') as f:
    report = json.load(f)
  assert report['worst_segment'] == {'column': 'user_gender', 'value': 'M', 'recall': 0.0, 'num_users': 5,
                                     'shortfall': 0.5}
  assert report['thresholds']['segment_max_shortfall'] == 1.0

  # Gated at 0.3: M's 0.5 shortfall refuses it, the served version stays.
  blessed, _, blessing, pushed = _gate_and_push(examples, model, None, tmp_path, 'gated', serving_dir,
                                                segment_min_users=5, segment_max_shortfall=0.3, **lowered)
  assert not blessed and pushed.get_int_custom_property('pushed') == 0
  assert json.loads(blessing.get_string_custom_property('reasons')) == [
      'user_gender=M (5 users) has recall_at_100=0.0000, 0.5000 below the overall 0.5000; '
      '--retrieval-segment-max-shortfall allows 0.3000']
  assert len(served_versions(serving_dir)) == 1

  # Segments smaller than segment_min_users are not gated: 6 users are needed, each gender has 5 and the one age
  # bucket (every user is 30) has all 10 with recall 0.5, no shortfall.
  blessed, _, blessing, _ = _gate_and_push(examples, model, None, tmp_path, 'small', serving_dir,
                                           segment_min_users=6, segment_max_shortfall=0.3, **lowered)
  assert blessed
  assert blessing.get_float_custom_property('worst_segment_shortfall') == 0.0


def test_segment_shortfalls_are_ordered_worst_first_and_exactly_at_the_allowance_pass():
  segments = {'user_gender': {'F': {'recall_at_100': 0.70, 'num_users': 400},
                              'M': {'recall_at_100': 0.62, 'num_users': 543}},
              'user_occupation': {'writer': {'recall_at_100': 0.55, 'num_users': 45},  # too small at 50
                                  'librarian': {'recall_at_100': 0.62, 'num_users': 51}}}
  # Overall 0.72: M and librarian are both 0.10 below (ties by column), F 0.02.
  rows = retrieval_gate.segment_shortfalls(0.72, segments, min_users=50)
  assert [(r.column, r.value) for r in rows] == [('user_gender', 'M'), ('user_occupation', 'librarian'),
                                                 ('user_gender', 'F')]
  assert [round(r.shortfall, 10) for r in rows] == [0.1, 0.1, 0.02]
  # 0.72 - 0.62 is 0.09999999999999998 or 0.10000000000000009 in floats: exactly 0.1 passes.
  reasons, worst = retrieval_gate.segment_reasons(0.72, segments, min_users=50, max_shortfall=0.1)
  assert reasons == [] and (worst.column, worst.value) == ('user_gender', 'M')
  reasons, _ = retrieval_gate.segment_reasons(0.72, segments, min_users=50, max_shortfall=0.0999)
  assert reasons == [
      'user_gender=M (543 users) has recall_at_100=0.6200, 0.1000 below the overall 0.7200; '
      '--retrieval-segment-max-shortfall allows 0.0999',
      'user_occupation=librarian (51 users) has recall_at_100=0.6200, 0.1000 below the overall 0.7200; '
      '--retrieval-segment-max-shortfall allows 0.0999']
  # With writer gated (45 users), it is the worst.
  _, worst = retrieval_gate.segment_reasons(0.72, segments, min_users=45, max_shortfall=1.0)
  assert (worst.value, round(worst.shortfall, 10)) == ('writer', 0.17)
  # No recall overall (refused by blessing_decision): no segment is judged.
  assert retrieval_gate.segment_reasons(float('nan'), segments, min_users=1, max_shortfall=0.0) == ([], None)


@pytest.mark.parametrize('settings, message', [
    ({'segment_max_shortfall': -0.1}, 'segment_max_shortfall=-0.1 must be in'),
    ({'segment_max_shortfall': float('nan')}, 'segment_max_shortfall=nan must be in'),
    ({'segment_max_shortfall': 1.5}, 'segment_max_shortfall=1.5 must be in'),
    ({'segment_min_users': 0}, 'segment_min_users=0 must be a whole number'),
    ({'segment_min_users': 2.5}, 'segment_min_users=2.5 must be a whole number'),
])
def test_invalid_retrieval_segment_settings_are_refused(settings, message):
  from pipeline import configs  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match=message):
    configs.RetrievalGate(**settings)


def test_retrieval_segment_flags_reach_the_gate_component():
  import local_runner  # pylint: disable=g-import-not-at-top
  from pipeline import configs, run_config  # pylint: disable=g-import-not-at-top
  args = local_runner.parse_args(['--output-dir', '/tmp/x', '--retrieval-segment-max-shortfall', '0.1',
                                  '--retrieval-segment-min-users', '30'])
  gate = run_config.retrieval_gate(args)
  assert (gate.segment_max_shortfall, gate.segment_min_users) == (0.1, 30)
  assert run_config.retrieval_gate(local_runner.parse_args(['--output-dir', '/tmp/x'])) == configs.RetrievalGate()
  with pytest.raises(ValueError, match='--retrieval-segment-min-users'):
    run_config.retrieval_gate(local_runner.parse_args(['--output-dir', '/tmp/x', '--retrieval-segment-min-users',
                                                       '0']))
  built = pipeline_runs.local_pipeline(retrieval_gate=configs.RetrievalGate(segment_max_shortfall=0,
                                                                            segment_min_users=30))
  [component] = [c for c in built.components if c.id == configs.RETRIEVAL_GATE_ID]
  assert (component.exec_properties['segment_max_shortfall'], component.exec_properties['segment_min_users']) == (
      0.0, 30)


def test_a_model_whose_scores_are_nan_is_refused_saying_why_and_the_served_version_stays(tmp_path):
  # Before, the gate raised ValueError('... scores are NaN ...'): the run failed without a verdict, while the segment
  # gate refuses a ranking model that predicts NaN ratings and the run goes on.
  train_rows, eval_rows, examples, tf_transform_output = _examples_and_transform(tmp_path)
  serving_dir = str(tmp_path / 'serving' / 'retrieval')
  good = _export_model(str(tmp_path / 'good'), tf_transform_output, train_rows, eval_rows, truth_score=1.0)
  good.id = 1
  assert _gate_and_push(examples, good, None, tmp_path, 'good', serving_dir)[0]
  [version] = served_versions(serving_dir)

  diverged = _export_model(str(tmp_path / 'diverged'), tf_transform_output, train_rows, eval_rows,
                           truth_score=float('nan'))
  diverged.id = 2
  blessed, evaluation, blessing, pushed = _gate_and_push(examples, diverged, good, tmp_path, 'diverged',
                                                         serving_dir)
  assert not blessed
  # The 20 eval items each hold a NaN in one user's column; a query (a one-hot) times it is NaN for every one of the
  # 10 users (0 * NaN is NaN): 200 NaN scores. In the catalogue's order (sorted ids: i0, i1, i10, i100 … i109, i11,
  # i110, …) the first eval item is i110 (user 7's), column 14.
  assert json.loads(blessing.get_string_custom_property('reasons')) == [
      'the model cannot be measured: 200 scores are NaN (the first of user row 0, item column 14); the model\'s '
      'embeddings or scores are not numbers, e.g. after training diverged. Fix the model (lower the learning rate) '
      'before measuring it.']
  assert blessing.get_int_custom_property('blessed') == 0
  assert 'recall_at_100' not in evaluation.mlmd_artifact.custom_properties  # NaN: left out
  assert evaluation.get_float_custom_property('baseline_recall_at_100') == 1.0
  with open(os.path.join(evaluation.uri, retrieval_gate.METRICS_FILE), encoding='utf-8') as f:
    report = json.load(f)
  assert report['metrics'] == {'num_eval_pairs': 20, 'top_10_accuracy': None, 'recall_at_10': None,
                               'top_100_accuracy': None, 'recall_at_100': None}
  assert report['segments'] == {} and report['worst_segment'] is None
  assert pushed.get_int_custom_property('pushed') == 0
  assert served_versions(serving_dir) == [version]
