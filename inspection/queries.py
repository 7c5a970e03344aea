"""ML Metadata queries over a pipeline's runs: components, artifacts, lineage, validation and anomalies.

Every answer is a typed dataclass of plain values (JSON-ready with `dataclasses.asdict`), except
`RunSummary.output_artifacts`, which keeps the ML Metadata protos for the runner's end-of-run summary.
Times are milliseconds since the epoch, durations seconds.
"""

import collections
import dataclasses
import json
import math
import os
from typing import Dict, List, Optional, Sequence, Set, Tuple, Union

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from components import push_reasons
from inspection.store import StoreError

# ML Metadata context types TFX writes (tfx.orchestration.portable.mlmd.context_lib).
PIPELINE_CONTEXT = 'pipeline'
PIPELINE_RUN_CONTEXT = 'pipeline_run'
NODE_CONTEXT = 'node'

# Standard TFX artifact type names read here.
EXAMPLE_ANOMALIES_TYPE = 'ExampleAnomalies'
EXAMPLE_STATISTICS_TYPE = 'ExampleStatistics'
MODEL_EVALUATION_TYPE = 'ModelEvaluation'
# The file TFMA writes beside its metrics in every evaluation output.
TFMA_EVAL_CONFIG_FILE = 'eval_config.json'
MODEL_BLESSING_TYPE = 'ModelBlessing'
MODEL_RUN_TYPE = 'ModelRun'
PUSHED_MODEL_TYPE = 'PushedModel'

# Custom properties TFX sets (tfx.components.pusher.executor, tfx.components.evaluator.executor).
BLESSED_PROPERTY = 'blessed'
PUSHED_PROPERTY = 'pushed'
PUSHED_DESTINATION_PROPERTY = 'pushed_destination'
PUSHED_VERSION_PROPERTY = 'pushed_version'
SPLIT_NAMES_PROPERTY = 'split_names'
# The Evaluator's input holding the last blessed model (tfx.types.standard_component_specs.BASELINE_MODEL_KEY).
BASELINE_MODEL_INPUT = 'baseline_model'
# The Evaluator's execution property holding its EvalConfig as JSON (standard_component_specs.EVAL_CONFIG_KEY).
EVAL_CONFIG_PROPERTY = 'eval_config'

# Name of the slice holding every example, in tables.
OVERALL_SLICE = 'Overall'

_OUTPUT_EVENTS = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)
_INPUT_EVENTS = (metadata_store_pb2.Event.INPUT, metadata_store_pb2.Event.DECLARED_INPUT)
_STATE_NAMES = {v: k for k, v in metadata_store_pb2.Execution.State.items()}

PropertyValue = Union[str, int, float]


@dataclasses.dataclass(frozen=True)
class ComponentRun:
  """One component execution of a run.

  Attributes:
    component_id: the node id in the pipeline (pipeline/configs.py), or the execution type when unknown.
    state: COMPLETE, CACHED, FAILED, RUNNING, ...
    wall_seconds: from the execution's creation to its last update.
    execution_id: the ML Metadata execution id.
    started_ms: creation time, ms since the epoch.
  """
  component_id: str
  state: str
  wall_seconds: float
  execution_id: int = 0
  started_ms: int = 0


@dataclasses.dataclass(frozen=True)
class PipelineRun:
  """One run of the pipeline and its component executions, in start order."""
  run_id: str
  started_ms: int
  components: List[ComponentRun]

  @property
  def wall_seconds(self) -> float:
    """From the first component's start to the last one's end."""
    if not self.components:
      return 0.0
    end = max(c.started_ms + c.wall_seconds * 1000.0 for c in self.components)
    return (end - min(c.started_ms for c in self.components)) / 1000.0


@dataclasses.dataclass(frozen=True)
class RunSummary:
  """The newest run with its output artifacts: {component id: {output key: [artifact protos]}}; `started_ms` is
  when its run context was recorded (unix milliseconds; 0 when unknown); `execution_properties` holds each
  component's execution properties, as plain values ({component id: {name: value}}, e.g. a gate's settings such as
  the segment gate's `min_examples`; empty when not read)."""
  run_id: str
  components: List[ComponentRun]
  output_artifacts: Dict[str, Dict[str, List[metadata_store_pb2.Artifact]]]
  started_ms: int = 0
  execution_properties: Dict[str, Dict[str, PropertyValue]] = dataclasses.field(default_factory=dict)

  @property
  def wall_seconds(self) -> float:
    """From the first component's start to the last one's end (the TFX run; `PipelineRun.wall_seconds`)."""
    return PipelineRun(self.run_id, self.started_ms, self.components).wall_seconds


@dataclasses.dataclass(frozen=True)
class ArtifactRecord:
  """An artifact with the component output that produced it.

  Attributes:
    artifact_id: ML Metadata id.
    type: artifact type name (Examples, Schema, Model, ...).
    uri: where its files are.
    producer: id of the component that first wrote it ('' when unknown).
    output_key: the producer's output name (e.g. 'model', 'blessing').
    created_ms: creation time, ms since the epoch.
    properties: its properties and custom properties, as plain values.
  """
  artifact_id: int
  type: str
  uri: str
  producer: str
  output_key: str
  created_ms: int
  properties: Dict[str, PropertyValue]


