"""Converts MovieLens 100K (a local ml-100k folder, or the verified GroupLens download) to interactions CSV.

Output columns are exactly `features.MOVIELENS_COLUMNS`, rows in u.data file order (the canonical split is
defined on that order). `item_genres` holds the names (from u.genre) of the flagged genres joined by '|';
`item_release_year` is the year of the release date ('01-Jan-1995' -> 1995; missing when empty); titles are
decoded from latin-1 and written as UTF-8.

MovieLens may not be redistributed: it is never committed to the project; tests use invented rows.
"""

import argparse
import datetime
import fcntl
import hashlib
import http.client
import lzma
import math
import numbers
import os
import re
import shutil
import stat
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from typing import BinaryIO, Dict, List, Mapping, Optional, Tuple, TypeVar

from absl import logging
import numpy as np

from ingestion import interactions as interactions_lib
from schema import features

ColumnType = interactions_lib.ColumnType
# What a MovieLens file keys its lines by: a user or item id (str), a genre flag index (int).
_LineKey = TypeVar('_LineKey', str, int)

ML100K_URL = 'https://files.grouplens.org/datasets/movielens/ml-100k.zip'
DEFAULT_CACHE_DIR = os.path.join('~', '.cache', 'woonkly')
# Deadline of the whole download (connecting and every read; ml-100k.zip is 4.9 MB), seconds.
DOWNLOAD_TIMEOUT_SECONDS = 120.0
# Longest wait for one connect or read, seconds: an unreachable network fails after this, not after the deadline.
SOCKET_TIMEOUT_SECONDS = 15.0
# Folder (inside the zip and inside the cache dir) holding the files.
ML100K_FOLDER = 'ml-100k'
# A download (`ml-100k.zip.<random>.part`) or extraction (`ml-100k.<random>.part`) in progress is written under such
# a name in the cache dir, locked (flock) by its process while it lives. One that a killed run left behind is removed
# by a later run (`locate_movielens`) once it was last written this long ago and no process holds its lock, seconds.
STALE_PART_SECONDS = 3600.0
# The lock file (flock) in the cache dir that `locate_movielens` holds while it checks the cached copy and, if needed,
# downloads and swaps in a new one, so that runs sharing a cache dir take turns; never removed (a run that removed it
# while another waited for it would let a third lock a new file of the same name).
LOCK_FILE_NAME = f'{ML100K_FOLDER}.lock'
# Published integrity of the files the adapter reads (see the project's data README).
ML100K_SHA256: Mapping[str, str] = {
    'u.data': '06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490',
    'u.item': '553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701',
    'u.user': 'f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c',
}
REQUIRED_FILES: Tuple[str, ...] = ('u.data', 'u.item', 'u.user', 'u.genre')
ITEM_ENCODING = 'latin-1'

# Types of the optional columns the adapter writes.
MOVIELENS_COLUMN_TYPES: Mapping[str, ColumnType] = {
    features.USER_AGE: ColumnType.INT,
    features.USER_GENDER: ColumnType.STRING,
    features.USER_OCCUPATION: ColumnType.STRING,
    features.USER_ZIP: ColumnType.STRING,
    features.ITEM_TITLE: ColumnType.STRING,
    features.ITEM_GENRES: ColumnType.STRING,
    features.ITEM_RELEASE_YEAR: ColumnType.INT,
}

_LOCAL_COPY_FIX = f'pass a local copy with --data-dir PATH (the folder holding {", ".join(REQUIRED_FILES)})'
_PART_SUFFIX = '.part'
_ZIP_NAME = os.path.basename(ML100K_URL)
# The names `tempfile` gives this module's `.part` files and folders (its random part: 8 of a-z, 0-9 and '_'), and
# no others: a browser's partial `ml-100k.zip.part` in the same folder is not one of them.
_PART_NAME = re.compile(rf'^(?:{re.escape(_ZIP_NAME)}|{re.escape(ML100K_FOLDER)})\.[a-z0-9_]{{8}}'
                        rf'{re.escape(_PART_SUFFIX)}$')
_RELEASE_DATE = re.compile(r'^([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})$')
_MONTHS: Tuple[str, ...] = ('jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec')
_NUM_ITEM_FIELDS_BEFORE_GENRES = 5  # id | title | release date | video release date | IMDb URL


class MovieLensError(ValueError):
  """MovieLens 100K could not be located, downloaded, verified or parsed; the message says the fix."""


def check_movielens_dir(ml100k_dir: str) -> None:
  """Raises MovieLensError naming the first file of `REQUIRED_FILES` missing from `ml100k_dir`."""
  if not os.path.isdir(ml100k_dir):
    raise MovieLensError(f'{ml100k_dir}: no such folder. Fix: {_LOCAL_COPY_FIX}.')
  for name in REQUIRED_FILES:
    if not os.path.isfile(os.path.join(ml100k_dir, name)):
      raise MovieLensError(
          f'{ml100k_dir}: missing file {name} (the folder must hold {", ".join(REQUIRED_FILES)}). '
          f'Fix: {_LOCAL_COPY_FIX}; unzip ml-100k.zip there if needed.')


