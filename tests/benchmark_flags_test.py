"""benchmarks/benchmark_flags.py and the benchmarks' list flags: a value given twice is a usage error, not the
same work run twice."""

import argparse
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmarks'))
# pylint: disable=g-import-not-at-top,wrong-import-position
import benchmark_flags
import choose_ranking_weight
import evaluator_metrics
import neighbourhood_weight
import peer_segments
import quality_report
import retrieval_validation
import segment_regression_noise
import serving_quality


def test_first_repeat():
  assert benchmark_flags.first_repeat([42, 7, 1]) is None
  assert benchmark_flags.first_repeat([]) is None
  assert benchmark_flags.first_repeat([42, 7, 42, 7]) == 42
  assert benchmark_flags.first_repeat([0, 0.5, 0.0]) == 0.0  # 0 and 0.0 are the same weight
  assert benchmark_flags.first_repeat([['a'], ['b'], ['a']]) == ['a']  # unhashable values too


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog='bench')
  parser.add_argument('--seeds', type=int, nargs='+', action=benchmark_flags.DistinctValues, default=[42])
  parser.add_argument('--weights', type=float, nargs='*', action=benchmark_flags.DistinctValues, default=[])
  parser.add_argument('--segment', action=benchmark_flags.AppendDistinct, default=[])
  parser.add_argument('files', nargs='*', action=benchmark_flags.DistinctValues)
  return parser


def test_distinct_values_pass_and_defaults_are_kept():
  args = _parser().parse_args(['--seeds', '1', '2', '--segment', 'a=1', '--segment', 'a=2', 'x.json', 'y.json'])
  assert (args.seeds, args.weights, args.segment, args.files) == ([1, 2], [], ['a=1', 'a=2'], ['x.json', 'y.json'])
  parser = _parser()
  assert parser.parse_args([]).seeds == [42]
  assert parser.parse_args(['--segment', 'a=1']).segment == ['a=1']
  assert parser.parse_args([]).segment == []  # the default list is not the one appended to


@pytest.mark.parametrize('argv, message', [
    (['--seeds', '1', '1'], 'bench: error: argument --seeds: 1 is given twice; each value runs the same work, so '
                            'give it once (--seeds takes distinct values).'),
    (['--weights', '0', '0.5', '0.0'], 'argument --weights: 0 is given twice;'),
    (['--segment', 'a=1', '--segment', 'a=2', '--segment', 'a=1'], 'argument --segment: a=1 is given twice;'),
    (['x.json', 'x.json'], 'argument files: x.json is given twice; each value runs the same work, so give it once '
                           '(files takes distinct values).'),
])
def test_a_repeated_value_is_a_usage_error_naming_the_flag_and_value(argv, message, capsys):
  with pytest.raises(SystemExit) as exited:
    _parser().parse_args(argv)
  assert exited.value.code == 2
  assert message in capsys.readouterr().err


@pytest.mark.parametrize('parse, argv, message', [
    # Before, each was accepted and the same work ran twice (or, for choose_ranking_weight, one split's file
    # counted twice in the mean).
    (neighbourhood_weight.parse_args, ['--run-dir', 'r', '--seeds', '42', '7', '42'],
     'argument --seeds: 42 is given twice'),
    (neighbourhood_weight.parse_args, ['--run-dir', 'r', '--weights', '0', '0.3', '0.30'],
     'argument --weights: 0.3 is given twice'),
    (retrieval_validation.parse_args, ['--run-dir', 'r', '--seeds', '1', '1'], 'argument --seeds: 1 is given twice'),
    (quality_report.parse_args, ['--configs', 'default', 'default', '--work-dir', 'w', '--interactions', 'i.csv'],
     'argument --configs: default is given twice'),
    (evaluator_metrics.main, ['--metric-sets', 'one_pass', 'one_pass', '--run-dir', 'r'],
     'argument --metric-sets: one_pass is given twice'),
    (choose_ranking_weight.main, ['a.json', 'b.json', 'a.json'], 'argument results: a.json is given twice'),
    (peer_segments.parse_args, ['--svd-seeds', '1', '2', '1'], 'argument --svd-seeds: 1 is given twice'),
    (peer_segments.parse_args, ['--concentration-segment', 'user_occupation=healthcare',
                                '--concentration-segment', 'user_occupation=healthcare'],
     "argument --concentration-segment: ('user_occupation', 'healthcare') is given twice"),
    (segment_regression_noise.parse_args, ['--segment', 'user_gender=F', '--segment', 'user_gender=F'],
     "argument --segment: ('user_gender', 'F') is given twice"),
])
def test_each_benchmark_list_flag_refuses_a_repeated_value(parse, argv, message, capsys):
  with pytest.raises(SystemExit) as exited:
    parse(argv)
  assert exited.value.code == 2
  assert message in capsys.readouterr().err


def test_metric_sets_choices_are_still_checked(capsys):
  with pytest.raises(SystemExit):
    evaluator_metrics.main(['--metric-sets', 'nope', '--run-dir', 'r'])
  assert "argument --metric-sets: invalid choice: 'nope'" in capsys.readouterr().err


def test_peer_segments_refuses_the_bench_svd_seed(movielens_stub_dir, capsys):
  # Before, --svd-seeds 42 trained surprise_svd_seed42: the same SVD as surprise_svd (random_state=42).
  with pytest.raises(SystemExit) as exited:
    peer_segments.parse_args(['--data-dir', movielens_stub_dir, '--svd-seeds', '7', '42'])
  assert exited.value.code == 2
  assert ('--svd-seeds 42 is the bench seed, which always runs (as surprise_svd); give other seeds.'
          in capsys.readouterr().err)
  assert peer_segments.parse_args(['--data-dir', movielens_stub_dir, '--svd-seeds', '7', '8']).svd_seeds == [7, 8]