@dataclasses.dataclass(frozen=True)
class LineageStep:
  """One execution on the way back from an artifact: what it read and what it wrote."""
  execution_id: int
  component_id: str
  state: str
  run_id: str
  inputs: List[ArtifactRecord]
  outputs: List[ArtifactRecord]


@dataclasses.dataclass(frozen=True)
class Lineage:
  """The executions that produced `target`, nearest first (breadth-first over ML Metadata events)."""
  target: ArtifactRecord
  steps: List[LineageStep]


@dataclasses.dataclass(frozen=True)
class SliceMetrics:
  """The metric values of one evaluation slice, e.g. slice 'user_gender=F'."""
  slice: str
  metrics: Dict[str, float]


@dataclasses.dataclass(frozen=True)
class ThresholdRule:
  """A blessing threshold of the evaluation config.

  Attributes:
    metric: metric name as TFMA reports it (e.g. 'root_mean_squared_error').
    slices: the slices it applies to ('all slices', or e.g. 'Overall').
    upper_bound: the value must stay at or below this; None when unset.
    lower_bound: the value must stay at or above this; None when unset.
    change_direction: LOWER_IS_BETTER / HIGHER_IS_BETTER for a change threshold against the baseline, else ''.
    change_absolute: largest allowed change in the wrong direction, in metric units; None when unset.
    change_relative: the same relative to the baseline's value; None when unset.
  """
  metric: str
  slices: str
  upper_bound: Optional[float] = None
  lower_bound: Optional[float] = None
  change_direction: str = ''
  change_absolute: Optional[float] = None
  change_relative: Optional[float] = None


@dataclasses.dataclass(frozen=True)
class ThresholdFailure:
  """A metric of a slice that broke its threshold."""
  slice: str
  metric: str
  value: Optional[float]
  message: str


@dataclasses.dataclass(frozen=True)
class ModelValidation:
  """What an Evaluator measured and decided.

  Attributes:
    component_id: the Evaluator's node id.
    run_id: the run it belongs to.
    evaluation_uri: its ModelEvaluation artifact.
    blessed: the ModelBlessing decision; None when no blessing was written.
    validation_ok: TFMA's verdict over all thresholds; None when not recorded.
    rubber_stamp: True when change thresholds are configured but there was no baseline model to compare with,
      so they were skipped (the first blessing).
    slices: metrics per slice, overall first.
    thresholds: the configured thresholds.
    failures: the thresholds broken, per slice.
  """
  component_id: str
  run_id: str
  evaluation_uri: str
  blessed: Optional[bool]
  validation_ok: Optional[bool]
  rubber_stamp: bool
  slices: List[SliceMetrics]
  thresholds: List[ThresholdRule]
  failures: List[ThresholdFailure]


@dataclasses.dataclass(frozen=True)
class MetricArtifact:
  """An artifact whose custom properties hold metrics (e.g. the retrieval gate's recall@k).

  Attributes:
    component_id: the producer's node id.
    output_key: the producer's output name.
    type: artifact type name.
    uri: where its files are.
    metrics: its float-valued custom properties.
    blessed: its integer 'blessed' property as a bool, else that of the one sibling output that has one (a
      gate's blessing); None when there is none.
  """
  component_id: str
  output_key: str
  type: str
  uri: str
  metrics: Dict[str, float]
  blessed: Optional[bool]


@dataclasses.dataclass(frozen=True)
class AnomalyFinding:
  """One anomaly ExampleValidator found: feature ('' for the whole dataset), severity and descriptions."""
  feature: str
  severity: str
  short_description: str
  description: str


@dataclasses.dataclass(frozen=True)
class SplitAnomalies:
  """ExampleValidator's findings for one split; no findings means the split matches the schema."""
  component_id: str
  run_id: str
  uri: str
  split: str
  findings: List[AnomalyFinding]


# ----------------------------------------------------------------------------------------------- runs


class RunNotFoundError(LookupError):
  """The store holds runs of the pipeline, but not the one asked for."""


class ArtifactFilesMissingError(LookupError):
  """An artifact the store lists has lost its files (the output dir moved or pruned, the store copied alone); the
  message is the file system's, naming the missing path."""


def pipeline_runs(store: metadata_store.MetadataStore, pipeline_name: str) -> List[PipelineRun]:
  """Every run of `pipeline_name` in `store`, oldest first (empty when it never ran there)."""
  pipeline_executions = _pipeline_execution_ids(store, pipeline_name)
  if not pipeline_executions:
    return []
  node_ids = _node_ids_by_execution(store, pipeline_name)
  runs = []
  for context in store.get_contexts_by_type(PIPELINE_RUN_CONTEXT):
    executions = [e for e in store.get_executions_by_context(context.id) if e.id in pipeline_executions]
    if executions:
      executions.sort(key=lambda e: (e.create_time_since_epoch, e.id))
      runs.append(PipelineRun(run_id=context.name, started_ms=context.create_time_since_epoch,
                              components=[_component_run(e, node_ids) for e in executions]))
  return sorted(runs, key=lambda r: r.started_ms)


