"""Generates synthetic, learnable interactions with the MovieLens columns for tests (never cut from MovieLens).

Ratings come from a planted low-rank structure: `3 + user_bias + item_bias + <user_factors, item_factors>
/ sqrt(rank) + noise`, rounded and clipped to 1..5, so a model has something to learn. Users whose gender is a
key of `segment_rating_noise` get extra rating noise (a deliberately worse segment). Every user rates distinct
items; rows are shuffled and timestamps strictly increase down the file. The same arguments always give the
same data.

CLI: `python -m ingestion.fixtures --output interactions.csv [--users 60 --items 40 --per-user 12 --seed 0
--segment-noise F=2.0]`.
"""

import argparse
import math
import string
import sys
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from ingestion import interactions as interactions_lib
from ingestion import movielens
from schema import features

GENDERS = ('M', 'F')
OCCUPATIONS = ('student', 'engineer', 'artist', 'educator', 'other')
# Invented genres (not MovieLens').
GENRES = ('Space Opera', 'Cozy Mystery', 'Heist', 'Nature', 'Musical Comedy', 'Noir')
MIN_AGE, MAX_AGE = 15, 70
MIN_YEAR, MAX_YEAR = 1950, 2020
START_TIMESTAMP = 978307200  # 2001-01-01T00:00:00Z, unix seconds
MAX_SECONDS_BETWEEN_ROWS = 3600
# Every tenth user (from the first) has a letter-digit postal code, so `user_zip` reads back as STRING.
ALPHANUMERIC_ZIP_EVERY = 10
# Items whose 0-based index is 12 mod 13 have no release year (a missing optional value).
MISSING_YEAR_EVERY = 13


def _zip_code(rng: np.random.Generator, user_index: int) -> str:
  if user_index % ALPHANUMERIC_ZIP_EVERY == 0:
    letters = rng.choice(list(string.ascii_uppercase), size=3)
    digits = rng.integers(0, 10, size=2)
    return f'{letters[0]}{digits[0]}{letters[1]}{digits[1]}{letters[2]}'
  return f'{int(rng.integers(0, 100000)):05d}'