def folder_argument(text: str) -> str:
  """`text` if it is a MovieLens 100K folder (`check_movielens_dir`), for argparse's `type=`: a usage error naming
  the flag and the fix otherwise, before a script reads anything."""
  try:
    check_movielens_dir(text)
  except MovieLensError as e:
    raise argparse.ArgumentTypeError(str(e)) from e
  return text


def _sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


def verify_checksums(ml100k_dir: str, expected_sha256: Mapping[str, str] = ML100K_SHA256) -> None:
  """Raises MovieLensError naming the first file whose sha256 differs from `expected_sha256`."""
  for name, expected in expected_sha256.items():
    actual = _sha256(os.path.join(ml100k_dir, name))
    if actual != expected:
      raise MovieLensError(
          f'{os.path.join(ml100k_dir, name)}: sha256 checksum mismatch for {name} '
          f'(got {actual}, expected {expected}); the download is corrupt or not MovieLens 100K. '
          f'Fix: delete {ml100k_dir} and retry, or {_LOCAL_COPY_FIX}.')


def _cached_copy_is_valid(ml100k_dir: str, expected_sha256: Mapping[str, str]) -> bool:
  try:
    check_movielens_dir(ml100k_dir)
    verify_checksums(ml100k_dir, expected_sha256)
  except MovieLensError:
    return False
  return True


def _member_problem(error: Exception) -> str:
  """What is wrong with a zip member whose reading raised `error`, in words."""
  if isinstance(error, EOFError):  # raised with no message: the archive ends inside the member's data
    return 'its data ends before the size the archive records (the archive is truncated)'
  return str(error) or type(error).__name__


def _try_flock(fd: int) -> bool:
  """Takes an exclusive lock (flock) on the open file or folder `fd` without waiting; False if another holds one."""
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    return False
  return True


def _remove_part(path: str) -> None:
  """Removes this run's `.part` file or folder `path` if it is still there.

  Called while an error (or Ctrl-C) may be on its way up: a removal that fails is logged, not raised in its place; a
  later download removes what is left (`_remove_stale_parts`).
  """
  try:
    if os.path.isdir(path) and not os.path.islink(path):
      shutil.rmtree(path)
    elif os.path.lexists(path):
      os.remove(path)
  except OSError as e:
    logging.warning('Could not remove %s (%s); a later MovieLens 100K download removes it.', path, e)


def _remove_stale_parts(cache_dir: str) -> None:
  """Removes the `.part` files and folders that killed runs left in `cache_dir`.

  Only this module's names (`ml-100k.zip.<random>.part`, `ml-100k.<random>.part`) are looked at, and one is removed
  only if it was last written `STALE_PART_SECONDS` ago or earlier and no process holds its lock: a download or
  extraction in progress in another process holds one (the kernel drops the lock of a process that dies), and a
  younger one may be another run's between its creation and its lock. Each removal is logged; one that fails is
  logged and left for a later run.
  """
  try:
    entries = sorted(os.listdir(cache_dir))
  except OSError:
    return  # the download's first write there reports an unusable folder
  for entry in entries:
    if not _PART_NAME.match(entry):
      continue
    path = os.path.join(cache_dir, entry)
    try:
      age_seconds = time.time() - os.lstat(path).st_mtime
      if age_seconds < STALE_PART_SECONDS:
        continue
      fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:  # removed by its run meanwhile, a symlink (never one of ours) or unreadable: left alone
      continue
    try:
      if not _try_flock(fd):
        logging.info('Left %s alone: a MovieLens 100K download in progress holds it.', path)
        continue
      try:
        unchanged = os.path.samestat(os.fstat(fd), os.lstat(path))
      except FileNotFoundError:
        unchanged = False
      if not unchanged:  # renamed by its run (into place) since it was opened
        continue
      if stat.S_ISDIR(os.fstat(fd).st_mode):
        shutil.rmtree(path)
      else:
        os.remove(path)
      logging.warning('Removed %s, left by an interrupted MovieLens 100K download (last written %.0f s ago).',
                      path, age_seconds)
    except OSError as e:
      logging.warning('Could not remove %s, left by an interrupted MovieLens 100K download (%s); a later download '
                      'tries again.', path, e)
    finally:
      os.close(fd)


def _write_failure_fix(cache_dir: str) -> str:
  """The fix of a file or folder that could not be written in `cache_dir` (a full disk, most often)."""
  return (f'free space on the disk holding {cache_dir} (or check that it can be written) and run again, or pass a '
          f'folder on another disk with --cache-dir, or {_LOCAL_COPY_FIX}')


