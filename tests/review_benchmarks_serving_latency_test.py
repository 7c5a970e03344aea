"""benchmarks/serving_latency.py: its flags are checked before the models load."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmarks'))
import serving_latency  # pylint: disable=g-import-not-at-top,wrong-import-position


@pytest.mark.parametrize('flags, message', [
    (['--requests', '0'], 'argument --requests: 0 must be at least 1.'),
    (['--k', '0'], "--k 0: must be from 1 to 100 (the service's max_k)."),
    (['--k', '101'], "--k 101: must be from 1 to 100 (the service's max_k)."),
    (['--seed', '-1'], 'argument --seed: -1 must be in [0, 2**32) (a numpy seed).'),  # before: a ValueError from default_rng
])
def test_a_bad_count_is_a_usage_error_naming_the_flag(tmp_path, flags, message, capsys):
  # Before: the serving dir was read (here: empty, exit 2 for that); on a real one, --requests 0 was an IndexError
  # from numpy's percentile of no timings and a bad --k an InvalidRequestError traceback from the warm-up.
  with pytest.raises(SystemExit) as exit_info:
    serving_latency.main(['--serving-dir', str(tmp_path), *flags])
  assert exit_info.value.code == 2
  assert message in capsys.readouterr().err
