"""How the model registry treats versions that fail to load, backend errors that pass, and the polling thread.

Over the fake bundles of tests/serving_degraded_test.py: which versions are "bad" is chosen by each test.
"""

import threading
import time
from typing import Callable, List

import pytest

from serving import models
from tests import serving_degraded_test as degraded

RETRIEVAL, RANKING = models.RETRIEVAL_MODEL, models.RANKING_MODEL


class FailingLoader(degraded.FakeLoader):
  """A FakeLoader that raises `error(versions)` for the versions `fails(versions)` says, and records every load."""

  def __init__(self, fails: Callable[[models.ServedVersions], bool],
               error: Callable[[], Exception] = lambda: ValueError('no serving_default signature')):
    super().__init__()
    self.fails = fails
    self.error = error
    self.loaded: List[models.ServedVersions] = []

  def __call__(self, serving_dir: str, versions: models.ServedVersions) -> models.ModelBundle:
    self.loaded.append(versions)
    if self.fails(versions):
      raise self.error()
    return super().__call__(serving_dir, versions)


def _serving_dir(tmp_path, *versions) -> str:
  """`tmp_path` holding a complete version for each (model, version) given."""
  for model, version in versions:
    degraded.mark_complete(str(tmp_path), model, version)
  return str(tmp_path)


def _served(registry: models.ModelRegistry) -> models.ServedVersions:
  return registry.current().versions


def _wait_until_served(registry: models.ModelRegistry, expected: models.ServedVersions) -> None:
  """Waits (up to 30 s) until the registry serves `expected`, then asserts it (the polling thread loads them)."""
  deadline = time.time() + 30
  while time.time() < deadline:
    try:
      if _served(registry) == expected:
        return
    except models.ModelsNotReadyError:  # not loaded yet: look again (the assert below reports a timeout)
      pass
    time.sleep(0.01)
  assert _served(registry) == expected


def test_a_bad_ranking_version_does_not_hold_back_a_new_retrieval_version(tmp_path):
  serving_dir = _serving_dir(tmp_path, (RETRIEVAL, 1), (RANKING, 1))
  loader = FailingLoader(lambda v: v.ranking == 2)
  registry = models.ModelRegistry(serving_dir, loader=loader)
  assert registry.refresh() and _served(registry) == models.ServedVersions(1, 1)

  degraded.mark_complete(serving_dir, RANKING, 2)  # cannot be loaded
  assert not registry.refresh()
  assert _served(registry) == models.ServedVersions(1, 1)
  # The pair failed, the retrieval version alone loaded: ranking 2 is the culprit.
  assert loader.loaded[-2:] == [models.ServedVersions(1, 2), models.ServedVersions(1, None)]

  degraded.mark_complete(serving_dir, RETRIEVAL, 2)
  assert registry.refresh()
  # Before, (2, 2) was tried and failed at every poll and retrieval 2 was never served.
  assert _served(registry) == models.ServedVersions(2, 1)
  assert not registry.refresh()

  degraded.mark_complete(serving_dir, RANKING, 3)
  assert registry.refresh() and _served(registry) == models.ServedVersions(2, 3)


def test_a_bad_retrieval_version_is_skipped_until_a_newer_one(tmp_path):
  serving_dir = _serving_dir(tmp_path, (RETRIEVAL, 1), (RANKING, 1))
  loader = FailingLoader(lambda v: v.retrieval == 2)
  registry = models.ModelRegistry(serving_dir, loader=loader)
  assert registry.refresh()
  degraded.mark_complete(serving_dir, RETRIEVAL, 2)
  assert not registry.refresh() and _served(registry) == models.ServedVersions(1, 1)
  loads = len(loader.loaded)
  assert not registry.refresh()
  assert len(loader.loaded) == loads  # skipped: not loaded again at every poll

  degraded.mark_complete(serving_dir, RANKING, 2)  # a new ranking version is served beside retrieval 1
  assert registry.refresh() and _served(registry) == models.ServedVersions(1, 2)
  degraded.mark_complete(serving_dir, RETRIEVAL, 3)
  assert registry.refresh() and _served(registry) == models.ServedVersions(3, 2)


def test_first_load_with_a_bad_ranking_version_serves_the_previous_ranking_version(tmp_path):
  serving_dir = _serving_dir(tmp_path, (RETRIEVAL, 1), (RANKING, 1), (RANKING, 2))
  registry = models.ModelRegistry(serving_dir, loader=FailingLoader(lambda v: v.ranking == 2))
  assert registry.refresh() and _served(registry) == models.ServedVersions(1, 1)


