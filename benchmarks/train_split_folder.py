"""Writes the canonical split's TRAIN rows as a MovieLens 100K folder, to choose settings without the test split.

  .venv/bin/python benchmarks/train_split_folder.py --data-dir /work/shared/data/ml-100k --out /tmp/ml100k-train
  bin/run-pipeline --data-dir /tmp/ml100k-train --output-dir /tmp/validation --split random --split-seed 1
  .venv/bin/python benchmarks/serving_quality.py --serving-dir /tmp/validation/serving \
      --data-dir /tmp/ml100k-train --split-seed 1

`u.data` of the new folder holds the canonical TRAIN rows (80,000 of MovieLens 100K: `u.data` in file order,
`numpy.random.default_rng(42).permutation(100000)`, the first 80 %), in their `u.data` order; `u.item`, `u.user`
and `u.genre` are copied. A pipeline run on it with a random split trains on 80 % of those rows and evaluates on
the other 20 %: a validation split none of the canonical test ratings is in. A setting chosen on that run (such as
the serving ranking weight, `serving/recommender.py`) has not seen the split the quality figures are reported on.

The folder is MovieLens data (research licence, never committed): the script refuses to write inside this
repository. Exit status 2 on a refused or incomplete folder.
"""

import argparse
import os
import shutil
import sys
from typing import List, Optional, Sequence

from ingestion import movielens, splits

# Files copied unchanged beside the filtered u.data.
COPIED_FILES = ('u.item', 'u.user', 'u.genre')
REPOSITORY_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def canonical_train_lines(u_data_lines: Sequence[str]) -> List[str]:
  """The lines of the canonical split's TRAIN rows, in their file order (`splits.SplitSpec('seed')`)."""
  train = splits.split_interactions(len(u_data_lines), splits.SplitSpec('seed')).train
  return [u_data_lines[i] for i in train]


def write_train_folder(data_dir: str, out_dir: str) -> int:
  """Writes `out_dir`/u.data (the TRAIN rows of `data_dir`/u.data) and copies the other files.

  Returns:
    The number of rows written.

  Raises:
    ValueError: if `out_dir` is inside this repository (MovieLens data is never committed).
    movielens.MovieLensError: if `data_dir` lacks a MovieLens file.
  """
  out = os.path.realpath(out_dir)
  root = os.path.realpath(REPOSITORY_ROOT)  # both resolved: the repository may be reached through a symlink
  if out == root or out.startswith(root + os.sep):
    raise ValueError(f'--out {out_dir} is inside the repository {REPOSITORY_ROOT}; MovieLens data must never be '
                     'committed: write it elsewhere, e.g. /tmp/ml100k-train.')
  movielens.check_movielens_dir(data_dir)
  with open(os.path.join(data_dir, 'u.data'), encoding='utf-8') as f:
    lines = f.read().splitlines(keepends=True)
  train = canonical_train_lines(lines)
  os.makedirs(out, exist_ok=True)
  with open(os.path.join(out, 'u.data'), 'w', encoding='utf-8') as f:
    f.writelines(train)
  for name in COPIED_FILES:
    shutil.copyfile(os.path.join(data_dir, name), os.path.join(out, name))
  return len(train)


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--data-dir', required=True, type=movielens.folder_argument,
                      help='MovieLens 100K folder (u.data, u.item, u.user, u.genre).')
  parser.add_argument('--out', required=True, help='The folder to write (outside this repository).')
  args = parser.parse_args(argv)
  try:
    rows = write_train_folder(args.data_dir, args.out)
  except (ValueError, movielens.MovieLensError) as e:
    print(e, file=sys.stderr)
    return 2
  print(f'{rows} canonical TRAIN rows of {args.data_dir}/u.data written to {args.out}/u.data.')
  return 0


if __name__ == '__main__':
  sys.exit(main())
