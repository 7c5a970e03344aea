"""preprocessing_fn on six hand-made rows: vocabularies, token bags, z-scores, age buckets, OOV ids."""

import numpy as np
import pytest
import tensorflow as tf

from schema import features
from tests.transform_fixtures import movielens_like_row, run_transform
from trainer.common import feature_specs
from transform import preprocessing

X = features.transformed_name
DAY = 86400
# 2000-01-01T00:00:00Z is day 10957 since the epoch.
Y2K_DAY = 10957

ROWS = [
    movielens_like_row('u1', 'i1', 4.0, age=17, genres='Action|Comedy', year=(1990,), timestamp=Y2K_DAY * DAY),
    movielens_like_row('u2', 'i2', 3.0, age=23, genres='Comedy', year=(2000,), timestamp=(Y2K_DAY + 1) * DAY),
    movielens_like_row('u2', 'i2', 5.0, age=23, genres='', year=(), timestamp=(Y2K_DAY + 2) * DAY),
    movielens_like_row('u3', 'i3', 2.0, age=61, genres='Drama|Comedy', year=(1995,), timestamp=(Y2K_DAY + 3) * DAY),
    movielens_like_row('u3', 'i3', 1.0, age=61, genres='Action', year=(1995,), timestamp=(Y2K_DAY + 4) * DAY),
    movielens_like_row('u3', 'i3', 4.5, age=35, gender='M', genres='Comedy', year=(1995,),
                       timestamp=(Y2K_DAY + 5) * DAY),
]


@pytest.fixture(scope='module')
def transformed(tmp_path_factory):
  # A serving-time request far after the training period (day Y2K + 100) and before it (day 0).
  new_rows = [movielens_like_row('stranger', 'i9', 3.0, genres='Western|Comedy', year=(),
                                 timestamp=(Y2K_DAY + 100) * DAY),
              movielens_like_row('u1', 'i1', 3.0, year=(1995,), timestamp=0)]
  return run_transform(ROWS, str(tmp_path_factory.mktemp('tft')), new_rows=new_rows)


def test_model_inputs_known_before_transform_are_those_it_produces(transformed):
  tft_output = transformed[0]
  assert preprocessing.model_input_columns(ROWS[0]) == set(feature_specs.available_features(tft_output)) == {
      features.USER_ID, features.ITEM_ID, features.USER_AGE, features.USER_GENDER, features.ITEM_GENRES,
      features.ITEM_RELEASE_YEAR, features.RECENT_RATING, features.ITEM_POPULARITY, features.INTERACTION_TIME,
      features.INTERACTION_ITEM_AGE}


@pytest.mark.parametrize('kwargs, message', [
    ({'user_features': ('user_id', 'user_agee')},
     "user_features names ['user_agee'], which the Transform output does not hold; available for user_features: "
     "['user_age', 'user_gender', 'user_id']. Fix"),
    ({'item_features': ('item_id', 'item_title')},
     "available for item_features: ['item_genres', 'item_id', 'item_popularity', 'item_release_year']. Fix"),
])
def test_a_feature_transform_did_not_produce_is_refused_listing_only_what_its_field_takes(transformed, kwargs,
                                                                                        message):
  # Before, 'available' listed every model input: item and context features too for user_features.
  with pytest.raises(ValueError) as error:
    feature_specs.model_features(transformed[0], **kwargs)
  assert message in str(error.value)


def test_model_inputs_of_the_four_required_columns():
  assert preprocessing.model_input_columns(
      [features.USER_ID, features.ITEM_ID, features.RATING, features.TIMESTAMP]) == {
          features.USER_ID, features.ITEM_ID, features.ITEM_POPULARITY, features.INTERACTION_TIME}


def test_vocabularies_are_ordered_by_frequency(transformed):
  tf_transform_output, _, _ = transformed
  # Counts: u3 x3, u2 x2, u1 x1; i3 x3, i2 x2, i1 x1; Comedy x4, Action x2, Drama x1.
  assert tf_transform_output.vocabulary_by_name('user_id') == [b'u3', b'u2', b'u1']
  assert tf_transform_output.vocabulary_by_name('item_id') == [b'i3', b'i2', b'i1']
  assert tf_transform_output.vocabulary_by_name('item_genres') == [b'Comedy', b'Action', b'Drama']
  assert tf_transform_output.vocabulary_by_name('user_gender') == [b'F', b'M']


def test_ids_and_label(transformed):
  _, rows, _ = transformed
  assert [int(r[X('user_id')]) for r in rows] == [2, 1, 1, 0, 0, 0]
  assert [int(r[X('item_id')]) for r in rows] == [2, 1, 1, 0, 0, 0]
  assert [float(r[X('rating')]) for r in rows] == [4.0, 3.0, 5.0, 2.0, 1.0, 4.5]


def test_multi_valued_genres_become_token_bags(transformed):
  _, rows, _ = transformed
  # Action|Comedy -> [1, 0]; Comedy -> [0]; '' -> []; Drama|Comedy -> [2, 0]; Action -> [1]; Comedy -> [0].
  assert [list(r[X('item_genres')]) for r in rows] == [[1, 0], [0], [], [2, 0], [1], [0]]


