"""Finds the newest complete pushed model versions, loads them with their assets, warms them up, and swaps in new pushes.

Layout (written by `components.serving_pusher`): `<serving_dir>/retrieval/<version>/` and
`<serving_dir>/ranking/<version>/`, each a SavedModel. A version directory counts only if its name is a number
and it holds `saved_model.pb`; the pusher's `.staging-<version>` directories (still being copied) and anything
else are ignored, so a half-written version is never loaded.

`ModelRegistry` holds the loaded pair of models (a `ModelBundle`) and replaces it when a newer version of
either model appears: the new bundle is loaded completely first and then swapped in under a lock, so requests
in flight keep the bundle they started with and no request sees a missing model. A version that fails to load
is logged and skipped until a newer one of the same model appears; the served bundle stays. Whatever loading
or warming up a version raises counts as that version failing (a broken asset can raise any error, a ScaNN
index without `scann` installed an ImportError, a ranking model predicting NaN or inf at the warm-up a
`BackendError` that is not retryable), except the two errors that may pass: `VersionNotAvailableError`
(TF Serving still loading it: its status is not AVAILABLE yet, or its predict answers the warm-up 404) and a
retryable `BackendError`. Which of the two
models' versions failed is found by loading the retrieval version alone, so a bad ranking version does not
hold back a good new retrieval version (it is served with the newest ranking version that has not failed).
A backend error that may pass (TF Serving restarting or overloaded) skips nothing: the next poll tries again.

Degraded mode: the retrieval model is required, the ranking model is not. While `<serving_dir>/ranking` has no
complete version (e.g. the pipeline's segment gate refused the first ranking model), the registry serves the
retrieval model alone (`ServedVersions.ranking` is None) and the recommender orders by retrieval score; the
first complete ranking version is then swapped in like any new version. Without a retrieval version nothing
is served (`ModelsNotReadyError`).
"""

import dataclasses
import os
import threading
from typing import Callable, Collection, Dict, List, Mapping, Optional, Protocol, Sequence, Set, Tuple

import numpy as np
import tensorflow as tf
from absl import logging

from pipeline import configs
from serving import assets as assets_lib
from serving import requests as requests_lib
from trainer.ranking import export as ranking_export
from trainer.retrieval import export as retrieval_export
from trainer.retrieval import loading as retrieval_loading

SAVED_MODEL_FILE = 'saved_model.pb'
# Model names: the sub-directories of the serving directory the pipeline's pushers write to.
RETRIEVAL_MODEL = configs.RETRIEVAL_SERVING_SUBDIR
RANKING_MODEL = configs.RANKING_SERVING_SUBDIR
# Seconds between two looks for new versions.
DEFAULT_POLL_INTERVAL_S = 5.0
# What a backend without a ranking model answers a ranking request with.
NO_RANKING_MESSAGE = ('No ranking model is served (retrieval-only, degraded mode); check '
                      'ModelBundle.versions.has_ranking before asking for predicted ratings.')


class ModelsNotReadyError(RuntimeError):
  """No complete retrieval model version is available yet (or a ranking model was asked for in degraded mode)."""


class BackendError(RuntimeError):
  """A model backend failed to answer (e.g. TF Serving answered an error status or could not be reached).

  The HTTP service (`serving.app`) answers a retryable one with 503 (the client may retry) and any other with
  502 Bad Gateway naming its message; while loading a version, the registry tries a retryable one again at the
  next poll and skips the version for any other.

  Attributes:
    retryable: True when the same call may succeed later (server unreachable, timed out, 502/503/504); False when
      the version itself is at fault (e.g. a 4xx answer: the request does not fit the model; TF Serving's 500: an op of
      the model fails on these examples).
    version_not_found: True when the backend answered that it does not serve the version asked for (TF Serving's
      404 "Servable not found"). On a request it is not retryable like any 4xx; during a warm-up it means the
      backend is still loading the version (TF Serving's status can say AVAILABLE before its predict endpoint
      serves it), so `warm_up` raises `VersionNotAvailableError` and the registry tries again at the next poll.
  """

  def __init__(self, message: str, retryable: bool, version_not_found: bool = False) -> None:
    super().__init__(message)
    self.retryable = retryable
    self.version_not_found = version_not_found


