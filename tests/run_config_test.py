"""Hyperparameters from the command line: named configuration, then the JSON object, then single flags."""

import argparse

import pytest

from pipeline import run_config
from tests import pipeline_runs
from schema import features
from trainer.ranking import hparams as ranking_hparams
from trainer.retrieval import hparams as retrieval_hparams


def _args(*argv: str) -> argparse.Namespace:
  parser = argparse.ArgumentParser()
  run_config.add_model_flags(parser)
  return parser.parse_args(list(argv))


def test_json_fields_apply_on_the_named_configuration_and_single_flags_last():
  args = _args('--ranking-config', 'seed', '--ranking-hparams',
               '{"context_features": ["interaction_time"], "epochs": 4, "hidden_units": [16]}', '--epochs', '6')
  hparams = run_config.ranking_hyperparameters(args)
  assert hparams.context_features == (features.INTERACTION_TIME,)
  assert hparams.hidden_units == (16,)
  assert hparams.epochs == 6  # --epochs wins over the JSON's 4
  assert hparams.optimizer == ranking_hparams.SEED_NOTEBOOK.optimizer  # untouched fields keep the seed's


def test_retrieval_json_fields():
  hparams = run_config.retrieval_hyperparameters(_args('--retrieval-hparams', '{"temperature": 0.5}'))
  assert hparams.temperature == 0.5
  assert hparams.epochs == retrieval_hparams.DEFAULT.epochs


def test_item_item_coverage_is_configuration_and_refused_below_one():
  args = _args('--retrieval-hparams', '{"item_item_max_items": 2500}')
  assert run_config.retrieval_hyperparameters(args).item_item_max_items == 2500
  assert retrieval_hparams.DEFAULT.item_item_max_items == 10_000
  with pytest.raises(ValueError, match=r'--retrieval-hparams: item_item_max_items=0 must be a positive integer'):
    run_config.retrieval_hyperparameters(_args('--retrieval-hparams', '{"item_item_max_items": 0}'))


@pytest.mark.parametrize('text,message', [
    ('{"epochs": ', r'--ranking-hparams is not valid JSON'),
    ('[1, 2]', r'--ranking-hparams must be a JSON object'),
    ('{"epoch": 3}', r"--ranking-hparams: Unknown RankingHyperparameters fields \['epoch'\]"),
    ('{"dropout": 2}', r'--ranking-hparams: dropout=2 must be in \[0, 1\)'),
    # Wrong JSON types: before, a string was split into characters and 2.5 epochs failed inside the Trainer.
    ('{"context_features": "interaction_time"}',
     r"RankingHyperparameters.context_features='interaction_time' must be a list, e.g. \[\"name\"\]"),
    ('{"user_features": "user_id"}', r"user_features='user_id' must be a list, e.g. \[\"name\"\] or null"),
    ('{"epochs": 2.5}', r'RankingHyperparameters.epochs=2.5 must be an integer'),
    ('{"epochs": "3"}', r"RankingHyperparameters.epochs='3' must be an integer"),
    ('{"learning_rate": NaN}', r'learning_rate=nan must be a finite number'),
    ('{"bias_terms": 1}', r'bias_terms=1 must be true or false'),
    ('{"hidden_units": [64, 32.5]}', r'hidden_units=\[64, 32.5\] must be a list of which every element is an integer'),
    ('{"context_features": ["bogus"]}', r"context_features names \['bogus'\], which are not context features"),
])
def test_bad_json_names_the_flag_and_the_problem(text, message):
  with pytest.raises(ValueError, match=message):
    run_config.ranking_hyperparameters(_args('--ranking-hparams', text))


@pytest.mark.parametrize('flags, computes_statistics', [((), False), (('--transform-statistics',), True)])
def test_transform_statistics_flag_reaches_the_pipelines_transform(flags, computes_statistics):
  from pipeline import configs  # pylint: disable=g-import-not-at-top
  pipeline = pipeline_runs.kubeflow_pipeline(*flags)
  transform, = [c for c in pipeline.components if c.id == configs.TRANSFORM_ID]
  assert transform.exec_properties['disable_statistics'] == int(not computes_statistics)
  # Transform declares the statistics outputs only when it computes them.
  assert ('post_transform_stats' in transform.outputs) == computes_statistics


@pytest.mark.parametrize('text, words', [
    ('feature {\n  name: "user_zip"\n  type: BYTES\n', 'not a TFMD Schema in text format'),
    ('feature {\n  name: "user_home"\n  type: STRUCT\n}\n', "'user_home' has type STRUCT"),
])
def test_a_bad_schema_file_is_refused_naming_the_flag(tmp_path, text, words):
  path = tmp_path / 'schema.pbtxt'
  path.write_text(text, encoding='utf-8')
  with pytest.raises(ValueError, match='--schema') as e:
    run_config.column_types_from_schema(str(path))
  assert words in str(e.value)
  with pytest.raises(ValueError, match='cannot be read'):
    run_config.column_types_from_schema(str(tmp_path / 'absent.pbtxt'))


def test_schema_types_of_user_and_item_columns(tmp_path):
  path = tmp_path / 'schema.pbtxt'
  path.write_text('feature { name: "user_zip" type: BYTES }\nfeature { name: "item_release_year" type: INT }\n'
                  'feature { name: "rating" type: FLOAT }\n', encoding='utf-8')
  assert run_config.column_types_from_schema(str(path)) == {
      'user_zip': run_config.ColumnType.STRING, 'item_release_year': run_config.ColumnType.INT}


@pytest.mark.parametrize('flag', ['--max-rmse', '--max-rmse-increase', '--segment-max-margin',
                                  '--segment-max-regression', '--max-retrieval-decrease'])
def test_nan_gate_thresholds_are_refused(flag):
  # NaN passed `x < 0` checks; a NaN margin then refused every model (every comparison with NaN is False).
  with pytest.raises(ValueError, match='nan'):
    run_config.model_settings(_args(flag, 'nan'))
