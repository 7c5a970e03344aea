"""ServingPusher: TFX's Pusher that never serves a half-written version and never pushes one model twice.

TFX's Pusher copies a blessed model straight into `<base_directory>/<unix time>/`. Two things go wrong with
that for a server polling the base directory:

* A reader can see the version directory while its files are still being copied. Here the model is copied
  into a hidden staging directory (`.staging-<version>`, which neither TF Serving nor `serving/` treats as a
  version) and renamed into place in one step once complete.
* An unchanged rerun of the pipeline re-evaluates the same model against itself (the resolver now returns it
  as the last blessed one), blesses it again and TFX's Pusher copies it as a new version. Here a model whose
  files are identical to the newest served (complete) version is recorded as pushed to that version instead
  (`pushed` 1: it is served), copying nothing there, with `already_served` 1 (0 for a model this push copied), so
  the reports say it was already served rather than pushed by this run, and the lineage of the version starts from
  the push that copied it. A model equal to an *older* version (a rollback) is pushed as a new version: servers
  serve the newest, so recording it as that old version would report a push that changes nothing.

Two overlapping pushes (two pipeline runs) number their versions in the order they start, right after their
blessings, so the model blessed last gets the highest number, which servers serve. A slow push that finishes its
copy after a later-started push published a higher version is not published (`push_model`): below that
version it would never be served, yet its run would record a push; its execution records the model not pushed,
and why: its pushed_model artifact has `pushed` 0 (as TFX's Pusher records a model not pushed), `not_pushed_reason`
'superseded' and `superseded_by_version` the newer version that stays served. A model not pushed because it is not
blessed has `not_pushed_reason` 'not_blessed' (TFX's Pusher records no reason: an artifact without one, e.g. from
an older run, was not blessed).

A push that dies mid-copy (the process killed, the disk full) leaves its `.staging-<version>` directory behind:
never served, but never renamed or removed either. A push never reuses a staging directory that is still there:
if another push is copying the same version (started in the same second), this one takes the next free version.
On a local filesystem the staging directory is claimed with one exclusive `mkdir`, so two pushes that check the
same version at the same moment cannot both take it (checked, then created, both did: one push copied into the
other's directory and failed with AlreadyExistsError, or removed the other's files). An object store has no
exclusive create (nor an atomic rename): there the claim is a check followed by the create, and the complete copy
is published file by file: every directory of the copy is created under the version first (so an empty one, e.g.
an empty `assets/`, is there too), then the files are renamed with saved_model.pb last (a directory rename there
moves saved_model.pb before `variables/`, so `serving/`, which counts a version complete by its saved_model.pb,
could load it half renamed, fail and skip it). A push that dies there, mid-rename, leaves an *interrupted
version*: `<version>/` holding some of the files but no saved_model.pb, the rest still in `.staging-<version>`
(or nowhere, once that is removed). `serving/` ignores it, and so does this Pusher when it looks for a served copy
(only complete versions, numeric directories holding saved_model.pb, count), but TF Serving, which polls the
numbered directories, keeps failing to load it.

Every later run of this Pusher, whether it pushes or finds the model already served, first removes what it can
prove a dead push left. The staging directory and the interrupted version of one number are one push's and are
judged together: abandoned once nothing in either (no file, no directory) has been modified for
`STALE_STAGING_AGE_S` (one hour; the component's `stale_staging_age_s` parameter sets another age). A push in
progress modifies its staging directory with every file it copies and its version directory with every file it
renames (an object store renames by copying, so the renamed file is new), so it is left alone whatever its version
or start time; only a single file taking more than an hour to copy or rename would be mistaken for a dead push.
An abandoned staging directory is removed. An abandoned interrupted version is removed only if no later push can
take its number again, so that version numbers never repeat nor go backwards: its number is below a complete
version's, or is (read as a unix time) more than the age and a second behind the clock. A push takes one more than
the newest version directory, complete or not, and never less than its clock's time, and the rule above already
takes the clocks of the pushing machines and of the store to agree within the age. Otherwise (versions run ahead
of the clock with more than one push a second) the interrupted version is kept, logged at INFO, until one of those
holds, and so is its staging directory (an object store's directories have no time of their own, so a version
that holds no file yet would otherwise be judged by its number alone, which is not yet old enough to count); a
push meanwhile takes a later number.
On a local filesystem, where the publish is one rename, a numeric directory without saved_model.pb is never this
Pusher's (a saved_model.pbtxt model, an operator's copy in progress) and is never touched. Complete versions and
anything else are never touched. Each removal
is logged at INFO. An object store's directory has no modification time of its own, so a push that died before
its first file (after claiming `.staging-<version>`, or after creating the version's directories) leaves nothing
dated: its directories are judged by their number instead, as made before the clock read `<version>` + 1 (a push
takes a number never less than its clock's time). A dead push's directories are kept if an entry disappears while
being looked at (its push has just renamed it into place), and so is an undated staging directory whose name is no
number (not this Pusher's).

An interrupted version is removed rather than its rename resumed. The TFX execution that started it failed, so ML
Metadata records no push of that model to that version, and the orchestrator's retry or the next run pushes the
blessed model again as a new version. Finishing the rename instead would make a version served, hours after its
push was reported failed, that no pipeline run records as pushed (the lineage would name an older version as the
one served), and its completeness would rest on the staging directory still holding every file not yet moved,
which nothing records. Removing it drops only files that were never served.
"""

