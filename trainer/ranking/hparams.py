"""Ranking model hyperparameters: a frozen dataclass, its named configurations and the custom_config codec."""

import dataclasses
import fractions
from typing import Dict, Optional, Tuple

from schema import features
from trainer.common import inputs
from trainer.common.hyperparameters import (ConfigCodec, check_features_named_once, check_finite_numbers,
                                            check_optimizer, check_seed, check_side_features, choose_configuration)

# Trainer custom_config key holding the ranking hyperparameters (a dict of RankingHyperparameters fields).
CUSTOM_CONFIG_KEY = 'ranking_hyperparameters'


@dataclasses.dataclass(frozen=True)
class RankingHyperparameters(ConfigCodec):
  """Everything that shapes and trains the ranking model.

  Attributes:
    user_features: raw columns the user side encodes; None = user_id and every user_* column.
    item_features: raw columns the item side encodes; None = item_id, every item_* column and the derived
      item_popularity (schema.features.ITEM_POPULARITY).
    context_features: context features (schema.features.CONTEXT_FEATURES) fed to the rating network beside the
      user and item encodings; at serving time they describe the request's moment and the user's recent ratings.
    user_slope_features: context features added to the rating linearly, each with a learned global slope plus a
      per-user slope (an embedding of user_id, initialised to 0): rating += (w_f + s_{u,f}) * x_f. How much a
      user's ratings follow their recent ratings differs from user to user.
    user_slope_l2: L2 penalty on the per-user slopes.
    id_embedding_dim: width of user/item id embeddings.
    feature_embedding_dim: width of the embeddings of other categorical features.
    hidden_units: widths of the ReLU layers of the rating network, input side first.
    cross_layers: deep & cross (DCN-v2) cross layers applied to the user ++ item encoding before the ReLU
      layers (0 disables them).
    cross_projection_dim: rank of the low-rank cross layers' weight; None uses full-rank layers.
    factorization_dim: width of a factorization term added to the rating: the dot product of linear
      projections of the user and the item encodings (0 disables it).
    dropout: dropout rate after each hidden layer (0 disables it).
    retrieval_loss_weight: joint training: the loss adds this weight times the retrieval task's in-batch softmax
      loss on the factorization term's user and item vectors (which of the batch's items each user rated), so
      the vectors also learn *what* users watch, not only how they rate it; 0 disables it. Needs
      factorization_dim > 0. Serving is unchanged (the exported model predicts ratings only).
    retrieval_loss_temperature: the retrieval scores <user, item> are divided by it before the softmax.
    retrieval_remove_accidental_hits: in the retrieval loss, another interaction of the batch with the row's own
      item is not a negative of that row (TFRS's remove_accidental_hits).
    retrieval_popularity_correction: in the retrieval loss, subtract log(the item's share of the training
      interactions) from its scores when training (logQ correction of in-batch negatives, which are popular items
      more often; the loss reported on the watched split leaves it out).
    embedding_l2: L2 penalty on embedding weights.
    bias_terms: add a learned per-user and per-item rating bias to the network's output; each bias is an
      embedding of its side's id, so user_features must include user_id and item_features item_id (or be None).
    optimizer: one of trainer.common.hyperparameters.OPTIMIZERS.
    learning_rate: the optimizer's learning rate.
    batch_size: training examples per step.
    epochs: passes over the training split.
    seed: seed of weight initialisation and shuffling.
    validation_fraction: share of the TRAIN split held out (spread evenly over its canonical order) to choose the
      epoch; 0 trains on all of it for exactly `epochs`. Otherwise in [1e-6, 1/2), both as given and as the
      slice reads it (`trainer.common.inputs.share_as_fraction`). The eval split is never used to choose.
    early_stopping_patience: with a validation slice, stop after this many epochs without a better validation
      RMSE and keep the best epoch's weights; 0 trains `epochs` epochs and keeps the last.
    ensemble_size: models trained alike with seeds seed, seed + 1, ...; the exported model predicts their mean
      rating (each member costs one more training).
    neighbourhood_weight: w in rating = (1 - w) * network + w * item-item neighbourhood model
      (trainer/ranking/neighbourhood.py, fitted in closed form on the training examples after the network);
      0 disables it (unless neighbourhood_weight_choices is set).
    neighbourhood_weight_choices: blend weights (in [0, 1]) the Trainer chooses among, after training, by the
      RMSE on the validation slice (ties: the smallest); needs validation_fraction > 0 and
      neighbourhood_weight = 0. Empty uses neighbourhood_weight as given.
    neighbourhood_k: at most this many of the user's rated items, the most similar to the item, predict it.
    neighbourhood_shrinkage: pseudo-count shrinking item similarities supported by few common users towards 0.
    neighbourhood_candidates: similar items kept per item (the k neighbours are looked for among them).
  """
  user_features: Optional[Tuple[str, ...]] = None
  item_features: Optional[Tuple[str, ...]] = None
  context_features: Tuple[str, ...] = ()
  user_slope_features: Tuple[str, ...] = ()
  user_slope_l2: float = 1e-3
  id_embedding_dim: int = 32
  feature_embedding_dim: int = 8
  hidden_units: Tuple[int, ...] = (256, 64)
  cross_layers: int = 0
  cross_projection_dim: Optional[int] = None
  factorization_dim: int = 0
  dropout: float = 0.0
  retrieval_loss_weight: float = 0.0
  retrieval_loss_temperature: float = 1.0
  retrieval_remove_accidental_hits: bool = False
  retrieval_popularity_correction: bool = False
  embedding_l2: float = 1e-4
  bias_terms: bool = True
  optimizer: str = 'adam'
  learning_rate: float = 1e-3
  batch_size: int = 1024
  epochs: int = 10
  seed: int = 42
  validation_fraction: float = 0.0
  early_stopping_patience: int = 0
  ensemble_size: int = 1
  neighbourhood_weight: float = 0.0
  neighbourhood_weight_choices: Tuple[float, ...] = ()
  neighbourhood_k: int = 40
  neighbourhood_shrinkage: float = 100.0
  neighbourhood_candidates: int = 400

  def __post_init__(self) -> None:
    check_finite_numbers(self)
    check_optimizer(self.optimizer)
    # The user and item encodings are the factorization term's vectors and joint training's retrieval towers: an
    # item column on the user side would hand the user's vector the row's own item.
    check_side_features(self, 'side', f'context features such as {features.RECENT_RATING!r} go in context_features')
    check_features_named_once(self, ('user_features', 'item_features', 'context_features', 'user_slope_features'))
    for name in ('id_embedding_dim', 'feature_embedding_dim', 'batch_size', 'epochs', 'ensemble_size',
                 'neighbourhood_k', 'neighbourhood_candidates'):
      if getattr(self, name) < 1:
        raise ValueError(f'{name}={getattr(self, name)} must be a positive integer.')
    check_seed(self.seed, models=self.ensemble_size)  # member k trains with seed + k
    if self.learning_rate <= 0:
      raise ValueError(f'learning_rate={self.learning_rate} must be positive.')
    if not 0.0 <= self.dropout < 1.0:
      raise ValueError(f'dropout={self.dropout} must be in [0, 1).')
    if self.factorization_dim < 0:
      raise ValueError(f'factorization_dim={self.factorization_dim} must be >= 0 (0 disables the term).')
    if self.retrieval_loss_weight < 0:
      raise ValueError(f'retrieval_loss_weight={self.retrieval_loss_weight} must be >= 0 (0 disables joint '
                       'training).')
    if self.retrieval_loss_weight and not self.factorization_dim:
      raise ValueError(f'retrieval_loss_weight={self.retrieval_loss_weight} trains the factorization term\'s '
                       'vectors on the retrieval task: set factorization_dim > 0 (e.g. 32), or the weight to 0.')
    for name in ('retrieval_remove_accidental_hits', 'retrieval_popularity_correction'):
      if getattr(self, name) and not self.retrieval_loss_weight:
        raise ValueError(f'{name}=True shapes the retrieval loss of joint training, which is off: set '
                         'retrieval_loss_weight > 0 (e.g. 1.0), or leave the option False.')
    if self.retrieval_loss_temperature <= 0:
      raise ValueError(f'retrieval_loss_temperature={self.retrieval_loss_temperature} must be positive.')
    if self.cross_layers < 0:
      raise ValueError(f'cross_layers={self.cross_layers} must be >= 0 (0 disables deep & cross).')
    if self.cross_projection_dim is not None and self.cross_projection_dim < 1:
      raise ValueError(f'cross_projection_dim={self.cross_projection_dim} must be a positive integer or None.')
    if not (self.validation_fraction == 0.0 or 1e-6 <= self.validation_fraction < 0.5):
      raise ValueError(f'validation_fraction={self.validation_fraction} must be 0 (no validation slice) or in '
                       '[1e-06, 0.5).')
    if self.validation_fraction and inputs.share_as_fraction(self.validation_fraction) >= fractions.Fraction(1, 2):
      raise ValueError(f'validation_fraction={self.validation_fraction} is read as '
                       f'{inputs.share_as_fraction(self.validation_fraction)} when the slice is carved (the nearest '
                       'fraction with a denominator of at most 10^6), which holds out half the training split: give a '
                       'share below 0.4999997 (e.g. 0.05).')
    if self.early_stopping_patience < 0:
      raise ValueError(f'early_stopping_patience={self.early_stopping_patience} must be >= 0.')
    if self.early_stopping_patience and not self.validation_fraction:
      raise ValueError(f'early_stopping_patience={self.early_stopping_patience} needs a validation slice: set '
                       'validation_fraction > 0 (e.g. 0.05).')
    for name in ('context_features', 'user_slope_features'):
      unknown = [f for f in getattr(self, name) if f not in features.CONTEXT_FEATURES]
      if unknown:
        raise ValueError(f'{name} names {unknown}, which are not context features; choose among '
                         f'{list(features.CONTEXT_FEATURES)}.')
    if self.user_slope_l2 < 0:
      raise ValueError(f'user_slope_l2={self.user_slope_l2} must be >= 0.')
    if self.embedding_l2 < 0:  # a negative penalty rewards ever larger embeddings
      raise ValueError(f'embedding_l2={self.embedding_l2} must be >= 0 (0 disables the penalty).')
    if self.user_slope_features and self.user_features is not None and features.USER_ID not in self.user_features:
      raise ValueError(f'user_slope_features={self.user_slope_features} needs per-user slopes, so user_features '
                       f'must include {features.USER_ID!r} (or be None).')
    if self.bias_terms:
      check_bias_ids(self)
    if not 0.0 <= self.neighbourhood_weight <= 1.0:
      raise ValueError(f'neighbourhood_weight={self.neighbourhood_weight} must be in [0, 1] (0 disables the '
                       'neighbourhood model).')
    if self.neighbourhood_weight_choices:
      if any(not 0.0 <= w <= 1.0 for w in self.neighbourhood_weight_choices):
        raise ValueError(f'neighbourhood_weight_choices={self.neighbourhood_weight_choices} must hold weights in '
                         '[0, 1].')
      if not self.validation_fraction:
        raise ValueError(f'neighbourhood_weight_choices={self.neighbourhood_weight_choices} are chosen among on a '
                         'validation slice: set validation_fraction > 0 (e.g. 0.05), or give neighbourhood_weight '
                         'instead.')
      if self.neighbourhood_weight:
        raise ValueError(f'neighbourhood_weight={self.neighbourhood_weight} and neighbourhood_weight_choices='
                         f'{self.neighbourhood_weight_choices} are both set; set one (the other to 0 / []).')
    if self.neighbourhood_shrinkage < 0:
      raise ValueError(f'neighbourhood_shrinkage={self.neighbourhood_shrinkage} must be >= 0.')
    if any(units < 1 for units in self.hidden_units):
      raise ValueError(f'hidden_units={self.hidden_units} must hold positive integers.')


