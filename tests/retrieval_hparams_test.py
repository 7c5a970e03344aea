"""Retrieval hyperparameters that the towers cannot read are refused when they are given, not in the Trainer."""

import argparse
import json

import pytest

from pipeline import run_config
from schema import features
from trainer.retrieval import hparams as retrieval_hparams


def _args(*argv: str) -> argparse.Namespace:
  parser = argparse.ArgumentParser()
  run_config.add_model_flags(parser)
  return parser.parse_args(list(argv))


@pytest.mark.parametrize('fields,message', [
    # Before, these passed every check (the data gives the models recent_rating and interaction_time) and the
    # retrieval Trainer failed after reading the data: KeyError 'recent_rating_xf' in query_tower_encoder (it
    # parses only the user and item columns).
    ({'user_features': ['user_id', 'recent_rating']},
     "user_features names ['recent_rating'], which are not user features: the user tower reads 'user_id' and "
     "user_* columns only (context features such as 'recent_rating' are for the ranking model). Remove them."),
    ({'item_features': ['item_id', 'interaction_time']},
     "item_features names ['interaction_time'], which are not item features: the item tower reads 'item_id' and "
     "item_* columns only (context features such as 'recent_rating' are for the ranking model). Remove them."),
    # An item column in the query tower: training would read the row's item, the export has none to parse.
    ({'user_features': ['user_id', 'item_genres']}, "user_features names ['item_genres'], which are not user "),
    ({'item_features': ['item_id', 'user_gender']}, "item_features names ['user_gender'], which are not item "),
    ({'user_features': []}, "user_features=[] leaves the user tower without inputs; name at least 'user_id', or "
                            "null for 'user_id' and every user_* column."),
    # Before: "sampling_bias_correction needs 'item_id' among item_features" from the Trainer, after reading the data.
    ({'user_features': ['user_id', 'user_id']},
     "user_features=['user_id', 'user_id'] names ['user_id'] more than once; name each feature once."),
    ({'item_features': ['item_id', 'item_genres', 'item_id', 'item_genres']},
     "item_features=['item_id', 'item_genres', 'item_id', 'item_genres'] names ['item_genres', 'item_id'] more than "
     'once; name each feature once.'),
    ({'item_features': ['item_genres']},
     "sampling_bias_correction=True needs 'item_id' among item_features=['item_genres'] (the correction is per item "
     'id); add it, or set sampling_bias_correction to false.'),
])
def test_features_the_towers_cannot_read_are_refused_naming_the_flag(fields, message):
  with pytest.raises(ValueError) as error:
    retrieval_hparams.RetrievalHyperparameters(**{k: tuple(v) for k, v in fields.items()})
  assert message in str(error.value)
  with pytest.raises(ValueError, match=r'^--retrieval-hparams: '):
    run_config.retrieval_hyperparameters(_args('--retrieval-hparams', json.dumps(fields)))


def test_features_of_their_own_side_pass():
  hparams = retrieval_hparams.RetrievalHyperparameters(
      user_features=(features.USER_ID, features.USER_GENDER),
      item_features=(features.ITEM_ID, features.ITEM_GENRES, features.ITEM_POPULARITY))
  assert hparams.item_features == ('item_id', 'item_genres', 'item_popularity')
  # Without the item id the two towers still train when the per-item correction is off.
  assert retrieval_hparams.RetrievalHyperparameters(
      item_features=(features.ITEM_GENRES,), sampling_bias_correction=False).item_features == ('item_genres',)


def test_a_json_integer_past_the_float_range_in_a_float_field_is_refused_naming_the_field():
  # JSON reads 1 followed by 400 zeros as a Python int; as a float it is infinite (the largest float is ~1.8e308).
  # Before: OverflowError 'int too large to convert to float' from math.isfinite, which --retrieval-hparams did not
  # catch (a traceback naming neither the field nor the flag).
  huge = '1' + '0' * 400
  with pytest.raises(ValueError) as error:
    retrieval_hparams.RetrievalHyperparameters.from_config(json.loads(f'{{"learning_rate": {huge}}}'))
  assert str(error.value) == f'RetrievalHyperparameters.learning_rate={huge} must be a finite number.'
  with pytest.raises(ValueError) as error:
    run_config.retrieval_hyperparameters(_args('--retrieval-hparams', f'{{"temperature": -{huge}}}'))
  assert str(error.value) == (f'--retrieval-hparams: RetrievalHyperparameters.temperature=-{huge} must be a finite '
                              'number.')
  # An integer inside the float range is still read as a number: 2 for the learning rate passes.
  assert retrieval_hparams.RetrievalHyperparameters.from_config({'learning_rate': 2}).learning_rate == 2
