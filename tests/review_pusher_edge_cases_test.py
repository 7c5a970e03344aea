"""ServingPusher edge cases: nothing published that no server counts complete, nowhere but the destination."""

import os
import re

import pytest
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from components import serving_pusher
from tests.pusher_fixtures import model_dir as _model_dir
from tests.pusher_fixtures import run_executor

VARIABLES = os.path.join('variables', 'variables.data-00000-of-00001')


@pytest.mark.parametrize('object_store', [False, True])
def test_a_model_without_saved_model_pb_is_refused_naming_it_and_the_served_version_stays(tmp_path, monkeypatch,
                                                                                           object_store):
  # Before, the copy was published as a version holding only variables/: reported pushed, never counted complete
  # (servers skip it, TF Serving fails to load it), and on an object store removed by a later push's housekeeping.
  if object_store:
    monkeypatch.setattr(serving_pusher, '_is_local', lambda path: False)
  base = str(tmp_path / 'serving')
  served = run_executor(str(tmp_path), 'good', b'w1', base).get_string_custom_property('pushed_version')
  model = os.path.join(str(tmp_path), 'bad', 'Format-Serving')
  with pytest.raises(ValueError, match=rf'^{re.escape(model)} holds no saved_model.pb, so it is no SavedModel '):
    run_executor(str(tmp_path), 'bad', b'w2', base, saved_model=False)
  assert os.listdir(base) == [served]
  assert serving_pusher.served_versions(base) == [int(served)]
  missing = str(tmp_path / 'nothing here')
  with pytest.raises(ValueError, match=rf'^{re.escape(missing)} holds no saved_model.pb'):
    serving_pusher.push_atomically(missing, base)
  assert os.listdir(base) == [served]


def test_an_empty_base_directory_is_refused_and_nothing_is_written_to_the_working_directory(tmp_path, monkeypatch):
  # Before, '' joined to '.staging-<v>' and '<v>' put the version into whatever directory the executor ran in.
  monkeypatch.chdir(tmp_path)
  with pytest.raises(ValueError, match=r'^push_destination\.filesystem\.base_directory is empty, so the model '):
    run_executor(str(tmp_path), 'm', b'w', '')
  assert os.listdir(tmp_path) == ['m']  # the model artifact alone: no version, no staging directory


@pytest.mark.parametrize('blessings', [{}, {'model_blessing': []}])
def test_a_model_with_no_blessing_input_is_refused_and_the_served_version_stays(tmp_path, blessings):
  # TFX's CheckBlessing answers True when there is no blessing at all ("push without validation"): before, such a
  # model was pushed as the newest version.
  base = str(tmp_path / 'serving')
  served = run_executor(str(tmp_path), 'good', b'w1', base).get_string_custom_property('pushed_version')
  model = standard_artifacts.Model()
  model.uri = str(tmp_path / 'unblessed')
  _model_dir(model.uri, 'Format-Serving', b'w2')
  pushed = standard_artifacts.PushedModel()
  pushed.uri = str(tmp_path / 'unblessed-pushed')
  destination = pusher_pb2.PushDestination(filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=base))
  with pytest.raises(ValueError, match=r'^ServingPusher got no model_blessing nor infra_blessing artifact, so '
                                       rf'nothing says the model {re.escape(model.uri)}/Format-Serving may be served'):
    serving_pusher.ServingPusherExecutor().Do(
        {'model': [model], **blessings}, {'pushed_model': [pushed]},
        {'push_destination': proto_utils.proto_to_json(destination)})
  assert os.listdir(base) == [served]
  assert not pushed.has_custom_property('pushed')


def test_a_version_another_writer_makes_during_the_copy_is_left_alone_and_the_error_names_both_paths(tmp_path,
                                                                                                    monkeypatch):
  # Clock at 2000000000 and nothing served: the push claims .staging-2000000000; while it copies, another writer
  # (e.g. TFX's own Pusher) makes 2000000000/. The rename onto it is refused; before, the error was TF's
  # 'AlreadyExistsError: file already exists', naming neither directory.
  monkeypatch.setattr(serving_pusher.time, 'time', lambda: 2_000_000_000.0)
  base = str(tmp_path / 'serving')
  real_copy_into = serving_pusher._copy_into

  def copy_then_other_writer(src: str, dst: str) -> None:
    real_copy_into(src, dst)
    _model_dir(base, '2000000000', b'other writer')

  monkeypatch.setattr(serving_pusher, '_copy_into', copy_then_other_writer)
  final, staging = os.path.join(base, '2000000000'), os.path.join(base, '.staging-2000000000')
  with pytest.raises(FileExistsError, match=rf'^{re.escape(final)} was made by another writer while this push '
                                            rf'copied the model into {re.escape(staging)}; nothing was renamed'):
    serving_pusher.push_atomically(_model_dir(str(tmp_path), 'm', b'mine'), base)
  with open(os.path.join(final, VARIABLES), 'rb') as f:
    assert f.read() == b'other writer'
  with open(os.path.join(staging, VARIABLES), 'rb') as f:
    assert f.read() == b'mine'
