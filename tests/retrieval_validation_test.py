"""benchmarks/retrieval_validation.py: grouping interactions by user, its arguments, and a run on the fixture."""

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmarks'))
import retrieval_validation  # pylint: disable=g-import-not-at-top,wrong-import-position


def test_interactions_are_grouped_by_user_as_catalogue_columns():
  column_of = {b'i1': 0, b'i2': 1, b'i3': 2}
  by_user, first_row = retrieval_validation.interactions_by_user(
      [7, 3, 7, 7], [b'i2', b'i1', b'i3', b'i2'], column_of)
  assert by_user == {7: {1, 2}, 3: {0}}
  assert first_row == {7: 0, 3: 1}


def test_hyperparameters_that_are_not_json_are_refused(capsys):
  with pytest.raises(SystemExit):
    retrieval_validation.parse_args(['--run-dir', 'x', '--hparams', '{batch_size: 512}'])
  assert 'is not JSON' in capsys.readouterr().err


@pytest.mark.parametrize('text, message', [
    # Before, these passed the JSON check and failed after the run was read: TypeError (unexpected keyword).
    ('{"batch_sise": 512}', "--hparams '{\"batch_sise\": 512}': Unknown RetrievalHyperparameters fields "
                            "['batch_sise']"),
    ('{"epochs": 0}', "--hparams '{\"epochs\": 0}': epochs=0 must be a positive integer."),
    ('{"epochs": "3"}', "RetrievalHyperparameters.epochs='3' must be an integer."),
    ('[1]', "--hparams '[1]': [1] is not a JSON object of RetrievalHyperparameters fields"),
    # The seed would be replaced by each --seeds one without a word.
    ('{"seed": 3}', "--hparams '{\"seed\": 3}' sets seed; give the seeds with --seeds instead."),
])
def test_hyperparameters_the_configuration_refuses_are_refused_before_the_run(text, message, capsys):
  with pytest.raises(SystemExit):
    retrieval_validation.parse_args(['--run-dir', 'x', '--hparams', '{}', text])
  assert message in capsys.readouterr().err


def test_configuration_applies_the_overrides_and_the_seed():
  hparams = retrieval_validation.configuration({'epochs': 5, 'hidden_units': [64]}, seed=7)
  assert (hparams.epochs, hparams.hidden_units, hparams.seed, hparams.batch_size) == (5, (64,), 7, 1024)


@pytest.mark.slow
def test_validation_recalls_on_the_fixture_run(fixture_pipeline_run, tmp_path):
  json_path = str(tmp_path / 'validation.json')
  assert retrieval_validation.main(['--run-dir', fixture_pipeline_run.output_dir, '--seeds', '42',
                                    '--hparams', '{}', '{"epochs": 1}', '--json', json_path]) == 0
  with open(json_path, encoding='utf-8') as f:
    figures = json.load(f)
  assert list(figures) == ['{}', '{"epochs": 1}']
  for by_seed in figures.values():
    recalls = by_seed['42']
    # The fixture's catalogue has 40 items: every item a user has not rated is in the user's top 100, so each
    # held-out item is found (Recall@100 = 1); Recall@10 is a share.
    assert recalls['recall_at_100'] == 1.0
    assert 0 <= recalls['recall_at_10'] <= 1


def test_a_directory_without_a_run_is_refused(tmp_path, capsys):
  assert retrieval_validation.main(['--run-dir', str(tmp_path)]) == 2
  assert 'No ML Metadata store at' in capsys.readouterr().err