import dataclasses
import functools
import hashlib
import os
import time
from typing import Any, Dict, List, Optional

import tensorflow as tf
from absl import logging
from tfx import types
from tfx.components.pusher import component as pusher_component
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, json_utils, proto_utils

from components import push_reasons
from pipeline import configs

STAGING_PREFIX = '.staging-'
# Seconds without any modification after which a staging directory, or a version directory without
# saved_model.pb, is taken as left by a push that died.
STALE_STAGING_AGE_S = 3600.0
# The key of `ServingPusher(stale_staging_age_s=...)` in the component's custom_config.
STALE_STAGING_AGE_KEY = 'stale_staging_age_s'
# Bytes of a file read at a time by `model_fingerprint`: a SavedModel's variables shard can be gigabytes.
FINGERPRINT_CHUNK_BYTES = 1 << 20


def check_stale_staging_age_s(stale_staging_age_s: Any) -> float:
  """The staging age (seconds) after which a dead push's staging directory or version counts as abandoned, checked.

  Raises:
    ValueError: for a value that is not a positive number (a bool, a string, 0, a negative number or NaN).
  """
  if (isinstance(stale_staging_age_s, bool) or not isinstance(stale_staging_age_s, (int, float))
      or not stale_staging_age_s > 0):
    raise ValueError(f'stale_staging_age_s={stale_staging_age_s!r} must be a positive number of seconds without any '
                     'change after which a .staging-<version> directory, or a version directory without '
                     'saved_model.pb, counts as left by a push that died; pass '
                     f'e.g. {STALE_STAGING_AGE_S} (one hour, the default), more than the longest copy of one file.')
  return float(stale_staging_age_s)


def model_fingerprint(model_dir: str) -> str:
  """sha256 over the relative path and the sha256 of every file of a SavedModel directory.

  For each file (directories sorted by path, the files of each by name) the digest takes its relative path
  (UTF-8), a NUL byte, then the 32-byte sha256 of its bytes. The NUL (which no path holds) and the fixed-length
  file digest end each record unambiguously, so moving bytes between a path and a file's contents, or from the
  end of one file to the next, changes the fingerprint. A file is read `FINGERPRINT_CHUNK_BYTES` at a time,
  never whole, so memory stays bounded whatever the size of a variables shard.
  """
  digest = hashlib.sha256()
  for root, _, files in sorted(fileio.walk(model_dir)):
    for name in sorted(files):
      path = os.path.join(root, name)
      file_digest = hashlib.sha256()
      with fileio.open(path, 'rb') as f:
        for chunk in iter(functools.partial(f.read, FINGERPRINT_CHUNK_BYTES), b''):  # until a read returns nothing
          file_digest.update(chunk)
      digest.update(os.path.relpath(path, model_dir).encode() + b'\0' + file_digest.digest())
  return digest.hexdigest()


