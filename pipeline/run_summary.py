"""Summarises the latest run of a pipeline from its ML Metadata store (a thin front of inspection.queries).

The queries live in `inspection/` (shared with the inspection CLI and the HTML run report); this module keeps
the names the runner's end-of-run summary (`pipeline/run_report.py`) uses.
"""

from typing import Optional

from ml_metadata import metadata_store

from inspection import queries, store as store_lib

PIPELINE_RUN_CONTEXT = queries.PIPELINE_RUN_CONTEXT
NODE_CONTEXT = queries.NODE_CONTEXT
ComponentRun = queries.ComponentRun
RunSummary = queries.RunSummary


def open_store(metadata_path: str) -> metadata_store.MetadataStore:
  """Opens an existing SQLite ML Metadata store read-only.

  Raises:
    inspection.store.StoreError: if there is no store at `metadata_path`, the file is not ML Metadata, or it
      cannot be opened read-only (see `inspection.store.open_sqlite_store`).
  """
  return store_lib.open_sqlite_store(metadata_path)


def latest_run(store: metadata_store.MetadataStore, pipeline_name: str) -> Optional[RunSummary]:
  """The newest run of `pipeline_name` in `store` with its output artifacts, or None when it never ran."""
  return queries.latest_run(store, pipeline_name)
