"""TFX Trainer entry point of the ranking model: read data, build, train, export."""

import dataclasses
import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from absl import logging
from tfx import v1 as tfx

from schema import features
from trainer.common import feature_specs, hyperparameters, inputs
from trainer.common.run_files import BLEND_FILE, HISTORY_FILE, history_json, run_file_json, write_texts
from trainer.ranking import export, hparams as hparams_lib, model as model_lib, neighbourhood
from trainer.retrieval import candidates

# Evaluation batch size. It does not affect the RMSE; it does affect the validation loss of joint training (the
# in-batch softmax's negatives are the batch's items), which nothing chooses by.
_EVAL_BATCH_SIZE = 8192

# Keras training history: metric name -> one value per epoch.
History = Dict[str, List[float]]


@dataclasses.dataclass(frozen=True)
class BlendChoice:
  """The neighbourhood blend weight the Trainer used.

  Attributes:
    weight: w in (1 - w) * network + w * neighbourhood model (0: the network alone).
    validation_rmse: each candidate weight's RMSE (stars) on the validation slice; empty for a fixed weight.
  """
  weight: float
  validation_rmse: Dict[float, float]

  def to_json(self) -> Dict:
    """{'weight': w, 'validation_rmse': [[weight, rmse], ...] in the order tried}."""
    return {'weight': self.weight, 'validation_rmse': [[w, r] for w, r in self.validation_rmse.items()]}


def run_fn(fn_args: tfx.components.FnArgs) -> None:
  """Trains the ranking model and saves it to `fn_args.serving_model_dir`.

  Hyperparameters come from `fn_args.custom_config[hparams.CUSTOM_CONFIG_KEY]`, which `pipeline.create_pipeline`
  always sets (`{}` there trains the defaults). The per-epoch training and validation RMSE are written to
  `<model_run_dir>/history.json`, the neighbourhood blend's weight (and each candidate's validation RMSE) to
  `<model_run_dir>/neighbourhood_blend.json` (`write_run_files`; in both a NaN or infinite value is null). With
  `validation_fraction` > 0 a slice of the TRAIN split is held out to watch (and, with
  `early_stopping_patience`, to choose the epoch); otherwise the eval split is only watched, never used to choose.

  Raises:
    ValueError: before reading any data, if the custom_config lacks the hyperparameters key or holds bad
      hyperparameters (`hyperparameters.from_custom_config`).
  """
  hparams = hyperparameters.from_custom_config(hparams_lib.RankingHyperparameters, fn_args.custom_config,
                                               hparams_lib.CUSTOM_CONFIG_KEY)
  logging.info('Ranking hyperparameters: %s', hparams)

  tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
  # In canonical order, so the validation slice and the shuffle do not depend on how Beam stored the examples.
  train_split = inputs.in_canonical_order(
      inputs.load_split(fn_args.train_files, fn_args.data_accessor, tf_transform_output))
  eval_split = inputs.load_split(fn_args.eval_files, fn_args.data_accessor, tf_transform_output)
  if hparams.validation_fraction:
    train_split, watched_split = carve_validation(train_split, hparams.validation_fraction)
  else:
    watched_split = eval_split

  tower_features = feature_specs.model_features(
      tf_transform_output, hparams.user_features, hparams.item_features, hparams.context_features,
      hparams.user_slope_features)
  network, history = train_network(train_split, watched_split, tower_features, hparams)
  model, blend = blend_with_neighbourhood(network, train_split, watched_split, hparams)
  if hparams.validation_fraction:
    logging.info('Eval split RMSE after training (reported, not used to choose): %.4f', rmse(model, eval_split))

  export.export_ranking_model(model, tf_transform_output, fn_args.serving_model_dir)
  write_run_files(fn_args.model_run_dir, history, blend)


def write_run_files(model_run_dir: str, history: History, blend: Optional[BlendChoice]) -> None:
  """Writes what the run report reads about this training into `model_run_dir` (created if missing).

  Both files are strict JSON, a NaN or infinite value (a diverged epoch; a candidate weight whose blend predicts
  NaN) written as null (`run_files.run_file_json`), which readers show as "n/a".

  Args:
    model_run_dir: the Trainer's ModelRun directory.
    history: Keras history, metric -> per-epoch values: HISTORY_FILE.
    blend: the neighbourhood blend weight and each candidate's validation RMSE: BLEND_FILE; None (blend off)
      writes no BLEND_FILE.
  """
  texts = {HISTORY_FILE: history_json(history)}
  if blend is not None:
    texts[BLEND_FILE] = run_file_json(blend.to_json())
  write_texts(model_run_dir, texts)


def train_ranking_model(train_split: inputs.InMemorySplit, watched_split: inputs.InMemorySplit,
                        tower_features: feature_specs.TowerFeatures,
                        hparams: hparams_lib.RankingHyperparameters) -> Tuple[tf.keras.Model, History]:
  """The network trained (`train_network`), blended with the neighbourhood model (`blend_with_neighbourhood`).

  Returns:
    (the exported model: network or blend; the network's Keras history).
  """
  network, history = train_network(train_split, watched_split, tower_features, hparams)
  return blend_with_neighbourhood(network, train_split, watched_split, hparams)[0], history


