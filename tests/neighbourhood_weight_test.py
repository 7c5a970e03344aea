"""benchmarks/neighbourhood_weight.py: its arguments, and the script on the fixture pipeline run."""

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmarks'))
import neighbourhood_weight  # pylint: disable=g-import-not-at-top,wrong-import-position


def test_weights_outside_0_1_are_refused(capsys):
  with pytest.raises(SystemExit):
    neighbourhood_weight.parse_args(['--run-dir', 'x', '--weights', '0.5', '1.5'])
  assert 'argument --weights: 1.5 is outside [0, 1]' in capsys.readouterr().err


@pytest.mark.slow
def test_weights_on_the_fixture_run(fixture_pipeline_run, tmp_path):
  json_path = str(tmp_path / 'weights.json')
  assert neighbourhood_weight.main(['--run-dir', fixture_pipeline_run.output_dir, '--seeds', '42',
                                    '--weights', '0', '0.5', '1', '--json', json_path]) == 0
  with open(json_path, encoding='utf-8') as f:
    figures = json.load(f)['42']
  assert list(figures) == ['0', '0.5', '1']
  for split in ('validation', 'eval'):
    network, half, neighbourhood = (figures[w][split] for w in ('0', '0.5', '1'))
    assert 0 < network < 4 and 0 < neighbourhood < 4  # ratings are 1-5 stars
    # The RMSE of an average of two predictions is at most the average of their RMSEs (Minkowski), up to the
    # rounding of the printed figures (4 decimals).
    assert half <= (network + neighbourhood) / 2 + 1e-4
    assert network != neighbourhood


def test_a_directory_without_a_run_is_refused(tmp_path, capsys):
  assert neighbourhood_weight.main(['--run-dir', str(tmp_path)]) == 2
  assert 'No ML Metadata store at' in capsys.readouterr().err


def test_an_unknown_ranking_config_exits_2_naming_the_flag_and_the_known_ones(tmp_path, capsys):
  # Checked before the run is opened (before, a ValueError traceback after loading the run's Transform output).
  assert neighbourhood_weight.main(['--run-dir', str(tmp_path), '--ranking-config', 'nope']) == 2
  err = capsys.readouterr().err
  assert err.startswith("--ranking-config: Unknown ranking configuration 'nope'; choose one of [")
  assert "'default'" in err
