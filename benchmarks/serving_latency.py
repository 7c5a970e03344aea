"""Benchmark: in-process recommend() latency (p50/p99, ms) over the newest pushed models.

  .venv/bin/python benchmarks/serving_latency.py --serving-dir OUTPUT_DIR/serving [--requests 2000] [--k 10]

Calls `Recommender.recommend` one request at a time for known users (cycling through the users of the serving
assets, shuffled with a fixed seed) and, separately, for unknown users (the popular-items fallback), after a
warm-up. Targets on the 2-core machine: p50 <= 10 ms, p99 <= 50 ms for known users.
"""

import argparse
import sys
import time
from typing import List, Optional

import numpy as np

import benchmark_flags
from pipeline import environment

WARMUP_REQUESTS = 50


def _percentiles_ms(seconds: List[float]) -> str:
  ms = np.array(seconds) * 1e3
  return (f'p50={np.percentile(ms, 50):.2f}ms p90={np.percentile(ms, 90):.2f}ms '
          f'p99={np.percentile(ms, 99):.2f}ms mean={ms.mean():.2f}ms n={len(ms)}')


def main(argv: Optional[List[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--serving-dir', required=True)
  parser.add_argument('--requests', type=benchmark_flags.positive_int, default=2000,
                      help='Timed requests for known users.')
  parser.add_argument('--k', type=int, default=10)
  parser.add_argument('--seed', type=benchmark_flags.seed, default=0)
  args = parser.parse_args(argv)
  environment.use_legacy_keras()
  # pylint: disable=g-import-not-at-top
  from serving import models, recommender

  if not 1 <= args.k <= recommender.DEFAULT_MAX_K:
    parser.error(f'--k {args.k}: must be from 1 to {recommender.DEFAULT_MAX_K} (the service\'s max_k).')
  registry = models.ModelRegistry(args.serving_dir)
  if not registry.refresh():
    print(f'No complete retrieval and ranking versions under {args.serving_dir}.', file=sys.stderr)
    return 2
  service = recommender.Recommender(registry)
  bundle = registry.current()
  users = sorted(bundle.assets.user_profiles)
  np.random.default_rng(args.seed).shuffle(users)
  for i in range(WARMUP_REQUESTS):
    service.recommend(users[i % len(users)], k=args.k)

  known: List[float] = []
  for i in range(args.requests):
    start = time.perf_counter()
    service.recommend(users[i % len(users)], k=args.k)
    known.append(time.perf_counter() - start)
  unknown: List[float] = []
  for i in range(max(1, args.requests // 10)):
    start = time.perf_counter()
    service.recommend(f'unknown-user-{i}', k=args.k)
    unknown.append(time.perf_counter() - start)
  print(f'model_versions retrieval={bundle.versions.retrieval} ranking={bundle.versions.ranking}')
  print(f'recommend known users   k={args.k}: {_percentiles_ms(known)}')
  print(f'recommend unknown users k={args.k}: {_percentiles_ms(unknown)}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