def _extract(zip_path: str, url: str, ml100k_dir: str) -> None:
  """Extracts `REQUIRED_FILES` from the zip at `zip_path` (downloaded from `url`) as the folder `ml100k_dir`.

  The files are written to a new folder beside `ml100k_dir` (`ml-100k.<random>.part`, locked while it lives), which
  replaces `ml100k_dir` (an earlier copy that did not verify) as a whole only once every file is out: a damaged
  archive, or a full disk, leaves `ml100k_dir` as it was, never holding some files of the new archive beside older
  ones.

  Raises:
    MovieLensError: naming `zip_path` if it is no zip archive, lacks a file, or a member is damaged (a bad
      CRC-32, a garbled or truncated compressed stream), and the fix (the new folder is removed); naming the file
      or folder, `cache_dir` and the fix if writing it fails (OSError: a full disk, a quota; the new folder is
      removed); or naming `ml100k_dir` and the new folder, which is then left in place, if the earlier `ml100k_dir`
      cannot be deleted or the new folder renamed to it.
  """
  cache_dir = os.path.dirname(ml100k_dir)
  as_it_was = f'; {ml100k_dir} is as it was' if os.path.lexists(ml100k_dir) else ''
  try:
    staging = tempfile.mkdtemp(prefix=f'{ML100K_FOLDER}.', suffix=_PART_SUFFIX, dir=cache_dir)
  except OSError as e:
    raise MovieLensError(
        f'{cache_dir}: cannot create the folder to extract {zip_path} (from {url}) into ({e}); nothing was '
        f'extracted{as_it_was}. Fix: {_write_failure_fix(cache_dir)}.') from e
  staging_lock: Optional[int] = None
  keep_staging = False
  try:
    staging_lock = os.open(staging, os.O_RDONLY)
    fcntl.flock(staging_lock, fcntl.LOCK_EX)  # held while it lives: see _remove_stale_parts
    try:
      archive = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile as e:
      raise MovieLensError(f'{zip_path} (from {url}) is not a zip archive: {e}. Fix: check the URL, '
                           f'or {_LOCAL_COPY_FIX}.') from e
    with archive:
      members = {os.path.basename(n): n for n in archive.namelist() if not n.endswith('/')}
      for name in REQUIRED_FILES:
        if name not in members:
          raise MovieLensError(
              f'{zip_path} (from {url}) has no file {name}. Fix: check the URL, or '
              f'{_LOCAL_COPY_FIX}.')
        try:
          data = archive.read(members[name])
        # A bad CRC-32 or local header (BadZipFile), a garbled deflate, bzip2 or lzma stream (zlib.error,
        # OSError, LZMAError), data cut short (EOFError), an encrypted member (RuntimeError) or an unknown
        # compression method (NotImplementedError).
        except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError, RuntimeError,
                NotImplementedError) as e:
          raise MovieLensError(
              f'{zip_path} (from {url}): its member {members[name]} is damaged: {_member_problem(e)}; nothing was '
              f'extracted. Fix: delete {zip_path} and run again to download it afresh, or {_LOCAL_COPY_FIX}.') from e
        # Files are written by their known base name only, never by a path from the archive.
        path = os.path.join(staging, name)
        try:
          with open(path, 'wb') as out:  # a full disk may fail the write or the flush at its close
            out.write(data)
        except OSError as e:
          raise MovieLensError(
              f'{path}: cannot write {name}, extracted from {zip_path} (from {url}) ({e}); nothing was extracted '
              f'(the files written so far are removed){as_it_was}. Fix: {_write_failure_fix(cache_dir)}.') from e
    had_earlier = os.path.lexists(ml100k_dir)
    step = f'deleting the earlier {ml100k_dir}'
    try:
      if os.path.isdir(ml100k_dir) and not os.path.islink(ml100k_dir):
        shutil.rmtree(ml100k_dir)
      elif had_earlier:
        os.remove(ml100k_dir)
      step = f'renaming {staging} to {ml100k_dir}'
      os.rename(staging, ml100k_dir)
    except OSError as e:
      keep_staging = True
      if step.startswith('deleting'):
        earlier = f'; {ml100k_dir}, the earlier copy (which did not verify), may be partly deleted'
      elif had_earlier:
        earlier = f'; the earlier {ml100k_dir} (which did not verify) is deleted'
      else:
        earlier = ''
      raise MovieLensError(
          f'{zip_path} (from {url}) was extracted but not put in place: {step} failed ({e}). The extracted files '
          f'(not verified yet) are left in {staging}{earlier}. Fix: check that {cache_dir} and everything in it can '
          f'be written, then rename {staging} to {ml100k_dir} yourself (deleting any {ml100k_dir} first; the next '
          f'run verifies it) or delete {staging} and run again; or {_LOCAL_COPY_FIX}.') from e
  finally:
    if not keep_staging:
      _remove_part(staging)  # nothing left to remove once it is renamed into place
    if staging_lock is not None:
      os.close(staging_lock)


