"""The ranking Trainer's run_fn around training: the custom_config it reads and the history.json it writes (stages
stubbed, a four-row split)."""

import dataclasses
import json
import math
import os
from typing import Dict, List, Optional

import pytest
from tfx import v1 as tfx

from trainer.common import feature_specs, hyperparameters, inputs, run_files
from trainer.ranking import export
from trainer.ranking import hparams as hparams_lib
from trainer.ranking import run as run_lib

from tests.ranking_fixtures import SPLIT, TOWERS


def _fn_args(tmp_path, custom_config: Optional[Dict]) -> tfx.components.FnArgs:
  """The Trainer's arguments over tmp_path (nothing is read from the paths: the stages are stubbed)."""
  return tfx.components.FnArgs(
      train_files=[str(tmp_path / 'Split-train' / '*')], eval_files=[str(tmp_path / 'Split-eval' / '*')],
      transform_output=str(tmp_path / 'transform'), serving_model_dir=str(tmp_path / 'serving_model'),
      model_run_dir=str(tmp_path / 'model_run'), custom_config=custom_config)


def _stub_stages(monkeypatch, history: Dict[str, List[float]]) -> None:
  """run_fn reads SPLIT for both splits, encodes TOWERS, 'trains' to `history` and exports nothing."""
  monkeypatch.setattr(run_lib.tft, 'TFTransformOutput', lambda path: object())
  monkeypatch.setattr(inputs, 'load_split', lambda files, data_accessor, tf_transform_output: SPLIT)
  monkeypatch.setattr(feature_specs, 'model_features', lambda *args: TOWERS)
  monkeypatch.setattr(run_lib, 'train_network', lambda *args: (object(), history))
  monkeypatch.setattr(export, 'export_ranking_model', lambda *args: None)


def _refuse_constant(name: str) -> None:
  pytest.fail(f'history.json holds {name}, which is not JSON')


def test_history_of_a_diverged_epoch_is_written_as_strict_json_with_null(tmp_path, monkeypatch):
  # Epoch 2's training RMSE is NaN, the validation RMSE infinite in epochs 1 and 2 (a loss that diverged). Before,
  # json.dump wrote {"rmse": [1.5, NaN], "val_rmse": [Infinity, -Infinity, 0.75]}: tokens strict JSON refuses.
  _stub_stages(monkeypatch, {'rmse': [1.5, math.nan], 'val_rmse': [math.inf, -math.inf, 0.75]})
  run_lib.run_fn(_fn_args(tmp_path, {hparams_lib.CUSTOM_CONFIG_KEY: {}}))
  with open(os.path.join(tmp_path, 'model_run', run_files.HISTORY_FILE), encoding='utf-8') as f:
    text = f.read()
  assert text == '{"rmse": [1.5, null], "val_rmse": [null, null, 0.75]}'
  assert json.loads(text, parse_constant=_refuse_constant) == {'rmse': [1.5, None], 'val_rmse': [None, None, 0.75]}


def test_finite_history_is_written_unchanged():
  assert (run_files.history_json({'rmse': [0.9, 0.875], 'loss': [2, 1.25]})
          == '{"rmse": [0.9, 0.875], "loss": [2.0, 1.25]}')
  assert run_files.history_json({}) == '{}'


@pytest.mark.parametrize('custom_config', [None, {}, {'retrieval_hyperparameters': {'epochs': 3}}])
def test_a_custom_config_without_the_hyperparameters_key_is_refused_before_reading_data(tmp_path, monkeypatch,
                                                                                      custom_config):
  # pipeline.create_pipeline always passes {'ranking_hyperparameters': ...}; a Trainer built without it is a caller
  # error. Before, run_fn trained RankingHyperparameters() without a word (here: it went on to read the Transform
  # output).
  def read(path):
    raise AssertionError('the Transform output was read before the custom_config was checked')
  monkeypatch.setattr(run_lib.tft, 'TFTransformOutput', read)
  keys = sorted(custom_config or {})
  with pytest.raises(ValueError) as raised:
    run_lib.run_fn(_fn_args(tmp_path, custom_config))
  assert str(raised.value) == (
      f"The Trainer's custom_config has no 'ranking_hyperparameters' key (its keys: {keys}), so it does not say which "
      "RankingHyperparameters to train with: pass custom_config={'ranking_hyperparameters': "
      "hyperparameters.to_config()}, as pipeline.create_pipeline does ({'ranking_hyperparameters': {}} trains the "
      "defaults).")


def test_hyperparameters_key_that_is_not_an_object_is_refused():
  with pytest.raises(ValueError, match=r"^custom_config\['ranking_hyperparameters'\]=\['epochs'\] must be a JSON "
                                       r"object of RankingHyperparameters fields, e\.g\. \{\"epochs\": 3\}\.$"):
    hyperparameters.from_custom_config(hparams_lib.RankingHyperparameters,
                                       {hparams_lib.CUSTOM_CONFIG_KEY: ['epochs']}, hparams_lib.CUSTOM_CONFIG_KEY)


def test_the_pipelines_custom_config_gives_its_hyperparameters():
  # The ranking Trainer create_pipeline builds (its custom_config as TFX stores it, JSON) gives back the
  # hyperparameters it was built with; {key: {}} gives the defaults.
  # pylint: disable=g-import-not-at-top  (imports TFX and TFMA)
  from tfx.types import standard_component_specs
  from tfx.utils import json_utils
  from pipeline import configs
  from tests import pipeline_runs
  # pylint: enable=g-import-not-at-top
  given = dataclasses.replace(hparams_lib.DEFAULT, epochs=3, bias_terms=False)
  built = pipeline_runs.local_pipeline(ranking_hyperparameters=given)
  trainer, = [c for c in built.components if c.id == configs.RANKING_TRAINER_ID]
  custom_config = json_utils.loads(trainer.exec_properties[standard_component_specs.CUSTOM_CONFIG_KEY])
  assert hyperparameters.from_custom_config(hparams_lib.RankingHyperparameters, custom_config,
                                            hparams_lib.CUSTOM_CONFIG_KEY) == given
  assert hyperparameters.from_custom_config(hparams_lib.RankingHyperparameters, {hparams_lib.CUSTOM_CONFIG_KEY: {}},
                                            hparams_lib.CUSTOM_CONFIG_KEY) == hparams_lib.RankingHyperparameters()