def served_versions(base_directory: str) -> List[int]:
  """The complete versions under `base_directory`, ascending: numeric directories holding saved_model.pb.

  What servers load (`serving.models.complete_versions` counts them the same way); an interrupted version (a
  numeric directory without saved_model.pb, see the module docstring) is not one.
  """
  return sorted(int(name) for name in _version_names(base_directory)
                if _is_complete(os.path.join(base_directory, name)))


def _version_names(base_directory: str) -> List[str]:
  """Every numeric name under `base_directory`, complete version or not (a missing directory has none)."""
  if not fileio.exists(base_directory):
    return []
  return [name.rstrip('/') for name in fileio.listdir(base_directory) if configs.is_version_name(name.rstrip('/'))]


def _claimed_numbers(base_directory: str) -> List[int]:
  """Every version number under `base_directory` that a push holds: version directories (complete or not) and the
  staging directories of pushes still copying (`.staging-<v>`)."""
  if not fileio.exists(base_directory):
    return []
  names = [name.rstrip('/') for name in fileio.listdir(base_directory)]
  staged = [name[len(STAGING_PREFIX):] for name in names if name.startswith(STAGING_PREFIX)]
  return [int(name) for name in names + staged if configs.is_version_name(name)]


def _is_complete(version_dir: str) -> bool:
  """Whether the version directory `version_dir` holds its saved_model.pb (published last: `_publish`)."""
  return fileio.exists(os.path.join(version_dir, tf.saved_model.SAVED_MODEL_FILENAME_PB))


def find_served_copy(model_dir: str, base_directory: str) -> Optional[int]:
  """The newest complete version if its files equal `model_dir`'s, else None.

  Older versions are not served, nor is a newer interrupted one (no saved_model.pb), so neither is compared.
  """
  newest = newest_served_version(base_directory)
  if newest is None:
    return None
  same = model_fingerprint(os.path.join(base_directory, str(newest))) == model_fingerprint(model_dir)
  return newest if same else None


def newest_served_version(base_directory: str) -> Optional[int]:
  """The newest complete version under `base_directory`, None if there is none.

  Looks at the numeric names from the newest down and stops at the first complete one: one saved_model.pb check
  (plus one per newer interrupted version), not one per version as `served_versions` makes.
  """
  for name in sorted(_version_names(base_directory), key=int, reverse=True):
    if _is_complete(os.path.join(base_directory, name)):
      return int(name)
  return None


def _modified_s(stat: Any) -> Optional[float]:
  """The modification time (unix seconds) of a `fileio.stat` answer; None when the filesystem keeps none.

  TF's filesystems (what `fileio` uses for local and gs:// paths) answer a `FileStatistics` with `mtime_nsec`
  (0 for an object store's directory, which has no time of its own); the local plugin an `os.stat_result`.
  """
  mtime_nsec = getattr(stat, 'mtime_nsec', None)
  seconds = float(stat.st_mtime) if mtime_nsec is None else mtime_nsec / 1e9
  return seconds if seconds > 0 else None


