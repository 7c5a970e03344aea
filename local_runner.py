"""Runs the recommender pipeline on this machine with LocalDagRunner and an embedded SQLite ML Metadata store.

Components whose inputs are ready run side by side, one per core (`pipeline/parallel_runner.py`, TFX's
LocalDagRunner launching independent nodes at once); `--parallel-components 1` runs them one at a time.

MovieLens 100K (a local copy, or downloaded with a checksum check when --data-dir is left out):
  python local_runner.py --data-dir ~/data/ml-100k --split seed --output-dir outputs/ml100k
The network's own interactions (the format in README, "Data contract"):
  python local_runner.py --interactions interactions.csv --output-dir outputs/own

Everything a run writes goes under --output-dir: prepared examples (data/), component outputs (tfx/),
the ML Metadata store (metadata.sqlite) and the pushed models (serving/ranking/<version>/ and
serving/retrieval/<version>/).
"""

from pipeline import environment

environment.use_legacy_keras()

# pylint: disable=g-import-not-at-top,wrong-import-position
import argparse
import hashlib
import os
import sys
import time
from typing import NoReturn, Optional, Sequence, Tuple

from absl import logging

from ingestion import movielens, prepare, splits
from ingestion.interactions import InteractionsFormatError, check_rating_scale
from pipeline import beam_args, configs, run_config, run_report