def require_run(store: metadata_store.MetadataStore, pipeline_name: str, where: str,
                run_id: Optional[str] = None) -> PipelineRun:
  """The run `run_id` of `pipeline_name` (default: the newest).

  Args:
    store: the opened store.
    pipeline_name: the pipeline's name in ML Metadata.
    where: how the store was named (its path), for error messages.
    run_id: a run id as `pipeline_runs` lists it; None for the newest run.

  Raises:
    StoreError: if the store holds no run of `pipeline_name` (it is not a store of this pipeline).
    RunNotFoundError: if it holds runs of `pipeline_name` but none with id `run_id`.
  """
  runs = pipeline_runs(store, pipeline_name)
  if not runs:
    recorded = sorted(c.name for c in store.get_contexts_by_type(PIPELINE_CONTEXT))
    raise StoreError(
        f'The ML Metadata store {where} holds no run of pipeline {pipeline_name!r} (pipelines recorded: '
        f'{recorded or "none"}). Pass --pipeline-name with one of those, or the store of a run of this '
        'pipeline.')
  if run_id is None:
    return runs[-1]
  for run in runs:
    if run.run_id == run_id:
      return run
  raise RunNotFoundError(f'No run {run_id!r} of pipeline {pipeline_name!r} in {where}; pass --run with one of '
                         f'its runs: {[r.run_id for r in runs]}.')


def latest_run(store: metadata_store.MetadataStore, pipeline_name: str) -> Optional[RunSummary]:
  """The newest run of `pipeline_name` in `store` with its output artifact protos, or None if it never ran."""
  runs = pipeline_runs(store, pipeline_name)
  if not runs:
    return None
  run = runs[-1]
  outputs: Dict[str, Dict[str, List[metadata_store_pb2.Artifact]]] = {}
  for component in run.components:
    outputs[component.component_id] = _artifacts_by_key(store, component.execution_id, _OUTPUT_EVENTS)
  executions = {e.id: e for e in store.get_executions_by_id([c.execution_id for c in run.components])}
  settings = {c.component_id: _plain_properties(executions[c.execution_id].properties,
                                                executions[c.execution_id].custom_properties)
              for c in run.components if c.execution_id in executions}
  return RunSummary(run_id=run.run_id, components=run.components, output_artifacts=outputs, started_ms=run.started_ms,
                    execution_properties=settings)


# ------------------------------------------------------------------------------------------ artifacts


def run_artifacts(store: metadata_store.MetadataStore, run: PipelineRun) -> List[ArtifactRecord]:
  """The output artifacts of every component of `run` (cached components point at earlier artifacts)."""
  records = []
  for component in run.components:
    for key, artifacts in _artifacts_by_key(store, component.execution_id, _OUTPUT_EVENTS).items():
      records.extend(_record(store, a, key) for a in artifacts)
  return records


def latest_artifacts(store: metadata_store.MetadataStore, pipeline_name: str) -> List[ArtifactRecord]:
  """The newest artifact of each type and producing output of `pipeline_name`, sorted by type then producer.

  Transform, for instance, writes two ExampleStatistics (pre- and post-transform): both are listed.
  """
  newest: Dict[Tuple[str, str, str], ArtifactRecord] = {}
  for run in pipeline_runs(store, pipeline_name):
    for record in run_artifacts(store, run):
      key = (record.type, record.producer, record.output_key)
      if key not in newest or record.artifact_id > newest[key].artifact_id:
        newest[key] = record
  return sorted(newest.values(), key=lambda r: (r.type, r.producer, r.output_key))


# -------------------------------------------------------------------------------------------- lineage


def resolve_artifact(store: metadata_store.MetadataStore, target: str) -> metadata_store_pb2.Artifact:
  """Finds the artifact named by `target`.

  Args:
    store: the opened store.
    target: an artifact id; a pushed model directory (`<serving_dir>/<model>/<version>`): the pushed model of the
      push that copied it there (the earliest with that destination the Pusher did not find already served, or of
      those the earliest: a later, unchanged rerun records the same destination, copying nothing); or an artifact
      URI or a path inside one (e.g. `<model uri>/Format-Serving`).

  Raises:
    LookupError: if no artifact matches, naming what was tried.
  """
  if target.isascii() and target.isdigit():  # `str.isdigit` also takes '²', which `int` refuses.
    found = store.get_artifacts_by_id([int(target)])
    if not found:
      raise LookupError(f'No artifact with id {target} in the store; list them with the `artifacts` command.')
    return found[0]
  path = _normalised(target)
  pushed = [a for a in store.get_artifacts_by_type(PUSHED_MODEL_TYPE)
            if PUSHED_DESTINATION_PROPERTY in a.custom_properties
            and _normalised(a.custom_properties[PUSHED_DESTINATION_PROPERTY].string_value) == path]
  if pushed:
    # The version's files are those its first push copied; the pushes that found them already served (unchanged
    # reruns, `components/push_reasons.ALREADY_SERVED_KEY`) copied nothing. An artifact written before the Pusher
    # recorded that has no such property and counts as a copy: the earliest of those is the one that made the
    # version (version numbers never repeat).
    return min(pushed, key=lambda a: (_found_already_served(a), a.id))
  candidates = [a for a in store.get_artifacts() if a.uri and (
      path == _normalised(a.uri) or path.startswith(_normalised(a.uri) + os.sep))]
  if not candidates:
    raise LookupError(
        f'No artifact in the store has URI or pushed destination {path}: pass a pushed model version directory '
        '(<output_dir>/serving/<model>/<version>), an artifact URI, or an artifact id from the `artifacts` '
        'command.')
  return max(candidates, key=lambda a: len(a.uri))