class VersionNotAvailableError(RuntimeError):
  """A backend cannot answer with these versions yet (e.g. TF Serving is still loading them); retry later."""


class ModelBackend(Protocol):
  """Answers the two models' `serving_default` signatures (in process or through TF Serving)."""

  def retrieve(self, requests: Sequence[bytes]) -> Tuple[np.ndarray, np.ndarray]:
    """Top-K candidates per query.

    Args:
      requests: `[batch]` serialized tf.Example with `user_id` and the `user_*` columns.

    Returns:
      (item ids: str `[batch, K]`, scores: float32 `[batch, K]`), best first.
    """

  def predict_ratings(self, requests: Sequence[bytes]) -> np.ndarray:
    """Predicted stars, float32 `[batch]`, of serialized (user, item) examples with every raw column.

    Raises:
      ModelsNotReadyError: if the backend serves no ranking model (`ServedVersions.ranking` is None).
    """

  def unavailable_reason(self) -> Optional[str]:
    """Why the backend cannot answer now (e.g. TF Serving unreachable), or None when it can.

    Called by every `GET /healthz`, so it must answer within about a second.
    """


@dataclasses.dataclass(frozen=True)
class ServedVersions:
  """The version numbers of the models being served; `ranking` is None in retrieval-only (degraded) mode."""
  retrieval: int
  ranking: Optional[int]

  @property
  def has_ranking(self) -> bool:
    """Whether a ranking model is served (False: retrieval-only, degraded mode)."""
    return self.ranking is not None

  def missing_models(self) -> Tuple[str, ...]:
    """The names of the models without a served version: `(RANKING_MODEL,)` in degraded mode, else `()`."""
    return () if self.has_ranking else (RANKING_MODEL,)


@dataclasses.dataclass(frozen=True)
class ModelBundle:
  """The models of one set of versions (retrieval, and ranking unless degraded), the serving assets pushed with
  the retrieval model, and the request encoder of that catalogue."""
  versions: ServedVersions
  backend: ModelBackend
  assets: assets_lib.ServingAssets
  encoder: requests_lib.RequestEncoder


def make_bundle(versions: ServedVersions, backend: ModelBackend, retrieval_dir: str) -> ModelBundle:
  """Reads the assets of the retrieval version `retrieval_dir` and bundles them with `backend`."""
  serving_assets = assets_lib.load_serving_assets(assets_lib.assets_dir_of(retrieval_dir))
  return ModelBundle(versions=versions, backend=backend, assets=serving_assets,
                     encoder=requests_lib.RequestEncoder(serving_assets))


# Items named at most in a non-finite ratings error.
_MAX_ITEMS_NAMED = 5


def check_finite_ratings(ratings: np.ndarray, item_ids: Sequence[str], ranking_version: Optional[int]) -> None:
  """Refuses predicted ratings that are not all finite: a ranking model answering NaN or inf is broken (an export
  or input fault), and its ratings would turn every blended score into NaN.

  Args:
    ratings: the ranking model's predicted stars, float `[num_items]`.
    item_ids: the items' ids, `[num_items]`, in the same order.
    ranking_version: the ranking version that predicted them (named in the error).

  Raises:
    BackendError: not retryable (the same call predicts the same), naming the items with a non-finite rating and
      their values.
  """
  bad = [(item_ids[i], float(ratings[i])) for i in np.flatnonzero(~np.isfinite(ratings))]
  if not bad:
    return
  named = ', '.join(f'{item_id}={rating}' for item_id, rating in bad[:_MAX_ITEMS_NAMED])
  more = f' (and {len(bad) - _MAX_ITEMS_NAMED} more)' if len(bad) > _MAX_ITEMS_NAMED else ''
  raise BackendError(
      f'The {RANKING_MODEL} model version {ranking_version} predicted ratings that are not finite for '
      f'{len(bad)} of {len(item_ids)} candidates: {named}{more}; check its export and its inputs, and push a '
      'version that predicts finite stars.', retryable=False)


