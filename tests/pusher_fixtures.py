"""Model directories for the Pusher's tests."""

import os


def model_dir(root: str, name: str, weights: bytes, saved_model: bool = True) -> str:
  """A minimal SavedModel directory root/name: saved_model.pb (left out with `saved_model=False`: an incomplete
  export) and one variables shard holding `weights`."""
  path = os.path.join(root, name)
  os.makedirs(os.path.join(path, 'variables'))
  if saved_model:
    with open(os.path.join(path, 'saved_model.pb'), 'wb') as f:
      f.write(b'graph')
  with open(os.path.join(path, 'variables', 'variables.data-00000-of-00001'), 'wb') as f:
    f.write(weights)
  return path


def run_executor(root: str, name: str, weights: bytes, base: str, blessed: int = 1, saved_model: bool = True):
  """Runs ServingPusherExecutor on a model `name` (under `root`) holding `weights` (`model_dir`, with or without
  saved_model.pb), with a blessing `blessed` (1 or 0), to the destination `base`; returns its pushed_model
  artifact."""
  # pylint: disable=g-import-not-at-top  (TFX and TensorFlow: only the executor tests need them)
  from tfx.proto import pusher_pb2
  from tfx.types import standard_artifacts
  from tfx.utils import proto_utils

  from components import serving_pusher
  model = standard_artifacts.Model()
  model.uri = os.path.join(root, name)
  model_dir(model.uri, 'Format-Serving', weights, saved_model)
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = os.path.join(root, f'{name}-blessing')
  blessing.set_int_custom_property('blessed', blessed)
  pushed = standard_artifacts.PushedModel()
  pushed.uri = os.path.join(root, f'{name}-pushed')
  destination = pusher_pb2.PushDestination(filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=base))
  serving_pusher.ServingPusherExecutor().Do(
      {'model': [model], 'model_blessing': [blessing]}, {'pushed_model': [pushed]},
      {'push_destination': proto_utils.proto_to_json(destination)})
  return pushed
