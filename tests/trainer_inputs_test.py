"""trainer.common.inputs: splits held in memory as columns, their canonical order, validation slice and batches."""

import fractions
import itertools

import pytest
import tensorflow as tf

from trainer.common import inputs

# Four invented rows: a user index, an item id, a rating and a token bag (one of them empty).
USERS = [3, 1, 2, 1]
ITEMS = [b'a', b'b', b'c', b'd']
RATINGS = [4.0, 2.5, 5.0, 1.0]
TOKENS = [[0], [1, 2], [], [5]]


def _batches(order, batch_size=4, rating_shift=0.0):
  """The rows in `order` as a dataset of batches with a SparseTensor `[batch, None]` token bag (as TFXIO gives)."""
  return tf.data.Dataset.from_tensor_slices({
      'user': tf.constant([USERS[i] for i in order], tf.int64),
      'item': tf.constant([ITEMS[i] for i in order]),
      'rating': tf.constant([RATINGS[i] + rating_shift for i in order]),
      'tokens': tf.ragged.constant([TOKENS[i] for i in order], dtype=tf.int64).to_sparse(),
  }).batch(batch_size)


def _rows(batches):
  """(user, item, rating, tokens) of every row of a dataset of model batches, in order."""
  rows = []
  for batch in batches:
    tokens = tf.RaggedTensor.from_sparse(batch['tokens']).to_list()
    rows.extend(zip(batch['user'].numpy().tolist(), batch['item'].numpy().tolist(),
                    batch['rating'].numpy().tolist(), tokens))
  return rows


def _split_rows(split):
  return _rows(inputs.evaluation_batches(split, 3))


def test_in_memory_keeps_every_row_whatever_the_batch_sizes():
  split = inputs.in_memory(_batches([2, 0, 3, 1], batch_size=3))  # batches of 3 and 1 rows
  assert split.num_rows == 4
  assert _split_rows(split) == [(USERS[i], ITEMS[i], RATINGS[i], TOKENS[i]) for i in [2, 0, 3, 1]]


def test_any_stored_order_gives_the_same_order_and_the_same_rows():
  orders = [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]]
  results = [_split_rows(inputs.in_canonical_order(inputs.in_memory(_batches(order)))) for order in orders]
  assert results[0] == results[1] == results[2]
  assert sorted(results[0]) == sorted((USERS[i], ITEMS[i], RATINGS[i], TOKENS[i]) for i in range(4))


def test_float_features_do_not_key_the_order():
  # Analyzer sums can differ in the last bits between runs: the same rows with a rating off by 1e-6 keep one order.
  shifted = inputs.in_canonical_order(inputs.in_memory(_batches([2, 0, 3, 1], rating_shift=1e-6)))
  plain = inputs.in_canonical_order(inputs.in_memory(_batches([0, 1, 2, 3])))
  assert [r[:2] for r in _split_rows(shifted)] == [r[:2] for r in _split_rows(plain)]


def _re_ratings(order):
  """User 1 rates item b twice (5 stars on day -0.5, then 2 on day 0.7, z-scored times), user 2 item c once; `order`
  is the stored order of the three rows."""
  rows = [(1, b'b', 2.0, 0.7), (1, b'b', 5.0, -0.5), (2, b'c', 3.0, 0.1)]
  return inputs.in_memory(tf.data.Dataset.from_tensor_slices({
      'user': tf.constant([rows[i][0] for i in order], tf.int64),
      'item': tf.constant([rows[i][1] for i in order]),
      'rating': tf.constant([rows[i][2] for i in order]),
      inputs.INTERACTION_TIME_KEY: tf.constant([rows[i][3] for i in order]),
  }).batch(2))


def _ratings_of_user_1(split):
  return [r for u, r in zip(split.columns['user'].numpy(), split.columns['rating'].numpy()) if u == 1]


@pytest.mark.parametrize('order', [[0, 1, 2], [1, 0, 2], [2, 1, 0]])
def test_repeated_user_item_rows_are_ordered_by_interaction_time_whatever_the_stored_order(order):
  # The two rows of (user 1, item b) have equal keys; before, they kept their stored order, which Beam changes from
  # run to run. By interaction time: the 5 stars of day -0.5 first, then the 2 of day 0.7.
  canonical = inputs.in_canonical_order(_re_ratings(order))
  assert _ratings_of_user_1(canonical) == [5.0, 2.0]
  assert sorted(canonical.columns['rating'].numpy().tolist()) == [2.0, 3.0, 5.0]
  # Without the interaction time first, the float features by name: 'interaction_time_xf' < 'rating' all the same.
  assert _ratings_of_user_1(inputs.in_canonical_order(_re_ratings(order), first_tie_breaker=None)) == [5.0, 2.0]


