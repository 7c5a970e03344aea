"""benchmarks/serving_quality.py: the top-10 figures, worked out by hand on tiny rankings."""

import json
import math
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmarks'))
import serving_quality  # pylint: disable=g-import-not-at-top,wrong-import-position


def test_test_ratings_keep_the_stars_and_leave_out_users_without_unseen_test_items():
  train = np.array([[1, 10, 5], [1, 11, 3], [2, 10, 4]], np.int64)
  # User 2's only test item (10) is one of his training items: he is left out.
  test = np.array([[1, 12, 4], [1, 13, 1], [2, 10, 2]], np.int64)
  assert serving_quality.test_ratings(train, test) == {'1': {'12': 4, '13': 1}}


def test_value_metrics_count_liked_disliked_and_the_hits_ratings():
  ratings = {
      # liked: a, b; disliked: c; neutral (3 stars): d.
      'u1': {'a': 5, 'b': 4, 'c': 2, 'd': 3},
      # nothing liked: left out of the liked recall; disliked: e, f.
      'u2': {'e': 1, 'f': 2},
  }
  rankings = {
      'u1': ['a', 'c', 'x', 'd'],  # hits a (5), c (2), d (3); liked 1 of 2; disliked 1
      'u2': ['y', 'e', 'z'],  # hit e (1); disliked 1 (f is not recommended)
  }
  value = serving_quality.value_metrics(rankings, ratings, k=10)
  assert value['liked_recall'] == pytest.approx(1 / 2)  # u1 only: 1 of min(2, 10)
  assert value['liked_users'] == 1
  assert value['disliked_per_k'] == pytest.approx((1 + 1) / 2)
  assert value['hit_rating'] == pytest.approx((5 + 2 + 3 + 1) / 4)


def test_value_metrics_read_only_the_first_k():
  ratings = {'u1': {'a': 5, 'b': 1}}
  value = serving_quality.value_metrics({'u1': ['x', 'a', 'b']}, ratings, k=2)
  assert value['liked_recall'] == pytest.approx(1.0)  # a within the first 2, 1 liked item
  assert value['disliked_per_k'] == 0  # b is third
  assert value['hit_rating'] == 5
  empty = serving_quality.value_metrics({'u1': ['x', 'y']}, ratings, k=2)
  assert empty['liked_recall'] == 0 and empty['disliked_per_k'] == 0 and math.isnan(empty['hit_rating'])


def test_recall_and_ndcg_by_hand():
  # 2 of 3 truth items in the top 3 at ranks 1 and 3: recall 2/3, NDCG (1 + 1/2) / (1 + 1/log2(3) + 1/2).
  ranked, truth = ['a', 'x', 'b'], {'a', 'b', 'c'}
  assert serving_quality.recall_at_k(ranked, truth, k=3) == pytest.approx(2 / 3)
  assert serving_quality.ndcg_at_k(ranked, truth, k=3) == pytest.approx(1.5 / (1 + 1 / math.log2(3) + 0.5))


def test_segment_means_average_each_segment_and_drop_small_ones():
  per_user = {'u1': 0.2, 'u2': 0.6, 'u3': 1.0, 'u4': 0.5}
  segments_of = {'u1': {'user_gender': 'F', 'user_age_bucket': '18-24'},
                 'u2': {'user_gender': 'F', 'user_age_bucket': '25-34'},
                 'u3': {'user_gender': 'M', 'user_age_bucket': '25-34'},
                 'u4': {'user_gender': 'M'}}  # no age: in no age segment
  rows = serving_quality.segment_means(per_user, segments_of, min_users=2)
  # F (0.2 + 0.6) / 2 = 0.4; 25-34 (0.6 + 1.0) / 2 = 0.8; M (1.0 + 0.5) / 2 = 0.75; 18-24 has 1 user.
  assert [(c, v, n) for c, v, _, n in rows] == [('user_gender', 'F', 2), ('user_gender', 'M', 2),
                                               ('user_age_bucket', '25-34', 2)]
  assert [m for _, _, m, _ in rows] == pytest.approx([0.4, 0.75, 0.8])
  assert len(serving_quality.segment_means(per_user, segments_of, min_users=1)) == 4


