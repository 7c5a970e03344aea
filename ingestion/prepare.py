"""Prepares ImportExampleGen input from an interactions CSV: split examples and item catalog, idempotently.

Output layout under `output_dir`:
  examples/train/interactions.tfrecord.gz, examples/eval/interactions.tfrecord.gz  (ImportExampleGen input)
  catalog/items.csv  (item_id and every item_* column, each column's latest non-missing value per item)

The two folders are replaced all or nothing: every file is written into a staging folder next to them
(`.staging/<run>/`), and only once all are complete are `examples/` and `catalog/` swapped in by renaming, the
previous folders moved aside and then deleted; a failure (a full disk, a bad row, Ctrl-C) before or during the
swap leaves the previous files together, and the staging folder is removed. (Between the two renames, a reader
can find one folder of each.) Whatever else `examples/` or `catalog/` held is dropped with the previous folder.

A process killed outright (SIGKILL, a power cut) leaves its `.staging/<run>/` behind, and possibly a mix of
folders; the next run (`recover_interrupted_runs`, before it reads anything) finds it and, by what the folder holds:
  - no `old/`: the swap had not begun (killed while staging, or while removing a staging folder it did not use):
    the outputs are the previous run's, untouched; the folder is removed;
  - `old/`, and both `examples/` and `catalog/` moved in from `new/`: the swap had completed (killed before the
    folder was set aside for removal): the outputs are the killed run's, both; the folder is removed;
  - `old/`, and a folder moved aside to `old/` or not yet moved in (killed between renames, or a failed swap whose
    undo failed): the swap is rolled back, each previous folder moved back from `old/` and each new one moved out,
    so the outputs are the previous run's again (none, if there was none); then the folder is removed;
  - `<run>.done`: the run had finished and was removing it: it is removed.
Each case is logged (a WARNING naming the folder, what it found and what it did). A run holds an exclusive lock
(flock) on its staging folder while it lives, so a folder of a run still in progress (a concurrent prepare) is
left alone; the kernel drops the lock of a killed process.

TFX fingerprints ImportExampleGen input by path, size and mtime, so a file whose new content is byte-identical to
what is on disk keeps its mtime (the staged copy is replaced by a hard link to it); when no file changes, nothing
is touched. Re-running with the same data then hits the TFX cache.

CLI: `python -m ingestion.prepare --output-dir DIR [--interactions CSV | --data-dir ML100K_DIR]
[--split seed|random|temporal] [--eval-fraction F] [--seed N] [--rating-scale MIN MAX]`; without
--interactions the MovieLens 100K folder is converted (downloaded and verified when --data-dir is absent).
"""

import argparse
import csv
import dataclasses
import fcntl
import filecmp
import os
import shutil
import sys
import uuid
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, TypeVar

from absl import logging
import numpy as np
import tensorflow as tf

from ingestion import attributes
from ingestion import examples as examples_lib
from ingestion import history
from ingestion import interactions as interactions_lib
from ingestion import movielens
from ingestion import splits
from schema import features

ColumnType = interactions_lib.ColumnType
T = TypeVar('T')

EXAMPLES_DIR_NAME = 'examples'
CATALOG_DIR_NAME = 'catalog'
CATALOG_FILE_NAME = 'items.csv'
STAGING_DIR_NAME = '.staging'
# In a run's staging folder: the staged folders, and the previous ones moved aside by the swap (see the docstring).
_NEW, _OLD = 'new', 'old'
# The name a finished run's staging folder takes before it is removed.
_DONE_SUFFIX = '.done'
MOVIELENS_CSV_NAME = 'movielens_interactions.csv'


@dataclasses.dataclass(frozen=True)
class PreparedExamples:
  """What `prepare_examples` produced.

  Attributes:
    examples_dir: the folder holding `train/` and `eval/` (ImportExampleGen `input_base`).
    counts: split name -> number of examples.
    column_types: column name -> ColumnType of every column written.
    interactions_path: the interactions CSV the examples came from.
    catalog_path: the item catalog CSV.
    changed_files: files (re)written by this call; empty when everything was already up to date.
  """
  examples_dir: str
  counts: Dict[str, int]
  column_types: Dict[str, ColumnType]
  interactions_path: str
  catalog_path: str
  changed_files: Tuple[str, ...]


