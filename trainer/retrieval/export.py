"""Exports the retrieval model with its candidate index as a self-contained SavedModel.

Signatures (those taking `examples` expect string `[batch]` of serialized tf.Example holding `user_id` and the
`user_*` columns; only those columns are parsed, any others are ignored):

* `serving_default` -> `item_ids` string `[batch, K]` and `scores` float32 `[batch, K]`, best first. K is `top_k`
  (at most the catalogue). With `item_item_weight` > 0 the scores are `catalogue_scores`': by brute force the
  whole catalogue is scored; with `index='scann'` ScaNN's K best items by the two towers and the K covered items
  with the best item-item scores are re-scored exactly and the best K of them answer (approximate: an item in
  neither list is missed). With `item_item_weight` 0 they come from the candidate index (brute force by default;
  ScaNN with `index='scann'`).
* `catalogue_scores` -> `scores` float32 `[batch, num_items]`, every catalogue item's score in the order of
  `candidate_embeddings`: query · candidate, plus `item_item_weight` times the item-item score
  (`trainer.retrieval.item_item`) on the items the user has not interacted with in training.
* `query_embedding` -> `embeddings` float32 `[batch, embedding_dim]`, the query tower's output.
* `candidate_embeddings` (no input) -> `item_ids` string `[num_items]` and `embeddings` float32
  `[num_items, embedding_dim]`, the whole catalogue, so the retrieval gate can rank every item.
* `transform_features` -> the dense Transform outputs of the user columns (e.g. `user_age_bucket`), which the
  gate uses to report metrics per user segment.

A user id outside the training vocabulary maps to the out-of-vocabulary bucket and is answered from its
embedding (plus the other user features). The Transform graph is attached to the saved object, so the export
answers after the pipeline's Transform output is deleted. A ScaNN index holds ops stock TF Serving lacks:
serving it needs a ScaNN-enabled TF Serving build (see docs/retrieval.md).
"""

from typing import Dict, Optional, Tuple

import tensorflow as tf
import tensorflow_recommenders as tfrs
import tensorflow_transform as tft
from absl import logging

from schema import features
from trainer.common.transform_layer import ExportedTransform
from trainer.retrieval import candidates as candidates_lib
from trainer.retrieval import hparams as hparams_lib
from trainer.retrieval import loading
from trainer.retrieval.hparams import SCANN_INDEX, RetrievalHyperparameters
from trainer.retrieval.item_item import ItemItemScorer
from trainer.retrieval.model import Tower

SERVING_SIGNATURE = 'serving_default'
QUERY_EMBEDDING_SIGNATURE = 'query_embedding'
CANDIDATE_EMBEDDINGS_SIGNATURE = 'candidate_embeddings'
CATALOGUE_SCORES_SIGNATURE = 'catalogue_scores'
TRANSFORM_SIGNATURE = 'transform_features'
EXAMPLES_INPUT = 'examples'
ITEM_IDS_OUTPUT = 'item_ids'
SCORES_OUTPUT = 'scores'
EMBEDDINGS_OUTPUT = 'embeddings'
# ScaNN's asymmetric hashing trains 16 clusters per block: it needs at least that many catalogue items.
SCANN_MIN_CATALOGUE_ITEMS = 16
# Catalogue items whose embeddings query a new ScaNN index to check it answers K candidates.
_SCANN_PROBE_QUERIES = 1024
# Catalogue items embedded per step while building the index.
_EMBED_BATCH_SIZE = 4096


