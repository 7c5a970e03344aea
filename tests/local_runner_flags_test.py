"""local_runner.py (and bin/run-pipeline) refuse bad flags before anything trains, naming the flag and the fix.

The pipeline itself never runs here: `ParallelLocalDagRunner` is replaced by one that fails the test.
"""

import os
import subprocess
import sys

import pytest

import local_runner
from pipeline import parallel_runner, run_config
from tests import pipeline_runs

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture()
def no_pipeline_run(monkeypatch):
  def refuse(*args, **kwargs):
    raise AssertionError('the pipeline must not run on refused flags')

  monkeypatch.setattr(parallel_runner, 'ParallelLocalDagRunner', refuse)


def test_a_feature_the_data_lacks_is_refused_before_transform_and_training(tmp_path, no_pipeline_run, capsys):
  # Before, Transform and the retrieval Trainer ran (2 minutes on a fixture), then the ranking Trainer failed
  # with exit code 1 and a message naming no flag.
  csv = pipeline_runs.write_fixture_interactions(str(tmp_path / 'interactions.csv'))
  exit_code = local_runner.main(['--interactions', csv, '--output-dir', str(tmp_path / 'out'),
                                 '--ranking-hparams', '{"user_features": ["user_id", "user_agee"]}'])
  assert exit_code == 2
  error = capsys.readouterr().err
  assert ("error: --ranking-hparams (on --ranking-config default): user_features names ['user_agee'], which this "
          'data does not give the models') in error
  assert "'user_age'" in error  # the inputs there are, to choose from
  assert not os.path.exists(tmp_path / 'out' / 'tfx')


def test_a_training_split_of_one_row_is_refused_before_transform_and_training(tmp_path, no_pipeline_run, capsys):
  # Two interactions: the canonical split puts int(0.8 * 2) = 1 in train, and the ranking validation slice (5 %)
  # takes its row 0. Before, Transform and the retrieval Trainer ran, then the ranking Trainer failed (exit 1).
  csv = tmp_path / 'two.csv'
  csv.write_text('user_id,item_id,rating,timestamp\nu1,i1,4,900000000\nu1,i2,5,900000001\n', encoding='utf-8')
  assert local_runner.main(['--interactions', str(csv), '--output-dir', str(tmp_path / 'out')]) == 2
  assert ('error: --ranking-hparams (on --ranking-config default): validation_fraction=0.05 holds out the whole '
          'training split of 1 interaction(s)') in capsys.readouterr().err
  assert not os.path.exists(tmp_path / 'out' / 'tfx')
  # Two training rows leave one; without the slice one row trains.
  args = local_runner.parse_args(['--interactions', str(csv), '--output-dir', str(tmp_path / 'out')])
  run_config.check_training_rows(args, run_config.model_settings(args), 2)
  args = local_runner.parse_args(['--interactions', str(csv), '--output-dir', str(tmp_path / 'out'),
                                  '--ranking-hparams', '{"validation_fraction": 0, "early_stopping_patience": 0, '
                                  '"neighbourhood_weight_choices": []}'])
  run_config.check_training_rows(args, run_config.model_settings(args), 1)


@pytest.mark.parametrize('flags, message', [
    (['--eval-fraction', '0.3'], '--split seed is the canonical split (--eval-fraction 0.2, --split-seed 42); got '
                                 '--eval-fraction 0.3 --split-seed 42. Add --split random'),
    (['--split-seed', '7'], 'got --eval-fraction 0.2 --split-seed 7. Add --split random'),
    (['--split', 'random', '--eval-fraction', '1.5'], '--eval-fraction 1.5 / --split-seed 42: eval_fraction=1.5 must '
                                                     'be a number strictly between 0 and 1'),
    # Before, accepted and the seed ignored: the temporal split has none.
    (['--split', 'temporal', '--split-seed', '3'], '--split-seed 3 has no effect with --split temporal (the latest '
                                                    '--eval-fraction of interactions by timestamp go to eval); drop '
                                                    'it, or use --split random.'),
])
def test_split_flags_that_do_not_fit_are_refused(tmp_path, flags, message, capsys):
  with pytest.raises(SystemExit) as exit_info:
    local_runner.parse_args(['--interactions', 'x.csv', '--output-dir', str(tmp_path), *flags])
  assert exit_info.value.code == 2
  assert message in capsys.readouterr().err


