"""Tests for ingestion.examples, ingestion.prepare (idempotent ExampleGen input) and ingestion.fixtures."""

import fcntl
import functools
import os
import pathlib
import shutil

import numpy as np
import pytest
import tensorflow as tf

from ingestion import examples
from ingestion import fixtures
from ingestion import interactions as il
from ingestion import movielens
from ingestion import prepare
from ingestion import splits
from schema import features

ColumnType = il.ColumnType

CSV = ('user_id,item_id,rating,timestamp,user_gender,item_title,item_release_year\n'
       'u1,i1,4,50,F,"Heat, The",1995\n'
       'u2,i2,3,10,M,Beta,\n'
       'u1,i2,5,30,F,Beta,2001\n'
       'u3,i1,2,30,,Heat dup,1996\n'
       'u2,i3,1,20,M,Gamma,1980\n')
# Temporal split, eval fraction 0.4: order by (timestamp, row) is rows 1, 4, 2, 3, 0 -> train rows
# [1, 2, 4], eval rows [0, 3].
TEMPORAL = splits.SplitSpec('temporal', eval_fraction=0.4)


def _as_dict(example: tf.train.Example) -> dict:
  """feature name -> list of values (bytes, int or float rounded to 6 places)."""
  out = {}
  for name, feature in example.features.feature.items():
    kind = feature.WhichOneof('kind')
    values = list(getattr(feature, kind).value)
    out[name] = [round(v, 6) for v in values] if kind == 'float_list' else values
  return out


def _write_csv(tmp_path: pathlib.Path, content: str = CSV) -> str:
  path = os.path.join(str(tmp_path), 'interactions.csv')
  with open(path, 'w', encoding='utf-8', newline='') as f:
    f.write(content)
  return path


def test_serialize_example_omits_missing_and_absent_columns() -> None:
  data = examples.serialize_example(
      {'user_id': 'u1', 'item_id': 'i9', 'user_age': np.int64(30), 'item_genres': 'A|B',
       'item_score': None},
      {'user_age': ColumnType.INT, 'item_genres': ColumnType.STRING, 'item_score': ColumnType.FLOAT})
  assert _as_dict(tf.train.Example.FromString(data)) == {
      'user_id': [b'u1'], 'item_id': [b'i9'], 'user_age': [30], 'item_genres': [b'A|B']}


def test_serialize_example_rejects_unknown_columns_and_misfit_values() -> None:
  with pytest.raises(ValueError, match="'user_agee'"):
    examples.serialize_example({'user_id': 'u1', 'user_agee': 3}, {'user_age': ColumnType.INT})
  with pytest.raises(ValueError, match="Column 'user_age': value 'old' is not INT"):
    examples.serialize_example({'user_age': 'old'}, {'user_age': ColumnType.INT})


def test_serialize_example_refuses_values_its_type_would_change() -> None:
  # int(3.7) is 3 and float32(1e39) is inf: both were written without a word; int(inf) and float(10**400) raised a
  # bare OverflowError naming no column.
  for value, column_type, reason in ((3.7, ColumnType.INT, 'not a whole number'),
                                     (float('inf'), ColumnType.INT, 'not a whole number'),
                                     (1e39, ColumnType.FLOAT, 'beyond float32'),
                                     (10**400, ColumnType.FLOAT, 'too large')):
    with pytest.raises(ValueError, match=f"Column 'user_x': value .* is not {column_type.name} .*{reason}"):
      examples.serialize_example({'user_x': value}, {'user_x': column_type})
  # Whole floats and float32's largest value still fit.
  data = examples.serialize_example({'user_x': 30.0, 'user_y': 3.4e38},
                                    {'user_x': ColumnType.INT, 'user_y': ColumnType.FLOAT})
  assert _as_dict(tf.train.Example.FromString(data))['user_x'] == [30]


def test_bulk_serialization_equals_serialize_example(tmp_path: pathlib.Path) -> None:
  got = il.read_interactions(_write_csv(tmp_path))
  bulk = list(examples.serialize_interactions(got, [3, 0]))
  assert bulk == [examples.serialize_example(got.row(3), got.column_types),
                  examples.serialize_example(got.row(0), got.column_types)]
  # Negative ints (10-byte varints), non-integral floats, non-ASCII and long (>127 bytes) strings.
  edge = il.Interactions(
      columns={'user_id': ['é' * 100, 'u'], 'item_id': ['i', 'j'], 'rating': np.array([0.1, 2.5]),
               'timestamp': np.array([0, 2**40]), 'user_delta': [-5, None], 'item_score': [-1e-3, 3.0]},
      column_types={**il.REQUIRED_COLUMN_TYPES, 'user_delta': ColumnType.INT,
                    'item_score': ColumnType.FLOAT})
  assert list(examples.serialize_interactions(edge, [0, 1])) == [
      examples.serialize_example(edge.row(0), edge.column_types),
      examples.serialize_example(edge.row(1), edge.column_types)]


