"""recommender.popular_items: equal mean shares reached through different segments tie, and ties go by item id."""

from serving import assets as assets_lib
from serving import recommender


def test_equal_mean_shares_from_different_segments_are_ordered_by_item_id():
  # Men: c 6, a 3, b 1 of 10 interactions; 18-24: d 8, b 2 of 10. Mean shares over the two segments:
  # d 8/20 = 0.4, c 6/20 = 0.3, a 3/20 and b (1 + 2)/20 = 3/20: a tie, so a (item id) before b. Before, b's share
  # was summed in floats as 0.05 + 0.1 = 0.15000000000000002 > 0.15, which put b first.
  popularity = assets_lib.Popularity(
      global_items=(('c', 6),),
      segment_items={'user_gender': {'M': (('c', 6), ('a', 3), ('b', 1))},
                     'user_age_bucket': {'18-24': (('d', 8), ('b', 2))}})
  ranked = recommender.popular_items(popularity, {'user_gender': 'M', 'user_age_bucket': '18-24'})
  assert ranked == [('d', 0.4), ('c', 0.3), ('a', 0.15), ('b', 0.15)]


def test_a_single_list_keeps_its_shares():
  # Global list: x 2, y 1, z 1 of 4 interactions -> 0.5, 0.25, 0.25 (ties by item id).
  popularity = assets_lib.Popularity(global_items=(('x', 2), ('z', 1), ('y', 1)), segment_items={})
  assert recommender.popular_items(popularity, {}) == [('x', 0.5), ('y', 0.25), ('z', 0.25)]


def test_cut_lists_give_shares_of_all_the_segments_interactions():
  # Lists cut at 2 items. Segment A (100 interactions): p 10, q 10, then 80 items with 1 each (cut). Segment B
  # (40 interactions): r 20, s 20. Mean shares: r = s = (0 + 20/40) / 2 = 0.25, p = q = (10/100 + 0) / 2 = 0.05.
  # Before, each share was of its cut list's sum (p 10/20 = 0.5), so p and q scored 0.25 too and came first.
  popularity = assets_lib.Popularity(
      global_items=(('r', 20), ('s', 20)),
      segment_items={'user_gender': {'F': (('p', 10), ('q', 10))},
                     'user_age_bucket': {'18-24': (('r', 20), ('s', 20))}},
      global_total=140, segment_totals={'user_gender': {'F': 100}, 'user_age_bucket': {'18-24': 40}})
  ranked = recommender.popular_items(popularity, {'user_gender': 'F', 'user_age_bucket': '18-24'})
  assert ranked == [('r', 0.25), ('s', 0.25), ('p', 0.05), ('q', 0.05)]


def test_the_global_list_uses_the_stored_total():
  # Global list cut to x 2 of 8 interactions: share 0.25, not 1.
  popularity = assets_lib.Popularity(global_items=(('x', 2),), segment_items={}, global_total=8)
  assert recommender.popular_items(popularity, {}) == [('x', 0.25)]
