"""End-to-end runs of the local pipeline on generated interactions: push, serving contract, caching, gates.

The tests of the second half run the pipeline again in one output directory, in file order: an unchanged
rerun, a run the gate refuses, a run on drifted data and a run on a malformed file. Each checks that the
model served before it stays in place.
"""

import glob
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from components import segment_gate
from ingestion import examples, interactions as interactions_lib
from pipeline import configs, run_summary
from schema import features
from tests import pipeline_runs
from trainer.ranking import export

pytestmark = pytest.mark.slow


def _serving_requests(interactions_csv: str, rows: int) -> tf.Tensor:
  """The first `rows` interactions as serving requests: raw columns, rating absent."""
  table = interactions_lib.read_interactions(interactions_csv)
  requests = []
  for i in range(rows):
    row = {k: v for k, v in table.row(i).items() if k != features.RATING}
    requests.append(examples.serialize_example(row, table.column_types))
  return tf.constant(requests)


def test_first_run_blesses_and_pushes_a_ranking_model(fixture_pipeline_run):
  versions = fixture_pipeline_run.pushed_versions()
  assert len(versions) == 1
  assert os.path.basename(versions[0]).isdigit()  # TF Serving wants numeric version directories
  assert os.path.isfile(os.path.join(versions[0], 'saved_model.pb'))


def test_pushed_model_answers_with_the_rest_of_the_output_deleted(fixture_pipeline_run, tmp_path):
  # Copy the pushed version alone: the Transform output, examples and metadata stay behind.
  served = str(tmp_path / 'ranking' / '1')
  shutil.copytree(fixture_pipeline_run.pushed_versions()[0], served)
  model = tf.saved_model.load(served)
  serving_default = model.signatures[export.SERVING_SIGNATURE]
  assert list(serving_default.structured_input_signature[1]) == [export.EXAMPLES_INPUT]
  predictions = serving_default(examples=_serving_requests(fixture_pipeline_run.interactions_csv, 5))
  ratings = predictions[export.PREDICTIONS_OUTPUT].numpy()
  assert ratings.shape == (5, 1) and ratings.dtype == np.float32
  assert np.all((ratings > 0.0) & (ratings < 6.0))  # stars, centred on the training mean


def test_interactions_with_only_the_required_columns_train_bless_push_and_answer(tmp_path):
  # The generic format's smallest file: no user_* or item_* column, no curated schema (inferred from the data).
  generated = interactions_lib.read_interactions(pipeline_runs.write_fixture_interactions(str(tmp_path / 'full.csv')))
  csv = str(tmp_path / 'required_only.csv')
  interactions_lib.write_interactions(interactions_lib.Interactions(
      columns={c: generated.column(c) for c in features.REQUIRED_COLUMNS},
      column_types={c: generated.column_types[c] for c in features.REQUIRED_COLUMNS}), csv)
  run = pipeline_runs.run_pipeline(str(tmp_path / 'output'), csv, schema_path=None)
  assert run.exit_code == 0
  assert len(run.pushed_versions(configs.RANKING_SERVING_SUBDIR)) == 1
  assert len(run.pushed_versions(configs.RETRIEVAL_SERVING_SUBDIR)) == 1
  # Without user columns the gate can slice by item popularity only (720 rows, 144 eval: none gated at 500).
  store = run_summary.open_store(os.path.join(run.output_dir, configs.METADATA_FILE))
  blessing = run_summary.latest_run(store, configs.PIPELINE_NAME).output_artifacts[
      configs.RANKING_SEGMENT_GATE_ID]['blessing'][0]
  segments = segment_gate.read_report(blessing.uri)['segments']
  assert sorted((s['column'], s['value'], s['gated']) for s in segments) == [
      ('item_popularity_bucket', 'head', False), ('item_popularity_bucket', 'tail', False),
      ('item_popularity_bucket', 'torso', False)]
  model = tf.saved_model.load(run.pushed_versions(configs.RANKING_SERVING_SUBDIR)[0])
  ratings = model.signatures[export.SERVING_SIGNATURE](examples=_serving_requests(csv, 3))[
      export.PREDICTIONS_OUTPUT].numpy()
  assert ratings.shape == (3, 1) and np.all((ratings > 0.0) & (ratings < 6.0))


def test_run_summary_lists_every_component(fixture_pipeline_run):
  store = run_summary.open_store(os.path.join(fixture_pipeline_run.output_dir, configs.METADATA_FILE))
  summary = run_summary.latest_run(store, configs.PIPELINE_NAME)
  ids = {c.component_id: c.state for c in summary.components}
  for component_id in (configs.EXAMPLE_GEN_ID, configs.ANOMALIES_GATE_ID, configs.TRANSFORM_ID,
                       configs.RANKING_TRAINER_ID, configs.RANKING_EVALUATOR_ID, configs.RANKING_PUSHER_ID):
    assert ids.get(component_id) == 'COMPLETE', (component_id, ids)


