"""Tests for ingestion.movielens: an invented ml-100k folder, a loopback download, opt-in real data."""

import argparse
import errno
import fcntl
import functools
import hashlib
import http.client
import http.server
import math
import os
import pathlib
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zipfile
from typing import Any, Dict, Iterator, Optional, Tuple

import pytest

from ingestion import interactions as il
from ingestion import movielens
from tests import loopback_http

# Invented rows in the ml-100k layout (not MovieLens data).
FAKE_FILES = {
    'u.genre': 'unknown|0\nAction|1\nComedy|2\n\n'.encode('latin-1'),
    'u.item': ('1|Synthetic Film A (1990)|01-Jan-1990||http://example.invalid/a|0|1|1\n'
               '2|Synthétic Film B, The (2001)|15-Mar-2001||http://example.invalid/b|0|0|1\n'
               '3|unknown||||1|0|0\n').encode('latin-1'),
    'u.user': b'1|24|M|technician|12345\n2|53|F|other|K1A0B\n',
    'u.data': b'2\t3\t5\t900000002\n1\t1\t3\t900000001\n1\t2\t4\t900000003\n',
}
EXPECTED_CSV = (
    'user_id,item_id,rating,timestamp,user_age,user_gender,user_occupation,user_zip,item_title,'
    'item_genres,item_release_year\n'
    '2,3,5,900000002,53,F,other,K1A0B,unknown,unknown,\n'
    '1,1,3,900000001,24,M,technician,12345,Synthetic Film A (1990),Action|Comedy,1990\n'
    '1,2,4,900000003,24,M,technician,12345,"Synthétic Film B, The (2001)",Comedy,2001\n')


def _fake_dir(root: pathlib.Path, files: Optional[Dict[str, bytes]] = None) -> str:
  folder = os.path.join(str(root), 'ml-100k')
  os.makedirs(folder, exist_ok=True)
  for name, data in (files or FAKE_FILES).items():
    with open(os.path.join(folder, name), 'wb') as f:
      f.write(data)
  return folder


def _reading_error(root: pathlib.Path, **files: bytes) -> Tuple[str, str]:
  """(the fake folder, the MovieLensError message) of reading FAKE_FILES with `files` replacing some of them."""
  folder = _fake_dir(root, dict(FAKE_FILES, **files))
  with pytest.raises(movielens.MovieLensError) as e:
    movielens.read_movielens(folder)
  return folder, str(e.value)


def test_converts_in_u_data_order_with_exact_rows(tmp_path: pathlib.Path) -> None:
  out = os.path.join(str(tmp_path), 'out.csv')
  assert movielens.write_movielens_interactions(_fake_dir(tmp_path), out) == 3
  with open(out, encoding='utf-8', newline='') as f:
    assert f.read() == EXPECTED_CSV
  read_back = il.read_interactions(out)
  assert read_back.column_types == {**il.REQUIRED_COLUMN_TYPES, **movielens.MOVIELENS_COLUMN_TYPES}
  assert read_back.column('item_release_year') == [None, 1990, 2001]


@pytest.mark.parametrize('missing', ['u.data', 'u.item', 'u.user', 'u.genre'])
def test_local_dir_missing_file_is_named(tmp_path: pathlib.Path, missing: str) -> None:
  files = {k: v for k, v in FAKE_FILES.items() if k != missing}
  folder = _fake_dir(tmp_path, files)
  with pytest.raises(movielens.MovieLensError) as e:
    movielens.locate_movielens(folder, cache_dir=str(tmp_path))
  assert str(e.value) == (
      f'{folder}: missing file {missing} (the folder must hold u.data, u.item, u.user, u.genre). Fix: pass a '
      'local copy with --data-dir PATH (the folder holding u.data, u.item, u.user, u.genre); unzip ml-100k.zip '
      'there if needed.')


def test_benchmarks_refuse_a_data_dir_that_is_no_movielens_folder(tmp_path: pathlib.Path, capsys) -> None:
  folder = _fake_dir(tmp_path)
  assert movielens.folder_argument(folder) == folder
  os.remove(os.path.join(folder, 'u.user'))
  with pytest.raises(argparse.ArgumentTypeError, match=r'missing file u\.user \(the folder must hold u\.data'):
    movielens.folder_argument(folder)
  # A benchmark's usage error (exit 2) before it reads anything; before, a MovieLensError traceback
  # (peer_segments.py, quality_report.py) or a FileNotFoundError for u.data (serving_quality.py).
  parser = argparse.ArgumentParser(prog='bench')
  parser.add_argument('--data-dir', type=movielens.folder_argument)
  with pytest.raises(SystemExit) as exit_info:
    parser.parse_args(['--data-dir', str(tmp_path / 'nowhere')])
  assert exit_info.value.code == 2
  assert f"bench: error: argument --data-dir: {tmp_path / 'nowhere'}: no such folder. Fix: pass a local copy" in (
      capsys.readouterr().err)


def test_unknown_item_in_u_data_names_file_and_line(tmp_path: pathlib.Path) -> None:
  files = dict(FAKE_FILES, **{'u.data': b'1\t1\t3\t1\n1\t9\t3\t2\n'})
  with pytest.raises(movielens.MovieLensError, match=r"u.data, line 2: item '9' is not in u.item"):
    movielens.read_movielens(_fake_dir(tmp_path, files))


@pytest.mark.parametrize('u_data, line, problem', [
    # A blank line 2 keeps its number: the bad row is line 3 of u.data.
    (b'1\t1\t3\t1\n\n1\t2\t9\t2\n', 3, "rating '9' is outside the rating scale [1, 5]"),
    (b'1\t1\t0.5\t1\n', 1, "rating '0.5' is outside the rating scale [1, 5]"),
    (b'1\t1\tnan\t1\n', 1, "rating 'nan' is outside the rating scale [1, 5]"),
    (b'1\t1\t3_0\t1\n', 1, 'rating/timestamp not numeric'),  # float() would have read 30
    (b'1\t1\t3\t-1\n', 1, "timestamp '-1' is not unix seconds (0 <= t < 100,000,000,000)"),
    (b'1\t1\t3\t881250949000\n', 1, "timestamp '881250949000' is not unix seconds"),
    (b'1\t1\t3\t5\n1\t2\t4\t6\n1\t1\t4\t5\n', 3,
     "the row repeats the user '1', item '1' and timestamp 5 of line 1"),
])
def test_bad_u_data_row_names_u_data_and_its_line(tmp_path: pathlib.Path, u_data: bytes, line: int,
                                                  problem: str) -> None:
  folder = _fake_dir(tmp_path, dict(FAKE_FILES, **{'u.data': u_data}))
  with pytest.raises(movielens.MovieLensError) as e:
    movielens.write_movielens_interactions(folder, os.path.join(str(tmp_path), 'out', 'ml.csv'))
  message = str(e.value)
  assert message.startswith(f'{os.path.join(folder, "u.data")}, line {line}: {problem}')
  assert 'Fix: restore the file from ml-100k.zip' in message
  assert not os.path.exists(os.path.join(str(tmp_path), 'out'))  # refused before the CSV is written