def check_bias_ids(hparams: RankingHyperparameters) -> None:
  """Raises ValueError unless each side of `hparams` (bias_terms on) encodes its id: the per-user and per-item
  biases are embeddings of user_id and item_id, and a side without its id would train without its bias.

  Raises:
    ValueError: naming bias_terms, the side's feature list and the two fixes.
  """
  for name, id_key, side in (('user_features', features.USER_ID, 'user'),
                             ('item_features', features.ITEM_ID, 'item')):
    requested = getattr(hparams, name)
    if requested is not None and id_key not in requested:
      raise ValueError(f'bias_terms=True adds a per-{side} rating bias, an embedding of {id_key!r}, but {name}='
                       f'{list(requested)} does not include {id_key!r}: add {id_key!r} to {name} (or set {name} to '
                       'null), or set bias_terms to false.')


# The seed notebook's model: user id and movie title embeddings of 32, Dense 256-64-1, MSE, Adagrad 0.1,
# batch 8192, 3 epochs.
SEED_NOTEBOOK = RankingHyperparameters(
    user_features=(features.USER_ID,),
    item_features=(features.ITEM_TITLE,),
    id_embedding_dim=32,
    feature_embedding_dim=32,
    hidden_units=(256, 64),
    embedding_l2=0.0,
    bias_terms=False,
    optimizer='adagrad',
    learning_rate=0.1,
    batch_size=8192,
    epochs=3,
)

