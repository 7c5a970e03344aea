"""TFX Trainer entry point of the retrieval model: read pairs and catalogue, build, train, evaluate, export.

The Trainer's `examples` input is ExampleGen's raw examples and `transform_graph` the Transform output; see
`trainer.retrieval.candidates` for why.
"""

import dataclasses
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from absl import logging
from tfx import v1 as tfx

from schema import features
from serving import assets as serving_assets
from trainer.common import feature_specs, hyperparameters, inputs
from trainer.common.run_files import (EVALUATION_FILE, HISTORY_FILE, ITEM_ITEM_FILE, history_json, run_file_json,
                                      write_texts)
from trainer.retrieval import candidates as candidates_lib
from trainer.retrieval import export, hparams as hparams_lib, item_item as item_item_lib, model as model_lib

# Evaluation batch size (does not affect results).
_EVAL_BATCH_SIZE = 1024


def run_fn(fn_args: tfx.components.FnArgs) -> None:
  """Trains the retrieval model and saves it, with its candidate index, to `fn_args.serving_model_dir`.

  Hyperparameters come from `fn_args.custom_config[hparams.CUSTOM_CONFIG_KEY]` (`{}`: the defaults; a missing key
  is refused, `hyperparameters.from_custom_config`). The per-epoch training loss goes to
  `<model_run_dir>/history.json` (a NaN or infinite epoch as null), the final evaluation's FactorizedTopK
  accuracies (the two towers alone) to `<model_run_dir>/evaluation.json`, and with item-item scores their weight,
  penalty and coverage to `<model_run_dir>/item_item.json`.

  Raises:
    ValueError: before training, for a custom_config without the hyperparameters, bad hyperparameters, an empty
      training or evaluation split, or ScaNN on a catalogue too small for it; after training, from the export (`export.export_retrieval_model`).
    ImportError: before reading the data, for ScaNN without the `scann` package.
  """
  hparams = hyperparameters.from_custom_config(hparams_lib.RetrievalHyperparameters, fn_args.custom_config,
                                               hparams_lib.CUSTOM_CONFIG_KEY)
  logging.info('Retrieval hyperparameters: %s', hparams)
  export.check_index_available(hparams)  # before training, not at the export
  tf.keras.utils.set_random_seed(hparams.seed)

  tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
  transform_layer = tf_transform_output.transform_features_layer()
  train_pairs = inputs.in_memory(
      candidates_lib.transformed_pairs(fn_args.train_files, tf_transform_output, transform_layer))
  if not train_pairs.num_rows:
    raise ValueError(f'The training split ({list(fn_args.train_files)}) holds no interactions; check the '
                     'interactions file and the split.')
  # In canonical order, so the shuffle does not depend on how Beam stored the examples.
  train_pairs = inputs.in_canonical_order(train_pairs)
  eval_pairs = inputs.in_memory(
      candidates_lib.transformed_pairs(fn_args.eval_files, tf_transform_output, transform_layer))
  if not eval_pairs.num_rows:
    raise ValueError(f'The evaluation split ({list(fn_args.eval_files)}) holds no interactions to evaluate the '
                     'towers on; check the interactions file and the split.')
  catalogue = candidates_lib.catalogue_examples(list(fn_args.train_files) + list(fn_args.eval_files))
  logging.info('Retrieval catalogue: %d items.', int(catalogue.shape[0]))
  export.check_index_fits_catalogue(hparams, int(catalogue.shape[0]))  # before training, not at the export

  tower_features = feature_specs.model_features(
      tf_transform_output, hparams.user_features, hparams.item_features)
  model, history = train_retrieval_model(train_pairs, tower_features, hparams)

  item_ids, item_embeddings = export.embed_catalogue(model.candidate_tower, catalogue, tf_transform_output,
                                                     transform_layer)
  num_items = int(item_ids.shape[0])
  ks = sorted({min(k, num_items) for k in model_lib.TOP_K_METRIC_CUTOFFS})
  model.measure_top_k_against(
      export.candidate_index(item_ids, item_embeddings, dataclasses.replace(
          hparams, index=hparams_lib.BRUTE_FORCE_INDEX, top_k=max(ks))), ks)
  evaluation = model.evaluate(inputs.evaluation_batches(eval_pairs, _EVAL_BATCH_SIZE), return_dict=True,
                              verbose=2)
  logging.info('Retrieval evaluation of the two towers (FactorizedTopK, seen items kept): %s', evaluation)

  item_item, item_item_record = None, None
  if hparams.item_item_weight > 0:
    item_item, item_item_record = fit_item_item(fn_args.train_files, item_ids.numpy(), hparams)
  export.export_retrieval_model(model.query_tower, item_ids, item_embeddings, tf_transform_output, hparams,
                                fn_args.serving_model_dir, item_item=item_item)
  # Catalogue, users' profiles and seen items, popularity: in assets.extra/, pushed with this version.
  serving_assets.write_serving_assets(fn_args.train_files, list(fn_args.train_files) + list(fn_args.eval_files),
                                      serving_assets.assets_dir_of(fn_args.serving_model_dir))
  write_run_files(fn_args.model_run_dir, history.history, evaluation, item_item_record)


