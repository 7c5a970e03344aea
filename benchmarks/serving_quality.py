"""Benchmark: end-to-end top-10 quality of recommend() on the canonical MovieLens 100K split, beside peers.

  .venv/bin/python benchmarks/serving_quality.py --serving-dir OUTPUT_DIR/serving \
      --data-dir /work/shared/data/ml-100k [--weights 0,0.1,0.25,0.5,0.75,1]

The served models must come from a run on the canonical split (`local_runner.py --split seed`): rows of
`u.data` in file order, `numpy.random.default_rng(42).permutation(100000)`, first 80,000 train, the rest test
(as ../shared/bench/README.md defines it; the script checks the served seen items equal that train split).
With `--split-seed N` the run was split with `--split random --split-seed N` instead, with `--split temporal` by
time (the latest `--eval-fraction` of the rows by timestamp, as `local_runner.py` splits them): on the folder
`benchmarks/train_split_folder.py` writes (the canonical TRAIN rows only) that is a validation split, the one
the serving ranking weight is chosen on (the last line printed; rule in `choose_ranking_weight`).

For every user with test items not among their training items it asks `Recommender.recommend(user, k=10)`
(seen items excluded) at each ranking weight of the final score; weight 0 is the retrieval-only order of the
same candidates. Metrics, averaged over those users, with the user's training items removed:

* Recall@10 = |test items in the top 10| / min(|test items|, 10)   (the peers' definition)
* NDCG@10  = DCG@10 / ideal DCG@10 with binary relevance, gains 1/log2(rank + 1)

and, since the service must pick what a user will *value*, not only what they will watch, three figures that
read the test ratings (1-5 stars):

* liked Recall@10 = Recall@10 with only the test items rated >= 4 as truth (users with such items)
* disliked per 10 = test items rated <= 2 in the top 10 (recommended, watched and disliked), per user
* hit rating      = the mean test rating of all (user, item) hits in the top 10 (stars)

When some test users have no training ratings (new users, as on a temporal split), every line is followed by
the same figures over the known users only (`ranking weight by the rule on the known users only` at the end), and
two lines give the new users' figures: `recommend`'s popular-items fallback without a profile and with the
user's signup profile from `u.user` (age, gender, occupation: the popular items of their segments). `--results-json`
then records each weight's figures over all test users with the count of new users among them and the same figures
over the known users alone (`results_record`).

Per user segment (gender, age bucket, occupation of the served user profiles; segments of at least
`--segment-min-users` users), the three segments with the lowest mean Recall@10 and liked Recall@10 are printed
for the default weight, retrieval only and the peers: whether the top 10 is as good for every kind of user.

Peers on the same split and metrics: popularity and EASE (lambda=500), as ../shared/bench/retrieval_baselines.py
builds them.
"""

import argparse
import json
import os
import sys
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

import numpy as np

import benchmark_flags
from ingestion import movielens, splits
from pipeline import environment
from schema import features
from serving import backend_flags

CUTOFF = 10
EASE_LAMBDA = 500.0
LIKED_MIN_RATING = 4  # stars: a test item rated at least this is one the user valued
DISLIKED_MAX_RATING = 2  # stars: a test item rated at most this is one the user did not
# The serving ranking weight may cost at most this share of retrieval-only Recall@10 (choose_ranking_weight).
MAX_RECALL_LOSS = 0.01


def recall_at_k(ranked: Sequence[str], truth: Set[str], k: int = CUTOFF) -> float:
  """|truth in the first k of ranked| / min(|truth|, k); truth must not be empty."""
  return len(truth.intersection(ranked[:k])) / min(len(truth), k)


def ndcg_at_k(ranked: Sequence[str], truth: Set[str], k: int = CUTOFF) -> float:
  """Binary-relevance NDCG of the first k of ranked; truth must not be empty."""
  dcg = sum(1.0 / np.log2(rank + 2) for rank, item in enumerate(ranked[:k]) if item in truth)
  ideal = sum(1.0 / np.log2(rank + 2) for rank in range(min(len(truth), k)))
  return dcg / ideal


