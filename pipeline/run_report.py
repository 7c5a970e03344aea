"""Formats the end-of-run summary: per-component wall time, eval RMSE, blessings and what each Pusher did."""

import json
import os
from typing import Any, Dict, List, Mapping, Optional

import tensorflow as tf
import tensorflow_model_analysis as tfma
from ml_metadata.proto import metadata_store_pb2

from components import push_reasons, retrieval_gate, segment_gate
from inspection import store as store_lib
from pipeline import configs, run_summary

RMSE_METRIC = 'root_mean_squared_error'
# The gates' settings, as their executions record them (the components' parameters).
MIN_EXAMPLES_SETTING = 'min_examples'  # SegmentGate: segments with fewer eval examples are not gated
MAX_SHORTFALL_SETTING = 'segment_max_shortfall'  # RetrievalGate: 1 gates no segment
MIN_USERS_SETTING = 'segment_min_users'  # RetrievalGate: segments with fewer users are not judged


def overall_metric(evaluation_uri: str, metric: str) -> Optional[float]:
  """The overall-slice value of `metric` in a TFMA evaluation output, or None when absent.

  A metric TFMA computed as NaN or infinite (e.g. the RMSE of a model that predicts NaN) is returned as that float.
  """
  result = tfma.load_eval_result(evaluation_uri)
  for slice_key, metrics in result.slicing_metrics:
    if slice_key == ():
      value = metrics.get('', {}).get('', {}).get(metric, {}).get('doubleValue')
      # TFMA's dict is protobuf JSON, which spells a non-finite double as the string 'NaN', 'Infinity' or
      # '-Infinity'; float() reads those back.
      return None if value is None else float(value)
  return None


def format_run_report(output_dir: str, total_seconds: float, started_at_s: Optional[float] = None) -> str:
  """A human-readable summary of the latest run stored under `output_dir`.

  Args:
    output_dir: the run's `--output-dir` (its ML Metadata store is `metadata.sqlite` there).
    total_seconds: the invocation's wall time in all (seconds), data preparation before the TFX run included; the
      report also gives the TFX run's own, as `inspection.cli runs` does (first component's start to last one's end).
    started_at_s: when this invocation started (unix seconds), if known: a newest run recorded before it is an
      earlier one (this run failed before any component started), and the report says so instead of describing
      that run as this one.

  Returns:
    The report; when there is no usable store (e.g. the pipeline failed before writing one), a line saying so and
    why, so that the runner still goes on to report the pipeline's own failure.
  """
  try:
    store = run_summary.open_store(os.path.join(output_dir, configs.METADATA_FILE))
  except store_lib.StoreError as e:
    return f'No pipeline run is recorded under {output_dir}: {e}'
  summary = run_summary.latest_run(store, configs.PIPELINE_NAME)
  if summary is None:
    return f'No pipeline run is recorded under {output_dir}.'
  # A second of slack for the store's millisecond clock; an earlier run started at least its own duration before.
  if started_at_s is not None and summary.started_ms < (started_at_s - 1.0) * 1000.0:
    return (f'No component of this run started ({total_seconds:.0f} s wall in all, data preparation included); the '
            f'newest run recorded under {output_dir}, {summary.run_id}, is an earlier one.')
  lines: List[str] = [f'Run {summary.run_id} ({total_seconds:.0f} s wall in all, data preparation included; TFX run '
                      f'{summary.wall_seconds:.1f} s wall):']
  for component in summary.components:
    lines.append(f'  {component.component_id:<40} {component.state:<9} {component.wall_seconds:7.1f} s')
  evaluation = summary.output_artifacts.get(configs.RANKING_EVALUATOR_ID, {})
  if evaluation.get('evaluation'):
    rmse = overall_metric(evaluation['evaluation'][0].uri, RMSE_METRIC)
    lines.append(f'Ranking eval RMSE: {rmse:.4f}' if rmse is not None else 'Ranking eval RMSE: not computed')
  if evaluation.get('blessing'):
    blessed = evaluation['blessing'][0].custom_properties['blessed'].int_value == 1
    lines.append(f'Ranking overall RMSE gate (Evaluator): {"passed" if blessed else "failed"}')
  lines.extend(_segment_gate_lines(summary))
  lines.extend(_push_lines(summary, configs.RANKING_PUSHER_ID, 'Ranking'))
  lines.extend(_retrieval_lines(summary))
  return '\n'.join(lines)