def test_split_flags_that_fit_give_their_split(tmp_path):
  def spec(*flags):
    found = local_runner.parse_args(['--interactions', 'x.csv', '--output-dir', str(tmp_path), *flags]).split_spec
    return found.method, found.eval_fraction, found.seed

  assert spec() == ('seed', 0.2, 42)
  assert spec('--split', 'random', '--split-seed', '3') == ('random', 0.2, 3)
  assert spec('--split', 'random', '--eval-fraction', '0.1') == ('random', 0.1, 42)
  assert spec('--split', 'temporal', '--eval-fraction', '0.1') == ('temporal', 0.1, 42)  # the seed is unused


def test_an_output_dir_that_is_a_file_is_refused(tmp_path, capsys):
  taken = tmp_path / 'results.csv'
  taken.write_text('not a directory\n', encoding='utf-8')
  with pytest.raises(SystemExit) as exit_info:
    local_runner.parse_args(['--interactions', 'x.csv', '--output-dir', str(taken)])
  assert exit_info.value.code == 2
  # One line, as a refused hyperparameter or gate: before, argparse's whole usage block came first.
  assert capsys.readouterr().err == (
      f'error: --output-dir {taken} is a file; pass a directory (it is created if missing).\n')


@pytest.mark.parametrize('flags, message', [
    (['--parallel-components', '-1'], '--parallel-components=-1 must be >= 0 (0: one per core).'),
    (['--rating-scale', '5', '1'], '--rating-scale 5.0 1.0: rating_scale must be finite with min < max, got '
                                   '(5.0, 1.0). Fix: pass e.g. --rating-scale 1 5.'),
])
def test_a_value_refused_after_parsing_is_one_line_without_the_usage_block(tmp_path, flags, message, capsys):
  with pytest.raises(SystemExit) as exit_info:
    local_runner.parse_args(['--output-dir', str(tmp_path), *flags])
  assert exit_info.value.code == 2
  assert capsys.readouterr().err == f'error: {message}\n'


def test_run_pipeline_reads_relative_paths_from_the_callers_directory(tmp_path):
  # Before, bin/run-pipeline changed to the repository first, so `--interactions bad.csv` was looked for there
  # (and a relative --output-dir written there).
  (tmp_path / 'bad.csv').write_text('user_id,item_id,rating,timestamp\n', encoding='utf-8')
  completed = subprocess.run(
      [os.path.join(REPO_ROOT, 'bin', 'run-pipeline'), '--interactions', 'bad.csv', '--output-dir', 'out'],
      cwd=str(tmp_path), capture_output=True, text=True, check=False, timeout=600,
      env={**os.environ, 'PYTHONPATH': ''})
  assert completed.returncode == 2, completed.stderr[-2000:]
  assert f'error: {tmp_path / "bad.csv"}' in completed.stderr
  assert not os.path.exists(os.path.join(REPO_ROOT, 'out'))
  assert sys.executable  # the script brings its own interpreter (.venv); nothing else of this process is used