def split_rows(data_dir: str, spec: Optional[splits.SplitSpec] = None) -> tuple:
  """(train rows, test rows) int64 `[n, 3]` (user, item, rating) of `data_dir`/u.data split as the pipeline's
  `--split` splits it (`spec`; None = the canonical split), each in file order."""
  with open(os.path.join(data_dir, 'u.data'), encoding='utf-8') as f:
    rows = np.array([line.split('\t')[:4] for line in f], dtype=np.int64)
  spec = spec or splits.SplitSpec('seed')
  split = splits.split_interactions(rows[:, 3] if spec.method == 'temporal' else len(rows), spec)
  return rows[split.train, :3], rows[split.eval, :3]


def run_split(method: Optional[str], seed: Optional[int], eval_fraction: float) -> Optional[splits.SplitSpec]:
  """The split the measured run used, from the command line: None = the canonical split.

  `method` None means 'random' when a seed is given, the canonical split otherwise.

  Raises:
    ValueError: if a seed is given with another method than 'random', or the spec is invalid.
  """
  if seed is not None and method not in (None, 'random'):
    raise ValueError(f'a split seed ({seed}) only applies to --split random, not --split {method}.')
  method = method or ('random' if seed is not None else 'seed')
  if method == 'seed':
    return None
  return splits.SplitSpec(method, eval_fraction, splits.CANONICAL_SEED if seed is None else seed)


def choose_ranking_weight(results: Mapping[float, Mapping[str, float]],
                          max_recall_loss: float = MAX_RECALL_LOSS) -> float:
  """The ranking weight the service should use, by the rule of docs/serving.md.

  Args:
    results: ranking weight -> its figures (`report`'s `recall` and `liked_recall`); must hold weight 0.
    max_recall_loss: largest relative loss of Recall@10 (all test items) against retrieval alone (weight 0).

  Returns:
    Among the weights whose Recall@10 is at least (1 - max_recall_loss) x weight 0's, the one with the highest
    liked Recall@10 (ties: the smaller weight): the top 10 holds more of what users valued without giving up
    more than that share of what they watched.
  """
  floor = (1.0 - max_recall_loss) * results[0.0]['recall']
  eligible = [w for w, figures in results.items() if figures['recall'] >= floor]
  return max(eligible, key=lambda w: (results[w]['liked_recall'], -w))


def test_ratings(train: np.ndarray, test: np.ndarray) -> Dict[str, Dict[str, int]]:
  """user -> {test item: its rating in stars} over the test items not among the user's training items.

  Users with no such item are left out. Rows are `[n, 3]` (user, item, rating); ids become strings, as the
  service returns them.
  """
  seen: Dict[int, Set[int]] = {}
  for user, item, _ in train:
    seen.setdefault(int(user), set()).add(int(item))
  ratings: Dict[str, Dict[str, int]] = {}
  for user, item, rating in test:
    if int(item) not in seen.get(int(user), set()):
      ratings.setdefault(str(user), {})[str(item)] = int(rating)
  return ratings


def liked_items(items: Mapping[str, int]) -> Set[str]:
  """The items of {item: rating in stars} rated at least LIKED_MIN_RATING."""
  return {item for item, rating in items.items() if rating >= LIKED_MIN_RATING}


def liked_recalls(rankings: Mapping[str, Sequence[str]], ratings: Mapping[str, Mapping[str, int]],
                  k: int = CUTOFF) -> Dict[str, float]:
  """user -> Recall@k against the user's liked test items, for the users who have any."""
  return {user: recall_at_k(rankings[user], liked_items(items), k)
          for user, items in ratings.items() if liked_items(items)}


def value_metrics(rankings: Mapping[str, Sequence[str]], ratings: Mapping[str, Mapping[str, int]],
                  k: int = CUTOFF) -> Dict[str, float]:
  """What the top k holds of what the users valued, from their test ratings.

  Args:
    rankings: user -> ranked item ids (at least the users of `ratings`).
    ratings: user -> {test item: rating in stars}, as `test_ratings` gives.
    k: the cut-off.

  Returns:
    `liked_recall`: the mean over users with a test item rated >= LIKED_MIN_RATING of Recall@k against those
    items only; `disliked_per_k`: the mean over all users of the number of their test items rated
    <= DISLIKED_MAX_RATING in the top k; `hit_rating`: the mean rating (stars) over all hits (nan without hits);
    `liked_users`: how many users the liked recall averages.
  """
  liked = list(liked_recalls(rankings, ratings, k).values())
  disliked_counts: List[int] = []
  hit_ratings: List[int] = []
  for user, items in ratings.items():
    top = rankings[user][:k]
    disliked_counts.append(sum(1 for item in top if items.get(item, DISLIKED_MAX_RATING + 1) <= DISLIKED_MAX_RATING))
    hit_ratings.extend(items[item] for item in top if item in items)
  return {
      'liked_recall': float(np.mean(liked)) if liked else float('nan'),
      'disliked_per_k': float(np.mean(disliked_counts)) if disliked_counts else float('nan'),
      'hit_rating': float(np.mean(hit_ratings)) if hit_ratings else float('nan'),
      'liked_users': float(len(liked)),
  }


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


