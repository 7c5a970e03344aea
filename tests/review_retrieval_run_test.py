"""Retrieval Trainer: an index the catalogue or the environment cannot serve is refused before training."""

import sys

import pytest
from tfx import v1 as tfx

from tests.retrieval_export_test import EVAL_ROWS, TRAIN_ROWS, write_split
from tests.transform_fixtures import analyzed_copy
from trainer.retrieval import hparams as hparams_lib
from trainer.retrieval import run


def test_scann_on_a_catalogue_too_small_for_it_is_refused_before_training(tmp_path, monkeypatch):
  write_split(TRAIN_ROWS, str(tmp_path / 'Split-train' / 'data.gz'))
  write_split(EVAL_ROWS, str(tmp_path / 'Split-eval' / 'data.gz'))
  analyzed_copy(TRAIN_ROWS, str(tmp_path / 'transform'))

  def trained(*args, **kwargs):
    raise AssertionError('the towers were trained before the index was checked')

  monkeypatch.setattr(run, 'train_retrieval_model', trained)
  fn_args = tfx.components.FnArgs(
      train_files=[str(tmp_path / 'Split-train' / '*')], eval_files=[str(tmp_path / 'Split-eval' / '*')],
      transform_output=str(tmp_path / 'transform'), serving_model_dir=str(tmp_path / 'serving_model'),
      model_run_dir=str(tmp_path / 'model_run'),
      custom_config={hparams_lib.CUSTOM_CONFIG_KEY: {'index': hparams_lib.SCANN_INDEX}})
  # The catalogue: i1, i2, i3 (train) and i9 (eval only), 4 items; ScaNN needs 16. Before, the towers were
  # trained and evaluated first, and the export refused the index.
  with pytest.raises(ValueError, match=r"index='scann' needs at least 16 catalogue items.*this catalogue has 4\. "
                                       r".*--retrieval-index brute_force"):
    run.run_fn(fn_args)


def test_scann_without_the_scann_package_is_refused_before_training_naming_the_fix(tmp_path, monkeypatch):
  def trained(*args, **kwargs):
    raise AssertionError('the towers were trained before the index was checked')

  monkeypatch.setattr(run, 'train_retrieval_model', trained)
  monkeypatch.setitem(sys.modules, 'scann', None)  # `import scann` now raises ImportError
  # Refused before the data are read: none of these paths exists. Before, the towers were trained and the export
  # failed in TFRS's ScaNN layer, saying `pip install scann`.
  fn_args = tfx.components.FnArgs(
      train_files=[str(tmp_path / 'Split-train' / '*')], eval_files=[str(tmp_path / 'Split-eval' / '*')],
      transform_output=str(tmp_path / 'transform'), serving_model_dir=str(tmp_path / 'serving_model'),
      model_run_dir=str(tmp_path / 'model_run'),
      custom_config={hparams_lib.CUSTOM_CONFIG_KEY: {'index': hparams_lib.SCANN_INDEX}})
  with pytest.raises(ImportError, match=r"index='scann' needs the `scann` package.*uv sync --extra scann"
                                        r".*--retrieval-index brute_force"):
    run.run_fn(fn_args)


def test_an_empty_training_split_is_refused_before_training(tmp_path, monkeypatch):
  write_split([], str(tmp_path / 'Split-train' / 'data.gz'))
  write_split(EVAL_ROWS, str(tmp_path / 'Split-eval' / 'data.gz'))
  analyzed_copy(TRAIN_ROWS, str(tmp_path / 'transform'))

  def trained(*args, **kwargs):
    raise AssertionError('the towers were trained on no interactions')

  monkeypatch.setattr(run, 'train_retrieval_model', trained)
  # Without sampling-bias correction nothing else reads the training pairs before training; before, Keras' fit
  # failed with "Expected input data to be non-empty.", naming neither the split nor its files.
  fn_args = tfx.components.FnArgs(
      train_files=[str(tmp_path / 'Split-train' / '*')], eval_files=[str(tmp_path / 'Split-eval' / '*')],
      transform_output=str(tmp_path / 'transform'), serving_model_dir=str(tmp_path / 'serving_model'),
      model_run_dir=str(tmp_path / 'model_run'),
      custom_config={hparams_lib.CUSTOM_CONFIG_KEY: {'sampling_bias_correction': False}})
  with pytest.raises(ValueError, match=r'The training split .*Split-train.* holds no interactions'):
    run.run_fn(fn_args)


def test_an_empty_evaluation_split_is_refused_before_training(tmp_path, monkeypatch):
  write_split(TRAIN_ROWS, str(tmp_path / 'Split-train' / 'data.gz'))
  write_split([], str(tmp_path / 'Split-eval' / 'data.gz'))
  analyzed_copy(TRAIN_ROWS, str(tmp_path / 'transform'))

  def trained(*args, **kwargs):
    raise AssertionError('the towers were trained with nothing to evaluate them on')

  monkeypatch.setattr(run, 'train_retrieval_model', trained)
  # Before, the towers were trained and evaluate() failed with "Expected input data to be non-empty.".
  fn_args = tfx.components.FnArgs(
      train_files=[str(tmp_path / 'Split-train' / '*')], eval_files=[str(tmp_path / 'Split-eval' / '*')],
      transform_output=str(tmp_path / 'transform'), serving_model_dir=str(tmp_path / 'serving_model'),
      model_run_dir=str(tmp_path / 'model_run'), custom_config={})
  with pytest.raises(ValueError, match=r'The evaluation split .*Split-eval.* holds no interactions'):
    run.run_fn(fn_args)
