"""Runs the project's preprocessing_fn with tf.Transform on a handful of in-memory rows (for unit tests)."""

import atexit
import functools
import json
import os
import shutil
import tempfile
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io

from schema import features
from transform import preprocessing

# Raw feature spec of the MovieLens-shaped interactions (release year optional, as in schema/schema.pbtxt).
RAW_FEATURE_SPEC: Dict[str, tf.io.FixedLenFeature] = {
    features.USER_ID: tf.io.FixedLenFeature([], tf.string),
    features.ITEM_ID: tf.io.FixedLenFeature([], tf.string),
    features.RATING: tf.io.FixedLenFeature([], tf.float32),
    features.TIMESTAMP: tf.io.FixedLenFeature([], tf.int64),
    features.USER_AGE: tf.io.FixedLenFeature([], tf.int64),
    features.USER_GENDER: tf.io.FixedLenFeature([], tf.string),
    features.ITEM_GENRES: tf.io.FixedLenFeature([], tf.string),
    features.ITEM_RELEASE_YEAR: tf.io.VarLenFeature(tf.int64),
    features.RECENT_RATING: tf.io.VarLenFeature(tf.float32),
}


def run_transform(rows: Sequence[Mapping], output_dir: str, new_rows: Sequence[Mapping] = (),
                  batch_size: Optional[int] = None) -> Tuple[tft.TFTransformOutput, List[Dict], List[Dict]]:
  """Analyzes and transforms `rows`, writes the Transform output, then transforms `new_rows` with it.

  Args:
    rows: raw instances (dicts keyed by raw column; VarLen values as lists).
    output_dir: where the transform_fn and transformed metadata are written.
    new_rows: rows transformed with the vocabularies learned from `rows` (to check out-of-vocabulary ids).
    batch_size: rows per batch Beam hands to the analyzers and the transform (None: Beam's own choice).

  Returns:
    (the Transform output, transformed `rows`, transformed `new_rows`).
  """
  metadata = dataset_metadata.DatasetMetadata.from_feature_spec(RAW_FEATURE_SPEC)
  with tft_beam.Context(temp_dir=os.path.join(output_dir, 'tmp'), desired_batch_size=batch_size,
                        force_tf_compat_v1=False):
    (transformed, _), transform_fn = ((list(rows), metadata)
                                      | tft_beam.AnalyzeAndTransformDataset(preprocessing.preprocessing_fn))
    _ = transform_fn | tft_beam.WriteTransformFn(output_dir)
    new_transformed = []
    if new_rows:
      new_transformed, _ = (((list(new_rows), metadata), transform_fn) | tft_beam.TransformDataset())
  # The raw schema, where the TFX Transform component writes it (serving parses requests with it).
  metadata_io.write_metadata(metadata, os.path.join(output_dir, tft.TFTransformOutput.RAW_METADATA_DIR))
  return tft.TFTransformOutput(output_dir), list(transformed), list(new_transformed)


@functools.lru_cache(maxsize=None)
def _analysis_dir(rows_json: str) -> str:
  """Analyzes the rows (JSON of a row list) once per process, into a temporary directory removed at exit.

  One analysis takes ~40 s of Beam and tracing however few the rows, and the export tests need the same few
  rows' output again and again.
  """
  root = tempfile.mkdtemp(prefix='woonkly-transform-')
  atexit.register(shutil.rmtree, root, True)
  output_dir = os.path.join(root, 'transform')
  run_transform(json.loads(rows_json), output_dir)
  return output_dir


def analyzed_copy(rows: Sequence[Mapping], output_dir: str) -> tft.TFTransformOutput:
  """The Transform output of `rows` (as `run_transform` writes it), as a private copy in `output_dir`.

  The first call for given rows analyzes them; later calls with equal rows copy that output, so a test may
  change or delete its `output_dir` without touching another test's.
  """
  shutil.copytree(_analysis_dir(json.dumps([dict(r) for r in rows], sort_keys=True)), output_dir)
  return tft.TFTransformOutput(output_dir)


def movielens_like_row(user: str, item: str, rating: float, age: int = 30, gender: str = 'F',
                       genres: str = 'Comedy', year=(1995,), timestamp: int = 1, recent=()) -> Dict:
  """One invented raw row in the MovieLens-shaped format (not MovieLens data); `timestamp` in unix seconds,
  `recent` the user's recent rating (stars) that ingestion derives, empty for none."""
  return {
      features.USER_ID: user, features.ITEM_ID: item, features.RATING: rating, features.TIMESTAMP: timestamp,
      features.USER_AGE: age, features.USER_GENDER: gender, features.ITEM_GENRES: genres,
      features.ITEM_RELEASE_YEAR: list(year), features.RECENT_RATING: [float(r) for r in recent],
  }
