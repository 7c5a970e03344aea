"""Reads and writes the interactions format: a UTF-8 CSV with one row per user-item interaction.

The format (the project's data contract):

- UTF-8 text, comma separated, with a header line; fields holding commas are quoted ("Heat, The (1995)").
- Required columns `user_id` (string, no surrounding spaces; `|` is part of the id, which is never split),
  `item_id` (likewise), `rating` (float, inside the rating scale) and `timestamp` (int, unix seconds,
  0 <= t < 10**11: larger values are taken for milliseconds); their names live in
  `schema.features.REQUIRED_COLUMNS`. One row per (user_id, item_id, timestamp).
- Optional user columns (`user_*`) and item columns (`item_*`), named with ASCII letters, digits and `_` only
  (the names become TensorFlow scope and vocabulary names). Their type is INT, FLOAT or STRING, inferred
  from the values unless a curated schema declares it (a value with a leading zero, such as the zip code 01002,
  or an integer beyond int64 makes the column STRING: it is a code, not a number). `user_age` and
  `item_release_year` are numbers whatever their leading zeros (`features.NUMERIC_COLUMN_USES`: Transform computes
  with them), and a value there that is not a number is refused. An empty field is a missing value; a
  column without any value is refused (the pipeline would never see it). Numbers are ASCII digits (`1_000`
  or non-ASCII digits are not numbers); floats must fit float32: a magnitude beyond 3.4e38 is refused, and so is a
  non-zero one below 1.18e-38 (float32 would store 0, or a subnormal that keeps fewer digits).
- Multi-valued fields (genres) hold their values separated by `|` and stay ONE raw string here; Transform
  splits them.
- Ids and string values hold no line break (`\\n`, `\\r`, possible inside a quoted field): Transform would leave
  them out of its vocabularies.

Every problem is reported before any training as an `InteractionsFormatError` naming the file, the line
(1-based, the header is line 1), the column and the fix.
"""

import codecs
import csv
import dataclasses
import enum
import io
import math
import os
import re
from typing import Any, Dict, List, Mapping, NoReturn, Optional, Sequence, Tuple

from absl import logging
import numpy as np

from schema import features

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
# Examples store floats as float32; a larger magnitude would not survive the write.
_FLOAT32_MAX = float(np.finfo(np.float32).max)
# float32's smallest normal number, 2**-126: a non-zero magnitude below it is stored as 0 (below 2**-150) or as a
# subnormal, which keeps fewer digits the closer it is to 0 and which TensorFlow's kernels may flush to 0.
_FLOAT32_TINY = float(np.finfo(np.float32).tiny)
# Timestamps at or above this (the year 5138 in seconds) are taken for milliseconds or finer units.
MAX_TIMESTAMP_SECONDS = 10**11

# ASCII numbers only: Python's int()/float() also accept '1_000' and non-ASCII digits, which no CSV writer means.
_INT_PATTERN = re.compile(r'\s*[+-]?[0-9]+\s*')
_FLOAT_PATTERN = re.compile(
    r'\s*[+-]?(?:[0-9]+\.?[0-9]*(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?|nan|inf|infinity)\s*',
    re.IGNORECASE)
# NaN and infinity as written; a finite decimal too large for a float (1e400) also parses as inf, but is not one.
_NON_FINITE_PATTERN = re.compile(r'\s*[+-]?(?:nan|inf|infinity)\s*', re.IGNORECASE)
# A number written with a leading zero (01002) is a code: its column is read as strings.
_LEADING_ZERO_PATTERN = re.compile(r'\s*[+-]?0[0-9]')
# Column names become TensorFlow scope names (the Keras layer '<name>_embedding', whose scope refuses spaces and
# most punctuation) and tf.Transform vocabulary file names (which turn '.' into '_' and runs of '-' into one, so
# 'item_a.b' and 'item_a_b' would share a vocabulary): only ASCII letters, digits and '_' are safe everywhere.
_COLUMN_NAME_PATTERN = re.compile(r'[A-Za-z0-9_]+')
_COLUMN_NAME_ALLOWED = "ASCII letters A-Z and a-z, digits 0-9 and '_'"
_LINE_BREAK = re.compile(rb'\r\n|\r|\n')
_LINE_BREAK_TEXT = re.compile(r'\r\n|\r|\n')  # as the CSV reader counts lines, also inside quoted fields
# Separators a CSV from a spreadsheet or a database export may use instead of ','.
_OTHER_SEPARATORS: Mapping[str, str] = {';': 'semicolon', '\t': 'tab'}
# Byte order marks of other Unicode encodings, UTF-32 first (its little-endian mark starts with UTF-16's).
_OTHER_UNICODE_BOMS: Tuple[Tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, 'UTF-32'), (codecs.BOM_UTF32_BE, 'UTF-32'),
    (codecs.BOM_UTF16_LE, 'UTF-16'), (codecs.BOM_UTF16_BE, 'UTF-16'))

DEFAULT_RATING_SCALE: Tuple[float, float] = (1.0, 5.0)


