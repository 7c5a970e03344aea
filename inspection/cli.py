"""Command line over a pipeline's ML Metadata store: runs, artifacts, lineage, validation and anomalies.

  python -m inspection.cli --output-dir outputs/ml100k runs
  python -m inspection.cli --output-dir outputs/ml100k artifacts --json
  python -m inspection.cli --output-dir outputs/ml100k lineage outputs/ml100k/serving/ranking/1732712345
  python -m inspection.cli --output-dir outputs/ml100k validation
  python -m inspection.cli --output-dir outputs/ml100k anomalies --run 2024-11-27T21:54:55.924941
  python -m inspection.cli --mysql-host metadata-mysql --mysql-database metadb runs   # password: env var

Exit codes: 0 answered; 1 the thing asked for is not in the store (an unknown lineage target or --run) or its
files are gone (anomalies of a pruned output dir); 2 no usable store (missing file, not ML Metadata, or no run of
--pipeline-name in it).
"""

from pipeline import environment

environment.use_legacy_keras()

# pylint: disable=g-import-not-at-top,wrong-import-position
import argparse
import sys
from typing import Any, Optional, Sequence

from ml_metadata import metadata_store

from inspection import queries, tables
from inspection.store import MYSQL_PASSWORD_VARIABLE, MySqlSettings, StoreError, metadata_path_of, open_store
from pipeline import configs

EXIT_NOT_FOUND = 1
EXIT_NO_STORE = 2


def add_store_flags(parser: argparse.ArgumentParser, after_command: bool = False) -> None:
  """The flags naming a store and a pipeline (shared with inspection.report).

  Args:
    parser: the parser, or a command's subparser.
    after_command: the flags are a command's copy of the main parser's (`runs --output-dir OUT` as well as
      `--output-dir OUT runs`): they get no defaults, so a flag left out after the command keeps the value given
      before it, or the main parser's default.
  """
  def default(value: Any) -> Any:
    """The flag's default: `value`, or none at all in a command's copy (argparse.SUPPRESS)."""
    return argparse.SUPPRESS if after_command else value

  where = parser.add_argument_group('ML Metadata store (one of)')
  where.add_argument('--output-dir', default=default(None),
                     help='The --output-dir of a local run (its store is metadata.sqlite).')
  where.add_argument('--metadata-path', default=default(None), help='A SQLite ML Metadata store file.')
  where.add_argument('--mysql-host', default=default(None), help='Host of a MySQL-backed store (needs '
                     f'--mysql-database; the password is read from ${MYSQL_PASSWORD_VARIABLE}).')
  where.add_argument('--mysql-port', type=int, default=default(3306))
  where.add_argument('--mysql-database', default=default(None),
                     help='Database of the MySQL-backed store (Kubeflow: metadb).')
  where.add_argument('--mysql-user', default=default('root'))
  parser.add_argument('--pipeline-name', default=default(configs.PIPELINE_NAME),
                      help=f'The pipeline whose runs to read (default: {configs.PIPELINE_NAME}).')


def store_from_flags(args: argparse.Namespace) -> metadata_store.MetadataStore:
  """Opens the store the flags name.

  Raises:
    StoreError: see inspection.store.open_store; also when --mysql-host comes without --mysql-database.
  """
  mysql = None
  if args.mysql_host or args.mysql_database:
    if not (args.mysql_host and args.mysql_database):
      raise StoreError('A MySQL store needs both --mysql-host and --mysql-database.')
    mysql = MySqlSettings(host=args.mysql_host, database=args.mysql_database, port=args.mysql_port,
                          user=args.mysql_user)
  return open_store(output_dir=args.output_dir, metadata_path=args.metadata_path, mysql=mysql)


def store_description(args: argparse.Namespace) -> str:
  """How the flags named the store, for messages (a path, or mysql://host:port/database)."""
  if args.mysql_host:
    return f'mysql://{args.mysql_host}:{args.mysql_port}/{args.mysql_database}'
  return args.metadata_path or metadata_path_of(args.output_dir or '')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
  """Parses the command line."""
  parser = argparse.ArgumentParser(prog='python -m inspection.cli', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  add_store_flags(parser)
  parser.add_argument('--json', action='store_true', help='Print JSON instead of tables.')
  commands = parser.add_subparsers(dest='command', required=True)
  commands.add_parser('runs', help="Each run, each component's state and duration.")
  commands.add_parser('artifacts', help='The newest artifact of each type and producing output, with URIs.')
  lineage = commands.add_parser('lineage', help='The executions and artifacts that produced an artifact.')
  lineage.add_argument('target', help='A pushed model version directory, an artifact URI, or an artifact id.')
  for name, text in (('validation', 'Evaluator metrics per slice, thresholds and blessing; other metric '
                                    'artifacts (e.g. the retrieval gate).'),
                     ('anomalies', "ExampleValidator's findings per split.")):
    command = commands.add_parser(name, help=text)
    command.add_argument('--run', default=None, help='A run id as `runs` lists it (default: the newest).')
  for sub in commands.choices.values():  # The store flags and --json are accepted after the command too.
    add_store_flags(sub, after_command=True)
    sub.add_argument('--json', action='store_true', default=argparse.SUPPRESS, help='Print JSON.')
  return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Answers one command; returns the process exit code."""
  args = parse_args(argv)
  try:
    store = store_from_flags(args)
    where = store_description(args)
    run = queries.require_run(store, args.pipeline_name, where, getattr(args, 'run', None))
  except StoreError as e:
    print(f'error: {e}', file=sys.stderr)
    return EXIT_NO_STORE
  except queries.RunNotFoundError as e:
    print(f'error: {e}', file=sys.stderr)
    return EXIT_NOT_FOUND
  del run  # Checked above so that every command fails the same way on a foreign store.
  if args.command == 'runs':
    answer = queries.pipeline_runs(store, args.pipeline_name)
    text = tables.runs_table
  elif args.command == 'artifacts':
    answer = queries.latest_artifacts(store, args.pipeline_name)
    text = tables.artifacts_table
  elif args.command == 'lineage':
    try:
      artifact = queries.resolve_artifact(store, args.target)
    except LookupError as e:
      print(f'error: {e}', file=sys.stderr)
      return EXIT_NOT_FOUND
    answer = queries.lineage(store, artifact, args.pipeline_name)
    text = tables.lineage_text
  elif args.command == 'validation':
    run = queries.require_run(store, args.pipeline_name, where, args.run)
    answer = {'evaluations': queries.model_validations(store, run),
              'metric_artifacts': queries.metric_artifacts(store, run)}
    text = lambda a: tables.validation_text(a['evaluations'], a['metric_artifacts'])  # pylint: disable=unnecessary-lambda-assignment
  else:
    run = queries.require_run(store, args.pipeline_name, where, args.run)
    try:
      answer = queries.split_anomalies(store, run)
    except queries.ArtifactFilesMissingError as e:
      print(f"error: cannot read ExampleValidator's output: {e}. The store lists files that are gone (the "
            'output dir moved or pruned, or the store copied without it). Fix: point --output-dir at the folder '
            'the run wrote, or rerun the pipeline.', file=sys.stderr)
      return EXIT_NOT_FOUND
    text = tables.anomalies_table
  print(tables.to_json(answer) if args.json else text(answer))
  return 0


if __name__ == '__main__':
  sys.exit(main())
