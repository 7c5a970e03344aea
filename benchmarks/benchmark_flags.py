"""The flag rules the benchmark scripts share: list flags that refuse a repeated value.

A benchmark runs its work once per value of a list flag (a seed, a metric set, a configuration), so a repeated
value would run the same work twice and, in a mean over the values, count it twice. These argparse actions
refuse it as a usage error naming the flag and the value.
"""

import argparse
from typing import Any, Iterable, Optional, Sequence


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