def test_split_rows_splits_u_data_as_the_pipeline_does(tmp_path):
  # Row r: user r rated item 100 + r with r % 5 + 1 stars.
  (tmp_path / 'u.data').write_text(''.join(f'{r}\t{100 + r}\t{r % 5 + 1}\t{900000000 + r}\n' for r in range(10)))
  # default_rng(42).permutation(10) = [5 6 0 7 3 2 4 9 1 8]: the first 8 train, rows 1 and 8 test.
  train, test = serving_quality.split_rows(str(tmp_path))
  assert train[:, 0].tolist() == [0, 2, 3, 4, 5, 6, 7, 9]
  assert test.tolist() == [[1, 101, 2], [8, 108, 4]]
  # default_rng(3).permutation(10) = [9 6 0 2 1 4 7 5 3 8]: with eval fraction 0.3 the first 7 train.
  spec = serving_quality.splits.SplitSpec('random', 0.3, 3)
  train, test = serving_quality.split_rows(str(tmp_path), spec)
  assert train[:, 0].tolist() == [0, 1, 2, 4, 6, 7, 9]
  assert test[:, 0].tolist() == [3, 5, 8]


def test_split_rows_splits_by_time_as_the_pipeline_does(tmp_path):
  # Row r has timestamp 900000000 + (7r mod 10): rows 7 (9) and 4 (8) are the latest 20 %.
  (tmp_path / 'u.data').write_text(''.join(f'{r}\t{100 + r}\t{r % 5 + 1}\t{900000000 + 7 * r % 10}\n'
                                           for r in range(10)))
  train, test = serving_quality.split_rows(str(tmp_path), serving_quality.splits.SplitSpec('temporal', 0.2))
  assert train[:, 0].tolist() == [0, 1, 2, 3, 5, 6, 8, 9]
  assert test.tolist() == [[4, 104, 5], [7, 107, 3]]


@pytest.mark.parametrize('method,seed,expected', [
    (None, None, None),
    ('seed', None, None),
    (None, 3, ('random', 0.3, 3)),
    ('random', 3, ('random', 0.3, 3)),
    ('temporal', None, ('temporal', 0.3, 42)),
])
def test_run_split_reads_the_command_line(method, seed, expected):
  spec = serving_quality.run_split(method, seed, 0.3)
  assert (spec if spec is None else (spec.method, spec.eval_fraction, spec.seed)) == expected


def test_run_split_refuses_a_seed_without_a_random_split():
  with pytest.raises(ValueError, match='only applies to --split random, not --split temporal'):
    serving_quality.run_split('temporal', 3, 0.2)


def test_signup_profiles_are_read_from_u_user(tmp_path):
  (tmp_path / 'u.user').write_text('1|24|M|technician|85711\n2|53|F|other|94043\n')
  assert serving_quality.signup_profiles(str(tmp_path)) == {
      '1': {'user_age': 24, 'user_gender': 'M', 'user_occupation': 'technician'},
      '2': {'user_age': 53, 'user_gender': 'F', 'user_occupation': 'other'}}


def test_ranking_weight_is_the_most_liked_one_that_keeps_recall():
  results = {0.0: {'recall': 0.400, 'liked_recall': 0.300},
             0.2: {'recall': 0.399, 'liked_recall': 0.310},
             0.3: {'recall': 0.396, 'liked_recall': 0.320},  # exactly 0.99 x 0.400: still allowed
             0.5: {'recall': 0.395, 'liked_recall': 0.330}}  # loses more than 1 % of the recall
  assert serving_quality.choose_ranking_weight(results) == 0.3
  assert serving_quality.choose_ranking_weight(results, max_recall_loss=0.0) == 0.0
  # A tie in liked recall goes to the smaller weight.
  results[0.2]['liked_recall'] = results[0.3]['liked_recall']
  assert serving_quality.choose_ranking_weight(results) == 0.2


