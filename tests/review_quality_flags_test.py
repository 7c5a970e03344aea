"""Bad command-line values of the quality benchmarks are refused naming the flag, before any work."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmarks'))
import peer_segments  # pylint: disable=g-import-not-at-top,wrong-import-position


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