def write_run_files(model_run_dir: str, history: Dict[str, List[float]], evaluation: Dict[str, float],
                    item_item_record: Optional[Dict[str, Any]]) -> None:
  """Writes what the run report reads about this training into `model_run_dir` (created if missing).

  Args:
    model_run_dir: the Trainer's ModelRun directory.
    history: Keras history, metric -> per-epoch values: HISTORY_FILE, the ranking trainer's shape, which the run
      report draws; a NaN or infinite epoch (a loss that diverged) is written as null (`run_files.history_json`).
    evaluation: the one evaluation after training, metric -> value: EVALUATION_FILE; a NaN or infinite value
      (e.g. the loss of a diverged model) is written as null (`run_files.run_file_json`), as in the other files.
    item_item_record: the item-item scores' weight, penalty and coverage (ITEM_ITEM_FILE), None without them.
  """
  texts = {HISTORY_FILE: history_json(history),
           EVALUATION_FILE: run_file_json({k: float(v) for k, v in evaluation.items()})}
  if item_item_record is not None:
    texts[ITEM_ITEM_FILE] = run_file_json(item_item_record)
  write_texts(model_run_dir, texts)


def train_retrieval_model(train_pairs: inputs.InMemorySplit, tower_features: feature_specs.TowerFeatures,
                          hparams: hparams_lib.RetrievalHyperparameters
                          ) -> Tuple[model_lib.RetrievalModel, tf.keras.callbacks.History]:
  """Builds, compiles and fits the two towers on the training pairs (`candidates.transformed_pairs`, in memory).

  Returns:
    (the trained model, its Keras history: per-epoch training loss).
  """
  sampling_probability = None
  if hparams.sampling_bias_correction:
    sampling_probability = candidates_lib.item_shares(train_pairs, _item_id_spec(tower_features).input_dim)
  model = model_lib.RetrievalModel(tower_features, hparams, item_sampling_probability=sampling_probability)
  model.compile(optimizer=hyperparameters.build_optimizer(hparams.optimizer, hparams.learning_rate))
  history = model.fit(inputs.training_batches(train_pairs, hparams.batch_size, hparams.seed),
                      epochs=hparams.epochs, verbose=2)
  return model, history


def fit_item_item(train_files: List[str], item_ids: np.ndarray, hparams: hparams_lib.RetrievalHyperparameters
                  ) -> Tuple[item_item_lib.ItemItemScorer, Dict]:
  """The item-item scorer of the users' training items over the catalogue `item_ids`, and its ModelRun record."""
  histories = item_item_lib.read_histories(train_files, item_ids)
  scorer = item_item_lib.ItemItemScorer.fit(histories, len(item_ids), hparams.item_item_l2,
                                            hparams.item_item_max_items)
  record = {'weight': hparams.item_item_weight, 'l2': hparams.item_item_l2,
            'max_items': hparams.item_item_max_items, 'users': len(histories.user_ids),
            'interactions': int(histories.item_columns.size), 'covered_items': scorer.num_covered,
            'catalogue_items': len(item_ids)}
  logging.info('Item-item retrieval scores: %s', record)
  return scorer, record


def _item_id_spec(tower_features: feature_specs.TowerFeatures) -> feature_specs.FeatureSpec:
  """The item id feature of the candidate tower (its vocabulary size bounds the sampling probabilities).

  Raises:
    ValueError: if the candidate tower does not encode `item_id` (sampling-bias correction needs it).
  """
  for spec in tower_features.item:
    if spec.raw_key == features.ITEM_ID:
      return spec
  raise ValueError(f'sampling_bias_correction needs {features.ITEM_ID!r} among item_features; add it or set '
                   'sampling_bias_correction=False.')