# Chosen on the canonical split (docs/quality.md lists the runs): a factorization term of width 32; the epoch is
# chosen by early stopping (patience 3) on 5% of the TRAIN split, never on eval. L2 3e-3 on the embeddings had
# the best validation RMSE over seeds 42/7/1 among 3e-4, 1e-3, 3e-3 and 1e-2 (with the item_popularity input).
# The user's recent rating with a per-user slope lowered the validation RMSE with every seed tried (42: 0.8886 ->
# 0.8840, 7: 0.8873 -> 0.8857), a slope on the interaction time as well lowered it again (0.8821, 0.8840); slope
# L2 1e-4 and 1e-3 tie on validation, 1e-2 is worse. Deep & cross layers (1 or 2), deeper towers, dropout and the
# recent rating as a rating-network input did not lower the RMSE and are left off; a two-member ensemble did
# (validation 0.8810 / 0.8799) but adds a training to every run and is left as an option. Blending in the item-item
# neighbourhood model with weight 0.35 had the best validation RMSE with each of seeds 42 / 7 / 1 among 0, 0.1, 0.2,
# 0.25 ... 0.5 and 1 (0.8878 -> 0.8788, 0.8866 -> 0.8758, 0.8895 -> 0.8792); the Trainer chooses the weight on the
# validation slice of the data it trains on (0.35 on MovieLens, 0.3 with joint training), so other data gets its
# own. Joint training with the retrieval task on the factorization vectors (weight 1, temperature 0.1) lowered the
# validation RMSE of the blend with each seed (0.8788 -> 0.8708, 0.8758 -> 0.8678, 0.8792 -> 0.8724; grid of
# weights 0.1-3 and temperatures 0.05-1 on seed 42 in docs/quality.md).
DEFAULT = RankingHyperparameters(factorization_dim=32, embedding_l2=3e-3, epochs=30, validation_fraction=0.05,
                                 early_stopping_patience=3,
                                 user_slope_features=(features.RECENT_RATING, features.INTERACTION_TIME),
                                 user_slope_l2=1e-3,
                                 neighbourhood_weight_choices=(0.0, 0.1, 0.2, 0.3, 0.35, 0.4, 0.5),
                                 retrieval_loss_weight=1.0, retrieval_loss_temperature=0.1)

NAMED_CONFIGURATIONS: Dict[str, RankingHyperparameters] = {
    'default': DEFAULT,
    'seed': SEED_NOTEBOOK,
}


def named_configuration(name: str) -> RankingHyperparameters:
  """Returns the ranking configuration called `name` (ValueError listing the known ones otherwise)."""
  return choose_configuration(NAMED_CONFIGURATIONS, name, 'ranking')
