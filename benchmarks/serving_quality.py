"""Benchmark: end-to-end top-10 quality of recommend() on the canonical MovieLens 100K split, beside peers.

  .venv/bin/python benchmarks/serving_quality.py --serving-dir OUTPUT_DIR/serving \
      --data-dir /work/shared/data/ml-100k [--weights 0,0.1,0.25,0.5,0.75,1]

The served models must come from a run on the canonical split (`local_runner.py --split seed`): rows of
`u.data` in file order, `numpy.random.default_rng(42).permutation(100000)`, first 80,000 train, the rest test
(as ../shared/bench/README.md defines it; the script checks the served seen items equal that train split).

For every user with test items not among their training items it asks `Recommender.recommend(user, k=10)`
(seen items excluded) at each ranking weight of the final score; weight 0 is the retrieval-only order of the
same candidates. Metrics, averaged over those users, with the user's training items removed:

* Recall@10 = |test items in the top 10| / min(|test items|, 10)   (the peers' definition)
* NDCG@10  = DCG@10 / ideal DCG@10 with binary relevance, gains 1/log2(rank + 1)

Peers on the same split and metrics: popularity and EASE (lambda=500), as ../shared/bench/retrieval_baselines.py
builds them.
"""

import argparse
import os
import sys
from typing import Dict, List, Mapping, Optional, Sequence, Set

import numpy as np

from pipeline import environment

CUTOFF = 10
SPLIT_SEED = 42
TRAIN_ROWS = 80_000
EASE_LAMBDA = 500.0


def recall_at_k(ranked: Sequence[str], truth: Set[str], k: int = CUTOFF) -> float:
  """|truth in the first k of ranked| / min(|truth|, k); truth must not be empty."""
  return len(truth.intersection(ranked[:k])) / min(len(truth), k)


def ndcg_at_k(ranked: Sequence[str], truth: Set[str], k: int = CUTOFF) -> float:
  """Binary-relevance NDCG of the first k of ranked; truth must not be empty."""
  dcg = sum(1.0 / np.log2(rank + 2) for rank, item in enumerate(ranked[:k]) if item in truth)
  ideal = sum(1.0 / np.log2(rank + 2) for rank in range(min(len(truth), k)))
  return dcg / ideal


def canonical_split(data_dir: str) -> tuple:
  """(train rows, test rows) int64 `[n, 3]` (user, item, rating) of the canonical split."""
  with open(os.path.join(data_dir, 'u.data'), encoding='utf-8') as f:
    rows = np.array([line.split('\t')[:3] for line in f], dtype=np.int64)
  perm = np.random.default_rng(SPLIT_SEED).permutation(len(rows))
  return rows[perm[:TRAIN_ROWS]], rows[perm[TRAIN_ROWS:]]


def test_truth(train: np.ndarray, test: np.ndarray) -> Dict[str, Set[str]]:
  """user -> test items not among the user's training items (users with none left out)."""
  seen: Dict[int, Set[int]] = {}
  for user, item, _ in train:
    seen.setdefault(int(user), set()).add(int(item))
  truth: Dict[str, Set[str]] = {}
  for user, item, _ in test:
    if int(item) not in seen.get(int(user), set()):
      truth.setdefault(str(user), set()).add(str(item))
  return truth


def peer_rankings(train: np.ndarray, users: Sequence[str]) -> Dict[str, Dict[str, List[str]]]:
  """Top-10 lists (seen removed) of the popularity and EASE peers for `users`."""
  num_users, num_items = int(train[:, 0].max()) + 1, int(train[:, 1].max()) + 1
  interactions = np.zeros((num_users, num_items), np.float32)
  interactions[train[:, 0], train[:, 1]] = 1.0
  gram = interactions.T @ interactions
  gram[np.diag_indices(num_items)] += EASE_LAMBDA
  precision = np.linalg.inv(gram)
  weights = -precision / np.diag(precision)
  weights[np.diag_indices(num_items)] = 0
  scores = {'popularity': np.tile(interactions.sum(0), (num_users, 1)), 'ease_l500': interactions @ weights}
  rankings: Dict[str, Dict[str, List[str]]] = {}
  for name, matrix in scores.items():
    matrix = np.where(interactions > 0, -np.inf, matrix)
    matrix[:, 0] = -np.inf  # item ids start at 1
    rankings[name] = {}
    for user in users:
      top = np.argsort(-matrix[int(user)], kind='stable')[:CUTOFF]
      rankings[name][user] = [str(i) for i in top]
  return rankings


def report(name: str, rankings: Mapping[str, Sequence[str]], truth: Mapping[str, Set[str]]) -> Dict[str, float]:
  recall = float(np.mean([recall_at_k(rankings[u], truth[u]) for u in truth]))
  ndcg = float(np.mean([ndcg_at_k(rankings[u], truth[u]) for u in truth]))
  print(f'{name:<34} recall@10={recall:.4f} ndcg@10={ndcg:.4f} users={len(truth)}')
  return {'recall': recall, 'ndcg': ndcg}


def main(argv: Optional[List[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--serving-dir', required=True)
  parser.add_argument('--data-dir', required=True, help='MovieLens 100K folder holding u.data.')
  parser.add_argument('--weights', default='0,0.1,0.2,0.3,0.5,0.75,1',
                      help='Ranking weights of the final score to measure (0 = retrieval only).')
  args = parser.parse_args(argv)
  environment.use_legacy_keras()
  # pylint: disable=g-import-not-at-top
  from serving import models, recommender

  train, test = canonical_split(args.data_dir)
  truth = test_truth(train, test)
  registry = models.ModelRegistry(args.serving_dir)
  if not registry.refresh():
    print(f'No complete retrieval and ranking versions under {args.serving_dir}.', file=sys.stderr)
    return 2
  bundle = registry.current()
  served_train = sum(len(items) for items in bundle.assets.seen_items.values())
  expected_train = len({(int(u), int(i)) for u, i, _ in train})
  if served_train != expected_train:
    print(f'The served model saw {served_train} (user, item) pairs in training, the canonical split has '
          f'{expected_train}: run the pipeline with --split seed.', file=sys.stderr)
    return 2
  print(f'model_versions retrieval={bundle.versions.retrieval} ranking={bundle.versions.ranking}')

  weights = [float(w) for w in args.weights.split(',')]
  if recommender.DEFAULT_RANKING_WEIGHT not in weights:
    weights.append(recommender.DEFAULT_RANKING_WEIGHT)
  results: Dict[float, Dict[str, float]] = {}
  for weight in sorted(weights):
    service = recommender.Recommender(registry, ranking_weight=weight)
    rankings = {user: [item.item_id for item in service.recommend(user, k=CUTOFF).items] for user in truth}
    label = 'retrieval only (weight 0)' if weight == 0 else f'recommend, ranking weight {weight:g}'
    if weight == recommender.DEFAULT_RANKING_WEIGHT:
      label += ' [default]'
    results[weight] = report(label, rankings, truth)
  for name, rankings in peer_rankings(train, list(truth)).items():
    report(f'peer {name}', rankings, truth)
  baseline, chosen = results[0.0], results[recommender.DEFAULT_RANKING_WEIGHT]
  verdict = 'not worse' if chosen['recall'] >= baseline['recall'] and chosen['ndcg'] >= baseline['ndcg'] else 'WORSE'
  print(f'default final score vs retrieval only: recall@10 {chosen["recall"] - baseline["recall"]:+.4f}, '
        f'ndcg@10 {chosen["ndcg"] - baseline["ndcg"]:+.4f} ({verdict})')
  return 0


if __name__ == '__main__':
  sys.exit(main())