def test_bulk_serialization_keeps_the_sign_of_zero() -> None:
  # -0.0 == 0.0: both shared the cache entry of whichever came first, so row 1's item_score was written as 0.0
  # (and, in the other order, row 0's as -0.0).
  zeros = il.Interactions(
      columns={'user_id': ['u', 'v', 'w'], 'item_id': ['i', 'j', 'k'], 'rating': np.array([1.0, 2.0, 3.0]),
               'timestamp': np.array([1, 2, 3]), 'item_score': [0.0, -0.0, None]},
      column_types={**il.REQUIRED_COLUMN_TYPES, 'item_score': ColumnType.FLOAT})
  for order in ([0, 1, 2], [1, 0, 2]):
    bulk = list(examples.serialize_interactions(zeros, order))
    assert bulk == [examples.serialize_example(zeros.row(i), zeros.column_types) for i in order]
    scores = {i: tf.train.Example.FromString(data).features.feature['item_score'].float_list.value
              for i, data in zip(order, bulk)}
    assert [np.signbit(scores[0][0]), np.signbit(scores[1][0]), len(scores[2])] == [False, True, 0]


def test_prepare_writes_split_examples_with_typed_features(tmp_path: pathlib.Path) -> None:
  prepared = prepare.prepare_examples(_write_csv(tmp_path), TEMPORAL, str(tmp_path / 'out'))
  assert prepared.counts == {'train': 3, 'eval': 2}
  assert prepared.examples_dir == str(tmp_path / 'out' / 'examples')
  train = [_as_dict(e) for e in examples.read_examples(
      os.path.join(prepared.examples_dir, 'train', 'interactions.tfrecord.gz'))]
  assert train == [
      {'user_id': [b'u2'], 'item_id': [b'i2'], 'rating': [3.0], 'timestamp': [10], 'user_gender': [b'M'],
       'item_title': [b'Beta']},
      {'user_id': [b'u1'], 'item_id': [b'i2'], 'rating': [5.0], 'timestamp': [30], 'user_gender': [b'F'],
       'item_title': [b'Beta'], 'item_release_year': [2001]},
      {'user_id': [b'u2'], 'item_id': [b'i3'], 'rating': [1.0], 'timestamp': [20], 'user_gender': [b'M'],
       'item_title': [b'Gamma'], 'item_release_year': [1980], 'recent_rating': [3.0]},
  ]
  eval_ = [_as_dict(e) for e in examples.read_examples(
      os.path.join(prepared.examples_dir, 'eval', 'interactions.tfrecord.gz'))]
  assert [e['user_id'] for e in eval_] == [[b'u1'], [b'u3']]
  assert 'user_gender' not in eval_[1]
  # recent_rating comes from training ratings strictly earlier only: u2's 3 stars (t=10) for u2 at t=20, u1's
  # 5 stars (t=30, train) for u1's eval row at t=50; u1's own train row at t=30 and u3 have none before.
  assert eval_[0]['recent_rating'] == [5.0]
  assert 'recent_rating' not in eval_[1]
  assert prepared.column_types['recent_rating'] == ColumnType.FLOAT
  assert prepared.column_types['item_release_year'] == ColumnType.INT


def test_catalog_has_first_seen_items_and_latest_non_missing_values(tmp_path: pathlib.Path) -> None:
  # i1: "Heat, The" (t=50) is newer than "Heat dup" (t=30); i2's year is missing on its t=10 row, 2001 at t=30.
  prepared = prepare.prepare_examples(_write_csv(tmp_path), TEMPORAL, str(tmp_path / 'out'))
  with open(prepared.catalog_path, encoding='utf-8', newline='') as f:
    assert f.read() == ('item_id,item_title,item_release_year\n'
                        'i1,"Heat, The",1995\n'
                        'i2,Beta,2001\n'
                        'i3,Gamma,1980\n')