@pytest.mark.parametrize('name, data, line, problem', [
    # latin-1's '²' passes str.isdigit, which let int() raise a bare ValueError naming neither file nor line.
    ('u.user', '1|24|M|technician|12345\n2|5²|F|other|K1A0B\n'.encode('latin-1'), 2,
     "expected \"id|age|gender|occupation|zip\", got '2|5²|F|other|K1A0B'"),
    ('u.genre', 'unknown|0\nAction|²\n'.encode('latin-1'), 2, "expected \"name|index\", got 'Action|²'"),
])
def test_a_non_ascii_digit_in_u_user_or_u_genre_names_the_file_and_line(tmp_path: pathlib.Path, name: str,
                                                                         data: bytes, line: int, problem: str) -> None:
  folder, message = _reading_error(tmp_path, **{name: data})
  assert message.startswith(f'{os.path.join(folder, name)}, line {line}: {problem}')


@pytest.mark.parametrize('name, data, line, problem', [
    # Before, the later row silently replaced the earlier one: user 1's rows got age 99 and zip 54321, item 1's
    # rows the second title, and nothing said the file was damaged.
    ('u.user', b'1|24|M|technician|12345\n2|53|F|other|K1A0B\n1|99|F|writer|54321\n', 3,
     "user id '1' is already on line 1"),
    ('u.item', FAKE_FILES['u.item'] + b'1|Another Film (1999)|01-Jan-1999||http://example.invalid/c|1|0|0\n', 4,
     "item id '1' is already on line 1"),
], ids=['u.user', 'u.item'])
def test_a_repeated_user_or_item_id_names_both_lines(tmp_path: pathlib.Path, name: str, data: bytes, line: int,
                                                      problem: str) -> None:
  folder, message = _reading_error(tmp_path, **{name: data})
  assert message.startswith(f'{os.path.join(folder, name)}, line {line}: {problem}. Fix: restore the file')


def test_a_repeated_genre_index_names_both_lines(tmp_path: pathlib.Path) -> None:
  # Before, 'Comedy|1' silently replaced 'Action|1' and the indices 0..2 still looked complete: item 1 (flags
  # 0|1|1) got the genres 'Comedy|Drama' and no item was ever 'Action'.
  folder, message = _reading_error(tmp_path, **{'u.genre': b'unknown|0\nAction|1\nComedy|1\nDrama|2\n'})
  assert message.startswith(
      f'{os.path.join(folder, "u.genre")}, line 3: genre index 1 is already on line 2. Fix: restore the file')


@pytest.mark.parametrize('u_data, line, problem', [
    # Before, the message named no line, and its 'position' counted from the start of a decoding chunk.
    (b'1\t1\t3\t5\n2\t3\t4\xe9\t6\n', 2, 'byte 6 (0xe9) is not ascii text'),
    (b'\xef\xbb\xbf1\t1\t3\t5\n', 1, 'byte 1 (0xef) is not ascii text'),  # a UTF-8 byte order mark
    # A lone \r ends a line, as before: the bad byte is on line 3.
    (b'1\t1\t3\t5\r2\t3\t4\t6\r\n\x80', 3, 'byte 1 (0x80) is not ascii text'),
])
def test_a_non_ascii_byte_in_u_data_names_its_line(tmp_path: pathlib.Path, u_data: bytes, line: int,
                                                   problem: str) -> None:
  folder, message = _reading_error(tmp_path, **{'u.data': u_data})
  assert message.startswith(
      f'{os.path.join(folder, "u.data")}, line {line}: {problem}. Fix: restore the file from ml-100k.zip')


def test_a_u_item_saved_as_utf8_names_its_first_non_ascii_line(tmp_path: pathlib.Path) -> None:
  # Before, its UTF-8 bytes were decoded as latin-1 without a word: item 2's title became 'SynthÃ©tic Film B'.
  utf8_item = FAKE_FILES['u.item'].decode('latin-1').encode('utf-8')
  folder, message = _reading_error(tmp_path, **{'u.item': utf8_item})
  assert message.startswith(
      f'{os.path.join(folder, "u.item")}, line 2: the file is UTF-8 '
      "('2|Synthétic Film B, The (2001)|15-Mar-2001||http://example.invalid/b|0|0|1'), but MovieLens 100K files "
      'are latin-1 (was it saved as UTF-8? `iconv -f UTF-8 -t LATIN1` converts it back). Fix: restore the file')


def test_u_data_lines_may_end_with_cr_lf_or_a_lone_cr(tmp_path: pathlib.Path) -> None:
  folder = _fake_dir(tmp_path, dict(FAKE_FILES, **{'u.data': b'2\t3\t5\t7\r\n\r\n1\t1\t3\t8\r1\t2\t4\t9'}))
  got = movielens.read_movielens(folder)
  assert (got.column('item_id'), got.column('timestamp').tolist()) == (['3', '1', '2'], [7, 8, 9])


def test_an_age_outside_the_format_range_names_its_u_user_line(tmp_path: pathlib.Path) -> None:
  # Before, read_movielens took the 0 and only reading the converted CSV refused it, naming a line of that
  # generated file instead of u.user.
  folder, message = _reading_error(tmp_path, **{'u.user': b'1|24|M|technician|12345\n2|0|F|other|K1A0B\n'})
  assert message.startswith(
      f'{os.path.join(folder, "u.user")}, line 2: age 0 is outside 1..120. Fix: restore the file from ml-100k.zip')
  folder = _fake_dir(tmp_path, dict(FAKE_FILES, **{'u.user': b'1|1|M|a|1\n2|120|F|b|2\n'}))
  users = movielens.read_users(os.path.join(folder, 'u.user'))
  assert users == {'1': (1, 'M', 'a', '1'), '2': (120, 'F', 'b', '2')}


@pytest.mark.parametrize('release_date', ['15-Mxr-2001', '31-Feb-2001', '00-Mar-2001', '15-Mar-0000'])
def test_a_release_date_that_is_no_date_names_its_u_item_line(tmp_path: pathlib.Path, release_date: str) -> None:
  # Before, any two digits and three letters passed: each of these became the release year 2001 (or 0).
  item = FAKE_FILES['u.item'].replace(b'15-Mar-2001', release_date.encode('latin-1'))
  folder, message = _reading_error(tmp_path, **{'u.item': item})
  assert message.startswith(f'{os.path.join(folder, "u.item")}, line 2: release date {release_date!r} is not '
                                 'a date like 01-Jan-1995. Fix: restore the file')


