"""ServingPusher: atomic version directories, no second copy of a served model, nothing pushed unblessed."""

import hashlib
import os
import re
import shutil
import threading
import time
import types
from typing import Callable, Optional

import pytest
import tensorflow as tf
from tfx.types import channel as channel_types
from tfx.types import standard_artifacts

from components import serving_pusher
from tfx.proto import pusher_pb2
from tfx.utils import proto_utils

from tests import pipeline_runs
from tests.pusher_fixtures import model_dir as _model_dir
from tests.pusher_fixtures import run_executor


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


def test_the_newest_served_version_is_found_from_the_newest_name_down(tmp_path, monkeypatch):
  base = str(tmp_path / 'serving')
  for name in ('5', '40'):
    _model_dir(base, name, b'weights')
  os.makedirs(os.path.join(base, '300', 'variables'))  # interrupted: no saved_model.pb
  checked = []
  real_exists = serving_pusher.fileio.exists
  monkeypatch.setattr(serving_pusher.fileio, 'exists', lambda path: checked.append(path) or real_exists(path))
  # By number ('5' > '40' > '300' as text); 300 is not complete, 40 is, and 5 is never looked at.
  assert serving_pusher.newest_served_version(base) == 40
  assert checked == [base] + [os.path.join(base, name, 'saved_model.pb') for name in ('300', '40')]
  assert serving_pusher.newest_served_version(str(tmp_path / 'nowhere')) is None


def test_a_directory_named_with_a_non_ascii_digit_is_no_version_and_breaks_no_push(tmp_path, monkeypatch):
  # '²'.isdigit() is True but int('²') raises: before, such a name made every push (and its housekeeping) raise.
  monkeypatch.setattr(serving_pusher, '_is_local', lambda path: False)
  _undated_directories(monkeypatch)
  base = str(tmp_path / 'serving')
  for name in ('²', '.staging-²'):
    os.makedirs(os.path.join(base, name))
  assert serving_pusher.newest_served_version(base) is None
  assert serving_pusher.remove_abandoned_pushes(base) == []  # undated and no number: kept
  monkeypatch.setattr(serving_pusher.fileio, 'rename', _object_store_rename())
  version = serving_pusher.push_atomically(_model_dir(tmp_path, 'm', b'weights'), base)
  assert serving_pusher.served_versions(base) == [version]
  assert sorted(os.listdir(base)) == sorted(['²', '.staging-²', str(version)])


def _file_record(relpath: bytes, contents: bytes) -> bytes:
  """One file's part of the fingerprint: its relative path, NUL, the sha256 of its bytes."""
  return relpath + b'\0' + hashlib.sha256(contents).digest()


def test_the_fingerprint_hashes_each_files_relative_path_then_its_digest_in_path_order(tmp_path):
  # sha256 over (relpath, NUL, sha256 of the bytes) per file, directories in path order and files by name; the
  # empty assets/ adds nothing.
  model = _model_dir(tmp_path, 'm', b'w')
  with open(os.path.join(model, 'fingerprint.pb'), 'wb') as f:
    f.write(b'fp')
  with open(os.path.join(model, 'variables', 'variables.index'), 'wb') as f:
    f.write(b'idx')
  os.makedirs(os.path.join(model, 'assets'))
  expected = hashlib.sha256(_file_record(b'fingerprint.pb', b'fp') + _file_record(b'saved_model.pb', b'graph')
                            + _file_record(b'variables/variables.data-00000-of-00001', b'w')
                            + _file_record(b'variables/variables.index', b'idx'))
  assert serving_pusher.model_fingerprint(model) == expected.hexdigest()


def test_the_fingerprint_reads_a_file_larger_than_the_chunk_in_chunks_with_the_same_digest(tmp_path, monkeypatch):
  # A 2.5 MiB + 256 B file: read 1 MiB at a time (1 MiB, 1 MiB, 0.5 MiB + 256 B, then a read returning nothing),
  # never whole (read() with no size), and hashed as its whole bytes are.
  assert serving_pusher.FINGERPRINT_CHUNK_BYTES == 1 << 20
  model = os.path.join(tmp_path, 'big')
  os.makedirs(model)
  weights = bytes(range(256)) * (10 * 1024 + 1)
  assert len(weights) == 5 * (1 << 19) + 256
  with open(os.path.join(model, 'saved_model.pb'), 'wb') as f:
    f.write(weights)
  real_open, reads = serving_pusher.fileio.open, []

  class RecordingFile:
    """A file of `fileio.open` recording the size of every read."""

    def __init__(self, path: str, mode: str) -> None:
      self._file = real_open(path, mode)

    def __enter__(self) -> 'RecordingFile':
      return self

    def __exit__(self, *exc_info) -> None:
      self._file.close()

    def read(self, n: int = -1) -> bytes:
      reads.append(n)
      return self._file.read(n)

  monkeypatch.setattr(serving_pusher.fileio, 'open', RecordingFile)
  expected = hashlib.sha256(_file_record(b'saved_model.pb', weights)).hexdigest()
  assert serving_pusher.model_fingerprint(model) == expected
  assert reads == [1 << 20] * 4


