"""Tests for ingestion.interactions: reading, validating and writing the interactions CSV format."""

import os
import pathlib
from typing import List, Optional, Tuple, Union

from google.protobuf import text_format
import numpy as np
import pytest
from tensorflow_metadata.proto.v0 import schema_pb2

from ingestion import interactions as il
import schema
from schema import features

ColumnType = il.ColumnType
HEADER = 'user_id,item_id,rating,timestamp'


def _write(tmp_path: pathlib.Path, content: Union[str, bytes], name: str = 'interactions.csv') -> str:
  path = os.path.join(str(tmp_path), name)
  data = content if isinstance(content, bytes) else content.encode('utf-8')
  with open(path, 'wb') as f:
    f.write(data)
  return path


def test_reads_columns_types_and_missing_values(tmp_path: pathlib.Path) -> None:
  path = _write(tmp_path, (
      'user_id,item_id,rating,timestamp,user_age,item_title,item_genres,item_score\n'
      'u1,i1,4,100,30,"Heat, The (1995)",Action|Crime,0.5\n'
      'u2,i2,3.5,200,,Plain,,2\n'))
  got = il.read_interactions(path)
  assert got.num_rows == 2
  assert got.column_names == ('user_id', 'item_id', 'rating', 'timestamp', 'user_age', 'item_title',
                              'item_genres', 'item_score')
  assert got.column('user_id') == ['u1', 'u2']
  np.testing.assert_array_equal(got.column('rating'), [4.0, 3.5])
  assert got.column('timestamp').dtype == np.int64
  np.testing.assert_array_equal(got.column('timestamp'), [100, 200])
  assert got.column('user_age') == [30, None]
  assert got.column('item_title') == ['Heat, The (1995)', 'Plain']
  assert got.column('item_genres') == ['Action|Crime', None]
  assert got.column('item_score') == [0.5, 2.0]
  assert got.column_types == {
      'user_id': ColumnType.STRING, 'item_id': ColumnType.STRING, 'rating': ColumnType.FLOAT,
      'timestamp': ColumnType.INT, 'user_age': ColumnType.INT, 'item_title': ColumnType.STRING,
      'item_genres': ColumnType.STRING, 'item_score': ColumnType.FLOAT}
  assert got.row(1) == {'user_id': 'u2', 'item_id': 'i2', 'rating': 3.5, 'timestamp': 200,
                        'user_age': None, 'item_title': 'Plain', 'item_genres': None, 'item_score': 2.0}


def test_spaces_around_string_values_and_their_tokens_are_removed(tmp_path: pathlib.Path) -> None:
  path = _write(tmp_path, (
      'user_id,item_id,rating,timestamp,user_gender,item_title,item_genres\n'
      'u1,i1,4,100, F ,Two Friends (1986) ,Action | Crime\n'
      'u2,i2,3,200,M,Sci Fi,Sci Fi|Film-Noir \n'))
  got = il.read_interactions(path)
  assert got.column('user_gender') == ['F', 'M']
  assert got.column('item_title') == ['Two Friends (1986)', 'Sci Fi']  # inner spaces kept
  assert got.column('item_genres') == ['Action|Crime', 'Sci Fi|Film-Noir']


def test_a_value_of_separators_and_spaces_only_is_a_missing_value(tmp_path: pathlib.Path) -> None:
  # ' | ' holds no token: read as present it would win the latest-value rule and wipe the item's genres.
  path = _write(tmp_path, f'{HEADER},item_genres\nu1,i1,4,10,Action|Comedy\nu2,i1,4,20, | \nu3,i1,4,30,|\n')
  assert il.read_interactions(path).column('item_genres') == ['Action|Comedy', None, None]


def test_infer_column_types_and_override() -> None:
  raw = {'user_id': ['7'], 'user_a': ['1', '', '2'], 'user_b': ['1', '2.5'], 'item_c': ['x', '1'],
         'item_d': ['', '']}
  assert il.infer_column_types(raw) == {
      'user_id': ColumnType.STRING, 'user_a': ColumnType.INT, 'user_b': ColumnType.FLOAT,
      'item_c': ColumnType.STRING, 'item_d': ColumnType.STRING}
  overridden = il.infer_column_types(raw, {'user_a': ColumnType.STRING, 'item_absent': ColumnType.INT})
  assert overridden['user_a'] == ColumnType.STRING
  assert 'item_absent' not in overridden
  with pytest.raises(ValueError, match="'rating'"):
    il.infer_column_types(raw, {'rating': ColumnType.INT})