def test_release_dates_with_one_digit_days_or_other_letter_cases_give_their_year(tmp_path: pathlib.Path) -> None:
  item = FAKE_FILES['u.item'].replace(b'01-Jan-1990', b'1-JAN-1990').replace(b'15-Mar-2001', b'29-feb-2000')
  got = movielens.read_movielens(_fake_dir(tmp_path, dict(FAKE_FILES, **{'u.item': item})))
  assert got.column('item_release_year') == [None, 1990, 2000]


@pytest.mark.parametrize('name, problem', [
    # Before, an empty u.genre was read as no genres, and the error blamed every line of u.item for its flags.
    ('u.genre', 'the file holds no genre (expected lines "name|index")'),
    # Before, an empty u.data became a CSV with a header only, refused later at line 2 of that generated CSV.
    ('u.data', 'the file holds no rating (expected lines "user id<TAB>item id<TAB>rating<TAB>timestamp")'),
])
def test_an_empty_u_genre_or_u_data_is_named(tmp_path: pathlib.Path, name: str, problem: str) -> None:
  folder = _fake_dir(tmp_path, dict(FAKE_FILES, **{name: b'\n \n'}))
  with pytest.raises(movielens.MovieLensError) as e:
    movielens.write_movielens_interactions(folder, os.path.join(str(tmp_path), 'out', 'ml.csv'))
  assert str(e.value).startswith(f'{os.path.join(folder, name)}, line 1: {problem}. Fix: restore the file')
  assert not os.path.exists(os.path.join(str(tmp_path), 'out'))


def test_u_data_rating_inside_another_scale_is_accepted(tmp_path: pathlib.Path) -> None:
  folder = _fake_dir(tmp_path, dict(FAKE_FILES, **{'u.data': b'1\t1\t9\t1\n2\t2\t0\t2\n'}))
  got = movielens.read_movielens(folder, rating_scale=(0, 10))
  assert got.column('rating').tolist() == [9.0, 0.0]
  with pytest.raises(ValueError, match='min < max'):
    movielens.read_movielens(folder, rating_scale=(5, 1))


ServedZip = Tuple[str, http.server.ThreadingHTTPServer]  # (URL, server)


def _write_zip(path: pathlib.Path, compression: int = zipfile.ZIP_STORED) -> None:
  """Writes FAKE_FILES as `path`, a zip holding ml-100k/u.genre, u.item, u.user and u.data in that order."""
  with zipfile.ZipFile(path, 'w', compression) as archive:
    for name, data in FAKE_FILES.items():
      archive.writestr(f'ml-100k/{name}', data)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
  def log_message(self, *args: Any) -> None:  # keep test output clean
    pass


class _CountingHandler(_QuietHandler):
  """Records each GET's path in `server.requests`; if `server.gate` is an Event, answers once it is set."""

  def do_GET(self) -> None:  # pylint: disable=invalid-name
    self.server.requests.append(self.path)
    if self.server.gate is not None:
      self.server.gate.wait(30)
    super().do_GET()


@pytest.fixture
def zip_server(tmp_path: pathlib.Path) -> Iterator[ServedZip]:
  """Serves ml-100k.zip (built from FAKE_FILES) on 127.0.0.1; yields (its URL, the server): the server's `requests`
  lists the paths requested, and setting its `gate` to an Event holds each answer until the Event is set."""
  site = tmp_path / 'site'
  site.mkdir()
  _write_zip(site / 'ml-100k.zip')
  with loopback_http.serving(functools.partial(_CountingHandler, directory=str(site))) as server:
    server.server.requests = []
    server.server.gate = None
    yield f'{server.url}/ml-100k.zip', server.server
    if server.server.gate is not None:
      server.server.gate.set()  # before the server closes: a held answer ends


def test_download_checksum_mismatch_names_the_file(tmp_path: pathlib.Path, zip_server: ServedZip) -> None:
  url, _ = zip_server
  with pytest.raises(movielens.MovieLensError) as e:
    movielens.locate_movielens(None, cache_dir=str(tmp_path / 'cache'), url=url)
  assert 'checksum mismatch for u.data' in str(e.value)
  assert '--data-dir PATH' in str(e.value)


def test_download_verifies_extracts_and_reuses_the_cache(tmp_path: pathlib.Path,
                                                          zip_server: ServedZip) -> None:
  url, server = zip_server
  sha256 = {name: hashlib.sha256(FAKE_FILES[name]).hexdigest() for name in ('u.data', 'u.item', 'u.user')}
  cache = str(tmp_path / 'cache')
  folder = movielens.locate_movielens(None, cache_dir=cache, url=url, expected_sha256=sha256)
  assert folder == os.path.join(cache, 'ml-100k')
  with open(os.path.join(folder, 'u.item'), 'rb') as f:
    assert f.read() == FAKE_FILES['u.item']
  server.shutdown()  # a verified cache needs no network
  assert movielens.locate_movielens(None, cache_dir=cache, url=url, expected_sha256=sha256) == folder


def test_no_network_fails_fast_with_the_fix(tmp_path: pathlib.Path) -> None:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
  url = f'http://127.0.0.1:{port}/ml-100k.zip'  # nothing listens there any more
  start = time.monotonic()
  with pytest.raises(movielens.MovieLensError) as e:
    movielens.locate_movielens(None, cache_dir=str(tmp_path), url=url)
  assert time.monotonic() - start < 15
  message = str(e.value)
  assert f'Could not download MovieLens 100K from {url}' in message
  assert 'pass a local copy with --data-dir PATH (the folder holding u.data, u.item, u.user, u.genre)' in message


TRICKLE_BYTES = 100
TRICKLE_INTERVAL_SECONDS = 0.04  # one byte each: the whole body takes 4 s


@pytest.fixture
def trickle_server() -> Iterator[str]:
  """Serves a 100-byte body on 127.0.0.1 one byte every 0.04 s (until the test ends); yields its URL."""
  stop = threading.Event()

  class Trickle(_QuietHandler):
    def do_GET(self) -> None:  # pylint: disable=invalid-name
      self.send_response(200)
      self.send_header('Content-Length', str(TRICKLE_BYTES))
      self.end_headers()
      for _ in range(TRICKLE_BYTES):
        if stop.wait(TRICKLE_INTERVAL_SECONDS):
          return
        self.wfile.write(b'x')
        self.wfile.flush()

  with loopback_http.serving(Trickle) as server:
    yield f'{server.url}/ml-100k.zip'
    stop.set()  # before the server closes: the handler stops writing


