"""benchmarks/peer_segments.py: segment table, worst user segment, concentration and segment values by hand."""

import math
import os
import sys

import numpy as np
import pytest

from ingestion import interactions as interactions_lib
from ingestion import splits
from pipeline import configs
from schema import features

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmarks'))
import peer_segments  # pylint: disable=g-import-not-at-top,wrong-import-position

# Eight eval examples, three users; error = prediction - rating:
#   example  user  gender  occupation  popularity  error  squared
#   0        u1    F       writer      head        +1     1
#   1        u1    F       writer      head        -1     1
#   2        u1    F       writer      tail        +1     1
#   3        u2    F       (none)      tail        +3     9
#   4..7     u3    M       writer      head        +1, -1, +1, -1   1 each
# Overall: 16 / 8 = 2 -> RMSE sqrt(2) = 1.4142.
# gender=F: (1+1+1+9) / 4 = 3 -> sqrt(3) = 1.7321, margin +0.3178; gender=M: 4 / 4 -> 1, margin -0.4142.
# occupation=writer (u2 has none): 7 / 7 -> 1, margin -0.4142.
# popularity=head: 6 / 6 -> 1, margin -0.4142; tail: (1+9) / 2 = 5 -> sqrt(5) = 2.2361, margin +0.8219.
# Concentration of gender=F: u1 holds 3, u2 holds 9 of its 12 -> u2, share 0.75, RMSE 3 on its one example;
# without u2: 3 / 3 -> RMSE 1.
RATINGS = np.array([3, 3, 3, 2, 4, 4, 4, 4], dtype=np.float64)
ERRORS = np.array([1, -1, 1, 3, 1, -1, 1, -1], dtype=np.float64)
EVALUATION = peer_segments.EvalPredictions(
    user_ids=np.array(['u1', 'u1', 'u1', 'u2', 'u3', 'u3', 'u3', 'u3']),
    ratings=RATINGS, predictions=RATINGS + ERRORS,
    segments={features.USER_GENDER: np.array(['F'] * 4 + ['M'] * 4),
              features.USER_OCCUPATION: np.array(['writer'] * 3 + [''] + ['writer'] * 4),
              features.ITEM_POPULARITY_BUCKET: np.array(['head', 'head', 'tail', 'tail'] + ['head'] * 4)})


def test_segment_table_margins_and_worst_user_segment():
  report = peer_segments.segment_report(EVALUATION, configs.SegmentGate(min_examples=2))
  assert report['overall_rmse'] == pytest.approx(math.sqrt(2))
  rows = {(r['column'], r['value']): (r['example_count'], r['rmse'], r['margin'], r['gated'])
          for r in report['segments']}
  root2, root3, root5 = math.sqrt(2), math.sqrt(3), math.sqrt(5)
  assert rows == {
      (features.USER_GENDER, 'F'): (4, pytest.approx(root3), pytest.approx(root3 - root2), True),
      (features.USER_GENDER, 'M'): (4, pytest.approx(1.0), pytest.approx(1 - root2), True),
      (features.USER_OCCUPATION, 'writer'): (7, pytest.approx(1.0), pytest.approx(1 - root2), True),
      (features.ITEM_POPULARITY_BUCKET, 'head'): (6, pytest.approx(1.0), pytest.approx(1 - root2), True),
      (features.ITEM_POPULARITY_BUCKET, 'tail'): (2, pytest.approx(root5), pytest.approx(root5 - root2), True),
  }
  # The worst gated segment is an item segment; the target is about users: gender=F.
  assert (report['worst_segment']['column'], report['worst_segment']['value']) == (
      features.ITEM_POPULARITY_BUCKET, 'tail')
  assert (report['worst_user_segment']['column'], report['worst_user_segment']['value']) == (features.USER_GENDER, 'F')
  assert report['thresholds'] == {'min_examples': 2, 'max_margin': configs.SegmentGate().max_margin}
  assert not report['passed']  # tail and F are more than 0.08 above the overall RMSE


def test_concentration_names_the_user_holding_most_of_the_squared_error():
  assert peer_segments.concentration(EVALUATION, features.USER_GENDER, 'F') == {
      'segment': 'user_gender=F', 'segment_examples': 4, 'segment_rmse': pytest.approx(math.sqrt(3)),
      'user_id': 'u2', 'user_examples': 1, 'user_rmse': pytest.approx(3.0),
      'share_of_squared_error': pytest.approx(0.75), 'rmse_without_user': pytest.approx(1.0)}
  # writer: u1 holds 3 of 7, u3 4 of 7 (RMSE 1 on 4 examples); without u3: 3 / 3 -> 1.
  writer = peer_segments.concentration(EVALUATION, features.USER_OCCUPATION, 'writer')
  assert (writer['user_id'], writer['user_examples']) == ('u3', 4)
  assert writer['share_of_squared_error'] == pytest.approx(4 / 7)
  assert writer['rmse_without_user'] == pytest.approx(1.0)
  # A one-user segment has no RMSE without that user.
  assert peer_segments.concentration(EVALUATION, features.USER_GENDER, 'M')['rmse_without_user'] is None
  with pytest.raises(ValueError, match='user_gender=\'X\''):
    peer_segments.concentration(EVALUATION, features.USER_GENDER, 'X')


