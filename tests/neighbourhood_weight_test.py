"""benchmarks/neighbourhood_weight.py: the blend's RMSE arithmetic, and the script on the fixture pipeline run."""

import json
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmarks'))
import neighbourhood_weight  # pylint: disable=g-import-not-at-top,wrong-import-position


def test_blend_rmse_weights_the_two_predictions():
  network, neighbourhood, labels = np.array([3.0, 4.0]), np.array([5.0, 2.0]), np.array([4.0, 3.0])
  assert neighbourhood_weight.blend_rmse(network, neighbourhood, labels, 0.0) == 1.0   # errors -1, +1
  assert neighbourhood_weight.blend_rmse(network, neighbourhood, labels, 1.0) == 1.0   # errors +1, -1
  assert neighbourhood_weight.blend_rmse(network, neighbourhood, labels, 0.5) == 0.0   # blended 4, 3
  # w = 0.25: blended 3.5, 3.5 -> errors -0.5, +0.5
  assert neighbourhood_weight.blend_rmse(network, neighbourhood, labels, 0.25) == pytest.approx(0.5)


def test_weights_outside_0_1_are_refused(capsys):
  with pytest.raises(SystemExit):
    neighbourhood_weight.parse_args(['--run-dir', 'x', '--weights', '0.5', '1.5'])
  assert 'every weight must be in [0, 1]' in capsys.readouterr().err


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