def test_models_whose_paths_and_bytes_concatenate_alike_have_different_fingerprints(tmp_path):
  # {x: '1', y: '2'} and {x: '1y2'} both read 'x1y2' as path + bytes back to back; bytes moved between a path
  # and the contents ({a: 'bc'} and {ab: 'c'}) too. Each is a different model, so neither may be taken for a
  # served copy of the other (the push would be skipped).
  def model(name: str, files: dict) -> str:
    path = os.path.join(tmp_path, name)
    os.makedirs(path)
    for relpath, contents in files.items():
      with open(os.path.join(path, relpath), 'wb') as f:
        f.write(contents)
    return path

  assert (serving_pusher.model_fingerprint(model('two', {'x': b'1', 'y': b'2'}))
          != serving_pusher.model_fingerprint(model('one', {'x': b'1y2'})))
  assert (serving_pusher.model_fingerprint(model('a', {'a': b'bc'}))
          != serving_pusher.model_fingerprint(model('ab', {'ab': b'c'})))


def test_a_rollback_to_an_older_models_files_is_pushed_as_the_newest_version(tmp_path):
  base = str(tmp_path / 'serving')
  first = run_executor(str(tmp_path), 'a', b'weights-A', base, blessed=1)
  run_executor(str(tmp_path), 'b', b'weights-B', base, blessed=1)
  # A blessed again: before, it was recorded as pushed to A's old version while B stayed the newest (served).
  again = run_executor(str(tmp_path), 'a-again', b'weights-A', base, blessed=1)
  versions = serving_pusher.served_versions(base)
  assert len(versions) == 3
  assert again.get_string_custom_property('pushed_destination') == os.path.join(base, str(versions[-1]))
  assert again.get_string_custom_property('pushed_destination') != first.get_string_custom_property(
      'pushed_destination')
  assert again.get_int_custom_property('already_served') == 0  # copied anew, not found already served
  with open(os.path.join(base, str(versions[-1]), 'variables', 'variables.data-00000-of-00001'), 'rb') as f:
    assert f.read() == b'weights-A'


def test_executor_pushes_blessed_once_and_skips_unblessed(tmp_path):
  base = str(tmp_path / 'serving')
  first = run_executor(str(tmp_path), 'm1', b'w1', base, blessed=1)
  assert first.get_int_custom_property('pushed') == 1
  versions = serving_pusher.served_versions(base)
  assert len(versions) == 1
  assert first.get_string_custom_property('pushed_destination') == os.path.join(base, str(versions[0]))

  again = run_executor(str(tmp_path), 'm1-again', b'w1', base, blessed=1)  # same files, blessed again
  assert again.get_int_custom_property('pushed') == 1
  assert serving_pusher.served_versions(base) == versions

  refused = run_executor(str(tmp_path), 'm2', b'w2', base, blessed=0)
  assert refused.get_int_custom_property('pushed') == 0
  assert serving_pusher.served_versions(base) == versions


def test_an_unchanged_rerun_records_the_model_served_and_that_it_found_it_already_served(tmp_path):
  # Before, the rerun's artifact was the first push's to the letter (pushed=1 and the same destination): the run
  # report said 'pushed to', the HTML report 'pushed by this run' and the lineage of the version began at the rerun.
  from components import push_reasons  # pylint: disable=g-import-not-at-top
  base = str(tmp_path / 'serving')
  first = run_executor(str(tmp_path), 'm1', b'w1', base, blessed=1)
  [version] = serving_pusher.served_versions(base)
  again = run_executor(str(tmp_path), 'm1-again', b'w1', base, blessed=1)
  assert serving_pusher.served_versions(base) == [version]  # nothing copied
  destination = os.path.join(base, str(version))
  for pushed, already_served in ((first, 0), (again, 1)):
    # pushed=1 for both: the model is served, which is what TFX's readers of `pushed` ask.
    assert pushed.get_int_custom_property('pushed') == 1
    assert pushed.get_string_custom_property('pushed_destination') == destination
    assert pushed.get_string_custom_property('pushed_version') == str(version)
    assert pushed.get_int_custom_property(push_reasons.ALREADY_SERVED_KEY) == already_served
    assert not pushed.has_custom_property(push_reasons.NOT_PUSHED_REASON_KEY)
  # A model not blessed was not pushed at all: it records why (not_pushed_reason), not this.
  refused = run_executor(str(tmp_path), 'm2', b'w2', base, blessed=0)
  assert not refused.has_custom_property(push_reasons.ALREADY_SERVED_KEY)


def test_the_run_report_says_an_unchanged_rerun_found_the_model_already_served(tmp_path):
  from pipeline import configs, run_report, run_summary  # pylint: disable=g-import-not-at-top
  base = str(tmp_path / 'serving' / 'ranking')
  lines = []
  for name in ('m1', 'm1-again'):
    pushed = run_executor(str(tmp_path), name, b'w1', base, blessed=1)
    summary = run_summary.RunSummary(run_id=name, components=[], output_artifacts={
        configs.RANKING_PUSHER_ID: {'pushed_model': [pushed.mlmd_artifact]}})
    lines += run_report._push_lines(summary, configs.RANKING_PUSHER_ID, 'Ranking')  # pylint: disable=protected-access
  [version] = serving_pusher.served_versions(base)
  assert lines == [f'Ranking model pushed to {base}/{version}',
                   f'Ranking model already served as version {version} (unchanged since an earlier run; not copied '
                   'again)']