class ColumnType(enum.Enum):
  """Value type of a column; decides the tf.train.Example list type (int64, float, bytes)."""
  INT = 'int'
  FLOAT = 'float'
  STRING = 'string'


# Types of the required columns are fixed by the contract.
REQUIRED_COLUMN_TYPES: Mapping[str, ColumnType] = {
    features.USER_ID: ColumnType.STRING,
    features.ITEM_ID: ColumnType.STRING,
    features.RATING: ColumnType.FLOAT,
    features.TIMESTAMP: ColumnType.INT,
}


class InteractionsFormatError(ValueError):
  """An interactions file breaks the format; the message names file, line, column and the fix.

  Attributes:
    path: the file.
    line: 1-based line number (the header is line 1), or None when the problem is the file itself.
    column: the column name, or None when the problem is not tied to one column.
    problem: what is wrong.
    fix: what to do about it.
  """

  def __init__(self, path: str, problem: str, fix: str, line: Optional[int] = None,
               column: Optional[str] = None) -> None:
    self.path = path
    self.line = line
    self.column = column
    self.problem = problem
    self.fix = fix
    where = str(path)
    if line is not None:
      where += f', line {line}'
    if column is not None:
      where += f', column {column!r}'
    super().__init__(f'{where}: {problem}. Fix: {fix}')


@dataclasses.dataclass(frozen=True, eq=False)
class Interactions:
  """Interactions held column-wise, columns in file order.

  Attributes:
    columns: column name -> values, one per row. `user_id` and `item_id` are lists of str, `rating` a
      float64 array, `timestamp` an int64 array (unix seconds); optional columns are lists of int, float or
      str with None for a missing value.
    column_types: column name -> ColumnType, same keys and order as `columns`.
    path: the file the interactions were read from, if any.
  """
  columns: Dict[str, Any]
  column_types: Dict[str, ColumnType]
  path: Optional[str] = None

  def __post_init__(self) -> None:
    missing = [c for c in features.REQUIRED_COLUMNS if c not in self.columns]
    if missing:
      raise ValueError(f'Interactions lack required columns {missing}; pass all of '
                       f'{list(features.REQUIRED_COLUMNS)}.')
    if list(self.columns) != list(self.column_types):
      raise ValueError(f'column_types keys {list(self.column_types)} must equal the columns '
                       f'{list(self.columns)}, in the same order.')
    lengths = {name: len(values) for name, values in self.columns.items()}
    if len(set(lengths.values())) > 1:
      raise ValueError(f'All columns must have one value per row; got lengths {lengths}.')

  @property
  def num_rows(self) -> int:
    """Number of interactions."""
    return len(self.columns[features.USER_ID])

  @property
  def column_names(self) -> Tuple[str, ...]:
    """Column names in file order."""
    return tuple(self.columns)

  def column(self, name: str) -> Any:
    """Returns the values of column `name` (see the class docstring for their container)."""
    if name not in self.columns:
      raise KeyError(f'No column {name!r}; the columns are {list(self.columns)}.')
    return self.columns[name]

  def row(self, index: int) -> Dict[str, Any]:
    """Returns row `index` (0-based) as column name -> value, None for a missing optional value."""
    return {name: _python_value(values[index]) for name, values in self.columns.items()}

  def take(self, indices: Sequence[int]) -> 'Interactions':
    """Returns the rows at `indices` (0-based), in that order."""
    idx = np.asarray(indices, dtype=np.int64)
    taken = {}
    for name, values in self.columns.items():
      if isinstance(values, np.ndarray):
        taken[name] = values[idx]
      else:
        taken[name] = [values[i] for i in idx]
    return Interactions(columns=taken, column_types=dict(self.column_types), path=self.path)


def _python_value(value: Any) -> Any:
  """Converts numpy scalars to the matching Python scalar."""
  return value.item() if isinstance(value, np.generic) else value


def parse_int(text: str) -> Optional[int]:
  """Returns `text` (ASCII digits, optional sign) as an int64-range int, or None if it is not one."""
  if not _INT_PATTERN.fullmatch(text):
    return None
  value = int(text)
  return value if _INT64_MIN <= value <= _INT64_MAX else None


def parse_float(text: str) -> Optional[float]:
  """Returns `text` (an ASCII decimal number, NaN and inf included) as a float, or None if it is not one."""
  if not _FLOAT_PATTERN.fullmatch(text):
    return None
  return float(text)


def fits_float32(value: float) -> bool:
  """Whether `value` is finite and within float32's range (examples store floats as float32)."""
  return math.isfinite(value) and abs(value) <= _FLOAT32_MAX


def underflows_float32(value: float) -> bool:
  """Whether a non-zero finite `value` is stored as 0 or a subnormal in float32 (see `float32_underflow_problem`).

  Zero (either sign) does not underflow; neither does a value just below 2**-126 that float32 rounds up to it.
  """
  return (0 < abs(value) < _FLOAT32_TINY  # finite, non-zero, below the normal range
          and abs(float(np.float32(value))) < _FLOAT32_TINY)


