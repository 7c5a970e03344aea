"""TFX Trainer entry point of the ranking model: read data, build, train, export."""

import json
import os
from typing import List, Tuple

import tensorflow as tf
import tensorflow_transform as tft
from absl import logging
from tfx import v1 as tfx

from schema import features
from trainer.common import feature_specs, hyperparameters, inputs
from trainer.ranking import export, hparams as hparams_lib, model as model_lib

# Evaluation batch size (does not affect results).
_EVAL_BATCH_SIZE = 8192


def run_fn(fn_args: tfx.components.FnArgs) -> None:
  """Trains the ranking model and saves it to `fn_args.serving_model_dir`.

  Hyperparameters come from `fn_args.custom_config[hparams.CUSTOM_CONFIG_KEY]` (defaults otherwise). The
  per-epoch training and validation RMSE are written to `<model_run_dir>/history.json`. With
  `validation_fraction` > 0 a slice of the TRAIN split is held out to watch (and, with
  `early_stopping_patience`, to choose the epoch); otherwise the eval split is only watched, never used to choose.
  """
  config = (fn_args.custom_config or {}).get(hparams_lib.CUSTOM_CONFIG_KEY, {})
  hparams = hparams_lib.RankingHyperparameters.from_config(config)
  logging.info('Ranking hyperparameters: %s', hparams)
  tf.keras.utils.set_random_seed(hparams.seed)

  tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
  train_split = inputs.load_split(fn_args.train_files, fn_args.data_accessor, tf_transform_output)
  eval_split = inputs.load_split(fn_args.eval_files, fn_args.data_accessor, tf_transform_output)
  if hparams.validation_fraction:
    train_split, watched_split = carve_validation(train_split, hparams.validation_fraction)
  else:
    watched_split = eval_split

  tower_features = feature_specs.model_features(
      tf_transform_output, hparams.user_features, hparams.item_features, hparams.context_features,
      hparams.user_slope_features)
  model = model_lib.RankingModel(tower_features, hparams, rating_offset=mean_rating(train_split))
  model.compile(optimizer=hyperparameters.build_optimizer(hparams.optimizer, hparams.learning_rate))
  history = model.fit(
      inputs.training_batches(train_split, hparams.batch_size, hparams.seed),
      validation_data=inputs.evaluation_batches(watched_split, _EVAL_BATCH_SIZE),
      epochs=hparams.epochs, verbose=2, callbacks=_early_stopping(hparams))
  if hparams.validation_fraction:
    logging.info('Eval split after training (reported, not used to choose): %s',
                 model.evaluate(inputs.evaluation_batches(eval_split, _EVAL_BATCH_SIZE), return_dict=True,
                                verbose=0))

  export.export_ranking_model(model, tf_transform_output, fn_args.serving_model_dir)
  tf.io.gfile.makedirs(fn_args.model_run_dir)
  with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, 'history.json'), 'w') as f:
    json.dump({k: [float(x) for x in v] for k, v in history.history.items()}, f)


def mean_rating(split: tf.data.Dataset) -> float:
  """Mean label of a split of transformed examples (stars)."""
  label_key = features.transformed_name(features.LABEL_KEY)
  total, count = split.map(lambda x: (x[label_key], 1.0)).reduce(
      (0.0, 0.0), lambda state, row: (state[0] + row[0], state[1] + row[1]))
  if float(count) == 0:
    raise ValueError('The training split holds no examples; check the interactions file and the split.')
  return float(total) / float(count)


def carve_validation(split: tf.data.Dataset, fraction: float) -> Tuple[tf.data.Dataset, tf.data.Dataset]:
  """Holds out every round(1/fraction)-th example of a split (its stored order is already shuffled).

  Returns:
    (the remaining examples, the held-out validation examples), both cached.
  """
  every = max(2, round(1 / fraction))
  indexed = split.enumerate()
  kept = indexed.filter(lambda i, _: i % every != 0).map(lambda _, x: x).cache()
  held_out = indexed.filter(lambda i, _: i % every == 0).map(lambda _, x: x).cache()
  return kept, held_out


def _early_stopping(hparams: hparams_lib.RankingHyperparameters) -> List[tf.keras.callbacks.Callback]:
  if not hparams.early_stopping_patience:
    return []
  return [tf.keras.callbacks.EarlyStopping(monitor='val_rmse', patience=hparams.early_stopping_patience,
                                           restore_best_weights=True)]