# --- staging directories left by pushes that died mid-copy -----------------------------------------------------

HOUR_S = 3600.0


def _backdate(path: str, seconds: float) -> None:
  """Sets the modification time of `path` and everything under it to `seconds` ago."""
  when = time.time() - seconds
  for root, dirs, files in os.walk(path, topdown=False):
    for name in dirs + files:
      os.utime(os.path.join(root, name), (when, when))
  os.utime(path, (when, when))


def _staging(base: str, version: int, weights: bytes = b'partial') -> str:
  """A `.staging-<version>` copy, as a push leaves it (here: all of it, with fresh modification times)."""
  return _model_dir(base, f'{serving_pusher.STAGING_PREFIX}{version}', weights)


def test_a_push_removes_staging_dirs_abandoned_for_longer_than_the_age_and_keeps_the_rest(tmp_path, caplog):
  base = str(tmp_path / 'serving')
  os.makedirs(base)
  # Version 100: complete, untouched for two hours (the oldest thing here, and never removed).
  _backdate(_model_dir(base, '100', b'served'), 2 * HOUR_S)
  # Left by pushes that died two hours ago: a copy with files, and one that died right after creating its dir.
  _backdate(_staging(base, 200), 2 * HOUR_S)
  os.makedirs(os.path.join(base, '.staging-250'))
  _backdate(os.path.join(base, '.staging-250'), 2 * HOUR_S)
  # A push copying now: started two hours ago, but its variables file was written a minute ago.
  in_progress = _staging(base, 300)
  _backdate(in_progress, 2 * HOUR_S)
  os.utime(os.path.join(in_progress, 'variables', 'variables.data-00000-of-00001'),
           (time.time() - 60,) * 2)
  # Not the pusher's: an old directory and an old file named like staging copies are left alone too.
  os.makedirs(os.path.join(base, 'notes'))
  _backdate(os.path.join(base, 'notes'), 2 * HOUR_S)
  with open(os.path.join(base, '.staging-400'), 'wb') as f:
    f.write(b'not a directory')
  _backdate(os.path.join(base, '.staging-400'), 2 * HOUR_S)

  with caplog.at_level('INFO', logger='absl'):  # absl's own level: tf.saved_model.save sets it to WARNING
    version = serving_pusher.push_atomically(_model_dir(tmp_path, 'new', b'new'), base)
  assert sorted(os.listdir(base)) == sorted(['100', '.staging-300', 'notes', '.staging-400', str(version)])
  with open(os.path.join(base, '100', 'variables', 'variables.data-00000-of-00001'), 'rb') as f:
    assert f.read() == b'served'
  removed = [r.getMessage() for r in caplog.records if 'abandoned staging directory' in r.getMessage()]
  assert len(removed) == 2 and all(r.levelname == 'INFO' for r in caplog.records if r.getMessage() in removed)
  assert {os.path.join(base, '.staging-200'), os.path.join(base, '.staging-250')} == {
      next(word for word in m.split() if word.startswith(base)).rstrip(':,') for m in removed}


def test_a_staging_dir_younger_than_the_age_is_kept_and_an_older_one_removed(tmp_path):
  base = str(tmp_path / 'serving')
  os.makedirs(base)
  _backdate(_staging(base, 10), 50)
  _backdate(_staging(base, 20), 70)
  assert serving_pusher.remove_abandoned_pushes(base, max_age_s=60) == [os.path.join(base, '.staging-20')]
  assert os.listdir(base) == ['.staging-10']
  assert serving_pusher.remove_abandoned_pushes(str(tmp_path / 'nothing pushed yet')) == []


def test_a_push_never_takes_over_the_staging_dir_of_a_push_copying_the_same_version(tmp_path):
  # The newest version is in the future, so the next one is known: newest + 1. Another push is copying that
  # version right now (its staging dir is fresh): this push uses the version after it and leaves its copy alone.
  base = str(tmp_path / 'serving')
  newest = 4_000_000_000
  _model_dir(base, str(newest), b'served')
  other = _staging(base, newest + 1, b'the other push')
  version = serving_pusher.push_atomically(_model_dir(tmp_path, 'new', b'new'), base)
  assert version == newest + 2
  assert sorted(os.listdir(base)) == sorted([str(newest), f'.staging-{newest + 1}', str(newest + 2)])
  with open(os.path.join(other, 'variables', 'variables.data-00000-of-00001'), 'rb') as f:
    assert f.read() == b'the other push'


