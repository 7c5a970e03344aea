"""Retrieval Trainer: an index the catalogue or the environment cannot serve, or an empty split, is refused before
training."""

import json
import math
import sys
from typing import Dict, List, Optional

import pytest
from tfx import v1 as tfx

from tests.retrieval_export_test import EVAL_ROWS, TRAIN_ROWS, write_split
from tests.transform_fixtures import analyzed_copy
from trainer.common import run_files
from trainer.retrieval import hparams as hparams_lib
from trainer.retrieval import run


def _refuse_training(monkeypatch, why: str) -> None:
  """Makes training the towers fail the test with `why` (each refusal must come before it)."""
  def trained(*args, **kwargs):
    raise AssertionError(why)
  monkeypatch.setattr(run, 'train_retrieval_model', trained)


def _fn_args(tmp_path, hparams: Dict, train_rows: Optional[List[Dict]] = None,
             eval_rows: Optional[List[Dict]] = None) -> tfx.components.FnArgs:
  """The Trainer's arguments over tmp_path: the splits are written (and Transform analyses TRAIN_ROWS) only when
  rows are given, so a test can also check a refusal that comes before any file is read."""
  if train_rows is not None:
    write_split(train_rows, str(tmp_path / 'Split-train' / 'data.gz'))
    write_split(eval_rows, str(tmp_path / 'Split-eval' / 'data.gz'))
    analyzed_copy(TRAIN_ROWS, str(tmp_path / 'transform'))
  return tfx.components.FnArgs(
      train_files=[str(tmp_path / 'Split-train' / '*')], eval_files=[str(tmp_path / 'Split-eval' / '*')],
      transform_output=str(tmp_path / 'transform'), serving_model_dir=str(tmp_path / 'serving_model'),
      model_run_dir=str(tmp_path / 'model_run'), custom_config={hparams_lib.CUSTOM_CONFIG_KEY: hparams})


def test_scann_on_a_catalogue_too_small_for_it_is_refused_before_training(tmp_path, monkeypatch):
  _refuse_training(monkeypatch, 'the towers were trained before the index was checked')
  fn_args = _fn_args(tmp_path, {'index': hparams_lib.SCANN_INDEX}, TRAIN_ROWS, EVAL_ROWS)
  # The catalogue: i1, i2, i3 (train) and i9 (eval only), 4 items; ScaNN needs 16. Before, the towers were
  # trained and evaluated first, and the export refused the index.
  with pytest.raises(ValueError, match=r"index='scann' needs at least 16 catalogue items.*this catalogue has 4\. "
                                       r".*--retrieval-index brute_force"):
    run.run_fn(fn_args)


def test_scann_without_the_scann_package_is_refused_before_training_naming_the_fix(tmp_path, monkeypatch):
  _refuse_training(monkeypatch, 'the towers were trained before the index was checked')
  monkeypatch.setitem(sys.modules, 'scann', None)  # `import scann` now raises ImportError
  # Refused before the data are read: none of these paths exists. Before, the towers were trained and the export
  # failed in TFRS's ScaNN layer, saying `pip install scann`.
  fn_args = _fn_args(tmp_path, {'index': hparams_lib.SCANN_INDEX})
  with pytest.raises(ImportError, match=r"index='scann' needs the `scann` package.*uv sync --extra scann"
                                        r".*--retrieval-index brute_force"):
    run.run_fn(fn_args)


def test_an_empty_training_split_is_refused_before_training(tmp_path, monkeypatch):
  _refuse_training(monkeypatch, 'the towers were trained on no interactions')
  # Without sampling-bias correction nothing else reads the training pairs before training; before, Keras' fit
  # failed with "Expected input data to be non-empty.", naming neither the split nor its files.
  fn_args = _fn_args(tmp_path, {'sampling_bias_correction': False}, [], EVAL_ROWS)
  with pytest.raises(ValueError, match=r'The training split .*Split-train.* holds no interactions'):
    run.run_fn(fn_args)


def test_an_empty_evaluation_split_is_refused_before_training(tmp_path, monkeypatch):
  _refuse_training(monkeypatch, 'the towers were trained with nothing to evaluate them on')
  # Before, the towers were trained and evaluate() failed with "Expected input data to be non-empty.".
  fn_args = _fn_args(tmp_path, {}, TRAIN_ROWS, [])
  with pytest.raises(ValueError, match=r'The evaluation split .*Split-eval.* holds no interactions'):
    run.run_fn(fn_args)


@pytest.mark.parametrize('custom_config', [None, {}, {'ranking_hyperparameters': {'epochs': 3}}])
def test_a_custom_config_without_the_retrieval_hyperparameters_is_refused_before_reading_data(tmp_path, monkeypatch,
                                                                                            custom_config):
  # pipeline.create_pipeline always passes {'retrieval_hyperparameters': ...}. Before, a Trainer built without it
  # trained RetrievalHyperparameters() without a word (here: it went on to read the Transform output).
  def read(path):
    raise AssertionError('the Transform output was read before the custom_config was checked')
  monkeypatch.setattr(run.tft, 'TFTransformOutput', read)
  fn_args = _fn_args(tmp_path, {})
  fn_args.custom_config = custom_config
  with pytest.raises(ValueError, match=r"custom_config has no 'retrieval_hyperparameters' key .*"
                                       r"custom_config=\{'retrieval_hyperparameters': hyperparameters.to_config\(\)\}"):
    run.run_fn(fn_args)


def test_the_run_files_hold_a_diverged_epoch_as_null_in_strict_json(tmp_path):
  # Epoch 2's loss NaN, the regularisation loss infinite in epoch 1. Before, json.dump wrote the tokens NaN and
  # Infinity, which strict JSON readers refuse.
  run.write_run_files(str(tmp_path / 'model_run'), {'loss': [7.5, math.nan], 'regularization_loss': [math.inf, 0.0]},
                      {'factorized_top_k/top_100_categorical_accuracy': 0.25}, None)
  with open(tmp_path / 'model_run' / run_files.HISTORY_FILE, encoding='utf-8') as f:
    assert f.read() == '{"loss": [7.5, null], "regularization_loss": [null, 0.0]}'
  with open(tmp_path / 'model_run' / run_files.EVALUATION_FILE, encoding='utf-8') as f:
    assert json.load(f) == {'factorized_top_k/top_100_categorical_accuracy': 0.25}
  assert not (tmp_path / 'model_run' / run_files.ITEM_ITEM_FILE).exists()
