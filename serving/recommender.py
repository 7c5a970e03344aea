"""Two-stage recommend(): retrieve candidates, drop seen items, predict ratings, order by the final score.

For a user the training data knows (a profile in the serving assets):

1. Retrieval: the retrieval model's `serving_default` returns its top-K items (K fixed at export, 100 by
   default) with their query-candidate scores.
2. Filter: with `exclude_seen`, the items of the user's training interactions are dropped.
3. Ranking: the ranking model predicts the user's rating (stars) of every remaining candidate. A NaN or infinite
   prediction is a broken ranking model, not a score: the call raises a `BackendError` that is not retryable,
   naming the items (the HTTP service answers 502).
4. Order by the final score, a blend of the two stages' scores standardized over the user's candidates:

       final_score = (1 - ranking_weight) * z(retrieval_score) + ranking_weight * z(predicted_rating)

   where z(x) = (x - mean(x)) / std(x) over this user's candidates (0 when all are equal). ranking_weight=0
   is the retrieval order, 1 the predicted-rating order. The default (`DEFAULT_RANKING_WEIGHT`) was chosen on
   validation splits of the MovieLens TRAIN rows, never on the test split: the weight whose top 10 holds the most
   of the films users rated >= 4 while keeping at least 99 % of retrieval-only Recall@10, on the splits' mean
   (benchmarks/choose_ranking_weight.py; see docs/serving.md). Ties go to the higher retrieval score.
5. If fewer than k candidates remain (a user who has seen most of the top-K), the list is completed with the
   most popular unseen items (`source='popular'`).

Degraded mode (retrieval only): while no ranking model is served (`ServedVersions.ranking` is None, see
`serving.models`), step 3 is skipped and the unseen candidates are ordered by retrieval score (ties by item id):
`score` is the retrieval score, `predicted_rating` None, `source='retrieval_only'`. Steps 2 and 5 are unchanged.

A user id the assets do not know gets the popular-items fallback, never an error: items ranked by their
share of the training interactions, averaged over the user's segments (`features.USER_SEGMENT_COLUMNS`) when
`user_features` give any, else over all users.
"""

import dataclasses
import itertools
import math
from typing import Any, Collection, Dict, List, Mapping, Optional, Tuple

import numpy as np

from schema import features
from serving import assets as assets_lib
from serving import models as models_lib
from serving import requests as requests_lib

# The final score's weight on the ranking stage; see the module docstring and docs/serving.md.
DEFAULT_RANKING_WEIGHT = 0.4
# Largest k a caller may ask for.
DEFAULT_MAX_K = 100

# Where a recommended item comes from (`RecommendedItem.source`).
SOURCE_TWO_STAGE = 'two_stage'
SOURCE_RETRIEVAL_ONLY = 'retrieval_only'
SOURCE_POPULAR = 'popular'


@dataclasses.dataclass(frozen=True)
class RecommendedItem:
  """One recommended item.

  Attributes:
    item_id: the raw item id.
    item_title: the catalogue title, or None when the catalogue has no titles.
    score: the final score the list is ordered by (two-stage: the blend; retrieval-only: the retrieval score;
      popular: the popularity share).
    retrieval_score: the retrieval model's score (None for popular items).
    predicted_rating: the ranking model's predicted stars (None for retrieval-only and popular items).
    source: SOURCE_TWO_STAGE, SOURCE_RETRIEVAL_ONLY (no ranking model served) or SOURCE_POPULAR.
  """
  item_id: str
  item_title: Optional[str]
  score: float
  retrieval_score: Optional[float]
  predicted_rating: Optional[float]
  source: str


@dataclasses.dataclass(frozen=True)
class Recommendations:
  """The answer to one recommend() call.

  Attributes:
    user_id: as asked.
    known_user: whether the models were trained on this user (False: popular-items fallback).
    versions: the model versions that answered (`ranking` None in retrieval-only, degraded mode).
    items: at most k items, best first.
  """
  user_id: str
  known_user: bool
  versions: models_lib.ServedVersions
  items: Tuple[RecommendedItem, ...]

  def to_json_dict(self) -> Dict[str, Any]:
    """A JSON-ready dict (the HTTP and CLI response body)."""
    return {
        'user_id': self.user_id,
        'known_user': self.known_user,
        'model_versions': dataclasses.asdict(self.versions),
        'items': [dataclasses.asdict(item) for item in self.items],
    }


def standardized(values: np.ndarray) -> np.ndarray:
  """z-scores of `values` float `[n]` over themselves; zeros when they are all equal."""
  values = np.asarray(values, dtype=np.float64)
  if values.size == 0:
    return values
  # Compared, not std == 0: the mean of equal values can be off by rounding (three 0.1s: std 1.4e-17), which made
  # every z-score -1 or +1 instead of 0.
  if values.min() == values.max():
    return np.zeros_like(values)
  return (values - values.mean()) / values.std()


