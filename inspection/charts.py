"""Inline SVG charts (line and horizontal bar) for the offline HTML run report: no scripts, no network."""

import html
import math
from typing import Dict, List, Optional, Sequence, Tuple

# Series colours, in order (colour-blind safe: Okabe-Ito).
COLOURS: Tuple[str, ...] = ('#0072B2', '#E69F00', '#009E73', '#CC79A7', '#D55E00', '#56B4E9')

# Line chart layout, pixels.
LINE_WIDTH, LINE_HEIGHT = 480, 260
LINE_MARGIN_LEFT, LINE_MARGIN_RIGHT, LINE_MARGIN_TOP, LINE_MARGIN_BOTTOM = 64, 20, 50, 40
# Legend entries sit in one row under the title, this far apart (pixels).
LEGEND_Y, LEGEND_SPACING = 36, 210

# Bar chart layout, pixels.
BAR_LABEL_WIDTH, BAR_AREA_WIDTH, BAR_VALUE_WIDTH = 220, 300, 70
BAR_HEIGHT, BAR_GAP, BAR_MARGIN_TOP = 16, 4, 30


def polyline_points(values: Sequence[float], y_min: float, y_max: float) -> List[Tuple[float, float]]:
  """Pixel coordinates of `values` (one per epoch) in the line chart's plot area.

  Epoch i of n sits at x = left margin + i / (n - 1) * plot width; value v at
  y = top margin + (y_max - v) / (y_max - y_min) * plot height (SVG y grows downwards).

  Args:
    values: the series, [num_epochs].
    y_min: value at the bottom of the plot area.
    y_max: value at the top; must exceed y_min.

  Raises:
    ValueError: if y_max <= y_min.
  """
  if y_max <= y_min:
    raise ValueError(f'y_max={y_max} must exceed y_min={y_min}.')
  plot_width = LINE_WIDTH - LINE_MARGIN_LEFT - LINE_MARGIN_RIGHT
  plot_height = LINE_HEIGHT - LINE_MARGIN_TOP - LINE_MARGIN_BOTTOM
  steps = max(len(values) - 1, 1)
  return [(LINE_MARGIN_LEFT + i / steps * plot_width,
           LINE_MARGIN_TOP + (y_max - v) / (y_max - y_min) * plot_height) for i, v in enumerate(values)]


def line_chart(title: str, series: Dict[str, Sequence[Optional[float]]], x_label: str = 'epoch') -> str:
  """An SVG line chart of one or more series sharing the x axis (epochs 1..n) and a y axis.

  A NaN, infinite or None value (e.g. a loss that diverged; history.json holds it as null) is not drawn: its epoch
  is a gap in the line, and the y axis spans the finite values only.

  Args:
    title: shown above the plot.
    series: {legend name: values}, each [num_epochs].
    x_label: the x axis's name.
  """
  series = {name: [math.nan if v is None else v for v in s] for name, s in series.items()}
  all_values = [v for s in series.values() for v in s]
  values = [v for v in all_values if math.isfinite(v)]
  if not values:
    return f'<p>{html.escape(title)}: no {"finite " if all_values else ""}values.</p>'
  y_min, y_max = min(values), max(values)
  if y_max == y_min:
    y_min, y_max = y_min - 0.5, y_max + 0.5
  parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{LINE_WIDTH}" height="{LINE_HEIGHT}" '
           f'role="img" aria-label="{html.escape(title)}">',
           f'<text x="{LINE_WIDTH / 2}" y="18" text-anchor="middle" font-weight="bold">{html.escape(title)}</text>']
  bottom = LINE_HEIGHT - LINE_MARGIN_BOTTOM
  parts.append(f'<line x1="{LINE_MARGIN_LEFT}" y1="{bottom}" x2="{LINE_WIDTH - LINE_MARGIN_RIGHT}" y2="{bottom}" '
               'stroke="#444"/>')
  parts.append(f'<line x1="{LINE_MARGIN_LEFT}" y1="{LINE_MARGIN_TOP}" x2="{LINE_MARGIN_LEFT}" y2="{bottom}" '
               'stroke="#444"/>')
  for value, y in ((y_max, LINE_MARGIN_TOP), (y_min, bottom)):
    parts.append(f'<text x="{LINE_MARGIN_LEFT - 4}" y="{y + 4}" text-anchor="end" font-size="11">{value:.4g}</text>')
  num_epochs = max(len(s) for s in series.values())
  for i, (x, _) in enumerate(polyline_points([y_min] * num_epochs, y_min, y_max)):
    parts.append(f'<text x="{x:.1f}" y="{bottom + 14}" text-anchor="middle" font-size="11">{i + 1}</text>')
  parts.append(f'<text x="{LINE_WIDTH / 2}" y="{LINE_HEIGHT - 6}" text-anchor="middle" font-size="11">'
               f'{html.escape(x_label)}</text>')
  for n, (name, s) in enumerate(series.items()):
    colour = COLOURS[n % len(COLOURS)]
    for points in _finite_runs(list(s), y_min, y_max):
      parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="'
                   + ' '.join(f'{x:.1f},{y:.1f}' for x, y in points) + '"/>')
      parts.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>' for x, y in points)
    parts.append(f'<text x="{LINE_MARGIN_LEFT + LEGEND_SPACING * n}" y="{LEGEND_Y}" font-size="12" '
                 f'fill="{colour}">&#9632; {html.escape(name)}</text>')
  parts.append('</svg>')
  return ''.join(parts)