def test_numeric_feature_is_z_scored_over_the_present_values_and_missing_scores_zero(transformed):
  _, rows, _ = transformed
  # Present years 1990, 2000, 1995, 1995, 1995: mean 1995, population std sqrt((25 + 25) / 5) = sqrt(10).
  # Row 3 has no year: 0, the mean's z-score, and no part in the statistics.
  std = np.sqrt(10.0)
  expected = [-5 / std, 5 / std, 0.0, 0.0, 0.0, 0.0]
  np.testing.assert_allclose([float(r[X('item_release_year')]) for r in rows], expected, rtol=1e-5)


def test_age_buckets(transformed):
  _, rows, _ = transformed
  assert [r[features.USER_AGE_BUCKET].decode() for r in rows] == ['<18', '18-24', '18-24', '56+', '56+', '35-44']


def test_unseen_values_map_to_the_out_of_vocabulary_bucket(transformed):
  _, _, new_rows = transformed
  # Vocabulary sizes are 3, so the one OOV bucket is index 3; 'Western' is unseen, 'Comedy' is 0.
  assert int(new_rows[0][X('user_id')]) == 3
  assert int(new_rows[0][X('item_id')]) == 3
  assert list(new_rows[0][X('item_genres')]) == [3, 0]


def test_item_popularity_buckets(transformed):
  _, rows, new_rows = transformed
  # Training counts i3: 3, i2: 2, i1: 1 of 6; items more popular than i3 hold 0/6 (< 1/3: head), than i2 3/6
  # (< 2/3: torso), than i1 5/6 (tail). i9 has no training interaction.
  assert [r[features.ITEM_POPULARITY_BUCKET].decode() for r in rows] == [
      'tail', 'torso', 'torso', 'head', 'head', 'head']
  assert new_rows[0][features.ITEM_POPULARITY_BUCKET].decode() == 'unseen'


def test_item_popularity_is_log_count_z_scored_over_training_items(transformed):
  _, rows, new_rows = transformed
  # Training counts i3: 3, i2: 2, i1: 1 -> ln 4 = 1.3863, ln 3 = 1.0986, ln 2 = 0.6931; mean 1.0594, population
  # std 0.2843. z: i3 (1.3863 - 1.0594) / 0.2843 = 1.150, i2 0.138, i1 -1.288; i9 is unseen: (0 - 1.0594) / 0.2843.
  np.testing.assert_allclose([float(r[X(features.ITEM_POPULARITY)]) for r in rows],
                             [-1.288, 0.138, 0.138, 1.150, 1.150, 1.150], atol=1e-3)
  assert float(new_rows[0][X(features.ITEM_POPULARITY)]) == pytest.approx(-3.726, abs=1e-3)
  # i1 is seen (one interaction): the serving-time row of i1 gets the training value.
  assert float(new_rows[1][X(features.ITEM_POPULARITY)]) == pytest.approx(-1.288, abs=1e-3)


def test_item_popularity_of_an_item_does_not_depend_on_its_batch():
  # 600 items with training counts 600..1 (vocabulary index r has count 600 - r). Float code rounds log1p
  # differently in vectorised and scalar paths, so a value computed per row could change in its last bit with
  # the row's place in the batch; looked up in one table it cannot.
  counts = preprocessing.ItemCounts(tf.range(600, 0, -1, dtype=tf.int64))
  every_item = preprocessing.item_popularity(counts, tf.range(600, dtype=tf.int64)).numpy()
  for size in (1, 3, 7, 13, 17, 33):
    for start in range(0, 64):
      batch = tf.range(start, start + size, dtype=tf.int64)
      np.testing.assert_array_equal(preprocessing.item_popularity(counts, batch).numpy(),
                                    every_item[start:start + size])
  # Index 600 is the OOV bucket (an unseen item): count 0 -> log1p 0 = 0, z-scored like the rest.
  logs = np.log1p(np.arange(600, 0, -1, dtype=np.float64))
  assert preprocessing.item_popularity(counts, tf.constant([600], tf.int64)).numpy()[0] == pytest.approx(
      -logs.mean() / logs.std(), rel=1e-5)


def test_interaction_time_is_z_scored_days_clipped_to_the_training_period(transformed):
  _, rows, new_rows = transformed
  # Days Y2K+0..5: mean Y2K+2.5, population std sqrt(17.5 / 6) = 1.7078; so z = (d - 2.5) / 1.7078.
  std = np.sqrt(17.5 / 6.0)
  expected = [(d - 2.5) / std for d in range(6)]
  np.testing.assert_allclose([float(r[X(features.INTERACTION_TIME)]) for r in rows], expected, atol=1e-3)
  # Later and earlier requests are clipped to the last and first training day.
  np.testing.assert_allclose([float(r[X(features.INTERACTION_TIME)]) for r in new_rows],
                             [2.5 / std, -2.5 / std], atol=1e-3)