def warm_up(bundle: ModelBundle) -> None:
  """Answers one retrieval and (when a ranking model is served) one ranking request, so the first real
  requests do not pay for it, and refuses a ranking version whose warm-up prediction is not finite.

  Without this, the first concurrent calls of freshly loaded signatures stall each other (seen: 32 concurrent
  first requests waited over 30 s; after one warm-up request they took ~0.1 s). The requests are the first user's,
  as a real request makes them: retrieval of their candidates, then the ranking of those candidates that are in
  the catalogue (with the user's recent rating), or of the first catalogue item if none is, so a ranking version
  that predicts NaN or inf for any of them is refused before it serves, not only one broken for a single item.

  Raises:
    ValueError: if the assets hold no user or no item to build the requests from.
    VersionNotAvailableError: if the backend answers that it does not serve a version (yet): TF Serving answers
      404 "Servable not found" to a version it has not finished loading (the registry tries again at the next
      poll, without serving it meanwhile).
    BackendError: not retryable, if the ranking version predicts NaN or inf for one of those items (the registry
      skips the version until a newer one appears, as any version at fault), or as the backend raises it.
  """
  if not bundle.assets.user_profiles or not bundle.assets.items:
    raise ValueError('The serving assets hold no users or no items; check the retrieval model\'s assets.extra.')
  user_id, profile = next(iter(bundle.assets.user_profiles.items()))
  try:
    retrieved, _ = bundle.backend.retrieve([bundle.encoder.user_request(profile)])
    item_ids = list(dict.fromkeys(str(item) for item in retrieved[0] if str(item) in bundle.assets.items)) or [
        next(iter(bundle.assets.items))]
    ratings = None if not bundle.versions.has_ranking else bundle.backend.predict_ratings(
        bundle.encoder.ranking_requests(profile, item_ids, recent_rating=bundle.assets.recent_ratings.get(user_id)))
  except BackendError as e:
    if not e.version_not_found:
      raise
    raise VersionNotAvailableError(f'the warm-up of versions {bundle.versions} found a version the backend does '
                                   f'not serve yet (still loading it?), tried again at the next poll: {e}') from e
  if ratings is not None:
    check_finite_ratings(ratings, item_ids, bundle.versions.ranking)


def _may_pass(error: Exception) -> bool:
  """Whether a load error may pass by itself (the same versions are tried again at the next poll) rather than
  being the version's fault (it is skipped until a newer one appears)."""
  return isinstance(error, VersionNotAvailableError) or (isinstance(error, BackendError) and error.retryable)

# Builds the bundle of the given versions under a serving directory.
BundleLoader = Callable[[str, ServedVersions], ModelBundle]


def _numeric_names(model_dir: str) -> List[Tuple[int, str]]:
  """(version, directory name) of every numeric name under `model_dir`, newest first (a missing directory has
  none); complete or not."""
  if not tf.io.gfile.isdir(model_dir):
    return []
  names = (name.rstrip('/') for name in tf.io.gfile.listdir(model_dir))
  return sorted(((int(name), name) for name in names if configs.is_version_name(name)), reverse=True)


def _is_complete(model_dir: str, name: str) -> bool:
  return tf.io.gfile.exists(os.path.join(model_dir, name, SAVED_MODEL_FILE))


def complete_versions(model_dir: str) -> List[int]:
  """The complete versions under `model_dir` (numeric directory names holding saved_model.pb), ascending.

  Args:
    model_dir: e.g. `<serving_dir>/ranking`; a missing directory has no versions.
  """
  return sorted(version for version, name in _numeric_names(model_dir) if _is_complete(model_dir, name))