def test_an_unchanged_rerun_that_pushes_nothing_still_removes_abandoned_staging_dirs(tmp_path):
  base = str(tmp_path / 'serving')
  run_executor(str(tmp_path), 'm1', b'w1', base, blessed=1)
  versions = serving_pusher.served_versions(base)
  _backdate(_staging(base, 5), 2 * HOUR_S)
  run_executor(str(tmp_path), 'm1-again', b'w1', base, blessed=1)  # the same model: nothing pushed
  assert sorted(os.listdir(base)) == [str(v) for v in versions]


# --- two pushes choosing their version at the same moment ---------------------------------------------------------

NOW_S = 2_000_000_000.0  # both pushes start in this second: each first tries version 2000000000


def _files(version_dir: str) -> dict:
  """relative path -> bytes of every file under `version_dir`."""
  found = {}
  for root, _, files in os.walk(version_dir):
    for name in files:
      with open(os.path.join(root, name), 'rb') as f:
        found[os.path.relpath(os.path.join(root, name), version_dir)] = f.read()
  return found


def _dirs(root_dir: str) -> set:
  """The relative paths of every directory under `root_dir`."""
  return {os.path.relpath(os.path.join(root, name), root_dir) for root, dirs, _ in os.walk(root_dir)
          for name in dirs}


class PushDied(Exception):
  """The pushing process was killed (raised by `_object_store_rename` in its place)."""


def _object_store_rename(observe: Callable[[], None] = lambda: None,
                         files_before_dying: Optional[int] = None) -> Callable[..., None]:
  """A `fileio.rename` as an object store does one, on the local disk: a directory object by object in listing
  (lexicographic) order, each object moved on its own.

  Args:
    observe: called after each file moved.
    files_before_dying: if set, the push dies (PushDied) instead of moving one more file than this.
  """
  moved = []

  def rename(src: str, dst: str, overwrite: bool = False) -> None:
    del overwrite  # os.rename replaces a file as an object store's rename does
    moves = [(src, dst)]
    if os.path.isdir(src):
      moves = sorted((os.path.join(root, name), os.path.join(dst, os.path.relpath(os.path.join(root, name), src)))
                     for root, _, files in os.walk(src) for name in files)
    for old, new in moves:
      if files_before_dying is not None and len(moved) == files_before_dying:
        raise PushDied(f'killed after moving {moved}')
      os.makedirs(os.path.dirname(new), exist_ok=True)
      os.rename(old, new)
      moved.append(new)
      observe()
    if os.path.isdir(src):
      shutil.rmtree(src)

  return rename


def test_two_pushes_checking_the_same_version_at_once_take_two_versions(tmp_path, monkeypatch):
  # Every existence check and file copy takes 50 ms (an object store's latency, here on a local disk), and the two
  # pushes start together: both find version 2000000000 free before either has created its staging dir. Checked
  # then created, both copied into .staging-2000000000 and one failed (AlreadyExistsError) or removed the other's
  # files; claimed with one exclusive mkdir, the second takes 2000000001.
  base = str(tmp_path / 'serving')
  models = {'A': _model_dir(tmp_path, 'a', b'weights-A'), 'B': _model_dir(tmp_path, 'b', b'weights-B')}
  real_exists, real_copy = serving_pusher.fileio.exists, serving_pusher.fileio.copy
  monkeypatch.setattr(serving_pusher.fileio, 'exists', lambda path: time.sleep(0.05) or real_exists(path))
  monkeypatch.setattr(serving_pusher.fileio, 'copy',
                      lambda src, dst, overwrite=False: time.sleep(0.05) or real_copy(src, dst, overwrite))
  monkeypatch.setattr(serving_pusher.time, 'time', lambda: NOW_S)
  start, versions = threading.Barrier(2), {}

  def push(name: str) -> None:
    start.wait(5)
    versions[name] = serving_pusher.push_atomically(models[name], base)

  threads = [threading.Thread(target=push, args=(name,)) for name in models]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join(30)
  assert sorted(versions.values()) == [2_000_000_000, 2_000_000_001]
  assert sorted(os.listdir(base)) == ['2000000000', '2000000001']
  for name, version in versions.items():
    assert _files(os.path.join(base, str(version))) == {
        'saved_model.pb': b'graph',
        os.path.join('variables', 'variables.data-00000-of-00001'): f'weights-{name}'.encode()}


def test_a_push_whose_version_is_renamed_into_place_before_its_claim_takes_the_next(tmp_path, monkeypatch):
  # Push B finds 2000000000 free; before it claims .staging-2000000000, push A claims, copies and renames that
  # version into place (its staging dir is gone again). B's claim then succeeds, so B checks the version once more,
  # gives the claim back and takes 2000000001 instead of renaming onto A's version.
  base = str(tmp_path / 'serving')
  os.makedirs(base)
  model_a, model_b = _model_dir(tmp_path, 'a', b'weights-A'), _model_dir(tmp_path, 'b', b'weights-B')
  monkeypatch.setattr(serving_pusher.time, 'time', lambda: NOW_S)
  real_claim, pushed_by_a = serving_pusher._claim_dir, []

  def claim_after_a(path: str) -> bool:
    if not pushed_by_a:  # B's first claim: A's whole push runs first (its own claims are the real ones)
      monkeypatch.setattr(serving_pusher, '_claim_dir', real_claim)
      pushed_by_a.append(serving_pusher.push_atomically(model_a, base))
      monkeypatch.setattr(serving_pusher, '_claim_dir', claim_after_a)
    return real_claim(path)

  monkeypatch.setattr(serving_pusher, '_claim_dir', claim_after_a)
  assert serving_pusher.push_atomically(model_b, base) == 2_000_000_001
  assert pushed_by_a == [2_000_000_000]
  assert sorted(os.listdir(base)) == ['2000000000', '2000000001']
  assert _files(os.path.join(base, '2000000000'))[os.path.join('variables', 'variables.data-00000-of-00001')] == (
      b'weights-A')
  assert _files(os.path.join(base, '2000000001'))[os.path.join('variables', 'variables.data-00000-of-00001')] == (
      b'weights-B')


