"""Retrieval model hyperparameters: a frozen dataclass, its named configurations and the custom_config codec."""

import dataclasses
from typing import Dict, Optional, Tuple

from schema import features
from trainer.common.hyperparameters import (ConfigCodec, check_features_named_once, check_finite_numbers,
                                            check_optimizer, check_seed, check_side_features, choose_configuration)

# Trainer custom_config key holding the retrieval hyperparameters (a dict of RetrievalHyperparameters fields).
CUSTOM_CONFIG_KEY = 'retrieval_hyperparameters'
# Candidate indexes the export can hold: exact scoring of every item (stock TF Serving) or ScaNN (needs a
# ScaNN-enabled TF Serving build).
BRUTE_FORCE_INDEX = 'brute_force'
SCANN_INDEX = 'scann'
INDEXES = (BRUTE_FORCE_INDEX, SCANN_INDEX)


@dataclasses.dataclass(frozen=True)
class RetrievalHyperparameters(ConfigCodec):
  """Everything that shapes, trains and exports the two-tower retrieval model.

  Attributes:
    user_features: raw columns the query tower encodes; None = user_id and every user_* column.
    item_features: raw columns the candidate tower encodes; None = item_id, every item_* column and the derived
      item_popularity (schema.features.ITEM_POPULARITY).
    id_embedding_dim: width of user/item id embeddings.
    feature_embedding_dim: width of the embeddings of other categorical features.
    hidden_units: widths of the ReLU layers of each tower, input side first (may be empty).
    embedding_dim: width of the query and candidate embeddings the towers output.
    normalize_embeddings: L2-normalise both embeddings, so scores are cosines scaled by 1/temperature.
    temperature: the in-batch softmax's logits are divided by this (smaller = sharper).
    remove_accidental_hits: do not count other rows of the batch with the same item as negatives.
    sampling_bias_correction: subtract log(item's share of training interactions) from its logits, so the
      scores keep the popularity signal in-batch negatives otherwise remove.
    embedding_l2: L2 penalty on embedding weights.
    optimizer: one of trainer.common.hyperparameters.OPTIMIZERS.
    learning_rate: the optimizer's learning rate.
    batch_size: training examples per step (also the number of in-batch negatives + 1).
    epochs: passes over the training split.
    seed: seed of weight initialisation and shuffling.
    top_k: candidates the exported `serving_default` returns per query (K).
    index: the exported candidate index, one of INDEXES.
    scann_num_leaves: ScaNN partitions (index='scann'); at most the number of catalogue items.
    scann_num_leaves_to_search: ScaNN partitions searched per query.
    item_item_weight: weight of the item-item (EASE) score of the user's training items added to the two-tower
      score of unseen items in the export (trainer.retrieval.item_item); 0 = the two-tower score alone. With
      index='scann' ScaNN's candidates by the towers and the best item-item candidates are re-scored together.
    item_item_l2: EASE's ridge penalty on XᵀX's diagonal.
    item_item_max_items: the most items the item-item model covers (those with the most training users; the
      others are ranked by the two-tower score alone). Its weights are 4 · n² bytes in the SavedModel and the
      fit holds about 3 · 8 · n² bytes (n = covered items): 10,000 items, 400 MB and a 4.1 GB peak.
  """
  user_features: Optional[Tuple[str, ...]] = None
  item_features: Optional[Tuple[str, ...]] = None
  id_embedding_dim: int = 64
  feature_embedding_dim: int = 16
  hidden_units: Tuple[int, ...] = ()
  embedding_dim: int = 64
  normalize_embeddings: bool = True
  temperature: float = 0.05
  remove_accidental_hits: bool = True
  sampling_bias_correction: bool = True
  embedding_l2: float = 0.0
  optimizer: str = 'adam'
  learning_rate: float = 0.01
  batch_size: int = 1024
  epochs: int = 3
  seed: int = 42
  top_k: int = 100
  index: str = BRUTE_FORCE_INDEX
  scann_num_leaves: int = 40
  scann_num_leaves_to_search: int = 10
  item_item_weight: float = 1.0
  item_item_l2: float = 500.0
  item_item_max_items: int = 10_000

  def __post_init__(self) -> None:
    check_finite_numbers(self)
    check_optimizer(self.optimizer)
    if self.index not in INDEXES:
      raise ValueError(f'index={self.index!r} is not supported; choose one of {INDEXES}.')
    for name in ('id_embedding_dim', 'feature_embedding_dim', 'embedding_dim', 'batch_size', 'epochs', 'top_k',
                 'scann_num_leaves', 'scann_num_leaves_to_search', 'item_item_max_items'):
      if getattr(self, name) < 1:
        raise ValueError(f'{name}={getattr(self, name)} must be a positive integer.')
    if self.batch_size < 2:  # the in-batch softmax of one example has no negative: its loss is 0, nothing trains
      raise ValueError(f'batch_size={self.batch_size} leaves no in-batch negatives (the batch\'s other items are '
                       'the negatives of each of its examples), so the towers would not learn; use at least 2, '
                       'e.g. 1024.')
    if self.scann_num_leaves_to_search > self.scann_num_leaves:
      raise ValueError(f'scann_num_leaves_to_search={self.scann_num_leaves_to_search} exceeds '
                       f'scann_num_leaves={self.scann_num_leaves}; lower it.')
    check_seed(self.seed)
    if self.learning_rate <= 0:
      raise ValueError(f'learning_rate={self.learning_rate} must be positive.')
    if self.temperature <= 0:
      raise ValueError(f'temperature={self.temperature} must be positive.')
    if self.embedding_l2 < 0:
      raise ValueError(f'embedding_l2={self.embedding_l2} must be >= 0.')
    if self.item_item_weight < 0:
      raise ValueError(f'item_item_weight={self.item_item_weight} must be >= 0 (0 = two-tower scores alone).')
    if self.item_item_l2 <= 0:
      raise ValueError(f'item_item_l2={self.item_item_l2} must be positive.')
    if any(units < 1 for units in self.hidden_units):
      raise ValueError(f'hidden_units={self.hidden_units} must hold positive integers.')
    # The Trainer and the export parse only the user columns for the query tower and only the item columns for the
    # candidate tower (a query has no item, a candidate no user, neither a time): any other feature is missing there.
    check_side_features(self, 'tower', f'context features such as {features.RECENT_RATING!r} are for the ranking '
                        'model')
    check_features_named_once(self, ('user_features', 'item_features'))
    if self.sampling_bias_correction and self.item_features is not None and features.ITEM_ID not in self.item_features:
      raise ValueError(f'sampling_bias_correction=True needs {features.ITEM_ID!r} among item_features='
                       f'{list(self.item_features)} (the correction is per item id); add it, or set '
                       'sampling_bias_correction to false.')


# Chosen on the canonical MovieLens split (measured with the retrieval gate's metrics): with sampling-bias
# correction, 3 epochs reach Recall@100 0.695 / top-100 accuracy 0.386; 5 epochs 0.697 / 0.357; without the
# correction 5 epochs reach only 0.464 / 0.197 (below popularity, 0.425 / 0.295). The item-item weight and penalty
# were chosen on a validation slice of TRAIN (benchmarks/retrieval_validation.py; docs/retrieval.md).
DEFAULT = RetrievalHyperparameters()

NAMED_CONFIGURATIONS: Dict[str, RetrievalHyperparameters] = {
    'default': DEFAULT,
}


def named_configuration(name: str) -> RetrievalHyperparameters:
  """Returns the retrieval configuration called `name` (ValueError listing the known ones otherwise)."""
  return choose_configuration(NAMED_CONFIGURATIONS, name, 'retrieval')
