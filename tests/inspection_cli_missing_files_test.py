"""The inspection CLI's anomalies command when the store outlived the run's files."""

import json

from inspection import cli
from tests import review_inspection_edge_cases_test as edge_cases


def test_anomalies_of_a_pruned_output_dir_exit_1_naming_the_missing_file(tmp_path, monkeypatch, capsys):
  # Before, a NotFoundError traceback (exit 1 by accident of Python, naming no fix).
  anomalies_uri = tmp_path / 'ExampleValidator' / '4'
  store = edge_cases._store_with_statistics_and_anomalies(  # pylint: disable=protected-access
      str(tmp_path / 'StatisticsGen' / '3'), str(anomalies_uri))
  monkeypatch.setattr(cli, 'store_from_flags', lambda args: store)
  assert cli.main(['--metadata-path', str(tmp_path / 'metadata.sqlite'), '--pipeline-name', 'p', 'anomalies']) == 1
  error = capsys.readouterr().err
  assert error.startswith(f"error: cannot read ExampleValidator's output: {anomalies_uri}/Split-train/SchemaDiff.pb;")
  assert 'Fix: point --output-dir at the folder the run wrote, or rerun the pipeline.' in error


def test_anomalies_are_listed_once_the_files_are_there(tmp_path, monkeypatch, capsys):
  from tensorflow_metadata.proto.v0 import anomalies_pb2  # pylint: disable=g-import-not-at-top
  anomalies_uri = tmp_path / 'ExampleValidator' / '4'
  for split in ('train', 'eval'):
    (anomalies_uri / f'Split-{split}').mkdir(parents=True)
    (anomalies_uri / f'Split-{split}' / 'SchemaDiff.pb').write_bytes(anomalies_pb2.Anomalies().SerializeToString())
  store = edge_cases._store_with_statistics_and_anomalies(  # pylint: disable=protected-access
      str(tmp_path / 'StatisticsGen' / '3'), str(anomalies_uri))
  monkeypatch.setattr(cli, 'store_from_flags', lambda args: store)
  assert cli.main(['--metadata-path', str(tmp_path / 'metadata.sqlite'), '--pipeline-name', 'p', 'anomalies',
                   '--json']) == 0
  assert [a['split'] for a in json.loads(capsys.readouterr().out)] == ['train', 'eval']