def _staging_file(staging_dir: str, suffix: str) -> str:
  """Returns a fresh file name in `staging_dir` (created); the file itself is created by its writer.

  Not `mkstemp`: its 0600 mode would be carried to the final file and hide it from pipeline workers.
  """
  os.makedirs(staging_dir, exist_ok=True)
  return os.path.join(staging_dir, f'{os.getpid()}-{uuid.uuid4().hex}{suffix}')


def _lock_folder(path: str) -> Optional[int]:
  """Takes an exclusive lock (flock) on the folder `path` without waiting.

  Returns:
    The open descriptor holding the lock (close it to release), or None if another process holds it.
  """
  fd = os.open(path, os.O_RDONLY)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    os.close(fd)
    return None
  except BaseException:
    os.close(fd)
    raise
  return fd


def _new_run_dir(staging_root: str) -> Tuple[str, int]:
  """Creates this run's folder `<staging_root>/<pid>-<hex>` and locks it (see `recover_interrupted_runs`).

  Between its creation and its lock, another run's recovery may take the empty folder for a killed run's and remove
  it: the lock is then on a removed folder, which is noticed, and another folder is made.

  Returns:
    (the folder, the descriptor holding its lock: close it once the folder is removed).
  """
  for _ in range(10):
    run_dir = _staging_file(staging_root, '')
    try:
      os.mkdir(run_dir)
      fd = _lock_folder(run_dir)
    except FileNotFoundError:  # staging_root removed by another run as it emptied it: make it again
      continue
    if fd is None:  # a recovery holds it, to remove it
      continue
    try:
      if os.path.samestat(os.fstat(fd), os.stat(run_dir)):
        return run_dir, fd
    except FileNotFoundError:
      pass
    os.close(fd)
  raise OSError(f'prepare could not create its staging folder in {staging_root}: it kept disappearing. Fix: check '
                'that no other process removes folders there')


def _write_file_if_changed(staging_dir: str, final_path: str, write: Callable[[str], T]) -> bool:
  """Writes one file through `write(staged_path)` and moves it to `final_path` if its content changed.

  One rename replaces the file, so a reader finds the previous file or the new one, never a partial one. The file is
  staged in a locked run folder of `staging_dir`, removed either way (`staging_dir` too, once empty).

  Returns:
    True if `final_path` was (re)written.
  """
  run_dir, lock = _new_run_dir(staging_dir)
  try:
    staged = os.path.join(run_dir, os.path.basename(final_path))
    write(staged)
    return replace_if_changed(staged, final_path)
  finally:
    shutil.rmtree(run_dir)
    os.close(lock)
    _remove_if_empty(staging_dir)


def _keep_previous_file(previous: str, staged: str) -> None:
  """Replaces the `staged` copy with the `previous` file of identical bytes, keeping its mtime (and inode).

  A hard link costs no copy; where the filesystem has none, a copy with the previous timestamps.
  """
  os.remove(staged)
  try:
    os.link(previous, staged)
  except OSError as e:  # e.g. a filesystem without hard links: copy, mtime included, instead
    logging.info('Cannot hard-link %s (%s); copying it with its timestamps', previous, e)
    shutil.copy2(previous, staged)


def _swap_folders(output_dir: str, folder_names: Sequence[str], new_root: str, old_root: str) -> None:
  """Moves each `<output_dir>/<name>` to `<old_root>/<name>` and `<new_root>/<name>` in its place, by renames.

  On any failure or interruption (KeyboardInterrupt included) the renames made are undone in reverse order, so the
  previous folders are back in place, and the exception propagates.

  Raises:
    NotADirectoryError: before any rename, if `<output_dir>/<name>` is something other than a folder.
    OSError: if undoing fails; it names where the previous folders are.
  """
  for name in folder_names:
    final = os.path.join(output_dir, name)
    if os.path.lexists(final) and (os.path.islink(final) or not os.path.isdir(final)):
      raise NotADirectoryError(f'{final} is not a folder (a file or a link), and prepare replaces it whole. Fix: '
                               f'move it away, or pass another output folder')
  os.makedirs(old_root, exist_ok=True)
  done: List[Tuple[str, str]] = []  # (source, destination) of each rename made, in order
  try:
    for name in folder_names:
      final = os.path.join(output_dir, name)
      if os.path.lexists(final):
        os.rename(final, os.path.join(old_root, name))
        done.append((final, os.path.join(old_root, name)))
      os.rename(os.path.join(new_root, name), final)
      done.append((os.path.join(new_root, name), final))
  except BaseException:
    undo_errors: List[OSError] = []
    for source, destination in reversed(done):  # each one tried: the folders are independent of each other
      try:
        os.rename(destination, source)
      except OSError as undo_error:
        undo_errors.append(undo_error)
    if undo_errors:
      raise OSError(f'prepare failed while swapping in {", ".join(folder_names)} under {output_dir}, and could '
                    f'not move the previous folders back ({"; ".join(map(str, undo_errors))}). Fix: move the '
                    f'folders in {old_root} back to {output_dir} (the next prepare run tries to), or delete '
                    f'{output_dir} and prepare again') from undo_errors[0]
    raise