def test_on_an_object_store_a_version_has_its_saved_model_pb_only_once_every_other_file_is_in_place(
    tmp_path, monkeypatch):
  # An object store (gs://) renames a directory object by object, in listing (lexicographic) order: saved_model.pb
  # before variables/. Renamed as one directory, the version held saved_model.pb, which is what serving/ counts a
  # version complete by, while its variables were still missing: the service loaded it, failed, and skipped that
  # good version until a newer push. Here the local disk stands in for the object store's renames.
  base = str(tmp_path / 'serving')
  model = _model_dir(tmp_path, 'a', b'weights-A')
  with open(os.path.join(model, 'fingerprint.pb'), 'wb') as f:
    f.write(b'fp')
  half_seen = []

  def observe() -> None:
    for name in os.listdir(base):
      version = os.path.join(base, name)
      if name.isdigit() and os.path.isfile(os.path.join(version, 'saved_model.pb')) and (
          _files(version) != _files(model)):
        half_seen.append(sorted(_files(version)))

  monkeypatch.setattr(serving_pusher, '_is_local', lambda path: False)
  monkeypatch.setattr(serving_pusher.fileio, 'rename', _object_store_rename(observe))
  version = serving_pusher.push_atomically(model, base)
  assert half_seen == []
  assert os.listdir(base) == [str(version)]
  assert _files(os.path.join(base, str(version))) == _files(model)


def test_on_an_object_store_every_directory_of_the_model_is_in_the_version_before_its_saved_model_pb(
    tmp_path, monkeypatch):
  # An object store moves files; directories are only prefixes of their names. Moving the files alone left the
  # empty assets/ (a SavedModel without assets has one) and the empty assets.extra/empty/ out of the version.
  base = str(tmp_path / 'serving')
  model = _model_dir(tmp_path, 'a', b'weights-A')
  os.makedirs(os.path.join(model, 'assets'))
  os.makedirs(os.path.join(model, 'assets.extra', 'empty'))
  dirs_once_complete = []

  def observe() -> None:
    for name in os.listdir(base):
      version = os.path.join(base, name)
      if name.isdigit() and os.path.isfile(os.path.join(version, 'saved_model.pb')):
        dirs_once_complete.append(_dirs(version))

  monkeypatch.setattr(serving_pusher, '_is_local', lambda path: False)
  monkeypatch.setattr(serving_pusher.fileio, 'rename', _object_store_rename(observe))
  version = serving_pusher.push_atomically(model, base)
  # saved_model.pb is the last file moved, so the version is seen complete once, and then holds every directory.
  assert dirs_once_complete == [{'assets', 'assets.extra', os.path.join('assets.extra', 'empty'), 'variables'}]
  assert os.listdir(base) == [str(version)]
  assert _files(os.path.join(base, str(version))) == _files(model)


def test_on_an_object_store_a_push_whose_emptied_staging_dir_cannot_be_removed_still_succeeds(tmp_path, monkeypatch,
                                                                                               caplog):
  # Every file is already in the version when removing the emptied staging directory fails: the version is complete
  # and may be served, so the push returns it (a failed push would record no push of a served version).
  base = str(tmp_path / 'serving')
  model = _model_dir(tmp_path, 'm', b'weights')
  real_rmtree = serving_pusher.fileio.rmtree

  def rmtree(path: str) -> None:
    if os.path.basename(path.rstrip('/')).startswith(serving_pusher.STAGING_PREFIX):
      raise tf.errors.PermissionDeniedError(None, None, 'delete denied')
    real_rmtree(path)

  monkeypatch.setattr(serving_pusher, '_is_local', lambda path: False)
  monkeypatch.setattr(serving_pusher.fileio, 'rename', _object_store_rename())
  monkeypatch.setattr(serving_pusher.fileio, 'rmtree', rmtree)
  with caplog.at_level('WARNING', logger='absl'):
    version = serving_pusher.push_atomically(model, base)
  assert serving_pusher.served_versions(base) == [version]
  assert _files(os.path.join(base, str(version))) == _files(model)
  staging = os.path.join(base, f'.staging-{version}')
  assert [f for _, _, files in os.walk(staging) for f in files] == []  # only directories are left
  assert f'Version {os.path.join(base, str(version))} is complete, but its emptied staging directory {staging}' \
         in caplog.text
  assert 'PermissionDeniedError: delete denied' in caplog.text


