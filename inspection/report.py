"""Writes a self-contained HTML report of one pipeline run (viewable offline: no scripts, no network).

  python -m inspection.report --output-dir outputs/ml100k --out report.html [--run RUN_ID]

Sections: components, data statistics, anomalies, training curves, evaluation per slice (with a bar chart of
RMSE per user segment), the segment gate (gated segments against overall RMSE + its margin), other metric
artifacts (e.g. the retrieval gate), served model versions.

Data statistics are offline tables of StatisticsGen's output rather than TFDV's Facets view:
`tfdv.utils.display_util.get_statistics_html` loads webcomponents from cdnjs.cloudflare.com and Facets from
raw.githubusercontent.com (an HTML import Chromium no longer supports), so it shows nothing offline.
"""

from pipeline import environment

environment.use_legacy_keras()

# pylint: disable=g-import-not-at-top,wrong-import-position
import argparse
import html
import json
import os
import sys
from typing import Dict, List, Optional, Sequence, Set, Tuple

from ml_metadata import metadata_store

from components import push_reasons, segment_rules
from inspection import charts, cli, queries, tables
from inspection.store import StoreError
from pipeline import configs
from schema import features
from trainer.common.run_files import BLEND_FILE, HISTORY_FILE, ITEM_ITEM_FILE

RMSE_METRIC = 'root_mean_squared_error'
STATISTICS_FILE = 'FeatureStats.pb'  # Written by StatisticsGen into each Split-<split>/ directory.
# Keras history keys of validation series start with this.
VALIDATION_PREFIX = 'val_'
TOP_VALUES_SHOWN = 3