def _segment_gate_lines(summary: run_summary.RunSummary) -> List[str]:
  """The segment gate's blessing, why it refused, and the checks it could not make, as report lines."""
  segment_blessing = summary.output_artifacts.get(configs.RANKING_SEGMENT_GATE_ID, {}).get('blessing')
  if not segment_blessing:
    return []
  properties = segment_blessing[0].custom_properties
  blessed = properties[segment_gate.BLESSED_KEY].int_value == 1
  # The gate judges every segment (user and item-popularity ones) with at least its min_examples eval examples.
  min_examples = summary.execution_properties.get(configs.RANKING_SEGMENT_GATE_ID, {}).get(MIN_EXAMPLES_SETTING)
  segments = (f'every segment of >= {min_examples} examples' if isinstance(min_examples, int)
              else 'every segment large enough to gate')
  lines = [f'Ranking model blessed (overall RMSE and {segments}): {"yes" if blessed else "no"}']
  if not blessed and segment_gate.REASONS_KEY in properties:
    lines.extend(f'  refused: {reason}' for reason in json.loads(properties[segment_gate.REASONS_KEY].string_value))
  if segment_gate.WORST_SEGMENT_KEY in properties:
    # The gate leaves the margin out when it is NaN or infinite (a segment without a finite RMSE, refused).
    margin = (f'{properties[segment_gate.WORST_SEGMENT_MARGIN_KEY].double_value:+.4f} from the overall'
              if segment_gate.WORST_SEGMENT_MARGIN_KEY in properties else 'not a finite number')
    lines.append(f'  worst gated segment: {properties[segment_gate.WORST_SEGMENT_KEY].string_value}, RMSE {margin}')
  if segment_gate.WARNINGS_KEY in properties:
    lines.extend(f'  warning: {warning}' for warning in json.loads(properties[segment_gate.WARNINGS_KEY].string_value))
  return lines


def _push_lines(summary: run_summary.RunSummary, pusher_id: str, model: str) -> List[str]:
  """Where the Pusher `pusher_id` put the `model` ('Ranking', 'Retrieval'), or why it did not and what stays served.

  A model the Pusher found already served (an unchanged rerun: `pushed` 1, its destination the version an earlier
  push copied) says so instead of 'pushed to'. A model not pushed was not blessed, or was superseded: a
  later-started push published a newer version while this one copied (`serving_pusher.push_model`), and that
  version stays served. An artifact without the Pusher's reason (written before it recorded one) was not blessed.
  """
  pushed = summary.output_artifacts.get(pusher_id, {}).get('pushed_model')
  if not pushed:
    return []
  properties = pushed[0].custom_properties
  if properties['pushed'].int_value == 1:
    destination = properties['pushed_destination'].string_value
    if push_reasons.ALREADY_SERVED_KEY in properties and push_reasons.found_already_served(
        properties[push_reasons.ALREADY_SERVED_KEY].int_value):
      version = properties['pushed_version'].string_value if 'pushed_version' in properties else None
      return [f'{model} model {push_reasons.already_served(version, destination)}']
    return [f'{model} model pushed to {destination}']
  reason, newer = (properties[key].string_value if key in properties else None
                   for key in (push_reasons.NOT_PUSHED_REASON_KEY, push_reasons.SUPERSEDED_BY_VERSION_KEY))
  # Not blessed: the version served before this run stays (a superseded push names the newer one that does).
  stays = '; the previously served version stays' if reason in (None, push_reasons.NOT_BLESSED) else ''
  return [f'{model} model not pushed ({push_reasons.why_not_pushed(reason, newer)}){stays}.']


