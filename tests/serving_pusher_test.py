"""ServingPusher: atomic version directories, no second copy of a served model, nothing pushed unblessed."""

import os

from tfx.types import standard_artifacts

from components import serving_pusher
from tfx.proto import pusher_pb2
from tfx.utils import proto_utils


def _model_dir(root, name: str, weights: bytes) -> str:
  path = os.path.join(root, name)
  os.makedirs(os.path.join(path, 'variables'))
  with open(os.path.join(path, 'saved_model.pb'), 'wb') as f:
    f.write(b'graph')
  with open(os.path.join(path, 'variables', 'variables.data-00000-of-00001'), 'wb') as f:
    f.write(weights)
  return path


def test_push_creates_complete_increasing_versions_and_no_staging_dir(tmp_path):
  base = str(tmp_path / 'serving' / 'ranking')
  first = serving_pusher.push_atomically(_model_dir(tmp_path, 'a', b'1'), base)
  second = serving_pusher.push_atomically(_model_dir(tmp_path, 'b', b'2'), base)
  assert second > first  # even within the same second
  assert sorted(os.listdir(base)) == sorted([str(first), str(second)])
  assert os.path.isfile(os.path.join(base, str(second), 'variables', 'variables.data-00000-of-00001'))


def test_a_model_identical_to_the_newest_served_version_is_found(tmp_path):
  base = str(tmp_path / 'serving')
  version = serving_pusher.push_atomically(_model_dir(tmp_path, 'a', b'weights'), base)
  assert serving_pusher.find_served_copy(_model_dir(tmp_path, 'same', b'weights'), base) == version
  assert serving_pusher.find_served_copy(_model_dir(tmp_path, 'other', b'other weights'), base) is None


def test_a_rollback_to_an_older_models_files_is_pushed_as_the_newest_version(tmp_path):
  base = str(tmp_path / 'serving')
  first = _run_executor(tmp_path, 1, 'a', b'weights-A', base)
  _run_executor(tmp_path, 1, 'b', b'weights-B', base)
  # A blessed again: before, it was recorded as pushed to A's old version while B stayed the newest (served).
  again = _run_executor(tmp_path, 1, 'a-again', b'weights-A', base)
  versions = serving_pusher.served_versions(base)
  assert len(versions) == 3
  assert again.get_string_custom_property('pushed_destination') == os.path.join(base, str(versions[-1]))
  assert again.get_string_custom_property('pushed_destination') != first.get_string_custom_property(
      'pushed_destination')
  with open(os.path.join(base, str(versions[-1]), 'variables', 'variables.data-00000-of-00001'), 'rb') as f:
    assert f.read() == b'weights-A'


def _run_executor(tmp_path, blessed: int, model_dir_name: str, weights: bytes, base: str):
  model = standard_artifacts.Model()
  model.uri = str(tmp_path / model_dir_name)
  _model_dir(model.uri, 'Format-Serving', weights)
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = str(tmp_path / f'{model_dir_name}-blessing')
  blessing.set_int_custom_property('blessed', blessed)
  pushed = standard_artifacts.PushedModel()
  pushed.uri = str(tmp_path / f'{model_dir_name}-pushed')
  destination = pusher_pb2.PushDestination(
      filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=base))
  serving_pusher.ServingPusherExecutor().Do(
      {'model': [model], 'model_blessing': [blessing]}, {'pushed_model': [pushed]},
      {'push_destination': proto_utils.proto_to_json(destination)})
  return pushed


def test_executor_pushes_blessed_once_and_skips_unblessed(tmp_path):
  base = str(tmp_path / 'serving')
  first = _run_executor(tmp_path, 1, 'm1', b'w1', base)
  assert first.get_int_custom_property('pushed') == 1
  versions = serving_pusher.served_versions(base)
  assert len(versions) == 1
  assert first.get_string_custom_property('pushed_destination') == os.path.join(base, str(versions[0]))

  again = _run_executor(tmp_path, 1, 'm1-again', b'w1', base)  # same files, blessed again
  assert again.get_int_custom_property('pushed') == 1
  assert serving_pusher.served_versions(base) == versions

  refused = _run_executor(tmp_path, 0, 'm2', b'w2', base)
  assert refused.get_int_custom_property('pushed') == 0
  assert serving_pusher.served_versions(base) == versions