def _finite_runs(values: Sequence[float], y_min: float, y_max: float) -> List[List[Tuple[float, float]]]:
  """The pixel coordinates of `values`, split into runs of consecutive finite values (NaN and inf are gaps)."""
  runs: List[List[Tuple[float, float]]] = []
  previous_finite = False
  for value, point in zip(values, polyline_points(values, y_min, y_max)):
    finite = math.isfinite(value)
    if finite and not previous_finite:
      runs.append([])
    if finite:
      runs[-1].append(point)
    previous_finite = finite
  return runs


def bar_width(value: float, scale_max: float) -> float:
  """Pixel length of a bar of `value` when `scale_max` fills the bar area."""
  return 0.0 if scale_max <= 0 else max(0.0, value) / scale_max * BAR_AREA_WIDTH


def bar_chart(title: str, bars: Sequence[Tuple[str, float]], threshold: Optional[float] = None) -> str:
  """A horizontal SVG bar chart, one labelled bar per (label, value); a dashed line marks `threshold`.

  Bars whose value exceeds the threshold are drawn in the warning colour. A NaN or infinite value (a slice without
  an RMSE) draws no bar and reads 'no value'; the others are scaled without it. A NaN or infinite threshold draws
  no line.
  """
  if not bars:
    return f'<p>{html.escape(title)}: no values.</p>'
  if threshold is not None and not math.isfinite(threshold):  # e.g. overall RMSE + margin with no overall RMSE
    threshold = None
  scaled = [v for _, v in bars if math.isfinite(v)] + ([threshold] if threshold is not None else [])
  scale_max = max(scaled) if scaled else 0.0
  height = BAR_MARGIN_TOP + len(bars) * (BAR_HEIGHT + BAR_GAP) + 10
  width = BAR_LABEL_WIDTH + BAR_AREA_WIDTH + BAR_VALUE_WIDTH
  parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
           f'aria-label="{html.escape(title)}">',
           f'<text x="{width / 2}" y="18" text-anchor="middle" font-weight="bold">{html.escape(title)}</text>']
  for i, (label, value) in enumerate(bars):
    y = BAR_MARGIN_TOP + i * (BAR_HEIGHT + BAR_GAP)
    over = threshold is not None and value > threshold
    parts.append(f'<text x="{BAR_LABEL_WIDTH - 6}" y="{y + BAR_HEIGHT - 4}" text-anchor="end" font-size="12">'
                 f'{html.escape(label)}</text>')
    if math.isfinite(value):
      parts.append(f'<rect x="{BAR_LABEL_WIDTH}" y="{y}" width="{bar_width(value, scale_max):.1f}" '
                   f'height="{BAR_HEIGHT}" fill="{COLOURS[4] if over else COLOURS[0]}"/>')
    parts.append(f'<text x="{BAR_LABEL_WIDTH + BAR_AREA_WIDTH + 6}" y="{y + BAR_HEIGHT - 4}" font-size="12">'
                 f'{f"{value:.4f}" if math.isfinite(value) else "no value"}</text>')
  if threshold is not None:
    x = BAR_LABEL_WIDTH + bar_width(threshold, scale_max)
    parts.append(f'<line x1="{x:.1f}" y1="{BAR_MARGIN_TOP - 4}" x2="{x:.1f}" y2="{height - 6}" stroke="#D55E00" '
                 'stroke-dasharray="4 3"/>')
  parts.append('</svg>')
  return ''.join(parts)
