"""The objective segmentation rule: whether every large-enough segment is served about as well as the average.

Pure functions on metric values (no TFX, no TFMA), so the rule is tested by hand and reused by the segment gate
and the quality report. A segment is one value of one slicing column (e.g. `user_occupation=writer`).

A model passes when, for every segment with at least `min_examples` evaluation examples:

* its RMSE exceeds the model's overall RMSE by at most `max_margin` (stars) — or, with `margin_standard_errors`
  z > 0, its margin less z standard errors of its RMSE does (the segment is refused only when its excess is
  larger than its sampling noise explains; the overall RMSE is taken as exact: over all examples its standard
  error is smaller by sqrt(segment examples / all examples)), and
* when a last blessed model was measured on the same examples, its RMSE exceeds that model's RMSE on the same
  segment by at most `max_regression` (stars). This check is never discounted by z: both models are scored on the
  same examples, so their difference is far less noisy than the segment's RMSE, whose standard error would excuse
  real regressions.

A gated segment whose RMSE is NaN or infinite (the model predicts NaN or infinite ratings on its examples) is
refused with one reason saying so, whatever the thresholds, z and the last blessed model.

The verdict's `worst` is the gated segment with the largest plain margin, whatever z is (a gated segment without an
RMSE, whose margin is NaN and which the rule refuses, comes before every number: see `worst_first`; an infinite
margin comes before every finite one).

Smaller segments are reported but not gated: their RMSE is too noisy to refuse a model on.

The rule also says when it checked less than it was asked to, as warnings (they do not refuse the model): when no
segment is large enough to be gated (the rule then holds vacuously), when a slicing column has no segment at all
(the examples lack it, e.g. own data without demographics), when the last blessed model has no finite RMSE on a
gated segment or none at all (that segment is then not checked for regression), and when, with
z > 0, a gated segment has no finite standard error (its plain margin is judged).
"""

import dataclasses
import math
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

# A segment: (slicing column, value), e.g. ('user_gender', 'F').
SegmentKey = Tuple[str, str]
# Stars by which a margin or regression may exceed its allowance and still count as at most it: float rounding of
# the difference of two RMSEs (0.88 - 0.86 is 0.020000000000000018), far below the 4 digits the reasons print.
ROUNDING_TOLERANCE = 1e-9


@dataclasses.dataclass(frozen=True)
class SegmentMetrics:
  """A model's error on one segment of the evaluation examples.

  Attributes:
    column: the slicing column, e.g. 'user_occupation'.
    value: the segment's value of that column, e.g. 'writer'.
    rmse: root mean squared error on the segment (stars).
    example_count: evaluation examples in the segment.
    rmse_standard_error: the standard error of `rmse` over the segment's examples (stars); None when the
      evaluation did not measure it.
  """
  column: str
  value: str
  rmse: float
  example_count: int
  rmse_standard_error: Optional[float] = None

  @property
  def key(self) -> SegmentKey:
    return (self.column, self.value)

  @property
  def name(self) -> str:
    """Readable name, e.g. 'user_occupation=writer'."""
    return f'{self.column}={self.value}'


@dataclasses.dataclass(frozen=True)
class SegmentRow:
  """One line of the segment table: the candidate's figures, the baseline's, and whether the segment is gated.

  Attributes:
    segment: the candidate's metrics on the segment.
    margin: segment RMSE minus overall RMSE (stars).
    gated: whether the segment has enough examples to be gated.
    baseline_rmse: the last blessed model's RMSE on the segment, None without a baseline.
    violations: why this segment fails the rule (empty when it passes or is not gated).
  """
  segment: SegmentMetrics
  margin: float
  gated: bool
  baseline_rmse: Optional[float]
  violations: Tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class SegmentVerdict:
  """The outcome of the rule.

  Attributes:
    passed: no gated segment violates the rule.
    reasons: one sentence per violation (empty when passed).
    rows: every segment, worst margin first.
    worst: the gated segment with the largest margin (one with a NaN margin first), None when no segment is large
      enough.
    warnings: one sentence per check the rule could not make (see the module docstring; empty when it made all).
  """
  passed: bool
  reasons: Tuple[str, ...]
  rows: Tuple[SegmentRow, ...]
  worst: Optional[SegmentRow]
  warnings: Tuple[str, ...] = ()


