"""Opens a pipeline's ML Metadata store read-only: the local SQLite file of a run, or a MySQL server.

A local run (`local_runner.py --output-dir D`) keeps its store in `D/metadata.sqlite`. A store that is missing,
is not SQLite, or is SQLite but not ML Metadata raises `StoreError` with the path and the fix, before ML Metadata
gets a chance to fail with a bare SQL message.
"""

import dataclasses
import os
import pathlib
import sqlite3
from typing import Optional

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline import configs

# A table every ML Metadata SQLite store holds (it records the schema version).
_MLMD_MARKER_TABLE = 'MLMDEnv'
# The first 16 bytes of every SQLite database file.
_SQLITE_HEADER = b'SQLite format 3\x00'
# SQLite's rollback journal beside a store: present during a write, and after a writer that stopped mid-write.
_ROLLBACK_JOURNAL_SUFFIX = '-journal'
# The environment variable the MySQL password is read from (never a flag: it would show in `ps`).
MYSQL_PASSWORD_VARIABLE = 'WOONKLY_MLMD_MYSQL_PASSWORD'


class StoreError(RuntimeError):
  """The ML Metadata store is missing, foreign, or holds no run of the pipeline."""


@dataclasses.dataclass(frozen=True)
class MySqlSettings:
  """Connection settings of a MySQL-backed ML Metadata store (e.g. Kubeflow's `metadata-mysql` service).

  Attributes:
    host: server host name.
    port: server TCP port.
    database: the database holding the store (Kubeflow: `metadb`).
    user: the MySQL user; its password is read from $WOONKLY_MLMD_MYSQL_PASSWORD.
  """
  host: str
  database: str
  port: int = 3306
  user: str = 'root'


def metadata_path_of(output_dir: str) -> str:
  """The SQLite store of the run written under `output_dir` (a `local_runner.py --output-dir`)."""
  return os.path.join(output_dir, configs.METADATA_FILE)


def open_sqlite_store(metadata_path: str) -> metadata_store.MetadataStore:
  """Opens an existing SQLite ML Metadata store read-only.

  Args:
    metadata_path: the store file, e.g. `<output_dir>/metadata.sqlite`.

  Raises:
    StoreError: if there is no file at `metadata_path`, it is not an ML Metadata SQLite store, it is a damaged
      SQLite file (cut short or corrupted), SQLite cannot read it now (e.g. an unfinished write left its journal
      beside it), or ML Metadata refuses it (e.g. its schema is of another ml-metadata version).
  """
  if not os.path.isfile(metadata_path):
    raise StoreError(
        f'No ML Metadata store at {metadata_path}: pass the --output-dir of a pipeline run (it holds '
        f'{configs.METADATA_FILE}) or --metadata-path of the store file.')
  _check_is_mlmd_sqlite(metadata_path)
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = metadata_path
  config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
  try:
    return metadata_store.MetadataStore(config)
  except RuntimeError as e:  # e.g. its schema is newer or older than this ml-metadata's (no migration read-only)
    raise StoreError(
        f'Cannot open the ML Metadata store {metadata_path} read-only: {e} Read it with the TFX and ml-metadata '
        'versions of the pipeline that wrote it.') from e


def open_mysql_store(settings: MySqlSettings) -> metadata_store.MetadataStore:
  """Connects to a MySQL-backed ML Metadata store.

  A database that does not exist is not created: a mistyped `settings.database` fails here instead of leaving a
  new, empty database on the server.

  Raises:
    StoreError: if the server cannot be reached, refuses the connection, or has no database `settings.database`.
  """
  config = metadata_store_pb2.ConnectionConfig()
  config.mysql.host = settings.host
  config.mysql.port = settings.port
  config.mysql.database = settings.database
  config.mysql.user = settings.user
  config.mysql.password = os.environ.get(MYSQL_PASSWORD_VARIABLE, '')
  # Without it ML Metadata issues CREATE DATABASE IF NOT EXISTS for the database it is given.
  config.mysql.skip_db_creation = True
  try:
    return metadata_store.MetadataStore(config)
  except RuntimeError as e:
    raise StoreError(
        f'Cannot open the ML Metadata store in MySQL database {settings.database!r} at '
        f'{settings.host}:{settings.port} as {settings.user!r}: {e}. Check the host, port and database, and '
        f'set ${MYSQL_PASSWORD_VARIABLE}.') from e