def test_declared_type_wins_and_misfit_names_line_and_column(tmp_path: pathlib.Path) -> None:
  path = _write(tmp_path, f'{HEADER},user_zip\nu1,i1,4,100,01234\nu2,i2,3,100,99\n')
  got = il.read_interactions(path, column_types={'user_zip': ColumnType.STRING})
  assert got.column('user_zip') == ['01234', '99']
  bad = _write(tmp_path, f'{HEADER},user_age\nu1,i1,4,100,30\nu2,i2,3,100,old\n', 'bad.csv')
  with pytest.raises(il.InteractionsFormatError) as e:
    il.read_interactions(bad, column_types={'user_age': ColumnType.INT})
  assert (e.value.line, e.value.column) == (3, 'user_age')
  assert "value 'old' is not INT as the declared column_types require" in str(e.value)


def test_error_message_format(tmp_path: pathlib.Path) -> None:
  path = _write(tmp_path, f'{HEADER}\nu1,i1,4,100\nu2,i2,6,100\n')
  with pytest.raises(il.InteractionsFormatError) as e:
    il.read_interactions(path)
  assert str(e.value).startswith(
      f"{path}, line 3, column 'rating': rating '6' is outside the rating scale [1, 5]. Fix: ")
  assert '--rating-scale MIN MAX' in str(e.value)


def test_other_rating_scale_accepts_the_rating(tmp_path: pathlib.Path) -> None:
  path = _write(tmp_path, f'{HEADER}\nu1,i1,10,100\n')
  np.testing.assert_array_equal(il.read_interactions(path, rating_scale=(0, 10)).column('rating'), [10.0])
  with pytest.raises(ValueError, match='min < max'):
    il.read_interactions(path, rating_scale=(5, 1))