def test_rows_of_equal_keys_and_time_are_ordered_by_the_other_float_features():
  # Two rows equal in user, item and time, ratings 4 and 1: the rating breaks the tie, ascending.
  for order in ([0, 1], [1, 0]):
    columns = {'user': [7, 7], 'rating': [4.0, 1.0], inputs.INTERACTION_TIME_KEY: [0.2, 0.2]}
    split = inputs.InMemorySplit({k: tf.constant([v[i] for i in order]) for k, v in columns.items()})
    assert inputs.in_canonical_order(split).columns['rating'].numpy().tolist() == [1.0, 4.0]


def test_the_first_tie_breaker_comes_before_features_whose_names_sort_first():
  # 'interaction_item_age_xf' sorts before 'interaction_time_xf' (MovieLens has both), so only first_tie_breaker puts
  # the time first. The test above cannot tell: 'interaction_time_xf' < 'rating' by name anyway. Two rows of equal
  # keys: day 0.7 with item age -1.0, day -0.5 with item age 2.0. By time: ratings 5, 2; by item age first: 2, 5.
  age_key = 'interaction_item_age_xf'
  for order in ([0, 1], [1, 0]):
    columns = {'user': [7, 7], 'rating': [2.0, 5.0], inputs.INTERACTION_TIME_KEY: [0.7, -0.5], age_key: [-1.0, 2.0]}
    split = inputs.InMemorySplit({k: tf.constant([v[i] for i in order]) for k, v in columns.items()})
    assert inputs.in_canonical_order(split).columns['rating'].numpy().tolist() == [5.0, 2.0]
    assert inputs.in_canonical_order(split, first_tie_breaker=None).columns['rating'].numpy().tolist() == [2.0, 5.0]
    assert inputs.in_canonical_order(split, first_tie_breaker='no_such_xf').columns['rating'].numpy().tolist() == [
        2.0, 5.0]


def test_a_nan_time_comes_last_and_leaves_the_other_rows_in_time_order_whatever_the_stored_order():
  # User 1 rates the same item on days (z-scored) 0.1, 0.5 and 0.9 (rows 0, 1, 2); user 2 on day -0.4 (row 3) and
  # at a NaN time (row 4). 'row' (two values per row: neither a key nor a tie breaker) names the rows. By time,
  # NaN after every number: user 1's rows 0, 1, 2 and user 2's rows 3, 4. Before, the NaN scrambled the sort of
  # the whole split: 58 of the 120 stored orders (e.g. 0, 2, 4, 1, 3) gave user 1's rows as 0, 2, 1 or worse.
  times = [0.1, 0.5, 0.9, -0.4, float('nan')]
  users = [1, 1, 1, 2, 2]
  for order in itertools.permutations(range(5)):
    split = inputs.InMemorySplit({'user': tf.constant([users[i] for i in order], tf.int64),
                                  inputs.INTERACTION_TIME_KEY: tf.constant([times[i] for i in order]),
                                  'row': tf.constant([[float(i), 0.0] for i in order])})
    canonical = inputs.in_canonical_order(split)
    rows_by_user = {}
    for user, row in zip(canonical.columns['user'].numpy(), canonical.columns['row'].numpy()[:, 0]):
      rows_by_user.setdefault(int(user), []).append(int(row))
    assert rows_by_user == {1: [0, 1, 2], 2: [3, 4]}, order


def test_batches_have_sparse_token_bags_as_wide_as_their_longest():
  batch = next(iter(inputs.evaluation_batches(inputs.in_memory(_batches([0, 1, 2, 3])), 4)))
  assert isinstance(batch['tokens'], tf.SparseTensor)
  assert batch['tokens'].dense_shape.numpy().tolist() == [4, 2]  # the longest bag holds two tokens
  assert batch['tokens'].values.numpy().tolist() == [0, 1, 2, 5]
  assert batch['user'].shape == [4]


def test_every_nth_splits_off_rows_0_n_2n():
  split = inputs.in_memory(_batches([0, 1, 2, 3]))
  kept, split_off = inputs.every_nth(split, 2)
  assert (kept.num_rows, split_off.num_rows) == (2, 2)
  assert [r[1] for r in _split_rows(split_off)] == [b'a', b'c']  # rows 0 and 2
  assert [r[1] for r in _split_rows(kept)] == [b'b', b'd']
  with pytest.raises(ValueError, match='every=1 must be >= 2'):
    inputs.every_nth(split, 1)


def _row_numbers(split):
  return split.columns['row'].numpy().tolist()


