"""Renders inspection answers as aligned text tables for people, or JSON for machines."""

import dataclasses
import datetime
import json
import math
from typing import Any, List, Optional, Sequence

from components import push_reasons
from inspection import queries


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
  """Left-aligned columns separated by two spaces, a dashed rule under the header.

  Example: format_table(['a', 'bb'], [['xyz', 1]]) == 'a    bb\\n---  --\\nxyz  1'.
  """
  cells = [[str(h) for h in headers]] + [[cell_text(v) for v in row] for row in rows]
  widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
  lines = ['  '.join(value.ljust(width) for value, width in zip(row, widths)).rstrip() for row in cells]
  lines.insert(1, '  '.join('-' * width for width in widths))
  return '\n'.join(lines)


def to_json(value: Any) -> str:
  """Dataclasses (and lists of them) as indented JSON; a PipelineRun also gets its `wall_seconds`.

  A NaN or infinite float (e.g. the metric of a slice without examples) is written as null: JSON has no NaN, and
  Python's `NaN` literal is refused by strict parsers (jq, JavaScript's JSON.parse).
  """
  return json.dumps(_plain(value), indent=2, sort_keys=False, allow_nan=False)


def timestamp(ms: int) -> str:
  """Milliseconds since the epoch as local 'YYYY-MM-DD HH:MM:SS'."""
  return datetime.datetime.fromtimestamp(ms / 1000.0).strftime('%Y-%m-%d %H:%M:%S')


def runs_table(runs: List[queries.PipelineRun]) -> str:
  """One block per run: its id, start, wall time of its TFX run (first component's start to the last one's end:
  the runner's data preparation before it is not recorded), then each component's state and duration."""
  blocks = []
  for run in runs:
    header = f'Run {run.run_id} (started {timestamp(run.started_ms)}, TFX run {run.wall_seconds:.1f} s wall)'
    rows = [[c.component_id, c.state, f'{c.wall_seconds:.1f}', c.execution_id] for c in run.components]
    blocks.append(header + '\n' + format_table(['component', 'state', 'seconds', 'execution'], rows))
  return '\n\n'.join(blocks)


def artifacts_table(artifacts: List[queries.ArtifactRecord]) -> str:
  """Type, producing component output, id, creation time and URI of each artifact."""
  rows = [[a.type, f'{a.producer}.{a.output_key}', a.artifact_id, timestamp(a.created_ms), a.uri]
          for a in artifacts]
  return format_table(['type', 'produced by', 'id', 'created', 'uri'], rows)


def lineage_text(lineage: queries.Lineage) -> str:
  """The target, then each execution nearest first with what it read (<-) and wrote (->); an output blessed or
  pushed says so, and a model not pushed says why."""
  target = lineage.target
  lines = [f'{target.type} {target.artifact_id} {target.uri}']
  for name in (queries.PUSHED_DESTINATION_PROPERTY, queries.BLESSED_PROPERTY):
    if name in target.properties:
      lines.append(f'  {name}: {target.properties[name]}')
  for step in lineage.steps:
    lines.append(f'\n{step.component_id} (execution {step.execution_id}, {step.state}, run {step.run_id})')
    lines.extend(f'  <- {a.output_key:<14} {a.type:<17} {a.artifact_id:>4}  {a.uri}' for a in step.inputs)
    lines.extend(f'  -> {a.output_key:<14} {a.type:<17} {a.artifact_id:>4}  {a.uri}{_decision(a)}'
                 for a in step.outputs)
  return '\n'.join(lines)


def validation_text(validations: List[queries.ModelValidation],
                    metric_artifacts: List[queries.MetricArtifact]) -> str:
  """Per Evaluator: verdict, thresholds, failures and metrics per slice; then other metric artifacts."""
  blocks = []
  for v in validations:
    verdict = {True: 'BLESSED', False: 'NOT BLESSED', None: 'no blessing written'}[v.blessed]
    lines = [f'{v.component_id} (run {v.run_id}): {verdict}; thresholds '
             f'{ {True: "all met", False: "broken", None: "not evaluated"}[v.validation_ok] }'
             + (' (no baseline: change thresholds skipped)' if v.rubber_stamp else ''),
             f'  evaluation: {v.evaluation_uri}', '', 'Thresholds:']
    lines.append(_indent(format_table(
        ['metric', 'slices', 'upper bound', 'lower bound', 'change vs baseline'],
        [[t.metric, t.slices, t.upper_bound, t.lower_bound, change_text(t)] for t in v.thresholds])
                         if v.thresholds else 'none configured'))
    if v.failures:
      lines += ['', 'Failures:', _indent(format_table(
          ['slice', 'metric', 'value', 'rule'], [[f.slice, f.metric, f.value, f.message] for f in v.failures]))]
    metric_names = sorted({name for s in v.slices for name in s.metrics})
    lines += ['', 'Metrics per slice:', _indent(format_table(
        ['slice'] + metric_names, [[s.slice] + [s.metrics.get(m) for m in metric_names] for s in v.slices]))]
    blocks.append('\n'.join(lines))
  for m in metric_artifacts:
    verdict = {True: 'passed', False: 'failed', None: 'no verdict'}[m.blessed]
    blocks.append(f'{m.component_id}.{m.output_key} ({m.type}): {verdict}\n  {m.uri}\n' + _indent(
        format_table(['metric', 'value'], [[name, value] for name, value in m.metrics.items()])))
  return '\n\n'.join(blocks) if blocks else 'No evaluation or metric artifacts in this run.'