def test_small_segments_are_not_gated():
  # >= 5 examples: only writer (7) among user segments -> it is the worst user segment, margin -0.4142.
  report = peer_segments.segment_report(EVALUATION, configs.SegmentGate(min_examples=5))
  assert report['worst_user_segment']['value'] == 'writer'
  assert report['concentration']['user_id'] == 'u3'
  # >= 8 examples: no segment is gated.
  report = peer_segments.segment_report(EVALUATION, configs.SegmentGate(min_examples=8))
  assert report['worst_user_segment'] is None and report['concentration'] is None


def test_popularity_buckets_follow_transform_on_train_counts():
  # Transform's docstring example: i3: 3, i2: 2, i1: 1 -> head, torso, tail; i9 is not in training.
  assert peer_segments.popularity_buckets(['i3', 'i3', 'i3', 'i2', 'i2', 'i1'], ['i1', 'i2', 'i3', 'i9']).tolist() == [
      'tail', 'torso', 'head', 'unseen']
  # a: 3, b: 2, c: 2, d: 1, e: 1 (9): more popular than b and c hold exactly 3/9 (not < 1/3 -> torso; ties do not
  # count as more popular), than d and e 7/9 -> tail.
  train = ['a'] * 3 + ['b'] * 2 + ['c'] * 2 + ['d', 'e']
  assert peer_segments.popularity_buckets(train, ['a', 'b', 'c', 'd', 'e']).tolist() == [
      'head', 'torso', 'torso', 'tail', 'tail']


def test_segments_of_the_eval_rows():
  # Rows 0-2 train, 3-4 eval. Item popularity counts TRAIN only: x: 2, y: 1 -> x head (0/3 above), y tail (2/3).
  columns = {
      features.USER_ID: ['u1', 'u2', 'u1', 'u1', 'u2'], features.ITEM_ID: ['x', 'x', 'y', 'y', 'z'],
      features.RATING: np.array([4.0, 3.0, 2.0, 5.0, 1.0]), features.TIMESTAMP: np.arange(5, dtype=np.int64),
      features.USER_AGE: [23, 61, 23, 23, 61], features.USER_GENDER: ['F', 'M', 'F', 'F', 'M']}
  types = dict(interactions_lib.REQUIRED_COLUMN_TYPES)
  types.update({features.USER_AGE: interactions_lib.ColumnType.INT,
                features.USER_GENDER: interactions_lib.ColumnType.STRING})
  interactions = interactions_lib.Interactions(columns=columns, column_types={c: types[c] for c in columns})
  segments = peer_segments.canonical_split_segments(
      interactions, splits.SplitIndices(train=np.array([0, 1, 2]), eval=np.array([3, 4])))
  assert {c: v.tolist() for c, v in segments.items()} == {
      features.USER_GENDER: ['F', 'M'], features.USER_AGE_BUCKET: ['18-24', '56+'],
      features.ITEM_POPULARITY_BUCKET: ['tail', 'unseen']}


def test_summary_and_table_markdown():
  report = peer_segments.segment_report(EVALUATION, configs.SegmentGate(min_examples=2))
  summary = peer_segments.format_summary({'peer': report}, target_margin=0.05)
  assert '| peer | 1.4142 | user_gender=F | 4 | 1.7321 | +0.3178 | no |' in summary
  assert ('- peer: `user_gender=F` (4 eval ratings, RMSE 1.7321): user u2 has 1 of them and 75.0 % of the squared '
          'error (RMSE 3.0000 on them); without that user the segment\'s RMSE is 1.0000.') in summary
  table = peer_segments.format_segment_table({'peer': report, 'other': report})
  assert table.splitlines()[2] == '| item_popularity_bucket=tail | 2 | 2.2361 | +0.8219 | 2.2361 | +0.8219 |'


def test_concentration_on_a_named_segment():
  assert peer_segments.segment_key('user_occupation=writer') == (features.USER_OCCUPATION, 'writer')
  with pytest.raises(ValueError, match='write COLUMN=VALUE'):
    peer_segments.segment_key('occupation=writer')
  report = peer_segments.segment_report(EVALUATION, configs.SegmentGate(min_examples=2),
                                        concentration_segments=[(features.USER_OCCUPATION, 'writer')])
  assert list(report['segment_concentrations']) == ['user_occupation=writer']
  assert report['segment_concentrations']['user_occupation=writer']['user_id'] == 'u3'  # 4 of its 7
  lines = peer_segments.format_concentrations({'peer': report}, 'user_occupation=writer')
  assert len(lines) == 1
  assert lines[0].startswith('- peer: `user_occupation=writer` (7 eval ratings, RMSE 1.0000): user u3 has 4 of them')