@pytest.mark.parametrize('content, line, column, words', [
    ('', 1, None, 'empty'),
    # Not 'the header lacks user_id, item_id, rating, timestamp': the header is there, on line 3.
    (f'\n\n{HEADER}\nu1,i1,4,100\n', 1, None, 'the first line is blank'),
    # White space only: before, told that the column name ' ' begins with white space and to write it ''.
    (f' \t\n{HEADER}\nu1,i1,4,100\n', 1, None, 'the first line is blank'),
    (f'{HEADER}\n', 2, None, 'no rows'),
    ('user_id,item_id,rating\nu1,i1,4\n', 1, 'timestamp', 'required column missing'),
    (f'{HEADER},user_age,user_age\nu1,i1,4,1,2,3\n', 1, 'user_age', 'appears twice'),
    (f'{HEADER},age\nu1,i1,4,1,2\n', 1, 'age', "rename it with the prefix 'user_'"),
    (f'{HEADER},item_popularity\nu1,i1,4,1,2\n', 1, 'item_popularity', 'the column name is reserved'),
    (f'{HEADER},user_age_bucket\nu1,i1,4,1,18-24\n', 1, 'user_age_bucket', 'the column name is reserved'),
    (f'{HEADER},recent_rating\nu1,i1,4,1,3.5\n', 1, 'recent_rating', 'the column name is reserved'),
    (f'{HEADER}\nu1,i1,4,100\nu2,i2,4\n', 3, 'timestamp', 'has 3 fields but the header has 4'),
    # Before, column 'timestamp': the extra field has no header column, so its position is named instead.
    (f'{HEADER}\nu1,i1,4,100,extra\n', 2, None, "column 5, after the last header column 'timestamp'"),
    (f'{HEADER}\n,i1,4,100\n', 2, 'user_id', 'empty value in a required column'),
    (f'{HEADER}\nu1,,4,100\n', 2, 'item_id', 'empty value in a required column'),
    (f'{HEADER}\nu1,i1,,100\n', 2, 'rating', 'empty value'),
    (f'{HEADER}\nu1,i1,four,100\n', 2, 'rating', 'is not a number'),
    (f'{HEADER}\nu1,i1,0.5,100\n', 2, 'rating', 'outside the rating scale'),
    (f'{HEADER}\nu1,i1,nan,100\n', 2, 'rating', 'not a finite number'),
    (f'{HEADER}\nu1,i1,4,1.5\n', 2, 'timestamp', 'is not an integer'),
    (f'{HEADER}\nu1,i1,4,-5\n', 2, 'timestamp', 'is negative'),
    (f'{HEADER}\nu1,i1,4,inf\n', 2, 'timestamp', 'not a finite number'),
    (f'{HEADER}\nu1,i1,4,\n', 2, 'timestamp', 'empty value'),
    (f'{HEADER},item_score\nu1,i1,4,1,0.5\nu1,i1,4,1,inf\n', 3, 'item_score', 'not a finite number'),
    # A quoted field spanning two lines: the next row starts on line 4 (the line break in item_title is refused
    # too, but columns are checked in header order and rating comes first).
    (f'{HEADER},item_title\nu1,i1,4,1,"two\nlines"\nu2,i2,x,1,t\n', 4, 'rating', 'is not a number'),
    # A quote never closed would swallow every later row into one field.
    (f'{HEADER},item_title\nu1,i1,4,1,t\nu2,i2,4,2,"Heat, The\nu3,i3,4,3,x\n', 3, None, 'never closed'),
    (f'{HEADER},item_title\nu1,i1,4,1,"Weird" Al\n', 2, None, 'malformed'),
    (f'{HEADER}\nu1,i1,4,1\nu2\x00,i2,4,2\n', 3, None, 'NUL byte'),
    # In the second line of a quoted field, the line holding the NUL or the text after the quote (before, 3).
    (f'{HEADER},item_title\nu1,i1,4,1,a\nu2,i2,4,2,"x\ny\x00z"\n', 4, None, 'NUL byte'),
    (f'{HEADER},item_title\nu1,i1,4,1,a\nu2,i2,4,2,"x\ny"z\n', 4, None, 'malformed'),
    (f'{HEADER}\n u1,i1,4,100\n', 2, 'user_id', 'white space'),
    (f'{HEADER}\nu1,i1 ,4,100\n', 2, 'item_id', 'white space'),
    (f'{HEADER}\nu1,i1,\u0664,100\n', 2, 'rating', 'is not a number'),  # an Arabic-Indic 4
    (f'{HEADER}\nu1,i1,4_0e-1,100\n', 2, 'rating', 'is not a number'),
    (f'{HEADER}\nu1,i1,4,1_000\n', 2, 'timestamp', 'is not an integer'),
    (f'{HEADER}\nu1,i1,4,1700000000000\n', 2, 'timestamp', 'milliseconds'),
    # Integers beyond int64 (before, 'is not an integer').
    (f'{HEADER}\nu1,i1,4,1\nu1,i1,4,99999999999999999999\n', 3, 'timestamp',
     "timestamp '99999999999999999999' is after the year 5000"),
    (f'{HEADER}\nu1,i1,4,-99999999999999999999\n', 2, 'timestamp', "timestamp '-99999999999999999999' is negative"),
    (f'{HEADER},item_score\nu1,i1,4,1,0.5\nu1,i1,4,2,1e300\n', 3, 'item_score', 'beyond float32'),
    # A finite decimal too large for a float is not 'not a finite number' (before, it was, as float() reads inf).
    (f'{HEADER},item_score\nu1,i1,4,1,0.5\nu1,i1,4,2,-1e400\n', 3, 'item_score', "value '-1e400' is beyond float32"),
    (f'{HEADER}\nu1,i1,1e400,100\n', 2, 'rating', "rating '1e400' is outside the rating scale [1, 5]"),
    (f'{HEADER}\nu1,i1,4,1e400\n', 2, 'timestamp', "timestamp '1e400' is not an integer"),
    (f'{HEADER},item_score\nu1,i1,4,1,-Infinity\n', 2, 'item_score', "value '-Infinity' is not a finite number"),
    (f'{HEADER}\nu1,i1,4,100\nu2,i1,4,100\nu1,i1,5,100\n', 4, None, 'line 2'),
])
def test_format_errors_name_line_and_column(tmp_path: pathlib.Path, content: str, line: Optional[int],
                                            column: Optional[str], words: str) -> None:
  path = _write(tmp_path, content)
  with pytest.raises(il.InteractionsFormatError) as e:
    il.read_interactions(path)
  assert (e.value.line, e.value.column) == (line, column)
  assert words in str(e.value)
  assert 'Fix: ' in str(e.value)


@pytest.mark.parametrize('name, shown, suggestion', [
    ('user_job title', "' '", 'user_job_title'),  # the trainers' scope 'user_job title_embedding' is invalid
    ('item_a.b', "'.'", 'item_a_b'),  # tf.Transform would name its vocabulary file item_a_b
    ('item_a-b', "'-'", 'item_a_b'),
    ('user_gr\u00f6\u00dfe', "'\u00df', '\u00f6'", 'user_gr__e'),  # user_größe: non-ASCII letters
])
def test_column_names_tensorflow_cannot_use_are_refused(tmp_path: pathlib.Path, name: str, shown: str,
                                                        suggestion: str) -> None:
  path = _write(tmp_path, f'{HEADER},{name}\nu1,i1,4,1,x\n')
  with pytest.raises(il.InteractionsFormatError) as e:
    il.read_interactions(path)
  assert str(e.value) == (
      f"{path}, line 1, column {name!r}: the column name holds {shown}: TensorFlow cannot use it as a feature "
      "name (allowed: ASCII letters A-Z and a-z, digits 0-9 and '_'). "
      f"Fix: rename the column, e.g. to {suggestion!r}")