class _Transfer:
  """One download of `url` into the open file `out`, run by a (daemon) thread so that its caller can give up at a
  deadline.

  urllib's `timeout=` bounds each socket operation only: a server trickling a byte a second would never time out.
  The caller instead waits for the thread at most its deadline, then `give_up`s and deletes the file; the thread stops
  at its next block (a socket operation is still bounded by `socket_timeout_seconds`). It writes through `out` only,
  never opening the file by its name, so a file its caller has deleted stays deleted.
  """

  def __init__(self, url: str, out: BinaryIO, socket_timeout_seconds: float) -> None:
    self.url = url
    self.socket_timeout_seconds = socket_timeout_seconds
    self.received = 0  # bytes written to `out` so far
    self.expected: Optional[int] = None  # the body's size the server announced (Content-Length), once known
    self.error: Optional[BaseException] = None  # what stopped the transfer, once it is done
    self._out = out
    self._lock = threading.Lock()
    self._done = False
    self._given_up = False

  def run(self) -> None:
    """Writes the body at `url` to `out`, block by block, until its end or until the caller gives up; closes `out`.

    A body that ends (the server closes the connection) short of its Content-Length is an `IncompleteRead` error.
    """
    try:
      with self._out as out, urllib.request.urlopen(self.url, timeout=self.socket_timeout_seconds) as response:
        if isinstance(response, http.client.HTTPResponse):
          self.expected = response.length  # None for a chunked body, or without a valid Content-Length
        # read1 returns what one socket read brings, so a trickle is checked against `_given_up` byte by byte
        # (read(n) would wait for all n bytes).
        while not self._given_up:
          block = response.read1(1 << 16)
          if not block:
            # read1 (unlike read) returns b'' where the server closed the connection, even before Content-Length.
            if self.expected is not None and self.received < self.expected:
              raise http.client.IncompleteRead(b'', self.expected - self.received)
            break
          out.write(block)
          self.received += len(block)
    except BaseException as e:  # handed to the caller, which re-raises it unless it gave up
      self.error = e
    with self._lock:
      self._done = True

  def give_up(self) -> bool:
    """False if the transfer is done (see `error`); else stops it and returns True (the deadline has passed)."""
    with self._lock:
      if not self._done:
        self._given_up = True
      return self._given_up


def _check_timeout(timeout_seconds: float) -> Optional[float]:
  """Checks a download deadline; returns how long to wait for the transfer (`Thread.join`), None for no deadline.

  `math.inf` is no deadline (each connect or read still gives up after `SOCKET_TIMEOUT_SECONDS`), and so is a value
  beyond what the platform can wait (`threading.TIMEOUT_MAX`, about 292 years), which would overflow the wait.

  Raises:
    ValueError: if `timeout_seconds` is not a number of seconds > 0 (NaN, zero or negative).
  """
  if (isinstance(timeout_seconds, bool) or not isinstance(timeout_seconds, numbers.Real)
      or not timeout_seconds > 0):  # NaN compares False
    raise ValueError(
        f'timeout_seconds must be a number of seconds > 0 (math.inf for no deadline), got {timeout_seconds!r}. '
        f'Fix: pass the longest the whole download may take, e.g. {DOWNLOAD_TIMEOUT_SECONDS:g} (the default).')
  return None if timeout_seconds >= threading.TIMEOUT_MAX else float(timeout_seconds)


def _fetch(url: str, out_fd: int, timeout_seconds: float, wait_seconds: Optional[float], cache_dir: str) -> None:
  """Writes the body at `url` to the open file `out_fd` within the deadline `timeout_seconds`.

  Args:
    url: what to download.
    out_fd: the open `.part` file to write (the caller's descriptor stays open).
    timeout_seconds: the deadline, seconds (as checked by `_check_timeout`).
    wait_seconds: `_check_timeout(timeout_seconds)`: how long to wait for the transfer, None for no deadline.
    cache_dir: the folder the download is for, as the fix of a short download names it.

  Raises:
    MovieLensError: if the download fails, ends short of its Content-Length or misses its deadline, naming `url`
      and the fix; the caller removes the file.
  """
  transfer = _Transfer(url, os.fdopen(os.dup(out_fd), 'wb'), min(timeout_seconds, SOCKET_TIMEOUT_SECONDS))
  worker = threading.Thread(target=transfer.run, name='movielens-download', daemon=True)
  worker.start()
  try:
    worker.join(wait_seconds)
  except BaseException:  # e.g. Ctrl-C while waiting: the transfer stops at its next block too
    transfer.give_up()
    raise
  if transfer.give_up():
    raise MovieLensError(
        f'Could not download MovieLens 100K from {url} within its {timeout_seconds:g} s deadline (connecting and '
        f'reading all of it; {transfer.received:,} bytes had arrived). Fix: check the network; without internet '
        f'access, unzip ml-100k.zip elsewhere and {_LOCAL_COPY_FIX}.')
  e = transfer.error
  if e is None:
    return
  if isinstance(e, http.client.IncompleteRead):
    of_expected = '' if transfer.expected is None else f' of {transfer.expected:,}'
    raise MovieLensError(
        f'Could not download MovieLens 100K from {url}: the download ended after {transfer.received:,}'
        f'{of_expected} bytes (the server closed the connection before the end); nothing was kept. Fix: run again '
        f'to retry; or download {url} by hand and unzip it in {cache_dir}, so that '
        f'{os.path.join(cache_dir, ML100K_FOLDER)} holds the files (the next run verifies and uses them); or '
        f'{_LOCAL_COPY_FIX}.') from e
  if not isinstance(e, (OSError, http.client.HTTPException, ValueError)):
    raise e
  reason = e.reason if isinstance(e, urllib.error.URLError) else e
  raise MovieLensError(
      f'Could not download MovieLens 100K from {url}: {reason}. Fix: check the network, or '
      f'{_LOCAL_COPY_FIX}.') from e