def _write_folders_if_changed(output_dir: str, folder_names: Sequence[str],
                              writers: Sequence[Tuple[str, Callable[[str], T]]]) -> Tuple[List[T], List[str]]:
  """Writes every file into a staging copy of `folder_names`, then swaps those folders in all together.

  Each `write(staged_path)` runs before anything in `output_dir` changes. When no file's content changed, the output
  is left untouched; otherwise a file whose content did not change is carried over with its mtime.
  The staging folder `<output_dir>/.staging/<run>/` is removed either way (`.staging` too, once empty), unless
  undoing a failed swap failed: then it holds the previous folders, and the error says so.

  Args:
    output_dir: the folder holding `folder_names`.
    folder_names: the folders of `output_dir` replaced whole (e.g. 'examples', 'catalog'); each writer's final
      path lies inside one of them.
    writers: (final path, write) pairs; `write` writes the file at the path it is given.

  Returns:
    (what each write returned, the final paths that were (re)written), in the order of `writers`.
  """
  staging_root = os.path.join(output_dir, STAGING_DIR_NAME)
  run_dir, lock = _new_run_dir(staging_root)
  new_root, old_root = os.path.join(run_dir, _NEW), os.path.join(run_dir, _OLD)
  swapped = False
  try:
    results: List[T] = []
    staged: List[str] = []
    for final, write in writers:
      staged.append(os.path.join(new_root, os.path.relpath(final, output_dir)))
      os.makedirs(os.path.dirname(staged[-1]), exist_ok=True)
      results.append(write(staged[-1]))
    changed = []
    for (final, _), new in zip(writers, staged):
      if os.path.isfile(final) and filecmp.cmp(new, final, shallow=False):
        _keep_previous_file(final, new)
      else:
        changed.append(final)
    if changed:
      _swap_folders(output_dir, folder_names, new_root, old_root)
      swapped = True
    return results, changed
  finally:
    # A successful undo of a failed swap empties old_root; if it still holds something, it holds previous folders
    # that could not be moved back (the error names them): keep it.
    try:
      if swapped or not (os.path.isdir(old_root) and os.listdir(old_root)):
        # Renamed first, so a run killed while removing it does not leave a half-deleted old/ that the next run
        # would take for a swap to roll back.
        done_dir = run_dir + _DONE_SUFFIX
        os.rename(run_dir, done_dir)
        shutil.rmtree(done_dir)
        _remove_if_empty(staging_root)
    finally:
      os.close(lock)


def replace_if_changed(new_path: str, final_path: str) -> bool:
  """Moves `new_path` to `final_path` unless the latter already has identical bytes.

  Args:
    new_path: the freshly written file; removed either way.
    final_path: the destination; left untouched (same mtime) when its content is identical.

  Returns:
    True if `final_path` was (re)written.
  """
  if os.path.isfile(final_path) and filecmp.cmp(new_path, final_path, shallow=False):
    os.remove(new_path)
    return False
  os.makedirs(os.path.dirname(final_path) or '.', exist_ok=True)
  os.replace(new_path, final_path)
  return True


def item_catalog(interactions: interactions_lib.Interactions) -> Tuple[List[str], List[List[Any]]]:
  """Returns (columns, rows) of the item catalog: one row per item in first-seen order.

  Columns are `item_id` then the item_* columns in file order; each value is the item's latest non-missing value
  of that column over all its rows (`ingestion.attributes`; None if always missing).
  """
  columns = [features.ITEM_ID] + [c for c in interactions.column_names if features.is_item_feature(c)]
  latest = attributes.LatestAttributes()
  latest.add_columns(interactions.column(features.ITEM_ID), interactions.column(features.TIMESTAMP).tolist(),
                     {c: interactions.column(c) for c in columns})
  if latest.varying_key_count():
    logging.info('%d items%s have item_* values that differ between their rows; the catalog takes each '
                 "column's latest value.", latest.varying_key_count(),
                 f' of {interactions.path}' if interactions.path else '')
  rows = []
  for item_id in latest.keys():
    values = latest.attributes(item_id)
    rows.append([values.get(c) for c in columns])
  return columns, rows