def train_network(train_split: inputs.InMemorySplit, watched_split: inputs.InMemorySplit,
                  tower_features: feature_specs.TowerFeatures,
                  hparams: hparams_lib.RankingHyperparameters) -> Tuple[tf.keras.Model, History]:
  """Trains `hparams.ensemble_size` members (seeds seed, seed + 1, ...) and returns the model and its history.

  Args:
    train_split: transformed training examples, one row per interaction.
    watched_split: the examples whose RMSE is watched each epoch (and chooses the epoch with early stopping).
    tower_features: the model's inputs.
    hparams: the hyperparameters.

  Returns:
    (the single member, or a RatingEnsemble averaging the members; Keras history metric -> per-epoch values, keys
    of member k > 0 prefixed `member<k>_` after any `val_`).
  """
  rating_offset = mean_rating(train_split)
  log_q = item_log_probabilities(train_split) if hparams.retrieval_popularity_correction else None
  members: List[model_lib.RankingModel] = []
  history: History = {}
  for k in range(hparams.ensemble_size):
    # One model each: with ensemble_size kept, the checks would refuse member k's seed + k near MAX_SEED (the
    # seeds of every member were checked with `hparams`), after the members before it had trained.
    member_hparams = dataclasses.replace(hparams, seed=hparams.seed + k, ensemble_size=1)
    tf.keras.utils.set_random_seed(member_hparams.seed)
    member = model_lib.RankingModel(tower_features, member_hparams, rating_offset, log_q)
    member.compile(optimizer=hyperparameters.build_optimizer(hparams.optimizer, hparams.learning_rate))
    fitted = member.fit(
        inputs.training_batches(train_split, hparams.batch_size, member_hparams.seed),
        validation_data=inputs.evaluation_batches(watched_split, _EVAL_BATCH_SIZE),
        epochs=hparams.epochs, verbose=2, callbacks=_early_stopping(hparams))
    members.append(member)
    history.update({_member_key(key, k): [float(x) for x in values] for key, values in fitted.history.items()})
  return (members[0] if len(members) == 1 else model_lib.RatingEnsemble(members)), history


def blend_with_neighbourhood(network: tf.keras.Model, train_split: inputs.InMemorySplit,
                             watched_split: inputs.InMemorySplit, hparams: hparams_lib.RankingHyperparameters
                             ) -> Tuple[tf.keras.Model, Optional[BlendChoice]]:
  """Blends the trained network with the neighbourhood model fitted on `train_split`, as `hparams` say.

  With `neighbourhood_weight_choices` the weight is chosen on `watched_split` (the validation slice); otherwise
  `neighbourhood_weight` is used.

  Returns:
    (the network, or a NeighbourhoodBlend; the weight used and how it was chosen, None when the blend is off).
  """
  if not hparams.neighbourhood_weight and not hparams.neighbourhood_weight_choices:
    return network, None
  neighbourhood_model = fit_neighbourhood(train_split, hparams)
  choice = BlendChoice(weight=hparams.neighbourhood_weight, validation_rmse={})
  if hparams.neighbourhood_weight_choices:
    choice = BlendChoice(*choose_neighbourhood_weight(network, neighbourhood_model, watched_split,
                                                      hparams.neighbourhood_weight_choices))
    logging.info('Neighbourhood blend weight %s chosen on the validation slice; RMSE by weight: %s', choice.weight,
                 choice.validation_rmse)
  if not choice.weight:
    return network, choice
  return neighbourhood.NeighbourhoodBlend(network, neighbourhood_model, choice.weight), choice


def choose_neighbourhood_weight(rating_model: tf.keras.Model, neighbourhood_model: neighbourhood.NeighbourhoodRating,
                                split: inputs.InMemorySplit,
                                weights: Sequence[float]) -> Tuple[float, Dict[float, float]]:
  """The blend weight with the lowest RMSE on `split` (ties: the smallest), and the RMSE of every weight.

  Raises:
    ValueError: if `split` holds no examples.
  """
  rmse_by_weight = blend_rmse_by_weight(rating_model, neighbourhood_model, split, weights)
  return min(rmse_by_weight, key=lambda w: (rmse_by_weight[w], w)), rmse_by_weight