def float32_underflow_problem(what: str, value: Any) -> str:
  """The problem text for `value` (`underflows_float32`), e.g. "value '1e-50' is too close to 0 for float32 ...".

  Args:
    what: what `value` is and its text as written, e.g. "value '1e-50'" or "rating '1e-50'".
    value: the parsed number.

  Returns:
    What is wrong, naming the float32 value it would be stored as.
  """
  return (f'{what} is too close to 0 for float32, the type it is stored as: it would be stored as '
          f'{float(np.float32(value)):.6g} (a non-zero magnitude below {_FLOAT32_TINY:.4g}, float32\'s smallest normal '
          'number, becomes 0 or loses digits)')


def is_missing(text: str) -> bool:
  """Whether a raw field is a missing value: empty, white space only, or only `|` separators and white space (a
  string feature of no token: Transform drops empty tokens, so ' | ' would be a present value that says nothing)."""
  return not text.replace(features.MULTI_VALUE_SEPARATOR, '').strip()


def normalized_text(value: str) -> str:
  """A string feature value without white space around it or around any of its `|`-separated tokens.

  Transform reads every string feature as a bag of `|`-separated tokens, so `Action | Comedy` would otherwise hold
  the tokens `Action ` and ` Comedy`, neither of which is the `Action` or `Comedy` of other rows. E.g.
  ' Action | Comedy ' -> 'Action|Comedy', 'F ' -> 'F'. Spaces inside a token are kept ('Film-Noir', 'Sci Fi').
  """
  return features.MULTI_VALUE_SEPARATOR.join(
      token.strip() for token in value.split(features.MULTI_VALUE_SEPARATOR))


def infer_column_types(
    raw_columns: Mapping[str, Sequence[str]],
    column_types: Optional[Mapping[str, ColumnType]] = None) -> Dict[str, ColumnType]:
  """Returns the type of every column, given its raw string values.

  Required columns have their fixed contract type. An optional column is INT if every non-empty value
  parses as an int64, else FLOAT if every non-empty value parses as a float, else STRING (an all-empty
  column is STRING). A value with a leading zero makes the column STRING, except in the columns Transform
  computes with as numbers (`features.NUMERIC_COLUMN_USES`: user_age, item_release_year), which are never
  inferred STRING for it. A type declared in `column_types` (e.g. from the curated schema) wins; whether the
  values fit it is checked when they are converted (`read_interactions`).

  Args:
    raw_columns: column name -> raw CSV field strings, in file order.
    column_types: declared types, column name -> ColumnType; names not in `raw_columns` are ignored.

  Returns:
    Column name -> ColumnType, in the order of `raw_columns`.

  Raises:
    ValueError: if `column_types` declares a required column with a type other than its contract type, or a
      column Transform computes with as a number (`features.NUMERIC_COLUMN_USES`) as STRING.
  """
  declared = dict(column_types or {})
  for name, required_type in REQUIRED_COLUMN_TYPES.items():
    if name in declared and declared[name] != required_type:
      raise ValueError(
          f'column_types declares {name!r} as {declared[name].name}, but the contract fixes it as '
          f'{required_type.name}. Fix: drop {name!r} from column_types.')
  for name, use in features.NUMERIC_COLUMN_USES.items():
    if name in declared and ColumnType(declared[name]) == ColumnType.STRING:
      raise ValueError(
          f'column_types (e.g. the --schema) declares {name!r} as STRING, but Transform computes {use} from it as '
          f'a number. Fix: declare {name!r} as INT or FLOAT, or rename the column (e.g. {name}_label) to use it '
          'as a category.')
  inferred: Dict[str, ColumnType] = {}
  for name, values in raw_columns.items():
    if name in REQUIRED_COLUMN_TYPES:
      inferred[name] = REQUIRED_COLUMN_TYPES[name]
    elif name in declared:
      inferred[name] = ColumnType(declared[name])
    else:
      inferred[name] = _infer_type(values, numeric=name in features.NUMERIC_COLUMN_USES)
  return inferred


def _infer_type(values: Sequence[str], numeric: bool = False) -> ColumnType:
  """Infers the type of one optional column from its raw values; `numeric` columns (Transform computes with
  them as numbers) are INT or FLOAT whenever their values are numbers, leading zeros or not."""
  present = {v for v in values if not is_missing(v)}  # distinct values: columns repeat them row after row
  if not present:
    return ColumnType.STRING
  if not numeric and any(_LEADING_ZERO_PATTERN.match(v) for v in present):
    return ColumnType.STRING  # codes such as zip codes: 01002 must not become 1002
  if all(_INT_PATTERN.fullmatch(v) for v in present):
    if all(parse_int(v) is not None for v in present):
      return ColumnType.INT
    if not numeric:
      return ColumnType.STRING  # integers beyond int64 are identifiers; as floats they would lose digits
  if all(parse_float(v) is not None for v in present):
    return ColumnType.FLOAT
  return ColumnType.STRING