def test_catalog_takes_the_latest_row_not_the_first_in_the_file(tmp_path: pathlib.Path) -> None:
  # i1 is renamed at t=40 on the file's last line; its year is given only on the oldest row (t=10).
  content = ('user_id,item_id,rating,timestamp,item_title,item_release_year\n'
             'u1,i1,4,20,Heat,\n'
             'u2,i1,3,10,Heat (old),1995\n'
             'u3,i2,5,30,Ran,1985\n'
             'u3,i1,2,40,Heat (1995),\n')
  prepared = prepare.prepare_examples(_write_csv(tmp_path, content), TEMPORAL, str(tmp_path / 'out'))
  with open(prepared.catalog_path, encoding='utf-8', newline='') as f:
    assert f.read() == ('item_id,item_title,item_release_year\n'
                        'i1,Heat (1995),1995\n'
                        'i2,Ran,1985\n')


def test_prepare_is_idempotent_and_rewrites_only_changed_files(tmp_path: pathlib.Path) -> None:
  csv_path = _write_csv(tmp_path)
  out = str(tmp_path / 'out')
  first = prepare.prepare_examples(csv_path, TEMPORAL, out)
  train = os.path.join(first.examples_dir, 'train', 'interactions.tfrecord.gz')
  eval_ = os.path.join(first.examples_dir, 'eval', 'interactions.tfrecord.gz')
  assert first.changed_files == (train, eval_, first.catalog_path)
  for path in first.changed_files:
    os.utime(path, (1000, 1000))

  again = prepare.prepare_examples(csv_path, TEMPORAL, out)
  assert again.changed_files == ()
  assert [os.stat(p).st_mtime for p in first.changed_files] == [1000, 1000, 1000]
  assert not os.path.exists(os.path.join(out, '.staging'))

  # Row 3 (line 5) is in eval only: only the eval file changes.
  _write_csv(tmp_path, CSV.replace('u3,i1,2,30', 'u3,i1,3,30'))
  changed = prepare.prepare_examples(csv_path, TEMPORAL, out)
  assert changed.changed_files == (eval_,)
  assert os.stat(train).st_mtime == 1000


def test_prepare_reports_format_errors_before_writing(tmp_path: pathlib.Path) -> None:
  csv_path = _write_csv(tmp_path, CSV.replace('u2,i3,1,20', 'u2,i3,9,20'))
  with pytest.raises(il.InteractionsFormatError, match='line 6'):
    prepare.prepare_examples(csv_path, TEMPORAL, str(tmp_path / 'out'))
  assert not os.path.exists(tmp_path / 'out')