def _last_modified_s(directories: List[str], undated_s: Optional[float]) -> Optional[float]:
  """The latest modification time (unix seconds) of `directories` and everything under them.

  Args:
    directories: the directories of one push.
    undated_s: the answer when every entry is there but none has a modification time (an object store's
      directories have none, so a push that died before its first file leaves only such entries): the latest
      time they can have been made, or None if that cannot be told.

  Returns:
    None when it cannot be told: an entry disappeared while being looked at (e.g. the push renamed its staging
    directory into place), or no entry has a modification time and `undated_s` is None.
  """
  paths = list(directories)
  for directory in directories:
    for root, dirs, files in fileio.walk(directory):
      paths.extend(os.path.join(root, name) for name in dirs + files)
  try:
    times = [_modified_s(fileio.stat(path)) for path in paths]
  except fileio.NotFoundError:
    return None
  known = [t for t in times if t is not None]
  return max(known) if known else undated_s


def _claimed_by_s(version: str) -> Optional[float]:
  """About the latest unix time (seconds) at which the push of `version` (a staging or version directory's number)
  can have made its directories: a push takes a number never less than its clock's time in whole seconds
  (`push_atomically`), so it chose the number before the clock read `version` + 1 and claimed its staging directory
  a few store requests later (taking the clocks of the pushing machines to agree, as `remove_abandoned_pushes`
  does). None for a name that is no number (not this Pusher's)."""
  return float(version) + 1.0 if configs.is_version_name(version) else None


def _number_retired(version: int, newest_complete: Optional[int], now: float, max_age_s: float) -> bool:
  """Whether no later push can take the number `version` again once its directory is removed.

  A push takes one more than the newest version directory and never less than its clock's unix time
  (`push_atomically`). So a number below a complete version (never removed) is not taken again, nor one at least a
  second more than `max_age_s` behind `now`: the clocks of the pushing machines are taken to agree within
  `max_age_s` (as the staleness rule of `remove_abandoned_pushes` takes them to), so a later push's clock reads
  more than `version + 1`.

  Args:
    version: the number of an interrupted version.
    newest_complete: the newest complete version, None if there is none.
    now: this machine's unix time (seconds).
    max_age_s: the staleness age (seconds).
  """
  below_complete = newest_complete is not None and version < newest_complete
  return below_complete or version + 1 <= now - max_age_s


def _remove_dead_push_dir(path: str, kind: str) -> bool:
  """Removes `path`, a directory of a push that died (`kind` names it in the log, e.g. 'staging directory').

  Returns:
    Whether it was removed; if not (already gone, or the store refused) that is logged and the push goes on.
  """
  try:
    fileio.rmtree(path)
  except fileio.NotFoundError:
    logging.info('Abandoned %s %s was removed meanwhile (by another push).', kind, path)
    return False
  except (OSError, tf.errors.OpError) as e:
    # Housekeeping only: the push itself can still succeed, so it goes on and says what to do.
    logging.warning('Could not remove the abandoned %s %s (%s: %s); remove it by hand.', kind, path,
                    type(e).__name__, e)
    return False
  return True


