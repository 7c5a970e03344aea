"""Offline validation of the Kubeflow Pipelines v2 spec kubeflow_runner.py compiles (no cluster, no Docker).

One compilation (Dataflow settings) is parsed with KFP's pipeline-spec protos and compared with the TFX
pipeline object it came from, so new components (the retrieval stage) are checked without editing this file.
The Beam argument builders and the Dockerfile's agreement with the runner are checked without compiling.
"""

import argparse
import importlib
import importlib.metadata
import os
import re
from typing import Dict, List, Set

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

import kubeflow_runner
from pipeline import beam_args

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DISTRIBUTION = 'woonkly-recommender'
IMAGE = 'europe-docker.pkg.dev/woonkly-test/woonkly/pipeline:test'
ROOT = 'gs://woonkly-test/root'
DATA = 'gs://woonkly-test/data'
SERVING = 'gs://woonkly-test/serving'
DATAFLOW_FLAGS = ['--beam-runner', 'dataflow', '--dataflow-project', 'woonkly-test',
                  '--dataflow-region', 'europe-west1', '--dataflow-temp-location', 'gs://woonkly-test/tmp']
# What DATAFLOW_FLAGS must turn into, written out by hand.
DATAFLOW_ARGS = ['--runner=DataflowRunner', '--project=woonkly-test', '--region=europe-west1',
                 '--temp_location=gs://woonkly-test/tmp', f'--sdk_container_image={IMAGE}',
                 '--sdk_location=container']


def _argv(output: str, *extra: str) -> List[str]:
  return ['--image', IMAGE, '--pipeline-root', ROOT, '--data-root', DATA, '--serving-dir', SERVING,
          '--output', output, '--epochs', '3', *extra]


@pytest.fixture(scope='module')
def compiled(tmp_path_factory):
  """(PipelineSpec, its PipelineDeploymentConfig, the TFX pipeline object) of one CLI compilation."""
  output = str(tmp_path_factory.mktemp('kfp') / 'woonkly_pipeline.yaml')
  argv = _argv(output, *DATAFLOW_FLAGS)
  assert kubeflow_runner.main(argv) == 0
  with open(output, encoding='utf-8') as f:
    spec_dict = yaml.safe_load(f)
  # TFX writes a bare PipelineSpec to .yaml (a PipelineJob wrapper, {'pipelineSpec': ...}, only to .json).
  assert 'pipelineSpec' not in spec_dict
  spec = json_format.ParseDict(spec_dict, pipeline_spec_pb2.PipelineSpec())
  deployment = json_format.ParseDict(json_format.MessageToDict(spec.deployment_spec),
                                     pipeline_spec_pb2.PipelineDeploymentConfig())
  args = kubeflow_runner.parse_args(argv)
  tfx_pipeline = kubeflow_runner.build_pipeline(
      args, beam_args.beam_pipeline_args_from_flags(args, image=args.image))
  return spec, deployment, tfx_pipeline


def _is_resolver(node) -> bool:
  from tfx import v1 as tfx
  return isinstance(node, tfx.dsl.Resolver)


def _runs_in_container(node) -> bool:
  from tfx import v1 as tfx
  return not isinstance(node, (tfx.dsl.Resolver, tfx.dsl.Importer))


def _resolver_tasks(resolver_id: str, task_names: Set[str]) -> Set[str]:
  """A Resolver compiles to one task named after it, or several `<id>-<part>` tasks (latest blessed model)."""
  return {t for t in task_names if t == resolver_id or t.startswith(resolver_id + '-')}


def _container(spec, deployment, task_name: str):
  executor_label = spec.components[spec.root.dag.tasks[task_name].component_ref.name].executor_label
  return deployment.executors[executor_label].container


def _parameter(spec, task_name: str, name: str):
  return spec.root.dag.tasks[task_name].inputs.parameters[name].runtime_value.constant


