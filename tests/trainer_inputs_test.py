"""trainer.common.inputs.in_canonical_order: the order of a split depends on its rows, not on how they were stored."""

import tensorflow as tf

from trainer.common import inputs

# Four invented rows: a user index, an item id, a rating and a token bag (one of them empty).
USERS = [3, 1, 2, 1]
ITEMS = [b'a', b'b', b'c', b'd']
RATINGS = [4.0, 2.5, 5.0, 1.0]
TOKENS = [[0], [1, 2], [], [5]]


def _split(order):
  """The rows in `order`, as an unbatched dataset with a SparseTensor `[None]` token bag (as load_split gives)."""
  return tf.data.Dataset.from_tensor_slices({
      'user': tf.constant([USERS[i] for i in order], tf.int64),
      'item': tf.constant([ITEMS[i] for i in order]),
      'rating': tf.constant([RATINGS[i] for i in order]),
      'tokens': tf.ragged.constant([TOKENS[i] for i in order], dtype=tf.int64).to_sparse(),
  })


def _rows(split):
  return [(int(e['user']), e['item'].numpy(), float(e['rating']), e['tokens'].values.numpy().tolist())
          for e in split]


def test_any_stored_order_gives_the_same_order_and_the_same_rows():
  orders = [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]]
  results = [_rows(inputs.in_canonical_order(_split(order))) for order in orders]
  assert results[0] == results[1] == results[2]
  assert sorted(results[0]) == sorted(
      (USERS[i], ITEMS[i], RATINGS[i], TOKENS[i]) for i in range(4))


def test_float_features_do_not_key_the_order():
  # Analyzer sums can differ in the last bits between runs: the same rows with a rating off by 1e-6 keep one order.
  shifted = _split([2, 0, 3, 1]).map(lambda e: {**e, 'rating': e['rating'] + 1e-6})
  assert [r[:2] for r in _rows(inputs.in_canonical_order(shifted))] == [
      r[:2] for r in _rows(inputs.in_canonical_order(_split([0, 1, 2, 3])))]


def test_structure_is_kept_so_batches_have_sparse_token_bags():
  canonical = inputs.in_canonical_order(_split([0, 1, 2, 3]))
  spec = canonical.element_spec
  assert {k: (type(v), v.dtype, v.shape.rank) for k, v in spec.items()} == {
      k: (type(v), v.dtype, v.shape.rank) for k, v in _split([0, 1, 2, 3]).element_spec.items()}
  batch = next(iter(canonical.batch(4)))
  assert isinstance(batch['tokens'], tf.SparseTensor)
  assert batch['tokens'].dense_shape.numpy().tolist() == [4, 2]  # the longest bag holds two tokens
  assert sorted(batch['tokens'].values.numpy().tolist()) == [0, 1, 2, 5]


def test_an_empty_split_stays_empty():
  empty = _split([0, 1, 2, 3]).take(0)
  assert _rows(inputs.in_canonical_order(empty)) == []