# --- versions left without saved_model.pb by pushes that died mid-rename (object store) ---------------------------

VARIABLES = os.path.join('variables', 'variables.data-00000-of-00001')


def _clock(monkeypatch, now_s: float) -> list:
  """Fixes `time.time()` at `now_s`; set `[0]` of the returned list to move it."""
  clock = [now_s]
  monkeypatch.setattr(serving_pusher.time, 'time', lambda: clock[0])
  return clock


def _interrupted(base: str, version: int, weights: bytes = b'renamed') -> str:
  """`<base>/<version>/` as a push that died mid-rename leaves it: its variables, no saved_model.pb."""
  path = os.path.join(base, str(version))
  os.makedirs(os.path.join(path, 'variables'))
  with open(os.path.join(path, VARIABLES), 'wb') as f:
    f.write(weights)
  return path


def test_a_push_removes_the_version_and_staging_dir_a_push_that_died_mid_rename_left_two_hours_ago(
    tmp_path, monkeypatch, caplog):
  # Two hours ago (clock at NOW - 7200 s) A was pushed as V = NOW - 7200, then B's push (V + 1) died after moving
  # its first file, variables/...: <V+1>/ holds B's variables, .staging-<V+1>/ its saved_model.pb. TF Serving kept
  # failing to load <V+1>/, and find_served_copy fingerprinted it as the newest version, so A counted as not served.
  # Now (clock at NOW) nothing in either has changed for 7200 s > 3600 s: the next push removes both, logging each,
  # and takes NOW (its clock; V + 1 is never taken again).
  now = float(int(time.time()))
  v = int(now) - 7200
  base = str(tmp_path / 'serving')
  clock = _clock(monkeypatch, now - 7200)
  monkeypatch.setattr(serving_pusher, '_is_local', lambda path: False)
  monkeypatch.setattr(serving_pusher.fileio, 'rename', _object_store_rename())
  assert serving_pusher.push_atomically(_model_dir(tmp_path, 'a', b'weights-A'), base) == v
  monkeypatch.setattr(serving_pusher.fileio, 'rename', _object_store_rename(files_before_dying=1))
  with pytest.raises(PushDied):
    serving_pusher.push_atomically(_model_dir(tmp_path, 'b', b'weights-B'), base)
  assert sorted(os.listdir(base)) == sorted([str(v), str(v + 1), f'.staging-{v + 1}'])
  assert _files(os.path.join(base, str(v + 1))) == {VARIABLES: b'weights-B'}
  assert _files(os.path.join(base, f'.staging-{v + 1}')) == {'saved_model.pb': b'graph'}
  assert serving_pusher.served_versions(base) == [v]
  assert serving_pusher.find_served_copy(_model_dir(tmp_path, 'a-again', b'weights-A'), base) == v

  clock[0] = now
  _backdate(base, 7200)
  monkeypatch.setattr(serving_pusher.fileio, 'rename', _object_store_rename())
  with caplog.at_level('INFO', logger='absl'):
    assert serving_pusher.push_atomically(_model_dir(tmp_path, 'c', b'weights-C'), base) == int(now)
  assert sorted(os.listdir(base)) == sorted([str(v), str(int(now))])
  assert _files(os.path.join(base, str(int(now)))) == {'saved_model.pb': b'graph', VARIABLES: b'weights-C'}
  removals = [(r.levelname, r.getMessage()) for r in caplog.records if r.getMessage().startswith('Removed ')]
  assert [(level, message.split(' (')[0]) for level, message in removals] == [
      ('INFO', f'Removed interrupted version {base}/{v + 1}: no saved_model.pb and nothing in it nor in its staging '
               'directory modified for 7200 s'),
      ('INFO', f'Removed abandoned staging directory {base}/.staging-{v + 1}: nothing in it nor in its interrupted '
               'version modified for 7200 s')]


def test_an_interrupted_version_is_removed_only_once_neither_it_nor_its_staging_dir_changed_for_the_age(tmp_path,
                                                                                                        monkeypatch):
  # Old numbers (far behind the clock), all untouched for two hours except where said; an object store.
  monkeypatch.setattr(serving_pusher, '_is_local', lambda path: False)
  base = str(tmp_path / 'serving')
  _model_dir(base, '100', b'served')  # complete: never removed
  # Being renamed now: its variables moved (and so modified) a minute ago, the rest of the copy still in its
  # staging dir, untouched for two hours: both kept (on its own the staging dir looked abandoned).
  renaming = _interrupted(base, 300)
  staging_300 = _staging(base, 300)
  os.remove(os.path.join(staging_300, VARIABLES))
  _interrupted(base, 320)  # its staging dir is gone (removed alone, as abandoned, before interrupted versions were)
  _interrupted(base, 330)
  os.remove(os.path.join(base, '330', VARIABLES))  # died after creating the directories, before moving a file
  _staging(base, 330)
  with open(os.path.join(base, '400'), 'wb') as f:  # a file with a version's name: not a version
    f.write(b'not a directory')
  _backdate(base, 2 * HOUR_S)
  os.utime(os.path.join(renaming, VARIABLES), (time.time() - 60,) * 2)

  assert serving_pusher.remove_abandoned_pushes(base) == sorted(
      os.path.join(base, name) for name in ('320', '330', '.staging-330'))
  assert sorted(os.listdir(base)) == sorted(['100', '300', '.staging-300', '400'])
  assert _files(os.path.join(base, '300')) == {VARIABLES: b'renamed'}
  assert _files(os.path.join(base, '.staging-300')) == {'saved_model.pb': b'graph'}
  # The same rule the other way round: the version untouched for two hours, its staging dir a minute ago.
  _interrupted(base, 340)
  staging_340 = _staging(base, 340)
  _backdate(os.path.join(base, '340'), 2 * HOUR_S)
  _backdate(staging_340, 60)
  assert serving_pusher.remove_abandoned_pushes(base) == []