def _make_cache_dir(cache_dir: str) -> None:
  """Creates the folder `cache_dir` if needed; MovieLensError naming it and the fix if it cannot be."""
  try:
    os.makedirs(cache_dir, exist_ok=True)
  except OSError as e:
    raise MovieLensError(f'{cache_dir}: cannot create the folder for the MovieLens 100K download ({e}). Fix: '
                         f'pass a writable folder with --cache-dir, or {_LOCAL_COPY_FIX}.') from e


def download_movielens(cache_dir: str, url: str = ML100K_URL,
                       expected_sha256: Mapping[str, str] = ML100K_SHA256,
                       timeout_seconds: float = DOWNLOAD_TIMEOUT_SECONDS) -> str:
  """Downloads and extracts ml-100k.zip into `cache_dir` and verifies the checksums.

  The download is written to `ml-100k.zip.<random>.part` (locked while it lives), renamed to `ml-100k.zip` only when
  complete and removed otherwise; `.part` files and folders that killed runs left in `cache_dir` are removed first
  (see `STALE_PART_SECONDS`).

  It always downloads, and does not take the cache dir's lock (`LOCK_FILE_NAME`): where another run may use the same
  `cache_dir` at the same time, call `locate_movielens`, which takes it and reuses a verified copy.

  Args:
    cache_dir: folder for the zip and the extracted `ml-100k/` folder; created if needed.
    url: where to download the zip from.
    expected_sha256: file name -> sha256 hex digest to verify after extraction.
    timeout_seconds: deadline of the whole download (connecting and every read), seconds, > 0; a server that
      trickles the bytes cannot stretch it. `math.inf`: no deadline (each connect or read still gives up after
      `SOCKET_TIMEOUT_SECONDS`).

  Returns:
    The extracted folder, `<cache_dir>/ml-100k`.

  Raises:
    MovieLensError: if `cache_dir` cannot be created or written, the download fails, ends short of its announced
      size or misses its deadline, the zip is bad, lacks a file or holds a damaged one (the earlier `ml-100k/` is
      then left as it was), the extracted folder cannot replace the earlier `ml-100k/`, or a checksum differs.
    ValueError: if `timeout_seconds` is not a number > 0 (NaN included).
  """
  wait_seconds = _check_timeout(timeout_seconds)
  _make_cache_dir(cache_dir)
  _remove_stale_parts(cache_dir)
  zip_path = os.path.join(cache_dir, _ZIP_NAME)
  try:
    partial_fd, partial_path = tempfile.mkstemp(prefix=f'{_ZIP_NAME}.', suffix=_PART_SUFFIX, dir=cache_dir)
  except OSError as e:
    raise MovieLensError(f'{cache_dir}: cannot write the MovieLens 100K download there ({e}). Fix: pass a writable '
                         f'folder with --cache-dir, or {_LOCAL_COPY_FIX}.') from e
  try:
    fcntl.flock(partial_fd, fcntl.LOCK_EX)  # held until it is renamed or removed: see _remove_stale_parts
    logging.info('Downloading MovieLens 100K from %s to %s (%s)', url, zip_path,
                 'no deadline' if wait_seconds is None else f'deadline {timeout_seconds:g} s')
    _fetch(url, partial_fd, timeout_seconds, wait_seconds, cache_dir)
    os.replace(partial_path, zip_path)
  except BaseException:  # a failed download, or Ctrl-C: nothing of it is kept
    _remove_part(partial_path)
    raise
  finally:
    os.close(partial_fd)

  ml100k_dir = os.path.join(cache_dir, ML100K_FOLDER)
  _extract(zip_path, url, ml100k_dir)
  verify_checksums(ml100k_dir, expected_sha256)
  return ml100k_dir


