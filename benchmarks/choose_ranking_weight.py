"""The serving ranking weight chosen on the mean figures of several validation splits.

  .venv/bin/python benchmarks/choose_ranking_weight.py /tmp/val1.json /tmp/val2.json

Each file is `serving_quality.py --results-json` of one validation run (docs/serving.md: the canonical TRAIN rows
split again with `--split random --split-seed N`). The figures of each ranking weight are averaged over the files
(each split counts once) and `serving_quality.choose_ranking_weight`'s rule picks the weight: the highest liked
Recall@10 among the weights keeping at least 99 % of retrieval-only Recall@10. Only weights measured in every file
count. Exit status 2 when a file cannot be read or is not such output, lacks weight 0, or no weight is in every
file.

A file's figures are over all its test users. Users without training ratings (new users, as on a temporal split)
get the popular-items fallback whatever the weight, so they only dilute the differences between weights; the
count of them in each file is printed, and with `--known-users` the weight is chosen on each file's known users
alone (the `known_users` figures; a file without new users counts as it is).
"""

import argparse
import json
import sys
from typing import Dict, List, Mapping, Optional, Sequence

import benchmark_flags
import serving_quality

FIGURES = ('recall', 'ndcg', 'liked_recall', 'disliked_per_k', 'hit_rating')


def mean_results(per_split: Sequence[Mapping[str, Mapping[str, float]]]) -> Dict[float, Dict[str, float]]:
  """{weight: each figure's mean over the splits}, for the weights every split measured.

  Args:
    per_split: one {weight as text: {figure: value}} per validation split (`serving_quality.py --results-json`).
  """
  common = set.intersection(*(set(results) for results in per_split)) if per_split else set()
  return {float(w): {name: sum(results[w][name] for results in per_split) / len(per_split) for name in FIGURES}
          for w in common}


def known_users_results(results: Mapping[str, Mapping]) -> Dict[str, Mapping[str, float]]:
  """{weight: the figures over the known users alone} of one `--results-json` file: its `known_users` figures
  where it has new users, its own figures where it has none (files written before `known_users` existed have no
  `new_users` count and are taken as they are).

  Raises:
    ValueError: naming the weight, if a weight with new users has no `known_users` figures.
  """
  chosen = {}
  for weight, figures in results.items():
    if figures.get('new_users', 0):
      if not isinstance(figures.get('known_users'), dict) or not all(n in figures['known_users'] for n in FIGURES):
        raise ValueError(f'weight {weight} has {figures["new_users"]} new users but no known_users figures with '
                         f'{", ".join(FIGURES)}')
      chosen[weight] = figures['known_users']
    else:
      chosen[weight] = figures
  return chosen


def main(argv: Optional[List[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('results', nargs='+', action=benchmark_flags.DistinctValues,
                      help='serving_quality.py --results-json files, one per split.')
  parser.add_argument('--known-users', action='store_true',
                      help='Choose on each file\'s known users alone (users with training ratings), leaving out the '
                           'new users the popular-items fallback answers whatever the weight.')
  args = parser.parse_args(argv)
  per_split = []
  for path in args.results:
    try:
      with open(path, encoding='utf-8') as f:
        results = json.load(f)
    except (OSError, ValueError) as e:  # ValueError: not JSON (json.JSONDecodeError), or not UTF-8
      print(f'{path}: cannot be read as serving_quality.py --results-json output ({e}); pass the files that '
            '--results-json wrote.', file=sys.stderr)
      return 2
    if not isinstance(results, dict) or not all(
        isinstance(figures, dict) and all(name in figures for name in FIGURES) for figures in results.values()):
      print(f'{path}: not serving_quality.py --results-json output ({{ranking weight: {{figure: value}}}} with '
            f'{", ".join(FIGURES)}); pass the files that --results-json wrote.', file=sys.stderr)
      return 2
    new_users = max((figures.get('new_users', 0) for figures in results.values()), default=0)
    if new_users:
      print(f'{path}: {new_users} of its {max(f.get("users", 0) for f in results.values())} test users are new '
            f'(no training ratings){"; chosen on the others" if args.known_users else "; --known-users leaves them out"}.')
    if args.known_users:
      try:
        results = known_users_results(results)
      except ValueError as e:
        print(f'{path}: {e}; pass the files that serving_quality.py --results-json wrote.', file=sys.stderr)
        return 2
    per_split.append(results)
  means = mean_results(per_split)
  if 0.0 not in means:
    print(f'Weight 0 (retrieval only) is not measured in every one of {args.results}; rerun serving_quality.py '
          'with it in --weights.', file=sys.stderr)
    return 2
  print(f'mean over {len(per_split)} validation splits{" (known users)" if args.known_users else ""}:')
  for weight, figures in sorted(means.items()):
    print(f'  ranking weight {weight:<5g} recall@10={figures["recall"]:.4f} ndcg@10={figures["ndcg"]:.4f} '
          f'liked_recall@10={figures["liked_recall"]:.4f} disliked_per_10={figures["disliked_per_k"]:.4f} '
          f'hit_rating={figures["hit_rating"]:.3f}')
  print(f'ranking weight by the rule (the highest liked recall@10 with recall@10 >= '
        f'{1 - serving_quality.MAX_RECALL_LOSS:g} x retrieval only): {serving_quality.choose_ranking_weight(means):g}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
