"""The registry's warm-up checks the ranking version's predictions: one predicting NaN or inf is refused.

Over the fake bundles of tests/serving_degraded_test.py: the warm-up ranks u1's retrieved candidates that are in the
catalogue (FAKE_TOP_K without i7, in its order: i2, i1, i4, i5, i6), which their ranking model predicts finite stars
for; the ranking versions listed in `NonFiniteLoader.ratings` predict that value for every item instead.
"""

import math
from typing import Dict, List, Sequence

import numpy as np
import pytest

from serving import models
from tests import serving_degraded_test as degraded

RETRIEVAL, RANKING = models.RETRIEVAL_MODEL, models.RANKING_MODEL


class NonFiniteBackend(degraded.FakeBackend):
  """A FakeBackend whose ranking model predicts `rating` for every request."""

  def __init__(self, versions: models.ServedVersions, rating: float):
    super().__init__(versions)
    self.rating = rating

  def predict_ratings(self, requests: Sequence[bytes]) -> np.ndarray:
    super().predict_ratings(requests)
    return np.full([len(requests)], self.rating, dtype=np.float32)


class NonFiniteLoader(degraded.FakeLoader):
  """A FakeLoader whose ranking versions in `ratings` predict that rating (e.g. NaN); records every load."""

  def __init__(self, ratings: Dict[int, float]):
    super().__init__()
    self.ratings = ratings
    self.loaded: List[models.ServedVersions] = []

  def __call__(self, serving_dir: str, versions: models.ServedVersions) -> models.ModelBundle:
    self.loaded.append(versions)
    bundle = super().__call__(serving_dir, versions)
    if versions.ranking not in self.ratings:
      return bundle
    backend = NonFiniteBackend(versions, self.ratings[versions.ranking])
    self.backends[-1] = backend
    return models.ModelBundle(versions=versions, backend=backend, assets=bundle.assets, encoder=bundle.encoder)


@pytest.mark.parametrize('rating', [math.nan, math.inf, -math.inf])
def test_a_ranking_version_predicting_a_non_finite_rating_is_refused_and_the_served_one_stays(tmp_path, caplog,
                                                                                               rating):
  serving_dir = str(tmp_path)
  degraded.mark_complete(serving_dir, RETRIEVAL, 1)
  degraded.mark_complete(serving_dir, RANKING, 1)
  loader = NonFiniteLoader({2: rating})
  registry = models.ModelRegistry(serving_dir, loader=loader)
  assert registry.refresh() and registry.current().versions == models.ServedVersions(1, 1)

  degraded.mark_complete(serving_dir, RANKING, 2)
  with caplog.at_level('INFO', logger='absl'):
    assert not registry.refresh()
  # Before, the warm-up's prediction went unchecked and ranking 2 became the served version.
  assert registry.current().versions == models.ServedVersions(1, 1)
  # The pair failed its warm-up, the retrieval version alone warmed up: ranking 2 is the culprit.
  assert loader.loaded[-2:] == [models.ServedVersions(1, 2), models.ServedVersions(1, None)]
  errors = [r.getMessage() for r in caplog.records if r.levelname == 'ERROR']
  assert len(errors) == 1
  assert errors[0].startswith(f'Could not load ranking version 2 from {serving_dir} (still serving '
                              'ServedVersions(retrieval=1, ranking=1)); it is skipped until a newer one appears: '
                              'BackendError: The ranking model version 2 predicted ratings that are not finite for '
                              f'5 of 5 candidates: i2={rating}, i1={rating}, i4={rating}, i5={rating}, i6={rating}; ')

  # Like any version whose fault is its own (not retryable): not loaded again at the next polls.
  loads = len(loader.loaded)
  assert not registry.refresh() and not registry.refresh()
  assert len(loader.loaded) == loads and registry.current().versions == models.ServedVersions(1, 1)

  degraded.mark_complete(serving_dir, RANKING, 3)  # a newer version predicting finite stars is served
  assert registry.refresh() and registry.current().versions == models.ServedVersions(1, 3)


def test_a_first_ranking_version_predicting_nan_leaves_the_retrieval_version_served_alone(tmp_path):
  serving_dir = str(tmp_path)
  degraded.mark_complete(serving_dir, RETRIEVAL, 1)
  degraded.mark_complete(serving_dir, RANKING, 1)
  registry = models.ModelRegistry(serving_dir, loader=NonFiniteLoader({1: math.nan}))
  assert registry.refresh()
  assert registry.current().versions == models.ServedVersions(1, None)  # degraded, not NaN-ranked


def test_the_warm_up_refuses_a_non_finite_prediction_with_a_non_retryable_backend_error():
  versions = models.ServedVersions(4, 7)
  bundle = NonFiniteLoader({7: math.nan})('/not/read', versions)
  with pytest.raises(models.BackendError) as error:
    models.warm_up(bundle)
  assert not error.value.retryable
  assert str(error.value) == (
      'The ranking model version 7 predicted ratings that are not finite for 5 of 5 candidates: i2=nan, i1=nan, '
      'i4=nan, i5=nan, i6=nan; check its export and its inputs, and push a version that predicts finite stars.')
  models.warm_up(NonFiniteLoader({})('/not/read', versions))  # 3.0 stars: warmed up without an error


class OneNaNItemBackend(degraded.FakeBackend):
  """A FakeBackend whose ranking model predicts NaN for item i5 alone (one broken item embedding)."""

  def predict_ratings(self, requests: Sequence[bytes]) -> np.ndarray:
    ratings = super().predict_ratings(requests)
    return np.where([degraded._item_of(r) == 'i5' for r in requests], np.float32(math.nan), ratings)  # pylint: disable=protected-access


def test_the_warm_up_ranks_the_retrieved_candidates_so_a_version_broken_for_one_of_them_is_refused():
  # Before, the warm-up ranked the first catalogue item (i1) alone, which this version predicts 3.0 stars for, and
  # the version was served: every request whose candidates hold i5 then got a NaN score.
  versions = models.ServedVersions(4, 7)
  bundle = NonFiniteLoader({})('/not/read', versions)
  bundle = models.ModelBundle(versions=versions, backend=OneNaNItemBackend(versions), assets=bundle.assets,
                              encoder=bundle.encoder)
  with pytest.raises(models.BackendError) as error:
    models.warm_up(bundle)
  assert str(error.value).startswith(
      'The ranking model version 7 predicted ratings that are not finite for 1 of 5 candidates: i5=nan; ')
