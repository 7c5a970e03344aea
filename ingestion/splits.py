"""Splits interaction rows into train and eval row indices (canonical seed split, random, temporal).

The canonical split ('seed') is the one every quality figure compared with peers uses: rows in file order
(u.data order for MovieLens), `perm = numpy.random.default_rng(42).permutation(n)`,
train = `perm[:int(0.8 * n)]`, eval = the rest.
"""

import dataclasses
import decimal
from typing import NamedTuple, Sequence, Union

import numpy as np

SPLIT_METHODS = ('seed', 'random', 'temporal')
CANONICAL_SEED = 42
CANONICAL_EVAL_FRACTION = 0.2

# Names of the splits, as ExampleGen sees them (the folder names of the written examples).
TRAIN_SPLIT = 'train'
EVAL_SPLIT = 'eval'


def is_canonical(eval_fraction: float, seed: int) -> bool:
  """True for the canonical split's eval fraction and seed (the only ones method 'seed' takes)."""
  return eval_fraction == CANONICAL_EVAL_FRACTION and seed == CANONICAL_SEED


@dataclasses.dataclass(frozen=True)
class SplitSpec:
  """How to split interactions into train and eval.

  Attributes:
    method: 'seed' (the canonical split: seed 42, eval fraction 0.2, nothing else accepted), 'random'
      (the same algorithm with `eval_fraction` and `seed`) or 'temporal' (the latest `eval_fraction` of rows
      by timestamp go to eval; ties are broken by row order).
    eval_fraction: share of rows in eval, in (0, 1); 'random' and 'temporal' put eval_fraction * rows, rounded
      half up, in eval (computed on the fraction as written: 0.7 of 45 rows is 31.5, so 32 rows).
    seed: numpy Generator seed (an int >= 0), used by 'seed' and 'random'.
  """
  method: str
  eval_fraction: float = CANONICAL_EVAL_FRACTION
  seed: int = CANONICAL_SEED

  def __post_init__(self) -> None:
    if self.method not in SPLIT_METHODS:
      raise ValueError(f'method={self.method!r} is not a split method; choose one of '
                       f'{", ".join(SPLIT_METHODS)}.')
    if (isinstance(self.eval_fraction, bool) or not isinstance(self.eval_fraction, (int, float))
            or not 0.0 < self.eval_fraction < 1.0):
      raise ValueError(f'eval_fraction={self.eval_fraction!r} must be a number strictly between 0 '
                       'and 1, e.g. 0.2.')
    if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
      raise ValueError(f'seed={self.seed!r} must be an integer >= 0, e.g. 42.')
    if self.method == 'seed' and not is_canonical(self.eval_fraction, self.seed):
      raise ValueError(
          f"method='seed' is the canonical split (eval_fraction={CANONICAL_EVAL_FRACTION}, "
          f'seed={CANONICAL_SEED}); got eval_fraction={self.eval_fraction!r}, seed={self.seed!r}. '
          "Use method='random' for another fraction or seed.")


def _eval_rows(eval_fraction: float, num_rows: int) -> int:
  """eval_fraction * num_rows rounded half up, in decimal arithmetic on the fraction as written.

  `repr` gives the shortest decimal that reads back as the float (0.7, not 0.69999999999999995559), so a half
  stays a half: in floating point 0.7 * 45 is 31.499999999999996 and int(x + 0.5) gave 31, not 32; and
  int((1 - f) * n) lost a row (0.7 * 90 is 62.99999999999999).
  """
  with decimal.localcontext() as context:
    context.prec = 64  # exact: at most 17 significant digits times a row count
    exact = decimal.Decimal(repr(float(eval_fraction))) * num_rows
    return int(exact.to_integral_value(rounding=decimal.ROUND_HALF_UP))


class SplitIndices(NamedTuple):
  """Row indices (0-based, ascending, int64) of each split."""
  train: np.ndarray
  eval: np.ndarray


def split_interactions(rows: Union[int, Sequence[int], np.ndarray],
                       spec: SplitSpec = SplitSpec('seed')) -> SplitIndices:
  """Splits rows into train and eval.

  Args:
    rows: the number of rows, or the timestamps of the rows in file order (shape [num_rows], unix
      seconds); 'temporal' needs the timestamps.
    spec: how to split.

  Returns:
    (train, eval) row indices, each sorted ascending.

  Raises:
    ValueError: for a negative row count, if 'temporal' gets a row count instead of timestamps or timestamps
      that are not numbers or not finite (NaN), or if a split would be empty.
  """
  if isinstance(rows, (int, np.integer)) and not isinstance(rows, bool):
    num_rows, timestamps = int(rows), None
    if num_rows < 0:
      raise ValueError(f'rows={num_rows} is a negative row count; pass the number of rows (or their timestamps).')
  else:
    timestamps = np.asarray(rows)
    if timestamps.ndim != 1:
      raise ValueError(f'rows must be a row count or 1-D timestamps, got shape {timestamps.shape}.')
    num_rows = len(timestamps)
  num_train = num_rows - _eval_rows(spec.eval_fraction, num_rows)
  if spec.method == 'seed':
    num_train = int(0.8 * num_rows)  # written exactly as the canonical split is defined
  if num_train == 0 or num_train == num_rows:
    raise ValueError(
        f'Splitting {num_rows} rows with eval_fraction={spec.eval_fraction} leaves the '
        f'{"train" if num_train == 0 else "eval"} split empty. Fix: provide more rows'
        + (' (the seed split\'s eval_fraction is fixed; --split random takes another).' if spec.method == 'seed'
           else ', or change eval_fraction (--eval-fraction).'))

  if spec.method == 'temporal':
    if timestamps is None:
      raise ValueError("method='temporal' needs the row timestamps; pass them as `rows`, not a count.")
    if timestamps.dtype.kind not in 'iuf':  # text would sort as text ('100' before '9'), bools carry no time
      raise ValueError(f"method='temporal' got timestamps of dtype {timestamps.dtype}; pass them as numbers "
                       '(unix seconds), e.g. an int64 array.')
    if timestamps.dtype.kind == 'f' and not np.isfinite(timestamps).all():  # NaN would sort last: 'latest'
      bad = int(np.flatnonzero(~np.isfinite(timestamps))[0])
      raise ValueError(f"method='temporal' got timestamp {timestamps[bad]} at row {bad} (0-based); every row "
                       'needs a finite time (unix seconds): drop or fill the rows without one.')
    order = np.lexsort((np.arange(num_rows), timestamps))  # by timestamp, then row index
  else:
    order = np.random.default_rng(spec.seed).permutation(num_rows)
  return SplitIndices(train=np.sort(order[:num_train]).astype(np.int64),
                      eval=np.sort(order[num_train:]).astype(np.int64))