def newest_complete_version(model_dir: str, skipped: Collection[int] = ()) -> Optional[int]:
  """The newest complete version under `model_dir` that is not in `skipped`; None if there is none.

  The numeric names are looked at from the newest down, stopping at the first complete one, so a poll checks one
  saved_model.pb (plus one per newer version half-written or skipped) however many versions are kept: on gs://
  each check is a request, and `complete_versions` makes one per version.

  Args:
    model_dir: e.g. `<serving_dir>/ranking`; a missing directory has no versions.
    skipped: versions not to use (they failed to load).
  """
  for version, name in _numeric_names(model_dir):
    if version not in skipped and _is_complete(model_dir, name):
      return version
  return None


def newest_versions(serving_dir: str, skipped: Optional[Mapping[str, Set[int]]] = None) -> Optional[ServedVersions]:
  """The newest complete version of each model under `serving_dir`, leaving out `skipped` versions.

  Args:
    serving_dir: the pipeline's serving directory.
    skipped: model name -> versions not to use (they failed to load).

  Returns:
    None while the retrieval model has no complete version; `ranking` is None while only the ranking model
    has none (retrieval-only, degraded mode).
  """
  skipped = skipped or {}
  retrieval = newest_complete_version(os.path.join(serving_dir, RETRIEVAL_MODEL), skipped.get(RETRIEVAL_MODEL, ()))
  if retrieval is None:
    return None
  ranking = newest_complete_version(os.path.join(serving_dir, RANKING_MODEL), skipped.get(RANKING_MODEL, ()))
  return ServedVersions(retrieval=retrieval, ranking=ranking)


def version_dir(serving_dir: str, model: str, version: int) -> str:
  """`<serving_dir>/<model>/<version>`."""
  return os.path.join(serving_dir, model, str(version))


class InProcessModels:
  """The SavedModels loaded into this process; their `serving_default` signatures answer requests."""

  def __init__(self, retrieval_dir: str, ranking_dir: Optional[str]):
    """Loads the SavedModels.

    Args:
      retrieval_dir: a retrieval model version directory.
      ranking_dir: a ranking model version directory, or None for retrieval only (degraded mode).
    """
    self._retrieval = retrieval_loading.load_retrieval_model(retrieval_dir)
    self._retrieve = self._retrieval.signatures[retrieval_export.SERVING_SIGNATURE]
    self._ranking = None if ranking_dir is None else tf.saved_model.load(ranking_dir)
    self._rank = None if self._ranking is None else self._ranking.signatures[ranking_export.SERVING_SIGNATURE]

  def retrieve(self, requests: Sequence[bytes]) -> Tuple[np.ndarray, np.ndarray]:
    outputs = self._retrieve(**{retrieval_export.EXAMPLES_INPUT: tf.constant(list(requests), tf.string)})
    item_ids = np.char.decode(outputs[retrieval_export.ITEM_IDS_OUTPUT].numpy().astype(bytes), 'utf-8')
    return item_ids, outputs[retrieval_export.SCORES_OUTPUT].numpy()

  def predict_ratings(self, requests: Sequence[bytes]) -> np.ndarray:
    if self._rank is None:
      raise ModelsNotReadyError(NO_RANKING_MESSAGE)
    outputs = self._rank(**{ranking_export.EXAMPLES_INPUT: tf.constant(list(requests), tf.string)})
    return outputs[ranking_export.PREDICTIONS_OUTPUT].numpy().reshape([-1])

  def unavailable_reason(self) -> Optional[str]:
    """None: models loaded into this process answer as long as the process runs."""
    return None


def load_in_process(serving_dir: str, versions: ServedVersions) -> ModelBundle:
  """Loads the model versions (the ranking one only if given) into this process, with the assets of the
  retrieval version."""
  retrieval_dir = version_dir(serving_dir, RETRIEVAL_MODEL, versions.retrieval)
  ranking_dir = version_dir(serving_dir, RANKING_MODEL, versions.ranking) if versions.has_ranking else None
  return make_bundle(versions, InProcessModels(retrieval_dir, ranking_dir), retrieval_dir)