def generate_interactions(num_users: int = 60, num_items: int = 40, interactions_per_user: int = 12,
                          seed: int = 0, rank: int = 3, noise_stddev: float = 0.3,
                          segment_rating_noise: Optional[Mapping[str, float]] = None
                          ) -> interactions_lib.Interactions:
  """Generates synthetic interactions with all of `features.MOVIELENS_COLUMNS`.

  Args:
    num_users: number of users (ids '1'..'num_users').
    num_items: number of items (ids '1'..'num_items', titles 'Item 1'...).
    interactions_per_user: distinct items each user rates; at most `num_items`.
    seed: random seed; equal arguments give equal data.
    rank: dimension of the planted user/item factors.
    noise_stddev: standard deviation of the rating noise, stars.
    segment_rating_noise: gender (one of `GENDERS`) -> extra noise standard deviation (stars) for users of that
      gender, e.g. {'F': 2.0}.

  Returns:
    Interactions, `num_users * interactions_per_user` rows, timestamps strictly increasing.

  Raises:
    ValueError: on a non-positive count, `interactions_per_user > num_items`, a noise that is negative or not
      finite, or a `segment_rating_noise` key that is not one of `GENDERS`.
  """
  for name, value in (('num_users', num_users), ('num_items', num_items),
                      ('interactions_per_user', interactions_per_user), ('rank', rank)):
    if value < 1:
      raise ValueError(f'{name}={value} must be >= 1.')
  if interactions_per_user > num_items:
    raise ValueError(f'interactions_per_user={interactions_per_user} exceeds num_items={num_items}; '
                     'each user rates distinct items. Fix: lower it or add items.')
  segment_rating_noise = dict(segment_rating_noise or {})
  unknown = sorted(set(segment_rating_noise) - set(GENDERS))
  if unknown:
    raise ValueError(f'segment_rating_noise keys {unknown} are not genders of the fixture; use {list(GENDERS)}.')
  # A NaN noise made the segment's ratings NaN; an infinite one left them only 1 or 5 stars.
  if not all(math.isfinite(v) and v >= 0 for v in [noise_stddev, *segment_rating_noise.values()]):
    raise ValueError(f'Noise standard deviations must be finite and >= 0, got noise_stddev={noise_stddev}, '
                     f'segment_rating_noise={segment_rating_noise}.')
  rng = np.random.default_rng(seed)

  ages = rng.integers(MIN_AGE, MAX_AGE + 1, size=num_users)
  genders = rng.choice(GENDERS, size=num_users)
  occupations = rng.choice(OCCUPATIONS, size=num_users)
  zips = [_zip_code(rng, u) for u in range(num_users)]
  years = rng.integers(MIN_YEAR, MAX_YEAR + 1, size=num_items)
  item_genres: List[str] = []
  for _ in range(num_items):
    chosen = rng.choice(len(GENRES), size=int(rng.integers(1, 4)), replace=False)
    item_genres.append(features.MULTI_VALUE_SEPARATOR.join(GENRES[g] for g in sorted(chosen)))

  user_factors = rng.normal(size=(num_users, rank))
  item_factors = rng.normal(size=(num_items, rank))
  user_bias = rng.normal(scale=0.3, size=num_users)
  item_bias = rng.normal(scale=0.5, size=num_items)

  users = np.repeat(np.arange(num_users), interactions_per_user)
  items = np.concatenate([rng.choice(num_items, size=interactions_per_user, replace=False)
                          for _ in range(num_users)])
  order = rng.permutation(len(users))
  users, items = users[order], items[order]

  noise_scale = np.array([math.sqrt(noise_stddev**2 + segment_rating_noise.get(str(g), 0.0)**2)
                          for g in genders])[users]
  scores = (3.0 + user_bias[users] + item_bias[items]
            + np.sum(user_factors[users] * item_factors[items], axis=1) / math.sqrt(rank)
            + rng.normal(size=len(users)) * noise_scale)
  ratings = np.clip(np.rint(scores), 1.0, 5.0)
  timestamps = START_TIMESTAMP + np.cumsum(rng.integers(1, MAX_SECONDS_BETWEEN_ROWS + 1, size=len(users)))

  columns = {
      features.USER_ID: [str(u + 1) for u in users],
      features.ITEM_ID: [str(i + 1) for i in items],
      features.RATING: ratings.astype(np.float64),
      features.TIMESTAMP: timestamps.astype(np.int64),
      features.USER_AGE: [int(ages[u]) for u in users],
      features.USER_GENDER: [str(genders[u]) for u in users],
      features.USER_OCCUPATION: [str(occupations[u]) for u in users],
      features.USER_ZIP: [zips[u] for u in users],
      features.ITEM_TITLE: [f'Item {i + 1}' for i in items],
      features.ITEM_GENRES: [item_genres[i] for i in items],
      features.ITEM_RELEASE_YEAR: [None if i % MISSING_YEAR_EVERY == MISSING_YEAR_EVERY - 1
                                   else int(years[i]) for i in items],
  }
  types = dict(interactions_lib.REQUIRED_COLUMN_TYPES)
  types.update(movielens.MOVIELENS_COLUMN_TYPES)
  return interactions_lib.Interactions(
      columns=columns, column_types={name: types[name] for name in features.MOVIELENS_COLUMNS})


def write_synthetic_interactions(path: str, **kwargs: object) -> interactions_lib.Interactions:
  """Writes `generate_interactions(**kwargs)` as an interactions CSV at `path`; returns the interactions."""
  interactions = generate_interactions(**kwargs)  # type: ignore[arg-type]
  interactions_lib.write_interactions(interactions, path)
  return interactions


def _parse_segment_noise(items: Sequence[str]) -> Dict[str, float]:
  noise: Dict[str, float] = {}
  for item in items:
    key, sep, value = item.partition('=')
    try:
      noise[key] = float(value)
    except ValueError as e:
      raise ValueError(f'--segment-noise {item!r} must be GENDER=STDDEV, e.g. F=2.0.') from e
    if not sep or not key:
      raise ValueError(f'--segment-noise {item!r} must be GENDER=STDDEV, e.g. F=2.0.')
  return noise


def main(argv: Optional[Sequence[str]] = None) -> int:
  """CLI entry point; returns the exit status."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--output', required=True, help='interactions CSV to write')
  parser.add_argument('--users', type=int, default=60)
  parser.add_argument('--items', type=int, default=40)
  parser.add_argument('--per-user', type=int, default=12, help='distinct items rated by each user')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--segment-noise', action='append', default=[], metavar='GENDER=STDDEV',
                      help='extra rating noise for users of a gender; repeatable')
  args = parser.parse_args(argv)
  try:
    interactions = write_synthetic_interactions(
        args.output, num_users=args.users, num_items=args.items,
        interactions_per_user=args.per_user, seed=args.seed,
        segment_rating_noise=_parse_segment_noise(args.segment_noise))
  except ValueError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  print(f'Wrote {interactions.num_rows} synthetic interactions to {args.output}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