def _decode_utf8(path: str, data: bytes) -> str:
  """Decodes `data` as UTF-8 (a leading BOM is dropped) or raises naming the line and column."""
  for other_bom, encoding in _OTHER_UNICODE_BOMS:
    if data.startswith(other_bom):
      raise InteractionsFormatError(
          path, f'the file is {encoding}, not UTF-8 (it starts with the {encoding} byte order mark '
          f'{other_bom.hex(" ").upper()})',
          f'convert it to UTF-8 (e.g. `iconv -f {encoding} -t UTF-8 in.csv > out.csv`)', line=1)
  bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
  try:
    return data[bom:].decode('utf-8')
  except UnicodeDecodeError as e:
    bad = bom + e.start  # e.start counts from after the BOM
    # Lines end at \r\n, \n or a lone \r, as the CSV reader counts them.
    line_ends = [m.end() for m in _LINE_BREAK.finditer(data, bom, bad)]
    line = len(line_ends) + 1
    column = None
    # The field holding the byte: the records before it (valid UTF-8) and a stand-in for the byte, so that the
    # fields of a row whose quoted field holds line breaks are counted from the line the row starts on.
    try:
      records = list(csv.reader(io.StringIO(data[bom:bad].decode('utf-8') + '?', newline='')))
    except csv.Error:  # e.g. a NUL byte: the message still names the line, without a column
      records = []
    if len(records) > 1:  # the header is records[0]; the last record holds the stand-in
      field_index = len(records[-1]) - 1
      if field_index < len(records[0]):
        column = records[0][field_index]
    raise InteractionsFormatError(
        path, f'byte 0x{data[bad]:02x} is not valid UTF-8',
        'save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8 in.csv > out.csv`)',
        line=line, column=column) from e


def _check_comma_separated(path: str, header: List[str]) -> None:
  """Raises if a header without any required column holds ';' or a tab: the file uses another separator."""
  line = ','.join(header)
  counts = {separator: line.count(separator) for separator in _OTHER_SEPARATORS}
  separator = max(counts, key=counts.get)
  if counts[separator]:
    label = _OTHER_SEPARATORS[separator]
    raise InteractionsFormatError(
        path, f'the header holds no comma-separated required column ({", ".join(features.REQUIRED_COLUMNS)}) '
        f'but holds {label}s: the file is {label}-separated, and the interactions format is '
        'comma-separated',
        'save the file comma-separated (e.g. `python3 -c "import csv, sys; '
        f'csv.writer(sys.stdout).writerows(csv.reader(sys.stdin, delimiter={separator!r}))" '
        '< in.csv > out.csv`)', line=1)


def _check_header(path: str, header: List[str]) -> None:
  """Raises if the header has duplicate, reserved, unknown, badly spelled (see _COLUMN_NAME_PATTERN) or missing
  columns."""
  if not any(name.strip() in features.REQUIRED_COLUMNS for name in header):
    _check_comma_separated(path, header)
  for name in header:
    if not name:
      raise InteractionsFormatError(
          path, 'the header has an empty column name (a comma at the start or the end of the line, or two in a '
          "row; pandas' to_csv writes its index as a first column without a name)",
          'name the column, or drop it and its field in every row (e.g. the trailing comma of every line; '
          'to_csv(..., index=False) leaves the index out)', line=1, column=name)
    if name != name.strip():
      raise InteractionsFormatError(
          path, 'the column name begins or ends with white space (spaces after the commas?)',
          f'write it {name.strip()!r}, and put no spaces around the commas of any line (ids with spaces around '
          'them are refused, other values would keep the spaces), e.g. `python3 -c "import csv, sys; '
          'csv.writer(sys.stdout).writerows([f.strip() for f in r] for r in csv.reader(sys.stdin))" '
          '< in.csv > out.csv`', line=1, column=name)
  seen = set()
  for name in header:
    if name in seen:
      raise InteractionsFormatError(
          path, 'the column appears twice in the header', 'rename or drop one of the two columns',
          line=1, column=name)
    seen.add(name)
  for name in header:
    if name in features.DERIVED_COLUMNS:
      raise InteractionsFormatError(
          path, 'the column name is reserved: the pipeline derives a feature of that name '
          f'(reserved: {", ".join(features.DERIVED_COLUMNS)})',
          f'rename the column (e.g. {name}_given) or drop it', line=1, column=name)
    if name not in features.REQUIRED_COLUMNS and not (
        features.is_user_feature(name) or features.is_item_feature(name)):
      lower = name.lower()
      if lower in features.REQUIRED_COLUMNS or features.is_user_feature(lower) or features.is_item_feature(lower):
        fix = f'write it in lower case, {lower!r} (column names are case-sensitive)'
      else:
        fix = (f'rename it with the prefix {features.USER_FEATURE_PREFIX!r} (user feature) or '
               f'{features.ITEM_FEATURE_PREFIX!r} (item feature), or drop the column')
      raise InteractionsFormatError(
          path, 'unknown column: it is neither required '
          f'({", ".join(features.REQUIRED_COLUMNS)}) nor a user or item feature', fix, line=1, column=name)
    if not _COLUMN_NAME_PATTERN.fullmatch(name):
      bad = sorted({c for c in name if not _COLUMN_NAME_PATTERN.fullmatch(c)})
      raise InteractionsFormatError(
          path, f'the column name holds {", ".join(repr(c) for c in bad)}: TensorFlow cannot use it as a '
          f'feature name (allowed: {_COLUMN_NAME_ALLOWED})',
          f'rename the column, e.g. to {re.sub(r"[^A-Za-z0-9_]", "_", name)!r}', line=1, column=name)
  missing = [name for name in features.REQUIRED_COLUMNS if name not in seen]
  if missing:
    raise InteractionsFormatError(
        path, f'required column missing (the header lacks {", ".join(missing)})',
        f'add the column(s) {", ".join(missing)}; the required columns are '
        f'{", ".join(features.REQUIRED_COLUMNS)}', line=1, column=missing[0])