def test_column_names_of_letters_digits_and_underscores_are_accepted(tmp_path: pathlib.Path) -> None:
  path = _write(tmp_path, f'{HEADER},user_Job_2,item_x\nu1,i1,4,1,a,b\n')
  assert il.read_interactions(path).column_names[4:] == ('user_Job_2', 'item_x')


@pytest.mark.parametrize('content, line, column', [
    (f'{HEADER}\nu0,i0,4,1\n"u\n1",i1,3,100\n', 3, 'user_id'),
    (f'{HEADER}\nu1,"i\r\n1",3,100\n', 2, 'item_id'),
    (f'{HEADER},item_title\nu1,i1,3,100,"Heat\r\n(1995)"\n', 2, 'item_title'),
    # A lone CR in one token of a multi-valued field: that token would be dropped from the genre vocabulary.
    (f'{HEADER},item_genres\nu1,i1,3,100,Comedy\nu2,i2,3,100,"Action|Dra\rma"\n', 3, 'item_genres'),
])
def test_line_breaks_in_ids_and_string_values_are_refused(tmp_path: pathlib.Path, content: str, line: int,
                                                          column: str) -> None:
  path = _write(tmp_path, content)
  with pytest.raises(il.InteractionsFormatError) as e:
    il.read_interactions(path)
  assert (e.value.line, e.value.column) == (line, column)
  assert 'holds a line break' in str(e.value)
  assert 'Fix: remove the line breaks from the quoted field' in str(e.value)


def test_line_break_message_names_the_value_and_the_fix(tmp_path: pathlib.Path) -> None:
  path = _write(tmp_path, f'{HEADER}\nu0,i0,4,1\n"u\n1",i1,3,100\n')
  with pytest.raises(il.InteractionsFormatError) as e:
    il.read_interactions(path)
  assert str(e.value) == (
      f"{path}, line 3, column 'user_id': user_id 'u\\n1' (in the row starting on this line) holds a line "
      "break, and tf.Transform leaves values with line breaks out of its vocabularies: it would silently be an "
      "unknown value. Fix: remove the line breaks from the quoted field (e.g. replace them with spaces)")


@pytest.mark.parametrize('separator, label, shown', [(';', 'semicolon', "';'"), ('\t', 'tab', "'\\t'")])
def test_semicolon_or_tab_separated_file_is_told_to_be_comma_separated(tmp_path: pathlib.Path, separator: str,
                                                                       label: str, shown: str) -> None:
  path = _write(tmp_path, f'{HEADER}\nu1,i1,4,1\n'.replace(',', separator))
  with pytest.raises(il.InteractionsFormatError) as e:
    il.read_interactions(path)
  assert str(e.value) == (
      f'{path}, line 1: the header holds no comma-separated required column (user_id, item_id, rating, '
      f'timestamp) but holds {label}s: the file is {label}-separated, and the interactions format is '
      'comma-separated. Fix: save the file comma-separated (e.g. `python3 -c "import csv, sys; '
      f'csv.writer(sys.stdout).writerows(csv.reader(sys.stdin, delimiter={shown}))" < in.csv > out.csv`)')


@pytest.mark.parametrize('header, column, words', [
    # One required column is comma-separated: the ';' is in a column name, not a separator.
    ('user_id,item_id;rating,timestamp', 'item_id;rating', "the column name holds ';'"),
    ('userid,itemid', 'userid', 'unknown column'),  # no ';' or tab: the header is comma-separated, but wrong
])
def test_comma_separated_headers_keep_their_column_errors(tmp_path: pathlib.Path, header: str, column: str,
                                                          words: str) -> None:
  path = _write(tmp_path, f'{header}\nu1,i1,4\n')
  with pytest.raises(il.InteractionsFormatError) as e:
    il.read_interactions(path)
  assert (e.value.line, e.value.column) == (1, column)
  assert words in str(e.value)


def test_missing_file(tmp_path: pathlib.Path) -> None:
  with pytest.raises(il.InteractionsFormatError, match='no such file') as e:
    il.read_interactions(os.path.join(str(tmp_path), 'absent.csv'))
  assert e.value.line is None