def locate_movielens(data_dir: Optional[str], cache_dir: str = DEFAULT_CACHE_DIR,
                     url: str = ML100K_URL, expected_sha256: Mapping[str, str] = ML100K_SHA256,
                     timeout_seconds: float = DOWNLOAD_TIMEOUT_SECONDS) -> str:
  """Returns a folder holding MovieLens 100K: `data_dir` if given, else a verified cached download.

  Without `data_dir`, runs sharing `cache_dir` take turns: each holds the exclusive lock (flock) of
  `<cache_dir>/ml-100k.lock` (`LOCK_FILE_NAME`, created if needed, never removed) while it checks the cached copy and,
  if that does not verify, downloads and swaps in a new one; so a run started while another downloads waits for it
  (logged once at INFO, naming the lock file), then reuses its verified copy without downloading, and never finds
  the folder deleted under it by the other's swap. The wait is not bounded: the other run's download has its own
  deadline (`timeout_seconds`), and the kernel releases the lock of a process that ends in any way (killed included);
  a waiting run stops at Ctrl-C. If the lock file cannot be opened (a cache dir that cannot be written), a verified
  copy is still used, with a warning; nothing is downloaded without the lock.

  The `.part` files and folders that killed runs left in `cache_dir` are removed too (see `STALE_PART_SECONDS`),
  whether the cached copy is reused or downloaded afresh.

  Args:
    data_dir: a local ml-100k folder (u.data, u.item, u.user, u.genre), or None to download.
    cache_dir: where downloads are kept (`~` expanded); a verified earlier download is reused.
    url: the zip to download.
    expected_sha256: file name -> sha256 hex digest of the download.
    timeout_seconds: deadline of the whole download (connecting and every read), seconds, > 0; `math.inf` for
      none (see `download_movielens`).

  Returns:
    The ml-100k folder.

  Raises:
    MovieLensError: if `data_dir` lacks a file, `cache_dir` cannot be created, its lock file cannot be opened and it
      holds no verified copy, or the download fails or does not verify.
    ValueError: if `timeout_seconds` is not a number > 0 (checked even when nothing is downloaded).
  """
  _check_timeout(timeout_seconds)
  if data_dir is not None:
    check_movielens_dir(data_dir)
    return data_dir
  cache_dir = os.path.expanduser(cache_dir)
  cached = os.path.join(cache_dir, ML100K_FOLDER)
  _make_cache_dir(cache_dir)
  lock_path = os.path.join(cache_dir, LOCK_FILE_NAME)
  try:
    # Read-only: flock needs no write access, so a run can lock a shared cache's lock file made by another user.
    lock = os.open(lock_path, os.O_RDONLY | os.O_CREAT, 0o666)
  except OSError as e:
    if not _cached_copy_is_valid(cached, expected_sha256):
      raise MovieLensError(
          f'{lock_path}: cannot open the lock file that keeps runs from downloading MovieLens 100K into {cache_dir} '
          f'at the same time ({e}), and {cached} holds no verified copy; nothing was downloaded. Fix: '
          f'{_write_failure_fix(cache_dir)}.') from e
    logging.warning('Using the verified MovieLens 100K download in %s without taking its lock %s (%s).', cached,
                    lock_path, e)
    return cached
  try:
    if not _try_flock(lock):
      logging.info('Waiting for another run to finish checking or downloading MovieLens 100K in %s (it holds the '
                   'lock file %s; Ctrl-C to stop waiting).', cache_dir, lock_path)
      fcntl.flock(lock, fcntl.LOCK_EX)
    if _cached_copy_is_valid(cached, expected_sha256):
      logging.info('Using the verified MovieLens 100K download in %s', cached)
      _remove_stale_parts(cache_dir)  # as download_movielens does: what killed runs left would else stay for good
      return cached
    return download_movielens(cache_dir, url, expected_sha256, timeout_seconds)
  finally:
    os.close(lock)  # releases the lock


def _read_lines(path: str, encoding: str) -> List[Tuple[int, str]]:
  """Returns (1-based line number, text) of the non-blank lines of `path`; lines end at \\n, \\r\\n or \\r.

  Raises:
    MovieLensError: naming the line and byte of the first byte that is not `encoding` text, or, for latin-1, the
      first non-ASCII line of a file that is UTF-8 (decoded as latin-1, 'é' would silently become 'Ã©').
  """
  with open(path, 'rb') as f:
    data = f.read()
  if encoding == ITEM_ENCODING and not data.isascii():
    try:
      data.decode('utf-8')
    except UnicodeDecodeError:
      pass  # not UTF-8: latin-1 as published
    else:
      n, raw = next((n, raw) for n, raw in enumerate(data.splitlines(), start=1) if not raw.isascii())
      raise _parse_error(path, n, f'the file is UTF-8 ({raw.decode("utf-8")!r}), but MovieLens 100K files are '
                         f'{ITEM_ENCODING} (was it saved as UTF-8? `iconv -f UTF-8 -t LATIN1` converts it back)')
  lines = []
  for n, raw in enumerate(data.splitlines(), start=1):
    try:
      line = raw.decode(encoding)
    except UnicodeDecodeError as e:
      raise _parse_error(path, n, f'byte {e.start + 1} (0x{raw[e.start]:02x}) is not {encoding} text') from e
    if line.strip():
      lines.append((n, line))
  return lines


def _is_whole_number(text: str) -> bool:
  """ASCII digits only: `str.isdigit` also takes latin-1's '²' and '³', which `int` refuses."""
  return text.isascii() and text.isdigit()


def _parse_error(path: str, line: int, problem: str) -> MovieLensError:
  return MovieLensError(f'{path}, line {line}: {problem}. Fix: restore the file from ml-100k.zip, or '
                        f'{_LOCAL_COPY_FIX}.')