@pytest.mark.parametrize('data_flag', ['--interactions', '--data-dir'])
def test_a_cache_dir_with_local_data_is_refused(tmp_path, data_flag, capsys):
  # Before, accepted and ignored: only a download (no --data-dir, no --interactions) uses the cache.
  with pytest.raises(SystemExit) as exit_info:
    local_runner.parse_args([data_flag, 'x', '--output-dir', str(tmp_path), '--cache-dir', '/tmp/c'])
  assert exit_info.value.code == 2
  assert ('--cache-dir /tmp/c has no effect with --data-dir or --interactions (nothing is downloaded); drop it, or '
          'leave out the data flag to download MovieLens 100K there.') in capsys.readouterr().err
  assert local_runner.parse_args(['--output-dir', str(tmp_path), '--cache-dir', '/tmp/c']).cache_dir == '/tmp/c'
  assert local_runner.parse_args([data_flag, 'x', '--output-dir', str(tmp_path)]).cache_dir == os.path.join(
      os.path.expanduser('~'), '.cache', 'woonkly')


@pytest.mark.parametrize('flags, message', [
    # Before: --interactions '' downloaded and trained on MovieLens, --output-dir '' wrote into the current folder,
    # --schema '' validated against the default schema.
    (['--interactions', '', '--output-dir', 'out'], 'argument --interactions: the path is empty; pass a path, or '
                                                     'leave the flag out for its default.'),
    (['--interactions', 'x.csv', '--output-dir', ''], 'argument --output-dir: the path is empty; pass a path.'),
    (['--data-dir', '', '--output-dir', 'out'], 'argument --data-dir: the path is empty'),
    (['--interactions', 'x.csv', '--schema', '', '--output-dir', 'out'], 'argument --schema: the path is empty'),
    (['--cache-dir', '', '--output-dir', 'out'], 'argument --cache-dir: the path is empty'),
])
def test_an_empty_path_is_refused(flags, message, capsys):
  with pytest.raises(SystemExit) as exit_info:
    local_runner.parse_args(flags)
  assert exit_info.value.code == 2
  assert message in capsys.readouterr().err


@pytest.mark.parametrize('low, high', [('5', '1'), ('nan', '5'), ('1', 'inf')])
def test_a_bad_rating_scale_is_refused_before_any_data_is_read(tmp_path, low, high, capsys):
  # Before, parse_args accepted it: without --data-dir MovieLens 100K was downloaded first, then refused.
  with pytest.raises(SystemExit) as exit_info:
    local_runner.parse_args(['--output-dir', str(tmp_path), '--rating-scale', low, high])
  assert exit_info.value.code == 2
  assert (f'--rating-scale {float(low)} {float(high)}: rating_scale must be finite with min < max, got '
          f'({float(low)}, {float(high)}). Fix: pass e.g. --rating-scale 1 5.') in capsys.readouterr().err
  assert local_runner.parse_args(['--output-dir', str(tmp_path), '--rating-scale', '0', '10']).rating_scale == [0, 10]


def test_the_preamble_names_the_configurations_and_does_not_say_training(tmp_path, monkeypatch, capsys):
  # Before: 'Prepared {...}; training the ranking model with RankingHyperparameters(...)', ~1,000 characters of
  # one model's hyperparameters, printed before TFX decided whether the Trainers run or are CACHED.
  from pipeline import pipeline as pipeline_lib  # pylint: disable=g-import-not-at-top  (imports TFX)

  class Stop(Exception):
    pass

  def stop(**kwargs):
    raise Stop()

  monkeypatch.setattr(pipeline_lib, 'create_pipeline', stop)
  csv = pipeline_runs.write_fixture_interactions(str(tmp_path / 'interactions.csv'))
  with pytest.raises(Stop):
    local_runner.main(['--interactions', csv, '--output-dir', str(tmp_path / 'out'), '--epochs', '3'])
  preamble = capsys.readouterr().out.strip()
  assert preamble == (
      f"Prepared {{'train': 576, 'eval': 144}} interactions from {csv}; running the pipeline (ranking config: "
      'default with --epochs 3; retrieval config: default). The full hyperparameters go to each Trainer\'s '
      'custom_config; the run report says which components ran and which were CACHED.')
  assert 'training' not in preamble and 'RankingHyperparameters' not in preamble