def test_every_pipeline_node_is_a_task_with_exactly_its_upstream_dependencies(compiled):
  spec, _, tfx_pipeline = compiled
  tasks = spec.root.dag.tasks
  task_names = set(tasks)
  resolver_tasks = {n.id: _resolver_tasks(n.id, task_names) for n in tfx_pipeline.components if _is_resolver(n)}
  assert all(resolver_tasks.values()), resolver_tasks
  component_ids = {n.id for n in tfx_pipeline.components if not _is_resolver(n)}
  assert task_names == component_ids | set().union(*resolver_tasks.values())

  for node in tfx_pipeline.components:
    if _is_resolver(node):
      continue
    dependencies = set(tasks[node.id].dependent_tasks)
    for upstream in node.upstream_nodes:
      if _is_resolver(upstream):
        # The consumer depends on exactly one of the resolver's tasks (the one that yields its input).
        assert len(dependencies & resolver_tasks[upstream.id]) == 1, (node.id, upstream.id, dependencies)
        dependencies -= resolver_tasks[upstream.id]
    assert dependencies == {u.id for u in node.upstream_nodes if not _is_resolver(u)}, node.id


def test_hand_checked_dependencies(compiled):
  tasks = compiled[0].root.dag.tasks
  assert set(tasks['ImportExampleGen'].dependent_tasks) == set()
  assert set(tasks['StatisticsGen'].dependent_tasks) == {'ImportExampleGen'}
  assert set(tasks['ExampleValidator'].dependent_tasks) == {'StatisticsGen', 'SchemaGen'}
  assert set(tasks['Transform'].dependent_tasks) == {'ImportExampleGen', 'SchemaGen', 'AnomaliesGate'}
  assert set(tasks['ranking_trainer'].dependent_tasks) == {'Transform', 'SchemaGen'}
  assert set(tasks['ranking_evaluator'].dependent_tasks) == {
      'ImportExampleGen', 'ranking_trainer', 'latest_blessed_ranking_model_resolver-model-resolver'}
  assert set(tasks['ranking_segment_gate'].dependent_tasks) == {'ranking_trainer', 'ranking_evaluator'}
  assert set(tasks['ranking_pusher'].dependent_tasks) == {'ranking_trainer', 'ranking_segment_gate'}


def test_every_component_runs_the_image_through_the_tfx_entrypoint(compiled):
  spec, deployment, tfx_pipeline = compiled
  nodes = [n for n in tfx_pipeline.components if _runs_in_container(n)]
  assert len(nodes) >= 9  # The ranking half alone: 10 nodes, 9 of them containers (all but the resolver).
  for node in nodes:
    container = _container(spec, deployment, node.id)
    assert container.image == IMAGE, node.id
    assert list(container.command) == [
        'python', '-m', 'tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor'], node.id


def test_dataflow_arguments_reach_every_executor(compiled):
  spec, deployment, tfx_pipeline = compiled
  for node in tfx_pipeline.components:
    if _runs_in_container(node):
      args = list(_container(spec, deployment, node.id).args)
      start = args.index(DATAFLOW_ARGS[0])
      assert args[start:start + len(DATAFLOW_ARGS)] == DATAFLOW_ARGS, node.id


def test_paths_and_settings_reach_the_spec(compiled):
  spec, _, _ = compiled
  assert spec.default_pipeline_root == ROOT
  assert spec.schema_version == '2.1.0'
  assert _parameter(spec, 'ImportExampleGen', 'input_base').string_value == DATA
  assert _parameter(spec, 'SchemaGen', 'schema_file').string_value == (
      '/opt/venv/lib/python3.10/site-packages/schema/schema.pbtxt')
  assert f'"{SERVING}/ranking"' in _parameter(spec, 'ranking_pusher', 'push_destination').string_value
  assert '"epochs": 3' in _parameter(spec, 'ranking_trainer', 'custom_config').string_value


