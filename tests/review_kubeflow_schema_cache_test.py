"""kubeflow_runner puts the imported schema's sha256 among ImportSchemaGen's inputs, so a cached cluster run
re-imports a schema edited at the same path (as local_runner.py's content-named copy does)."""

import hashlib

import yaml

import kubeflow_runner
from pipeline import configs

ARGV = ['--image', 'europe-docker.pkg.dev/woonkly-test/woonkly/pipeline:test', '--pipeline-root', 'gs://t/root',
        '--data-root', 'gs://t/data', '--serving-dir', 'gs://t/serving']


def _schema_gen_inputs(path: str) -> dict:
  """{parameter: constant} of the compiled spec's ImportSchemaGen task, and checks the component declares them."""
  with open(path, encoding='utf-8') as f:
    spec = yaml.safe_load(f)
  task = spec['root']['dag']['tasks'][configs.SCHEMA_GEN_ID]
  declared = spec['components'][task['componentRef']['name']]['inputDefinitions']['parameters']
  inputs = {name: p['runtimeValue']['constant'] for name, p in task['inputs']['parameters'].items()}
  assert set(declared) == set(inputs)
  return inputs


def test_the_schema_gen_task_is_keyed_by_the_schemas_content(tmp_path):
  # Before, the task's only input was schema_file, the path: editing the file left the cache key unchanged.
  with open(configs.CURATED_SCHEMA_PATH, 'rb') as f:
    bundled = f.read()
  assert kubeflow_runner.main([*ARGV, '--output', str(tmp_path / 'bundled.yaml')]) == 0
  assert _schema_gen_inputs(str(tmp_path / 'bundled.yaml')) == {
      'schema_file': '/opt/venv/lib/python3.10/site-packages/schema/schema.pbtxt',
      'schema_sha256': hashlib.sha256(bundled).hexdigest()}
  schema = tmp_path / 'schema.pbtxt'
  schema.write_bytes(bundled + b'\n# edited\n')
  assert kubeflow_runner.main([*ARGV, '--schema', str(schema), '--output', str(tmp_path / 'edited.yaml')]) == 0
  edited = _schema_gen_inputs(str(tmp_path / 'edited.yaml'))
  assert edited == {'schema_file': str(schema), 'schema_sha256': hashlib.sha256(bundled + b'\n# edited\n').hexdigest()}
  assert kubeflow_runner.schema_sha256('/opt/venv/no/such/schema.pbtxt') is None  # only the image holds it