def lineage(store: metadata_store.MetadataStore, artifact: metadata_store_pb2.Artifact,
            pipeline_name: str) -> Lineage:
  """Walks ML Metadata events backwards from `artifact` to the data it came from.

  Each visited execution is the first writer of an artifact already on the path; all its inputs are followed
  and all its outputs reported (so the Evaluator's evaluation shows beside the blessing the Pusher read).
  """
  node_ids = _node_ids_by_execution(store, pipeline_name)
  run_ids = _run_ids_by_execution(store)
  steps: List[LineageStep] = []
  seen_executions: Set[int] = set()
  frontier = [artifact.id]
  seen_artifacts = {artifact.id}
  while frontier:
    producers = _first_producers(store, frontier)
    frontier = []
    for execution in store.get_executions_by_id(sorted(set(producers.values()) - seen_executions)):
      seen_executions.add(execution.id)
      inputs = _artifacts_by_key(store, execution.id, _INPUT_EVENTS)
      outputs = _artifacts_by_key(store, execution.id, _OUTPUT_EVENTS)
      steps.append(LineageStep(
          execution_id=execution.id,
          component_id=node_ids.get(execution.id, execution.type),
          state=_STATE_NAMES.get(execution.last_known_state, '?'),
          run_id=run_ids.get(execution.id, ''),
          inputs=[_record(store, a, k) for k, group in sorted(inputs.items()) for a in group],
          outputs=[_record(store, a, k) for k, group in sorted(outputs.items()) for a in group]))
      for group in inputs.values():
        for a in group:
          if a.id not in seen_artifacts:
            seen_artifacts.add(a.id)
            frontier.append(a.id)
  return Lineage(target=_record(store, artifact, ''), steps=steps)


# ----------------------------------------------------------------------------------------- validation


def model_validations(store: metadata_store.MetadataStore, run: PipelineRun) -> List[ModelValidation]:
  """Each Evaluator of `run`: metrics per slice, thresholds, failures and the blessing."""
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top  (slow; only here)
  validations = []
  for component in run.components:
    outputs = _artifacts_by_key(store, component.execution_id, _OUTPUT_EVENTS)
    evaluations = [a for group in outputs.values() for a in group if _type_name(store, a) == MODEL_EVALUATION_TYPE
                   and _is_tfma_output(a.uri)]
    blessings = [a for group in outputs.values() for a in group if _type_name(store, a) == MODEL_BLESSING_TYPE]
    for evaluation in evaluations:
      result = tfma.load_eval_result(evaluation.uri)
      slices = [SliceMetrics(slice_name(key), _metric_values(metrics)) for key, metrics in result.slicing_metrics]
      slices.sort(key=lambda s: (s.slice != OVERALL_SLICE, s.slice))
      validation = _load_validation(tfma, evaluation.uri)
      thresholds = _threshold_rules(_configured_eval_config(store, component.execution_id) or result.config)
      # Without a baseline TFX drops the change thresholds before TFMA runs (rubber stamp), so TFMA's own
      # `rubber_stamp` flag stays False: the missing baseline input is what tells.
      has_baseline = bool(_artifacts_by_key(store, component.execution_id, _INPUT_EVENTS).get(BASELINE_MODEL_INPUT))
      rubber_stamp = bool(validation is not None and validation.rubber_stamp) or (
          not has_baseline and any(t.change_direction for t in thresholds))
      blessed = None
      if blessings and BLESSED_PROPERTY in blessings[0].custom_properties:
        blessed = blessings[0].custom_properties[BLESSED_PROPERTY].int_value == 1
      validations.append(ModelValidation(
          component_id=component.component_id,
          run_id=run.run_id,
          evaluation_uri=evaluation.uri,
          blessed=blessed,
          validation_ok=validation.validation_ok if validation is not None else None,
          rubber_stamp=rubber_stamp,
          slices=slices,
          thresholds=thresholds,
          failures=_threshold_failures(validation)))
  return validations