def test_item_age_at_interaction_is_years_since_release(transformed):
  _, rows, new_rows = transformed
  # Interaction years are 2000 + d / 365.2425 for days d = 0..5 after 2000-01-01; release years 1990, 2000,
  # (missing), 1995, 1995, 1995. Ages of the five rows with a year: 10 + 0/y, 0 + 1/y, 5 + 3/y, 5 + 4/y, 5 + 5/y,
  # z-scored over those five; the row without a year scores 0.
  year = 365.2425
  present = [0, 1, 3, 4, 5]
  ages = np.array([10.0, 0.0, 5.0, 5.0, 5.0]) + np.array(present) / year
  expected = np.zeros(6)
  expected[present] = (ages - ages.mean()) / ages.std()
  np.testing.assert_allclose([float(r[X(features.INTERACTION_ITEM_AGE)]) for r in rows], expected, atol=1e-3)
  # On day 0 (1970) a 1995 film is -25 years old: clipped to the youngest training age, 0 + 1/y (row 1).
  assert float(new_rows[1][X(features.INTERACTION_ITEM_AGE)]) == pytest.approx(expected[1], abs=1e-3)
  # A request for a film without a release year scores 0.
  assert float(new_rows[0][X(features.INTERACTION_ITEM_AGE)]) == 0.0


def test_recent_rating_is_z_scored_over_the_present_values_and_missing_scores_zero(tmp_path):
  rows = [movielens_like_row('u1', 'i1', 4.0, recent=(2.0,)), movielens_like_row('u2', 'i2', 3.0, recent=(4.0,)),
          movielens_like_row('u2', 'i1', 3.0)]
  _, transformed, new_rows = run_transform(rows, str(tmp_path), new_rows=[
      movielens_like_row('u9', 'i1', 1.0, recent=(5.0,)), movielens_like_row('u9', 'i1', 1.0)])
  # Present 2 and 4: mean 3, population std 1. The missing one scores 0.
  np.testing.assert_allclose([float(r[X(features.RECENT_RATING)]) for r in transformed], [-1.0, 1.0, 0.0],
                             atol=1e-6)
  # A request with recent rating 5 -> (5 - 3) / 1; one without -> 0.
  np.testing.assert_allclose([float(r[X(features.RECENT_RATING)]) for r in new_rows], [2.0, 0.0], atol=1e-6)


def test_numeric_features_without_any_training_value_are_zero_not_nan(tmp_path):
  # No training row has a recent rating or a release year; a later row (eval, or a request) has both.
  _, transformed, new_rows = run_transform(
      [movielens_like_row('u1', 'i1', 4.0, year=()), movielens_like_row('u2', 'i2', 3.0, year=())], str(tmp_path),
      new_rows=[movielens_like_row('u1', 'i1', 4.0, recent=(3.0,), year=(1995,))])
  keys = (features.RECENT_RATING, features.ITEM_RELEASE_YEAR, features.INTERACTION_ITEM_AGE)
  assert [[float(r[X(k)]) for k in keys] for r in transformed] == [[0.0] * 3, [0.0] * 3]
  # The empty statistics (mean 0, std 0, range +-inf) passed the value through: 3.0, 1995.0 and inf before.
  assert [float(new_rows[0][X(k)]) for k in keys] == [0.0, 0.0, 0.0]


@pytest.mark.slow  # two Transform runs of 1,000 rows: about 28 s on 2 cores
def test_numeric_statistics_do_not_depend_on_how_beam_batches_the_rows(tmp_path):
  # 1,000 invented rows over seven months of 1997-98 (unix seconds near 8.8e8, as MovieLens 100K), release
  # years 1930-1998 with a tenth missing, recent ratings 1-5 with a fifth missing. Beam adds up the analyzers'
  # partial results batch by batch; float32 partial means of the same rows batched by 13 and by 1,000 differ in
  # their last bits, which changed every row's z-score. The statistics are float64, so the outputs must be equal.
  rng = np.random.default_rng(0)
  rows = [movielens_like_row(f'u{rng.integers(50)}', f'i{rng.integers(200)}', float(rng.integers(1, 6)),
                             age=int(rng.integers(10, 70)),
                             year=() if rng.random() < 0.1 else (int(rng.integers(1930, 1999)),),
                             timestamp=int(874_724_710 + rng.integers(0, 215 * DAY)),
                             recent=() if rng.random() < 0.2 else (float(rng.uniform(1, 5)),))
          for _ in range(1000)]
  _, by_13, _ = run_transform(rows, str(tmp_path / 'by_13'), batch_size=13)
  _, by_1000, _ = run_transform(rows, str(tmp_path / 'by_1000'), batch_size=1000)
  for key in (features.INTERACTION_TIME, features.INTERACTION_ITEM_AGE, features.RECENT_RATING,
              features.USER_AGE, features.ITEM_RELEASE_YEAR):
    np.testing.assert_array_equal([r[X(key)] for r in by_13], [r[X(key)] for r in by_1000], err_msg=key)