@pytest.mark.parametrize('content, line, column', [
    (f'{HEADER},item_title\nu1,i1,4,1,ok\nu2,i2,4,1,Caf\xe9\n'.encode('latin-1'), 3, 'item_title'),
    # After a BOM: its three bytes must not shift the position (line 3's user_id holds 0xe9, a Latin-1 e-acute).
    (b'\xef\xbb\xbf' + f'{HEADER},item_title\nu1,i1,4,1,ok\n'.encode() + b'u\xe9,i2,4,2,ok\n', 3, 'user_id'),
    # Old Mac line ends (a lone CR) count as line breaks, as the CSV reader counts them: 0xe9 is on line 4.
    (f'{HEADER},item_title\ru1,i1,4,1,a\ru2,i2,4,2,b\ru3,'.encode() + b'\xe9,4,3,c\r', 4, 'item_id'),
    (f'{HEADER},item_title\r\nu1,i1,4,1,a\r\n\r\nu3,i3,4,3,'.encode() + b'\xe9\r\n', 4, 'item_title'),
    # In the second line of a quoted item_title: its fields count from the row's first line (before, 'user_id').
    (f'{HEADER},item_title\nu1,i1,4,1,"two\nline'.encode() + b's\xe9"\n', 3, 'item_title'),
    (f'{HEADER},item_title\nu1,i1,4,1,"two\nlines"\nu2,'.encode() + b'\xe9,4,2,x\n', 4, 'item_id'),
])
def test_non_utf8_names_line_and_column(tmp_path: pathlib.Path, content: bytes, line: int, column: str) -> None:
  path = _write(tmp_path, content)
  with pytest.raises(il.InteractionsFormatError) as e:
    il.read_interactions(path)
  assert (e.value.line, e.value.column) == (line, column)
  assert 'byte 0xe9 is not valid UTF-8' in str(e.value)


@pytest.mark.parametrize('encoding, bom', [
    ('utf-16-le', 'FF FE'), ('utf-16-be', 'FE FF'), ('utf-32-le', 'FF FE 00 00'), ('utf-32-be', '00 00 FE FF')])
def test_utf16_and_utf32_files_are_told_to_convert_from_their_encoding(tmp_path: pathlib.Path, encoding: str,
                                                                      bom: str) -> None:
  path = _write(tmp_path, f'\ufeff{HEADER}\nu1,i1,4,1\n'.encode(encoding))
  with pytest.raises(il.InteractionsFormatError) as e:
    il.read_interactions(path)
  name = encoding[:6].upper()
  assert str(e.value) == (
      f'{path}, line 1: the file is {name}, not UTF-8 (it starts with the {name} byte order mark {bom}). '
      f'Fix: convert it to UTF-8 (e.g. `iconv -f {name} -t UTF-8 in.csv > out.csv`)')


@pytest.mark.parametrize('content, line, problem', [
    (f'{HEADER}\nu1,i1,4,100,extra\n', 2,
     "the row has 5 fields but the header has 4: its first extra field, column 5, after the last header column "
     "'timestamp', holds 'extra'"),
    (f'{HEADER}\nu1,i1,4,100\nu2,i2,3,200,,x\n', 3,
     "the row has 6 fields but the header has 4: its first extra field, column 5, after the last header column "
     "'timestamp', is empty (a comma at the end of the line?)"),
    (f'{HEADER},item_title\nu1,i1,4,100,t,x,y\n', 2,
     "the row has 7 fields but the header has 5: its first extra field, column 6, after the last header column "
     "'item_title', holds 'x'"),
    # After a row whose quoted field spans lines 2-3, the next row starts on line 4.
    (f'{HEADER},item_title\nu1,i1,4,100,"two\nlines"\nu2,i2,3,200,t,x\n', 4,
     "the row has 6 fields but the header has 5: its first extra field, column 6, after the last header column "
     "'item_title', holds 'x'"),
    # The row starts on line 3 (the line named); its quoted field holds \r\n and a lone \r, each one line break
    # as the CSV reader counts lines, so the extra field is on line 5.
    (f'{HEADER}\r\nu0,i0,4,1\r\nu1,"a\r\nb\rc",4,100,x\r\n', 3,
     "the row has 5 fields but the header has 4: its first extra field, column 5, after the last header column "
     "'timestamp', holds 'x' (on line 5: a quoted field before it holds a line break)"),
])
def test_a_row_with_more_fields_than_the_header_names_its_first_extra_fields_position(
    tmp_path: pathlib.Path, content: str, line: int, problem: str) -> None:
  # Before, "column 'timestamp'" (or the last header column), as if that column's value were the problem.
  path = _write(tmp_path, content)
  with pytest.raises(il.InteractionsFormatError) as e:
    il.read_interactions(path)
  assert (e.value.line, e.value.column) == (line, None)
  assert str(e.value) == (
      f'{path}, line {line}: {problem}. Fix: quote fields that contain commas ("Heat, The (1995)"), remove commas '
      'at the end of the line, or name the extra columns in the header (user_* or item_* columns)')


def test_ids_holding_the_multi_value_separator_are_whole_ids(tmp_path: pathlib.Path) -> None:
  # Before, an id of only '|' was refused as 'empty value in a required column'; Transform never splits ids, so
  # '|' is an id like 'a|b' (which was accepted), and the two are distinct ids.
  path = _write(tmp_path, f'{HEADER}\n|,i1,4,100\nu|1,||,3,200\n|,a|b,5,300\n')
  got = il.read_interactions(path)
  assert got.column('user_id') == ['|', 'u|1', '|']
  assert got.column('item_id') == ['i1', '||', 'a|b']
  copy = os.path.join(str(tmp_path), 'copy.csv')
  il.write_interactions(got, copy)
  assert il.read_interactions(copy).column('item_id') == ['i1', '||', 'a|b']