def remove_abandoned_pushes(base_directory: str, max_age_s: float = STALE_STAGING_AGE_S) -> List[str]:
  """Removes the staging directories and interrupted versions of pushes that died; see the module docstring.

  The `.staging-<v>` directory and the interrupted version `<v>/` (numeric, without saved_model.pb) of one number
  count as abandoned together, once nothing in either has been modified for `max_age_s`. Then the staging
  directory is removed, and the interrupted version too unless a later push could take its number again
  (`_number_retired`): it is then kept and logged. Complete versions and other names are never touched.

  Args:
    base_directory: a push destination, e.g. `<serving_dir>/ranking`; a missing one holds nothing.
    max_age_s: seconds since the last modification of anything in a push's directories after which they count
      as abandoned.

  Returns:
    The removed directories, sorted.

  Raises:
    ValueError: if `max_age_s` is not a positive number (`check_stale_staging_age_s`).
  """
  max_age_s = check_stale_staging_age_s(max_age_s)
  if not fileio.isdir(base_directory):
    return []
  staging_dirs, interrupted = {}, {}  # version name -> directory
  complete = []
  # Only an object store's file-by-file publish can leave a version without saved_model.pb; on a local disk the
  # publish is one rename, so such a directory is someone else's (a saved_model.pbtxt model, a copy in progress).
  object_store = not _is_local(base_directory)
  for name in sorted(name.rstrip('/') for name in fileio.listdir(base_directory)):
    path = os.path.join(base_directory, name)
    if configs.is_version_name(name) and _is_complete(path):
      complete.append(int(name))
    elif configs.is_version_name(name) and object_store and fileio.isdir(path):
      interrupted[name] = path
    elif name.startswith(STAGING_PREFIX) and fileio.isdir(path):
      staging_dirs[name[len(STAGING_PREFIX):]] = path
  newest_complete = max(complete) if complete else None
  removed = []
  now = time.time()
  for version in sorted(set(staging_dirs) | set(interrupted)):
    version_dir, staging = interrupted.get(version), staging_dirs.get(version)
    last_modified = _last_modified_s([path for path in (version_dir, staging) if path], _claimed_by_s(version))
    if last_modified is None or now - last_modified <= max_age_s:
      continue
    idle_s = now - last_modified
    if version_dir and not _number_retired(int(version), newest_complete, now, max_age_s):
      # Its staging directory is kept with it: an object store's directories have no time of their own, so an
      # interrupted version holding no file yet would be judged by its number alone, not yet old enough to count.
      logging.info('Kept the interrupted version %s and its staging directory, if any (no saved_model.pb, nothing '
                   'modified for %.0f s: a push that died mid-rename): no complete version is newer and its number is '
                   'not %.0f s behind the clock, so a later push could take it again; both are removed once a newer '
                   'version is complete or the clock is that far past it.', version_dir, idle_s, max_age_s)
      continue
    if version_dir and _remove_dead_push_dir(version_dir, 'interrupted version'):
      logging.info('Removed interrupted version %s: no saved_model.pb and nothing in it%s modified for %.0f s (a '
                   'push that died mid-rename; more than %.0f s counts as abandoned).', version_dir,
                   ' nor in its staging directory' if staging else '', idle_s, max_age_s)
      removed.append(version_dir)
    if staging and _remove_dead_push_dir(staging, 'staging directory'):
      logging.info('Removed abandoned staging directory %s: nothing in it%s modified for %.0f s (a push that died '
                   'mid-copy or mid-rename; more than %.0f s counts as abandoned).', staging,
                   ' nor in its interrupted version' if version_dir else '', idle_s, max_age_s)
      removed.append(staging)
  return sorted(removed)


@dataclasses.dataclass(frozen=True)
class PushOutcome:
  """What `push_model` did.

  Attributes:
    version: the version published; None if the push was superseded.
    superseded_by: if the push was superseded, the newer complete version it found once its copy was complete
      (published by a later-started push, and served instead); else None.
  """
  version: Optional[int]
  superseded_by: Optional[int] = None


def push_atomically(model_dir: str, base_directory: str,
                    stale_staging_age_s: float = STALE_STAGING_AGE_S) -> Optional[int]:
  """Copies `model_dir` to a new version under `base_directory`, visible only once complete (`push_model`).

  Returns:
    The new version number; None if a newer version was published during the copy (nothing published;
    `push_model` also names that newer version).
  """
  return push_model(model_dir, base_directory, stale_staging_age_s).version