def test_weighted_margins_count_each_user_as_often_as_drawn():
  # Users in id order u1, u2, u3; gender=F holds u1 (3 examples, squared error 3) and u2 (1, 9); u3 (4, 4) is M.
  sums = peer_segments.user_error_sums(EVALUATION, features.USER_GENDER, 'F')
  assert {k: v.tolist() for k, v in sums.items()} == {
      'squared_error': [3, 9, 4], 'examples': [3, 1, 4], 'segment_squared_error': [3, 9, 0],
      'segment_examples': [3, 1, 0]}
  margins = peer_segments.weighted_margins(np.array([[1, 1, 1], [2, 0, 1], [0, 1, 2], [0, 0, 3]], float), sums)
  # Each user once: sqrt(12 / 4) - sqrt(16 / 8). u1 twice, u3 once: F 6 / 6 -> 1, overall 10 / 10 -> 1.
  # u2 once, u3 twice: F 9 / 1 -> 3, overall 17 / 9. Only u3: no F example -> NaN.
  assert margins[:3] == pytest.approx([math.sqrt(3) - math.sqrt(2), 0.0, 3 - math.sqrt(17 / 9)])
  assert math.isnan(margins[3])


def test_margin_interval_over_user_draws():
  # Three users alike: each has one 'tail' example with error 2 and one 'head' example with error 1, so every
  # draw of users gives tail sqrt(4) against overall sqrt(5 / 2): margin 2 - 1.5811 = 0.4189, a zero-width interval.
  alike = peer_segments.EvalPredictions(
      user_ids=np.array(['a', 'a', 'b', 'b', 'c', 'c']), ratings=np.zeros(6),
      predictions=np.array([2.0, 1.0, 2.0, 1.0, 2.0, 1.0]),
      segments={features.ITEM_POPULARITY_BUCKET: np.array(['tail', 'head'] * 3)})
  margin = 2 - math.sqrt(5 / 2)
  found = peer_segments.margin_interval(alike, features.ITEM_POPULARITY_BUCKET, 'tail', draws=50, target_margin=0.5)
  assert found == {'segment': 'item_popularity_bucket=tail', 'margin': pytest.approx(margin),
                   'low': pytest.approx(margin), 'high': pytest.approx(margin), 'level': 0.9, 'draws': 50,
                   'target_margin': 0.5, 'share_within_target': 1.0}
  assert peer_segments.margin_interval(alike, features.ITEM_POPULARITY_BUCKET, 'tail', draws=50,
                                       target_margin=0.4)['share_within_target'] == 0.0
  # gender=F in EVALUATION: the eval split's own margin; a draw of three users lacks every F example when it is
  # u3 three times (1/27 of the draws, about 74 of 2,000): those are dropped.
  female = peer_segments.margin_interval(EVALUATION, features.USER_GENDER, 'F', draws=2000, seed=3)
  assert female['margin'] == pytest.approx(math.sqrt(3) - math.sqrt(2))
  assert 2000 - 200 < female['draws'] < 2000
  assert female['low'] < female['margin'] < female['high']
  with pytest.raises(ValueError, match='draws=0'):
    peer_segments.margin_interval(alike, features.ITEM_POPULARITY_BUCKET, 'tail', draws=0)
  with pytest.raises(ValueError, match="user_gender='X'"):
    peer_segments.margin_interval(EVALUATION, features.USER_GENDER, 'X', draws=10)
  table = peer_segments.format_intervals({'peer': found})
  assert table.splitlines()[2] == (
      '| peer | item_popularity_bucket=tail | +0.4189 | +0.4189 … +0.4189 (90 %) | 100.0 % ≤ 0.5 of 50 |')


def test_other_splits_and_matching_eval_rows():
  assert peer_segments.split_of_seed(splits.CANONICAL_SEED) == splits.SplitSpec('seed')
  assert peer_segments.split_of_seed(3) == splits.SplitSpec('random', 0.2, 3)
  # The same (user, rating) rows in another order match; a changed rating does not.
  order = np.array([7, 6, 5, 4, 3, 2, 1, 0])
  shuffled = peer_segments.EvalPredictions(EVALUATION.user_ids[order], RATINGS[order], RATINGS[order], {})
  peer_segments.check_same_eval_rows(shuffled, EVALUATION, split_seed=42)
  other = peer_segments.EvalPredictions(EVALUATION.user_ids, RATINGS + np.eye(8)[0], RATINGS, {})
  with pytest.raises(ValueError, match='split with seed 3.*--split-seed'):
    peer_segments.check_same_eval_rows(other, EVALUATION, split_seed=3)