def blend_rmse_by_weight(rating_model: tf.keras.Model, neighbourhood_model: neighbourhood.NeighbourhoodRating,
                         split: inputs.InMemorySplit, weights: Sequence[float]) -> Dict[float, float]:
  """RMSE (stars) on `split` of (1 - w) * rating_model + w * neighbourhood_model, for each weight w.

  Raises:
    ValueError: if `split` holds no examples.
  """
  label_key = features.transformed_name(features.LABEL_KEY)
  network, neighbours, labels = [], [], []
  for batch in inputs.evaluation_batches(split, _EVAL_BATCH_SIZE):
    network.append(tf.reshape(rating_model(batch), [-1]).numpy())
    neighbours.append(tf.reshape(neighbourhood_model(batch), [-1]).numpy())
    labels.append(tf.reshape(batch[label_key], [-1]).numpy())
  if not labels:
    raise ValueError('The validation slice holds no examples to choose the neighbourhood weight on.')
  network, neighbours, labels = (np.concatenate(x).astype(np.float64) for x in (network, neighbours, labels))
  return {float(w): neighbourhood.blend_rmse(network, neighbours, labels, w) for w in weights}


def fit_neighbourhood(train_split: inputs.InMemorySplit,
                      hparams: hparams_lib.RankingHyperparameters) -> neighbourhood.NeighbourhoodRating:
  """The item-item neighbourhood model fitted on the training examples' user_id, item_id and rating."""
  columns = train_split.columns
  tables = neighbourhood.fit_tables(
      columns[features.transformed_name(features.USER_ID)].numpy().reshape(-1),
      columns[features.transformed_name(features.ITEM_ID)].numpy().reshape(-1),
      columns[features.transformed_name(features.LABEL_KEY)].numpy().reshape(-1),
      hparams.neighbourhood_shrinkage, hparams.neighbourhood_candidates)
  return neighbourhood.NeighbourhoodRating(tables, hparams.neighbourhood_k, name='neighbourhood')


def _member_key(key: str, member: int) -> str:
  """History key of ensemble member `member`: 'rmse' -> 'member1_rmse', 'val_rmse' -> 'val_member1_rmse'."""
  if member == 0:
    return key
  if key.startswith('val_'):
    return f'val_member{member}_{key[len("val_"):]}'
  return f'member{member}_{key}'


def rmse(model: tf.keras.Model, split: inputs.InMemorySplit) -> float:
  """Root mean squared error (stars) of `model`'s predicted ratings on a split of transformed examples.

  Raises:
    ValueError: if `split` holds no examples.
  """
  label_key = features.transformed_name(features.LABEL_KEY)
  squared, count = 0.0, 0
  for batch in inputs.evaluation_batches(split, _EVAL_BATCH_SIZE):
    errors = tf.reshape(model(batch), [-1]) - tf.reshape(batch[label_key], [-1])
    squared += float(tf.reduce_sum(tf.square(errors)))
    count += int(tf.size(errors))
  if not count:
    raise ValueError('The split holds no examples to compute an RMSE on.')
  return math.sqrt(squared / count)


def item_log_probabilities(split: inputs.InMemorySplit) -> tf.Tensor:
  """log(share of the split's examples that are of item i), float32 `[max item index + 1]` (log(1/N) for an item
  index without examples: such items are in no training batch)."""
  item_ids = split.columns[features.transformed_name(features.ITEM_ID)]
  shares = candidates.item_shares(split, int(tf.reduce_max(item_ids)) + 1)
  return tf.constant(np.log(np.maximum(shares, 1.0 / split.num_rows)), tf.float32)


def mean_rating(split: inputs.InMemorySplit) -> float:
  """Mean label of a split of transformed examples (stars, summed in float64)."""
  if not split.num_rows:
    raise ValueError('The training split holds no examples; check the interactions file and the split.')
  labels = split.columns[features.transformed_name(features.LABEL_KEY)]
  return float(tf.reduce_mean(tf.cast(labels, tf.float64)))


def carve_validation(split: inputs.InMemorySplit,
                     fraction: float) -> Tuple[inputs.InMemorySplit, inputs.InMemorySplit]:
  """Holds out `fraction` of a split's examples, spread evenly over its canonical order (ordered by a hash of each row).

  0.05 holds out rows 0, 20, 40, ...; 0.3 three rows in every ten (`inputs.split_off_share`).

  Returns:
    (the remaining examples, the held-out validation examples).

  Raises:
    ValueError: naming validation_fraction, if the slice would take every example (a split of one: row 0 is always
      held out), which left nothing to train on.
  """
  remaining, validation = inputs.split_off_share(split, fraction)
  if split.num_rows and not remaining.num_rows:
    raise ValueError(f'validation_fraction={fraction} holds out all {split.num_rows} example(s) of the training '
                     'split (the validation slice always takes its first), leaving none to train on: set '
                     'validation_fraction to 0, or train on more examples.')
  return remaining, validation


def _early_stopping(hparams: hparams_lib.RankingHyperparameters) -> List[tf.keras.callbacks.Callback]:
  """Keras callbacks of `early_stopping_patience` on the watched split's RMSE (none when it is 0)."""
  if not hparams.early_stopping_patience:
    return []
  return [tf.keras.callbacks.EarlyStopping(monitor='val_rmse', patience=hparams.early_stopping_patience,
                                           restore_best_weights=True)]
