"""Hyperparameter ranges refused when the configuration is built: seeds outside what tf.keras.utils.set_random_seed
takes, negative penalties."""

import pytest

from trainer.common.hyperparameters import MAX_SEED
from trainer.ranking.hparams import RankingHyperparameters
from trainer.retrieval.hparams import RetrievalHyperparameters


@pytest.mark.parametrize('seed', [-1, 2**32])
def test_a_retrieval_seed_outside_the_numpy_range_is_refused_naming_it(seed):
  # Before, it passed and the Trainer failed in set_random_seed with NumPy's 'Seed must be between 0 and 2**32 - 1'.
  with pytest.raises(ValueError, match=f'seed={seed} must be a whole number from 0 to 4294967295, e.g. 42'):
    RetrievalHyperparameters(seed=seed)


def test_the_extreme_seeds_are_accepted():
  assert RetrievalHyperparameters(seed=0).seed == 0
  assert RetrievalHyperparameters(seed=MAX_SEED).seed == 4294967295
  assert RankingHyperparameters(seed=MAX_SEED - 2, ensemble_size=3).seed == 4294967293


def test_ranking_ensemble_members_seeds_must_all_be_in_range():
  # Three members train with seeds seed, seed + 1, seed + 2: the last of 2**32 - 2 would be 2**32.
  with pytest.raises(ValueError, match=r'seed=4294967294 must be a whole number from 0 to 4294967293 \(the 3 '
                                       r'models trained take seeds seed to seed \+ 2, each at most 4294967295\)'):
    RankingHyperparameters(seed=MAX_SEED - 1, ensemble_size=3)
  with pytest.raises(ValueError, match='seed=-5 must be a whole number from 0 to 4294967295, e.g. 42'):
    RankingHyperparameters(seed=-5)


def test_a_negative_ranking_embedding_l2_is_refused_as_the_retrieval_one_is():
  # Before, -1e-4 passed and trained with a penalty that grows the embeddings instead of shrinking them.
  with pytest.raises(ValueError, match=r'embedding_l2=-0.0001 must be >= 0 \(0 disables the penalty\)'):
    RankingHyperparameters(embedding_l2=-1e-4)
  with pytest.raises(ValueError, match='embedding_l2=-0.0001 must be >= 0'):
    RetrievalHyperparameters(embedding_l2=-1e-4)
  assert RankingHyperparameters(embedding_l2=0.0).embedding_l2 == 0.0


def test_a_retrieval_batch_of_one_is_refused_as_it_holds_no_negative():
  # Before, 1 was accepted: the in-batch softmax over one item gives a loss of 0 and the towers never moved.
  with pytest.raises(ValueError, match=r'batch_size=1 leaves no in-batch negatives.*use at least 2'):
    RetrievalHyperparameters(batch_size=1)
  with pytest.raises(ValueError, match='batch_size=0 must be a positive integer'):
    RetrievalHyperparameters(batch_size=0)
  assert RetrievalHyperparameters(batch_size=2).batch_size == 2
