"""benchmarks/train_split_folder.py: the canonical TRAIN rows, and never inside the repository."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmarks'))
import train_split_folder  # pylint: disable=g-import-not-at-top,wrong-import-position


def _movielens_folder(root) -> str:
  root.mkdir()
  (root / 'u.data').write_text(''.join(f'{r}\t{100 + r}\t3\t{900000000 + r}\n' for r in range(10)))
  for name in train_split_folder.COPIED_FILES:
    (root / name).write_text(f'the {name} file\n')
  return str(root)


def test_writes_the_canonical_train_rows_in_file_order_and_copies_the_rest(tmp_path):
  data_dir = _movielens_folder(tmp_path / 'ml')
  out = tmp_path / 'train'
  assert train_split_folder.write_train_folder(data_dir, str(out)) == 8
  # default_rng(42).permutation(10) = [5 6 0 7 3 2 4 9 1 8]: rows 1 and 8 are the canonical test rows.
  assert (out / 'u.data').read_text().splitlines() == [
      f'{r}\t{100 + r}\t3\t{900000000 + r}' for r in (0, 2, 3, 4, 5, 6, 7, 9)]
  for name in train_split_folder.COPIED_FILES:
    assert (out / name).read_text() == f'the {name} file\n'


def test_refuses_to_write_inside_the_repository(tmp_path):
  data_dir = _movielens_folder(tmp_path / 'ml')
  inside = os.path.join(train_split_folder.REPOSITORY_ROOT, 'outputs', 'ml100k-train')
  with pytest.raises(ValueError, match='inside the repository .* never be committed'):
    train_split_folder.write_train_folder(data_dir, inside)
  assert not os.path.exists(inside)
  assert train_split_folder.main(['--data-dir', data_dir, '--out', inside]) == 2


def test_a_missing_movielens_file_is_named(tmp_path):
  data_dir = _movielens_folder(tmp_path / 'ml')
  os.remove(os.path.join(data_dir, 'u.genre'))
  with pytest.raises(ValueError, match='missing file u.genre'):
    train_split_folder.write_train_folder(data_dir, str(tmp_path / 'train'))


def test_refuses_a_repository_reached_through_a_symlink(tmp_path, monkeypatch):
  # The script's path may go through a symlink (REPOSITORY_ROOT is its abspath, links kept) while --out names the
  # real folder: before, the resolved --out was compared with the unresolved root and the rows were written.
  data_dir = _movielens_folder(tmp_path / 'ml')
  (tmp_path / 'repository').mkdir()
  os.symlink(tmp_path / 'repository', tmp_path / 'link')
  monkeypatch.setattr(train_split_folder, 'REPOSITORY_ROOT', str(tmp_path / 'link'))
  inside = str(tmp_path / 'repository' / 'outputs' / 'ml100k-train')
  with pytest.raises(ValueError, match='inside the repository .* never be committed'):
    train_split_folder.write_train_folder(data_dir, inside)
  assert not os.path.exists(inside)