def push_model(model_dir: str, base_directory: str, stale_staging_age_s: float = STALE_STAGING_AGE_S) -> PushOutcome:
  """Copies `model_dir` to a new version under `base_directory`, visible only once complete.

  What dead pushes left is removed first (`remove_abandoned_pushes`). The version is the current unix time in
  seconds, or one more than the highest number taken (a version directory, complete or interrupted, or the staging
  directory of a push still copying) if that is not older (so versions always increase, even when another
  machine's clock runs ahead), or the next one whose staging directory is free. The number is taken before the copy, so version order is the order in which pushes started (after
  their blessings). If, once the copy is complete, a complete version with a higher number is there (two
  overlapping pipeline runs: a later push published while this slow one copied), this one is not published:
  servers serve the highest number, so it would never be served, yet its run would record it as pushed. Its
  staging copy is removed and the outcome names that higher version; the model blessed last stays served. (The
  check and the rename are two steps: a later push publishing between them still leaves this version below it,
  unserved.)

  Args:
    model_dir: the SavedModel directory to push.
    base_directory: the push destination, e.g. `<serving_dir>/ranking`.
    stale_staging_age_s: `max_age_s` of `remove_abandoned_pushes`.

  Returns:
    The new version number; or, if a newer version was published during the copy (nothing published), no version
    and that newer version as `superseded_by`.

  Raises:
    ValueError: if `model_dir` holds no saved_model.pb (nothing is claimed or written then): published, it would
      be a version no server or this Pusher counts complete, and an object store's housekeeping would remove it.
    FileExistsError: on a local filesystem, if another writer made the version directory during the copy
      (`_publish`).
  """
  if not _is_complete(model_dir):
    raise ValueError(f'{model_dir} holds no {tf.saved_model.SAVED_MODEL_FILENAME_PB}, so it is no SavedModel this '
                     'Pusher can publish as a complete version; push the directory the Trainer exported the '
                     'SavedModel to.')
  remove_abandoned_pushes(base_directory, stale_staging_age_s)
  fileio.makedirs(base_directory)
  # Above every number another push holds, its staging claim included: a push still copying whose clock ran ahead
  # of this one's started first, so this later push must take a higher number (or the earlier blessing would serve).
  version = max([int(time.time())] + [number + 1 for number in _claimed_numbers(base_directory)])
  while True:
    staging = os.path.join(base_directory, f'{STAGING_PREFIX}{version}')
    final = os.path.join(base_directory, str(version))
    if not fileio.exists(final) and _claim_dir(staging):
      if not fileio.exists(final):
        break
      # Another push renamed this version into place between the check and the claim: give the claim back.
      fileio.rmtree(staging)
    version += 1
  _copy_into(model_dir, staging)
  newest = newest_served_version(base_directory)
  if newest is not None and newest > version:
    # A push that claimed its number after this one (a later blessing) published while this one copied: servers
    # serve the highest number, so publishing this one below it would report a push that never serves.
    logging.warning('Not publishing version %s: version %s, pushed by a later push while this one copied, is newer '
                    'and stays served; the copy in %s is removed.', version, newest, staging)
    _remove_dead_push_dir(staging, 'superseded staging directory')
    return PushOutcome(version=None, superseded_by=newest)
  _publish(staging, final)
  return PushOutcome(version=version)


def _publish(staging: str, final: str) -> None:
  """Moves the complete copy `staging` to the version directory `final`.

  On a local filesystem one directory rename. An object store renames a directory object by object, in listing
  order, which puts saved_model.pb (what readers count a version complete by: `serving.models`) before
  `variables/`: there every directory of the copy is first created under `final` (empty ones such as an empty
  `assets/` too, which moving the files alone would not recreate), then each file is renamed on its own and
  saved_model.pb last, so a version that has it has every other file and directory too. The emptied staging
  directory is removed last; if that fails the push still succeeds (the version is complete), with a warning.

  Raises:
    FileExistsError: on a local filesystem, if `final` exists (another writer made it meanwhile).
  """
  if _is_local(final):
    try:
      fileio.rename(staging, final)
    except tf.errors.AlreadyExistsError as e:  # TF's message names neither path
      raise FileExistsError(f'{final} was made by another writer while this push copied the model into {staging}; '
                            'nothing was renamed onto it. The copy stays in the staging directory (removed once '
                            'abandoned); push again to take the next version.') from e
    return
  staging = staging.rstrip('/')
  tree = list(fileio.walk(staging))
  for dir_name, _, _ in tree:  # top-down: `final` itself first
    fileio.makedirs(dir_name.replace(staging, final, 1))
  files = [os.path.join(dir_name, name) for dir_name, _, names in tree for name in names]
  saved_model = os.path.join(staging, tf.saved_model.SAVED_MODEL_FILENAME_PB)
  for src in sorted(files, key=lambda path: path == saved_model):  # saved_model.pb last
    fileio.rename(src, src.replace(staging, final, 1))
  try:
    fileio.rmtree(staging)  # what is left of it: its directories, no file
  except (OSError, tf.errors.OpError) as e:
    # The version is complete and servers may load it already: failing the push now would leave ML Metadata
    # recording no push of a served version, and the retry would push the same model as yet another version.
    logging.warning('Version %s is complete, but its emptied staging directory %s could not be removed (%s: %s); '
                    'remove it by hand.', final, staging, type(e).__name__, e)


