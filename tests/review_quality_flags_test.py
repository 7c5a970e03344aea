"""Bad command-line values of the quality benchmarks are refused naming the flag, before any work."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmarks'))
import peer_segments  # pylint: disable=g-import-not-at-top,wrong-import-position
import serving_quality  # pylint: disable=g-import-not-at-top,wrong-import-position


@pytest.fixture(name='data_dir')
def _data_dir(tmp_path):
  """A folder the --data-dir check accepts (the files are empty: nothing here reads them)."""
  for name in ('u.data', 'u.item', 'u.user', 'u.genre'):
    (tmp_path / name).write_text('')
  return str(tmp_path)


def test_peer_segments_refuses_an_svd_seed_numpy_cannot_take(data_dir, capsys):
  # Surprise seeds numpy's RandomState, which takes [0, 2**32): -1 failed only after the peers were trained.
  for seed in ('-1', str(2 ** 32)):
    with pytest.raises(SystemExit) as exited:
      peer_segments.parse_args(['--data-dir', data_dir, '--svd-seeds', '0', seed])
    assert exited.value.code == 2
    assert f'--svd-seeds {seed}: a seed must be in [0, 2**32)' in capsys.readouterr().err
  assert peer_segments.parse_args(['--data-dir', data_dir, '--svd-seeds', '0', str(2 ** 32 - 1)]).svd_seeds == [
      0, 2 ** 32 - 1]


@pytest.mark.parametrize('weights,shown', [('0,x', "'x'"), ('0,1.5', "'1.5'"), ('0,,1', "''"), ('nan', "'nan'")])
def test_serving_quality_refuses_a_weight_that_is_not_in_0_1(data_dir, capsys, weights, shown):
  # Before, 'x' failed with a ValueError traceback and 1.5 with the Recommender's, after the models were loaded.
  with pytest.raises(SystemExit) as exited:
    serving_quality.main(['--serving-dir', '/nowhere', '--data-dir', data_dir, '--weights', weights])
  assert exited.value.code == 2
  assert f'--weights: {shown} is not a ranking weight' in capsys.readouterr().err


def test_serving_quality_weights_are_parsed():
  assert serving_quality.weights_argument('0,0.25,1') == [0.0, 0.25, 1.0]