class ModelRegistry:
  """The currently served `ModelBundle`, refreshed from the serving directory; see the module docstring."""

  def __init__(self, serving_dir: str, loader: BundleLoader = load_in_process,
               poll_interval_s: float = DEFAULT_POLL_INTERVAL_S):
    """Creates an empty registry; call `refresh()` (or `start_polling()`) to load models.

    Args:
      serving_dir: the pipeline's serving directory (holding `retrieval/` and `ranking/`).
      loader: builds a bundle of given versions (in process by default; see `serving.tf_serving_backend`).
      poll_interval_s: seconds between looks for new versions when polling.

    Raises:
      ValueError: if `poll_interval_s` is not a number of seconds above 0 and at most `threading.TIMEOUT_MAX`
        (NaN, inf and longer waits make the polling thread's `Event.wait` raise).
    """
    if not 0.0 < poll_interval_s <= threading.TIMEOUT_MAX:  # refuses NaN and inf too
      raise ValueError(f'poll_interval_s={poll_interval_s} must be a number of seconds above 0 and at most '
                       f'{threading.TIMEOUT_MAX:.0f}, e.g. 5.')
    self._serving_dir = serving_dir
    self._loader = loader
    self._poll_interval_s = poll_interval_s
    self._lock = threading.Lock()
    self._bundle: Optional[ModelBundle] = None
    # Why the newest versions on disk are not served, for the not-ready message (None once they are).
    self._not_loaded_reason: Optional[str] = None
    # True from start_polling(refresh_first=True) until the polling thread's first refresh ends: nothing is known
    # about the directory yet, so the not-ready error must not say that it holds no version.
    self._first_look_pending = False
    self._failed: Dict[str, Set[int]] = {RETRIEVAL_MODEL: set(), RANKING_MODEL: set()}
    self._stop = threading.Event()
    self._poller: Optional[threading.Thread] = None

  @property
  def serving_dir(self) -> str:
    return self._serving_dir

  def current(self) -> ModelBundle:
    """The bundle to answer one request with (keep it for the whole request).

    Raises:
      ModelsNotReadyError: while no complete retrieval model version has been loaded.
    """
    with self._lock:
      bundle, reason, first_look_pending = self._bundle, self._not_loaded_reason, self._first_look_pending
    if bundle is None:
      if reason:
        raise ModelsNotReadyError(f'No model loaded yet from {self._serving_dir}: {reason}')
      if first_look_pending:
        raise ModelsNotReadyError(f'No model loaded yet from {self._serving_dir}: the service is looking for its '
                                  'newest versions (it has just started)')
      raise ModelsNotReadyError(
          f'No model loaded yet: {self._serving_dir} needs a complete version of {RETRIEVAL_MODEL!r} (and of '
          f'{RANKING_MODEL!r} for the two-stage order); run the pipeline to push them.')
    return bundle

  def refresh(self) -> bool:
    """Loads the newest complete versions that have not failed, if they differ from the served ones, then swaps
    them in.

    Returns:
      True if a new bundle is now served.
    """
    with self._lock:
      served = self._bundle.versions if self._bundle else None
    while True:  # each pass either ends or skips at least one more failed version
      versions = newest_versions(self._serving_dir, self._failed)
      if versions is None or versions == served:
        return False
      if served is None:
        with self._lock:  # told by the not-ready error meanwhile (a first load can take many seconds)
          self._not_loaded_reason = f'versions {versions} are loading'
      try:
        bundle = self._load(versions)
      except Exception as e:  # pylint: disable=broad-except
        # Loading reads files the pipeline (or a person) put there: any error is this version's failure, which
        # is recorded and logged with its traceback (see _skip_failed), unless it may pass by itself.
        if isinstance(e, VersionNotAvailableError):
          logging.info('Versions %s are not available yet (still serving %s): %s', versions, served, e)
        elif _may_pass(e) or not self._skip_failed(versions, e, served):
          logging.warning('Could not load model versions %s (still serving %s), retrying at the next poll: %s',
                          versions, served, e)
        else:
          continue
        with self._lock:
          self._not_loaded_reason = f'versions {versions} could not be loaded yet ({type(e).__name__}: {e})'
        return False
      break
    with self._lock:
      self._bundle = bundle
      self._not_loaded_reason = None
    logging.info('Now serving %s from %s (was %s).', versions, self._serving_dir, served)
    if not versions.has_ranking:
      logging.warning('Degraded mode: %s has no complete %r version that loads; recommendations are ordered by '
                      'retrieval score until one is pushed.', self._serving_dir, RANKING_MODEL)
    return True

  def _load(self, versions: ServedVersions) -> ModelBundle:
    bundle = self._loader(self._serving_dir, versions)
    warm_up(bundle)
    return bundle

  def _skip_failed(self, versions: ServedVersions, error: Exception, served: Optional[ServedVersions]) -> bool:
    """Records which version of `versions` failed to load: the ranking one if the retrieval version loads alone,
    else the retrieval one.

    Returns:
      False when that cannot be told now (the retrieval version alone met a passing backend error): nothing is
      recorded and the next poll tries again.
    """
    culprit = (RETRIEVAL_MODEL, versions.retrieval)
    if versions.has_ranking:
      try:
        self._load(ServedVersions(retrieval=versions.retrieval, ranking=None))
        culprit = (RANKING_MODEL, versions.ranking)
      except Exception as alone:  # pylint: disable=broad-except
        if _may_pass(alone):
          return False
        # Otherwise the retrieval version fails alone too: it is the culprit (the ranking one is tried again later).
    self._failed[culprit[0]].add(culprit[1])
    with self._lock:  # told by the not-ready error while nothing is served (e.g. the only retrieval version)
      self._not_loaded_reason = (f'{culprit[0]} version {culprit[1]} failed to load and is skipped until a newer '
                                 f'one is pushed ({type(error).__name__}: {error})')
    logging.error('Could not load %s version %d from %s (still serving %s); it is skipped until a newer one '
                  'appears: %s: %s', culprit[0], culprit[1], self._serving_dir, served, type(error).__name__, error,
                  exc_info=error)
    return True

  def start_polling(self, refresh_first: bool = False) -> None:
    """Starts a daemon thread that calls `refresh()` every `poll_interval_s` seconds.

    Args:
      refresh_first: refresh at once in that thread, before the first wait (the HTTP service: it answers 503
        while the first versions load instead of not answering); until that refresh ends, the not-ready error
        says the registry is looking for its versions, not that the directory has none.
    """
    if self._poller is not None:
      return
    if refresh_first:
      with self._lock:  # until the thread's first look, which may take a while on an object store
        self._first_look_pending = self._bundle is None
    self._stop.clear()
    self._poller = threading.Thread(target=self._poll, args=(refresh_first,), name='model-version-poller',
                                    daemon=True)
    self._poller.start()

  def stop_polling(self) -> None:
    """Stops the polling thread (waits for a load in progress to finish)."""
    self._stop.set()
    if self._poller is not None:
      self._poller.join()
      self._poller = None

  def _poll(self, refresh_first: bool = False) -> None:
    if refresh_first and not self._stop.is_set():
      self._refresh_logging_errors()
      with self._lock:  # the first look is over: the reason it left (or none: no version) tells the rest
        self._first_look_pending = False
    while not self._stop.wait(self._poll_interval_s):
      self._refresh_logging_errors()

  def _refresh_logging_errors(self) -> None:
    """`refresh()`, at the poller's boundary: an unexpected error is logged with its traceback and the next poll
    tries again (ending the thread would freeze the served versions until a restart)."""
    try:
      self.refresh()
    except Exception:  # pylint: disable=broad-except
      logging.exception('Looking for new model versions under %s failed; trying again in %s s.',
                        self._serving_dir, self._poll_interval_s)