def _user_code_paths(spec, deployment) -> Dict[str, str]:
  """Every dotted path the spec asks the container to import: executor classes and `*_fn` parameters."""
  paths = {}
  for label, executor in deployment.executors.items():
    if executor.HasField('container'):
      args = list(executor.container.args)
      paths[label] = args[args.index('--executor_class_path') + 1]
  for task_name, task in spec.root.dag.tasks.items():
    for name, parameter in task.inputs.parameters.items():
      if name.endswith('_fn'):
        paths[f'{task_name}.{name}'] = parameter.runtime_value.constant.string_value
  return paths


def test_user_code_paths_import_from_the_installed_package(compiled):
  spec, deployment, _ = compiled
  paths = _user_code_paths(spec, deployment)
  assert {'transform.preprocessing.preprocessing_fn', 'trainer.ranking.run.run_fn',
          'components.anomalies_gate.AnomaliesGate_Executor'} <= set(paths.values())
  installed = importlib.metadata.packages_distributions()
  for where, dotted in paths.items():
    module_name, attribute = dotted.rsplit('.', 1)
    assert callable(getattr(importlib.import_module(module_name), attribute)), (where, dotted)
    top_level = module_name.split('.')[0]
    if top_level != 'tfx':
      # Imports in the container only if the installed distribution (not just this source tree) has it.
      assert DISTRIBUTION in installed.get(top_level, []), (where, dotted)


def test_bundled_schema_is_package_data_at_the_image_path():
  import schema
  bundled = os.path.join(os.path.dirname(schema.__file__), 'schema.pbtxt')
  assert os.path.isfile(bundled)
  assert kubeflow_runner.image_schema_path() == '/opt/venv/lib/python3.10/site-packages/schema/schema.pbtxt'
  with open(os.path.join(REPO_ROOT, 'pyproject.toml'), encoding='utf-8') as f:
    assert re.search(r'^schema = \["\*\.pbtxt"\]', f.read(), re.MULTILINE)


def test_dockerfile_agrees_with_the_runner_and_the_lock():
  import apache_beam
  with open(os.path.join(REPO_ROOT, 'Dockerfile'), encoding='utf-8') as f:
    dockerfile = f.read()
  assert f'UV_PROJECT_ENVIRONMENT={kubeflow_runner.IMAGE_VENV} ' in dockerfile
  assert re.search(r'^FROM python:3\.10-slim|^ARG PYTHON_IMAGE=python:3\.10-slim', dockerfile, re.MULTILINE)
  assert f'ARG BEAM_VERSION={apache_beam.__version__}\n' in dockerfile
  assert 'TF_USE_LEGACY_KERAS=1' in dockerfile
  assert re.search(r'uv sync --frozen --no-dev .*--no-editable', dockerfile)


def test_missing_dataflow_setting_is_a_clear_error(tmp_path, capsys):
  output = tmp_path / 'spec.yaml'
  argv = _argv(str(output), '--beam-runner', 'dataflow', '--dataflow-project', 'woonkly-test',
               '--dataflow-region', 'europe-west1')
  assert kubeflow_runner.main(argv) == 2
  error = capsys.readouterr().err
  assert '--dataflow-temp-location' in error and 'DataflowRunner' in error
  assert '--dataflow-project' not in error
  assert not output.exists()


def test_dataflow_temp_location_must_be_on_gcs():
  with pytest.raises(ValueError, match='--dataflow-temp-location.*gs://'):
    beam_args.DataflowSettings(project='p', region='europe-west1', temp_location='/tmp/x',
                               sdk_container_image=IMAGE)


def _flags(*argv: str) -> argparse.Namespace:
  parser = argparse.ArgumentParser()
  beam_args.add_beam_flags(parser)
  return parser.parse_args(list(argv))