def _retrieval_lines(summary: run_summary.RunSummary) -> List[str]:
  """The retrieval gate's metrics and blessing and the retrieval push, as report lines."""
  lines = []
  gate = summary.output_artifacts.get(configs.RETRIEVAL_GATE_ID, {})
  if gate.get('evaluation'):
    properties = gate['evaluation'][0].custom_properties
    names = [retrieval_gate.recall_key(k) for k in retrieval_gate.CUTOFFS] + [
        retrieval_gate.accuracy_key(k) for k in retrieval_gate.CUTOFFS]
    # The gate leaves a NaN figure out of the properties (e.g. the Recall@K of no user): 'n/a', as in its reasons.
    values = [f'{n}={properties[n].double_value:.4f}' if n in properties else f'{n}=n/a' for n in names]
    lines.append('Retrieval eval (recall: seen items removed; accuracy: seen kept): ' + ' '.join(values))
  if gate.get('blessing'):
    properties = gate['blessing'][0].custom_properties
    blessed = properties[retrieval_gate.BLESSED_KEY].int_value == 1
    lines.append(f'Retrieval model blessed: {"yes" if blessed else "no"}')
    if not blessed and retrieval_gate.REASONS_KEY in properties:
      lines.extend(f'  refused: {reason}'
                   for reason in json.loads(properties[retrieval_gate.REASONS_KEY].string_value))
    if retrieval_gate.WORST_SEGMENT_KEY in properties and retrieval_gate.WORST_SEGMENT_SHORTFALL_KEY in properties:
      lines.append(_worst_retrieval_segment_line(summary, properties))
  lines.extend(_push_lines(summary, configs.RETRIEVAL_PUSHER_ID, 'Retrieval'))
  return lines


def _worst_retrieval_segment_line(summary: run_summary.RunSummary,
                                  blessing_properties: Mapping[str, metadata_store_pb2.Value]) -> str:
  """The retrieval gate's worst user segment: its Recall@100 and users, its shortfall below the overall Recall@100,
  and whether the segment rule gated it.

  The segment and its shortfall come from the gate's blessing, the overall Recall@100 from its evaluation, the
  segment's own Recall@100 and users from its `metrics.json` (left out when that cannot be read), the settings from
  its execution (the note on gating is left out when they are not recorded). The worst segment is the one with the
  largest shortfall of those with at least `segment_min_users` users; the rule refuses a model only when
  `segment_max_shortfall` is below 1 (the default 1 refuses nothing: the segment is reported, not gated).
  """
  settings = summary.execution_properties.get(configs.RETRIEVAL_GATE_ID, {})
  max_shortfall, min_users = settings.get(MAX_SHORTFALL_SETTING), settings.get(MIN_USERS_SETTING)
  recorded = isinstance(max_shortfall, (int, float)) and not isinstance(max_shortfall, bool)
  gated = recorded and max_shortfall < 1.0
  of_users = f' of >= {min_users} users' if isinstance(min_users, int) and not isinstance(min_users, bool) else ''
  key = retrieval_gate.recall_key(retrieval_gate.GATED_K)
  segment = blessing_properties[retrieval_gate.WORST_SEGMENT_KEY].string_value
  gate = summary.output_artifacts.get(configs.RETRIEVAL_GATE_ID, {})
  evaluation = gate['evaluation'][0] if gate.get('evaluation') else None
  worst = _worst_segment_of_metrics_file(evaluation.uri) if evaluation is not None and evaluation.uri else None
  own = (f'{key} {worst["recall"]:.4f} over {worst["num_users"]} users, '
         if worst and f'{worst.get("column")}={worst.get("value")}' == segment else f'{key} ')
  shortfall = blessing_properties[retrieval_gate.WORST_SEGMENT_SHORTFALL_KEY].double_value
  overall = (f' {evaluation.custom_properties[key].double_value:.4f}'
             if evaluation is not None and key in evaluation.custom_properties else '')
  text = (f'  worst {"gated " if gated else ""}user segment{of_users}: {segment}, {own}{shortfall:.4f} below the '
          f'overall{overall}')
  if gated:
    return text + f' (--retrieval-segment-max-shortfall allows {max_shortfall:.4f})'
  if recorded:
    return text + f' (reported; not gated: --retrieval-segment-max-shortfall is {max_shortfall:g})'
  return text


def _worst_segment_of_metrics_file(evaluation_uri: str) -> Optional[Dict[str, Any]]:
  """The retrieval gate's `worst_segment` in its `metrics.json` ({'column', 'value', 'recall', 'num_users',
  'shortfall'}), or None when the file is gone or unreadable, or holds no such figures."""
  try:
    with tf.io.gfile.GFile(os.path.join(evaluation_uri, retrieval_gate.METRICS_FILE)) as f:
      report = json.load(f)
  except (tf.errors.OpError, OSError, ValueError):  # a pruned output dir, a file that is not JSON
    return None
  worst = report.get('worst_segment') if isinstance(report, dict) else None
  if not isinstance(worst, dict) or not isinstance(worst.get('recall'), (int, float)) or not isinstance(
      worst.get('num_users'), int):
    return None
  return worst