def _refuse_repeated_key(path: str, first_line: Dict[_LineKey, int], key: _LineKey, line_number: int,
                         label: str) -> None:
  """Records the line `key` is first on, or raises if an earlier line of `path` already holds it.

  A repeated key would silently replace the earlier line's values (a user's age and zip, an item's title and
  genres, a genre's name), so it is refused naming both lines.

  Args:
    path: the MovieLens file being read (u.user, u.item or u.genre).
    first_line: key -> the 1-based line it is first on; `key` is added when new.
    key: the user id, item id or genre index on `line_number`.
    line_number: 1-based line of `path` holding `key`.
    label: what `key` is, as the message names it: '<label> <key!r> is already on line N' ('user id', 'item id',
      'genre index').

  Raises:
    MovieLensError: naming `line_number` and the earlier line, if `first_line` already holds `key`.
  """
  seen = first_line.setdefault(key, line_number)
  if seen != line_number:
    raise _parse_error(path, line_number, f'{label} {key!r} is already on line {seen}')


def _read_genres(path: str) -> List[str]:
  """Returns the genre names of u.genre ordered by their flag index."""
  by_index: Dict[int, str] = {}
  first_line: Dict[int, int] = {}  # flag index -> its u.genre line
  for line_number, line in _read_lines(path, ITEM_ENCODING):
    fields = line.split('|')
    if len(fields) != 2 or not _is_whole_number(fields[1]):
      raise _parse_error(path, line_number, f'expected "name|index", got {line!r}')
    index = int(fields[1])
    _refuse_repeated_key(path, first_line, index, line_number, 'genre index')
    by_index[index] = fields[0]
  if not by_index:
    raise _parse_error(path, 1, 'the file holds no genre (expected lines "name|index")')
  if sorted(by_index) != list(range(len(by_index))):
    raise _parse_error(path, 1, f'genre indices {sorted(by_index)} are not 0..{len(by_index) - 1}')
  return [by_index[i] for i in range(len(by_index))]


def _release_year(release_date: str) -> Optional[int]:
  """The year of a u.item release date ('01-Jan-1995' -> 1995), or None if it is not a real day-month-year date."""
  match = _RELEASE_DATE.match(release_date)
  if not match or match.group(2).lower() not in _MONTHS:
    return None
  day, month, year = int(match.group(1)), _MONTHS.index(match.group(2).lower()) + 1, int(match.group(3))
  try:
    datetime.date(year, month, day)
  except ValueError:  # e.g. 31-Feb or a year 0000
    return None
  return year


def _read_items(path: str, genres: List[str]) -> Dict[str, Tuple[str, str, Optional[int]]]:
  """Returns item id -> (title, genres joined by '|', release year or None) from u.item."""
  items = {}
  first_line: Dict[str, int] = {}  # item id -> its u.item line
  expected_fields = _NUM_ITEM_FIELDS_BEFORE_GENRES + len(genres)
  for line_number, line in _read_lines(path, ITEM_ENCODING):
    fields = line.split('|')
    if len(fields) != expected_fields:
      raise _parse_error(path, line_number, f'expected {expected_fields} "|"-separated fields '
                         f'({len(genres)} genre flags), got {len(fields)}')
    item_id, title, release_date = fields[0], fields[1], fields[2]
    _refuse_repeated_key(path, first_line, item_id, line_number, 'item id')
    flags = fields[_NUM_ITEM_FIELDS_BEFORE_GENRES:]
    if any(flag not in ('0', '1') for flag in flags):
      raise _parse_error(path, line_number, f'genre flags must be 0 or 1, got {flags}')
    genre_names = features.MULTI_VALUE_SEPARATOR.join(
        name for name, flag in zip(genres, flags) if flag == '1')
    year = None
    if release_date:
      year = _release_year(release_date)
      if year is None:
        raise _parse_error(path, line_number,
                           f'release date {release_date!r} is not a date like 01-Jan-1995')
    items[item_id] = (title, genre_names, year)
  return items


def read_users(path: str) -> Dict[str, Tuple[int, str, str, str]]:
  """Returns user id -> (age, gender, occupation, zip) from u.user.

  Raises:
    MovieLensError: naming the line of a malformed row, a repeated user id or an age outside
      `features.NUMERIC_COLUMN_RANGES`.
  """
  users = {}
  first_line: Dict[str, int] = {}  # user id -> its u.user line
  # The range the interactions format allows: checked here so that a bad age is reported at its u.user line.
  min_age, max_age = features.NUMERIC_COLUMN_RANGES[features.USER_AGE]
  for line_number, line in _read_lines(path, ITEM_ENCODING):
    fields = line.split('|')
    if len(fields) != 5 or not _is_whole_number(fields[1]):
      raise _parse_error(path, line_number, f'expected "id|age|gender|occupation|zip", got {line!r}')
    _refuse_repeated_key(path, first_line, fields[0], line_number, 'user id')
    age = int(fields[1])
    if not min_age <= age <= max_age:
      raise _parse_error(path, line_number, f'age {age} is outside {min_age}..{max_age}')
    users[fields[0]] = (age, fields[2], fields[3], fields[4])
  return users


