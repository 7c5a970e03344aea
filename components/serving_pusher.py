"""ServingPusher: TFX's Pusher that never serves a half-written version and never pushes one model twice.

TFX's Pusher copies a blessed model straight into `<base_directory>/<unix time>/`. Two things go wrong with
that for a server polling the base directory:

* A reader can see the version directory while its files are still being copied. Here the model is copied
  into a hidden staging directory (`.staging-<version>`, which neither TF Serving nor `serving/` treats as a
  version) and renamed into place in one step once complete.
* An unchanged rerun of the pipeline re-evaluates the same model against itself (the resolver now returns it
  as the last blessed one), blesses it again and TFX's Pusher copies it as a new version. Here a model whose
  files are identical to the newest served version is recorded as pushed to that version instead. A model equal
  to an *older* version (a rollback) is pushed as a new version: servers serve the newest, so recording it as
  that old version would report a push that changes nothing.
"""

import hashlib
import os
import time
from typing import Any, Dict, List, Optional

from absl import logging
from tfx import types
from tfx.components.pusher import component as pusher_component
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

STAGING_PREFIX = '.staging-'


def model_fingerprint(model_dir: str) -> str:
  """sha256 over the relative paths and bytes of every file of a SavedModel directory."""
  digest = hashlib.sha256()
  for root, _, files in sorted(fileio.walk(model_dir)):
    for name in sorted(files):
      path = os.path.join(root, name)
      digest.update(os.path.relpath(path, model_dir).encode())
      with fileio.open(path, 'rb') as f:
        digest.update(f.read())
  return digest.hexdigest()


def served_versions(base_directory: str) -> List[int]:
  """The complete version directories under `base_directory` (numeric names), ascending."""
  if not fileio.exists(base_directory):
    return []
  return sorted(int(name.rstrip('/')) for name in fileio.listdir(base_directory) if name.rstrip('/').isdigit())


def find_served_copy(model_dir: str, base_directory: str) -> Optional[int]:
  """The newest served version if its files equal `model_dir`'s, else None (older versions are not served)."""
  versions = served_versions(base_directory)
  if not versions:
    return None
  newest = versions[-1]
  same = model_fingerprint(os.path.join(base_directory, str(newest))) == model_fingerprint(model_dir)
  return newest if same else None


def push_atomically(model_dir: str, base_directory: str) -> int:
  """Copies `model_dir` to a new version under `base_directory`, visible only once complete.

  The version is the current unix time in seconds, or one more than the newest served version if that is not
  older (so versions always increase).

  Returns:
    The new version number.
  """
  existing = served_versions(base_directory)
  version = max(int(time.time()), existing[-1] + 1 if existing else 0)
  staging = os.path.join(base_directory, f'{STAGING_PREFIX}{version}')
  final = os.path.join(base_directory, str(version))
  if fileio.exists(staging):
    fileio.rmtree(staging)
  io_utils.copy_dir(model_dir, staging)
  fileio.rename(staging, final)
  return version


class ServingPusherExecutor(pusher_executor.Executor):
  """Pusher executor with atomic, de-duplicated pushes to a filesystem destination."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    self._log_startup(input_dict, output_dict, exec_properties)
    model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
    if not self.CheckBlessing(input_dict):
      self._MarkNotPushed(model_push)
      return
    model_dir = self.GetModelPath(input_dict)
    push_destination = pusher_pb2.PushDestination()
    proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], push_destination)
    if push_destination.WhichOneof('destination') != 'filesystem':
      raise ValueError('ServingPusher pushes to a filesystem destination only; set '
                       'push_destination.filesystem.base_directory.')
    base_directory = push_destination.filesystem.base_directory
    version = find_served_copy(model_dir, base_directory)
    if version is not None:
      logging.info('This model is already served as version %s; not pushing it again.', version)
    else:
      version = push_atomically(model_dir, base_directory)
      logging.info('Model written to serving path %s.', os.path.join(base_directory, str(version)))
    io_utils.copy_dir(model_dir, model_push.uri)
    self._MarkPushed(model_push, pushed_destination=os.path.join(base_directory, str(version)),
                     pushed_version=str(version))


class ServingPusher(pusher_component.Pusher):
  """Pusher for TF Serving model directories; see the module docstring."""
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(ServingPusherExecutor)