def read_interactions(
    path: str,
    rating_scale: Tuple[float, float] = DEFAULT_RATING_SCALE,
    column_types: Optional[Mapping[str, ColumnType]] = None) -> Interactions:
  """Reads and validates an interactions CSV.

  Args:
    path: the CSV file.
    rating_scale: (min, max) allowed ratings, inclusive.
    column_types: declared types of optional columns (e.g. from the curated schema); they win over
      inference and every value must fit them.

  Returns:
    The interactions, columns in file order.

  Raises:
    InteractionsFormatError: on any format problem, naming the file, line, column and the fix.
    ValueError: if `rating_scale` is not (min, max) with finite min < max within float32, or `column_types`
      conflicts with the contract (see `infer_column_types`).
  """
  low, high = check_rating_scale(rating_scale)
  if not os.path.isfile(path):
    raise InteractionsFormatError(
        path, 'no such file' if not os.path.exists(path) else 'not a file',
        'pass the path of an interactions CSV (e.g. one written by ingestion.movielens or '
        'ingestion.fixtures)')
  with open(path, 'rb') as f:
    data = f.read()
  text = _decode_utf8(path, data)
  if not text.strip():
    raise InteractionsFormatError(
        path, 'the file is empty',
        f'write a header line ({",".join(features.REQUIRED_COLUMNS)}, ...) and one row per '
        'interaction', line=1)

  # strict: a quote left open or text after a closing quote is an error, not silently merged rows.
  reader = csv.reader(io.StringIO(text, newline=''), strict=True)
  header = _next_record(path, reader, 1)
  if not header or (len(header) == 1 and is_missing(header[0])):  # nothing, or white space only
    raise InteractionsFormatError(
        path, 'the first line is blank, and the header must be the first line',
        f'remove the blank lines above the header ({",".join(features.REQUIRED_COLUMNS)}, ...)', line=1)
  _check_header(path, header)
  raw: Dict[str, List[str]] = {name: [] for name in header}
  line_numbers: List[int] = []
  record_start = reader.line_num + 1
  while True:
    line = record_start
    record = _next_record(path, reader, line)
    if record is None:
      break
    record_start = reader.line_num + 1
    if not record or (len(record) == 1 and not record[0].strip()):  # a blank line, or one of white space only
      continue
    if len(record) > len(header):
      _refuse_extra_fields(path, header, record, line)
    if len(record) < len(header):
      raise InteractionsFormatError(
          path, f'the row has {len(record)} fields but the header has {len(header)}',
          'give every row one field per header column; quote fields that contain commas '
          '("a, b")', line=line, column=header[len(record)])
    for name, value in zip(header, record):
      raw[name].append(value)
    line_numbers.append(line)
  if not line_numbers:
    raise InteractionsFormatError(
        path, 'the file has a header but no rows', 'add one row per interaction below the header',
        line=2)

  for name in features.optional_columns(header):
    if all(is_missing(value) for value in raw[name]):
      raise InteractionsFormatError(
          path, f'the column holds no value in any of the {len(line_numbers)} rows; the examples omit missing '
          'values, so the pipeline would never see the column, and a model configuration naming it would only '
          'fail in the Trainer', 'fill in its values, or drop the column', line=1, column=name)
  types = infer_column_types(raw, column_types)
  for name, use in features.NUMERIC_COLUMN_USES.items():
    if types.get(name) == ColumnType.STRING:
      _refuse_non_number(path, name, use, raw[name], line_numbers)
  columns: Dict[str, Any] = {}
  for name in header:
    values = raw[name]
    if name in (features.USER_ID, features.ITEM_ID):
      columns[name] = _convert_ids(path, name, values, line_numbers)
    elif name == features.RATING:
      columns[name] = _convert_ratings(path, values, line_numbers, low, high)
    elif name == features.TIMESTAMP:
      columns[name] = _convert_timestamps(path, values, line_numbers)
    else:
      columns[name] = _convert_optional(path, name, values, line_numbers, types[name],
                                        declared=bool(column_types and name in column_types))
  for name, (low_value, high_value) in features.NUMERIC_COLUMN_RANGES.items():
    if types.get(name) in (ColumnType.INT, ColumnType.FLOAT):
      _refuse_out_of_range(path, name, columns[name], line_numbers, low_value, high_value)
  _check_unique_interactions(path, columns, line_numbers)
  interactions = Interactions(columns=columns, column_types=types, path=path)
  logging.info('Read %d interactions with columns %s from %s', interactions.num_rows,
               {name: t.name for name, t in types.items()}, path)
  return interactions