def _refuse(message: str) -> NoReturn:
  """Exits with status 2 and the one line `error: MESSAGE` on stderr, as the checks of the hyperparameters, gates
  and data do: a flag's value that argparse read but this run cannot use (argparse's own errors, for a flag that
  is missing or does not parse, keep its usage block)."""
  print(f'error: {message}', file=sys.stderr)
  raise SystemExit(2)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
  """Parses the command line; invalid values exit with a message naming the flag."""
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  source = parser.add_mutually_exclusive_group()
  source.add_argument('--data-dir', help='Local MovieLens 100K folder (holding u.data, u.item, u.user, u.genre).')
  source.add_argument('--interactions', help='An interactions CSV in the documented data contract.')
  parser.add_argument('--output-dir', required=True, help='Where the run writes everything.')
  parser.add_argument('--split', default='seed', choices=splits.SPLIT_METHODS,
                      help='seed: the canonical 80/20 split of the benchmarks; random: --eval-fraction and '
                      '--split-seed; temporal: the latest --eval-fraction of interactions by timestamp.')
  parser.add_argument('--eval-fraction', type=float, default=0.2)
  parser.add_argument('--split-seed', type=int, default=None,
                      help=f'Permutation seed of --split seed and random (default {splits.CANONICAL_SEED}); '
                      '--split temporal orders by timestamp and takes none.')
  parser.add_argument('--rating-scale', type=float, nargs=2, metavar=('MIN', 'MAX'), default=(1.0, 5.0))
  parser.add_argument('--schema', default=None,
                      help='Curated schema.pbtxt to validate against. Default: the bundled MovieLens-shaped '
                      'schema with --data-dir/download; inferred from the data with --interactions.')
  parser.add_argument('--cache-dir', default=None,
                      help='Where a downloaded MovieLens copy is kept (without --data-dir and --interactions; '
                      'default ~/.cache/woonkly).')
  parser.add_argument('--parallel-components', type=int, default=0, metavar='N',
                      help='Components that run at once when their inputs are ready (e.g. the ranking and '
                      'retrieval trainers): 0 (default) one per core, 1 one at a time like TFX\'s LocalDagRunner.')
  run_config.add_model_flags(parser)
  args = parser.parse_args(argv)
  # An empty path (e.g. "$CSV" with CSV unset) is not a missing flag: --interactions '' would train on MovieLens,
  # --output-dir '' write into the current folder, --schema '' use the default schema.
  for flag, path in (('--output-dir', args.output_dir), ('--data-dir', args.data_dir),
                     ('--interactions', args.interactions), ('--schema', args.schema), ('--cache-dir', args.cache_dir)):
    if path == '':
      _refuse(f'argument {flag}: the path is empty; pass a path'
              + ('.' if flag == '--output-dir' else ', or leave the flag out for its default.'))
  if args.parallel_components < 0:
    _refuse(f'--parallel-components={args.parallel_components} must be >= 0 (0: one per core).')
  if os.path.exists(args.output_dir) and not os.path.isdir(args.output_dir):
    _refuse(f'--output-dir {args.output_dir} is a file; pass a directory (it is created if missing).')
  try:  # refused before MovieLens is downloaded or any file is read
    check_rating_scale(tuple(args.rating_scale))
  except ValueError as e:
    _refuse(f'--rating-scale {args.rating_scale[0]} {args.rating_scale[1]}: {e}')
  if args.cache_dir is not None and (args.data_dir or args.interactions):
    _refuse(f'--cache-dir {args.cache_dir} has no effect with --data-dir or --interactions (nothing is '
            'downloaded); drop it, or leave out the data flag to download MovieLens 100K there.')
  if args.cache_dir is None:
    args.cache_dir = os.path.expanduser(movielens.DEFAULT_CACHE_DIR)
  if args.split == 'temporal' and args.split_seed is not None:
    _refuse(f'--split-seed {args.split_seed} has no effect with --split temporal (the latest --eval-fraction '
            'of interactions by timestamp go to eval); drop it, or use --split random.')
  if args.split_seed is None:
    args.split_seed = splits.CANONICAL_SEED
  if args.split == 'seed' and not splits.is_canonical(args.eval_fraction, args.split_seed):
    _refuse(f'--split seed is the canonical split (--eval-fraction {splits.CANONICAL_EVAL_FRACTION}, '
            f'--split-seed {splits.CANONICAL_SEED}); got --eval-fraction {args.eval_fraction} --split-seed '
            f'{args.split_seed}. Add --split random for another fraction or seed (or --split temporal).')
  try:
    args.split_spec = splits.SplitSpec(method=args.split, eval_fraction=args.eval_fraction, seed=args.split_seed)
  except ValueError as e:
    _refuse(f'--eval-fraction {args.eval_fraction} / --split-seed {args.split_seed}: {e}')
  return args


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Prepares the data, runs the pipeline and prints the run summary. Returns the process exit code."""
  args = parse_args(argv)
  logging.set_verbosity(logging.INFO)
  output_dir = os.path.abspath(args.output_dir)
  started = time.time()
  try:
    model_settings = run_config.model_settings(args)  # bad hyperparameters or gates: refused first
    interactions_csv, schema_path = _interactions_source(args, output_dir)
    prepared = prepare.prepare_examples(
        interactions_csv, args.split_spec, os.path.join(output_dir, configs.PREPARED_DATA_SUBDIR),
        rating_scale=tuple(args.rating_scale),
        column_types=run_config.column_types_from_schema(schema_path) if schema_path else None)
    # Features the hyperparameters name that the data lacks: refused now, not by a Trainer after Transform.
    run_config.check_model_inputs(args, model_settings, prepared.column_types)
    run_config.check_training_rows(args, model_settings, prepared.counts[splits.TRAIN_SPLIT])
    if schema_path:
      schema_path = _schema_snapshot(schema_path, output_dir)
  except (InteractionsFormatError, movielens.MovieLensError, ValueError, FileNotFoundError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  except OSError as e:  # e.g. --output-dir not writable
    print(f'error: {e}. Fix: check that --output-dir {output_dir} can be written and the input paths read.',
          file=sys.stderr)
    return 2
  # TFX decides per component whether it runs or reuses a cached output: nothing here says 'training'.
  print(f'Prepared {prepared.counts} interactions from {interactions_csv}; running the pipeline '
        f'({run_config.model_configs_summary(args)}). The full hyperparameters go to each Trainer\'s custom_config; '
        'the run report says which components ran and which were CACHED.', flush=True)

  from tfx import v1 as tfx
  from pipeline import parallel_runner, pipeline as pipeline_lib

  tfx_pipeline = pipeline_lib.create_pipeline(
      pipeline_name=configs.PIPELINE_NAME,
      pipeline_root=os.path.join(output_dir, configs.PIPELINE_ROOT_SUBDIR),
      examples_dir=prepared.examples_dir,
      serving_dir=os.path.join(output_dir, configs.SERVING_SUBDIR),
      **model_settings,
      schema_path=schema_path,
      metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
          os.path.join(output_dir, configs.METADATA_FILE)),
      beam_pipeline_args=beam_args.local_beam_pipeline_args(sum(prepared.counts.values())),
  )
  failure = None
  try:
    parallel_runner.ParallelLocalDagRunner(max_parallel=args.parallel_components or None).run(tfx_pipeline)
  except Exception as e:  # pylint: disable=broad-except
    # A component failed: report what ran and what did not, then exit non-zero with the cause.
    logging.exception('The pipeline run failed.')
    failure = e
  print(run_report.format_run_report(output_dir, total_seconds=time.time() - started, started_at_s=started),
        flush=True)
  if failure is not None:
    print(f'error: the pipeline stopped: {failure}', file=sys.stderr)
    return 1
  return 0


def _interactions_source(args: argparse.Namespace, output_dir: str) -> Tuple[str, Optional[str]]:
  """Returns (interactions CSV path, schema path or None) for the chosen data source."""
  if args.interactions:
    return os.path.abspath(args.interactions), args.schema
  ml100k_dir = movielens.locate_movielens(args.data_dir, cache_dir=args.cache_dir)
  interactions_csv = os.path.join(output_dir, configs.PREPARED_DATA_SUBDIR, 'movielens-100k.csv')
  movielens.write_movielens_interactions(ml100k_dir, interactions_csv, tuple(args.rating_scale))
  return interactions_csv, args.schema or configs.CURATED_SCHEMA_PATH


def _schema_snapshot(schema_path: str, output_dir: str) -> str:
  """A copy of the schema file at OUTPUT_DIR/data/schema/<sha256 of its bytes, 16 hex digits>/schema.pbtxt.

  ImportSchemaGen's cache key holds the file's path, not its content: given the path itself, a rerun after the
  file was edited reused the schema imported before. The copy's path changes with the content.
  """
  with open(schema_path, 'rb') as f:
    content = f.read()
  folder = os.path.join(output_dir, configs.PREPARED_DATA_SUBDIR, 'schema', hashlib.sha256(content).hexdigest()[:16])
  snapshot = os.path.join(folder, 'schema.pbtxt')
  if not os.path.exists(snapshot):
    os.makedirs(folder, exist_ok=True)
    with open(snapshot + '.tmp', 'wb') as f:
      f.write(content)
    os.replace(snapshot + '.tmp', snapshot)
  return snapshot


if __name__ == '__main__':
  sys.exit(main())