def _is_local(path: str) -> bool:
  """True for a path of the local filesystem (no `scheme://` prefix such as gs://)."""
  return '://' not in path


def _claim_dir(path: str) -> bool:
  """Creates the directory `path` (its parent exists) for this push alone.

  Returns:
    False if it exists already (another push claimed it). Exclusive on a local filesystem (one `os.mkdir`);
    on an object store, which has no exclusive create, a check then a create.
  """
  if _is_local(path):
    try:
      os.mkdir(path)
    except FileExistsError:
      return False
    return True
  if fileio.exists(path):
    return False
  fileio.makedirs(path)
  return True


def _copy_into(src: str, dst: str) -> None:
  """Copies every file and directory under `src` into the existing directory `dst`, which it never removes
  (`io_utils.copy_dir` first removes `dst`: another push's claim, if two pushes took the same staging dir)."""
  src = src.rstrip('/')
  for dir_name, sub_dirs, files in fileio.walk(src):
    target = dir_name.replace(src, dst, 1)
    for sub_dir in sub_dirs:
      fileio.makedirs(os.path.join(target, sub_dir))
    for name in files:
      fileio.copy(os.path.join(dir_name, name), os.path.join(target, name))


class ServingPusherExecutor(pusher_executor.Executor):
  """Pusher executor with atomic, de-duplicated pushes of blessed models to a filesystem destination.

  Unlike TFX's Pusher, which pushes a model with no blessing input "without validation", it refuses one
  (ValueError) and leaves what is served in place.
  """

  def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    self._log_startup(input_dict, output_dict, exec_properties)
    model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
    if not (input_dict.get(standard_component_specs.MODEL_BLESSING_KEY)
            or input_dict.get(standard_component_specs.INFRA_BLESSING_KEY)):
      # TFX's CheckBlessing pushes such a model "without validation"; this Pusher serves blessed models only.
      raise ValueError('ServingPusher got no model_blessing nor infra_blessing artifact, so nothing says the model '
                       f'{self.GetModelPath(input_dict)} may be served; it pushes blessed models only: pass the '
                       "gate's blessing as model_blessing.")
    if not self.CheckBlessing(input_dict):
      self._mark_not_pushed(model_push, push_reasons.NOT_BLESSED)
      return
    model_dir = self.GetModelPath(input_dict)
    push_destination = pusher_pb2.PushDestination()
    proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], push_destination)
    if push_destination.WhichOneof('destination') != 'filesystem':
      raise ValueError('ServingPusher pushes to a filesystem destination only; set '
                       'push_destination.filesystem.base_directory.')
    base_directory = push_destination.filesystem.base_directory
    if not base_directory:
      raise ValueError('push_destination.filesystem.base_directory is empty, so the model would be pushed into the '
                       'current working directory; set it to the serving directory, e.g. <serving_dir>/ranking.')
    custom_config = json_utils.loads(exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY) or 'null')
    stale_staging_age_s = check_stale_staging_age_s(
        (custom_config or {}).get(STALE_STAGING_AGE_KEY, STALE_STAGING_AGE_S))
    version = find_served_copy(model_dir, base_directory)
    already_served = version is not None
    if already_served:
      logging.info('This model is already served as version %s; not pushing it again.', version)
      remove_abandoned_pushes(base_directory, stale_staging_age_s)
    else:
      outcome = push_model(model_dir, base_directory, stale_staging_age_s)
      if outcome.version is None:  # a later push published a newer version meanwhile: that one is served
        self._mark_not_pushed(model_push, push_reasons.SUPERSEDED, superseded_by=outcome.superseded_by)
        return
      version = outcome.version
      logging.info('Model written to serving path %s.', os.path.join(base_directory, str(version)))
    io_utils.copy_dir(model_dir, model_push.uri)
    # pushed=1 either way (the model is served, as TFX's Pusher and its downstream readers take `pushed`); whether
    # this push copied it there or found it already served is the reports' to tell (components/push_reasons.py).
    self._MarkPushed(model_push, pushed_destination=os.path.join(base_directory, str(version)),
                     pushed_version=str(version))
    model_push.set_int_custom_property(push_reasons.ALREADY_SERVED_KEY, 1 if already_served else 0)

  def _mark_not_pushed(self, model_push: types.Artifact, reason: str, superseded_by: Optional[int] = None) -> None:
    """Records `model_push` as not pushed (`pushed` 0, as TFX's Pusher) and why (components/push_reasons.py):
    `reason` and, for a superseded push, the newer version `superseded_by` that stays served."""
    self._MarkNotPushed(model_push)
    model_push.set_string_custom_property(push_reasons.NOT_PUSHED_REASON_KEY, reason)
    if superseded_by is not None:
      model_push.set_string_custom_property(push_reasons.SUPERSEDED_BY_VERSION_KEY, str(superseded_by))