def segment_means(per_user: Mapping[str, float], segments_of: Mapping[str, Mapping[str, str]],
                  min_users: int) -> List[Tuple[str, str, float, int]]:
  """The mean of a per-user figure in every user segment holding at least `min_users` of its users.

  Args:
    per_user: user -> the figure (e.g. Recall@10); users missing from it count in no segment.
    segments_of: user -> {segment column: value} (`serving.assets.user_segments` of the user's profile).
    min_users: the smallest segment reported.

  Returns:
    (column, value, mean, users) tuples, lowest mean first (ties by column, value).
  """
  members: Dict[Tuple[str, str], List[float]] = {}
  for user, figure in per_user.items():
    for column, value in segments_of.get(user, {}).items():
      members.setdefault((column, value), []).append(figure)
  rows = [(column, value, float(np.mean(figures)), len(figures))
          for (column, value), figures in members.items() if len(figures) >= min_users]
  return sorted(rows, key=lambda row: (row[2], row[0], row[1]))


def report_segments(name: str, rankings: Mapping[str, Sequence[str]], ratings: Mapping[str, Mapping[str, int]],
                    segments_of: Mapping[str, Mapping[str, str]], min_users: int, shown: int = 3) -> None:
  """Prints the `shown` segments with the lowest Recall@10 and liked Recall@10 of `rankings`."""
  recall = {u: recall_at_k(rankings[u], set(ratings[u])) for u in ratings}
  for label, per_user in (('recall@10', recall), ('liked_recall@10', liked_recalls(rankings, ratings))):
    overall = float(np.mean(list(per_user.values())))
    worst = segment_means(per_user, segments_of, min_users)[:shown]
    text = ', '.join(f'{column}={value} {mean:.4f} ({mean - overall:+.4f}, {users} users)'
                     for column, value, mean, users in worst)
    print(f'  {name}: lowest {label} segments (>= {min_users} users; overall {overall:.4f}): {text}')


def signup_profiles(data_dir: str) -> Dict[str, Dict[str, Any]]:
  """user id -> what a new user's request can carry (`user_age` int, `user_gender`, `user_occupation`), read from
  `data_dir`/u.user."""
  users = movielens.read_users(os.path.join(data_dir, 'u.user'))
  return {user_id: {features.USER_AGE: age, features.USER_GENDER: gender, features.USER_OCCUPATION: occupation}
          for user_id, (age, gender, occupation, _) in users.items()}


def report_new_users(registry: Any, ratings: Mapping[str, Mapping[str, int]],
                     profiles: Mapping[str, Mapping[str, Any]]) -> None:
  """Prints the top-10 figures of the new users (no training ratings), whose answer is the popular-items fallback:
  without a profile (the global list) and with their signup profile (the lists of their segments)."""
  # pylint: disable=g-import-not-at-top
  from serving import recommender
  service = recommender.Recommender(registry)
  for label, features_of in (('no profile', lambda u: None), ('signup profile', profiles.get)):
    rankings = {u: [item.item_id for item in service.recommend(u, k=CUTOFF, user_features=features_of(u)).items]
                for u in ratings}
    report(f'new users ({len(ratings)}), {label}', rankings, ratings)


def report(name: str, rankings: Mapping[str, Sequence[str]], ratings: Mapping[str, Mapping[str, int]]
           ) -> Dict[str, float]:
  """Prints and returns the top-10 figures of `rankings` against the users' test `ratings`."""
  recall = float(np.mean([recall_at_k(rankings[u], set(ratings[u])) for u in ratings]))
  ndcg = float(np.mean([ndcg_at_k(rankings[u], set(ratings[u])) for u in ratings]))
  value = value_metrics(rankings, ratings)
  print(f'{name:<34} recall@10={recall:.4f} ndcg@10={ndcg:.4f} users={len(ratings)} '
        f'liked_recall@10={value["liked_recall"]:.4f} (users={value["liked_users"]:.0f}) '
        f'disliked_per_10={value["disliked_per_k"]:.4f} hit_rating={value["hit_rating"]:.3f}')
  return {'recall': recall, 'ndcg': ndcg, **value, 'users': len(ratings)}