def final_scores(retrieval_scores: np.ndarray, predicted_ratings: np.ndarray, ranking_weight: float) -> np.ndarray:
  """The final score of each candidate, float64 `[n]`; see the module docstring."""
  return ((1.0 - ranking_weight) * standardized(retrieval_scores)
          + ranking_weight * standardized(predicted_ratings))


def popular_items(popularity: assets_lib.Popularity, segments: Mapping[str, str]) -> List[Tuple[str, float]]:
  """(item_id, score) by popularity, best first: share of interactions averaged over `segments`.

  Args:
    popularity: the pushed popularity lists.
    segments: segment column -> value (e.g. {'user_gender': 'F'}); segments without a list are skipped; with
      none left, the global list is used.

  Returns:
    Items and their mean share (0..1) of the segments' training interactions; ties by item id. A share is of all
    the segment's interactions (`Popularity.total`), not of the items its cut list kept, so segments weigh as
    much whatever their list lengths; an item cut from one segment's list counts 0 there. Shares are compared
    exactly (as integer multiples of 1 / (lcm of the lists' totals * number of lists)), so equal means reached
    through different segments tie instead of being ordered by float rounding.
  """
  lists = []  # (pairs, total they are shares of)
  for column, value in segments.items():
    pairs = popularity.segment_items.get(column, {}).get(value)
    if pairs:
      lists.append((pairs, popularity.total(pairs, column, value)))
  if not lists:
    lists = [(popularity.global_items, popularity.total(popularity.global_items))]
  common = math.lcm(*(total for _, total in lists))
  scaled: Dict[str, int] = {}  # item -> mean share * common * len(lists), an integer
  for pairs, total in lists:
    weight = common // total
    for item_id, count in pairs:
      scaled[item_id] = scaled.get(item_id, 0) + count * weight
  denominator = common * len(lists)
  return [(item_id, value / denominator) for item_id, value in sorted(scaled.items(), key=lambda kv: (-kv[1], kv[0]))]


