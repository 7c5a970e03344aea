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


DATAFLOW = ('--beam-runner', 'dataflow', '--dataflow-project', 'p', '--dataflow-region', 'r',
            '--dataflow-temp-location', 'gs://b/t')
FLINK = ('--beam-runner', 'flink', '--flink-master', 'http://f:8081')


@pytest.mark.parametrize('argv, message', [
    # Before, each was appended after the runner's own arguments, and Beam (argparse: the last value wins, a
    # unique prefix names the option) ran with the extra value instead of the flag's.
    (['--beam-arg=--runner=FlinkRunner'],
     "--beam-arg='--runner=FlinkRunner' sets Beam's --runner, which --beam-runner=direct already sets "
     '(--runner=DirectRunner); as the later value it would silently override it. Use --beam-runner instead.'),
    (['--beam-arg=--runner', '--beam-arg=DataflowRunner'],
     "--beam-arg='--runner' sets Beam's --runner, which --beam-runner=direct already sets (--runner=DirectRunner)"
     '; as the later value it would silently override it. Use --beam-runner instead.'),
    (['--beam-arg=--runn=FlinkRunner'], "--beam-arg='--runn=FlinkRunner' sets Beam's --runner, which "),
    (['--beam-arg=--direct_running_mode=multi_processing'],
     "--beam-arg='--direct_running_mode=multi_processing' sets Beam's --direct_running_mode, which "
     '--beam-runner=direct already sets (--direct_running_mode=in_memory); as the later value it would silently '
     'override it. Use --direct-running-mode instead.'),
    (['--beam-arg=--direct_num_workers=4'], 'sets (--direct_num_workers=1); as the later value it would silently '
                                            'override it. Use --direct-num-workers instead.'),
    ([*DATAFLOW, '--beam-arg=--project=other'],
     "--beam-arg='--project=other' sets Beam's --project, which --beam-runner=dataflow already sets "
     '(--project=p); as the later value it would silently override it. Use --dataflow-project instead.'),
    ([*DATAFLOW, '--beam-arg=--region', '--beam-arg=us-central1'], 'Use --dataflow-region instead.'),
    ([*DATAFLOW, '--beam-arg=--temp_location=gs://c/t'], 'Use --dataflow-temp-location instead.'),
    ([*DATAFLOW, '--beam-arg=--sdk_container_image=other:1'],
     f"sets Beam's --sdk_container_image, which --beam-runner=dataflow already sets (--sdk_container_image={IMAGE})"
     '; as the later value it would silently override it. Use --image instead.'),
    ([*DATAFLOW, '--beam-arg=--sdk_location=default'],
     "--beam-arg='--sdk_location=default' sets Beam's --sdk_location, which --beam-runner=dataflow already sets "
     '(--sdk_location=container); as the later value it would silently override it. Drop it: --beam-runner='
     'dataflow always sets it.'),
    # Beam's other name of --machine_type.
    ([*DATAFLOW, '--dataflow-machine-type', 'n1-standard-4', '--beam-arg=--worker_machine_type=n2-standard-8'],
     "--beam-arg='--worker_machine_type=n2-standard-8' sets Beam's --machine_type, which --beam-runner=dataflow "
     'already sets (--machine_type=n1-standard-4); as the later value it would silently override it. Use '
     '--dataflow-machine-type instead.'),
    ([*FLINK, '--beam-arg=--flink_master=http://g:8081'], 'Use --flink-master instead.'),
    ([*FLINK, '--flink-parallelism', '4', '--beam-arg=--parallelism=8'],
     "--beam-arg='--parallelism=8' sets Beam's --parallelism, which --beam-runner=flink already sets "
     '(--parallelism=4); as the later value it would silently override it. Use --flink-parallelism instead.'),
    ([*FLINK, '--beam-arg=--environment_type=LOOPBACK'], 'Use --beam-environment-type instead.'),
    ([*FLINK, '--beam-arg=--flink_submit_uber_jar'], 'Drop it: --beam-runner=flink always sets it.'),
    (['--beam-runner', 'spark', '--spark-job-endpoint', 'j:8099', '--beam-arg=--job_endpoint=k:8099'],
     "--beam-arg='--job_endpoint=k:8099' sets Beam's --job_endpoint, which --beam-runner=spark already sets "
     '(--job_endpoint=j:8099); as the later value it would silently override it. Use --spark-job-endpoint '
     'instead.'),
])
def test_an_extra_beam_arg_that_overrides_the_runners_own_is_refused(argv, message):
  with pytest.raises(ValueError) as error:
    beam_args.beam_pipeline_args_from_flags(_flags(*argv), image=IMAGE)
  assert message in str(error.value)


def test_an_extra_beam_arg_the_runner_does_not_set_passes():
  # --max_num_workers and --parallelism are only in the runner's arguments when their flag is given.
  assert beam_args.beam_pipeline_args_from_flags(
      _flags(*DATAFLOW, '--beam-arg=--max_num_workers=5', '--beam-arg=--experiments=use_runner_v2'),
      image=IMAGE)[-2:] == ['--max_num_workers=5', '--experiments=use_runner_v2']
  assert beam_args.beam_pipeline_args_from_flags(_flags(*FLINK, '--beam-arg=--parallelism', '--beam-arg=8'),
                                                 image=IMAGE)[-2:] == ['--parallelism', '8']


@pytest.mark.parametrize('extra, option, value', [
    (['--runner=FlinkRunner'], 'runner', 'FlinkRunner'),
    (['--runner', 'FlinkRunner'], 'runner', 'FlinkRunner'),
    (['--runn=FlinkRunner'], 'runner', 'FlinkRunner'),
    (['--worker_machine_type=n2-standard-8'], 'machine_type', 'n2-standard-8'),
])
def test_beam_takes_the_refused_forms_as_the_runners_option(extra, option, value):
  # Why they are refused: Beam's own parser, given the runner's arguments then the extra ones, keeps the extra.
  from apache_beam.options import pipeline_options  # pylint: disable=g-import-not-at-top
  runner_args = ['--runner=DirectRunner', '--machine_type=n1-standard-4']
  assert pipeline_options.PipelineOptions(runner_args + extra).get_all_options()[option] == value