def candidate_index(item_ids: tf.Tensor, item_embeddings: tf.Tensor,
                    hparams: RetrievalHyperparameters) -> tfrs.layers.factorized_top_k.TopK:
  """Builds the index that answers queries with the top-K catalogue items.

  Args:
    item_ids: string `[num_items]`, raw item ids.
    item_embeddings: float32 `[num_items, embedding_dim]`, the candidate tower's outputs.
    hparams: `index`, `top_k` and the ScaNN settings are read.

  Returns:
    A TopK layer taking query embeddings `[batch, embedding_dim]`; it has been called once (saving an uncalled
    BruteForce index fails, recommenders#131).

  Raises:
    ValueError: for ScaNN on a catalogue too small to train it, or whose searched leaves hold fewer than K items
      for some catalogue items used as queries (ScaNN then pads its answer with repeated ids scored -inf/nan).
  """
  num_items = int(item_ids.shape[0])
  k = _capped_top_k(hparams.top_k, num_items)
  check_index_fits_catalogue(hparams, num_items)
  if hparams.index == SCANN_INDEX:
    num_leaves = min(hparams.scann_num_leaves, num_items)
    num_leaves_to_search = min(hparams.scann_num_leaves_to_search, num_leaves)
    index = tfrs.layers.factorized_top_k.ScaNN(k=k, num_leaves=num_leaves, num_leaves_to_search=num_leaves_to_search)
  else:
    index = tfrs.layers.factorized_top_k.BruteForce(k=k)
  index.index(candidates=item_embeddings, identifiers=item_ids)
  index(tf.zeros([1, item_embeddings.shape[1]], tf.float32))
  if hparams.index == SCANN_INDEX:
    probe_scores, _ = index(item_embeddings[:_SCANN_PROBE_QUERIES])
    if probe_scores.shape[1] < k or not bool(tf.reduce_all(tf.math.is_finite(probe_scores))):
      raise ValueError(
          f'index={SCANN_INDEX!r} found fewer than top_k={k} candidates for some catalogue items used as queries: '
          f'the {num_leaves_to_search} of {num_leaves} leaves it searches hold too few of the {num_items} items. '
          'Raise scann_num_leaves_to_search or lower scann_num_leaves (--retrieval-hparams), lower top_k, or use '
          f'index={hparams_lib.BRUTE_FORCE_INDEX!r} (--retrieval-index brute_force), exact and fast at this size.')
  return index


def check_index_available(hparams: RetrievalHyperparameters) -> None:
  """Refuses `index='scann'` without the `scann` package; the Trainer calls it before reading its data.

  Args:
    hparams: `index` is read.

  Raises:
    ImportError: for ScaNN when `scann` cannot be imported, naming the extra to install or the brute-force index.
  """
  if hparams.index == SCANN_INDEX:
    loading.import_scann(
        f"index={SCANN_INDEX!r} needs the `scann` package, which is not installed: install the project's scann "
        f'extra (uv sync --extra scann), or use index={hparams_lib.BRUTE_FORCE_INDEX!r} '
        '(--retrieval-index brute_force).')


def check_index_fits_catalogue(hparams: RetrievalHyperparameters, num_items: int) -> None:
  """Refuses an index the catalogue is too small for; the Trainer calls it on the catalogue before training.

  Args:
    hparams: `index` is read.
    num_items: the catalogue's item count.

  Raises:
    ValueError: for ScaNN on fewer than `SCANN_MIN_CATALOGUE_ITEMS` items (too few to train its quantizer).
  """
  if hparams.index == SCANN_INDEX and num_items < SCANN_MIN_CATALOGUE_ITEMS:
    raise ValueError(
        f'index={SCANN_INDEX!r} needs at least {SCANN_MIN_CATALOGUE_ITEMS} catalogue items to train its '
        f'quantizer; this catalogue has {num_items}. Use index={hparams_lib.BRUTE_FORCE_INDEX!r} '
        '(--retrieval-index brute_force), which is exact and fast at this size.')


def _capped_top_k(top_k: int, num_items: int) -> int:
  """The K the export answers with: `top_k`, at most the catalogue (warned)."""
  if top_k > num_items:
    logging.warning('top_k=%d exceeds the %d catalogue items; the export returns %d.', top_k, num_items, num_items)
  return min(top_k, num_items)


def embed_catalogue(candidate_tower: Tower, catalogue: tf.Tensor, tf_transform_output: tft.TFTransformOutput,
                    transform_layer: tf.keras.layers.Layer) -> Tuple[tf.Tensor, tf.Tensor]:
  """Runs every catalogue item through the candidate tower.

  Args:
    candidate_tower: the trained item tower.
    catalogue: string `[num_items]`, one serialized raw example per item (`candidates.catalogue_examples`).
    tf_transform_output: the Transform graph the tower was trained on.
    transform_layer: its `transform_features_layer()`.

  Returns:
    (raw item ids string `[num_items]`, embeddings float32 `[num_items, embedding_dim]`).
  """
  item_spec = candidates_lib.item_feature_spec(tf_transform_output)
  item_ids, item_embeddings = [], []
  for batch in tf.data.Dataset.from_tensor_slices(catalogue).batch(_EMBED_BATCH_SIZE):
    raw = tf.io.parse_example(batch, item_spec)
    item_ids.append(tf.reshape(raw[features.ITEM_ID], [-1]))
    item_embeddings.append(candidate_tower(transform_layer(raw)))
  return tf.concat(item_ids, 0), tf.concat(item_embeddings, 0)


