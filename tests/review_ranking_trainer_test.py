"""The ranking Trainer's train_network on a four-row split: settings accepted up front train to the end."""

import tensorflow as tf

from schema import features
from trainer.common import inputs
from trainer.common.hyperparameters import MAX_SEED
from trainer.ranking import hparams as hparams_lib
from trainer.ranking import model as model_lib
from trainer.ranking import run as run_lib

from tests.ranking_fixtures import SPLIT, TOWERS, X


def test_an_ensemble_whose_last_member_takes_the_largest_seed_trains_every_member() -> None:
  # seed MAX_SEED - 1 with two members is accepted (member 1 trains with seed MAX_SEED, the largest allowed). Before,
  # member 1's hyperparameters were re-checked as a two-model ensemble from seed MAX_SEED, and the Trainer failed
  # with "seed=4294967295 must be a whole number from 0 to 4294967294" after member 0 had trained.
  hparams = hparams_lib.RankingHyperparameters(id_embedding_dim=1, hidden_units=(), epochs=1, batch_size=4,
                                               seed=MAX_SEED - 1, ensemble_size=2)
  model, history = run_lib.train_network(SPLIT, SPLIT, TOWERS, hparams)
  assert isinstance(model, model_lib.RatingEnsemble) and len(model.members) == 2
  assert len(history['rmse']) == 1 and len(history['member1_rmse']) == 1


def test_rmse_reads_a_label_column_of_one_value_per_row_as_the_rows_labels() -> None:
  # Predictions 4.5, 5, 5, 3 against labels 4, 5, 5, 2 held as [4, 1]: errors 0.5, 0, 0, 1 -> RMSE sqrt(1.25 / 4)
  # = 0.559017. Before, the [4] predictions minus the [4, 1] labels broadcast to every prediction against every label
  # (16 errors, squares summing to 37: RMSE 1.5207); the neighbourhood weight's RMSE and the loss reshape the labels.
  split = inputs.InMemorySplit({**SPLIT.columns, X(features.RATING): tf.constant([[4.0], [5.0], [5.0], [2.0]])})

  def predicted(batch):
    return tf.gather(tf.constant([[4.5], [5.0], [5.0], [3.0]]), tf.range(tf.shape(batch[X(features.USER_ID)])[0]))

  assert abs(run_lib.rmse(predicted, split) - 0.5590170) < 1e-6