def check_settings(*, min_examples: int, max_margin: float, max_regression: float,
                   margin_standard_errors: float) -> None:
  """Checks the rule's settings (see `judge_segments`).

  Raises:
    ValueError: on min_examples < 1, or a negative, NaN or infinite threshold or z.
  """
  if min_examples < 1:
    raise ValueError(f'min_examples={min_examples} must be >= 1.')
  if not (0 <= max_margin < math.inf and 0 <= max_regression < math.inf):  # refuses NaN too
    raise ValueError(f'max_margin={max_margin} and max_regression={max_regression} must be >= 0 (stars).')
  if not 0 <= margin_standard_errors < math.inf:
    raise ValueError(f'margin_standard_errors={margin_standard_errors} must be >= 0 (standard errors), e.g. 2.')


def judge_segments(overall_rmse: float, segments: Sequence[SegmentMetrics],
                   baseline_rmse: Optional[Mapping[SegmentKey, float]], *, min_examples: int,
                   max_margin: float, max_regression: float, margin_standard_errors: float = 0.0,
                   expected_columns: Sequence[str] = ()) -> SegmentVerdict:
  """Applies the segmentation rule (see the module docstring).

  Args:
    overall_rmse: the candidate's RMSE on all evaluation examples (stars).
    segments: the candidate's metrics per segment.
    baseline_rmse: the last blessed model's RMSE per segment on the same examples; None on a first run.
      Segments missing from it, or with a NaN or infinite RMSE in it, are not checked for regression (a gated one
      with a warning).
    min_examples: segments with fewer evaluation examples are reported, not gated.
    max_margin: largest allowed `segment RMSE - overall RMSE` (stars); a margin equal to it up to float rounding
      (`ROUNDING_TOLERANCE`) passes.
    max_regression: largest allowed `segment RMSE - baseline segment RMSE` (stars), likewise.
    margin_standard_errors: z, the standard errors of a segment's RMSE subtracted from its margin before it is
      compared with `max_margin`; 0 compares the margin itself. A segment without a standard error, or with a NaN
      or infinite one, is judged on its margin, with a warning.
    expected_columns: the slicing columns the evaluation was asked to slice by; one without any segment gets a
      warning.

  Returns:
    The verdict with every segment's row.

  Raises:
    ValueError: on min_examples < 1, a negative, NaN or infinite threshold or z, or a NaN or infinite overall
      RMSE.
  """
  check_settings(min_examples=min_examples, max_margin=max_margin, max_regression=max_regression,
                 margin_standard_errors=margin_standard_errors)
  if not math.isfinite(overall_rmse):
    raise ValueError(f'overall_rmse={overall_rmse} is not a finite number: the model predicts NaN or infinite '
                     'ratings on the evaluation examples (training diverged: lower the learning rate) or the '
                     'evaluation has no examples; the segments cannot be judged against it.')
  rows: List[SegmentRow] = []
  reasons: List[str] = []
  warnings: List[str] = []
  for segment in segments:
    margin = segment.rmse - overall_rmse
    gated = segment.example_count >= min_examples
    before = baseline_rmse.get(segment.key) if baseline_rmse is not None else None
    if baseline_rmse is not None and (before is None or not math.isfinite(before)):
      if gated:
        shown = 'not in its evaluation' if before is None else before
        warnings.append(f'{segment.name}: the last blessed model has no RMSE on it ({shown}); not checked for '
                        'regression')
      before = None
    violations = []
    judged_margin, discount = margin, ''
    if gated and not math.isfinite(segment.rmse):
      # No margin or regression to compare (both NaN or infinite): one reason saying what the figure means.
      violations.append(
          f'{segment.name} ({segment.example_count} examples) has RMSE {segment.rmse}, not a finite number: the '
          'model predicts NaN or infinite ratings on its evaluation examples (training diverged: lower the learning '
          'rate); a gated segment must have a finite RMSE')
    elif gated and margin_standard_errors > 0:
      if segment.rmse_standard_error is None or not math.isfinite(segment.rmse_standard_error):
        # An infinite one would excuse any margin, a NaN one refuse any: neither measures the segment's noise.
        shown = '' if segment.rmse_standard_error is None else f' ({segment.rmse_standard_error})'
        warnings.append(f'{segment.name}: the evaluation has no standard error of its RMSE{shown}; its margin is '
                        'judged without --segment-margin-standard-errors')
      else:
        judged_margin = margin - margin_standard_errors * segment.rmse_standard_error
        discount = (f' ({judged_margin:+.4f} after {margin_standard_errors:g} standard errors of '
                    f'{segment.rmse_standard_error:.4f})')
    if gated and not violations and not judged_margin <= max_margin + ROUNDING_TOLERANCE:
      violations.append(
          f'{segment.name} ({segment.example_count} examples) has RMSE {segment.rmse:.4f}, '
          f'{margin:+.4f} above the overall {overall_rmse:.4f}{discount}; the allowed margin is {max_margin:.4f}')
    if gated and math.isfinite(segment.rmse) and before is not None and (
        not segment.rmse - before <= max_regression + ROUNDING_TOLERANCE):
      violations.append(
          f'{segment.name} ({segment.example_count} examples) regressed from RMSE {before:.4f} (last blessed '
          f'model) to {segment.rmse:.4f}, by {segment.rmse - before:+.4f}; the allowed regression is '
          f'{max_regression:.4f}')
    reasons.extend(violations)
    rows.append(SegmentRow(segment, margin, gated, before, tuple(violations)))
  rows.sort(key=lambda r: worst_first(r.margin, r.segment.key))
  gated_rows = [r for r in rows if r.gated]
  sliced = {segment.column for segment in segments}
  warnings.extend(f'no {column} segment in the evaluation: the examples have no {column} values, so no '
                  f'{column} segment is gated' for column in expected_columns if column not in sliced)
  if not gated_rows:
    warnings.append(_nothing_gated_warning(segments, min_examples))
  return SegmentVerdict(passed=not reasons, reasons=tuple(reasons), rows=tuple(rows),
                        worst=gated_rows[0] if gated_rows else None, warnings=tuple(warnings))


