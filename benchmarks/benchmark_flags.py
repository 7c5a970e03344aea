"""The flag rules the benchmark scripts share: typed argparse values (counts, seeds) and distinct list values.

The `type=` functions refuse a bad value while the command line is parsed, so argparse's usage error names the
flag (`argument --clients: 0 must be at least 1.`) before a benchmark loads a model or reads a run. Durations
and ranking weights use the service's own rules (`serving.backend_flags.positive_seconds`, `ranking_weight`).

A benchmark runs its work once per value of a list flag (a seed, a metric set, a configuration), so a repeated
value would run the same work twice and, in a mean over the values, count it twice. The `DistinctValues` and
`AppendDistinct` actions refuse it as a usage error naming the flag and the value.
"""

import argparse
import math
from typing import Any, Iterable, Optional, Sequence

# numpy's RandomState (which Surprise and tf.keras.utils.set_random_seed seed) takes seeds in [0, 2**32).
SEED_LIMIT = 2 ** 32


def _integer(text: str) -> int:
  try:
    return int(text)
  except ValueError as e:
    raise argparse.ArgumentTypeError(f'{text!r} is not an integer.') from e


def positive_int(text: str) -> int:
  """A count flag's value (requests, users, clients, draws): an integer of at least 1.

  Raises:
    argparse.ArgumentTypeError: `text` is not an integer, or is below 1.
  """
  value = _integer(text)
  if value < 1:
    raise argparse.ArgumentTypeError(f'{text} must be at least 1.')
  return value


def non_negative_int(text: str) -> int:
  """A count flag's value where 0 turns the feature off: an integer >= 0.

  Raises:
    argparse.ArgumentTypeError: `text` is not an integer, or is negative.
  """
  value = _integer(text)
  if value < 0:
    raise argparse.ArgumentTypeError(f'{text} must be >= 0.')
  return value


def seed(text: str) -> int:
  """A random seed flag's value: an integer in [0, 2**32), numpy's seed range.

  Raises:
    argparse.ArgumentTypeError: `text` is not an integer, or is outside [0, 2**32).
  """
  value = _integer(text)
  if not 0 <= value < SEED_LIMIT:
    raise argparse.ArgumentTypeError(f'{text} must be in [0, 2**32) (a numpy seed).')
  return value


def non_negative_float(text: str) -> float:
  """A weight flag's value: a finite number >= 0.

  Raises:
    argparse.ArgumentTypeError: `text` is not a number, or is negative, NaN or infinite.
  """
  try:
    value = float(text)
  except ValueError as e:
    raise argparse.ArgumentTypeError(f'{text!r} is not a number.') from e
  if not (value >= 0 and math.isfinite(value)):  # `not >=`: NaN too
    raise argparse.ArgumentTypeError(f'{text} must be a number >= 0.')
  return value


def first_repeat(values: Iterable[Any]) -> Optional[Any]:
  """The first value of `values` equal to an earlier one, or None when all differ."""
  seen = []
  for value in values:
    if value in seen:  # `in`, not a set: values need not be hashable (e.g. lists from a type= function)
      return value
    seen.append(value)
  return None


def _repeat_message(flag: str, value: Any) -> str:
  text = f'{value:g}' if isinstance(value, float) else str(value)
  return f'{text} is given twice; each value runs the same work, so give it once ({flag} takes distinct values).'


class DistinctValues(argparse.Action):
  """Stores a list flag's values (`nargs='+'`, `'*'` or a positional), refusing a value given twice."""

  def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
               values: Sequence[Any], option_string: Optional[str] = None) -> None:
    repeated = first_repeat(values)
    if repeated is not None:
      raise argparse.ArgumentError(self, _repeat_message(option_string or self.metavar or self.dest, repeated))
    setattr(namespace, self.dest, list(values))


class AppendDistinct(argparse.Action):
  """Appends a repeatable flag's value (`--flag A --flag B`), refusing one already given."""

  def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
               option_string: Optional[str] = None) -> None:
    items = list(getattr(namespace, self.dest, None) or [])  # a copy: never the parser's default list
    if values in items:
      raise argparse.ArgumentError(self, _repeat_message(option_string or self.dest, values))
    setattr(namespace, self.dest, items + [values])