def _undated_directories(monkeypatch) -> None:
  """Makes `fileio.stat` answer for a directory as TF's gs:// filesystem does: no modification time (0)."""
  real_stat = serving_pusher.fileio.stat
  monkeypatch.setattr(serving_pusher.fileio, 'stat',
                      lambda path: types.SimpleNamespace(mtime_nsec=0) if os.path.isdir(path) else real_stat(path))


def test_on_an_object_store_a_dead_push_that_left_only_empty_directories_is_judged_by_its_number(tmp_path,
                                                                                                  monkeypatch):
  # Directories without a time of their own and no file in them: before, nothing here had a time, so every one of
  # these stayed for ever. Now they count as made before the clock read their number + 1.
  monkeypatch.setattr(serving_pusher, '_is_local', lambda path: False)
  _undated_directories(monkeypatch)
  now = float(int(time.time()))
  _clock(monkeypatch, now)
  base = str(tmp_path / 'serving')
  _model_dir(base, '100', b'served')  # complete: never removed
  died = int(now) - 7200  # claimed two hours ago, died before its first file: 7199 s > 3600 s
  copying = int(now) - 60  # claimed a minute ago, its first file not yet copied: 59 s
  for name in (f'.staging-{died}', f'.staging-{copying}', '.staging-old'):
    os.makedirs(os.path.join(base, name))
  # Died after creating the version's directories, before renaming a file; 50 + 1 is far behind the clock.
  os.makedirs(os.path.join(base, '50', 'variables'))
  os.makedirs(os.path.join(base, '.staging-50', 'variables'))

  assert serving_pusher.remove_abandoned_pushes(base) == sorted(
      os.path.join(base, name) for name in ('50', '.staging-50', f'.staging-{died}'))
  # '.staging-old' is no number, so nothing tells its age: kept.
  assert sorted(os.listdir(base)) == sorted(['100', f'.staging-{copying}', '.staging-old'])


def test_on_a_local_disk_a_version_directory_without_saved_model_pb_is_never_removed(tmp_path):
  # A local publish is one rename, so this pusher never leaves such a directory: a saved_model.pbtxt model (TF Serving
  # loads it) or a copy an operator is making with its source's old times is someone else's, kept however old.
  base = str(tmp_path / 'serving')
  _model_dir(base, '200', b'served')
  os.makedirs(os.path.join(base, '100'))
  with open(os.path.join(base, '100', 'saved_model.pbtxt'), 'w', encoding='utf-8') as f:
    f.write('meta_graphs {}')
  _interrupted(base, 150)
  _backdate(base, 2 * HOUR_S)
  assert serving_pusher.remove_abandoned_pushes(base) == []
  assert sorted(os.listdir(base)) == ['100', '150', '200']
  assert serving_pusher.served_versions(base) == [200]


def test_an_interrupted_version_ahead_of_the_clock_is_kept_until_a_newer_version_is_complete(tmp_path, monkeypatch,
                                                                                             caplog):
  # Versions ahead of the clock (4000000000 is in 2096), on an object store: the interrupted 4000000005 and its
  # staging dir are abandoned (two hours), but removed, 5 could be taken again (one more than the newest complete
  # version, 4000000000). Both stay (the staging dir with the version: the store's directories have no time, so an
  # interrupted version without files would be judged by its number alone, ahead of the clock here) and the push takes
  # 4000000006; the next push, with 4000000006 complete, removes both and takes 4000000007. Numbers never repeat nor
  # go backwards.
  monkeypatch.setattr(serving_pusher, '_is_local', lambda path: False)
  base = str(tmp_path / 'serving')
  _model_dir(base, '4000000000', b'served')
  _interrupted(base, 4_000_000_005)
  _staging(base, 4_000_000_005)
  _backdate(base, 2 * HOUR_S)
  with caplog.at_level('INFO', logger='absl'):
    assert serving_pusher.push_atomically(_model_dir(tmp_path, 'a', b'weights-A'), base) == 4_000_000_006
  assert sorted(os.listdir(base)) == ['.staging-4000000005', '4000000000', '4000000005', '4000000006']
  kept = [r for r in caplog.records if r.getMessage().startswith('Kept the interrupted version')]
  assert [(r.levelname, r.getMessage().split(' (')[0]) for r in kept] == [
      ('INFO', f'Kept the interrupted version {base}/4000000005 and its staging directory, if any')]
  assert serving_pusher.push_atomically(_model_dir(tmp_path, 'b', b'weights-B'), base) == 4_000_000_007
  assert sorted(os.listdir(base)) == ['4000000000', '4000000006', '4000000007']