def test_a_segment_gate_that_gated_nothing_says_so_on_its_blessing(fixture_pipeline_run):
  # The fixture's eval split is far below the default --segment-min-examples 500, so no segment is gated: the
  # model is blessed (the rule holds vacuously), and the blessing and the report say that nothing was checked.
  store = run_summary.open_store(os.path.join(fixture_pipeline_run.output_dir, configs.METADATA_FILE))
  outputs = run_summary.latest_run(store, configs.PIPELINE_NAME).output_artifacts
  evaluation = outputs[configs.RANKING_EVALUATOR_ID]['evaluation'][0].uri
  assert segment_gate.sliced_columns(evaluation) == [
      'user_gender', 'user_occupation', 'user_age_bucket', 'item_popularity_bucket']
  blessing = outputs[configs.RANKING_SEGMENT_GATE_ID]['blessing'][0]
  assert blessing.custom_properties[segment_gate.BLESSED_KEY].int_value == 1
  report = segment_gate.read_report(blessing.uri)
  assert not any(row['gated'] for row in report['segments'])
  largest = max(report['segments'], key=lambda row: (row['example_count'], row['column'], row['value']))
  assert 0 < largest['example_count'] < 500
  expected = [f'no segment has at least 500 evaluation examples (the largest, {largest["column"]}='
              f'{largest["value"]}, has {largest["example_count"]}), so the segment rule checked nothing; lower '
              '--segment-min-examples to gate smaller segments']
  assert report['warnings'] == expected
  assert json.loads(blessing.custom_properties[segment_gate.WARNINGS_KEY].string_value) == expected


@pytest.fixture(scope='module')
def served_run(tmp_path_factory) -> pipeline_runs.PipelineRun:
  """A run of its own, whose output directory the following tests run the pipeline in again."""
  root = tmp_path_factory.mktemp('served_run')
  csv = pipeline_runs.write_fixture_interactions(str(root / 'interactions.csv'), seed=1)
  run = pipeline_runs.run_pipeline(str(root / 'output'), csv)
  assert run.exit_code == 0
  assert len(run.pushed_versions()) == 1
  return run


def _latest_states(run: pipeline_runs.PipelineRun):
  store = run_summary.open_store(os.path.join(run.output_dir, configs.METADATA_FILE))
  return {c.component_id: c.state for c in run_summary.latest_run(store, configs.PIPELINE_NAME).components}


def _snapshot(directory: str):
  return {p: os.path.getmtime(p) for p in glob.glob(os.path.join(directory, '**'), recursive=True)}


def test_unchanged_rerun_is_served_from_the_cache(served_run):
  before = served_run.pushed_versions()
  rerun = pipeline_runs.run_pipeline(served_run.output_dir, served_run.interactions_csv)
  assert rerun.exit_code == 0
  states = _latest_states(served_run)
  for component_id in (configs.EXAMPLE_GEN_ID, configs.STATISTICS_GEN_ID, configs.TRANSFORM_ID,
                       configs.RANKING_TRAINER_ID):
    assert states[component_id] == 'CACHED', (component_id, states)
  # The Evaluator runs again (its baseline is now the first run's blessed model, i.e. the same model), but
  # the same model is not pushed as a second version.
  assert served_run.pushed_versions() == before


def test_model_the_gate_refuses_is_not_pushed(served_run):
  before = served_run.pushed_versions()
  snapshot = _snapshot(before[-1])
  # Retrained (other epochs, so no cache hit) and gated at an RMSE no model reaches on this data.
  refused = pipeline_runs.run_pipeline(
      served_run.output_dir, served_run.interactions_csv,
      extra_args=('--epochs', '2', '--batch-size', '64', '--max-rmse', '0.05'))
  assert refused.exit_code == 0  # the run itself succeeded; the gate said no
  states = _latest_states(served_run)
  assert states[configs.RANKING_TRAINER_ID] == 'COMPLETE'
  assert served_run.pushed_versions() == before
  assert _snapshot(before[-1]) == snapshot


def test_drifted_data_stops_the_run_before_training(served_run, tmp_path):
  before = served_run.pushed_versions()
  table = interactions_lib.read_interactions(served_run.interactions_csv)
  drifted = dict(table.columns)
  # A gender code the curated schema does not allow, in a fifth of the rows.
  drifted[features.USER_GENDER] = ['X' if i % 5 == 0 else g for i, g in enumerate(drifted[features.USER_GENDER])]
  drifted_csv = str(tmp_path / 'drifted.csv')
  interactions_lib.write_interactions(
      interactions_lib.Interactions(columns=drifted, column_types=table.column_types), drifted_csv)
  run = pipeline_runs.run_pipeline(served_run.output_dir, drifted_csv)
  assert run.exit_code == 1
  states = _latest_states(served_run)
  assert states[configs.ANOMALIES_GATE_ID] == 'FAILED'
  assert configs.TRANSFORM_ID not in states and configs.RANKING_TRAINER_ID not in states
  assert served_run.pushed_versions() == before


def test_malformed_file_is_refused_before_the_pipeline_starts(served_run, tmp_path, capsys):
  before = served_run.pushed_versions()
  bad_csv = tmp_path / 'bad.csv'
  bad_csv.write_text('user_id,item_id,rating,timestamp\n1,10,4,100\n2,11,five,101\n', encoding='utf-8')
  run = pipeline_runs.run_pipeline(served_run.output_dir, str(bad_csv))
  assert run.exit_code == 2
  message = capsys.readouterr().err
  assert f'{bad_csv}, line 3' in message and "'rating'" in message
  assert served_run.pushed_versions() == before


def test_unknown_split_name_is_refused_naming_the_flag(tmp_path, capsys):
  csv = pipeline_runs.write_fixture_interactions(str(tmp_path / 'interactions.csv'))
  with pytest.raises(SystemExit):
    pipeline_runs.run_pipeline(str(tmp_path / 'out'), csv, extra_args=('--split', 'by_magic'))
  assert "--split: invalid choice: 'by_magic'" in capsys.readouterr().err
  assert not os.path.exists(tmp_path / 'out')
