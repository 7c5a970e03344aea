"""A finished pipeline run's outputs, opened for the benchmarks that work on them in this process."""

import argparse
import json
import os
import sys
from typing import Any, Optional, Tuple

from pipeline import configs


def run_dir_argument(text: str) -> str:
  """`text` if it holds a pipeline run's ML Metadata store, for argparse's `type=`: a usage error naming the store
  file and the fix otherwise, before a script reads anything."""
  store = os.path.join(text, configs.METADATA_FILE)
  if not os.path.isfile(store):
    raise argparse.ArgumentTypeError(f'{text}: no pipeline run here (no {store}); pass the --output-dir of a '
                                     'local_runner.py run.')
  return text


def open_run(run_dir: str) -> Optional[Tuple[Any, Any, Any, str]]:
  """The latest run in `run_dir` and its Transform output, or None (after saying why on stderr).

  Returns:
    (the run summary, its TFTransformOutput, a DataAccessor reading its transformed examples, their URI).
  """
  # pylint: disable=g-import-not-at-top
  import tensorflow_transform as tft
  from tfx.components.trainer import fn_args_utils
  from tfx.components.util import tfxio_utils
  from tfx.types import standard_artifacts
  from inspection import store as store_lib
  from pipeline import run_summary
  # pylint: enable=g-import-not-at-top
  try:
    store = run_summary.open_store(os.path.join(run_dir, configs.METADATA_FILE))
  except store_lib.StoreError as e:
    print(e, file=sys.stderr)
    return None
  summary = run_summary.latest_run(store, configs.PIPELINE_NAME)
  transform = summary.output_artifacts.get(configs.TRANSFORM_ID, {}) if summary else {}
  if not transform.get('transformed_examples') or not transform.get('transform_graph'):
    print(f'No Transform output is recorded under {run_dir}; run local_runner.py there first.', file=sys.stderr)
    return None
  examples = standard_artifacts.Examples()
  examples.uri = transform['transformed_examples'][0].uri
  examples.split_names = json.dumps(['train', 'eval'])
  data_accessor = fn_args_utils.DataAccessor(
      tf_dataset_factory=tfxio_utils.get_tf_dataset_factory_from_artifact([examples], []),
      record_batch_factory=None, data_view_decode_fn=None)
  return summary, tft.TFTransformOutput(transform['transform_graph'][0].uri), data_accessor, examples.uri


def raw_examples_uri(summary: Any) -> str:
  """The URI of the run's raw examples (ExampleGen's output); `split_files` gives a split's files."""
  return summary.output_artifacts[configs.EXAMPLE_GEN_ID]['examples'][0].uri


def split_files(examples_uri: str, split: str) -> list:
  """File patterns of one split ('train', 'eval') of the transformed examples at `examples_uri`."""
  return [os.path.join(examples_uri, f'Split-{split}', '*')]