def anomalies_table(reports: List[queries.SplitAnomalies]) -> str:
  """Each split's findings, or 'no anomalies' for a split that matches the schema."""
  if not reports:
    return 'No ExampleValidator output in this run.'
  rows = []
  for report in reports:
    if not report.findings:
      rows.append([report.split, '-', '-', 'no anomalies', ''])
    for f in report.findings:
      rows.append([report.split, f.feature or '(dataset)', f.severity, f.short_description, f.description])
  return format_table(['split', 'feature', 'severity', 'anomaly', 'details'], rows)


def _decision(artifact: queries.ArtifactRecord) -> str:
  """An output's verdict for its lineage line, e.g. '  [blessed=1]', '  [pushed=0: not blessed]'; '' if none.

  A model not pushed says why, as the Pusher recorded it (components/push_reasons.py; an artifact written before
  it recorded a reason was not blessed); one the Pusher found already served says so ('  [pushed=1: already served
  as version V (unchanged since an earlier run; not copied again)]').
  """
  properties = artifact.properties
  for name in (queries.BLESSED_PROPERTY, queries.PUSHED_PROPERTY):
    if name in properties and isinstance(properties[name], int):
      if name == queries.PUSHED_PROPERTY and properties[name] == 0:
        why = push_reasons.why_not_pushed(properties.get(push_reasons.NOT_PUSHED_REASON_KEY),
                                          properties.get(push_reasons.SUPERSEDED_BY_VERSION_KEY))
        return f'  [{name}=0: {why}]'
      if name == queries.PUSHED_PROPERTY and push_reasons.found_already_served(
          properties.get(push_reasons.ALREADY_SERVED_KEY)):
        served = push_reasons.already_served(_text_or_none(properties.get(queries.PUSHED_VERSION_PROPERTY)),
                                             _text_or_none(properties.get(queries.PUSHED_DESTINATION_PROPERTY)))
        return f'  [{name}=1: {served}]'
      return f'  [{name}={properties[name]}]'
  return ''


def _text_or_none(value: Any) -> Optional[str]:
  """A property value as text; None stays None."""
  return None if value is None else str(value)


def change_text(rule: queries.ThresholdRule) -> str:
  """A change threshold as text, e.g. 'LOWER_IS_BETTER absolute 0.01'; '' when there is none."""
  if not rule.change_direction:
    return ''
  parts = [f'absolute {rule.change_absolute:g}' if rule.change_absolute is not None else '',
           f'relative {rule.change_relative:g}' if rule.change_relative is not None else '']
  return f'{rule.change_direction} ' + ', '.join(p for p in parts if p)


def cell_text(value: Any) -> str:
  """A table cell: '' for None, whole floats without decimals, other floats with 4."""
  if value is None:
    return ''
  if isinstance(value, float):
    return f'{value:.0f}' if value.is_integer() else f'{value:.4f}'
  return str(value)


def _indent(text: str, prefix: str = '  ') -> str:
  return '\n'.join(prefix + line for line in text.split('\n'))


def _plain(value: Any) -> Any:
  """`value` as JSON-ready dicts, lists and scalars; NaN and infinite floats become None."""
  if isinstance(value, queries.PipelineRun):
    plain = dataclasses.asdict(value)
    plain['wall_seconds'] = value.wall_seconds
    return _plain(plain)
  if dataclasses.is_dataclass(value) and not isinstance(value, type):
    return _plain(dataclasses.asdict(value))
  if isinstance(value, dict):
    return {k: _plain(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_plain(v) for v in value]
  if isinstance(value, float) and not math.isfinite(value):
    return None
  return value