def _is_tfma_output(evaluation_uri: str) -> bool:
  """True for an Evaluator's (TFMA's) output; other ModelEvaluation artifacts (e.g. the retrieval gate's
  metrics.json) are read by `metric_artifacts` instead."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top  (slow; only here; reads gs:// URIs too)
  return tf.io.gfile.exists(os.path.join(evaluation_uri, TFMA_EVAL_CONFIG_FILE))


def metric_artifacts(store: metadata_store.MetadataStore, run: PipelineRun) -> List[MetricArtifact]:
  """Output artifacts of `run` that carry float custom properties (metrics), e.g. the retrieval gate's."""
  found = []
  for component in run.components:
    outputs = _artifacts_by_key(store, component.execution_id, _OUTPUT_EVENTS)
    # A gate may write its metrics and its verdict to two outputs (evaluation + blessing), as the Evaluator does.
    verdicts = [a.custom_properties[BLESSED_PROPERTY].int_value == 1 for group in outputs.values() for a in group
                if BLESSED_PROPERTY in a.custom_properties]
    for key, artifacts in outputs.items():
      for artifact in artifacts:
        metrics = {name: value.double_value for name, value in sorted(artifact.custom_properties.items())
                   if value.WhichOneof('value') == 'double_value'}
        if not metrics:
          continue
        blessed = verdicts[0] if len(verdicts) == 1 else None
        if BLESSED_PROPERTY in artifact.custom_properties:
          blessed = artifact.custom_properties[BLESSED_PROPERTY].int_value == 1
        found.append(MetricArtifact(component.component_id, key, _type_name(store, artifact), artifact.uri,
                                    metrics, blessed))
  return found


@dataclasses.dataclass(frozen=True)
class SegmentGateReport:
  """What a segment gate decided (components/segment_gate.py): its `segment_gate.json` and its settings.

  Attributes:
    component_id: the gate's node id.
    blessed: its verdict: the Evaluator blessed the model and every gated segment passed.
    overall_rmse: the candidate's overall eval RMSE (stars); NaN when the report holds null (the RMSE was NaN or
      infinite: the gate refused the model).
    max_margin: the allowed margin over the overall RMSE (stars); None if the execution does not record it.
    min_examples: segments with fewer eval examples are reported, not gated; None if not recorded.
    segments: one dict per segment: column, value, rmse, rmse_standard_error (None in reports written before the
      Evaluator measured it), example_count, margin, gated, baseline_rmse, violations; an rmse or margin the report
      holds as null (not a finite number: a segment the rule refuses) is NaN, which the charts draw as 'no value'
      and the segment order puts first (`segment_rules.worst_first`).
    warnings: the checks the rule could not make (e.g. no segment large enough to gate); empty in reports written
      before the gate recorded them.
    margin_standard_errors: z, the standard errors of a segment's RMSE its margin was discounted by before it was
      compared with `max_margin` (`--segment-margin-standard-errors`); 0 for the plain rule and for reports
      written before the gate had the setting.
    reasons: why the gate refused the model, the Evaluator's refusal among them (empty when blessed; in reports
      written before the gate recorded its decision, the segment rule's violations only).
  """
  component_id: str
  blessed: bool
  overall_rmse: float
  max_margin: Optional[float]
  min_examples: Optional[int]
  segments: List[Dict]
  warnings: Tuple[str, ...] = ()
  margin_standard_errors: float = 0.0
  reasons: Tuple[str, ...] = ()


def segment_gate_report(component_id: str, verdict: Dict, max_margin: Optional[float],
                        min_examples: Optional[int]) -> SegmentGateReport:
  """A SegmentGateReport from the gate's `segment_gate.json` (`verdict`) and its execution's settings.

  The verdict's `blessed` is the gate's decision; its `passed` is the segment rule's alone, which says yes while
  the Evaluator refused the overall RMSE (reports without `blessed` predate it and fall back to `passed`). The
  margin's discount z comes from the verdict's `thresholds` (0 in reports written before the gate had it). The
  gate writes a NaN or infinite overall RMSE, segment RMSE or margin as null (strict JSON): each is read as NaN.
  """
  return SegmentGateReport(
      component_id=component_id, blessed=bool(verdict.get('blessed', verdict['passed'])),
      overall_rmse=_float_or_nan(verdict['overall_rmse']), max_margin=max_margin, min_examples=min_examples,
      segments=[{**row, 'rmse': _float_or_nan(row['rmse']), 'margin': _float_or_nan(row['margin'])}
                for row in verdict['segments']],
      warnings=tuple(verdict.get('warnings', ())),
      margin_standard_errors=float(verdict.get('thresholds', {}).get('margin_standard_errors', 0.0)),
      reasons=tuple(verdict.get('reasons', ())))


def _float_or_nan(value: Optional[float]) -> float:
  """A number of a segment gate report as a float: NaN for null (None: a NaN or infinite figure)."""
  return math.nan if value is None else float(value)


def segment_gate_reports(store: metadata_store.MetadataStore, run: PipelineRun) -> List[SegmentGateReport]:
  """The segment gate verdicts of `run` (ModelBlessing outputs holding the gate's `segment_gate.REPORT_FILE`)."""
  # pylint: disable=g-import-not-at-top  (TensorFlow and TFMA are slow to import; only here)
  import tensorflow as tf
  from components import segment_gate
  # pylint: enable=g-import-not-at-top
  reports = []
  for component in run.components:
    for artifacts in _artifacts_by_key(store, component.execution_id, _OUTPUT_EVENTS).values():
      for artifact in artifacts:
        if _type_name(store, artifact) != MODEL_BLESSING_TYPE or not tf.io.gfile.exists(
            os.path.join(artifact.uri, segment_gate.REPORT_FILE)):
          continue
        verdict = segment_gate.read_report(artifact.uri)
        [execution] = store.get_executions_by_id([component.execution_id])
        settings = execution.custom_properties
        reports.append(segment_gate_report(
            component.component_id, verdict,
            max_margin=settings['max_margin'].double_value if 'max_margin' in settings else None,
            min_examples=settings['min_examples'].int_value if 'min_examples' in settings else None))
  return reports