def export_retrieval_model(query_tower: Tower, item_ids: tf.Tensor, item_embeddings: tf.Tensor,
                           tf_transform_output: tft.TFTransformOutput, hparams: RetrievalHyperparameters,
                           export_dir: str, item_item: Optional[ItemItemScorer] = None) -> None:
  """Builds the candidate index and saves the serving SavedModel to `export_dir`.

  Args:
    query_tower: the trained user tower.
    item_ids: string `[num_items]`, the catalogue's raw item ids.
    item_embeddings: float32 `[num_items, embedding_dim]`, their candidate tower outputs (`embed_catalogue`).
    tf_transform_output: the Transform graph the towers were trained on.
    hparams: the model's configuration (`index`, `top_k` and the ScaNN settings).
    export_dir: the Trainer's serving model directory.
    item_item: the item-item scores, columns in `item_ids`' order; required when `hparams.item_item_weight` > 0,
      unused otherwise.

  Raises:
    ValueError: if `item_item_weight` > 0 without `item_item`, or its columns do not match the catalogue; for a
      ScaNN index the catalogue cannot train or answer K from (`candidate_index`).
  """
  blend_item_item = hparams.item_item_weight > 0
  if blend_item_item:
    if item_item is None:
      raise ValueError(f'item_item_weight={hparams.item_item_weight} needs the item-item scorer '
                       '(trainer.retrieval.item_item.ItemItemScorer); pass item_item= or set the weight to 0.')
    if item_item.num_items != int(item_ids.shape[0]):
      raise ValueError(f'The item-item scorer has {item_item.num_items} columns but the catalogue '
                       f'{int(item_ids.shape[0])} items; fit it on this catalogue\'s item ids.')
  # The query tower's variables are saved, not the Keras model: saving a Keras model also traces every layer's
  # `call` for Keras' own loader, which nothing here uses (the signatures are the export's interface).
  module = tf.Module()
  module.transform = ExportedTransform(tf_transform_output)
  user_spec = candidates_lib.user_feature_spec(tf_transform_output)
  module.candidate_item_ids = tf.Variable(item_ids, trainable=False, name='candidate_item_ids')
  module.candidate_embeddings = tf.Variable(item_embeddings, trainable=False, name='candidate_embeddings')
  approximate = hparams.index == SCANN_INDEX
  if blend_item_item:
    module.item_item = item_item
    top_k = _capped_top_k(hparams.top_k, int(item_ids.shape[0]))
    if approximate:
      # ScaNN over the tower embeddings answers with catalogue columns, which are then re-scored.
      module.index = candidate_index(tf.range(int(item_ids.shape[0]), dtype=tf.int64), module.candidate_embeddings,
                                     hparams)
  else:
    module.index = candidate_index(module.candidate_item_ids, module.candidate_embeddings, hparams)

  def transformed_users(examples: tf.Tensor) -> Dict[str, tf.Tensor]:
    return module.transform(tf.io.parse_example(examples, user_spec))

  def users_and_queries(examples: tf.Tensor) -> Tuple[Dict[str, tf.Tensor], tf.Tensor]:
    """(the raw user columns, the query embeddings float32 `[batch, embedding_dim]`) of `examples`."""
    raw = tf.io.parse_example(examples, user_spec)
    return raw, query_tower(module.transform(raw))

  def scores_of(examples: tf.Tensor) -> tf.Tensor:
    """float32 `[batch, num_items]`, the `catalogue_scores` of the module docstring."""
    raw, queries = users_and_queries(examples)
    scores = tf.matmul(queries, module.candidate_embeddings, transpose_b=True)
    if blend_item_item:
      item_item_scores = module.item_item(raw[features.USER_ID])
      scores += hparams.item_item_weight * item_item_scores
    return scores

  def approximate_top_k(examples: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """(scores float32 `[batch, K]`, catalogue columns int64 `[batch, K]`): the union of ScaNN's K best items by
    the two towers and the K covered items with the best item-item scores, re-scored as `catalogue_scores`."""
    raw, queries = users_and_queries(examples)
    tower_scores, columns = module.index(queries)
    # ScaNN pads a short answer with repeated ids scored -inf/nan: those entries are no candidates.
    valid = tf.math.is_finite(tower_scores)
    item_item_scores = module.item_item.unseen_covered_scores(raw[features.USER_ID])
    if module.item_item.num_covered > 0:
      num_best = min(top_k, module.item_item.num_covered)
      _, positions = tf.math.top_k(item_item_scores[:, :-1], k=num_best)
      columns = tf.concat([columns, tf.gather(module.item_item.covered_columns, positions)], axis=1)
      valid = tf.concat([valid, tf.ones_like(positions, tf.bool)], axis=1)
    scores = tf.einsum('bd,bmd->bm', queries, tf.gather(module.candidate_embeddings, columns))
    scores += hparams.item_item_weight * tf.gather(
        item_item_scores, tf.gather(module.item_item.covered_position, columns), batch_dims=1)
    # An item in both lists counts once: its later copies score -inf, as do ScaNN's padding entries. Only a valid
    # earlier copy makes a repeat: the padding repeats column 0, which may be a valid item-item candidate.
    num_candidates = tf.shape(columns)[1]
    earlier = tf.range(num_candidates)[tf.newaxis, :] < tf.range(num_candidates)[:, tf.newaxis]
    repeated = tf.reduce_any(
        tf.equal(columns[:, :, tf.newaxis], columns[:, tf.newaxis, :]) & earlier & valid[:, tf.newaxis, :], axis=2)
    scores = tf.where(repeated | ~valid, tf.fill(tf.shape(scores), float('-inf')), scores)
    best, picked = tf.math.top_k(scores, k=tf.minimum(top_k, num_candidates))
    return best, tf.gather(columns, picked, batch_dims=1)

  examples_spec = tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)

  # Traced without AutoGraph, as the training steps and the ranking export are (trainer/common/tracing.py says
  # why): the `if`s above test the configuration, never a tensor. On MovieLens the export took 2.5 s instead of
  # 6.0 s (the retrieval Trainer's steps re-run back to back, the two codes alternating; docs/performance.md).
  @tf.function(input_signature=[examples_spec], autograph=False)
  def serve_examples(examples: tf.Tensor) -> Dict[str, tf.Tensor]:
    if blend_item_item:
      if approximate:
        scores, columns = approximate_top_k(examples)
      else:
        scores, columns = tf.math.top_k(scores_of(examples), k=top_k)
      return {ITEM_IDS_OUTPUT: tf.gather(module.candidate_item_ids, columns), SCORES_OUTPUT: scores}
    scores, item_ids_topk = module.index(users_and_queries(examples)[1])
    return {ITEM_IDS_OUTPUT: item_ids_topk, SCORES_OUTPUT: scores}

  @tf.function(input_signature=[examples_spec], autograph=False)
  def catalogue_scores(examples: tf.Tensor) -> Dict[str, tf.Tensor]:
    return {SCORES_OUTPUT: scores_of(examples)}

  @tf.function(input_signature=[examples_spec], autograph=False)
  def query_embedding(examples: tf.Tensor) -> Dict[str, tf.Tensor]:
    return {EMBEDDINGS_OUTPUT: users_and_queries(examples)[1]}

  @tf.function(input_signature=[], autograph=False)
  def candidate_embeddings() -> Dict[str, tf.Tensor]:
    return {ITEM_IDS_OUTPUT: tf.identity(module.candidate_item_ids),
            EMBEDDINGS_OUTPUT: tf.identity(module.candidate_embeddings)}

  @tf.function(input_signature=[examples_spec], autograph=False)
  def transform_features(examples: tf.Tensor) -> Dict[str, tf.Tensor]:
    return {k: v for k, v in transformed_users(examples).items() if isinstance(v, tf.Tensor)}

  query_embedding.get_concrete_function()  # builds a query tower that has not been called yet
  module.query_tower_variables = list(query_tower.variables)
  options = None
  if hparams.index == SCANN_INDEX:
    options = tf.saved_model.SaveOptions(namespace_whitelist=[loading.SCANN_OP_NAMESPACE])
  tf.saved_model.save(
      module, export_dir,
      signatures={
          SERVING_SIGNATURE: serve_examples,
          QUERY_EMBEDDING_SIGNATURE: query_embedding,
          CANDIDATE_EMBEDDINGS_SIGNATURE: candidate_embeddings,
          CATALOGUE_SCORES_SIGNATURE: catalogue_scores,
          TRANSFORM_SIGNATURE: transform_features,
      },
      options=options)