def with_recent_ratings(interactions: interactions_lib.Interactions,
                        train_rows: Sequence[int]) -> interactions_lib.Interactions:
  """Adds the FLOAT column `recent_rating` (ingestion/history.py), from the ratings of `train_rows` only.

  Returns:
    The same interactions with one more column (None where the user has no earlier training rating).
  """
  means = history.recent_ratings(
      interactions.column(features.USER_ID), interactions.column(features.TIMESTAMP),
      interactions.column(features.RATING), train_rows)
  columns = dict(interactions.columns)
  columns[features.RECENT_RATING] = [None if np.isnan(m) else float(m) for m in means]
  column_types = dict(interactions.column_types)
  column_types[features.RECENT_RATING] = ColumnType.FLOAT
  return interactions_lib.Interactions(columns=columns, column_types=column_types, path=interactions.path)


def _write_catalog(interactions: interactions_lib.Interactions, path: str) -> int:
  columns, rows = item_catalog(interactions)
  types = [interactions.column_types[c] for c in columns]
  with open(path, 'w', encoding='utf-8', newline='') as f:
    writer = csv.writer(f, lineterminator='\n')
    writer.writerow(columns)
    for row in rows:
      writer.writerow([interactions_lib.format_value(v, t) for v, t in zip(row, types)])
  return len(rows)


def prepare_examples(interactions_csv: str, split: splits.SplitSpec, output_dir: str,
                     rating_scale: Tuple[float, float] = interactions_lib.DEFAULT_RATING_SCALE,
                     column_types: Optional[Mapping[str, ColumnType]] = None) -> PreparedExamples:
  """Validates an interactions CSV and writes split examples and the item catalog under `output_dir`.

  Args:
    interactions_csv: the interactions CSV.
    split: how to split the rows into train and eval.
    output_dir: where `examples/` and `catalog/` go.
    rating_scale: (min, max) allowed ratings, inclusive.
    column_types: declared types of optional columns (e.g. from the curated schema).

  Returns:
    What was prepared (see PreparedExamples).

  Raises:
    interactions.InteractionsFormatError: if the CSV breaks the format.
    ValueError: if the split cannot be made.
  """
  recover_interrupted_runs(output_dir)  # first: even a run refused below leaves no mix of two runs' folders
  interactions = interactions_lib.read_interactions(interactions_csv, rating_scale, column_types)
  indices = splits.split_interactions(interactions.column(features.TIMESTAMP), split)
  interactions = with_recent_ratings(interactions, indices.train)
  examples_dir = os.path.join(output_dir, EXAMPLES_DIR_NAME)
  catalog_path = os.path.join(output_dir, CATALOG_DIR_NAME, CATALOG_FILE_NAME)
  # Every file is staged outside examples_dir (ImportExampleGen never sees half-written files), then examples/ and
  # catalog/ are swapped in together, so a failure leaves the previous train, eval and catalog files together.
  writers: List[Tuple[str, Callable[[str], int]]] = [
      (examples_lib.example_path(examples_dir, split_name),
       lambda path, rows=split_indices: examples_lib.write_tfrecord(
           examples_lib.serialize_interactions(interactions, rows), path))
      for split_name, split_indices in ((splits.TRAIN_SPLIT, indices.train), (splits.EVAL_SPLIT, indices.eval))]
  writers.append((catalog_path, lambda path: _write_catalog(interactions, path)))
  (num_train, num_eval, num_items), changed = _write_folders_if_changed(
      output_dir, (EXAMPLES_DIR_NAME, CATALOG_DIR_NAME), writers)
  counts = {splits.TRAIN_SPLIT: num_train, splits.EVAL_SPLIT: num_eval}

  logging.info('Prepared %s examples (%s split) and %d catalog items under %s; rewritten: %s',
               counts, split.method, num_items, output_dir, changed or 'nothing (all up to date)')
  return PreparedExamples(examples_dir=examples_dir, counts=counts,
                          column_types=dict(interactions.column_types),
                          interactions_path=interactions_csv, catalog_path=catalog_path,
                          changed_files=tuple(changed))


