"""Summarises the latest run of a pipeline from its ML Metadata store: component times, eval RMSE, push."""

import dataclasses
from typing import Dict, List, Optional

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline import configs

# ML Metadata context types TFX writes (tfx.orchestration.portable.mlmd.context_lib).
PIPELINE_RUN_CONTEXT = 'pipeline_run'
NODE_CONTEXT = 'node'

_STATE_NAMES = {v: k for k, v in metadata_store_pb2.Execution.State.items()}


@dataclasses.dataclass(frozen=True)
class ComponentRun:
  """One component execution: its id, final state (COMPLETE, CACHED, FAILED, ...) and wall seconds."""
  component_id: str
  state: str
  wall_seconds: float


@dataclasses.dataclass(frozen=True)
class RunSummary:
  """What a person wants to know after a run."""
  run_id: str
  components: List[ComponentRun]
  output_artifacts: Dict[str, Dict[str, List[metadata_store_pb2.Artifact]]]


def open_store(metadata_path: str) -> metadata_store.MetadataStore:
  """Opens an existing SQLite ML Metadata store read-only.

  Raises:
    FileNotFoundError: if there is no store at `metadata_path`.
  """
  import os  # pylint: disable=g-import-not-at-top
  if not os.path.isfile(metadata_path):
    raise FileNotFoundError(
        f'No ML Metadata store at {metadata_path}: pass the --output-dir of a pipeline run '
        f'(it holds {configs.METADATA_FILE}).')
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = metadata_path
  config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
  return metadata_store.MetadataStore(config)


def latest_run(store: metadata_store.MetadataStore, pipeline_name: str) -> Optional[RunSummary]:
  """The newest run of `pipeline_name` in `store`, or None when it never ran."""
  runs = [c for c in store.get_contexts_by_type(PIPELINE_RUN_CONTEXT)
          if _run_belongs_to(store, c, pipeline_name)]
  if not runs:
    return None
  run = max(runs, key=lambda c: c.create_time_since_epoch)
  executions = sorted(store.get_executions_by_context(run.id), key=lambda e: e.create_time_since_epoch)
  node_names = _node_ids_by_execution(store, [e.id for e in executions])
  components = []
  outputs: Dict[str, Dict[str, List[metadata_store_pb2.Artifact]]] = {}
  for execution in executions:
    component_id = node_names.get(execution.id, execution.type)
    seconds = max(0, execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000.0
    components.append(ComponentRun(component_id, _STATE_NAMES.get(execution.last_known_state, '?'), seconds))
    outputs[component_id] = _outputs_of(store, execution.id)
  return RunSummary(run_id=run.name, components=components, output_artifacts=outputs)


def _run_belongs_to(store: metadata_store.MetadataStore, run: metadata_store_pb2.Context,
                    pipeline_name: str) -> bool:
  parents = store.get_parent_contexts_by_context(run.id)
  return not parents or any(p.name == pipeline_name for p in parents)


def _node_ids_by_execution(store: metadata_store.MetadataStore, execution_ids: List[int]) -> Dict[int, str]:
  names = {}
  for context in store.get_contexts_by_type(NODE_CONTEXT):
    for execution in store.get_executions_by_context(context.id):
      if execution.id in execution_ids:
        names[execution.id] = context.name.split('.')[-1]
  return names


def _outputs_of(store: metadata_store.MetadataStore,
                execution_id: int) -> Dict[str, List[metadata_store_pb2.Artifact]]:
  events = [e for e in store.get_events_by_execution_ids([execution_id])
            if e.type in (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)]
  artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
  by_key: Dict[str, List[metadata_store_pb2.Artifact]] = {}
  for event in events:
    key = event.path.steps[0].key if event.path.steps else ''
    by_key.setdefault(key, []).append(artifacts[event.artifact_id])
  return by_key