def read_movielens(ml100k_dir: str,
                   rating_scale: Tuple[float, float] = interactions_lib.DEFAULT_RATING_SCALE
                   ) -> interactions_lib.Interactions:
  """Reads a MovieLens 100K folder as interactions with columns `features.MOVIELENS_COLUMNS`.

  u.data is checked as the interactions format would check it (ratings inside `rating_scale`, timestamps whole
  unix seconds, one row per user, item and timestamp), so a bad row is reported at its u.data line rather than
  at the line of the converted CSV.

  Args:
    ml100k_dir: folder holding u.data, u.item, u.user and u.genre.
    rating_scale: (min, max) allowed ratings, inclusive (MovieLens 100K rates 1 to 5 stars).

  Returns:
    The interactions, rows in u.data file order.

  Raises:
    MovieLensError: if a file is missing, empty or malformed, or u.data names an unknown user or item, holds a rating
      outside `rating_scale` or repeats a (user, item, timestamp).
    ValueError: if `rating_scale` is not (min, max) with finite min < max.
  """
  low, high = interactions_lib.check_rating_scale(rating_scale)
  check_movielens_dir(ml100k_dir)
  genres = _read_genres(os.path.join(ml100k_dir, 'u.genre'))
  items = _read_items(os.path.join(ml100k_dir, 'u.item'), genres)
  users = read_users(os.path.join(ml100k_dir, 'u.user'))
  data_path = os.path.join(ml100k_dir, 'u.data')
  columns: Dict[str, list] = {name: [] for name in features.MOVIELENS_COLUMNS}
  first_line: Dict[Tuple[str, str, int], int] = {}  # (user, item, timestamp) -> its first u.data line
  for line_number, line in _read_lines(data_path, 'ascii'):
    fields = line.split('\t')
    if len(fields) != 4:
      raise _parse_error(data_path, line_number, f'expected 4 tab-separated fields, got {line!r}')
    user_id, item_id, rating_text, timestamp_text = fields
    if user_id not in users:
      raise _parse_error(data_path, line_number, f'user {user_id!r} is not in u.user')
    if item_id not in items:
      raise _parse_error(data_path, line_number, f'item {item_id!r} is not in u.item')
    rating = interactions_lib.parse_float(rating_text)
    timestamp = interactions_lib.parse_int(timestamp_text)
    if rating is None or timestamp is None:
      raise _parse_error(data_path, line_number, f'rating/timestamp not numeric in {line!r}')
    if not (math.isfinite(rating) and low <= rating <= high):
      raise _parse_error(data_path, line_number,
                         f'rating {rating_text!r} is outside the rating scale [{low:g}, {high:g}]')
    if not 0 <= timestamp < interactions_lib.MAX_TIMESTAMP_SECONDS:
      raise _parse_error(data_path, line_number, f'timestamp {timestamp_text!r} is not unix seconds '
                         f'(0 <= t < {interactions_lib.MAX_TIMESTAMP_SECONDS:,})')
    seen = first_line.setdefault((user_id, item_id, timestamp), line_number)
    if seen != line_number:
      raise _parse_error(data_path, line_number, f'the row repeats the user {user_id!r}, item {item_id!r} '
                         f'and timestamp {timestamp} of line {seen}')
    row = (user_id, item_id, rating, timestamp) + users[user_id] + items[item_id]
    for name, value in zip(features.MOVIELENS_COLUMNS, row):
      columns[name].append(value)
  if not first_line:
    raise _parse_error(data_path, 1, 'the file holds no rating (expected lines "user id<TAB>item id<TAB>rating'
                       '<TAB>timestamp")')
  columns[features.RATING] = np.asarray(columns[features.RATING], dtype=np.float64)
  columns[features.TIMESTAMP] = np.asarray(columns[features.TIMESTAMP], dtype=np.int64)
  types = dict(interactions_lib.REQUIRED_COLUMN_TYPES)
  types.update(MOVIELENS_COLUMN_TYPES)
  return interactions_lib.Interactions(
      columns=columns, column_types={name: types[name] for name in features.MOVIELENS_COLUMNS},
      path=data_path)


def write_movielens_interactions(
    ml100k_dir: str, output_csv: str,
    rating_scale: Tuple[float, float] = interactions_lib.DEFAULT_RATING_SCALE) -> int:
  """Converts a MovieLens 100K folder to an interactions CSV.

  Args:
    ml100k_dir: folder holding u.data, u.item, u.user and u.genre.
    output_csv: the interactions CSV to write (UTF-8).
    rating_scale: (min, max) allowed ratings, inclusive; a u.data rating outside it is refused.

  Returns:
    The number of rows written.

  Raises:
    MovieLensError: if a file is missing or malformed (see read_movielens).
    ValueError: if `rating_scale` is not (min, max) with finite min < max.
  """
  interactions = read_movielens(ml100k_dir, rating_scale)
  interactions_lib.write_interactions(interactions, output_csv)
  return interactions.num_rows
