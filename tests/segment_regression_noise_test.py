"""benchmarks/segment_regression_noise.py: the spreads of a segment's RMSE and of two models' difference, by hand."""

import math
import os
import sys

import numpy as np
import pytest

from schema import features

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmarks'))
import peer_segments  # pylint: disable=g-import-not-at-top,wrong-import-position
import segment_regression_noise as noise  # pylint: disable=g-import-not-at-top,wrong-import-position

# One eval rating per user; u1 and u2 are in the segment gender=F, u3 is not.
#   user  gender  candidate error  baseline error
#   u1    F       1                2
#   u2    F       3                2
#   u3    M       0                0
RATINGS = np.array([3.0, 3.0, 3.0])
GENDERS = {features.USER_GENDER: np.array(['F', 'F', 'M'])}
USERS = np.array(['u1', 'u2', 'u3'])
CANDIDATE = peer_segments.EvalPredictions(USERS, RATINGS, RATINGS + [1.0, 3.0, 0.0], GENDERS)
BASELINE = peer_segments.EvalPredictions(USERS, RATINGS, RATINGS + [2.0, 2.0, 0.0], GENDERS)
# Draws (how often u1, u2, u3 were drawn) and the segment's RMSE in each:
#   [1, 1, 1]: candidate sqrt((1 + 9) / 2) = sqrt(5), baseline 2
#   [2, 0, 1]: candidate 1, baseline 2
#   [0, 2, 1]: candidate 3, baseline 2
#   [0, 0, 3]: no F rating drawn -> left out
DRAWS = np.array([[1, 1, 1], [2, 0, 1], [0, 2, 1], [0, 0, 3]], dtype=np.float64)


def _std(values):
  mean = sum(values) / len(values)
  return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def test_segment_rmse_per_draw():
  sums = peer_segments.user_error_sums(CANDIDATE, features.USER_GENDER, 'F')
  rmse = peer_segments.weighted_segment_rmse(DRAWS, sums)
  assert rmse[:3] == pytest.approx([math.sqrt(5), 1.0, 3.0])
  assert math.isnan(rmse[3])


def test_spread_of_the_rmse_and_of_the_difference():
  found = noise.paired_spread(CANDIDATE, BASELINE, features.USER_GENDER, 'F', DRAWS)
  root5 = math.sqrt(5)
  assert found == {
      'segment': 'user_gender=F', 'examples': 2, 'candidate_rmse': pytest.approx(root5),
      'baseline_rmse': pytest.approx(2.0),
      'rmse_spread': pytest.approx(_std([root5, 1.0, 3.0])),
      'difference_spread': pytest.approx(_std([root5 - 2, -1.0, 1.0]))}


def test_a_model_against_itself_has_no_difference_spread():
  found = noise.paired_spread(CANDIDATE, CANDIDATE, features.USER_GENDER, 'F', DRAWS)
  assert found['difference_spread'] == 0.0
  assert found['rmse_spread'] == pytest.approx(_std([math.sqrt(5), 1.0, 3.0]))


def test_runs_on_different_eval_examples_are_refused():
  other = peer_segments.EvalPredictions(USERS, RATINGS + [0.0, 0.0, 1.0], RATINGS, GENDERS)
  with pytest.raises(ValueError, match=r'different eval examples; run both on the same split'):
    noise.paired_spread(CANDIDATE, other, features.USER_GENDER, 'F', DRAWS)


def test_gated_user_segments_are_the_large_user_ones():
  evaluation = peer_segments.EvalPredictions(
      np.array(['u1', 'u2', 'u3', 'u4']), np.zeros(4), np.zeros(4),
      {features.USER_GENDER: np.array(['F', 'F', 'M', '']),
       features.USER_OCCUPATION: np.array(['writer', 'writer', 'writer', 'artist']),
       features.ITEM_POPULARITY_BUCKET: np.array(['head'] * 4)})
  # The item segment and those below 2 examples (M, artist) or without a value are not reported.
  assert noise.gated_user_segments(evaluation, 2) == [(features.USER_GENDER, 'F'),
                                                      (features.USER_OCCUPATION, 'writer')]


def _run_dirs(tmp_path):
  runs = []
  for name in ('a', 'b'):
    (tmp_path / name).mkdir()
    (tmp_path / name / 'metadata.sqlite').write_bytes(b'')
    runs.append(str(tmp_path / name))
  return runs


def test_a_segment_flag_that_is_not_a_segment_names_the_form(tmp_path, capsys):
  a, b = _run_dirs(tmp_path)
  with pytest.raises(SystemExit):
    noise.parse_args(['--run-dir', a, '--baseline-run-dir', b, '--segment', 'writer'])
  assert "--segment: 'writer' is not a segment: write COLUMN=VALUE" in capsys.readouterr().err
  assert noise.parse_args(['--run-dir', a, '--baseline-run-dir', b, '--segment',
                           'user_occupation=writer']).segment == [(features.USER_OCCUPATION, 'writer')]


def test_a_run_dir_without_a_run_is_a_usage_error(tmp_path, capsys):
  a, _ = _run_dirs(tmp_path)
  with pytest.raises(SystemExit) as exit_info:
    noise.parse_args(['--run-dir', a, '--baseline-run-dir', str(tmp_path / 'c')])
  assert exit_info.value.code == 2
  assert (f'argument --baseline-run-dir: {tmp_path / "c"}: no pipeline run here (no {tmp_path / "c"}/metadata.sqlite); '
          'pass the --output-dir of a local_runner.py run.') in capsys.readouterr().err


def test_a_store_that_is_not_an_ml_metadata_store_exits_2_with_the_message(tmp_path, capsys):
  # An empty metadata.sqlite passes the usage check (the file exists) but holds no MLMD tables: before, a
  # StoreError traceback from run_predictions.
  a, b = _run_dirs(tmp_path)
  assert noise.main(['--run-dir', a, '--baseline-run-dir', b]) == 2
  err = capsys.readouterr().err
  assert err.startswith(f'error: {a}/metadata.sqlite is a SQLite database but not an ML Metadata store')
  assert 'Traceback' not in err


def test_a_negative_seed_is_a_usage_error_naming_the_flag(tmp_path, capsys):
  # Before: parsed, and a ValueError traceback from numpy.random.default_rng once both runs were scored.
  a, b = _run_dirs(tmp_path)
  with pytest.raises(SystemExit) as exit_info:
    noise.parse_args(['--run-dir', a, '--baseline-run-dir', b, '--seed', '-1'])
  assert exit_info.value.code == 2
  assert 'argument --seed: -1 must be in [0, 2**32) (a numpy seed).' in capsys.readouterr().err