def results_record(results: Mapping[float, Mapping[str, float]],
                   known_results: Mapping[float, Mapping[str, float]]) -> Dict[str, Dict[str, Any]]:
  """What `--results-json` writes: {ranking weight as text: its figures over all test users}.

  Each weight's figures carry `users` (test users measured) and `new_users` (those without training ratings,
  answered by the popular-items fallback whatever the weight). When there are new users, `known_users` holds the
  same figures over the others alone (`known_results`), so a reader can choose on the users the weight acts on
  (`choose_ranking_weight.py --known-users`).

  Args:
    results: {weight: `report(...)` over all test users}.
    known_results: {weight: `report(...)` over the known users}; empty when every test user is known.
  """
  record = {}
  for weight, figures in sorted(results.items()):
    known = known_results.get(weight)
    new_users = figures['users'] - known['users'] if known else 0
    record[f'{weight:g}'] = {**figures, 'new_users': new_users, **({'known_users': dict(known)} if known else {})}
  return record


def weights_argument(text: str) -> List[float]:
  """Parses --weights ('0,0.1,1') into floats, each a ranking weight `Recommender` takes ([0, 1]).

  Raises:
    argparse.ArgumentTypeError: naming the value that is not a number in [0, 1], or one given twice (the same
      measurement twice).
  """
  weights = []
  for part in text.split(','):
    try:
      weights.append(backend_flags.ranking_weight(part))  # the service's --ranking-weight rule
    except argparse.ArgumentTypeError as e:
      raise argparse.ArgumentTypeError(f'{part!r} is not a ranking weight: give numbers in [0, 1] separated by '
                                       'commas, e.g. 0,0.3,1.') from e
  repeated = benchmark_flags.first_repeat(weights)
  if repeated is not None:
    raise argparse.ArgumentTypeError(f'{repeated:g} is given twice; each weight is measured once, so give it once.')
  return weights