class ServingPusher(pusher_component.Pusher):
  """Pusher for TF Serving model directories; see the module docstring."""
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(ServingPusherExecutor)

  def __init__(self, model: Optional[types.BaseChannel] = None, model_blessing: Optional[types.BaseChannel] = None,
               push_destination: Optional[pusher_pb2.PushDestination] = None,
               stale_staging_age_s: float = STALE_STAGING_AGE_S,
               custom_config: Optional[Dict[str, Any]] = None,
               infra_blessing: Optional[types.BaseChannel] = None) -> None:
    """Args:
      model: the Trainer's model channel.
      model_blessing: the blessing channel (the gate's or the Evaluator's); with neither it nor infra_blessing
        the executor refuses to push (ValueError).
      push_destination: a filesystem destination, `<serving_dir>/<model>`.
      stale_staging_age_s: seconds without any change after which a `.staging-<version>` directory, and a
        version directory without saved_model.pb, is removed as left by a push that died
        (`remove_abandoned_pushes`); default one hour.
      custom_config: passed on as TFX's Pusher takes it; `stale_staging_age_s` is added to it.
      infra_blessing: an InfraValidator's blessing, as TFX's Pusher takes it.

    Raises:
      ValueError: for a `stale_staging_age_s` that is not a positive number, or a custom_config that already
        holds its key.
    """
    stale_staging_age_s = check_stale_staging_age_s(stale_staging_age_s)
    if STALE_STAGING_AGE_KEY in (custom_config or {}):
      raise ValueError(f'custom_config holds {STALE_STAGING_AGE_KEY!r}; pass it as the stale_staging_age_s '
                       'parameter of ServingPusher instead.')
    super().__init__(model=model, model_blessing=model_blessing, infra_blessing=infra_blessing,
                     push_destination=push_destination,
                     custom_config={**(custom_config or {}), STALE_STAGING_AGE_KEY: stale_staging_age_s})