# ------------------------------------------------------------------------------------------ anomalies


def split_anomalies(store: metadata_store.MetadataStore, run: PipelineRun) -> List[SplitAnomalies]:
  """ExampleValidator's findings of `run`, per split (its ExampleAnomalies artifacts that have splits).

  Raises:
    ArtifactFilesMissingError: if an anomalies file the store lists is gone.
  """
  # pylint: disable=g-import-not-at-top  (TFX and TensorFlow are slow to import; only here)
  import tensorflow as tf
  from components import anomalies_gate
  # pylint: enable=g-import-not-at-top
  reports = []
  for component in run.components:
    for artifacts in _artifacts_by_key(store, component.execution_id, _OUTPUT_EVENTS).values():
      for artifact in artifacts:
        if _type_name(store, artifact) != EXAMPLE_ANOMALIES_TYPE or not split_names(artifact):
          continue
        try:
          by_split = anomalies_gate.read_anomalies(artifact.uri, split_names(artifact))
        except tf.errors.NotFoundError as e:
          raise ArtifactFilesMissingError(e.message) from e
        for split in split_names(artifact):
          reports.append(SplitAnomalies(component.component_id, run.run_id, artifact.uri, split,
                                        _findings(by_split[split])))
  return reports


def split_names(artifact: metadata_store_pb2.Artifact) -> List[str]:
  """The splits of an Examples/statistics/anomalies artifact (its JSON `split_names` property); [] if none."""
  encoded = artifact.properties[SPLIT_NAMES_PROPERTY].string_value if (
      SPLIT_NAMES_PROPERTY in artifact.properties) else ''
  return list(json.loads(encoded)) if encoded else []


def slice_name(slice_key: Sequence[Tuple[str, object]]) -> str:
  """A TFMA slice key as text: () -> 'Overall'; (('user_gender', 'F'),) -> 'user_gender=F'."""
  if not slice_key:
    return OVERALL_SLICE
  return ' & '.join(f'{column}={_text(value)}' for column, value in slice_key)


# ------------------------------------------------------------------------------------------- helpers


def _pipeline_execution_ids(store: metadata_store.MetadataStore, pipeline_name: str) -> Set[int]:
  context = store.get_context_by_type_and_name(PIPELINE_CONTEXT, pipeline_name)
  if context is None:
    return set()
  return {e.id for e in store.get_executions_by_context(context.id)}


def _node_ids_by_execution(store: metadata_store.MetadataStore, pipeline_name: str) -> Dict[int, str]:
  """{execution id: node id}; TFX names node contexts '<pipeline name>.<node id>'."""
  prefix = pipeline_name + '.'
  names = {}
  for context in store.get_contexts_by_type(NODE_CONTEXT):
    if context.name.startswith(prefix):
      for execution in store.get_executions_by_context(context.id):
        names[execution.id] = context.name[len(prefix):]
  return names


def _run_ids_by_execution(store: metadata_store.MetadataStore) -> Dict[int, str]:
  names = {}
  for context in store.get_contexts_by_type(PIPELINE_RUN_CONTEXT):
    for execution in store.get_executions_by_context(context.id):
      names[execution.id] = context.name
  return names


