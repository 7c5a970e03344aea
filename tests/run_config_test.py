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


@pytest.mark.parametrize('flags, message', [
    # Before, these named the field only ('max_margin=-1.0 must be >= 0 (stars).'), not the flag to fix.
    (('--segment-max-margin', '-1'), '--segment-max-margin -1.0: max_margin=-1.0 must be >= 0 (stars).'),
    (('--segment-min-examples', '0'),
     '--segment-min-examples 0: min_examples=0 must be a positive number of evaluation examples.'),
    (('--max-rmse', '0'), '--max-rmse 0.0: max_rmse=0.0 must be a positive number (stars).'),
    (('--min-recall-at-100', '2'), '--min-recall-at-100 2.0: min_recall_at_100=2.0 must be in [0, 1].'),
    (('--max-retrieval-decrease', '-0.5'), '--max-retrieval-decrease -0.5: max_decrease=-0.5 must be in [0, 1].'),
])
def test_a_gate_flag_the_gates_refuse_is_named(flags, message):
  with pytest.raises(ValueError) as error:
    run_config.model_settings(_args(*flags))
  assert str(error.value) == message


@pytest.mark.parametrize('flags, message', [
    (('--learning-rate', 'nan'), '--learning-rate nan: learning_rate=nan must be a finite number.'),
    (('--learning-rate', 'inf'), '--learning-rate inf: learning_rate=inf must be a finite number.'),
    (('--epochs', '0'), '--epochs 0: epochs=0 must be a positive integer.'),
    (('--embedding-dim', '0'), '--embedding-dim 0: id_embedding_dim=0 must be a positive integer.'),
    (('--retrieval-epochs', '0'), '--retrieval-epochs 0: epochs=0 must be a positive integer.'),
    (('--retrieval-temperature', 'nan'), '--retrieval-temperature nan: temperature=nan must be a finite number.'),
    (('--retrieval-learning-rate', 'inf'), '--retrieval-learning-rate inf: learning_rate=inf must be a finite'),
    (('--retrieval-k', '0'), '--retrieval-k 0: top_k=0 must be a positive integer.'),
])
def test_a_single_flag_the_hyperparameters_refuse_is_named(flags, message):
  # Before, NaN and infinity passed `x <= 0`, and the messages named the field only (--epochs and
  # --retrieval-epochs both said 'epochs=0').
  with pytest.raises(ValueError) as error:
    run_config.model_settings(_args(*flags))
  assert str(error.value).startswith(message)


def test_a_non_finite_choice_in_a_tuple_field_is_refused():
  with pytest.raises(ValueError, match=r'neighbourhood_weight_choices=\(0.1, inf\) must be a finite number'):
    ranking_hparams.RankingHyperparameters(neighbourhood_weight_choices=(0.1, float('inf')))


def test_features_the_data_lacks_are_refused_naming_the_flag():
  # What ingestion writes for a file of the four required columns and user_age (recent_rating is derived).
  columns = [features.USER_ID, features.ITEM_ID, features.RATING, features.TIMESTAMP, features.USER_AGE,
             features.RECENT_RATING]
  args = _args('--ranking-hparams', '{"user_features": ["user_id", "user_agee"]}')
  with pytest.raises(ValueError) as error:
    run_config.check_model_inputs(args, run_config.model_settings(args), columns)
  assert str(error.value) == (
      "--ranking-hparams (on --ranking-config default): user_features names ['user_agee'], which this data does "
      "not give the models; the model inputs it gives that user_features takes are ['user_age', 'user_id']. Fix: "
      'name only those in user_features (through --ranking-hparams), or add the columns to the interactions data.')
  # Before, the list held every model input, item and context ones too, which user_features refuses.
  # The seed configuration encodes item titles: a file without them is refused before anything trains.
  seed = _args('--ranking-config', 'seed')
  with pytest.raises(ValueError, match=r"--ranking-hparams \(on --ranking-config seed\): item_features names "
                                       r"\['item_title'\]"):
    run_config.check_model_inputs(seed, run_config.model_settings(seed), columns)
  retrieval = _args('--retrieval-hparams', '{"item_features": ["item_id", "item_genres"]}')
  with pytest.raises(ValueError, match=r"--retrieval-hparams \(on --retrieval-config default\): item_features "
                                       r"names \['item_genres'\], which this data does not give the models; the "
                                       r"model inputs it gives that item_features takes are \['item_id', "
                                       r"'item_popularity'\]\. Fix"):
    run_config.check_model_inputs(retrieval, run_config.model_settings(retrieval), columns)
  context = _args('--ranking-hparams', '{"context_features": ["interaction_item_age"]}')  # needs item_release_year
  with pytest.raises(ValueError, match=r"context_features names \['interaction_item_age'\], which this data does "
                                       r"not give the models; the model inputs it gives that context_features takes "
                                       r"are \['interaction_time', 'recent_rating'\]\. Fix"):
    run_config.check_model_inputs(context, run_config.model_settings(context), columns)
  bare = _args('--ranking-hparams', '{"context_features": ["interaction_time"]}')
  with pytest.raises(ValueError, match=r'context_features takes are none\. Fix'):  # no timestamp, no recent_rating
    run_config.check_model_inputs(bare, run_config.model_settings(bare),
                                  [features.USER_ID, features.ITEM_ID, features.RATING])


def test_features_the_data_has_pass():
  columns = [features.USER_ID, features.ITEM_ID, features.RATING, features.TIMESTAMP, features.ITEM_TITLE,
             features.RECENT_RATING]
  for args in (_args(), _args('--ranking-config', 'seed'),
               _args('--ranking-hparams', '{"context_features": ["interaction_time"]}')):
    run_config.check_model_inputs(args, run_config.model_settings(args), columns)  # raises nothing


def test_the_configs_summary_names_each_models_configuration_and_the_flags_on_top():
  # local_runner's preamble: short, both models (before: the ranking model's whole RankingHyperparameters only).
  assert run_config.model_configs_summary(_args()) == 'ranking config: default; retrieval config: default'
  args = _args('--ranking-config', 'seed', '--ranking-hparams', '{"epochs": 4}', '--learning-rate', '0.01',
               '--retrieval-hparams', '{}', '--retrieval-k', '50', '--retrieval-index', 'scann')
  assert run_config.model_configs_summary(args) == (
      'ranking config: seed with --ranking-hparams, --learning-rate 0.01; retrieval config: default with '
      '--retrieval-hparams, --retrieval-k 50, --retrieval-index scann')