def _interrupted_swap_states(output_dir: str, run_dir: str,
                             folder_names: Sequence[str]) -> Optional[Dict[str, str]]:
  """Where a killed run's swap left each of `folder_names`: 'untouched' (still in new/), 'aside' (the previous
  folder in old/, the new one still in new/), 'in' (moved in from new/); None if the swap had not begun (no old/).

  Raises:
    OSError: for a folder in none of these states (not left so by prepare), naming the paths and the fix.
  """
  if not os.path.isdir(os.path.join(run_dir, _OLD)):
    return None
  states = {}
  for name in folder_names:
    new = os.path.lexists(os.path.join(run_dir, _NEW, name))
    old = os.path.lexists(os.path.join(run_dir, _OLD, name))
    out = os.path.lexists(os.path.join(output_dir, name))
    if new and not old:
      states[name] = 'untouched'
    elif new and old and not out:
      states[name] = 'aside'
    elif not new and out:
      states[name] = 'in'
    else:
      raise OSError(
          f'{run_dir} is the staging folder of a prepare run that was interrupted while swapping in '
          f'{", ".join(folder_names)}, but {name} is {"in" if out else "not in"} {output_dir}, '
          f'{"in" if new else "not in"} its {_NEW}/ and {"in" if old else "not in"} its {_OLD}/, which prepare '
          f'never leaves. Fix: put the folders of one run in {output_dir} (the previous ones are in its {_OLD}/), '
          f'then delete {run_dir}; or delete {output_dir} and prepare again')
  return states


def _recover_run_dir(output_dir: str, run_dir: str, folder_names: Sequence[str]) -> None:
  """Completes or rolls back what the killed run of `run_dir` left (see the module docstring), then removes it."""
  states = None if run_dir.endswith(_DONE_SUFFIX) else _interrupted_swap_states(output_dir, run_dir, folder_names)
  if run_dir.endswith(_DONE_SUFFIX):
    found, did = 'a finished run was removing it', f'kept {", ".join(folder_names)}'
  elif states is None:
    found, did = 'the run was killed before its swap began', f'kept {", ".join(folder_names)} (untouched)'
  elif all(state == 'in' for state in states.values()):
    found, did = 'the run was killed after its swap completed', f'kept its {", ".join(folder_names)}'
  else:
    found = f'the run was killed during its swap ({", ".join(f"{name}: {state}" for name, state in states.items())})'
    did = f'rolled back to the previous {", ".join(folder_names)}'
    for name, state in states.items():
      final, new, old = (os.path.join(output_dir, name), os.path.join(run_dir, _NEW, name),
                         os.path.join(run_dir, _OLD, name))
      try:
        if state == 'in':
          os.makedirs(os.path.dirname(new), exist_ok=True)
          os.rename(final, new)  # the killed run's folder out of the way; removed with run_dir
        if state != 'untouched' and os.path.lexists(old):
          os.rename(old, final)
      except OSError as e:
        raise OSError(f'prepare could not roll back the interrupted run of {run_dir} ({e}). Fix: put the folders '
                      f'in its {_OLD}/ back in {output_dir} and delete {run_dir}; or delete {output_dir} and prepare '
                      'again') from e
  shutil.rmtree(run_dir)
  logging.warning('Found the staging folder %s of an interrupted prepare run: %s; %s in %s, and removed the folder.',
                  run_dir, found, did, output_dir)


def recover_interrupted_runs(output_dir: str,
                             folder_names: Sequence[str] = (EXAMPLES_DIR_NAME, CATALOG_DIR_NAME)) -> None:
  """Handles what prepare runs killed outright left in `<output_dir>/.staging/` (see the module docstring).

  A staging folder another process holds locked (a prepare run in progress) is left alone. `.staging/` is removed
  once empty.

  Raises:
    OSError: if a killed run's folders cannot be put back together; the message says where they are.
  """
  staging_root = os.path.join(output_dir, STAGING_DIR_NAME)
  try:
    entries = sorted(os.listdir(staging_root))
  except (FileNotFoundError, NotADirectoryError):  # nothing staged; an output_dir under a file is reported later
    return
  for entry in entries:
    path = os.path.join(staging_root, entry)
    if not os.path.isdir(path) or os.path.islink(path):  # a file staged by an earlier version of prepare
      logging.warning('Found %s, a file an interrupted prepare run staged (never part of the outputs): removed it.',
                      path)
      os.remove(path)
      continue
    try:
      lock = _lock_folder(path)
    except FileNotFoundError:  # removed by its run meanwhile
      continue
    if lock is None:
      logging.info('Left %s alone: a prepare run in progress holds it.', path)
      continue
    try:
      if os.path.isdir(path):  # still there: its run may have removed it before the lock was taken
        _recover_run_dir(output_dir, path, folder_names)
    finally:
      os.close(lock)
  _remove_if_empty(staging_root)


