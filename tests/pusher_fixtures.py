"""Model directories for the Pusher's tests."""

import os


def model_dir(root: str, name: str, weights: bytes) -> str:
  """A minimal SavedModel directory root/name: saved_model.pb and one variables shard holding `weights`."""
  path = os.path.join(root, name)
  os.makedirs(os.path.join(path, 'variables'))
  with open(os.path.join(path, 'saved_model.pb'), 'wb') as f:
    f.write(b'graph')
  with open(os.path.join(path, 'variables', 'variables.data-00000-of-00001'), 'wb') as f:
    f.write(weights)
  return path