def test_split_off_share_takes_p_of_every_q_rows_from_row_0():
  split = inputs.InMemorySplit({'row': tf.range(12, dtype=tf.int64)})
  # 2/5: row i goes when a multiple of 5 lies in [2i, 2i + 2): i = 0 (0), 2 (5), 5 (10), 7 (15), 10 (20).
  kept, split_off = inputs.split_off_share(split, 0.4)
  assert _row_numbers(split_off) == [0, 2, 5, 7, 10]
  assert _row_numbers(kept) == [1, 3, 4, 6, 8, 9, 11]
  # 0.3 = 3/10: multiples of 10 in [3i, 3i + 3) for i = 0 (0), 3 (10), 6 (20), then 10 (30).
  assert _row_numbers(inputs.split_off_share(split, 0.3)[1]) == [0, 3, 6, 10]


def test_split_off_share_of_one_in_n_is_every_nth_row():
  split = inputs.InMemorySplit({'row': tf.range(45, dtype=tf.int64)})
  assert _row_numbers(inputs.split_off_share(split, 0.05)[1]) == [0, 20, 40]
  assert _row_numbers(inputs.every_nth(split, 20)[1]) == [0, 20, 40]


def test_a_float_share_is_read_as_the_nearest_fraction_with_a_denominator_of_at_most_a_million():
  assert inputs.share_as_fraction(0.05) == fractions.Fraction(1, 20)
  # Any p/q other than 1/2 with q <= 10^6 is at least 1/(2q) >= 5e-7 from it; 0.4999999 is 1e-7 away.
  assert inputs.share_as_fraction(0.4999999) == fractions.Fraction(1, 2)
  # 499999/999999 = 0.49999949999...: 2e-7 from 0.4999997, 3e-7 short of 1/2.
  assert inputs.share_as_fraction(0.4999997) == fractions.Fraction(499_999, 999_999)
  # An exact Fraction is kept, whatever its denominator.
  assert inputs.share_as_fraction(fractions.Fraction(1, 2_000_001)) == fractions.Fraction(1, 2_000_001)


def test_every_nth_of_more_than_a_million_rows_is_exact():
  # 1/every is used as it is, not as the nearest fraction with a denominator of at most 10^6: before, every 1.5
  # millionth row was every millionth (0, 1000000, 2000000, 3000000) and 1/2000001 was read as 0 and refused.
  split = inputs.InMemorySplit({'row': tf.range(3_000_001, dtype=tf.int64)})
  assert _row_numbers(inputs.every_nth(split, 1_500_000)[1]) == [0, 1_500_000, 3_000_000]
  assert _row_numbers(inputs.every_nth(split, 2_000_001)[1]) == [0, 2_000_001]
  assert inputs.every_nth(split, 2_000_001)[0].num_rows == 3_000_001 - 2


@pytest.mark.parametrize('share', [0.0, 1.0])
def test_split_off_share_refuses_none_or_all_rows(share):
  split = inputs.InMemorySplit({'row': tf.range(4, dtype=tf.int64)})
  with pytest.raises(ValueError, match=r'must be in \(0, 1\)'):
    inputs.split_off_share(split, share)


@pytest.mark.parametrize('share,read_as', [(1e-9, '0'), (1 - 1e-9, '1')])
def test_a_share_in_0_1_that_rounds_to_none_or_all_rows_says_so_and_what_to_give(share, read_as):
  # Before: "share=1e-09 must be in (0, 1)", which it is. Nearest fractions with q <= 10^6: 0/1 and 1/1.
  split = inputs.InMemorySplit({'row': tf.range(4, dtype=tf.int64)})
  with pytest.raises(ValueError) as error:
    inputs.split_off_share(split, share)
  assert str(error.value) == (f'share={share} is read as {read_as} (the nearest fraction with a denominator of at '
                              'most 1000000), which would split off none or every row: give a share in '
                              '[1e-06, 0.999999].')


def test_training_batches_hold_every_row_once_per_epoch_in_a_new_order():
  rows = 64
  split = inputs.InMemorySplit({'row': tf.range(rows, dtype=tf.int64)})
  batches = inputs.training_batches(split, 10, seed=42)
  epochs = [[int(x) for batch in batches for x in batch['row']] for _ in range(2)]
  assert [len(batch['row']) for batch in batches] == [10] * 6 + [4]
  assert sorted(epochs[0]) == sorted(epochs[1]) == list(range(rows))
  assert epochs[0] != epochs[1]
  # The seed fixes the order: a second dataset built alike repeats the first one's epochs.
  again = inputs.training_batches(split, 10, seed=42)
  assert [[int(x) for batch in again for x in batch['row']] for _ in range(2)] == epochs


def test_an_empty_split_stays_empty():
  empty = inputs.in_canonical_order(inputs.in_memory(_batches([0, 1, 2, 3]).take(0)))
  assert empty.num_rows == 0
  assert _split_rows(empty) == []
  assert set(empty.columns) == {'user', 'item', 'rating', 'tokens'}