def test_runner_arguments_by_hand():
  assert beam_args.beam_pipeline_args_from_flags(_flags(), image=IMAGE) == [
      '--runner=DirectRunner', '--direct_running_mode=in_memory', '--direct_num_workers=1']
  assert beam_args.beam_pipeline_args_from_flags(
      _flags('--beam-runner', 'flink', '--flink-master', 'http://flink:8081', '--flink-parallelism', '4'),
      image=IMAGE) == ['--runner=FlinkRunner', '--flink_master=http://flink:8081', '--flink_submit_uber_jar',
                       '--parallelism=4', '--environment_type=DOCKER', f'--environment_config={IMAGE}']
  assert beam_args.beam_pipeline_args_from_flags(
      _flags('--beam-runner', 'spark', '--spark-job-endpoint', 'spark-jobserver:8099',
             '--beam-environment-type', 'EXTERNAL', '--beam-environment-config', 'localhost:50000',
             '--beam-arg=--experiments=pre_optimize=all'),
      image=IMAGE) == ['--runner=PortableRunner', '--job_endpoint=spark-jobserver:8099',
                       '--environment_type=EXTERNAL', '--environment_config=localhost:50000',
                       '--experiments=pre_optimize=all']


@pytest.mark.parametrize('argv, flag', [
    (['--beam-runner', 'flink'], '--flink-master'),
    (['--beam-runner', 'spark', '--spark-master-url', 'spark://m:7077'], '--spark-rest-url'),
    (['--beam-runner', 'flink', '--flink-master', 'http://f:8081', '--beam-environment-type', 'EXTERNAL'],
     '--beam-environment-config'),
])
def test_missing_portable_runner_setting_names_the_flag(argv, flag):
  with pytest.raises(ValueError, match=flag):
    beam_args.beam_pipeline_args_from_flags(_flags(*argv), image=IMAGE)


def test_spark_job_server_and_master_are_exclusive():
  with pytest.raises(ValueError, match='not both'):
    beam_args.beam_pipeline_args_from_flags(
        _flags('--beam-runner', 'spark', '--spark-job-endpoint', 'j:8099', '--spark-master-url', 'spark://m:7077'),
        image=IMAGE)


def test_local_runs_switch_to_multi_processing_at_two_million_rows():
  # Below the threshold: no arguments, i.e. Beam's default in-memory DirectRunner (and no TFX sdist build).
  assert beam_args.local_beam_pipeline_args(1_999_999) == []
  assert beam_args.local_beam_pipeline_args(2_000_000) == [
      '--runner=DirectRunner', '--direct_running_mode=multi_processing', '--direct_num_workers=0']


def test_each_blessing_resolver_reads_only_its_own_gates_blessings(compiled):
  # TFX's compiler gives both resolvers the same query (any blessed ModelBlessing); the runner adds the gate.
  executors = compiled[1].executors
  filters = {resolver: [q.filter for q in executors[f'{resolver}-model-blessing-resolver_executor']
                        .resolver.output_artifact_queries.values()]
             for resolver in ('latest_blessed_ranking_model_resolver', 'latest_blessed_retrieval_model_resolver')}
  assert filters == {
      'latest_blessed_ranking_model_resolver': [
          'schema_title="tfx.ModelBlessing" AND state=LIVE AND metadata.blessed.number_value=1'
          ' AND metadata.blessing_gate.string_value="ranking_segment_gate"'],
      'latest_blessed_retrieval_model_resolver': [
          'schema_title="tfx.ModelBlessing" AND state=LIVE AND metadata.blessed.number_value=1'
          ' AND metadata.blessing_gate.string_value="retrieval_gate"'],
  }


def test_a_compiler_that_moved_the_blessing_query_is_refused():
  with pytest.raises(RuntimeError, match='latest_blessed_ranking_model_resolver'):
    kubeflow_runner.restrict_blessing_resolvers({'deploymentSpec': {'executors': {}}})


def test_a_hyperparameter_naming_a_feature_the_schema_lacks_is_refused_before_compiling(tmp_path, capsys):
  # Before, this compiled (exit 0) and the ranking Trainer failed on the cluster, after ExampleGen, StatisticsGen
  # and Transform. The bundled schema's columns give the models user_id, user_age, ... but no 'user_agee'.
  output = tmp_path / 'spec.yaml'
  hparams = '{"user_features": ["user_id", "user_agee"]}'
  assert kubeflow_runner.main(_argv(str(output), '--ranking-hparams', hparams)) == 2
  error = capsys.readouterr().err
  assert error.startswith("error: --ranking-hparams (on --ranking-config default): user_features names ['user_agee'], "
                          'which this data does not give the models; the model inputs it gives that user_features '
                          'takes are [')
  assert "'item_" not in error and "'interaction_" not in error  # before, item and context inputs were listed too
  assert not output.exists()


