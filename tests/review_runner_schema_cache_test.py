"""local_runner hands ImportSchemaGen a path that changes with the schema's content (its cache key is the path)."""

import pytest

import local_runner
from pipeline import configs, parallel_runner, pipeline as pipeline_lib
from tests import pipeline_runs


def test_an_edited_schema_reaches_a_rerun(tmp_path, monkeypatch):
  # Before, the --schema path itself was passed: a rerun after editing the file hit ImportSchemaGen's cache (its
  # key holds the path string) and validated and transformed against the schema imported before.
  passed = []

  def capture(**kwargs):
    passed.append(kwargs['schema_path'])
    raise RuntimeError('stop before building the pipeline')

  monkeypatch.setattr(pipeline_lib, 'create_pipeline', capture)
  monkeypatch.setattr(parallel_runner, 'ParallelLocalDagRunner', None)
  csv = pipeline_runs.write_fixture_interactions(str(tmp_path / 'interactions.csv'))
  curated = open(configs.CURATED_SCHEMA_PATH, encoding='utf-8').read()
  schema = tmp_path / 'schema.pbtxt'
  argv = ['--interactions', csv, '--schema', str(schema), '--output-dir', str(tmp_path / 'out')]
  for text in (curated, curated + '\n# edited\n', curated):
    schema.write_text(text, encoding='utf-8')
    with pytest.raises(RuntimeError, match='stop before'):
      local_runner.main(argv)
    assert open(passed[-1], encoding='utf-8').read() == text
  assert passed[0] != passed[1]  # the edit gives a new path: ImportSchemaGen runs again
  assert passed[0] == passed[2]  # the same content keeps its path: the cache still serves an unchanged rerun
  assert passed[0].startswith(str(tmp_path / 'out' / 'data' / 'schema'))