def test_a_trickling_download_stops_at_its_deadline(tmp_path: pathlib.Path, trickle_server: str) -> None:
  # Before, the 0.5 s bounded each socket read only: a byte every 0.04 s kept the download going for all of its 4 s,
  # and the 100 bytes then failed as 'not a zip archive'.
  url = trickle_server
  cache = tmp_path / 'cache'
  start = time.monotonic()
  with pytest.raises(movielens.MovieLensError) as e:
    movielens.locate_movielens(None, cache_dir=str(cache), url=url, timeout_seconds=0.5)
  elapsed = time.monotonic() - start
  assert 0.5 <= elapsed < 2.0
  message = str(e.value)
  # The bytes that had arrived by then depend on the machine's load: about 0.5 / 0.04 = 12.
  assert message.startswith(f'Could not download MovieLens 100K from {url} within its 0.5 s deadline (connecting '
                            'and reading all of it; ')
  assert message.endswith(' bytes had arrived). Fix: check the network; without internet access, unzip ml-100k.zip '
                          'elsewhere and pass a local copy with --data-dir PATH (the folder holding u.data, u.item, '
                          'u.user, u.genre).')
  # The partial file is deleted before the error is raised: before, the abandoned transfer deleted it at its next
  # byte, so a CLI that exited on the error at once left it in the cache for good.
  assert os.listdir(cache) == ['ml-100k.lock']


def test_a_cache_dir_that_cannot_be_created_names_it_and_the_fix(tmp_path: pathlib.Path) -> None:
  # Before, a raw FileExistsError (PermissionError for an unwritable home) escaped the CLI's error handling as a
  # traceback, before any download was tried.
  cache = tmp_path / 'cache'
  cache.write_bytes(b'')  # a file where the folder should be
  with pytest.raises(movielens.MovieLensError) as e:
    movielens.locate_movielens(None, cache_dir=str(cache), url='http://127.0.0.1:9/ml-100k.zip')
  message = str(e.value)
  assert message.startswith(f'{cache}: cannot create the folder for the MovieLens 100K download ([Errno 17]')
  assert message.endswith('Fix: pass a writable folder with --cache-dir, or pass a local copy with --data-dir PATH '
                          '(the folder holding u.data, u.item, u.user, u.genre).')


