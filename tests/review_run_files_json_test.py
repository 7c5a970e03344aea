"""The Trainers' run files and the quality report's JSON are strict JSON: a NaN or infinite number is null, and the
quality report shows a null figure as '—' instead of failing."""

import json
import math
import os
import sys
from typing import Any

import numpy as np
import pytest

from tests import ranking_run_fn_test
from trainer.common import run_files
from trainer.ranking import hparams as hparams_lib
from trainer.ranking import run as ranking_run
from trainer.retrieval import run as retrieval_run

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmarks'))
import quality_report  # pylint: disable=g-import-not-at-top,wrong-import-position


def _strict(text: str) -> Any:
  """`text` parsed as strict JSON: the tokens NaN, Infinity and -Infinity fail the test."""
  def refuse(name: str) -> None:
    pytest.fail(f'{name} is not JSON: {text}')
  return json.loads(text, parse_constant=refuse)


def test_the_ranking_blend_file_holds_a_nan_or_infinite_rmse_as_null(tmp_path, monkeypatch):
  # The candidate weights 0 and 0.2 gave a blend predicting NaN / an infinite RMSE (a diverged network); 0.1 was
  # chosen with 0.875. Before, json.dump wrote [0.0, NaN] and [0.2, Infinity].
  # pylint: disable=protected-access
  ranking_run_fn_test._stub_stages(monkeypatch, {'rmse': [1.5]})
  choice = ranking_run.BlendChoice(weight=0.1, validation_rmse={0.0: math.nan, 0.1: 0.875, 0.2: math.inf})
  monkeypatch.setattr(ranking_run, 'blend_with_neighbourhood', lambda *args: (object(), choice))
  monkeypatch.setattr(ranking_run, 'rmse', lambda model, split: 0.9)
  ranking_run.run_fn(ranking_run_fn_test._fn_args(tmp_path, {hparams_lib.CUSTOM_CONFIG_KEY: {}}))
  with open(tmp_path / 'model_run' / run_files.BLEND_FILE, encoding='utf-8') as f:
    text = f.read()
  assert text == '{"weight": 0.1, "validation_rmse": [[0.0, null], [0.1, 0.875], [0.2, null]]}'
  assert _strict(text) == {'weight': 0.1, 'validation_rmse': [[0.0, None], [0.1, 0.875], [0.2, None]]}


def test_the_retrieval_evaluation_and_item_item_files_are_strict_json(tmp_path):
  # A diverged model: its evaluation loss NaN, its regularisation loss infinite. Before, json.dump wrote NaN and
  # Infinity into evaluation.json. The item-item counts (numpy integers) stay integers.
  retrieval_run.write_run_files(
      str(tmp_path), {'loss': [7.5]},
      {'loss': math.nan, 'regularization_loss': np.float32(np.inf),
       'factorized_top_k/top_10_categorical_accuracy': 0.25},
      {'weight': 0.5, 'l2': 10.0, 'users': np.int64(3), 'covered_items': 2, 'catalogue_items': 4})
  with open(tmp_path / run_files.EVALUATION_FILE, encoding='utf-8') as f:
    assert _strict(f.read()) == {'loss': None, 'regularization_loss': None,
                                 'factorized_top_k/top_10_categorical_accuracy': 0.25}
  with open(tmp_path / run_files.ITEM_ITEM_FILE, encoding='utf-8') as f:
    assert f.read() == '{"weight": 0.5, "l2": 10.0, "users": 3, "covered_items": 2, "catalogue_items": 4}'


def test_write_texts_creates_the_directory_and_writes_each_text_as_it_is(tmp_path):
  model_run_dir = tmp_path / 'model_run' / '7'  # neither folder there yet
  run_files.write_texts(str(model_run_dir), {run_files.HISTORY_FILE: '{"rmse": [0.9, null]}',
                                             run_files.BLEND_FILE: '{"weight": 0.1, "validation_rmse": []}'})
  assert sorted(p.name for p in model_run_dir.iterdir()) == [run_files.HISTORY_FILE, run_files.BLEND_FILE]
  assert (model_run_dir / run_files.HISTORY_FILE).read_bytes() == b'{"rmse": [0.9, null]}'
  assert (model_run_dir / run_files.BLEND_FILE).read_bytes() == b'{"weight": 0.1, "validation_rmse": []}'
  # A file written again is replaced whole: no byte of the longer text before is left after the shorter one.
  run_files.write_texts(str(model_run_dir), {run_files.HISTORY_FILE: '{}'})
  assert (model_run_dir / run_files.HISTORY_FILE).read_bytes() == b'{}'
  assert (model_run_dir / run_files.BLEND_FILE).read_bytes() == b'{"weight": 0.1, "validation_rmse": []}'


def test_finite_or_null_keeps_finite_values_bools_and_strings():
  assert run_files.finite_or_null({'a': (1, -math.inf), 'b': [True, 'x', None, np.float64(0.5)]}) == {
      'a': [1, None], 'b': [True, 'x', None, 0.5]}


def _segments_report() -> dict:
  """A segment gate report (JSON form) whose overall RMSE and one ungated row were not computed (null)."""
  return {'overall_rmse': None, 'thresholds': {'min_examples': 5, 'max_margin': 0.1}, 'worst_segment': None,
          'segments': [{'column': 'user_gender', 'value': 'F', 'example_count': 2, 'rmse': None, 'margin': None,
                        'gated': False, 'violations': []}]}


def test_the_quality_reports_json_is_strict_and_its_markdown_shows_a_null_as_a_dash(tmp_path, monkeypatch, capsys):
  # The seed configuration's model predicted NaN: its Evaluator RMSE is NaN (run_report.overall_metric).
  def configuration(name, args):
    return quality_report.ConfigurationResult(name=name, output_dir=str(tmp_path / name), exit_code=0,
                                              wall_seconds=12.0, rmse=math.nan, blessed=False,
                                              segments=_segments_report())
  monkeypatch.setattr(quality_report, 'run_configuration', configuration)
  json_path = tmp_path / 'report.json'
  assert quality_report.main(['--interactions', 'unused.csv', '--work-dir', str(tmp_path), '--configs', 'seed',
                              '--json', str(json_path)]) == 0
  report = _strict(json_path.read_text(encoding='utf-8'))  # before: "rmse": NaN
  assert report['configurations'][0]['rmse'] is None
  markdown = capsys.readouterr().out
  # Before, formatting the null overall RMSE with :.4f raised TypeError.
  assert '### Segments of the `seed` configuration (overall RMSE —; gated: >= 5 eval examples, margin <= 0.1)' in (
      markdown)
  assert '| user_gender=F | 2 | — | — | no | reported |' in markdown
  assert '| this project, `seed` configuration | nan | 12 | no |  |' in markdown
