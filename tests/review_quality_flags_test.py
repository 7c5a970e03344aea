"""Bad command-line values of the quality benchmarks are refused naming the flag, before any work."""

import os
import sys

import numpy as np
import pytest

from schema import features

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmarks'))
import peer_segments  # pylint: disable=g-import-not-at-top,wrong-import-position
import serving_quality  # pylint: disable=g-import-not-at-top,wrong-import-position


def test_peer_segments_refuses_an_svd_seed_numpy_cannot_take(movielens_stub_dir, capsys):
  # Surprise seeds numpy's RandomState, which takes [0, 2**32): -1 failed only after the peers were trained.
  for seed in ('-1', str(2 ** 32)):
    with pytest.raises(SystemExit) as exited:
      peer_segments.parse_args(['--data-dir', movielens_stub_dir, '--svd-seeds', '0', seed])
    assert exited.value.code == 2
    assert f'argument --svd-seeds: {seed} must be in [0, 2**32) (a numpy seed).' in capsys.readouterr().err
  args = peer_segments.parse_args(['--data-dir', movielens_stub_dir, '--svd-seeds', '0', str(2 ** 32 - 1)])
  assert args.svd_seeds == [0, 2 ** 32 - 1]


@pytest.mark.parametrize('weights,shown', [('0,x', "'x'"), ('0,1.5', "'1.5'"), ('0,,1', "''"), ('nan', "'nan'")])
def test_serving_quality_refuses_a_weight_that_is_not_in_0_1(movielens_stub_dir, capsys, weights, shown):
  # Before, 'x' failed with a ValueError traceback and 1.5 with the Recommender's, after the models were loaded.
  with pytest.raises(SystemExit) as exited:
    serving_quality.main(['--serving-dir', '/nowhere', '--data-dir', movielens_stub_dir, '--weights', weights])
  assert exited.value.code == 2
  assert f'--weights: {shown} is not a ranking weight' in capsys.readouterr().err


def test_serving_quality_weights_are_parsed():
  assert serving_quality.weights_argument('0,0.25,1') == [0.0, 0.25, 1.0]


def test_peer_segments_refuses_a_concentration_segment_no_eval_example_is_in(movielens_stub_dir, monkeypatch, capsys):
  # Two eval examples of one user, both writers: 'Writer' (case) and an age bucket the examples lack are in no
  # segment. Before, segment_report raised ValueError / KeyError with a traceback, after the peers were trained.
  evaluation = peer_segments.EvalPredictions(
      user_ids=np.array(['u1', 'u1']), ratings=np.array([3.0, 4.0]), predictions=np.array([4.0, 4.0]),
      segments={features.USER_OCCUPATION: np.array(['writer', 'writer'])})
  monkeypatch.setattr(peer_segments, 'surprise_installed', lambda: True)
  monkeypatch.setattr(peer_segments, 'peer_evaluations', lambda *args: {'peer': evaluation})
  for segment in ('user_occupation=Writer', 'user_age_bucket=18-24'):
    assert peer_segments.main(['--data-dir', movielens_stub_dir, '--concentration-segment', segment]) == 2
    assert (f'--concentration-segment {segment}: no eval example of peer is in that segment'
            in capsys.readouterr().err)
  # writer: squared errors 1 and 0 -> RMSE sqrt(1/2) = 0.7071, u1 holds all of it.
  assert peer_segments.main(
      ['--data-dir', movielens_stub_dir, '--concentration-segment', 'user_occupation=writer']) == 0
  assert ('- peer: `user_occupation=writer` (2 eval ratings, RMSE 0.7071): user u1 has 2 of them and 100.0 % of the '
          'squared error' in capsys.readouterr().out)


def test_peer_segments_refuses_a_run_dir_of_another_split(movielens_stub_dir, tmp_path, monkeypatch, capsys):
  # Our run's eval rows are (u1, 3), (u1, 4); the peers' split has (u1, 3), (u1, 5): not the same split.
  # Before, check_same_eval_rows' ValueError ended the script with a traceback, after the peers were trained.
  run_dir = tmp_path / 'run'
  run_dir.mkdir()
  (run_dir / 'metadata.sqlite').write_text('')
  def evaluation(ratings):
    return peer_segments.EvalPredictions(
        user_ids=np.array(['u1', 'u1']), ratings=np.array(ratings), predictions=np.array([4.0, 4.0]),
        segments={features.USER_OCCUPATION: np.array(['writer', 'writer'])})
  monkeypatch.setattr(peer_segments, 'surprise_installed', lambda: True)
  monkeypatch.setattr(peer_segments, 'run_predictions', lambda _: evaluation([4.0, 3.0]))
  monkeypatch.setattr(peer_segments, 'peer_evaluations', lambda *args: {'peer': evaluation([3.0, 5.0])})
  assert peer_segments.main(['--data-dir', movielens_stub_dir, '--run-dir', str(run_dir), '--split-seed', '3']) == 2
  assert ('--run-dir/--split-seed: The run\'s eval examples (2) are not the eval rows of the split with seed 3 (2)'
          in capsys.readouterr().err)
  # A run without a trained ranking model.
  def no_model(run):
    raise ValueError(f'No trained ranking model is recorded under {run}')
  monkeypatch.setattr(peer_segments, 'run_predictions', no_model)
  assert peer_segments.main(['--data-dir', movielens_stub_dir, '--run-dir', str(run_dir)]) == 2
  assert f'--run-dir: No trained ranking model is recorded under {run_dir}' in capsys.readouterr().err
  # The same rows in another order are the same split.
  monkeypatch.setattr(peer_segments, 'run_predictions', lambda _: evaluation([4.0, 3.0]))
  monkeypatch.setattr(peer_segments, 'peer_evaluations', lambda *args: {'peer': evaluation([3.0, 4.0])})
  assert peer_segments.main(['--data-dir', movielens_stub_dir, '--run-dir', str(run_dir)]) == 0
