"""An item's or a user's attributes, read from its interactions: each column's latest non-missing value.

The interactions format repeats an item's `item_*` columns (and a user's `user_*` columns) on every interaction
row, and the rows of one item need not agree: a product's category is edited, a user's age or occupation changes,
an exporter leaves a value out on some rows. Each training and evaluation example keeps the values of its own row
(what was true when the interaction happened). Whatever describes the item or user *as it is now* uses this one
rule instead: the item catalog (`ingestion.prepare`), the retrieval candidates (`trainer.retrieval.candidates`),
and the serving catalogue and user profiles (`serving.assets`).

The rule, per column: the value of the row with the latest `timestamp` among the rows where the column is not
missing. Rows at the same latest second are ordered by their value (the greatest wins), so the answer does not
depend on the order the rows are read in: ExampleGen does not keep a file's order, and before this rule the
catalogue took whichever row came first, which could differ between two runs of the same data. A row without a
timestamp counts as older than any that has one.
"""

from typing import Any, Dict, Hashable, List, Mapping, Optional, Sequence, Set, Tuple

# (timestamp, value) of the value kept for one column; None sorts before any timestamp.
_Stamped = Tuple[Tuple[bool, int], Any]


def _stamp(timestamp: Optional[int], value: Any) -> _Stamped:
  """The sort key of a value: rows without a timestamp first, then by timestamp, then by value."""
  return ((timestamp is not None, 0 if timestamp is None else int(timestamp)), value)


class LatestAttributes:
  """Accumulates rows of (key, timestamp, attribute columns); answers each key's latest non-missing values.

  Keys are item or user ids; `keys()` lists them in the order they were first added.
  """

  def __init__(self) -> None:
    self._stamped: Dict[Hashable, Dict[str, _Stamped]] = {}
    self._varying: Set[Hashable] = set()

  def add(self, key: Hashable, timestamp: Optional[int], attributes: Mapping[str, Any]) -> None:
    """Adds one row of `key`: `timestamp` in unix seconds (None if the row has none); None values are missing.

    Raises:
      ValueError: if `key` is None (a row without its id), or a column's value has another type than the value
        already kept for it (e.g. a str and an int): one column holds one kind of value
        (`ingestion.interactions.ColumnType`).
    """
    if key is None:  # an example without its item_id or user_id: its attributes would describe no item or user
      raise ValueError(f'A row without a key (None) holds {dict(attributes)!r}: each row needs the id of the item or '
                       'user it describes; give every example its item_id and user_id.')
    stamped = self._stamped.setdefault(key, {})
    for column, value in attributes.items():
      if value is None:
        continue
      candidate = _stamp(timestamp, value)
      kept = stamped.get(column)
      if kept is None:
        stamped[column] = candidate
        continue
      if type(kept[1]) is not type(value) and not (isinstance(kept[1], (int, float)) and
                                                   isinstance(value, (int, float))):
        raise ValueError(f'Column {column!r} of {key!r} holds a value of type {type(kept[1]).__name__} '
                         f'({kept[1]!r}) and one of type {type(value).__name__} ({value!r}); one column holds one '
                         'kind of value: fix the type of the column where it is written.')
      if kept[1] != value:
        self._varying.add(key)
      if candidate > kept:
        stamped[column] = candidate

  def add_columns(self, keys: Sequence[Hashable], timestamps: Sequence[Optional[int]],
                  columns: Mapping[str, Sequence[Any]]) -> None:
    """Adds the rows of a batch of columns: `keys[i]`, `timestamps[i]` and `columns[c][i]` form row i.

    Raises:
      ValueError: if the sequences are not all as long as `keys`, or as `add` does.
    """
    lengths = {len(timestamps)} | {len(values) for values in columns.values()}
    if lengths - {len(keys)}:
      raise ValueError(f'{len(keys)} keys but columns of lengths {sorted(lengths)}: every column holds one value '
                       'per row.')
    names = list(columns)
    for i, key in enumerate(keys):
      self.add(key, timestamps[i], {name: columns[name][i] for name in names})

  def keys(self) -> List[Hashable]:
    """Every key added, in the order of its first row."""
    return list(self._stamped)

  def attributes(self, key: Hashable) -> Dict[str, Any]:
    """Column -> the latest non-missing value of `key`; a column missing on all its rows is absent.

    Raises:
      KeyError: for a key never added.
    """
    return {column: stamped[1] for column, stamped in self._stamped[key].items()}

  def varying_key_count(self) -> int:
    """How many keys had two different values of one column on their rows (logged by the callers)."""
    return len(self._varying)
