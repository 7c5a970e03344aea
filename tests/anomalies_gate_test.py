"""Tests for components.anomalies_gate: which ExampleValidator results stop the run, and what the message says."""

import os

import pytest
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.types import artifact_utils, standard_artifacts

from components import anomalies_gate


def _write(uri: str, split: str, anomalies: anomalies_pb2.Anomalies) -> None:
  os.makedirs(os.path.join(uri, f'Split-{split}'))
  with open(os.path.join(uri, f'Split-{split}', anomalies_gate.SCHEMA_DIFF_FILE), 'wb') as f:
    f.write(anomalies.SerializeToString())


def test_clean_splits_have_nothing_to_report(tmp_path) -> None:
  _write(str(tmp_path), 'train', anomalies_pb2.Anomalies())
  _write(str(tmp_path), 'eval', anomalies_pb2.Anomalies())
  assert anomalies_gate.describe_anomalies(anomalies_gate.read_anomalies(str(tmp_path), ['train', 'eval'])) == []


def test_feature_and_dataset_anomalies_are_named_by_split_and_feature(tmp_path) -> None:
  train = anomalies_pb2.Anomalies()
  train.anomaly_info['user_gender'].short_description = 'Unexpected string values'
  train.anomaly_info['user_gender'].description = 'Examples contain values missing from the schema: X.'
  evaluation = anomalies_pb2.Anomalies()
  evaluation.dataset_anomaly_info.short_description = 'Low num examples'
  evaluation.dataset_anomaly_info.description = 'The dataset has 3 examples.'
  _write(str(tmp_path), 'train', train)
  _write(str(tmp_path), 'eval', evaluation)
  assert anomalies_gate.describe_anomalies(anomalies_gate.read_anomalies(str(tmp_path), ['train', 'eval'])) == [
      "split 'eval', whole dataset: Low num examples — The dataset has 3 examples.",
      "split 'train', feature 'user_gender': Unexpected string values — Examples contain values missing from "
      'the schema: X.']


def test_a_split_without_examples_is_an_anomaly() -> None:
  # What tfdv.validate_statistics returns for a split of 0 examples against the curated schema: no feature
  # anomaly at all, only data_missing. Before, the gate let an empty split through to Transform and training.
  empty = anomalies_pb2.Anomalies(data_missing=True)
  assert anomalies_gate.describe_anomalies({'train': anomalies_pb2.Anomalies(), 'eval': empty}) == [
      "split 'eval': no examples (TFDV data_missing) — the split is empty; check the input files and the split "
      'configuration']


def test_the_gate_fails_the_run_naming_the_anomaly_and_passes_clean_data(tmp_path) -> None:
  def artifact(uri: str) -> standard_artifacts.ExampleAnomalies:
    anomalies = standard_artifacts.ExampleAnomalies()
    anomalies.uri = uri
    anomalies.split_names = artifact_utils.encode_split_names(['train', 'eval'])
    return anomalies

  gate = anomalies_gate.AnomaliesGate.EXECUTOR_SPEC.executor_class._FUNCTION  # the decorated function
  clean, dirty = os.path.join(tmp_path, 'clean'), os.path.join(tmp_path, 'dirty')
  for split in ('train', 'eval'):
    _write(clean, split, anomalies_pb2.Anomalies())
  _write(dirty, 'train', anomalies_pb2.Anomalies())
  _write(dirty, 'eval', anomalies_pb2.Anomalies(data_missing=True))
  assert gate(anomalies=artifact(clean)) is None
  with pytest.raises(anomalies_gate.DataAnomaliesError,
                     match=r"(?s)nothing is pushed:\n  split 'eval': no examples .*update the curated schema"):
    gate(anomalies=artifact(dirty))