def _remove_if_empty(folder: str) -> None:
  try:
    os.rmdir(folder)
  except OSError:
    pass  # not empty: another prepare run is staging files there


def write_movielens_csv(data_dir: Optional[str], output_dir: str,
                        cache_dir: str = movielens.DEFAULT_CACHE_DIR,
                        rating_scale: Tuple[float, float] = interactions_lib.DEFAULT_RATING_SCALE) -> str:
  """Converts MovieLens 100K to `<output_dir>/movielens_interactions.csv`; returns its path.

  Reads the local `data_dir`, else the verified download in `cache_dir`; a u.data rating outside
  `rating_scale` (min, max) is refused at its u.data line. The CSV is replaced only when its content changes.
  """
  recover_interrupted_runs(output_dir)
  ml100k_dir = movielens.locate_movielens(data_dir, cache_dir)
  path = os.path.join(output_dir, MOVIELENS_CSV_NAME)
  _write_file_if_changed(os.path.join(output_dir, STAGING_DIR_NAME), path,
                         lambda staged: movielens.write_movielens_interactions(ml100k_dir, staged, rating_scale))
  return path


def main(argv: Optional[Sequence[str]] = None) -> int:
  """CLI entry point; returns the exit status."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--output-dir', required=True, help='folder for examples/ and catalog/')
  source = parser.add_mutually_exclusive_group()
  source.add_argument('--interactions', help='an interactions CSV')
  source.add_argument('--data-dir',
                      help=f'a local MovieLens 100K folder ({", ".join(movielens.REQUIRED_FILES)})')
  parser.add_argument('--cache-dir', default=movielens.DEFAULT_CACHE_DIR,
                      help='where the MovieLens download is kept')
  parser.add_argument('--split', choices=splits.SPLIT_METHODS, default='seed')
  parser.add_argument('--eval-fraction', type=float, default=splits.CANONICAL_EVAL_FRACTION)
  parser.add_argument('--seed', type=int, default=splits.CANONICAL_SEED)
  parser.add_argument('--rating-scale', type=float, nargs=2, metavar=('MIN', 'MAX'),
                      default=interactions_lib.DEFAULT_RATING_SCALE)
  args = parser.parse_args(argv)
  if args.interactions == '':  # e.g. "$CSV" with CSV unset: not the same as no --interactions (MovieLens)
    parser.error('argument --interactions: the path is empty; pass the interactions CSV, or leave the flag out '
                 'to prepare MovieLens 100K')
  if not args.output_dir:  # e.g. "$OUT" with OUT unset: the files would land in the current folder
    parser.error('argument --output-dir: the path is empty; pass the folder for examples/ and catalog/')
  if os.path.exists(args.output_dir) and not os.path.isdir(args.output_dir):
    parser.error(f'argument --output-dir: {args.output_dir} is a file, not a folder; pass a folder (it is created '
                 'if needed)')
  try:
    spec = splits.SplitSpec(args.split, args.eval_fraction, args.seed)
    csv_path = args.interactions or write_movielens_csv(args.data_dir, args.output_dir, args.cache_dir,
                                                        tuple(args.rating_scale))
    prepared = prepare_examples(csv_path, spec, args.output_dir, tuple(args.rating_scale))
  except ValueError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  except (OSError, tf.errors.OpError) as e:  # e.g. an unwritable --output-dir, a full disk (TFRecordWriter's)
    print(f'error: {e}. Fix: check that the input is readable, and that --output-dir is a writable folder on '
          'a disk with free space', file=sys.stderr)
    return 2
  print(f'Examples {prepared.counts} in {prepared.examples_dir}; catalog {prepared.catalog_path}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