def main(argv: Optional[List[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--serving-dir', required=True)
  parser.add_argument('--data-dir', required=True, type=movielens.folder_argument,
                      help='MovieLens 100K folder holding u.data.')
  parser.add_argument('--weights', default='0,0.1,0.2,0.3,0.5,0.75,1', type=weights_argument,
                      help='Ranking weights of the final score to measure (0 = retrieval only).')
  parser.add_argument('--segment-min-users', type=int, default=20,
                      help='Smallest user segment in the per-segment lines (as the retrieval gate reports).')
  parser.add_argument('--split', choices=splits.SPLIT_METHODS,
                      help='How the run was split (its local_runner.py --split); default: random with --split-seed, '
                           'the canonical split (seed) otherwise.')
  parser.add_argument('--split-seed', type=int,
                      help='The run was split with --split random --split-seed N (and --eval-fraction).')
  parser.add_argument('--eval-fraction', type=float, default=splits.CANONICAL_EVAL_FRACTION,
                      help='With --split random or temporal: the run\'s --eval-fraction (default 0.2).')
  parser.add_argument('--results-json',
                      help='Also write {ranking weight: its figures} here, with the count of new users and, if there '
                           'are any, the known users\' figures (`results_record`; benchmarks/choose_ranking_weight.py '
                           'reads several such files).')
  args = parser.parse_args(argv)
  try:
    spec = run_split(args.split, args.split_seed, args.eval_fraction)
  except ValueError as e:
    parser.error(f'--split/--split-seed/--eval-fraction: {e}')
  environment.use_legacy_keras()
  # pylint: disable=g-import-not-at-top
  from serving import assets, models, recommender

  train, test = split_rows(args.data_dir, spec)
  ratings = test_ratings(train, test)
  registry = models.ModelRegistry(args.serving_dir)
  if not registry.refresh():
    print(f'No complete retrieval and ranking versions under {args.serving_dir}.', file=sys.stderr)
    return 2
  bundle = registry.current()
  served_train = sum(len(items) for items in bundle.assets.seen_items.values())
  expected_train = len({(int(u), int(i)) for u, i, _ in train})
  if served_train != expected_train:
    split_flags = ('--split seed' if spec is None else f'--split {spec.method}' + (
        f' --split-seed {spec.seed}' if spec.method == 'random' else '') + f' --eval-fraction {spec.eval_fraction:g}')
    print(f'The served model saw {served_train} (user, item) pairs in training, the split asked for has '
          f'{expected_train}: run the pipeline with {split_flags} on {args.data_dir}.', file=sys.stderr)
    return 2
  print(f'model_versions retrieval={bundle.versions.retrieval} ranking={bundle.versions.ranking}')

  weights = list(args.weights)
  weights.extend(w for w in (0.0, recommender.DEFAULT_RANKING_WEIGHT) if w not in weights)
  segments_of = {user: assets.user_segments(profile) for user, profile in bundle.assets.user_profiles.items()}
  results: Dict[float, Dict[str, float]] = {}
  # Users with training ratings; the others (new users, e.g. on a temporal split) get the popular-items fallback.
  known_ratings = {u: r for u, r in ratings.items() if u in bundle.assets.user_profiles}
  known_results: Dict[float, Dict[str, float]] = {}
  segment_rankings: Dict[str, Mapping[str, Sequence[str]]] = {}
  new_users = len(ratings) - len(known_ratings)
  if new_users:
    print(f'{len(ratings)} test users, {new_users} of them new (no training ratings: the popular-items fallback '
          f'whatever the weight); each line over all of them is followed by its {len(known_ratings)} known users.')
  for weight in sorted(weights):
    service = recommender.Recommender(registry, ranking_weight=weight)
    rankings = {user: [item.item_id for item in service.recommend(user, k=CUTOFF).items] for user in ratings}
    if weight in (0.0, recommender.DEFAULT_RANKING_WEIGHT):
      segment_rankings[f'ranking weight {weight:g}'] = rankings
    label = 'retrieval only (weight 0)' if weight == 0 else f'recommend, ranking weight {weight:g}'
    if weight == recommender.DEFAULT_RANKING_WEIGHT:
      label += ' [default]'
    results[weight] = report(label, rankings, ratings)
    if len(known_ratings) < len(ratings):
      known_results[weight] = report(f'  its {len(known_ratings)} known users', rankings, known_ratings)
  if known_results:
    report_new_users(registry, {u: r for u, r in ratings.items() if u not in known_ratings},
                     signup_profiles(args.data_dir))
  for name, rankings in peer_rankings(train, list(ratings)).items():
    report(f'peer {name}', rankings, ratings)
    if known_results:
      report(f'  its {len(known_ratings)} known users', rankings, known_ratings)
    segment_rankings[f'peer {name}'] = rankings
  print('Per user segment:')
  for name, rankings in segment_rankings.items():
    report_segments(name, rankings, ratings, segments_of, args.segment_min_users)
  baseline, chosen = results[0.0], results[recommender.DEFAULT_RANKING_WEIGHT]
  kept = chosen['recall'] / baseline['recall'] if baseline['recall'] else float('nan')
  print(f'default final score vs retrieval only: recall@10 {chosen["recall"] - baseline["recall"]:+.4f} '
        f'({kept:.1%} of it kept), ndcg@10 {chosen["ndcg"] - baseline["ndcg"]:+.4f}; '
        f'liked recall@10 {chosen["liked_recall"] - baseline["liked_recall"]:+.4f}, '
        f'disliked per 10 {chosen["disliked_per_k"] - baseline["disliked_per_k"]:+.4f}, '
        f'hit rating {chosen["hit_rating"] - baseline["hit_rating"]:+.3f} stars')
  if args.results_json:
    with open(args.results_json, 'w', encoding='utf-8') as f:
      json.dump(results_record(results, known_results), f, indent=1)
  if known_results:
    print(f'ranking weight by the rule on the known users only: {choose_ranking_weight(known_results):g}')
  print(f'ranking weight by the rule of docs/serving.md (the highest liked recall@10 with recall@10 >= '
        f'{1 - MAX_RECALL_LOSS:g} x retrieval only, among {", ".join(f"{w:g}" for w in sorted(results))}): '
        f'{choose_ranking_weight(results):g}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