def test_a_backend_error_that_may_pass_skips_nothing(tmp_path):
  serving_dir = _serving_dir(tmp_path, (RETRIEVAL, 1), (RANKING, 1))
  outage = {'on': True}
  loader = FailingLoader(lambda v: outage['on'],
                         error=lambda: models.BackendError('TF Serving did not answer', retryable=True))
  registry = models.ModelRegistry(serving_dir, loader=loader)
  assert not registry.refresh()
  assert loader.loaded == [models.ServedVersions(1, 1)]  # no blame: the retrieval version is not tried alone
  outage['on'] = False
  assert registry.refresh() and _served(registry) == models.ServedVersions(1, 1)


def test_a_backend_error_of_the_version_itself_skips_it(tmp_path):
  serving_dir = _serving_dir(tmp_path, (RETRIEVAL, 1), (RANKING, 1), (RANKING, 2))
  loader = FailingLoader(lambda v: v.ranking == 2,
                         error=lambda: models.BackendError('answered 400: bad input', retryable=False))
  registry = models.ModelRegistry(serving_dir, loader=loader)
  assert registry.refresh() and _served(registry) == models.ServedVersions(1, 1)


@pytest.mark.parametrize('error', [TypeError("int() argument must be a string, not 'NoneType'"),
                                   ImportError('ScaNN index needs the scann package'),
                                   AttributeError("'NoneType' object has no attribute 'signatures'")])
def test_any_error_loading_a_version_skips_that_version(tmp_path, error):
  # Broken assets or a ScaNN index without scann raise errors outside OSError/ValueError/KeyError: before, they
  # escaped refresh(), so the service did not start although ranking 1 loads, and a live one retried each poll.
  serving_dir = _serving_dir(tmp_path, (RETRIEVAL, 1), (RANKING, 1), (RANKING, 2))
  loader = FailingLoader(lambda v: v.ranking == 2, error=lambda: error)
  registry = models.ModelRegistry(serving_dir, loader=loader)
  assert registry.refresh() and _served(registry) == models.ServedVersions(1, 1)
  loads = len(loader.loaded)
  assert not registry.refresh() and len(loader.loaded) == loads  # skipped, not loaded again


def test_the_not_ready_error_says_why_the_versions_on_disk_are_not_served(tmp_path):
  serving_dir = _serving_dir(tmp_path, (RETRIEVAL, 1), (RANKING, 1))
  loader = FailingLoader(lambda v: True, error=lambda: models.VersionNotAvailableError(
      "TF Serving at http://tfs:8501 reports retrieval version 1 as 'LOADING'"))
  registry = models.ModelRegistry(serving_dir, loader=loader)
  assert not registry.refresh()
  with pytest.raises(models.ModelsNotReadyError,
                     match=r"versions ServedVersions\(retrieval=1, ranking=1\) could not be loaded yet "
                           r"\(VersionNotAvailableError: TF Serving at http://tfs:8501 reports retrieval version 1 "
                           r"as 'LOADING'\)"):
    registry.current()
  loader.fails = lambda v: False
  assert registry.refresh() and _served(registry) == models.ServedVersions(1, 1)


def test_the_not_ready_error_names_the_only_retrieval_version_that_failed_to_load(tmp_path):
  # Before, the version was skipped and the error said the directory needed a complete version: "run the
  # pipeline to push them", although retrieval/1 is there and only its assets are broken.
  serving_dir = _serving_dir(tmp_path, (RETRIEVAL, 1), (RANKING, 1))
  loader = FailingLoader(lambda v: v.retrieval == 1,
                         error=lambda: FileNotFoundError('assets.extra lacks the serving assets'))
  registry = models.ModelRegistry(serving_dir, loader=loader)
  assert not registry.refresh()
  with pytest.raises(models.ModelsNotReadyError) as error:
    registry.current()
  assert str(error.value) == (f'No model loaded yet from {serving_dir}: retrieval version 1 failed to load and '
                              'is skipped until a newer one is pushed (FileNotFoundError: assets.extra lacks the '
                              'serving assets)')
  degraded.mark_complete(serving_dir, RETRIEVAL, 2)
  assert registry.refresh() and _served(registry) == models.ServedVersions(2, 1)


def test_without_any_version_the_not_ready_error_says_to_run_the_pipeline(tmp_path):
  registry = models.ModelRegistry(str(tmp_path), loader=FailingLoader(lambda v: False))
  assert not registry.refresh()
  with pytest.raises(models.ModelsNotReadyError, match='run the pipeline to push them'):
    registry.current()