def _next_record(path: str, reader: Any, line: int) -> Optional[List[str]]:
  """The reader's next record (None at the end of the file), a CSV syntax error raised naming `line`, the
  line the record starts on (a NUL byte or text after a closing quote: the line holding it, which is a later one
  when a quoted field holds line breaks)."""
  try:
    return next(reader)
  except StopIteration:
    return None
  except csv.Error as e:
    message = str(e)
    if 'unexpected end of data' in message:
      problem = 'a quoted field opened in the row starting on this line is never closed'
      fix = 'close the quote; a quote inside a quoted field is written twice ("a ""b"" c")'
    elif 'field limit' in message:
      problem = (f'a field of the row starting on this line is longer than {csv.field_size_limit():,} '
                 'characters, usually a quote opened there and never closed')
      fix = 'close the quote, or shorten the field'
    elif 'NUL' in message:
      line = reader.line_num
      problem = 'the line holds a NUL byte (0x00)'
      fix = 'remove the NUL bytes (e.g. `tr -d \'\\000\' < in.csv > out.csv`); is the file UTF-16?'
    else:
      line = reader.line_num
      problem = f'the CSV is malformed ({message})'
      fix = ('quote a field holding commas or quotes, write a quote inside it twice, and put '
             'nothing between a closing quote and the next comma')
    raise InteractionsFormatError(path, problem, fix, line=line) from e


def _refuse_extra_fields(path: str, header: Sequence[str], record: Sequence[str], line: int) -> NoReturn:
  """Raises for a row with more fields than the header, naming the position of its first extra field.

  The extra fields have no header column, so the error names the field by its 1-based position in the row (the
  first extra one is column `len(header) + 1`, after the last header column) rather than by a column name. `line`
  is the line the row starts on; when a quoted field before the first extra one holds line breaks, the message
  also names the line the extra field is on.

  Args:
    path: the file.
    header: the header's column names.
    record: the row's fields, more of them than `header` has.
    line: 1-based line the row starts on.

  Raises:
    InteractionsFormatError: always, with `column` None (the extra fields have no column name).
  """
  position = len(header) + 1
  extra = record[len(header)]
  held = f'holds {extra!r}' if extra else 'is empty (a comma at the end of the line?)'
  breaks = sum(len(_LINE_BREAK_TEXT.findall(field)) for field in record[:len(header)])
  on_line = f' (on line {line + breaks}: a quoted field before it holds a line break)' if breaks else ''
  raise InteractionsFormatError(
      path, f'the row has {len(record)} fields but the header has {len(header)}: its first extra field, '
      f'column {position}, after the last header column {header[-1]!r}, {held}{on_line}',
      'quote fields that contain commas ("Heat, The (1995)"), remove commas at the end of the line, or name the '
      f'extra columns in the header ({features.USER_FEATURE_PREFIX}* or {features.ITEM_FEATURE_PREFIX}* columns)',
      line=line)


def _check_unique_interactions(path: str, columns: Mapping[str, Any], lines: Sequence[int]) -> None:
  """Raises if two rows share user_id, item_id and timestamp (a duplicated event; twins across the train/eval
  split would leak eval labels into training)."""
  first_line: Dict[Tuple[str, str, int], int] = {}
  for key, line in zip(zip(columns[features.USER_ID], columns[features.ITEM_ID],
                           columns[features.TIMESTAMP].tolist()), lines):
    seen = first_line.setdefault(key, line)
    if seen != line:
      raise InteractionsFormatError(
          path, f'the row repeats the user_id {key[0]!r}, item_id {key[1]!r} and timestamp {key[2]} of '
          f'line {seen}', 'keep one row per user, item and second (drop duplicated events)', line=line)


def check_rating_scale(rating_scale: Tuple[float, float]) -> Tuple[float, float]:
  """Returns (min, max) of a valid rating scale or raises.

  Raises:
    ValueError: if `rating_scale` is not two numbers, not finite with min < max, beyond float32, or has a non-zero
      bound float32 would store as 0 or a subnormal (`underflows_float32`, e.g. 1e-50), as a rating there would be.
  """
  try:
    low, high = (float(v) for v in rating_scale)
  except (TypeError, ValueError) as e:
    raise ValueError(f'rating_scale must be (min, max) numbers, got {rating_scale!r}.') from e
  if not (math.isfinite(low) and math.isfinite(high) and low < high):
    raise ValueError(f'rating_scale must be finite with min < max, got {rating_scale!r}. '
                     'Fix: pass e.g. --rating-scale 1 5.')
  if not (fits_float32(low) and fits_float32(high)):
    raise ValueError(f'rating_scale {rating_scale!r} goes beyond float32 (+-{_FLOAT32_MAX:.4g}), the type '
                     'ratings are stored as. Fix: pass e.g. --rating-scale 1 5.')
  for bound, name in ((low, 'min'), (high, 'max')):
    if underflows_float32(bound):
      raise ValueError(f'rating_scale {rating_scale!r}: its ' + float32_underflow_problem(f'{name} {bound!r}', bound)
                       + '. Fix: pass 0 for a bound of zero, or rescale the ratings, e.g. --rating-scale 1 5.')
  return low, high


