"""Beam runner flags that would have no effect on the chosen runner are refused, naming the flag and the fix."""

import argparse

import pytest

from pipeline import beam_args

IMAGE = 'europe-docker.pkg.dev/p/r/woonkly:1'


def _flags(*argv: str) -> argparse.Namespace:
  parser = argparse.ArgumentParser()
  beam_args.add_beam_flags(parser)
  return parser.parse_args(list(argv))


def test_direct_num_workers_in_memory_is_refused():
  # Before, accepted and replaced by --direct_num_workers=1: the in-memory DirectRunner runs one process.
  with pytest.raises(ValueError) as error:
    beam_args.beam_pipeline_args_from_flags(_flags('--direct-num-workers', '4'), image=IMAGE)
  assert str(error.value) == ('--direct-num-workers=4 has no effect with --direct-running-mode=in_memory (one '
                              'process); add --direct-running-mode=multi_processing, or drop it.')
  assert beam_args.beam_pipeline_args_from_flags(
      _flags('--direct-running-mode', 'multi_processing', '--direct-num-workers', '4'), image=IMAGE) == [
          '--runner=DirectRunner', '--direct_running_mode=multi_processing', '--direct_num_workers=4']
  assert beam_args.beam_pipeline_args_from_flags(_flags(), image=IMAGE) == [
      '--runner=DirectRunner', '--direct_running_mode=in_memory', '--direct_num_workers=1']


@pytest.mark.parametrize('argv, message', [
    # Before, each was accepted and the pipeline ran on the other runner without it.
    (['--dataflow-project', 'p'], '--dataflow-project is a dataflow setting, which --beam-runner=direct ignores; '
                                  'add --beam-runner=dataflow, or drop --dataflow-project.'),
    (['--beam-runner', 'flink', '--flink-master', 'http://f:8081', '--spark-rest-url', 'http://m:6066'],
     '--spark-rest-url is a spark setting, which --beam-runner=flink ignores; add --beam-runner=spark, or drop '
     '--spark-rest-url.'),
    (['--beam-runner', 'spark', '--spark-job-endpoint', 'j:8099', '--direct-running-mode', 'multi_processing'],
     '--direct-running-mode is a direct setting, which --beam-runner=spark ignores; add --beam-runner=direct, or '
     'drop --direct-running-mode.'),
    (['--beam-environment-type', 'EXTERNAL'], '--beam-environment-type is a flink/spark setting, which '
                                              '--beam-runner=direct ignores; add --beam-runner=flink or spark, or '
                                              'drop it.'),
    (['--beam-runner', 'dataflow', '--dataflow-project', 'p', '--dataflow-region', 'r',
      '--dataflow-temp-location', 'gs://b/t', '--beam-environment-config', 'localhost:50000'],
     '--beam-environment-config is a flink/spark setting, which --beam-runner=dataflow ignores'),
    (['--dataflow-max-num-workers', '3'], '--dataflow-max-num-workers is a dataflow setting'),
    (['--dataflow-service-account', 'sa@p.iam.gserviceaccount.com'], '--dataflow-service-account is a dataflow'),
])
def test_a_setting_of_another_runner_is_refused(argv, message):
  with pytest.raises(ValueError) as error:
    beam_args.beam_pipeline_args_from_flags(_flags(*argv), image=IMAGE)
  assert str(error.value).startswith(message)


def test_each_runners_own_settings_pass():
  assert beam_args.beam_pipeline_args_from_flags(
      _flags('--beam-runner', 'dataflow', '--dataflow-project', 'p', '--dataflow-region', 'r',
             '--dataflow-temp-location', 'gs://b/t', '--dataflow-max-num-workers', '3'), image=IMAGE) == [
                 '--runner=DataflowRunner', '--project=p', '--region=r', '--temp_location=gs://b/t',
                 f'--sdk_container_image={IMAGE}', '--sdk_location=container', '--max_num_workers=3']
  assert beam_args.beam_pipeline_args_from_flags(
      _flags('--beam-runner', 'spark', '--spark-job-endpoint', 'j:8099', '--beam-environment-type', 'EXTERNAL',
             '--beam-environment-config', 'localhost:50000'), image=IMAGE) == [
                 '--runner=PortableRunner', '--job_endpoint=j:8099', '--environment_type=EXTERNAL',
                 '--environment_config=localhost:50000']
