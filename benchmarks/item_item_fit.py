"""Benchmark: time and peak memory of the item-item (EASE) retrieval fit and scoring on generated histories.

  .venv/bin/python benchmarks/item_item_fit.py [--items 10000] [--users 50000] [--items-per-user 60] [--seed 0]

Generates `--users` users with `--items-per-user` distinct items each, drawn with Zipf-like popularity (item i
with weight 1 / (i + 10)) from a catalogue of `--items`, then times `fit_weights` (at most MAX_ITEMS items
covered) and one scorer call for 256 users, and prints the process's peak resident memory. The fit's memory is
about three covered² float64 matrices; time grows with covered³.
"""

import argparse
import resource
import sys
import time
from typing import Optional, Sequence

import numpy as np

import benchmark_flags
from pipeline import environment


def generated_histories(num_items: int, num_users: int, items_per_user: int, seed: int):
  """user id -> set of catalogue columns, popularity falling as 1 / (column + 10)."""
  rng = np.random.default_rng(seed)
  popularity = 1.0 / (np.arange(num_items) + 10.0)
  popularity /= popularity.sum()
  per_user = min(items_per_user, num_items)
  return {f'u{u}'.encode(): set(rng.choice(num_items, size=per_user, replace=False, p=popularity).tolist())
          for u in range(num_users)}


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--items', type=benchmark_flags.positive_int, default=10_000)
  parser.add_argument('--users', type=benchmark_flags.positive_int, default=50_000)
  parser.add_argument('--items-per-user', type=benchmark_flags.positive_int, default=60)
  parser.add_argument('--seed', type=benchmark_flags.seed, default=0)
  args = parser.parse_args(argv)
  environment.use_legacy_keras()
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  from trainer.retrieval import hparams as hparams_lib, item_item
  # pylint: enable=g-import-not-at-top
  started = time.perf_counter()
  histories = item_item.histories_from_sets(
      generated_histories(args.items, args.users, args.items_per_user, args.seed))
  generated = time.perf_counter()
  weights = item_item.fit_weights(histories, args.items, hparams_lib.DEFAULT.item_item_l2)
  fitted = time.perf_counter()
  scorer = item_item.ItemItemScorer(histories, weights, args.items)
  users = tf.constant(histories.user_ids[:256].tolist())
  scorer(users)
  first_call = time.perf_counter()
  scorer(users)
  second_call = time.perf_counter()
  print(f'items={args.items} users={args.users} interactions={histories.item_columns.size} '
        f'covered={weights.columns.size} (MAX_ITEMS={item_item.MAX_ITEMS})')
  print(f'generate_s={generated - started:.1f} fit_s={fitted - generated:.1f} '
        f'score_256_users_ms={1e3 * (second_call - first_call):.1f}')
  print(f'peak_rss_gb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