def _refuse_non_number(path: str, name: str, use: str, values: Sequence[str], lines: Sequence[int]) -> None:
  """Raises at the first value of column `name` that is not a number: Transform computes `use` from the column as
  a number, and a STRING column would crash it."""
  for value, line in zip(values, lines):
    if not is_missing(value) and parse_float(value) is None:
      raise InteractionsFormatError(
          path, f'value {value!r} is not a number, and Transform computes {use} from {name} as a number',
          f'write {name} as a number, leave the field empty for a missing value, or rename the column '
          f'(e.g. {name}_label) to use it as a category', line=line, column=name)


def _refuse_out_of_range(path: str, name: str, values: Sequence[Any], lines: Sequence[int], low: float,
                         high: float) -> None:
  """Raises at the first value of column `name` outside [low, high] (`features.NUMERIC_COLUMN_RANGES`)."""
  for value, line in zip(values, lines):
    if value is not None and not low <= value <= high:
      raise InteractionsFormatError(
          path, f'{name} {value!r} is outside {low}..{high}', f'correct the value, or leave the field empty for a '
          f'missing value (a placeholder such as 0 for "unknown" would be read as a real {name})', line=line,
          column=name)


def _refuse_line_break(path: str, name: str, value: str, line: int, what: str) -> None:
  """Raises if `value` holds a line break (possible inside a quoted field): tf.Transform leaves tokens holding
  `\\n` or `\\r` out of its vocabularies, so the value would silently become out-of-vocabulary."""
  if '\n' in value or '\r' in value:
    raise InteractionsFormatError(
        path, f'{what} {value!r} (in the row starting on this line) holds a line break, and tf.Transform '
        'leaves values with line breaks out of its vocabularies: it would silently be an unknown value',
        'remove the line breaks from the quoted field (e.g. replace them with spaces)', line=line,
        column=name)


def _convert_ids(path: str, name: str, values: List[str], lines: List[int]) -> List[str]:
  """Checks the ids of column `name` (user_id or item_id) and returns them unchanged.

  An id is one whole string, compared exactly: Transform gives each distinct id its own vocabulary entry without
  splitting it, so `|` is a character of the id like any other (`a|b`, or `|` alone) and not, as in the optional
  string columns (`is_missing`), a separator that leaves an id of only `|` empty.

  Raises:
    InteractionsFormatError: naming the line and column of the first id that is empty or white space only, holds
      a line break, or has white space around it.
  """
  for value, line in zip(values, lines):
    if not value.strip():
      raise InteractionsFormatError(
          path, 'empty value in a required column', f'give every row a {name}, or drop the row',
          line=line, column=name)
    _refuse_line_break(path, name, value, line, name)
    if value != value.strip():
      raise InteractionsFormatError(
          path, f'{name} {value!r} begins or ends with white space (ids are compared exactly, so it would '
          f'name another {name[:-3]} than {value.strip()!r})', 'remove the spaces around the id',
          line=line, column=name)
  return values


def _convert_ratings(path: str, values: List[str], lines: List[int], low: float,
                     high: float) -> np.ndarray:
  ratings = np.empty(len(values), dtype=np.float64)
  name = features.RATING
  for i, (value, line) in enumerate(zip(values, lines)):
    if is_missing(value):
      raise InteractionsFormatError(
          path, 'empty value in a required column', 'give every row a rating, or drop the row',
          line=line, column=name)
    rating = parse_float(value)
    if rating is None:
      raise InteractionsFormatError(
          path, f'rating {value!r} is not a number', 'write the rating as a number, e.g. 4 or 3.5',
          line=line, column=name)
    if _NON_FINITE_PATTERN.fullmatch(value):  # 1e400 goes on: outside the rating scale
      raise InteractionsFormatError(
          path, f'rating {value!r} is not a finite number', 'write a finite rating or drop the row',
          line=line, column=name)
    if not low <= rating <= high:
      raise InteractionsFormatError(
          path, f'rating {value!r} is outside the rating scale [{low:g}, {high:g}]',
          'correct the rating, or pass the scale your data uses with --rating-scale MIN MAX '
          '(rating_scale=(MIN, MAX) in Python)', line=line, column=name)
    if underflows_float32(rating):
      raise InteractionsFormatError(
          path, float32_underflow_problem(f'rating {value!r}', rating),
          'write 0 if the rating is zero, or rescale the ratings and pass the scale with --rating-scale MIN MAX',
          line=line, column=name)
    ratings[i] = rating
  return ratings


