"""kubeflow_runner.py refuses bad flags up front, with a message naming the flag and the fix (no traceback)."""

from typing import List

import pytest

import kubeflow_runner

IMAGE = 'europe-docker.pkg.dev/woonkly-test/woonkly/pipeline:test'


def _argv(*extra: str) -> List[str]:
  return ['--image', IMAGE, '--pipeline-root', 'gs://woonkly-test/root', '--data-root', 'gs://woonkly-test/data',
          '--serving-dir', 'gs://woonkly-test/serving', *extra]


@pytest.mark.parametrize('name', ['Woonkly', 'woonkly recommender', 'woonkly_recommender', '-woonkly', '',
                                  'a' * 129])
def test_a_pipeline_name_kfp_refuses_is_a_flag_error(name, capsys):
  # Before, it parsed, and compiling failed after ~20 s with TFX's traceback "User provided pipeline name % is
  # illegal" (its message even lost the name).
  with pytest.raises(SystemExit) as exit_info:
    kubeflow_runner.parse_args(_argv(f'--pipeline-name={name}'))
  assert exit_info.value.code == 2
  error = capsys.readouterr().err
  assert f'--pipeline-name={name!r} is not a name KFP accepts' in error
  assert 'e.g. woonkly-recommender' in error


@pytest.mark.parametrize('name', ['woonkly-recommender', '0', 'a' * 128, 'w2-staging'])
def test_names_kfp_accepts_pass(name):
  assert kubeflow_runner.parse_args(_argv(f'--pipeline-name={name}')).pipeline_name == name


def test_an_output_that_cannot_be_written_is_an_error_naming_the_flag(tmp_path, capsys):
  # A regular file where the output's directory should be. Before, compiling ended in TensorFlow's
  # FailedPreconditionError traceback ("...; Not a directory"), without the flag or the fix.
  (tmp_path / 'not-a-dir').write_text('x', encoding='utf-8')
  output = tmp_path / 'not-a-dir' / 'spec.yaml'
  assert kubeflow_runner.main(_argv('--output', str(output))) == 2
  error = capsys.readouterr().err
  assert error.startswith(f'error: --output {output}: cannot be written (')
  assert 'Fix: pass a .yaml path in a directory this account may create and write' in error
  assert (tmp_path / 'not-a-dir').read_text(encoding='utf-8') == 'x'


@pytest.mark.parametrize('image', ['', ' ', f' {IMAGE}', f'{IMAGE}\n', 'pipeline :test'])
def test_an_image_that_is_no_image_reference_is_a_flag_error(image, capsys):
  # Before, `--image ""` (e.g. an unset shell variable) compiled every component into TFX's default image
  # gcr.io/tfx-oss-public/tfx:1.16.0, which lacks this package: the spec could not run as documented.
  with pytest.raises(SystemExit) as exit_info:
    kubeflow_runner.parse_args(['--image', image] + _argv()[2:])
  assert exit_info.value.code == 2
  assert f'--image={image!r} is not an image reference' in capsys.readouterr().err