def _component_run(execution: metadata_store_pb2.Execution, node_ids: Dict[int, str]) -> ComponentRun:
  seconds = max(0, execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000.0
  return ComponentRun(component_id=node_ids.get(execution.id, execution.type),
                      state=_STATE_NAMES.get(execution.last_known_state, '?'), wall_seconds=seconds,
                      execution_id=execution.id, started_ms=execution.create_time_since_epoch)


def _artifacts_by_key(store: metadata_store.MetadataStore, execution_id: int,
                      event_types: Tuple[int, ...]) -> Dict[str, List[metadata_store_pb2.Artifact]]:
  """{input or output key: artifacts} of one execution, for the given event types."""
  events = [e for e in store.get_events_by_execution_ids([execution_id]) if e.type in event_types]
  artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
  by_key: Dict[str, List[metadata_store_pb2.Artifact]] = collections.OrderedDict()
  for event in events:
    key = event.path.steps[0].key if event.path.steps else ''
    by_key.setdefault(key, []).append(artifacts[event.artifact_id])
  return by_key


def _first_producers(store: metadata_store.MetadataStore, artifact_ids: List[int]) -> Dict[int, int]:
  """{artifact id: id of the first execution that output it}; cached executions re-output old artifacts."""
  producers: Dict[int, int] = {}
  for event in store.get_events_by_artifact_ids(artifact_ids):
    if event.type in _OUTPUT_EVENTS:
      if event.artifact_id not in producers or event.execution_id < producers[event.artifact_id]:
        producers[event.artifact_id] = event.execution_id
  return producers


def _found_already_served(artifact: metadata_store_pb2.Artifact) -> bool:
  """Whether a PushedModel records that its Pusher found the model already served and copied nothing."""
  properties = artifact.custom_properties
  return push_reasons.found_already_served(properties[push_reasons.ALREADY_SERVED_KEY].int_value
                                           if push_reasons.ALREADY_SERVED_KEY in properties else None)


def _plain_properties(*sources) -> Dict[str, PropertyValue]:
  """The scalar values of ML Metadata property maps (an artifact's or execution's properties, custom properties),
  by name; a later map's value wins."""
  properties: Dict[str, PropertyValue] = {}
  for source in sources:
    for name, value in sorted(source.items()):
      kind = value.WhichOneof('value')
      if kind in ('string_value', 'int_value', 'double_value', 'bool_value'):
        properties[name] = getattr(value, kind)
  return properties


def _record(store: metadata_store.MetadataStore, artifact: metadata_store_pb2.Artifact,
            output_key: str) -> ArtifactRecord:
  producer, key = _producer_of(store, artifact.id)
  properties = _plain_properties(artifact.properties, artifact.custom_properties)
  return ArtifactRecord(artifact_id=artifact.id, type=_type_name(store, artifact), uri=artifact.uri,
                        producer=producer, output_key=key or output_key,
                        created_ms=artifact.create_time_since_epoch, properties=properties)


def _producer_of(store: metadata_store.MetadataStore, artifact_id: int) -> Tuple[str, str]:
  """(node id, output key) of the first execution that wrote the artifact; ('', '') when none did."""
  events = sorted((e for e in store.get_events_by_artifact_ids([artifact_id]) if e.type in _OUTPUT_EVENTS),
                  key=lambda e: e.execution_id)
  if not events:
    return '', ''
  key = events[0].path.steps[0].key if events[0].path.steps else ''
  for context in store.get_contexts_by_execution(events[0].execution_id):
    if context.type == NODE_CONTEXT:
      return context.name.split('.', 1)[-1], key
  return '', key


def _type_name(store: metadata_store.MetadataStore, artifact: metadata_store_pb2.Artifact) -> str:
  if artifact.type:
    return artifact.type
  return store.get_artifact_types_by_id([artifact.type_id])[0].name


def _normalised(path: str) -> str:
  return os.path.realpath(os.path.expanduser(path)).rstrip(os.sep)


def _text(value: object) -> str:
  return value.decode('utf-8', 'replace') if isinstance(value, bytes) else str(value)


# How protobuf's JSON form spells the non-finite doubles (json_format.MessageToDict).
_JSON_NON_FINITE = ('NaN', 'Infinity', '-Infinity')


def _metric_values(metrics: Dict[str, Dict[str, Dict[str, Dict[str, object]]]]) -> Dict[str, float]:
  """Flattens TFMA's {output: {sub key: {metric: {'doubleValue': x}}}} to {metric: x} (scalar metrics only).

  TFMA converts each value with protobuf's `MessageToDict`, which spells a NaN or infinite double as the text
  'NaN', 'Infinity' or '-Infinity' (e.g. the RMSE of a slice without examples); those are read as floats.
  """
  values = {}
  for output_name, by_sub_key in sorted(metrics.items()):
    for sub_key, by_metric in sorted(by_sub_key.items()):
      for metric, value in sorted(by_metric.items()):
        number = value.get('doubleValue') if isinstance(value, dict) else None
        if number is None and isinstance(value, dict) and isinstance(value.get('boundedValue'), dict):
          number = value['boundedValue'].get('value')
        if number in _JSON_NON_FINITE:
          number = float(number)
        if isinstance(number, (int, float)):
          name = '/'.join(part for part in (output_name, sub_key, metric) if part)
          values[name] = float(number)
  return values


def _load_validation(tfma_module, evaluation_uri: str):  # -> Optional[ValidationResult]
  """TFMA's ValidationResult of an evaluation, or None when the Evaluator wrote none (no thresholds)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if not tf.io.gfile.glob(os.path.join(evaluation_uri, 'validations*')):
    return None
  return tfma_module.load_validation_result(evaluation_uri)


def _configured_eval_config(store: metadata_store.MetadataStore, execution_id: int):  # -> Optional[EvalConfig]
  """The EvalConfig as the pipeline configured it (the Evaluator's `eval_config` execution property).

  The copy TFX writes beside the evaluation has the change thresholds removed when there was no baseline.
  """
  from google.protobuf import json_format  # pylint: disable=g-import-not-at-top
  from tensorflow_model_analysis.proto import config_pb2  # pylint: disable=g-import-not-at-top
  [execution] = store.get_executions_by_id([execution_id])
  encoded = execution.custom_properties[EVAL_CONFIG_PROPERTY].string_value if (
      EVAL_CONFIG_PROPERTY in execution.custom_properties) else ''
  return json_format.Parse(encoded, config_pb2.EvalConfig()) if encoded else None


def _threshold_rules(eval_config) -> List[ThresholdRule]:  # eval_config: tfma.EvalConfig
  rules = []
  for metrics_spec in eval_config.metrics_specs:
    for metric in metrics_spec.metrics:
      name = _metric_name(metric)
      if metric.HasField('threshold'):
        rules.append(_rule(name, 'all slices', metric.threshold))
      for per_slice in metric.per_slice_thresholds:
        slices = ', '.join(_slicing_spec_text(s) for s in per_slice.slicing_specs) or 'all slices'
        rules.append(_rule(name, slices, per_slice.threshold))
  return rules


def _rule(metric: str, slices: str, threshold) -> ThresholdRule:  # threshold: tfma.MetricThreshold
  value, change = threshold.value_threshold, threshold.change_threshold
  has_change = threshold.HasField('change_threshold')
  return ThresholdRule(
      metric=metric, slices=slices,
      upper_bound=value.upper_bound.value if value.HasField('upper_bound') else None,
      lower_bound=value.lower_bound.value if value.HasField('lower_bound') else None,
      change_direction=_direction_name(change.direction) if has_change else '',
      change_absolute=change.absolute.value if has_change and change.HasField('absolute') else None,
      change_relative=change.relative.value if has_change and change.HasField('relative') else None)


def _direction_name(direction: int) -> str:
  from tensorflow_model_analysis.proto import config_pb2  # pylint: disable=g-import-not-at-top
  return config_pb2.MetricDirection.Name(direction)


def _slicing_spec_text(spec) -> str:  # spec: tfma.SlicingSpec
  parts = list(spec.feature_keys) + [f'{k}={v}' for k, v in sorted(spec.feature_values.items())]
  return ('per ' + ' & '.join(parts)) if parts else OVERALL_SLICE


def _threshold_failures(validation) -> List[ThresholdFailure]:
  if validation is None:
    return []
  failures = []
  for per_slice in validation.metric_validations_per_slice:
    key = tuple((single.column, _single_slice_value(single)) for single in per_slice.slice_key.single_slice_keys)
    for failure in per_slice.failures:
      value = (failure.metric_value.double_value.value
               if failure.metric_value.HasField('double_value') else None)
      threshold = failure.metric_threshold
      bounds = []
      if threshold.value_threshold.HasField('upper_bound'):
        bounds.append(f'<= {threshold.value_threshold.upper_bound.value:g}')
      if threshold.value_threshold.HasField('lower_bound'):
        bounds.append(f'>= {threshold.value_threshold.lower_bound.value:g}')
      if threshold.HasField('change_threshold'):
        bounds.append('change vs baseline ' + ', '.join(
            f'{f.name} {getattr(threshold.change_threshold, f.name).value:g}'
            for f in (threshold.change_threshold.DESCRIPTOR.fields_by_name['absolute'],
                      threshold.change_threshold.DESCRIPTOR.fields_by_name['relative'])
            if threshold.change_threshold.HasField(f.name)))
      # A change threshold's value is the candidate's minus the baseline's, under the diff key: named as
      # `tfma.load_eval_result` names that value in the slices' metrics.
      metric = failure.metric_key.name + ('_diff' if failure.metric_key.is_diff else '')
      failures.append(ThresholdFailure(
          slice=slice_name(key), metric=metric, value=value,
          message=failure.message or f'must be {" and ".join(bounds)}'))
  return failures


def _single_slice_value(single) -> object:
  kind = single.WhichOneof('kind')
  return getattr(single, kind) if kind else ''


def _findings(anomalies) -> List[AnomalyFinding]:  # anomalies: tensorflow_metadata Anomalies
  """The findings of one split; a split without examples is one too (TFDV sets only `data_missing` then)."""
  from tensorflow_metadata.proto.v0 import anomalies_pb2  # pylint: disable=g-import-not-at-top
  severity = anomalies_pb2.AnomalyInfo.Severity.Name
  found = []
  if anomalies.data_missing:  # components/anomalies_gate.py refuses it, as it does every other finding.
    found.append(AnomalyFinding('', severity(anomalies_pb2.AnomalyInfo.ERROR), 'No examples (TFDV data_missing)',
                                'The split is empty; check the input files and the split configuration.'))
  found += [AnomalyFinding(feature, severity(info.severity), info.short_description or
                           '; '.join(r.short_description for r in info.reason),
                           info.description or '; '.join(r.description for r in info.reason))
            for feature, info in sorted(anomalies.anomaly_info.items())]
  if anomalies.HasField('dataset_anomaly_info'):
    info = anomalies.dataset_anomaly_info
    found.append(AnomalyFinding('', severity(info.severity), info.short_description, info.description))
  return found


def _metric_name(metric) -> str:  # metric: tfma.MetricConfig
  """The name a configured metric's values carry: its config's `name`, else TFMA's default for the class."""
  config = metric.config.strip()
  # TFMA accepts the config's JSON with or without its outer braces.
  configured = json.loads(config if config.startswith('{') else '{' + config + '}').get('name') if config else None
  return configured or _snake_case(metric.class_name)


def _snake_case(class_name: str) -> str:
  """'RootMeanSquaredError' -> 'root_mean_squared_error' (how TFMA names a metric class's values)."""
  out = []
  for i, ch in enumerate(class_name):
    if ch.isupper() and i and not class_name[i - 1].isupper():
      out.append('_')
    out.append(ch.lower())
  return ''.join(out)