_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.blessed { color: #007a3d; font-weight: bold; }
.not-blessed { color: #b00020; font-weight: bold; }
.note { color: #555; font-size: 13px; }
svg { margin: 0.5em 1em 1em 0; }
"""


def build_report(store: metadata_store.MetadataStore, pipeline_name: str, run: queries.PipelineRun,
                 serving_dir: Optional[str]) -> str:
  """The report's HTML for `run`.

  Args:
    store: the opened ML Metadata store.
    pipeline_name: the pipeline's name in it.
    run: the run to report (see queries.require_run).
    serving_dir: the runner's serving root (`<output_dir>/serving`) to list served versions from; None to skip.
  """
  artifacts = queries.run_artifacts(store, run)
  body = [f'<h1>Pipeline run {html.escape(run.run_id)}</h1>',
          f'<p>Pipeline <b>{html.escape(pipeline_name)}</b>, started {tables.timestamp(run.started_ms)}, '
          f'TFX run {run.wall_seconds:.1f} s wall (first component\'s start to the last one\'s end; the runner\'s '
          'data preparation before it is not included).</p>',
          '<h2>Components</h2>',
          _table(['component', 'state', 'seconds'],
                 [[c.component_id, c.state, f'{c.wall_seconds:.1f}'] for c in run.components]),
          '<h2>Data statistics</h2>', _statistics_section(artifacts),
          '<h2>Anomalies</h2>', _anomalies_of_run(store, run),
          '<h2>Training curves</h2>', _training_section(artifacts),
          '<h2>Evaluation per slice</h2>', _evaluation_section(queries.model_validations(store, run)),
          '<h2>Segment gate</h2>', _segment_gate_section(queries.segment_gate_reports(store, run)),
          '<h2>Retrieval and other metrics</h2>', _metric_artifacts_section(queries.metric_artifacts(store, run)),
          '<h2>Served versions</h2>', _served_section(serving_dir, artifacts)]
  return ('<!DOCTYPE html><html><head><meta charset="utf-8">'
          f'<title>Run {html.escape(run.run_id)} — {html.escape(pipeline_name)}</title>'
          f'<style>{_STYLE}</style></head><body>' + '\n'.join(body) + '</body></html>')


def served_versions(serving_dir: str) -> List[Tuple[str, str, str]]:
  """(model name, version, path) of every complete version under `serving_dir`: by model name, then version.

  Args:
    serving_dir: the serving root holding `<model>/<version>/`; a missing directory has no versions.
  """
  # The versions serving would load (numeric directories holding saved_model.pb, in numeric order): a Pusher's
  # `.staging-<v>` directory, or a numeric one still without its saved_model.pb, is not served.
  from serving import models  # pylint: disable=g-import-not-at-top  (imports TensorFlow)
  found = []
  if not os.path.isdir(serving_dir):
    return found
  for model in sorted(os.listdir(serving_dir)):
    found.extend((model, str(version), models.version_dir(serving_dir, model, version))
                 for version in models.complete_versions(os.path.join(serving_dir, model)))
  return found


def _statistics_section(artifacts: List[queries.ArtifactRecord]) -> str:
  from tensorflow_metadata.proto.v0 import statistics_pb2
  import tensorflow as tf
  stats = [a for a in artifacts if a.type == queries.EXAMPLE_STATISTICS_TYPE and a.producer ==
           configs.STATISTICS_GEN_ID]
  if not stats:
    return '<p>No StatisticsGen output in this run.</p>'
  parts = ['<p class="note">Per-feature statistics of the input examples (rendered here as tables: TFDV\'s '
           'Facets view loads its scripts from the internet and would show nothing offline).</p>']
  artifact = stats[0]
  for split in json.loads(str(artifact.properties.get(queries.SPLIT_NAMES_PROPERTY, '[]'))):
    path = os.path.join(artifact.uri, f'Split-{split}', STATISTICS_FILE)
    if not tf.io.gfile.exists(path):
      parts.append(f'<p>Split {html.escape(split)}: no {STATISTICS_FILE} at {html.escape(path)}.</p>')
      continue
    with tf.io.gfile.GFile(path, 'rb') as f:
      statistics = statistics_pb2.DatasetFeatureStatisticsList.FromString(f.read())
    for dataset in statistics.datasets:
      parts.append(f'<h3>Split {html.escape(split)}: {dataset.num_examples} examples</h3>')
      numeric, categorical = [], []
      for feature in dataset.features:
        name = '.'.join(feature.path.step) or feature.name
        if feature.WhichOneof('stats') == 'num_stats':
          s = feature.num_stats
          numeric.append([name, s.common_stats.num_non_missing, _percent_missing(s.common_stats),
                          s.mean, s.std_dev, s.min, s.median, s.max, s.num_zeros])
        elif feature.WhichOneof('stats') == 'string_stats':
          s = feature.string_stats
          top = ', '.join(f'{v.value} ({v.frequency:.0f})' for v in s.top_values[:TOP_VALUES_SHOWN])
          categorical.append([name, s.common_stats.num_non_missing, _percent_missing(s.common_stats), s.unique,
                              top, s.avg_length])
      if numeric:
        parts.append(_table(['numeric feature', 'count', 'missing', 'mean', 'std dev', 'min', 'median', 'max',
                             'zeros'], numeric))
      if categorical:
        parts.append(_table(['categorical feature', 'count', 'missing', 'unique', 'top values',
                             'avg length'], categorical))
  return '\n'.join(parts)


def _anomalies_of_run(store: metadata_store.MetadataStore, run: queries.PipelineRun) -> str:
  """The anomalies section of `run`, or a note naming the ExampleValidator file that is not where the store says."""
  try:
    reports = queries.split_anomalies(store, run)
  except queries.ArtifactFilesMissingError as e:
    return f'<p>Cannot read ExampleValidator\'s output: {html.escape(str(e))}.</p>'
  return _anomalies_section(reports)


def _anomalies_section(reports: List[queries.SplitAnomalies]) -> str:
  if not reports:
    return '<p>No ExampleValidator output in this run.</p>'
  rows = []
  for report in reports:
    if not report.findings:
      rows.append([report.split, '', '', 'No anomalies', 'The split matches the schema.'])
    rows.extend([report.split, f.feature or '(whole dataset)', f.severity, f.short_description, f.description]
                for f in report.findings)
  return _table(['split', 'feature', 'severity', 'anomaly', 'details'], rows)


def _training_section(artifacts: List[queries.ArtifactRecord]) -> str:
  import tensorflow as tf
  parts = []
  for run_artifact in (a for a in artifacts if a.type == queries.MODEL_RUN_TYPE):
    path = os.path.join(run_artifact.uri, HISTORY_FILE)
    if not tf.io.gfile.exists(path):
      parts.append(f'<p>{html.escape(run_artifact.producer)}: no {HISTORY_FILE} in {html.escape(run_artifact.uri)}.</p>')
      continue
    with tf.io.gfile.GFile(path) as f:
      history: Dict[str, List[Optional[float]]] = json.load(f)  # null: an epoch that diverged
    parts.append(f'<h3>{html.escape(run_artifact.producer)}</h3><div>')
    for name in sorted(k for k in history if not k.startswith(VALIDATION_PREFIX)):
      series = {f'train {name}': history[name]}
      if VALIDATION_PREFIX + name in history:
        series[f'eval {name}'] = history[VALIDATION_PREFIX + name]
      if any(v != 0 for s in series.values() for v in s):  # All-zero curves (no regularisation) say nothing.
        parts.append(charts.line_chart(f'{run_artifact.producer}: {name}', series))
    parts.append('</div>')
    parts.append(_blend_table(run_artifact))
    parts.append(_item_item_line(run_artifact))
  return '\n'.join(parts) or '<p>No trainer output in this run.</p>'


def _run_record(run_artifact: queries.ArtifactRecord, file_name: str) -> Optional[Dict]:
  """The JSON file `file_name` of a ModelRun artifact, or None when the Trainer did not write it."""
  import tensorflow as tf
  path = os.path.join(run_artifact.uri, file_name)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def _blend_table(run_artifact: queries.ArtifactRecord) -> str:
  """The ranking Trainer's neighbourhood blend weight and each candidate's validation RMSE ('' without one; 'n/a'
  for a candidate whose RMSE the file holds as null, a NaN or infinite figure)."""
  blend = _run_record(run_artifact, BLEND_FILE)
  if blend is None:
    return ''
  heading = (f'<p>{html.escape(run_artifact.producer)}: neighbourhood blend weight {blend["weight"]:g} '
             '(rating = (1 - w) * network + w * neighbourhood model)</p>')
  if not blend['validation_rmse']:
    return heading
  return heading + _table(['weight w', 'validation RMSE (stars)', 'chosen'],
                          [[f'{w:g}', 'n/a' if r is None else f'{r:.4f}', 'yes' if w == blend['weight'] else '']
                           for w, r in blend['validation_rmse']])


def _item_item_line(run_artifact: queries.ArtifactRecord) -> str:
  """The retrieval Trainer's item-item scores: weight, penalty and coverage ('' without them)."""
  record = _run_record(run_artifact, ITEM_ITEM_FILE)
  if record is None:
    return ''
  return (f'<p>{html.escape(run_artifact.producer)}: item-item scores weight {record["weight"]:g} '
          f'(l2 {record["l2"]:g}) over {record["covered_items"]} of {record["catalogue_items"]} catalogue items'
          f'{_coverage_limit(record)}, '
          f'from {record["users"]} users\' {record["interactions"]} distinct training items '
          '(score = query · candidate + weight * item-item score, on unseen items)</p>')


def _coverage_limit(record: Dict) -> str:
  """' (at most N)' of an item-item record that has its coverage limit ('' for records written before it)."""
  return f' (at most {record["max_items"]})' if 'max_items' in record else ''


def _evaluation_section(validations: List[queries.ModelValidation]) -> str:
  if not validations:
    return '<p>No Evaluator output in this run.</p>'
  parts = []
  for v in validations:
    verdict = {True: ('blessed', 'BLESSED'), False: ('not-blessed', 'NOT BLESSED'),
               None: ('note', 'no blessing written')}[v.blessed]
    parts.append(f'<h3>{html.escape(v.component_id)}: <span class="{verdict[0]}">{verdict[1]}</span></h3>')
    if v.rubber_stamp:
      parts.append('<p class="note">No baseline model: change thresholds were skipped (first blessing).</p>')
    parts.append(_table(['metric', 'slices', 'upper bound', 'lower bound', 'change vs baseline'],
                        [[t.metric, t.slices, t.upper_bound, t.lower_bound, tables.change_text(t)]
                         for t in v.thresholds]) if v.thresholds else '<p>No thresholds configured.</p>')
    if v.failures:
      parts.append('<h4>Thresholds broken</h4>' + _table(['slice', 'metric', 'value', 'rule'],
                                                          [[f.slice, f.metric, f.value, f.message] for f in v.failures]))
    segment_bars = [(s.slice, s.metrics[RMSE_METRIC]) for s in v.slices
                    if RMSE_METRIC in s.metrics and (s.slice == queries.OVERALL_SLICE or
                                                     s.slice.split('=', 1)[0] in features.USER_SEGMENT_COLUMNS)]
    # No threshold line: the Evaluator's RMSE bound applies to the overall slice only; the segment gate's rule
    # (overall RMSE + margin, gated segments only) is drawn in its own section.
    parts.append(charts.bar_chart('RMSE per user segment (stars)', segment_bars))
    names = sorted({n for s in v.slices for n in s.metrics})
    parts.append(_table(['slice'] + names, [[s.slice] + [s.metrics.get(n) for n in names] for s in v.slices]))
  return '\n'.join(parts)


def segment_gate_bars(report: queries.SegmentGateReport) -> Tuple[List[Tuple[str, float]], Optional[float]]:
  """The gated user segments' RMSE (stars) as chart bars, worst margin first, and the gate's line: overall RMSE
  + max_margin (None when the margin is not recorded)."""
  gated = sorted((row for row in report.segments if row['gated'] and row['column'] in features.USER_SEGMENT_COLUMNS),
                 key=lambda row: segment_rules.worst_first(row['margin'], (row['column'], row['value'])))
  bars = [(f'{row["column"]}={row["value"]}', row['rmse']) for row in gated]
  return bars, None if report.max_margin is None else report.overall_rmse + report.max_margin


def _segment_gate_section(reports: List[queries.SegmentGateReport]) -> str:
  if not reports:
    return '<p>No segment gate output in this run.</p>'
  parts = []
  for report in reports:
    verdict = ('blessed', 'BLESSED') if report.blessed else ('not-blessed', 'NOT BLESSED')
    parts.append(f'<h3>{html.escape(report.component_id)}: <span class="{verdict[0]}">{verdict[1]}</span></h3>')
    margin = 'not recorded' if report.max_margin is None else f'{report.max_margin:g}'
    z = report.margin_standard_errors
    # With z > 0 a gated segment above the dashed line passes while its margin less z standard errors is within.
    discount = (f' once {z:g} standard errors of its RMSE are taken off its margin (a segment above the line '
                'passes while that discounted margin is within)') if z > 0 else ''
    segment = ('a gated segment (the minimum of eval examples is not recorded)' if report.min_examples is None
               else f'a segment with at least {report.min_examples} eval examples')
    parts.append(f'<p>Overall RMSE {report.overall_rmse:.4f}; {segment} may be at most {margin} stars above it '
                 f'(the dashed line){discount}.</p>')
    if report.reasons:
      parts.append('<p>Refused:</p><ul>' + ''.join(f'<li>{html.escape(r)}</li>' for r in report.reasons) + '</ul>')
    if report.warnings:
      parts.append('<p>Not checked:</p><ul>' + ''.join(f'<li>{html.escape(w)}</li>' for w in report.warnings) +
                   '</ul>')
    bars, line = segment_gate_bars(report)
    parts.append(charts.bar_chart('RMSE per gated user segment (stars)', bars, line))
    headers = ['segment', 'examples', 'RMSE', 'RMSE standard error', 'margin']
    if z > 0:
      headers.append(f'margin - {z:g} s.e.')
    headers.extend(['gated', 'last blessed RMSE', 'violations'])
    parts.append(_table(headers, [_segment_gate_row(r, z) for r in report.segments]))
  return '\n'.join(parts)


def _segment_gate_row(row: Dict, margin_standard_errors: float) -> List[object]:
  """A segment's cells in the segment gate table; with z > 0 also its margin less z standard errors (stars), the
  figure the gate compared with the allowed margin ('' without a standard error: judged on its plain margin)."""
  standard_error = row.get('rmse_standard_error')  # absent from reports written before the Evaluator measured it
  cells: List[object] = [f'{row["column"]}={row["value"]}', row['example_count'], row['rmse'], standard_error,
                         row['margin']]
  if margin_standard_errors > 0:
    cells.append(None if standard_error is None else row['margin'] - margin_standard_errors * standard_error)
  return cells + [row['gated'], row['baseline_rmse'], '; '.join(row['violations'])]


def _metric_artifacts_section(found: List[queries.MetricArtifact]) -> str:
  if not found:
    return '<p>No artifact with metric properties (e.g. the retrieval gate) in this run.</p>'
  parts = []
  for m in found:
    verdict = {True: 'passed', False: 'failed', None: ''}[m.blessed]
    parts.append(f'<h3>{html.escape(m.component_id)}.{html.escape(m.output_key)} ({html.escape(m.type)}) '
                 f'{verdict}</h3>' + _table(['metric', 'value'], [[k, v] for k, v in m.metrics.items()]))
  return '\n'.join(parts)


# The 'pushed by this run' cell of a version this run's Pusher found already served (it copied nothing).
ALREADY_SERVED_CELL = 'no (already served)'


def _served_section(serving_dir: Optional[str], artifacts: List[queries.ArtifactRecord]) -> str:
  """The Pushers' outcomes, then every served version and whether this run pushed it: 'yes' for a version this run
  copied, ALREADY_SERVED_CELL for one it found already served (an unchanged rerun: pushed=1, nothing copied)."""
  pushes = [a for a in artifacts if a.type == queries.PUSHED_MODEL_TYPE and
            queries.PUSHED_DESTINATION_PROPERTY in a.properties]
  already_here = {_real(str(a.properties[queries.PUSHED_DESTINATION_PROPERTY])) for a in pushes
                  if _found_already_served(a)}
  pushed_here = {_real(str(a.properties[queries.PUSHED_DESTINATION_PROPERTY])) for a in pushes
                 if not _found_already_served(a)}
  note = ''.join(f'<p>{html.escape(a.producer)}: {html.escape(push_outcome(a))}</p>' for a in artifacts
                 if a.type == queries.PUSHED_MODEL_TYPE)
  if serving_dir is None:
    return note + '<p>No serving directory given.</p>'
  versions = served_versions(serving_dir)
  if not versions:
    return note + f'<p>No served versions under {html.escape(serving_dir)}.</p>'
  return note + _table(['model', 'version', 'path', 'pushed by this run'],
                       [[m, v, p, _pushed_cell(_real(p), pushed_here, already_here)] for m, v, p in versions])


def _pushed_cell(path: str, pushed_here: Set[str], already_here: Set[str]) -> str:
  """The 'pushed by this run' cell of the served version at `path` (resolved, as both sets hold them)."""
  if path in pushed_here:
    return 'yes'
  return ALREADY_SERVED_CELL if path in already_here else ''


def _found_already_served(pushed_model: queries.ArtifactRecord) -> bool:
  """Whether the Pusher found this pushed model already served (components/push_reasons.py); False for an artifact
  written before it recorded that."""
  return push_reasons.found_already_served(pushed_model.properties.get(push_reasons.ALREADY_SERVED_KEY))


def push_outcome(pushed_model: queries.ArtifactRecord) -> str:
  """What a Pusher's pushed_model artifact says of its model, e.g. 'pushed by this run to <destination>'.

  A model the Pusher found already served (an unchanged rerun: `pushed` 1, nothing copied) says so: 'already served
  as version V (unchanged since an earlier run; not copied again).' A model not pushed was not blessed, or its
  push was superseded: a later-started push published a newer version while it copied
  (`components.serving_pusher.push_model`), and that one stays served. An artifact without the Pusher's reason
  (written before it recorded one) was not blessed.
  """
  properties = pushed_model.properties
  if properties.get(queries.PUSHED_PROPERTY) == 1:
    if _found_already_served(pushed_model):
      version, destination = (properties.get(name) for name in (queries.PUSHED_VERSION_PROPERTY,
                                                                  queries.PUSHED_DESTINATION_PROPERTY))
      served = push_reasons.already_served(None if version is None else str(version),
                                           None if destination is None else str(destination))
      return f'{served}.'
    return f'pushed by this run to {properties[queries.PUSHED_DESTINATION_PROPERTY]}'
  why = push_reasons.why_not_pushed(properties.get(push_reasons.NOT_PUSHED_REASON_KEY),
                                    properties.get(push_reasons.SUPERSEDED_BY_VERSION_KEY))
  return f'not pushed by this run ({why}).'


def _percent_missing(common_stats) -> str:
  total = common_stats.num_non_missing + common_stats.num_missing
  return f'{100.0 * common_stats.num_missing / total:.1f}%' if total else ''


def _real(path: str) -> str:
  return os.path.realpath(path).rstrip(os.sep)


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
  head = ''.join(f'<th>{html.escape(str(h))}</th>' for h in headers)
  body = ''.join('<tr>' + ''.join(_td(v) for v in row) + '</tr>' for row in rows)
  return f'<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _td(value: object) -> str:
  if isinstance(value, (int, float)) and not isinstance(value, bool):
    return f'<td class="num">{html.escape(tables.cell_text(value))}</td>'
  return f'<td>{html.escape(tables.cell_text(value))}</td>'


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
  """Parses the command line."""
  parser = argparse.ArgumentParser(prog='python -m inspection.report', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  cli.add_store_flags(parser)
  parser.add_argument('--out', required=True, help='The HTML file to write.')
  parser.add_argument('--run', default=None, help='A run id (see `inspection.cli runs`); default: the newest.')
  parser.add_argument('--serving-dir', default=None,
                      help='Serving root to list versions from (default: <output dir>/serving).')
  return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Writes the report; returns the process exit code (as inspection.cli's: 2 when there is no usable store, 1
  when --run names no run in it)."""
  args = parse_args(argv)
  try:
    store = cli.store_from_flags(args)
    run = queries.require_run(store, args.pipeline_name, cli.store_description(args), args.run)
  except StoreError as e:
    print(f'error: {e}', file=sys.stderr)
    return cli.EXIT_NO_STORE
  except queries.RunNotFoundError as e:
    print(f'error: {e}', file=sys.stderr)
    return cli.EXIT_NOT_FOUND
  serving_dir = args.serving_dir
  if serving_dir is None and (args.output_dir or args.metadata_path):
    root = args.output_dir or os.path.dirname(os.path.abspath(args.metadata_path))
    serving_dir = os.path.join(root, configs.SERVING_SUBDIR)
  report = build_report(store, args.pipeline_name, run, serving_dir)
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  with open(args.out, 'w', encoding='utf-8') as f:
    f.write(report)
  print(f'Wrote the report of run {run.run_id} to {args.out}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