def test_a_failed_prepare_leaves_the_previous_files_together(tmp_path: pathlib.Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
  csv_path = _write_csv(tmp_path)
  out = str(tmp_path / 'out')
  first = prepare.prepare_examples(csv_path, TEMPORAL, out)
  before = {path: open(path, 'rb').read() for path in (
      os.path.join(first.examples_dir, split, 'interactions.tfrecord.gz') for split in ('train', 'eval'))}

  # New data changes both splits; the catalog, written last, fails.
  _write_csv(tmp_path, CSV.replace(',4,50,', ',5,50,').replace(',3,10,', ',2,10,'))

  def fail(*_):
    raise OSError('disk full')

  monkeypatch.setattr(prepare, '_write_catalog', fail)
  with pytest.raises(OSError, match='disk full'):
    prepare.prepare_examples(csv_path, TEMPORAL, out)
  assert {path: open(path, 'rb').read() for path in before} == before
  assert not os.path.exists(os.path.join(out, '.staging'))


def _output_files(out: str) -> dict:
  """Relative path -> bytes of every file under `out`."""
  return {os.path.relpath(os.path.join(folder, name), out): open(os.path.join(folder, name), 'rb').read()
          for folder, _, names in os.walk(out) for name in names}


@pytest.mark.parametrize('interruption', [OSError('disk full'), KeyboardInterrupt()])
def test_a_prepare_interrupted_while_moving_its_files_in_leaves_the_previous_files_whole(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, interruption: BaseException) -> None:
  # Before, the staged files replaced train, eval and the catalog one by one: a failure (or Ctrl-C) when the catalog's
  # turn came left the new train and eval files beside the previous catalog, a mix a later run read as consistent.
  csv_path = _write_csv(tmp_path)
  out = str(tmp_path / 'out')
  prepare.prepare_examples(csv_path, TEMPORAL, out)
  before = _output_files(out)
  assert sorted(before) == ['catalog/items.csv', 'examples/eval/interactions.tfrecord.gz',
                            'examples/train/interactions.tfrecord.gz']
  # New data changes both splits and the catalog (the title of i3, on line 6).
  _write_csv(tmp_path, CSV.replace(',4,50,', ',5,50,').replace(',3,10,', ',2,10,').replace('Gamma', 'Delta'))
  catalog_dir = os.path.join(out, 'catalog')
  moves = []

  def interrupt_the_first_move_into_the_catalog(move, src: str, dst: str) -> None:
    if not moves and (dst == catalog_dir or dst.startswith(catalog_dir + os.sep)):
      moves.append(dst)
      raise interruption
    move(src, dst)

  for name in ('replace', 'rename'):
    monkeypatch.setattr(os, name, functools.partial(interrupt_the_first_move_into_the_catalog, getattr(os, name)))
  with pytest.raises(type(interruption)):
    prepare.prepare_examples(csv_path, TEMPORAL, out)
  assert moves  # the interruption happened
  assert _output_files(out) == before
  assert sorted(os.listdir(out)) == ['catalog', 'examples']  # no staging folder left

  monkeypatch.undo()
  again = prepare.prepare_examples(csv_path, TEMPORAL, out)
  assert len(again.changed_files) == 3
  with open(again.catalog_path, encoding='utf-8') as f:
    assert 'i3,Delta,1980' in f.read()


def test_prepare_cli(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture) -> None:
  csv_path = _write_csv(tmp_path)
  out = str(tmp_path / 'out')
  assert prepare.main(['--output-dir', out, '--interactions', csv_path, '--split', 'temporal',
                       '--eval-fraction', '0.4']) == 0
  assert "{'train': 3, 'eval': 2}" in capsys.readouterr().out
  assert prepare.main(['--output-dir', out, '--interactions', csv_path, '--rating-scale', '2', '5']) == 2
  assert '--rating-scale MIN MAX' in capsys.readouterr().err


def test_prepare_cli_refuses_an_empty_interactions_path(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
  # `--interactions ""` (e.g. "$CSV" with CSV unset) was taken for no --interactions: MovieLens was converted
  # (from the cached download) and prepared instead of the user's data.
  def convert_movielens(*_):
    raise AssertionError('MovieLens was converted')

  monkeypatch.setattr(prepare, 'write_movielens_csv', convert_movielens)
  with pytest.raises(SystemExit) as exit_info:
    prepare.main(['--output-dir', str(tmp_path / 'out'), '--interactions', ''])
  assert exit_info.value.code == 2
  assert capsys.readouterr().err.endswith(
      'error: argument --interactions: the path is empty; pass the interactions CSV, or leave the flag out to '
      'prepare MovieLens 100K\n')
  assert not os.path.exists(tmp_path / 'out')


def test_prepare_cli_refuses_an_empty_output_dir(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
  # `--output-dir ""` (e.g. "$OUT" with OUT unset): before, examples/ and catalog/ were written to the current folder.
  monkeypatch.chdir(tmp_path)
  with pytest.raises(SystemExit) as exit_info:
    prepare.main(['--output-dir', '', '--interactions', _write_csv(tmp_path)])
  assert exit_info.value.code == 2
  assert capsys.readouterr().err.endswith(
      'error: argument --output-dir: the path is empty; pass the folder for examples/ and catalog/\n')
  assert sorted(os.listdir(tmp_path)) == ['interactions.csv']


def test_prepare_cli_refuses_an_output_dir_that_is_a_file(tmp_path: pathlib.Path,
                                                          capsys: pytest.CaptureFixture) -> None:
  # Before, a NotADirectoryError traceback for '<file>/.staging', after the whole CSV had been read and validated.
  out = tmp_path / 'out'
  out.write_bytes(b'')
  with pytest.raises(SystemExit) as exit_info:
    prepare.main(['--output-dir', str(out), '--interactions', _write_csv(tmp_path)])
  assert exit_info.value.code == 2
  assert capsys.readouterr().err.endswith(
      f'error: argument --output-dir: {out} is a file, not a folder; pass a folder (it is created if needed)\n')
  assert out.read_bytes() == b''


def test_fixture_shape_determinism_and_contract() -> None:
  data = fixtures.generate_interactions(num_users=6, num_items=5, interactions_per_user=4, seed=1)
  assert data.column_names == features.MOVIELENS_COLUMNS
  assert data.num_rows == 24
  pairs = list(zip(data.column('user_id'), data.column('item_id')))
  assert len(set(pairs)) == 24  # each user rates distinct items
  assert sorted(set(data.column('user_id'))) == ['1', '2', '3', '4', '5', '6']
  assert np.all(np.diff(data.column('timestamp')) > 0)
  ratings = data.column('rating')
  assert set(ratings.tolist()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
  assert all(15 <= a <= 70 for a in data.column('user_age'))
  assert set(data.column('user_gender')) <= {'M', 'F'}
  for item_id, title in zip(data.column('item_id'), data.column('item_title')):
    assert title == f'Item {item_id}'
  same = fixtures.generate_interactions(num_users=6, num_items=5, interactions_per_user=4, seed=1)
  other = fixtures.generate_interactions(num_users=6, num_items=5, interactions_per_user=4, seed=2)
  assert pairs == list(zip(same.column('user_id'), same.column('item_id')))
  np.testing.assert_array_equal(same.column('rating'), ratings)
  assert pairs != list(zip(other.column('user_id'), other.column('item_id')))
  with pytest.raises(ValueError, match='interactions_per_user=6 exceeds num_items=5'):
    fixtures.generate_interactions(num_users=2, num_items=5, interactions_per_user=6)


def test_segment_rating_noise_changes_only_that_segment() -> None:
  plain = fixtures.generate_interactions(seed=3)
  noisy = fixtures.generate_interactions(seed=3, segment_rating_noise={'F': 2.0})
  female = np.array([g == 'F' for g in plain.column('user_gender')])
  assert female.any() and (~female).any()
  np.testing.assert_array_equal(noisy.column('rating')[~female], plain.column('rating')[~female])
  differs = noisy.column('rating')[female] != plain.column('rating')[female]
  assert differs.mean() > 0.4  # 2-star extra noise moves most rounded ratings


def test_segment_rating_noise_refuses_unknown_genders_and_non_finite_noise(tmp_path: pathlib.Path,
                                                                          capsys: pytest.CaptureFixture) -> None:
  # The genders are 'M' and 'F': {'f': 2.0} used to change no rating without a word; a NaN noise passed the `< 0`
  # check and made every rating of the segment NaN.
  with pytest.raises(ValueError, match=r"segment_rating_noise keys \['X', 'f'\] are not genders of the fixture; "
                                       r"use \['M', 'F'\]"):
    fixtures.generate_interactions(segment_rating_noise={'f': 2.0, 'X': 1.0, 'F': 1.0})
  for noise in ({'F': float('nan')}, {'M': float('inf')}):
    with pytest.raises(ValueError, match='must be finite and >= 0'):
      fixtures.generate_interactions(segment_rating_noise=noise)
  with pytest.raises(ValueError, match='must be finite and >= 0'):
    fixtures.generate_interactions(noise_stddev=float('nan'))
  path = str(tmp_path / 'fx.csv')
  assert fixtures.main(['--output', path, '--segment-noise', 'f=2.0']) == 2
  assert "keys ['f'] are not genders" in capsys.readouterr().err
  assert not os.path.exists(path)


def _als_heldout_mse(users, items, ratings, train, test, rank: int = 3, steps: int = 15) -> float:
  """Held-out MSE of a small regularized ALS matrix factorization on centred ratings."""
  num_users, num_items = users.max() + 1, items.max() + 1
  mean = ratings[train].mean()
  rng = np.random.default_rng(0)
  p, q = rng.normal(scale=0.1, size=(num_users, rank)), rng.normal(scale=0.1, size=(num_items, rank))
  for _ in range(steps):
    for fixed, solved, rows, cols in ((q, p, users, items), (p, q, items, users)):
      for r in range(len(solved)):
        mask = train & (rows == r)
        x = fixed[cols[mask]]
        solved[r] = np.linalg.solve(x.T @ x + 0.5 * np.eye(rank), x.T @ (ratings[mask] - mean))
  predicted = mean + np.sum(p[users[test]] * q[items[test]], axis=1)
  return float(np.mean((ratings[test] - predicted) ** 2))


def test_fixture_has_learnable_user_item_structure() -> None:
  # The planted low-rank structure lets a rank-3 factorization predict held-out ratings far better than
  # the per-item mean (which only sees item bias); with random ratings the two would be about equal.
  data = fixtures.generate_interactions(num_users=100, num_items=40, interactions_per_user=20, seed=0)
  users = np.array(data.column('user_id'), dtype=int) - 1
  items = np.array(data.column('item_id'), dtype=int) - 1
  ratings = data.column('rating')
  test = np.zeros(len(ratings), dtype=bool)
  test[splits.split_interactions(len(ratings), splits.SplitSpec('seed')).eval] = True
  train = ~test
  item_means = np.array([ratings[train & (items == i)].mean() for i in range(40)])
  item_mean_mse = float(np.mean((ratings[test] - item_means[items[test]]) ** 2))
  assert _als_heldout_mse(users, items, ratings, train, test) < 0.6 * item_mean_mse


def test_fixture_cli_writes_a_csv_that_reads_back_with_the_same_types(tmp_path: pathlib.Path) -> None:
  path = str(tmp_path / 'fx.csv')
  assert fixtures.main(['--output', path, '--users', '12', '--items', '6', '--per-user', '3',
                        '--segment-noise', 'F=1.5']) == 0
  read_back = il.read_interactions(path)
  assert read_back.num_rows == 36
  assert read_back.column_types == {**il.REQUIRED_COLUMN_TYPES, **movielens.MOVIELENS_COLUMN_TYPES}
  expected = fixtures.generate_interactions(num_users=12, num_items=6, interactions_per_user=3,
                                            segment_rating_noise={'F': 1.5})
  assert read_back.row(5) == expected.row(5)
  assert fixtures.main(['--output', path, '--segment-noise', 'F']) == 2


def test_write_movielens_csv_checks_u_data_against_the_rating_scale(tmp_path: pathlib.Path) -> None:
  folder = tmp_path / 'ml-100k'
  folder.mkdir()
  (folder / 'u.genre').write_bytes(b'unknown|0\nAction|1\n')
  (folder / 'u.item').write_bytes(b'1|Invented Film (1990)|01-Jan-1990||http://example.invalid/a|0|1\n')
  (folder / 'u.user').write_bytes(b'1|24|M|technician|12345\n')
  (folder / 'u.data').write_bytes(b'1\t1\t8\t100\n')
  with pytest.raises(movielens.MovieLensError, match=r"u.data, line 1: rating '8' is outside the rating "
                     r"scale \[1, 5\]"):
    prepare.write_movielens_csv(str(folder), str(tmp_path / 'default'))
  path = prepare.write_movielens_csv(str(folder), str(tmp_path / 'wide'), rating_scale=(0, 10))
  assert il.read_interactions(path, rating_scale=(0, 10)).column('rating').tolist() == [8.0]


def test_prepare_cli_reports_an_output_dir_it_cannot_create(tmp_path: pathlib.Path,
                                                            capsys: pytest.CaptureFixture) -> None:
  # Before, a NotADirectoryError traceback: only ValueError was turned into an error message and exit 2.
  (tmp_path / 'file').write_bytes(b'')
  out = tmp_path / 'file' / 'out'
  assert prepare.main(['--output-dir', str(out), '--interactions', _write_csv(tmp_path)]) == 2
  err = capsys.readouterr().err
  assert err.startswith(f"error: [Errno 20] Not a directory: '{out}'. Fix: ")
  assert '--output-dir is a writable folder' in err


def test_prepare_cli_reports_a_full_disk(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
  # TFRecordWriter reports a full disk as tf.errors.ResourceExhaustedError, not an OSError: a traceback before.
  write_tfrecord = examples.write_tfrecord
  monkeypatch.setattr(examples, 'write_tfrecord', lambda records, _: write_tfrecord(records, '/dev/full'))
  out = tmp_path / 'out'
  assert prepare.main(['--output-dir', str(out), '--interactions', _write_csv(tmp_path)]) == 2
  assert capsys.readouterr().err.startswith('error: /dev/full; No space left on device. Fix: ')
  assert not os.path.exists(out / 'examples')


def test_serialize_example_refuses_a_non_zero_float_too_close_to_0_for_float32() -> None:
  # float32(1e-50) is 0.0 and float32(1e-40) a subnormal of ~3 digits; before, both were written without a word.
  for value in (1e-50, -1e-40, np.float64(1e-46)):
    with pytest.raises(ValueError, match=r"Column 'user_x': value .* is not FLOAT .*too close to 0 for float32"):
      examples.serialize_example({'user_x': value}, {'user_x': ColumnType.FLOAT})
  data = examples.serialize_example({'user_x': 0.0, 'user_y': 1.2e-38},
                                    {'user_x': ColumnType.FLOAT, 'user_y': ColumnType.FLOAT})
  got = tf.train.Example.FromString(data).features.feature
  assert (list(got['user_x'].float_list.value), list(got['user_y'].float_list.value)) == (
      [0.0], [float(np.float32(1.2e-38))])


def test_a_swap_that_cannot_be_undone_names_where_the_previous_files_are_and_keeps_them(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
  csv_path = _write_csv(tmp_path)
  out = str(tmp_path / 'out')
  prepare.prepare_examples(csv_path, TEMPORAL, out)
  before = _output_files(out)
  _write_csv(tmp_path, CSV.replace(',4,50,', ',5,50,').replace('Gamma', 'Delta'))
  rename = os.rename

  def fail_into_catalog_and_out_of_old(src: str, dst: str) -> None:
    if dst == os.path.join(out, 'catalog') or os.sep + 'old' + os.sep in src:
      raise OSError('disk full')
    rename(src, dst)

  monkeypatch.setattr(os, 'rename', fail_into_catalog_and_out_of_old)
  with pytest.raises(OSError, match='could not move the previous folders back') as e:
    prepare.prepare_examples(csv_path, TEMPORAL, out)
  (run,) = os.listdir(os.path.join(out, '.staging'))
  old_root = os.path.join(out, '.staging', run, 'old')
  assert f'Fix: move the folders in {old_root} back to {out}' in str(e.value)
  # Both previous folders were moved aside before the new catalog/ failed to move in; neither could move back (the new
  # examples/ could: it is out of the way). They are kept there, whole.
  assert _output_files(old_root) == before
  assert sorted(os.listdir(out)) == ['.staging']


def test_prepare_refuses_an_examples_path_that_is_not_a_folder_before_replacing_anything(
    tmp_path: pathlib.Path) -> None:
  out = tmp_path / 'out'
  out.mkdir()
  (out / 'examples').write_bytes(b'not a folder')
  with pytest.raises(NotADirectoryError, match=r'examples is not a folder .* Fix: move it away'):
    prepare.prepare_examples(_write_csv(tmp_path), TEMPORAL, str(out))
  assert (out / 'examples').read_bytes() == b'not a folder'
  assert sorted(os.listdir(out)) == ['examples']


# The data of the run that was killed: it changes both splits and the catalog (the title of i3).
KILLED_RUN_CSV = CSV.replace(',4,50,', ',5,50,').replace(',3,10,', ',2,10,').replace('Gamma', 'Delta')
# A staging folder as `_new_run_dir` names it (<pid>-<hex>), with a pid no live process has here (above pid_max).
KILLED_RUN = '4194304999-0123456789abcdef0123456789abcdef'
BAD_CSV = CSV.replace('u2,i3,1,20', 'u2,i3,9,20')  # refused after the recovery, before anything is written
E, C = 'examples', 'catalog'


def _run_outputs(tmp_path: pathlib.Path, name: str, content: str) -> str:
  """The output folder of a prepare run on `content`, made in tmp_path/name."""
  folder = tmp_path / name
  folder.mkdir()
  csv_path = folder / 'interactions.csv'
  csv_path.write_text(content, encoding='utf-8')
  out = str(folder / 'out')
  prepare.prepare_examples(str(csv_path), TEMPORAL, out)
  return out


@pytest.mark.parametrize('out_has, new_has, old_has, suffix, kept', [
    # Killed while staging (only the train file written): no old/, the outputs untouched.
    ({E: 'previous', C: 'previous'}, ['examples/train'], None, '', 'previous'),
    # Killed after examples/ was moved aside, before the new one moved in: no examples/ at all.
    ({C: 'previous'}, [E, C], [E], '', 'previous'),
    # Killed after the new examples/ moved in, before catalog/ was moved aside: new examples/, previous catalog/.
    ({E: 'killed', C: 'previous'}, [C], [E], '', 'previous'),
    # Killed after catalog/ was moved aside: new examples/, no catalog/.
    ({E: 'killed'}, [C], [E, C], '', 'previous'),
    # Killed after the swap completed, before the staging folder was set aside for removal.
    ({E: 'killed', C: 'killed'}, [], [E, C], '', 'killed'),
    # Killed while removing the finished run's staging folder (half of old/ deleted, new/ gone).
    ({E: 'killed', C: 'killed'}, None, ['examples/train'], '.done', 'killed'),
    # A swap whose undo failed (the OSError naming old/): neither previous folder could move back.
    ({}, [E, C], [E, C], '', 'previous'),
    # The first run (nothing to move aside) killed after its examples/ moved in: rolled back to no outputs.
    ({E: 'killed'}, [C], [], '', None),
], ids=['staging', 'examples-aside', 'examples-in', 'catalog-aside', 'swapped', 'removing', 'undo-failed',
        'first-run-examples-in'])
def test_the_next_run_puts_back_the_folders_of_one_run_after_a_run_killed_outright(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture, out_has: dict, new_has: list, old_has: list,
    suffix: str, kept: str) -> None:
  # Before, the next run neither noticed nor removed the killed run's .staging/: a run refused (or killed) before
  # its own swap left the mix of two runs' folders in place, and .staging/ stayed for good.
  runs = {'previous': _run_outputs(tmp_path, 'previous', CSV), 'killed': _run_outputs(tmp_path, 'killed',
                                                                                      KILLED_RUN_CSV)}
  out = tmp_path / 'out'
  out.mkdir()
  for name, run in out_has.items():
    shutil.copytree(os.path.join(runs[run], name), out / name)
  run_dir = out / '.staging' / (KILLED_RUN + suffix)
  run_dir.mkdir(parents=True)
  for root, names, run in (('new', new_has, 'killed'), ('old', old_has, 'previous')):
    if names is not None:
      (run_dir / root).mkdir()
      for name in names:
        shutil.copytree(os.path.join(runs[run], name), run_dir / root / name)
  assert _output_files(str(out)) != (_output_files(runs[kept]) if kept else {})  # a leftover, maybe a mix

  csv_path = _write_csv(tmp_path, BAD_CSV)
  with caplog.at_level('INFO', logger='absl'):
    with pytest.raises(il.InteractionsFormatError, match='line 6'):
      prepare.prepare_examples(csv_path, TEMPORAL, str(out))
  assert _output_files(str(out)) == (_output_files(runs[kept]) if kept else {})
  assert sorted(os.listdir(out)) == ([C, E] if kept else [])  # no .staging/
  (logged,) = [r for r in caplog.records if str(run_dir) in r.getMessage()]
  assert logged.levelname == 'WARNING'
  assert logged.getMessage().startswith(f'Found the staging folder {run_dir} of an interrupted prepare run: ')
  assert ('rolled back to the previous examples, catalog' in logged.getMessage()) == (
      kept != 'killed' and old_has is not None and suffix == '')

  _write_csv(tmp_path, KILLED_RUN_CSV)
  prepare.prepare_examples(csv_path, TEMPORAL, str(out))
  assert _output_files(str(out)) == _output_files(runs['killed'])
  assert sorted(os.listdir(out)) == [C, E]


def test_a_staging_folder_a_live_run_holds_is_left_alone(tmp_path: pathlib.Path) -> None:
  out = _run_outputs(tmp_path, 'run', CSV)
  live = os.path.join(out, '.staging', KILLED_RUN)
  os.makedirs(os.path.join(live, 'new', 'examples'))
  fd = os.open(live, os.O_RDONLY)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a prepare run in progress holds its folder
    again = prepare.prepare_examples(os.path.join(tmp_path, 'run', 'interactions.csv'), TEMPORAL, out)
    assert again.changed_files == ()
    assert os.path.isdir(os.path.join(live, 'new', 'examples'))
  finally:
    os.close(fd)
  prepare.prepare_examples(os.path.join(tmp_path, 'run', 'interactions.csv'), TEMPORAL, out)  # now released
  assert sorted(os.listdir(out)) == [C, E]


def test_a_staged_file_an_earlier_version_left_is_removed(tmp_path: pathlib.Path) -> None:
  out = _run_outputs(tmp_path, 'run', CSV)
  os.mkdir(os.path.join(out, '.staging'))
  with open(os.path.join(out, '.staging', '4194304999-0123movielens_interactions.csv'), 'w', encoding='utf-8') as f:
    f.write('user_id,item_id')  # cut short
  prepare.prepare_examples(os.path.join(tmp_path, 'run', 'interactions.csv'), TEMPORAL, out)
  assert sorted(os.listdir(out)) == [C, E]