@pytest.mark.parametrize('field, message', [
    ('  ', "line 2, column 'user_id': empty value in a required column. Fix: give every row a user_id, or drop the "
     'row'),
    (' | ', "line 2, column 'user_id': user_id ' | ' begins or ends with white space (ids are compared exactly, so "
     "it would name another user than '|'). Fix: remove the spaces around the id"),
])
def test_ids_of_white_space_only_or_with_spaces_around_the_separator_are_refused(
    tmp_path: pathlib.Path, field: str, message: str) -> None:
  path = _write(tmp_path, f'{HEADER}\n{field},i1,4,100\n')
  with pytest.raises(il.InteractionsFormatError) as e:
    il.read_interactions(path)
  assert str(e.value) == f'{path}, {message}'


def test_utf8_bom_and_crlf_and_blank_lines_are_accepted(tmp_path: pathlib.Path) -> None:
  path = _write(tmp_path, f'\ufeff{HEADER}\r\nu1,i1,4,1\r\n\r\nu2,i2,5,2\r\n')
  got = il.read_interactions(path)
  assert got.column('user_id') == ['u1', 'u2']


def test_lines_of_white_space_only_are_blank_lines(tmp_path: pathlib.Path) -> None:
  # Before, 'the row has 1 fields but the header has 4' in column 'item_id', with a fix to quote commas.
  path = _write(tmp_path, f'{HEADER}\nu1,i1,4,1\n  \t\nu2,i2,5,2\n \n')
  assert il.read_interactions(path).column('user_id') == ['u1', 'u2']
  path = _write(tmp_path, f'{HEADER}\r\n \r\nu1,i1,4,1\r\n\t\r\nu2,i2,x,2\r\n')
  with pytest.raises(il.InteractionsFormatError) as e:
    il.read_interactions(path)
  assert (e.value.line, e.value.column) == (5, 'rating')


def test_write_interactions_exact_text_and_round_trip(tmp_path: pathlib.Path) -> None:
  content = ('user_id,item_id,rating,timestamp,user_age,item_title,item_score\n'
             'u1,i1,4,100,30,"Heat, The (1995)",2.0\n'
             'u2,i2,3.5,200,,Café,\n')
  got = il.read_interactions(_write(tmp_path, content))
  out = os.path.join(str(tmp_path), 'out', 'copy.csv')
  il.write_interactions(got, out)
  with open(out, encoding='utf-8', newline='') as f:
    assert f.read() == content
  again = il.read_interactions(out)
  assert again.column_types == got.column_types
  assert again.row(1) == got.row(1)


def test_take_keeps_types_and_order(tmp_path: pathlib.Path) -> None:
  got = il.read_interactions(_write(tmp_path, f'{HEADER},user_age\na,x,1,1,\nb,y,2,2,5\nc,z,3,3,6\n'))
  taken = got.take([2, 0])
  assert taken.column('user_id') == ['c', 'a']
  np.testing.assert_array_equal(taken.column('rating'), [3.0, 1.0])
  assert taken.column('user_age') == [6, None]


def test_leading_zeros_and_integers_beyond_int64_make_a_code_column() -> None:
  raw = {'user_zip': ['01002', '2139'], 'user_code': ['1', str(2**63)], 'user_age': ['30', '+41', ' 7 '],
         'user_ratio': ['0.5', '-0', '10']}
  assert il.infer_column_types(raw) == {
      'user_zip': ColumnType.STRING, 'user_code': ColumnType.STRING, 'user_age': ColumnType.INT,
      'user_ratio': ColumnType.FLOAT}


def test_zip_codes_keep_their_leading_zero(tmp_path: pathlib.Path) -> None:
  path = _write(tmp_path, f'{HEADER},user_zip\nu1,i1,4,1,01002\nu2,i1,4,2,02139\n')
  assert il.read_interactions(path).column('user_zip') == ['01002', '02139']


def test_a_rating_scale_beyond_float32_is_refused(tmp_path: pathlib.Path) -> None:
  path = _write(tmp_path, f'{HEADER}\nu1,i1,4,1\n')
  with pytest.raises(ValueError, match='float32'):
    il.read_interactions(path, rating_scale=(0, 1e39))