def test_a_local_schema_is_what_the_features_are_checked_against(tmp_path, capsys):
  # A schema of the four required columns only: the seed configuration's item_title is not among its inputs.
  schema = tmp_path / 'schema.pbtxt'
  schema.write_text(''.join(f'feature {{ name: "{name}" type: {kind} }}\n' for name, kind in (
      ('user_id', 'BYTES'), ('item_id', 'BYTES'), ('rating', 'FLOAT'), ('timestamp', 'INT'))), encoding='utf-8')
  assert kubeflow_runner.schema_columns(str(schema)) == ['user_id', 'item_id', 'rating', 'timestamp']
  assert kubeflow_runner.main(_argv(str(tmp_path / 'spec.yaml'), '--schema', str(schema), '--ranking-config',
                                    'seed')) == 2
  assert ("item_features names ['item_title'], which this data does not give the models; the model inputs it gives "
          "that item_features takes are ['item_id', 'item_popularity']. Fix") in capsys.readouterr().err
  # A path only the image holds cannot be read here: not checked (the bundled default is read from the package).
  assert kubeflow_runner.schema_columns('/opt/venv/no/such/schema.pbtxt') is None
  assert 'user_agee' not in kubeflow_runner.schema_columns(None)
  assert {'user_id', 'item_id', 'user_age', 'item_title', 'recent_rating'} <= set(kubeflow_runner.schema_columns(None))


def test_a_schema_file_that_is_not_text_is_refused_naming_the_flag(tmp_path, capsys):
  # A serialized (binary) Schema proto: before, "error: 'utf-8' codec can't decode byte 0xff in position 2: invalid
  # start byte", without the flag or the fix.
  schema = tmp_path / 'schema.pb'
  schema.write_bytes(b'\x0a\x09\xff\xfeuser_id')
  output = tmp_path / 'spec.yaml'
  assert kubeflow_runner.main(_argv(str(output), '--schema', str(schema))) == 2
  error = capsys.readouterr().err
  assert error.startswith(f"error: --schema {schema}: cannot be read ('utf-8' codec can't decode byte 0xff in "
                          'position 2: invalid start byte). Fix: pass a curated schema.pbtxt (text format), ')
  assert not output.exists()


@pytest.mark.parametrize('beam_arg', ['experiments=use_runner_v2', '', '-'])
def test_an_extra_beam_arg_that_is_not_an_option_is_refused_naming_it(beam_arg):
  # Before, it was passed on, and Beam's option parser dropped it with a warning in each component's log.
  with pytest.raises(ValueError, match=f"--beam-arg='{beam_arg}' is not a Beam pipeline option.*"
                     '--beam-arg=--NAME=VALUE'):
    beam_args.beam_pipeline_args_from_flags(_flags(f'--beam-arg={beam_arg}'), image=IMAGE)


def test_an_extra_beam_option_may_take_its_value_as_the_next_beam_arg():
  assert beam_args.beam_pipeline_args_from_flags(
      _flags('--beam-arg=--experiments', '--beam-arg=use_runner_v2', '--beam-arg=--save_main_session'),
      image=IMAGE)[3:] == ['--experiments', 'use_runner_v2', '--save_main_session']
  with pytest.raises(ValueError, match="--beam-arg='b' is not a Beam pipeline option"):
    beam_args.beam_pipeline_args_from_flags(
        _flags('--beam-arg=--experiments', '--beam-arg=a', '--beam-arg=b'), image=IMAGE)
  with pytest.raises(ValueError, match="--beam-arg='b' is not a Beam pipeline option"):
    beam_args.beam_pipeline_args_from_flags(_flags('--beam-arg=--experiments=a', '--beam-arg=b'), image=IMAGE)