class Recommender:
  """The two-stage recommender over the models a `ModelRegistry` serves (retrieval only while it serves no
  ranking model)."""

  def __init__(self, registry: models_lib.ModelRegistry, ranking_weight: float = DEFAULT_RANKING_WEIGHT,
               max_k: int = DEFAULT_MAX_K):
    """Args:
      registry: serves the current model bundle (refresh it before the first call).
      ranking_weight: the final score's weight on the predicted rating, in [0, 1] (unused while no ranking
        model is served).
      max_k: the largest k accepted.

    Raises:
      ValueError: for a ranking_weight outside [0, 1] or max_k < 1.
    """
    if not 0.0 <= ranking_weight <= 1.0:
      raise ValueError(f'ranking_weight={ranking_weight} must be within [0, 1].')
    if max_k < 1:
      raise ValueError(f'max_k={max_k} must be at least 1.')
    self._registry = registry
    self._ranking_weight = ranking_weight
    self._max_k = max_k

  @property
  def max_k(self) -> int:
    return self._max_k

  def recommend(self, user_id: str, k: int = 10, exclude_seen: bool = True,
                user_features: Optional[Mapping[str, Any]] = None) -> Recommendations:
    """The best `k` items for `user_id` now.

    Args:
      user_id: the raw user id; an unknown one gets the popular-items fallback.
      k: items wanted, 1..max_k.
      exclude_seen: drop the items of the user's training interactions.
      user_features: raw `user_*` columns (values as their types or as text): for a known user they replace
        the profile's values; for an unknown user they choose the popularity segment. `user_age_bucket` (a
        bucket label, see `requests_lib.coerce_user_features`) chooses an unknown user's age segment; the
        models do not read it.

    Returns:
      At most k items, best first; fewer when the unseen retrieved candidates and the unseen items of the
      popularity lists (each cut at the assets' `max_popular_items`) are fewer than k together: catalogue items
      without training interactions (e.g. only in the eval split) complete no list.

    Raises:
      requests_lib.InvalidRequestError: for a k outside 1..max_k, an empty user_id, or user_features naming an
        unknown column, holding an empty value, a value of the wrong type or outside its range, or an age bucket
        that is no label or disagrees with the age.
      models.ModelsNotReadyError: while no models are loaded.
      models.BackendError: when the model backend fails to answer (e.g. TF Serving unreachable or answering an
        error status; `retryable` says whether the same call may succeed later), or, not retryable, when the
        ranking model predicts a NaN or infinite rating (the message names the items).
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= self._max_k:
      raise requests_lib.InvalidRequestError(f'k={k!r} must be an integer from 1 to {self._max_k}.')
    if not user_id:
      raise requests_lib.InvalidRequestError('user_id is empty; pass the raw user id.')
    bundle = self._registry.current()
    given = requests_lib.coerce_user_features(user_features, bundle.assets.column_types)
    profile = bundle.assets.user_profiles.get(user_id)
    if profile is None:
      items = self._popular(bundle, assets_lib.user_segments(given), frozenset(), k, exclude=())
      return Recommendations(user_id=user_id, known_user=False, versions=bundle.versions, items=tuple(items))
    user_columns = {**profile, **requests_lib.model_columns(given)}
    seen = bundle.assets.seen_items.get(user_id, frozenset()) if exclude_seen else frozenset()
    if bundle.versions.has_ranking:
      ranked = self._two_stage(bundle, user_columns, seen)[:k]
    else:
      ranked = self._retrieval_only(bundle, user_columns, seen)[:k]
    if len(ranked) < k:
      ranked += self._popular(bundle, {}, seen, k - len(ranked), exclude={item.item_id for item in ranked})
    return Recommendations(user_id=user_id, known_user=True, versions=bundle.versions, items=tuple(ranked))

  def _candidates(self, bundle: models_lib.ModelBundle, user_columns: Mapping[str, Any],
                  seen: frozenset) -> List[Tuple[str, float]]:
    """The retrieval model's (item_id, retrieval score) candidates that are in the catalogue and not seen.

    An item is kept once (its first, best-scored entry), and entries with a non-finite score are dropped: an
    approximate index pads a short answer with repeated ids scored -inf/nan, which would otherwise be recommended
    twice and turn every standardized score into nan.
    """
    item_ids, scores = bundle.backend.retrieve([bundle.encoder.user_request(user_columns)])
    candidates: List[Tuple[str, float]] = []
    taken = set()
    for item_id, score in zip(item_ids[0], scores[0]):
      if not np.isfinite(score) or item_id in taken or item_id in seen or item_id not in bundle.assets.items:
        continue
      taken.add(item_id)
      candidates.append((item_id, float(score)))
    return candidates

  def _retrieval_only(self, bundle: models_lib.ModelBundle, user_columns: Mapping[str, Any],
                      seen: frozenset) -> List[RecommendedItem]:
    """Every unseen retrieved candidate, ordered by retrieval score (degraded mode: no ranking model)."""
    candidates = sorted(self._candidates(bundle, user_columns, seen), key=lambda pair: (-pair[1], pair[0]))
    return [RecommendedItem(item_id=item_id, item_title=_title(bundle.assets, item_id), score=score,
                            retrieval_score=score, predicted_rating=None, source=SOURCE_RETRIEVAL_ONLY)
            for item_id, score in candidates]

  def _two_stage(self, bundle: models_lib.ModelBundle, user_columns: Mapping[str, Any],
                 seen: frozenset) -> List[RecommendedItem]:
    """Every unseen retrieved candidate, ordered by the final score.

    Raises:
      models.BackendError: as `ModelBackend.predict_ratings`, or not retryable for a NaN or infinite predicted
        rating (see `models.check_finite_ratings`).
    """
    candidates = self._candidates(bundle, user_columns, seen)
    if not candidates:
      return []
    candidate_ids = [item_id for item_id, _ in candidates]
    retrieval_scores = np.array([score for _, score in candidates])
    recent_rating = bundle.assets.recent_ratings.get(user_columns[features.USER_ID])
    ratings = bundle.backend.predict_ratings(
        bundle.encoder.ranking_requests(user_columns, candidate_ids, recent_rating=recent_rating))
    models_lib.check_finite_ratings(ratings, candidate_ids, bundle.versions.ranking)
    blended = final_scores(retrieval_scores, ratings, self._ranking_weight)
    order = sorted(range(len(candidates)), key=lambda i: (-blended[i], -retrieval_scores[i], candidate_ids[i]))
    return [RecommendedItem(item_id=candidate_ids[i], item_title=_title(bundle.assets, candidate_ids[i]),
                            score=float(blended[i]), retrieval_score=float(retrieval_scores[i]),
                            predicted_rating=float(ratings[i]), source=SOURCE_TWO_STAGE) for i in order]

  def _popular(self, bundle: models_lib.ModelBundle, segments: Mapping[str, str], seen: frozenset, k: int,
               exclude: Collection[str]) -> List[RecommendedItem]:
    """The k most popular items of the segments (then of all users) that are neither seen nor excluded."""
    items: List[RecommendedItem] = []
    taken = set(exclude)
    ranked = popular_items(bundle.assets.popularity, segments)
    if segments:
      ranked = itertools.chain(ranked, popular_items(bundle.assets.popularity, {}))
    for item_id, share in ranked:
      if item_id in seen or item_id in taken:
        continue
      taken.add(item_id)
      items.append(RecommendedItem(item_id=item_id, item_title=_title(bundle.assets, item_id), score=share,
                                   retrieval_score=None, predicted_rating=None, source=SOURCE_POPULAR))
      if len(items) == k:
        break
    return items


def _title(serving_assets: assets_lib.ServingAssets, item_id: str) -> Optional[str]:
  title = serving_assets.items.get(item_id, {}).get(features.ITEM_TITLE)
  return None if title is None else str(title)
