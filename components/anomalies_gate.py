"""AnomaliesGate: stops the pipeline before Transform and training when ExampleValidator found anomalies.

ExampleValidator records anomalies but lets the run go on. This component fails the run instead, with a
message that names every anomalous feature, what is wrong and how to fix it, so that no model is trained,
evaluated or pushed from data that breaks the curated schema.
"""

import os
from typing import Dict, List

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx
from tfx.types import artifact_utils

# The file ExampleValidator writes per split (tfx.components.example_validator.executor.DEFAULT_FILE_NAME).
SCHEMA_DIFF_FILE = 'SchemaDiff.pb'


class DataAnomaliesError(RuntimeError):
  """The examples do not match the curated schema."""


def read_anomalies(anomalies_uri: str, split_names: List[str]) -> Dict[str, anomalies_pb2.Anomalies]:
  """Reads ExampleValidator's anomalies of each split.

  Args:
    anomalies_uri: the ExampleAnomalies artifact's URI.
    split_names: its splits, e.g. ['train', 'eval'].

  Returns:
    The Anomalies proto of each split.

  Raises:
    tf.errors.NotFoundError: if a split has no `Split-<name>/SchemaDiff.pb` (not ExampleValidator's output).
  """
  found = {}
  for split in split_names:
    path = os.path.join(anomalies_uri, f'Split-{split}', SCHEMA_DIFF_FILE)
    with tf.io.gfile.GFile(path, 'rb') as f:
      found[split] = anomalies_pb2.Anomalies.FromString(f.read())
  return found


def describe_anomalies(anomalies_by_split: Dict[str, anomalies_pb2.Anomalies]) -> List[str]:
  """One line per anomaly: split, feature, TFDV's short and long descriptions. Empty when all is clean.

  A split without examples is an anomaly too: TFDV then reports no feature anomaly, only `data_missing`.
  """
  lines = []
  for split, anomalies in sorted(anomalies_by_split.items()):
    if anomalies.data_missing:
      lines.append(f"split '{split}': no examples (TFDV data_missing) — the split is empty; check the input "
                   'files and the split configuration')
    for feature, info in sorted(anomalies.anomaly_info.items()):
      lines.append(f"split '{split}', feature '{feature}': {info.short_description} — {info.description}")
    if anomalies.HasField('dataset_anomaly_info'):
      info = anomalies.dataset_anomaly_info
      lines.append(f"split '{split}', whole dataset: {info.short_description} — {info.description}")
  return lines


@tfx.dsl.components.component
def AnomaliesGate(anomalies: tfx.dsl.components.InputArtifact[
    tfx.types.standard_artifacts.ExampleAnomalies]) -> None:
  """Raises DataAnomaliesError when any split of `anomalies` holds an anomaly; does nothing otherwise."""
  split_names = artifact_utils.decode_split_names(anomalies.split_names)
  problems = describe_anomalies(read_anomalies(anomalies.uri, split_names))
  if problems:
    raise DataAnomaliesError(
        'The input data does not match the schema, so the run stops before training and nothing is '
        'pushed:\n  ' + '\n  '.join(problems) +
        '\nFix the data, or, if the change is intended, update the curated schema (--schema) to accept it.')
