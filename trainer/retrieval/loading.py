"""Loads a retrieval SavedModel, registering ScaNN's ops first when the export holds a ScaNN index.

A ScaNN index (`index='scann'`) is saved with ops of the `Scann` namespace, which TensorFlow knows only once the
`scann` package is imported. The Trainer's process has imported it (TFRS builds the index with it); every other
process that loads the export — the retrieval gate in its own container, the in-process serving backend, the
benchmarks — goes through `load_retrieval_model`, which reads the graph's op names and imports `scann` only for
exports that need it (brute-force exports load with plain TensorFlow).
"""

from typing import Any, FrozenSet

from google.protobuf import message
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

# The op namespace ScaNN's index ops live in ('Scann>ScannSearchBatched', ...); saving such an index must allow it.
SCANN_OP_NAMESPACE = 'Scann'
SAVED_MODEL_FILE = 'saved_model.pb'


def scann_ops_of(export_dir: str) -> FrozenSet[str]:
  """The ScaNN ops (e.g. 'Scann>ScannSearchBatched') the SavedModel at `export_dir` uses; empty for none.

  Raises:
    OSError: naming the file, if `saved_model.pb` is not a SavedModel proto (truncated or corrupt), as
      `tf.saved_model.load` does.
  """
  saved_model = saved_model_pb2.SavedModel()
  path = f'{export_dir.rstrip("/")}/{SAVED_MODEL_FILE}'
  with tf.io.gfile.GFile(path, 'rb') as f:
    content = f.read()
  try:
    saved_model.ParseFromString(content)
  except message.DecodeError as e:
    raise OSError(f'Cannot parse file {path}: {e}; it is not a SavedModel (a truncated or corrupt export): '
                  're-export or re-push the model.') from e
  ops = set()
  for meta_graph in saved_model.meta_graphs:
    ops.update(node.op for node in meta_graph.graph_def.node)
    for function in meta_graph.graph_def.library.function:
      ops.update(node.op for node in function.node_def)
  return frozenset(op for op in ops if op.startswith(f'{SCANN_OP_NAMESPACE}>'))


def import_scann(why: str) -> None:
  """Imports `scann` (it registers its TensorFlow ops).

  Args:
    why: the ImportError's message if it is not installed: what needs it and the fix (the project's scann extra,
      or the brute-force index).

  Raises:
    ImportError: `why`, chained to the import's own error.
  """
  try:
    import scann  # pylint: disable=g-import-not-at-top,unused-import,import-outside-toplevel
  except ImportError as e:
    raise ImportError(why) from e


def load_retrieval_model(export_dir: str) -> Any:
  """`tf.saved_model.load(export_dir)`, after importing `scann` when the export uses its ops.

  Raises:
    OSError: if its saved_model.pb cannot be parsed (`scann_ops_of`).
    ImportError: if the export holds a ScaNN index and the `scann` package is not installed (the message names
      the extra to install, or the re-export that avoids it).
  """
  needed = scann_ops_of(export_dir)
  if needed:
    import_scann(f'The retrieval model at {export_dir} holds a ScaNN index (ops {sorted(needed)}); loading it needs '
                 "the `scann` package: install the project's scann extra (uv sync --extra scann), or re-train with "
                 '--retrieval-index brute_force.')
  return tf.saved_model.load(export_dir)