def worst_first(margin: float, key: SegmentKey) -> Tuple[bool, float, SegmentKey]:
  """Sort key putting segments worst margin first, ties by segment. A NaN margin (a segment without an RMSE, which
  the rule refuses) sorts before every number: NaN compares neither above nor below them and would leave the list
  unsorted."""
  nan = math.isnan(margin)
  return (not nan, 0.0 if nan else -margin, key)


def _nothing_gated_warning(segments: Sequence[SegmentMetrics], min_examples: int) -> str:
  """The warning for a rule that gated no segment: it holds vacuously."""
  if not segments:
    return ('the evaluation has no segments (no slicing column has values), so the segment rule checked nothing; '
            'add user or item columns to the examples')
  largest = max(segments, key=lambda s: (s.example_count, s.key))
  return (f'no segment has at least {min_examples} evaluation examples (the largest, {largest.name}, has '
          f'{largest.example_count}), so the segment rule checked nothing; lower --segment-min-examples to gate '
          'smaller segments')


def verdict_to_json(verdict: SegmentVerdict, overall_rmse: float) -> Dict:
  """A JSON-serialisable form of the verdict (what the gate writes and the quality report reads)."""
  return {
      'passed': verdict.passed,
      'reasons': list(verdict.reasons),
      'overall_rmse': overall_rmse,
      'worst_segment': _row_json(verdict.worst) if verdict.worst else None,
      'warnings': list(verdict.warnings),
      'segments': [_row_json(r) for r in verdict.rows],
  }


def _row_json(row: SegmentRow) -> Dict:
  return {'column': row.segment.column, 'value': row.segment.value, 'rmse': row.segment.rmse,
          'rmse_standard_error': row.segment.rmse_standard_error,
          'example_count': row.segment.example_count, 'margin': row.margin, 'gated': row.gated,
          'baseline_rmse': row.baseline_rmse, 'violations': list(row.violations)}
