"""The Evaluator's slicing specs: one per segment column, and the column lists it refuses."""

import pytest

from pipeline import configs, eval_configs
from schema import features


def test_one_slice_per_segment_column_after_the_overall_slice():
  config = eval_configs.ranking_eval_config(configs.RankingGate(), segment_columns=['user_gender', 'user_age_bucket'])
  assert [list(spec.feature_keys) for spec in config.slicing_specs] == [[], ['user_gender'], ['user_age_bucket']]


def test_default_slices_are_the_schema_segment_columns():
  config = eval_configs.ranking_eval_config(configs.RankingGate())
  assert [tuple(spec.feature_keys) for spec in config.slicing_specs[1:]] == [
      (column,) for column in features.SEGMENT_COLUMNS]


def test_one_string_is_refused_instead_of_slicing_by_its_characters():
  # Before, 'user_gender' gave eleven slice specs: 'u', 's', 'e', 'r', ...
  with pytest.raises(ValueError, match=r"segment_columns='user_gender' is one string.*\['user_gender'\]"):
    eval_configs.ranking_eval_config(configs.RankingGate(), segment_columns='user_gender')


@pytest.mark.parametrize('columns, message', [
    (['user_gender', ''], "segment_columns holds ''"),
    (['user_gender', None], 'segment_columns holds None'),
    (['user_gender', 'user_gender'], "names 'user_gender' twice"),
])
def test_empty_or_repeated_column_names_are_refused(columns, message):
  with pytest.raises(ValueError, match=message):
    eval_configs.ranking_eval_config(configs.RankingGate(), segment_columns=columns)