def test_the_weight_is_chosen_on_the_mean_of_the_validation_splits(tmp_path, capsys):
  import choose_ranking_weight  # pylint: disable=g-import-not-at-top
  def figures(recall, liked):
    return {'recall': recall, 'ndcg': 0.0, 'liked_recall': liked, 'disliked_per_k': 0.0, 'hit_rating': 4.0}
  # Split a alone picks 0.3 (0.5 loses 1.5 % of its recall); split b alone picks 0.5.
  split_a = {'0': figures(0.400, 0.30), '0.3': figures(0.398, 0.32), '0.5': figures(0.394, 0.33)}
  split_b = {'0': figures(0.300, 0.20), '0.3': figures(0.300, 0.21), '0.5': figures(0.2992, 0.25),
             '0.7': figures(0.350, 0.40)}  # 0.7 is not measured on split a: it does not count
  assert serving_quality.choose_ranking_weight(choose_ranking_weight.mean_results([split_a])) == 0.3
  means = choose_ranking_weight.mean_results([split_a, split_b])
  # Means: 0: recall 0.35, liked 0.25; 0.3: 0.349, 0.265; 0.5: 0.3466, 0.29. Floor 0.99 x 0.35 = 0.3465: 0.5 counts.
  assert sorted(means) == [0.0, 0.3, 0.5]
  assert means[0.5]['recall'] == pytest.approx(0.3466) and means[0.5]['liked_recall'] == pytest.approx(0.29)
  assert serving_quality.choose_ranking_weight(means) == 0.5
  paths = []
  for name, split in (('a', split_a), ('b', split_b)):
    paths.append(str(tmp_path / f'{name}.json'))
    (tmp_path / f'{name}.json').write_text(json.dumps(split))
  assert choose_ranking_weight.main(paths) == 0
  assert capsys.readouterr().out.splitlines()[-1].endswith('retrieval only): 0.5')
  del split_b['0']
  (tmp_path / 'b.json').write_text(json.dumps(split_b))
  assert choose_ranking_weight.main(paths) == 2


def _figures(recall, liked, users):
  return {'recall': recall, 'ndcg': 0.0, 'liked_recall': liked, 'disliked_per_k': 0.0, 'hit_rating': 4.0,
          'users': users}


def test_results_record_counts_the_new_users_and_keeps_the_known_users_figures():
  results = {0.0: _figures(0.30, 0.20, 5), 0.5: _figures(0.31, 0.25, 5)}
  known = {0.0: _figures(0.10, 0.10, 3), 0.5: _figures(0.12, 0.15, 3)}
  record = serving_quality.results_record(results, known)
  assert sorted(record) == ['0', '0.5']
  assert record['0.5']['recall'] == 0.31 and record['0.5']['users'] == 5
  assert record['0.5']['new_users'] == 2  # 5 test users, 3 of them known
  assert record['0.5']['known_users'] == known[0.5]
  # Every test user known: no new users and no second set of figures.
  alone = serving_quality.results_record(results, {})
  assert alone['0']['new_users'] == 0 and 'known_users' not in alone['0']


def test_the_weight_can_be_chosen_on_the_known_users_alone(tmp_path, capsys):
  import choose_ranking_weight  # pylint: disable=g-import-not-at-top
  # Over all 5 users 0.5 keeps 0.298 / 0.30 = 99.3 % of the recall (floor 0.297) and is liked more: 0.5.
  # Over the 3 known users 0.5 keeps 0.098 / 0.10 = 98 % (floor 0.099): it does not count, so 0.
  split = serving_quality.results_record({0.0: _figures(0.30, 0.20, 5), 0.5: _figures(0.298, 0.22, 5)},
                                         {0.0: _figures(0.10, 0.10, 3), 0.5: _figures(0.098, 0.12, 3)})
  path = tmp_path / 'temporal.json'
  path.write_text(json.dumps(split))
  assert choose_ranking_weight.main([str(path)]) == 0
  out = capsys.readouterr().out.splitlines()
  assert out[0] == f'{path}: 2 of its 5 test users are new (no training ratings); --known-users leaves them out.'
  assert out[-1].endswith('retrieval only): 0.5')
  assert choose_ranking_weight.main([str(path), '--known-users']) == 0
  out = capsys.readouterr().out.splitlines()
  assert out[1] == 'mean over 1 validation splits (known users):'
  assert out[-1].endswith('retrieval only): 0')
  # A file of the old format (no counts) is taken as it is; one with new users but no known figures is refused.
  old = {'0': _figures(0.30, 0.20, 5), '0.5': _figures(0.298, 0.22, 5)}
  assert choose_ranking_weight.known_users_results(old) == old
  del split['0.5']['known_users']
  path.write_text(json.dumps(split))
  assert choose_ranking_weight.main([str(path), '--known-users']) == 2
  assert capsys.readouterr().err == (f'{path}: weight 0.5 has 2 new users but no known_users figures with recall, '
                                     'ndcg, liked_recall, disliked_per_k, hit_rating; pass the files that '
                                     'serving_quality.py --results-json wrote.\n')