def test_an_unchanged_rerun_is_recorded_as_the_newest_complete_version_and_removes_a_newer_interrupted_one(
    tmp_path, monkeypatch):
  # On an object store m1 was pushed two hours ago as V; the push of V + 1 died mid-rename. The rerun of m1 is the
  # newest complete version's model: recorded as pushed to V (not pushed again), and <V+1>/, untouched for two
  # hours, removed.
  monkeypatch.setattr(serving_pusher, '_is_local', lambda path: False)
  now = float(int(time.time()))
  v = int(now) - 7200
  base = str(tmp_path / 'serving')
  clock = _clock(monkeypatch, now - 7200)
  first = run_executor(str(tmp_path), 'm1', b'w1', base, blessed=1)
  assert first.get_string_custom_property('pushed_version') == str(v)
  _interrupted(base, v + 1)
  clock[0] = now
  _backdate(base, 7200)
  again = run_executor(str(tmp_path), 'm1-again', b'w1', base, blessed=1)
  assert again.get_int_custom_property('pushed') == 1
  assert again.get_string_custom_property('pushed_version') == str(v)
  assert os.listdir(base) == [str(v)]


# --- the staging age set on the component ----------------------------------------------------------------------


def _pusher(base: str, **kwargs) -> serving_pusher.ServingPusher:
  return serving_pusher.ServingPusher(
      model=channel_types.Channel(type=standard_artifacts.Model),
      model_blessing=channel_types.Channel(type=standard_artifacts.ModelBlessing),
      push_destination=pusher_pb2.PushDestination(
          filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=base)), **kwargs)


def test_the_components_staging_age_reaches_the_executor(tmp_path):
  # Age 60 s: the staging dir untouched for 70 s is removed, the one untouched for 50 s kept. With the default
  # (one hour) both are kept.
  for kwargs, kept in (({'stale_staging_age_s': 60}, ['.staging-10']), ({}, ['.staging-10', '.staging-20'])):
    root = tmp_path / str(len(kwargs))
    base = str(root / 'serving')
    os.makedirs(base)
    _backdate(_staging(base, 10), 50)
    _backdate(_staging(base, 20), 70)
    component = _pusher(base, **kwargs)
    model, blessing, pushed = (standard_artifacts.Model(), standard_artifacts.ModelBlessing(),
                               standard_artifacts.PushedModel())
    model.uri, blessing.uri, pushed.uri = str(root / 'model'), str(root / 'blessing'), str(root / 'pushed')
    _model_dir(model.uri, 'Format-Serving', b'weights')
    blessing.set_int_custom_property('blessed', 1)
    serving_pusher.ServingPusherExecutor().Do(
        {'model': [model], 'model_blessing': [blessing]}, {'pushed_model': [pushed]},
        dict(component.exec_properties))
    version = pushed.get_string_custom_property('pushed_version')
    assert sorted(os.listdir(base)) == sorted(kept + [version])


@pytest.mark.parametrize('age', [0, -1.0, float('nan'), True, '3600'])
def test_a_staging_age_that_is_not_a_positive_number_is_refused_naming_it(tmp_path, age):
  with pytest.raises(ValueError, match=rf"^stale_staging_age_s={re.escape(repr(age))} must be a positive number "):
    _pusher(str(tmp_path), stale_staging_age_s=age)
  with pytest.raises(ValueError, match=rf"^stale_staging_age_s={re.escape(repr(age))} must be a positive number "):
    serving_pusher.remove_abandoned_pushes(str(tmp_path), max_age_s=age)


def test_the_pipelines_staging_age_reaches_both_pushers():
  # create_pipeline(stale_staging_age_s=60) sets both pushers' age; by default both keep the hour.
  # pylint: disable=g-import-not-at-top
  from tfx.types import standard_component_specs
  from tfx.utils import json_utils
  from pipeline import configs
  # pylint: enable=g-import-not-at-top
  pusher_ids = (configs.RANKING_PUSHER_ID, configs.RETRIEVAL_PUSHER_ID)
  for kwargs, age in (({'stale_staging_age_s': 60}, 60.0), ({}, 3600.0)):
    built = pipeline_runs.local_pipeline(**kwargs)
    pushers = [c for c in built.components if c.id in pusher_ids]
    assert sorted(c.id for c in pushers) == sorted(pusher_ids)
    for pusher in pushers:
      custom_config = json_utils.loads(pusher.exec_properties[standard_component_specs.CUSTOM_CONFIG_KEY])
      assert custom_config[serving_pusher.STALE_STAGING_AGE_KEY] == age, pusher.id