@pytest.mark.parametrize('name, values, line, shown', [
    ('user_age', ['25', 'unknown', '40'], 3, "'unknown'"),  # one placeholder made the whole column STRING
    ('user_age', ['18-24', '25-34'], 2, "'18-24'"),  # age ranges are categories, not ages
    ('item_release_year', ['1995', '', 'n/a'], 4, "'n/a'"),
])
def test_a_column_transform_computes_with_as_a_number_refuses_a_value_that_is_not_one(
    tmp_path: pathlib.Path, name: str, values: List[str], line: int, shown: str) -> None:
  rows = ''.join(f'u{i},i{i},4,{i},{value}\n' for i, value in enumerate(values))
  path = _write(tmp_path, f'{HEADER},{name}\n{rows}')
  with pytest.raises(il.InteractionsFormatError) as e:
    il.read_interactions(path)
  assert (e.value.line, e.value.column) == (line, name)
  assert f'value {shown} is not a number, and Transform computes' in str(e.value)
  assert f'rename the column (e.g. {name}_label) to use it as a category' in str(e.value)


def test_numeric_columns_read_leading_zeros_as_numbers_and_refuse_a_declared_string() -> None:
  raw = {'user_age': ['05', '30'], 'item_release_year': ['1995', '1996.5'], 'user_zip': ['05', '30']}
  assert il.infer_column_types(raw) == {
      'user_age': ColumnType.INT, 'item_release_year': ColumnType.FLOAT, 'user_zip': ColumnType.STRING}
  with pytest.raises(ValueError, match="declares 'user_age' as STRING"):
    il.infer_column_types(raw, {'user_age': ColumnType.STRING})


@pytest.mark.parametrize('header, column, words', [
    # Written with ', ' between the columns: told to drop the spaces, not to prefix ' item_id' with 'user_'.
    ('user_id, item_id, rating, timestamp', ' item_id', "write it 'item_id', and put no spaces around the commas"),
    (f'{HEADER},user_age ', 'user_age ', "write it 'user_age'"),  # not: rename it to 'user_age_'
    (f'{HEADER},', '', 'the header has an empty column name'),  # a trailing comma
    (f'{HEADER},,', '', 'the header has an empty column name'),  # not: the column '' appears twice
    (f',{HEADER}', '', 'index=False'),  # pandas' to_csv with its index
    ('User_ID,item_id,rating,timestamp', 'User_ID', "write it in lower case, 'user_id'"),
    (f'{HEADER},Item_Title', 'Item_Title', "write it in lower case, 'item_title'"),
])
def test_header_names_off_by_spaces_case_or_a_stray_comma_are_told_the_fix(tmp_path: pathlib.Path, header: str,
                                                                          column: str, words: str) -> None:
  fields = header.count(',') + 1
  path = _write(tmp_path, f'{header}\n{",".join(["1"] * fields)}\n')
  with pytest.raises(il.InteractionsFormatError) as e:
    il.read_interactions(path)
  assert (e.value.line, e.value.column) == (1, column)
  assert words in str(e.value)


def test_an_optional_column_without_any_value_is_refused(tmp_path: pathlib.Path) -> None:
  # The examples omit missing values, so StatisticsGen, SchemaGen and Transform would never see item_title, and
  # --ranking-config seed (item_features=('item_title',)) would only fail in the Trainer.
  path = _write(tmp_path, f'{HEADER},user_age,item_title\nu1,i1,4,1,30,\nu2,i2,3,2,,  \n')
  with pytest.raises(il.InteractionsFormatError) as e:
    il.read_interactions(path)
  assert (e.value.line, e.value.column) == (1, 'item_title')
  assert 'the column holds no value in any of the 2 rows' in str(e.value)
  assert 'Fix: fill in its values, or drop the column' in str(e.value)


@pytest.mark.parametrize('ages, line, shown', [
    (['30', '0'], 3, '0'),       # 0 standing for "unknown" would be the youngest bucket
    (['121', '30'], 2, '121'),
    (['-3', '30'], 2, '-3'),
    (['30', '120.5'], 3, '120.5'),
])
def test_an_age_outside_1_to_120_is_refused_naming_its_line(tmp_path: pathlib.Path, ages: List[str], line: int,
                                                            shown: str) -> None:
  rows = ''.join(f'u{i},i{i},4,{i},{age}\n' for i, age in enumerate(ages))
  with pytest.raises(il.InteractionsFormatError) as e:
    il.read_interactions(_write(tmp_path, f'{HEADER},user_age\n{rows}'))
  assert (e.value.line, e.value.column) == (line, 'user_age')
  assert f'user_age {shown} is outside 1..120' in str(e.value)
  assert 'leave the field empty for a missing value' in str(e.value)


def test_ages_1_and_120_and_missing_ones_are_accepted(tmp_path: pathlib.Path) -> None:
  path = _write(tmp_path, f'{HEADER},user_age\nu1,i1,4,1,1\nu2,i2,4,2,120\nu3,i3,4,3,\n')
  assert il.read_interactions(path).column('user_age') == [1, 120, None]