def _convert_timestamps(path: str, values: List[str], lines: List[int]) -> np.ndarray:
  timestamps = np.empty(len(values), dtype=np.int64)
  name = features.TIMESTAMP
  fix = 'write the time as whole unix seconds (an integer >= 0, e.g. 881250949)'
  for i, (value, line) in enumerate(zip(values, lines)):
    if is_missing(value):
      raise InteractionsFormatError(
          path, 'empty value in a required column', f'{fix}, or drop the row', line=line,
          column=name)
    timestamp = parse_int(value)
    if timestamp is None and _INT_PATTERN.fullmatch(value):
      timestamp = int(value)  # an integer beyond int64: refused below as negative or too large
    if timestamp is None:
      as_float = parse_float(value)
      if as_float is not None and _NON_FINITE_PATTERN.fullmatch(value):
        problem = f'timestamp {value!r} is not a finite number'
      else:
        problem = f'timestamp {value!r} is not an integer'
      raise InteractionsFormatError(path, problem, fix, line=line, column=name)
    if timestamp < 0:
      raise InteractionsFormatError(
          path, f'timestamp {value!r} is negative', fix, line=line, column=name)
    if timestamp >= MAX_TIMESTAMP_SECONDS:
      raise InteractionsFormatError(
          path, f'timestamp {value!r} is after the year 5000 in seconds: it looks like milliseconds or a '
          'finer unit', f'{fix}; divide milliseconds by 1000', line=line, column=name)
    timestamps[i] = timestamp
  return timestamps


def _convert_optional(path: str, name: str, values: List[str], lines: List[int],
                      column_type: ColumnType, declared: bool) -> List[Any]:
  """Converts an optional column to its type; missing values become None."""
  if column_type == ColumnType.STRING:
    strings: List[Optional[str]] = []
    for value, line in zip(values, lines):
      if is_missing(value):
        strings.append(None)
      else:
        _refuse_line_break(path, name, value, line, 'value')
        strings.append(normalized_text(value))
    return strings
  parse = parse_int if column_type == ColumnType.INT else parse_float
  source = 'the declared column_types' if declared else 'the other values of the column'
  converted: List[Any] = []
  known: Dict[str, Any] = {}  # value -> its checked conversion (columns repeat values row after row)
  for value, line in zip(values, lines):
    parsed = known.get(value)
    if parsed is not None:
      converted.append(parsed)
      continue
    if is_missing(value):
      converted.append(None)
      continue
    parsed = parse(value)
    if parsed is None:
      raise InteractionsFormatError(
          path, f'value {value!r} is not {column_type.name} as {source} require',
          f'correct the value, leave the field empty for a missing value, or declare '
          f'{name!r} with another type', line=line, column=name)
    if column_type == ColumnType.FLOAT and _NON_FINITE_PATTERN.fullmatch(value):  # 1e400: beyond float32 below
      raise InteractionsFormatError(
          path, f'value {value!r} is not a finite number',
          'write a finite number, or leave the field empty for a missing value', line=line,
          column=name)
    if column_type == ColumnType.FLOAT and not fits_float32(parsed):
      raise InteractionsFormatError(
          path, f'value {value!r} is beyond float32 (+-{_FLOAT32_MAX:.4g}), the type features are stored as',
          'rescale the column (e.g. to thousands), or leave the field empty for a missing value',
          line=line, column=name)
    if column_type == ColumnType.FLOAT and underflows_float32(parsed):
      raise InteractionsFormatError(
          path, float32_underflow_problem(f'value {value!r}', parsed),
          'rescale the column (e.g. to millionths), write 0 if the value is zero, or leave the field empty for a '
          'missing value', line=line, column=name)
    known[value] = parsed
    converted.append(parsed)
  return converted


def format_value(value: Any, column_type: ColumnType, keep_float_marker: bool = True) -> str:
  """Formats one value as a CSV field of the interactions format.

  Args:
    value: the value; None is a missing value (empty field).
    column_type: the column's type.
    keep_float_marker: write integral floats as '3.0' so that a re-read optional column stays FLOAT;
      False writes '3' (used for `rating`, FLOAT by contract).

  Returns:
    The field text.
  """
  if value is None:
    return ''
  if column_type == ColumnType.INT:
    return str(int(value))
  if column_type == ColumnType.FLOAT:
    number = float(value)
    if not keep_float_marker and number.is_integer():
      return str(int(number))
    return repr(number)
  return str(value)


def write_interactions(interactions: Interactions, path: str) -> None:
  """Writes `interactions` as an interactions CSV (UTF-8, header, `\\n` line ends).

  Args:
    interactions: the interactions to write.
    path: the output file; its folder is created if needed.
  """
  folder = os.path.dirname(path)
  if folder:
    os.makedirs(folder, exist_ok=True)
  names = interactions.column_names
  formats = [(interactions.column(name), interactions.column_types[name], name != features.RATING)
             for name in names]
  with open(path, 'w', encoding='utf-8', newline='') as f:
    writer = csv.writer(f, lineterminator='\n')
    writer.writerow(names)
    for i in range(interactions.num_rows):
      writer.writerow([format_value(_python_value(values[i]), column_type, keep_marker)
                       for values, column_type, keep_marker in formats])
  logging.info('Wrote %d interactions to %s', interactions.num_rows, path)