def test_serving_quality_refuses_a_repeated_weight(movielens_stub_dir, capsys):
  with pytest.raises(SystemExit) as exited:
    serving_quality.main(['--serving-dir', '/nowhere', '--data-dir', movielens_stub_dir, '--weights', '0,0.3,1,0.30'])
  assert exited.value.code == 2
  assert ('--weights: 0.3 is given twice; each weight is measured once, so give it once.'
          in capsys.readouterr().err)


@pytest.mark.parametrize('hparams, message', [
    (['{}', '{}'], "--hparams '{}' is the same configuration as '{}'; each runs the same training, so give it "
                   'once.'),
    (['{"epochs": 3}', '{ "epochs" : 3 }'], '''--hparams '{ "epochs" : 3 }' is the same configuration as '''
                                           '''\'{"epochs": 3}\''''),
])
def test_retrieval_validation_refuses_the_same_configuration_twice(hparams, message, capsys):
  with pytest.raises(SystemExit) as exited:
    retrieval_validation.parse_args(['--run-dir', 'r', '--hparams', *hparams])
  assert exited.value.code == 2
  assert message in capsys.readouterr().err


def test_retrieval_validation_default_configuration_spelt_out_is_the_same(capsys):
  from trainer.retrieval import hparams as hparams_lib  # pylint: disable=g-import-not-at-top
  spelt_out = f'{{"epochs": {hparams_lib.DEFAULT.epochs}}}'
  with pytest.raises(SystemExit):
    retrieval_validation.parse_args(['--run-dir', 'r', '--hparams', '{}', spelt_out])
  assert f"--hparams '{spelt_out}' is the same configuration as '{{}}'" in capsys.readouterr().err
  assert retrieval_validation.parse_args(
      ['--run-dir', 'r', '--hparams', '{}', f'{{"epochs": {hparams_lib.DEFAULT.epochs + 1}}}']).hparams[0] == '{}'


@pytest.mark.parametrize('function, text, value', [
    (benchmark_flags.positive_int, '1', 1), (benchmark_flags.positive_int, '2000', 2000),
    (benchmark_flags.non_negative_int, '0', 0), (benchmark_flags.non_negative_int, '20', 20),
    (benchmark_flags.seed, '0', 0), (benchmark_flags.seed, str(2 ** 32 - 1), 4294967295),
    (benchmark_flags.non_negative_float, '0', 0.0), (benchmark_flags.non_negative_float, '1.5', 1.5),
])
def test_typed_values_are_parsed(function, text, value):
  assert function(text) == value
  assert type(function(text)) is type(value)  # pylint: disable=unidiomatic-typecheck


@pytest.mark.parametrize('function, text, message', [
    (benchmark_flags.positive_int, '0', '0 must be at least 1.'),
    (benchmark_flags.positive_int, '-5', '-5 must be at least 1.'),
    (benchmark_flags.positive_int, '1.5', "'1.5' is not an integer."),
    (benchmark_flags.non_negative_int, '-1', '-1 must be >= 0.'),
    (benchmark_flags.non_negative_int, 'x', "'x' is not an integer."),
    (benchmark_flags.seed, '-1', '-1 must be in [0, 2**32) (a numpy seed).'),
    (benchmark_flags.seed, '4294967296', '4294967296 must be in [0, 2**32) (a numpy seed).'),
    (benchmark_flags.non_negative_float, '-0.5', '-0.5 must be a number >= 0.'),
    (benchmark_flags.non_negative_float, 'nan', 'nan must be a number >= 0.'),
    (benchmark_flags.non_negative_float, 'inf', 'inf must be a number >= 0.'),
    (benchmark_flags.non_negative_float, 'one', "'one' is not a number."),
])
def test_bad_typed_values_are_refused_with_the_value(function, text, message):
  with pytest.raises(argparse.ArgumentTypeError) as error:
    function(text)
  assert str(error.value) == message


def test_an_argparse_type_error_names_the_flag(capsys):
  parser = argparse.ArgumentParser(prog='bench')
  parser.add_argument('--requests', type=benchmark_flags.positive_int, default=300)
  assert parser.parse_args([]).requests == 300
  with pytest.raises(SystemExit) as exited:
    parser.parse_args(['--requests', '0'])
  assert exited.value.code == 2
  assert capsys.readouterr().err.endswith('bench: error: argument --requests: 0 must be at least 1.\n')


@pytest.mark.parametrize('parse, argv, message', [
    # The scripts' flags use the shared rules (before, each script had its own copy of the check).
    (peer_segments.parse_args, ['--split-seed', '-1'], 'argument --split-seed: -1 must be in [0, 2**32)'),
    (peer_segments.parse_args, ['--bootstrap-draws', '-1'], 'argument --bootstrap-draws: -1 must be >= 0.'),
    (segment_regression_noise.parse_args, ['--bootstrap-draws', '0'],
     'argument --bootstrap-draws: 0 must be at least 1.'),
    (neighbourhood_weight.parse_args, ['--seeds', '-1'], 'argument --seeds: -1 must be in [0, 2**32)'),
    (retrieval_validation.parse_args, ['--seeds', '7', '4294967296'],
     'argument --seeds: 4294967296 must be in [0, 2**32) (a numpy seed).'),
])
def test_each_benchmark_uses_the_shared_rules(parse, argv, message, capsys):
  with pytest.raises(SystemExit) as exited:
    parse(argv)
  assert exited.value.code == 2
  assert message in capsys.readouterr().err