def test_a_cache_dir_that_cannot_be_written_names_it_and_the_fix(tmp_path: pathlib.Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
  # Before, a bare PermissionError (e.g. a ~/.cache/woonkly left owned by root), which the CLI blamed on --output-dir.
  # (Tests may run as root, whom file modes do not stop: the refusal is simulated.)
  cache = tmp_path / 'cache'
  cache.mkdir()

  def refused(**kwargs: Any) -> None:
    raise PermissionError(errno.EACCES, 'Permission denied', os.path.join(kwargs['dir'], kwargs['prefix']))

  monkeypatch.setattr(movielens.tempfile, 'mkstemp', refused)
  with pytest.raises(movielens.MovieLensError) as e:
    movielens.locate_movielens(None, cache_dir=str(cache), url='http://127.0.0.1:9/ml-100k.zip')
  assert str(e.value) == (
      f"{cache}: cannot write the MovieLens 100K download there ([Errno 13] Permission denied: '{cache}/ml-100k.zip.'"
      '). Fix: pass a writable folder with --cache-dir, or pass a local copy with --data-dir PATH (the folder holding '
      'u.data, u.item, u.user, u.genre).')


def _fake_sha256() -> Dict[str, str]:
  return {name: hashlib.sha256(FAKE_FILES[name]).hexdigest() for name in ('u.data', 'u.item', 'u.user')}


@pytest.mark.parametrize('timeout_seconds', [math.inf, 1e300], ids=['inf', 'huge'])
def test_a_deadline_of_inf_or_beyond_what_can_be_waited_is_no_deadline(tmp_path: pathlib.Path, zip_server: ServedZip,
                                                                      timeout_seconds: float) -> None:
  # Before, OverflowError ('timestamp too large to convert to C _PyTime_t') from the wait for the transfer, and its
  # .part file was left in the cache.
  url, _ = zip_server
  cache = tmp_path / 'cache'
  folder = movielens.locate_movielens(None, cache_dir=str(cache), url=url, expected_sha256=_fake_sha256(),
                                      timeout_seconds=timeout_seconds)
  assert pathlib.Path(folder, 'u.data').read_bytes() == FAKE_FILES['u.data']
  assert sorted(os.listdir(cache)) == ['ml-100k', 'ml-100k.lock', 'ml-100k.zip']


@pytest.mark.parametrize('timeout_seconds', [math.nan, 0.0, -1], ids=['nan', 'zero', 'negative'])
def test_a_deadline_that_is_no_positive_number_is_refused_before_anything_is_written(
    tmp_path: pathlib.Path, timeout_seconds: float) -> None:
  # Before, NaN raised a bare ValueError of the socket ('Invalid value NaN (not a number)') and left a .part file;
  # 0 and -1 tried to download, then failed 'within its -1 s deadline'.
  cache = tmp_path / 'cache'
  expected = (f'timeout_seconds must be a number of seconds > 0 (math.inf for no deadline), got {timeout_seconds!r}. '
              'Fix: pass the longest the whole download may take, e.g. 120 (the default).')
  for call in (functools.partial(movielens.download_movielens, str(cache)),
               functools.partial(movielens.locate_movielens, None, cache_dir=str(cache)),
               # Refused too when there is nothing to download.
               functools.partial(movielens.locate_movielens, _fake_dir(tmp_path))):
    with pytest.raises(ValueError) as e:
      call(url='http://127.0.0.1:9/ml-100k.zip', timeout_seconds=timeout_seconds)
    assert type(e.value) is ValueError  # a caller's mistake, not a MovieLensError about the data
    assert str(e.value) == expected
  assert not cache.exists()


def _cut_short_handler(body: bytes, sent: int, chunked: bool) -> Any:
  """A handler announcing `body` (by Content-Length, or chunked) that sends its first `sent` bytes and closes."""

  class CutShort(_QuietHandler):
    def do_GET(self) -> None:  # pylint: disable=invalid-name
      self.send_response(200)
      self.send_header('Transfer-Encoding' if chunked else 'Content-Length', 'chunked' if chunked else str(len(body)))
      self.end_headers()
      # A chunked body is cut before its last (empty) chunk.
      self.wfile.write(b'%x\r\n%s\r\n' % (sent, body[:sent]) if chunked else body[:sent])

  return CutShort


@pytest.mark.parametrize('sent_fraction, chunked, of_expected', [
    (0.5, False, True),  # the server closes the connection half-way
    (0.0, False, True),  # ... before the first byte of the body
    (0.5, True, False),  # a chunked body (no size announced) cut before its end
], ids=['half', 'none', 'chunked'])
def test_a_download_cut_short_says_so_and_keeps_nothing(tmp_path: pathlib.Path, sent_fraction: float, chunked: bool,
                                                        of_expected: bool) -> None:
  # Before, urllib's read1 ended quietly at the closed connection, the first half of the zip became ml-100k.zip and
  # was reported as 'not a zip archive' (and left in the cache); a cut chunked body was a bare 'IncompleteRead(0
  # bytes read)'.
  _write_zip(tmp_path / 'served.zip')
  body = (tmp_path / 'served.zip').read_bytes()
  sent = int(len(body) * sent_fraction)
  cache = tmp_path / 'cache'
  with loopback_http.serving(_cut_short_handler(body, sent, chunked)) as server:
    url = f'{server.url}/ml-100k.zip'
    with pytest.raises(movielens.MovieLensError) as e:
      movielens.locate_movielens(None, cache_dir=str(cache), url=url)
  of_total = f' of {len(body):,}' if of_expected else ''
  assert str(e.value) == (
      f'Could not download MovieLens 100K from {url}: the download ended after {sent:,}{of_total} bytes (the server '
      f'closed the connection before the end); nothing was kept. Fix: run again to retry; or download {url} by hand '
      f'and unzip it in {cache}, so that {cache / "ml-100k"} holds the files (the next run verifies and uses them); '
      'or pass a local copy with --data-dir PATH (the folder holding u.data, u.item, u.user, u.genre).')
  assert isinstance(e.value.__cause__, http.client.IncompleteRead)
  assert os.listdir(cache) == ['ml-100k.lock']  # no ml-100k.zip, no .part file


def _staging_folders(cache: pathlib.Path) -> list:
  return sorted(n for n in os.listdir(cache) if n.startswith('ml-100k.') and n.endswith('.part'))


def test_a_folder_swap_that_fails_at_the_rename_names_both_folders_and_keeps_the_new_one(
    tmp_path: pathlib.Path, zip_server: ServedZip, monkeypatch: pytest.MonkeyPatch) -> None:
  # Before, a bare PermissionError naming no folder (the CLI then blamed --output-dir), and the extracted files were
  # deleted.
  url, _ = zip_server
  cache = tmp_path / 'cache'
  ml100k = str(cache / 'ml-100k')
  rename = os.rename
  denied = PermissionError(errno.EACCES, 'Permission denied')

  def failing_rename(src: str, dst: str) -> None:
    if dst == ml100k:
      raise denied
    rename(src, dst)

  monkeypatch.setattr(os, 'rename', failing_rename)
  with pytest.raises(movielens.MovieLensError) as e:
    movielens.locate_movielens(None, cache_dir=str(cache), url=url, expected_sha256=_fake_sha256())
  [staging_name] = _staging_folders(cache)
  staging = cache / staging_name
  assert str(e.value) == (
      f'{cache / "ml-100k.zip"} (from {url}) was extracted but not put in place: renaming {staging} to {ml100k} '
      f'failed ([Errno 13] Permission denied). The extracted files (not verified yet) are left in {staging}. Fix: '
      f'check that {cache} and everything in it can be written, then rename {staging} to {ml100k} yourself '
      f'(deleting any {ml100k} first; the next run verifies it) or delete {staging} and run again; or pass a local '
      'copy with --data-dir PATH (the folder holding u.data, u.item, u.user, u.genre).')
  assert e.value.__cause__ is denied
  assert sorted(os.listdir(cache)) == sorted(['ml-100k.lock', 'ml-100k.zip', staging_name])
  assert {n: (staging / n).read_bytes() for n in os.listdir(staging)} == FAKE_FILES
  # The fix the message gives works: the renamed folder verifies and is used without a download.
  monkeypatch.undo()
  os.rename(staging, ml100k)
  assert movielens.locate_movielens(None, cache_dir=str(cache), url='http://127.0.0.1:9/ml-100k.zip',
                                    expected_sha256=_fake_sha256()) == ml100k


def test_a_folder_swap_that_fails_deleting_the_earlier_folder_says_what_is_left(
    tmp_path: pathlib.Path, zip_server: ServedZip, monkeypatch: pytest.MonkeyPatch) -> None:
  url, _ = zip_server
  cache = tmp_path / 'cache'
  ml100k = _fake_dir(cache, {'u.data': b'stale u.data\n', 'u.genre': b'stale|0\n'})  # does not verify
  rmtree = shutil.rmtree
  busy = OSError(errno.EBUSY, 'Device or resource busy')

  def failing_rmtree(path: str, *args: Any, **kwargs: Any) -> None:
    if path == ml100k:
      os.remove(os.path.join(path, 'u.data'))  # partly deleted
      raise busy
    rmtree(path, *args, **kwargs)

  monkeypatch.setattr(shutil, 'rmtree', failing_rmtree)
  with pytest.raises(movielens.MovieLensError) as e:
    movielens.locate_movielens(None, cache_dir=str(cache), url=url, expected_sha256=_fake_sha256())
  [staging_name] = _staging_folders(cache)
  staging = cache / staging_name
  assert str(e.value).startswith(
      f'{cache / "ml-100k.zip"} (from {url}) was extracted but not put in place: deleting the earlier {ml100k} failed '
      f'([Errno 16] Device or resource busy). The extracted files (not verified yet) are left in {staging}; '
      f'{ml100k}, the earlier copy (which did not verify), may be partly deleted. Fix: check that {cache} ')
  assert e.value.__cause__ is busy
  assert sorted(os.listdir(cache)) == sorted(['ml-100k', 'ml-100k.lock', 'ml-100k.zip', staging_name])
  assert os.listdir(ml100k) == ['u.genre']
  assert {n: (staging / n).read_bytes() for n in os.listdir(staging)} == FAKE_FILES


def _stale_part(cache: pathlib.Path, name: str, folder: bool = False, age_seconds: Optional[float] = None) -> str:
  """Makes `name` in `cache`, a `.part` file (or folder holding one file) last written `age_seconds` ago (default:
  a minute more than STALE_PART_SECONDS); returns its name."""
  path = cache / name
  if folder:
    path.mkdir()
    (path / 'u.data').write_bytes(b'partial\n')
  else:
    path.write_bytes(b'partial')
  written = time.time() - (movielens.STALE_PART_SECONDS + 60 if age_seconds is None else age_seconds)
  os.utime(path, (written, written))
  return name


@pytest.mark.parametrize('cached', [False, True], ids=['download', 'verified-cache'])
def test_stale_part_files_of_killed_runs_are_removed_and_only_those(tmp_path: pathlib.Path, zip_server: ServedZip,
                                                                    cached: bool) -> None:
  # Before, a download or extraction killed outright left its .part file or folder (up to the zip's 4.9 MB) in the
  # cache, and nothing ever removed it; each run's random name added one more.
  url, _ = zip_server
  cache = tmp_path / 'cache'
  if cached:
    movielens.locate_movielens(None, cache_dir=str(cache), url=url, expected_sha256=_fake_sha256())
  else:
    cache.mkdir()
  removed = [_stale_part(cache, 'ml-100k.zip.k1lled_1.part'),  # a download killed an hour ago
             _stale_part(cache, 'ml-100k.k1lled_2.part', folder=True)]  # an extraction
  kept = [
      # Young: maybe another run's, between its creation and its lock.
      _stale_part(cache, 'ml-100k.zip.y0ung__1.part', age_seconds=movielens.STALE_PART_SECONDS - 60),
      # Not names the module makes (the first is a browser's partial download).
      _stale_part(cache, 'ml-100k.zip.part'), _stale_part(cache, 'other.zip.k1lled_3.part'),
      _stale_part(cache, 'ml-100k.zip.k1lled_4.partial'), _stale_part(cache, 'mine.part', folder=True),
  ]
  # Old, but locked, as a download or extraction in progress in another process holds its own.
  running = [_stale_part(cache, 'ml-100k.zip.running1.part'), _stale_part(cache, 'ml-100k.running2.part', folder=True)]
  locks = [os.open(cache / name, os.O_RDONLY) for name in running]
  try:
    for fd in locks:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    folder = movielens.locate_movielens(None, cache_dir=str(cache), url=url, expected_sha256=_fake_sha256())
  finally:
    for fd in locks:
      os.close(fd)
  assert sorted(os.listdir(cache)) == sorted(['ml-100k', 'ml-100k.lock', 'ml-100k.zip'] + kept + running)
  assert not set(removed) & set(os.listdir(cache))
  assert pathlib.Path(folder, 'u.data').read_bytes() == FAKE_FILES['u.data']


def test_a_download_in_progress_in_another_process_is_left_alone_until_it_is_killed(
    tmp_path: pathlib.Path, zip_server: ServedZip) -> None:
  url, _ = zip_server
  cache = tmp_path / 'cache'
  requested, finish = threading.Event(), threading.Event()

  class Stalled(_QuietHandler):
    def do_GET(self) -> None:  # pylint: disable=invalid-name
      requested.set()
      finish.wait(60)  # the other process's download waits for its answer meanwhile; then none comes

  repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  with loopback_http.serving(Stalled) as stalled:
    script = ('import sys\nfrom ingestion import movielens\n'
              'movielens.download_movielens(sys.argv[1], url=sys.argv[2], timeout_seconds=60)\n')
    other = subprocess.Popen([sys.executable, '-c', script, str(cache), f'{stalled.url}/ml-100k.zip'], cwd=repo_root,
                             stderr=subprocess.DEVNULL)
    try:
      assert requested.wait(30)  # its .part file is made and locked before the request
      [part] = [n for n in os.listdir(cache) if n.endswith('.part')]
      # Last written long ago by the clock, yet locked by its live process: a download here leaves it alone.
      written = time.time() - movielens.STALE_PART_SECONDS - 60
      os.utime(cache / part, (written, written))
      movielens.locate_movielens(None, cache_dir=str(cache), url=url, expected_sha256=_fake_sha256())
      assert sorted(os.listdir(cache)) == sorted(['ml-100k', 'ml-100k.lock', 'ml-100k.zip', part])
      other.send_signal(signal.SIGKILL)  # killed outright: its .part stays, but the kernel drops its lock
      assert other.wait(10) == -signal.SIGKILL
      assert part in os.listdir(cache)
    finally:
      finish.set()
      if other.poll() is None:
        other.kill()
        other.wait(10)
  # The next run (its cache verifies: no download) removes it.
  movielens.locate_movielens(None, cache_dir=str(cache), url=url, expected_sha256=_fake_sha256())
  assert sorted(os.listdir(cache)) == ['ml-100k', 'ml-100k.lock', 'ml-100k.zip']


def _wait_until(condition: Any, seconds: float = 20.0) -> bool:
  """Polls `condition()` every 10 ms until it is true (True) or `seconds` have passed (False)."""
  deadline = time.monotonic() + seconds
  while not condition():
    if time.monotonic() > deadline:
      return False
    time.sleep(0.01)
  return True


def _waiting_logs(caplog: pytest.LogCaptureFixture) -> list:
  return [r for r in caplog.records if r.getMessage().startswith('Waiting for another run')]


def _waiting_message(cache: pathlib.Path) -> str:
  return (f'Waiting for another run to finish checking or downloading MovieLens 100K in {cache} (it holds the lock '
          f'file {cache / "ml-100k.lock"}; Ctrl-C to stop waiting).')


def _locate_in_thread(cache: pathlib.Path, url: str) -> Tuple[threading.Thread, Dict[str, Any]]:
  """Starts locate_movielens(None, cache, url) in a daemon thread; the dict gets its 'folder' or its 'error'."""
  outcome: Dict[str, Any] = {}

  def run() -> None:
    try:
      outcome['folder'] = movielens.locate_movielens(None, cache_dir=str(cache), url=url,
                                                     expected_sha256=_fake_sha256())
    except BaseException as e:  # pylint: disable=broad-except  # handed to the test, which asserts there is none
      outcome['error'] = e

  thread = threading.Thread(target=run, daemon=True)
  thread.start()
  return thread, outcome


_HOLD_LOCK = ('import fcntl, os, sys, time\n'
              'fd = os.open(sys.argv[1], os.O_RDONLY | os.O_CREAT)\n'
              'fcntl.flock(fd, fcntl.LOCK_EX)\n'
              'print("locked", flush=True)\n'
              'time.sleep(60)\n')


@pytest.mark.parametrize('release', ['unlocked', 'holder-killed'])
def test_a_run_waits_while_another_holds_the_cache_lock_then_downloads_once(
    tmp_path: pathlib.Path, zip_server: ServedZip, caplog: pytest.LogCaptureFixture, release: str) -> None:
  # Before, nothing kept two runs sharing a cache dir apart: each downloaded, and one's swap of ml-100k/ could delete
  # the other's fresh copy while that one verified or read it.
  url, server = zip_server
  cache = tmp_path / 'cache'
  cache.mkdir()
  lock = cache / 'ml-100k.lock'
  holder: Optional[subprocess.Popen] = None
  held: Optional[int] = None
  if release == 'unlocked':  # another open file description, as another process's: the two locks conflict
    held = os.open(lock, os.O_RDONLY | os.O_CREAT)
    fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
  else:
    holder = subprocess.Popen([sys.executable, '-c', _HOLD_LOCK, str(lock)], stdout=subprocess.PIPE, text=True)
  try:
    if holder is not None:
      assert holder.stdout.readline() == 'locked\n'
    with caplog.at_level('INFO', logger='absl'):
      thread, outcome = _locate_in_thread(cache, url)
      assert _wait_until(lambda: _waiting_logs(caplog) or not thread.is_alive())
      time.sleep(0.3)
      assert thread.is_alive() and server.requests == []  # waiting, not downloading
      if held is not None:
        os.close(held)
        held = None
      else:
        holder.send_signal(signal.SIGKILL)  # killed outright: the kernel drops its lock
        assert holder.wait(10) == -signal.SIGKILL
      thread.join(30)
  finally:
    if held is not None:
      os.close(held)
    if holder is not None and holder.poll() is None:
      holder.kill()
      holder.wait(10)
  assert outcome == {'folder': str(cache / 'ml-100k')}
  assert server.requests == ['/ml-100k.zip']  # downloaded once the lock was free
  [waiting] = _waiting_logs(caplog)  # logged once
  assert (waiting.levelname, waiting.getMessage()) == ('INFO', _waiting_message(cache))
  # The next run reuses the verified copy: no further request; the lock file stays.
  assert movielens.locate_movielens(None, cache_dir=str(cache), url=url,
                                    expected_sha256=_fake_sha256()) == str(cache / 'ml-100k')
  assert server.requests == ['/ml-100k.zip']
  assert sorted(os.listdir(cache)) == ['ml-100k', 'ml-100k.lock', 'ml-100k.zip']


def test_two_runs_started_together_download_once_and_share_the_copy(
    tmp_path: pathlib.Path, zip_server: ServedZip, caplog: pytest.LogCaptureFixture) -> None:
  # Before, both downloaded and both swapped ml-100k/ into place (the second deleting the first's fresh folder).
  url, server = zip_server
  server.gate = threading.Event()  # the first run's download is held while the second starts
  cache = tmp_path / 'cache'
  with caplog.at_level('INFO', logger='absl'):
    first, first_outcome = _locate_in_thread(cache, url)
    assert _wait_until(lambda: server.requests or not first.is_alive())
    second, second_outcome = _locate_in_thread(cache, url)
    try:
      assert _wait_until(lambda: _waiting_logs(caplog) or len(server.requests) > 1 or not second.is_alive())
      time.sleep(0.3)
      assert server.requests == ['/ml-100k.zip'] and second.is_alive()
    finally:
      server.gate.set()
    first.join(30)
    second.join(30)
  assert first_outcome == second_outcome == {'folder': str(cache / 'ml-100k')}
  assert server.requests == ['/ml-100k.zip']
  assert [r.getMessage() for r in _waiting_logs(caplog)] == [_waiting_message(cache)]
  assert pathlib.Path(cache, 'ml-100k', 'u.data').read_bytes() == FAKE_FILES['u.data']
  assert sorted(os.listdir(cache)) == ['ml-100k', 'ml-100k.lock', 'ml-100k.zip']


_DISK_FULL_FIX = ('Fix: free space on the disk holding {cache} (or check that it can be written) and run again, or '
                  'pass a folder on another disk with --cache-dir, or pass a local copy with --data-dir PATH (the '
                  'folder holding u.data, u.item, u.user, u.genre).')


def test_a_lock_file_that_cannot_be_opened_downloads_nothing_but_a_verified_copy_is_used(
    tmp_path: pathlib.Path, zip_server: ServedZip, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture) -> None:
  # E.g. a cache dir made read-only after its download, or another user's lock file it cannot read. (Tests may run as
  # root, whom file modes do not stop: the refusal is simulated.) Before, there was no lock, and such a run
  # downloaded beside any other.
  url, server = zip_server
  cache = tmp_path / 'cache'
  lock = str(cache / 'ml-100k.lock')
  real_open = os.open
  denied = PermissionError(errno.EACCES, 'Permission denied', lock)

  def refusing_open(path: Any, *args: Any, **kwargs: Any) -> int:
    if os.fspath(path) == lock:
      raise denied
    return real_open(path, *args, **kwargs)

  monkeypatch.setattr(os, 'open', refusing_open)
  with pytest.raises(movielens.MovieLensError) as e:
    movielens.locate_movielens(None, cache_dir=str(cache), url=url, expected_sha256=_fake_sha256())
  assert str(e.value) == (
      f"{lock}: cannot open the lock file that keeps runs from downloading MovieLens 100K into {cache} at the same "
      f"time ([Errno 13] Permission denied: '{lock}'), and {cache / 'ml-100k'} holds no verified copy; nothing was "
      'downloaded. ' + _DISK_FULL_FIX.format(cache=cache))
  assert e.value.__cause__ is denied
  assert server.requests == [] and os.listdir(cache) == []
  monkeypatch.undo()
  folder = movielens.locate_movielens(None, cache_dir=str(cache), url=url, expected_sha256=_fake_sha256())
  monkeypatch.setattr(os, 'open', refusing_open)
  with caplog.at_level('WARNING', logger='absl'):
    assert movielens.locate_movielens(None, cache_dir=str(cache), url=url, expected_sha256=_fake_sha256()) == folder
  assert server.requests == ['/ml-100k.zip']  # the verified copy is used without the lock, not downloaded again
  assert [r.getMessage() for r in caplog.records] == [
      f"Using the verified MovieLens 100K download in {folder} without taking its lock {lock} ([Errno 13] Permission "
      f"denied: '{lock}')."]


@pytest.mark.parametrize('earlier', [True, False], ids=['earlier-copy', 'first-download'])
def test_a_full_disk_while_extracting_names_the_file_and_leaves_nothing_half_extracted(
    tmp_path: pathlib.Path, zip_server: ServedZip, monkeypatch: pytest.MonkeyPatch, earlier: bool) -> None:
  # Before, a bare OSError ('[Errno 28] No space left on device') naming no file, folder or fix, which the CLI did not
  # report as a data problem.
  url, _ = zip_server
  cache = tmp_path / 'cache'
  stale = {'u.data': b'stale u.data\n', 'u.genre': b'stale|0\n', 'notes.txt': b'mine\n'}  # does not verify
  if earlier:
    _fake_dir(cache, stale)
  full = OSError(errno.ENOSPC, 'No space left on device')
  written = []
  real_open = open

  def filling_open(path: Any, mode: str = 'r', *args: Any, **kwargs: Any) -> Any:
    f = real_open(path, mode, *args, **kwargs)
    if 'w' in mode and os.path.basename(os.path.dirname(path)).startswith('ml-100k.'):
      written.append(path)
      if os.path.basename(path) == 'u.item':  # the second file: u.data is out already
        f.write(b'1|Synth')
        f.close()
        raise full
    return f

  monkeypatch.setattr(movielens, 'open', filling_open, raising=False)
  with pytest.raises(movielens.MovieLensError) as e:
    movielens.locate_movielens(None, cache_dir=str(cache), url=url, expected_sha256=_fake_sha256())
  staging = os.path.dirname(written[-1])
  assert [os.path.basename(p) for p in written] == ['u.data', 'u.item']
  ml100k = cache / 'ml-100k'
  as_it_was = f'; {ml100k} is as it was' if earlier else ''
  assert str(e.value) == (
      f'{staging}/u.item: cannot write u.item, extracted from {cache / "ml-100k.zip"} (from {url}) ([Errno 28] No '
      f'space left on device); nothing was extracted (the files written so far are removed){as_it_was}. '
      + _DISK_FULL_FIX.format(cache=cache))
  assert e.value.__cause__ is full
  assert sorted(os.listdir(cache)) == (['ml-100k'] if earlier else []) + ['ml-100k.lock', 'ml-100k.zip']
  if earlier:
    assert {n: (ml100k / n).read_bytes() for n in os.listdir(ml100k)} == stale


def test_a_full_disk_at_the_extraction_folder_names_the_cache_dir(tmp_path: pathlib.Path, zip_server: ServedZip,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
  # Before, a bare OSError from tempfile.mkdtemp.
  url, _ = zip_server
  cache = tmp_path / 'cache'
  stale = {'u.genre': b'stale|0\n'}
  _fake_dir(cache, stale)
  full = OSError(errno.ENOSPC, 'No space left on device', str(cache / 'ml-100k.abcd_123.part'))

  def failing_mkdtemp(*args: Any, **kwargs: Any) -> str:
    raise full

  monkeypatch.setattr(movielens.tempfile, 'mkdtemp', failing_mkdtemp)
  with pytest.raises(movielens.MovieLensError) as e:
    movielens.locate_movielens(None, cache_dir=str(cache), url=url, expected_sha256=_fake_sha256())
  assert str(e.value) == (
      f'{cache}: cannot create the folder to extract {cache / "ml-100k.zip"} (from {url}) into ([Errno 28] No space '
      f"left on device: '{cache / 'ml-100k.abcd_123.part'}'); nothing was extracted; {cache / 'ml-100k'} is as it "
      'was. ' + _DISK_FULL_FIX.format(cache=cache))
  assert e.value.__cause__ is full
  assert sorted(os.listdir(cache)) == ['ml-100k', 'ml-100k.lock', 'ml-100k.zip']
  assert os.listdir(cache / 'ml-100k') == ['u.genre']


def _damage_member(path: pathlib.Path, name: str, how: str) -> None:
  """Damages the member ml-100k/`name` of the zip `path` in place: 'flip' xors the 3rd byte of its data with 1,
  'garble' makes its first byte 0xff, 'overrun' records (in the central directory) 1000 bytes more than it holds."""
  raw = bytearray(path.read_bytes())
  with zipfile.ZipFile(path) as archive:
    info = archive.getinfo(f'ml-100k/{name}')
  # The data follows the 30-byte local header, its file name and extra field (lengths at bytes 26..29).
  name_length, extra_length = struct.unpack('<HH', raw[info.header_offset + 26:info.header_offset + 30])
  start = info.header_offset + 30 + name_length + extra_length
  if how == 'flip':
    raw[start + 2] ^= 0x01
  elif how == 'garble':
    raw[start] = 0xff  # deflate block header: final block, BTYPE 11, which is reserved
  else:
    # The central directory entry (signature PK\x01\x02) holding the compressed and the uncompressed size at
    # bytes 20..27; `name` must be the last member so that reading it runs off the end of the file.
    entry = raw.rindex(b'PK\x01\x02')
    assert raw[entry + 46:entry + 46 + len(info.filename)] == info.filename.encode()
    raw[entry + 20:entry + 28] = struct.pack('<II', info.compress_size + 1000, info.file_size + 1000)
  path.write_bytes(bytes(raw))


@pytest.mark.parametrize('compression, name, how, problem', [
    # Before, a message calling the archive 'not a zip archive', and half the files were already extracted.
    (zipfile.ZIP_STORED, 'u.item', 'flip', "Bad CRC-32 for file 'ml-100k/u.item'"),
    # Before, a raw zlib.error traceback.
    (zipfile.ZIP_DEFLATED, 'u.user', 'garble', 'Error -3 while decompressing data: invalid block type'),
    # Before, a raw EOFError traceback with no message at all.
    (zipfile.ZIP_STORED, 'u.data', 'overrun',
     'its data ends before the size the archive records (the archive is truncated)'),
], ids=['bad-crc', 'garbled-deflate', 'truncated'])
def test_a_damaged_zip_member_is_named_and_nothing_is_extracted(tmp_path: pathlib.Path, compression: int, name: str,
                                                                  how: str, problem: str) -> None:
  site = tmp_path / 'site'
  site.mkdir()
  _write_zip(site / 'ml-100k.zip', compression)
  _damage_member(site / 'ml-100k.zip', name, how)
  url = (site / 'ml-100k.zip').as_uri()
  cache = tmp_path / 'cache'
  # An earlier copy that does not verify (it lacks u.item and u.user), so the archive is downloaded.
  stale = {'u.data': b'stale u.data\n', 'u.genre': b'stale|0\n', 'notes.txt': b'mine\n'}
  _fake_dir(cache, stale)
  with pytest.raises(movielens.MovieLensError) as e:
    movielens.locate_movielens(None, cache_dir=str(cache), url=url)
  zip_path = cache / 'ml-100k.zip'
  assert str(e.value) == (
      f'{zip_path} (from {url}): its member ml-100k/{name} is damaged: {problem}; nothing was extracted. Fix: '
      f'delete {zip_path} and run again to download it afresh, or pass a local copy with --data-dir PATH (the '
      'folder holding u.data, u.item, u.user, u.genre).')
  # The earlier folder is as it was (before, u.data was replaced by the new archive's), and no staging folder is
  # left behind.
  assert sorted(os.listdir(cache)) == ['ml-100k', 'ml-100k.lock', 'ml-100k.zip']
  assert {n: (cache / 'ml-100k' / n).read_bytes() for n in os.listdir(cache / 'ml-100k')} == stale


def test_an_intact_download_replaces_an_earlier_folder_as_a_whole(tmp_path: pathlib.Path,
                                                                  zip_server: ServedZip) -> None:
  url, _ = zip_server
  sha256 = {name: hashlib.sha256(FAKE_FILES[name]).hexdigest() for name in ('u.data', 'u.item', 'u.user')}
  cache = tmp_path / 'cache'
  _fake_dir(cache, {'u.genre': b'stale|0\n', 'notes.txt': b'mine\n'})
  folder = movielens.locate_movielens(None, cache_dir=str(cache), url=url, expected_sha256=sha256)
  assert sorted(os.listdir(folder)) == ['u.data', 'u.genre', 'u.item', 'u.user']
  assert pathlib.Path(folder, 'u.genre').read_bytes() == FAKE_FILES['u.genre']
  assert sorted(os.listdir(cache)) == ['ml-100k', 'ml-100k.lock', 'ml-100k.zip']


@pytest.mark.real_data
def test_real_movielens_100k(tmp_path: pathlib.Path) -> None:
  data_dir = os.environ.get('WOONKLY_ML100K_DIR')
  if not data_dir:
    pytest.skip('WOONKLY_ML100K_DIR is unset; point it at a MovieLens 100K folder to run this test')
  movielens.verify_checksums(data_dir)
  out = os.path.join(str(tmp_path), 'movielens.csv')
  assert movielens.write_movielens_interactions(movielens.locate_movielens(data_dir, str(tmp_path)),
                                                out) == 100000
  got = il.read_interactions(out)
  assert got.num_rows == 100000
  assert len(set(got.column('user_id'))) == 943
  assert len(set(got.column('item_id'))) == 1682
  first = got.row(0)
  assert (first['user_id'], first['item_id'], first['rating']) == ('196', '242', 3.0)