def open_store(output_dir: Optional[str] = None, metadata_path: Optional[str] = None,
               mysql: Optional[MySqlSettings] = None) -> metadata_store.MetadataStore:
  """Opens the store named by exactly one of `output_dir`, `metadata_path` or `mysql`.

  Raises:
    StoreError: if none or several are given, or the store cannot be opened (see the two openers).
  """
  given = [name for name, value in
           (('output_dir', output_dir), ('metadata_path', metadata_path), ('mysql', mysql)) if value]
  if len(given) != 1:
    raise StoreError(
        f'Name exactly one ML Metadata store (got {given or "none"}): --output-dir of a local run, '
        '--metadata-path of a SQLite store, or --mysql-host/--mysql-database.')
  if mysql is not None:
    return open_mysql_store(mysql)
  return open_sqlite_store(metadata_path or metadata_path_of(output_dir or ''))


def _read_only_uri(metadata_path: str) -> str:
  """The SQLite URI opening `metadata_path` read-only, e.g. `file:///tmp/run%20%231/metadata.sqlite?mode=ro`.

  The path is percent-quoted: unquoted, a `#` would end the path (dropping `?mode=ro`, so SQLite would create an
  empty file at the truncated path), a `?` would start the query and a `%` would start an escape.
  """
  return pathlib.Path(metadata_path).resolve().as_uri() + '?mode=ro'


def _check_is_mlmd_sqlite(metadata_path: str) -> None:
  """Raises StoreError unless `metadata_path` is a SQLite database holding ML Metadata's tables."""
  try:
    connection = sqlite3.connect(_read_only_uri(metadata_path), uri=True)
    try:
      tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
      connection.close()
  except sqlite3.OperationalError as e:  # A SQLite file that cannot be read now, not a foreign file.
    journal = metadata_path + _ROLLBACK_JOURNAL_SUFFIX
    if os.path.exists(journal):
      raise StoreError(
          f'Cannot read the ML Metadata store {metadata_path} read-only ({e}): {journal} beside it holds a write '
          'that did not finish (a run stopped mid-write, or one is writing now). Once no pipeline uses the store, '
          'open it read-write once to roll that write back, e.g. python3 -c "import sqlite3; '
          f"sqlite3.connect({metadata_path!r}).execute('SELECT count(*) FROM sqlite_master')\".") from e
    raise StoreError(
        f'Cannot read the ML Metadata store {metadata_path} read-only ({e}): check that this user may read the '
        'file and its directory, and retry when no pipeline is writing to it.') from e
  except sqlite3.DatabaseError as e:
    if _has_sqlite_header(metadata_path):  # A SQLite file SQLite cannot parse: damaged, not foreign.
      raise StoreError(
          f'{metadata_path} is a damaged SQLite database ({e}): it was cut short or corrupted, e.g. copied while '
          'a run was writing it, or written on a full disk. Copy it again from where the run wrote it, or rerun '
          'the pipeline into a new --output-dir.') from e
    raise StoreError(
        f'{metadata_path} is not a SQLite database ({e}): pass the {configs.METADATA_FILE} a pipeline run '
        'wrote, or its --output-dir.') from e
  if _MLMD_MARKER_TABLE not in tables:
    raise StoreError(
        f'{metadata_path} is a SQLite database but not an ML Metadata store (no {_MLMD_MARKER_TABLE} table; '
        f'tables: {sorted(tables) or "none"}): pass the {configs.METADATA_FILE} a pipeline run wrote.')


def _has_sqlite_header(path: str) -> bool:
  """True if the file at `path` starts with SQLite's header, i.e. SQLite wrote it."""
  with open(path, 'rb') as f:
    return f.read(len(_SQLITE_HEADER)) == _SQLITE_HEADER