def test_the_poller_survives_an_unexpected_error(tmp_path, monkeypatch):
  # Listing the serving directory fails once (e.g. a network file system hiccup): outside any version's load.
  serving_dir = _serving_dir(tmp_path, (RETRIEVAL, 1))
  calls = {'n': 0}
  list_versions = models.newest_versions

  def fails_first(*args, **kwargs):
    calls['n'] += 1
    if calls['n'] == 1:
      raise RuntimeError('bug')
    return list_versions(*args, **kwargs)

  monkeypatch.setattr(models, 'newest_versions', fails_first)
  registry = models.ModelRegistry(serving_dir, loader=FailingLoader(lambda v: False), poll_interval_s=0.01)
  registry.start_polling()
  try:
    deadline = time.time() + 30
    while calls['n'] < 2 and time.time() < deadline:
      time.sleep(0.01)
    assert calls['n'] >= 2, 'the polling thread died at the first error'
    assert any(t.name == 'model-version-poller' for t in threading.enumerate())
    _wait_until_served(registry, models.ServedVersions(1, None))
  finally:
    registry.stop_polling()


def test_until_the_first_look_at_the_serving_directory_the_not_ready_error_says_it_is_looking(tmp_path, monkeypatch):
  # The HTTP service answers while its first versions load (start_polling(refresh_first=True)). Before the polling
  # thread had listed the directory, the not-ready error said to run the pipeline, although a version was there.
  serving_dir = _serving_dir(tmp_path, (RETRIEVAL, 1))
  listing, release = threading.Event(), threading.Event()
  list_versions = models.newest_versions

  def slow_listing(*args, **kwargs):
    listing.set()
    assert release.wait(30), 'the test never released the listing'
    return list_versions(*args, **kwargs)

  monkeypatch.setattr(models, 'newest_versions', slow_listing)
  registry = models.ModelRegistry(serving_dir, loader=FailingLoader(lambda v: False), poll_interval_s=60)
  registry.start_polling(refresh_first=True)
  try:
    assert listing.wait(30)
    with pytest.raises(models.ModelsNotReadyError) as error:
      registry.current()
    assert str(error.value) == (f'No model loaded yet from {serving_dir}: the service is looking for its newest '
                                'versions (it has just started)')
    release.set()
    _wait_until_served(registry, models.ServedVersions(1, None))
  finally:
    release.set()
    registry.stop_polling()


def test_after_a_first_look_that_finds_no_version_the_not_ready_error_says_to_run_the_pipeline(tmp_path):
  registry = models.ModelRegistry(str(tmp_path), loader=FailingLoader(lambda v: False), poll_interval_s=60)
  registry.start_polling(refresh_first=True)
  try:
    deadline = time.time() + 30
    while time.time() < deadline:
      with pytest.raises(models.ModelsNotReadyError) as error:
        registry.current()
      if 'run the pipeline to push them' in str(error.value):
        break
      time.sleep(0.01)
    assert 'run the pipeline to push them' in str(error.value)
  finally:
    registry.stop_polling()


def test_newest_versions_leaves_out_skipped_ones(tmp_path):
  serving_dir = str(tmp_path)
  for model, version in ((RETRIEVAL, 1), (RETRIEVAL, 2), (RANKING, 1)):
    degraded.mark_complete(serving_dir, model, version)
  assert models.newest_versions(serving_dir, {RETRIEVAL: {2}}) == models.ServedVersions(1, 1)
  assert models.newest_versions(serving_dir, {RANKING: {1}}) == models.ServedVersions(2, None)
  assert models.newest_versions(serving_dir, {RETRIEVAL: {1, 2}}) is None


@pytest.mark.parametrize('poll_interval_s', [0.0, -1.0, float('nan'), float('inf'), threading.TIMEOUT_MAX * 2])
def test_registry_refuses_a_poll_interval_the_polling_thread_could_not_wait(tmp_path, poll_interval_s):
  # NaN and inf used to pass the `<= 0` check and kill the polling thread at its first Event.wait.
  with pytest.raises(ValueError, match='poll_interval_s=.* must be a number of seconds above 0'):
    models.ModelRegistry(str(tmp_path), loader=FailingLoader(lambda v: False), poll_interval_s=poll_interval_s)


def test_registry_accepts_the_longest_wait_threading_allows(tmp_path):
  registry = models.ModelRegistry(str(tmp_path), loader=FailingLoader(lambda v: False),
                                  poll_interval_s=threading.TIMEOUT_MAX)
  assert registry.serving_dir == str(tmp_path)