def test_the_age_range_is_the_curated_schemas_int_domain() -> None:
  with open(os.path.join(os.path.dirname(schema.__file__), 'schema.pbtxt'), encoding='utf-8') as f:
    curated = text_format.Parse(f.read(), schema_pb2.Schema())
  (age,) = [feature for feature in curated.feature if feature.name == 'user_age']
  assert (age.int_domain.min, age.int_domain.max) == features.NUMERIC_COLUMN_RANGES['user_age'] == (1, 120)


@pytest.mark.parametrize('value, stored', [
    ('1e-50', '0'),  # float32(1e-50) is 0.0: the value was written as 0 without a word
    ('-1e-46', '-0'),  # below half of float32's smallest subnormal (1.4e-45): -0.0
    ('1e-40', '9.99995e-41'),  # a subnormal: float32 keeps it with ~3 of its 7 digits, and TensorFlow may flush it to 0
])
def test_a_non_zero_float_too_close_to_0_for_float32_is_refused(tmp_path: pathlib.Path, value: str,
                                                                 stored: str) -> None:
  path = _write(tmp_path, f'{HEADER},item_score\nu1,i1,4,1,0.5\nu1,i1,4,2,{value}\n')
  with pytest.raises(il.InteractionsFormatError) as e:
    il.read_interactions(path)
  assert (e.value.path, e.value.line, e.value.column) == (path, 3, 'item_score')
  assert f"value '{value}' is too close to 0 for float32" in str(e.value)
  assert f'would be stored as {stored}' in str(e.value)
  assert 'Fix: rescale the column' in str(e.value)


def test_a_non_zero_rating_too_close_to_0_for_float32_is_refused(tmp_path: pathlib.Path) -> None:
  path = _write(tmp_path, f'{HEADER}\nu1,i1,4,1\nu1,i1,1e-50,2\n')
  with pytest.raises(il.InteractionsFormatError) as e:
    il.read_interactions(path, rating_scale=(0, 5))
  assert (e.value.line, e.value.column) == (3, 'rating')
  assert "rating '1e-50' is too close to 0 for float32" in str(e.value)


@pytest.mark.parametrize('rating_scale, bound, stored', [
    ((1e-50, 5), 'min 1e-50', '0'),  # before, accepted: the scale's minimum was 0 in the examples
    ((-1e-40, 5), 'min -1e-40', '-9.99995e-41'),  # a subnormal
    ((-1, 1e-50), 'max 1e-50', '0'),
])
def test_a_rating_scale_bound_too_close_to_0_for_float32_is_refused(rating_scale: Tuple[float, float], bound: str,
                                                                   stored: str) -> None:
  with pytest.raises(ValueError) as e:
    il.check_rating_scale(rating_scale)
  assert str(e.value) == (
      f'rating_scale {rating_scale!r}: its {bound} is too close to 0 for float32, the type it is stored as: it would '
      f'be stored as {stored} (a non-zero magnitude below 1.175e-38, float32\'s smallest normal number, becomes 0 or '
      'loses digits). Fix: pass 0 for a bound of zero, or rescale the ratings, e.g. --rating-scale 1 5.')


def test_a_rating_scale_bound_of_zero_or_the_smallest_normal_float32_is_accepted() -> None:
  assert il.check_rating_scale((0, 5)) == (0.0, 5.0)
  assert il.check_rating_scale((-0.0, 1.2e-38)) == (0.0, 1.2e-38)


def test_zeros_and_the_smallest_normal_float32_are_accepted(tmp_path: pathlib.Path) -> None:
  # float32's smallest normal number is 2**-126 = 1.1754943508e-38; 1.17549434e-38 is 1.1e-46 below it, less than
  # half the float32 spacing there (2**-149 = 1.4e-45), so it is stored as 2**-126 itself.
  values = ['0', '-0.0', '0e-50', '1.2e-38', '-1.17549434e-38']
  rows = ''.join(f'u{i},i1,4,{i},{value}\n' for i, value in enumerate(values))
  got = il.read_interactions(_write(tmp_path, f'{HEADER},item_score\n{rows}'))
  assert got.column('item_score') == [0.0, -0.0, 0.0, 1.2e-38, -1.17549434e-38]
  assert np.float32(got.column('item_score')[4]) == -np.float32(2.0**-126)
  ratings = il.read_interactions(_write(tmp_path, f'{HEADER}\nu1,i1,0,1\nu1,i1,0e-9,2\n', 'zero.csv'),
                                 rating_scale=(0, 5))
  np.testing.assert_array_equal(ratings.column('rating'), [0.0, 0.0])
