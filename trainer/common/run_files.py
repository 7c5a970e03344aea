"""Names of the files the trainers write into their ModelRun artifact (inspection/report.py reads them), their
JSON text (a NaN or infinite number as null), and the writing of them.

TensorFlow is imported only to write (`write_texts`): the inspection tools read the names without it.
"""

import json
import math
import numbers
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence

# Every file below is strict JSON (`run_file_json`): a NaN or infinite value is written as null, and a reader must
# take a null number as "not computed" (a gap, "n/a"), not fail on it.
# Keras history of either trainer: metric name -> one value per epoch.
HISTORY_FILE = 'history.json'
# The retrieval model's FactorizedTopK accuracies (and losses) after training.
EVALUATION_FILE = 'evaluation.json'
# The ranking model's neighbourhood blend weight and each candidate's validation RMSE (with the blend on).
BLEND_FILE = 'neighbourhood_blend.json'
# The retrieval model's item-item scores: weight, penalty, users, interactions and items covered (weight > 0).
ITEM_ITEM_FILE = 'item_item.json'


def finite_or_null(record: Any) -> Any:
  """`record` (JSON-shaped: dicts, lists, tuples, numbers, strings, bools, None) with every NaN or infinite float
  replaced by None; a tuple becomes a list, a numpy integer an int, a numpy float a float, a bool stays a bool.

  Example: {'w': 0.5, 'rmse': [[0.0, nan], [0.1, inf]]} -> {'w': 0.5, 'rmse': [[0.0, None], [0.1, None]]}.
  """
  if isinstance(record, Mapping):
    return {key: finite_or_null(value) for key, value in record.items()}
  if isinstance(record, (list, tuple)):
    return [finite_or_null(value) for value in record]
  if isinstance(record, (bool, str)) or record is None:
    return record
  if isinstance(record, numbers.Integral):
    return int(record)
  value = float(record)  # float, numpy float: anything else is no JSON number (TypeError, ValueError)
  return value if math.isfinite(value) else None


def run_file_json(record: Any, indent: Optional[int] = None) -> str:
  """The strict JSON text of `record`, each NaN or infinite number as null (`finite_or_null`).

  JSON has no NaN or Infinity: `json.dump` would write the tokens `NaN` / `Infinity`, which strict JSON readers
  (JavaScript's JSON.parse, jq, Go) refuse. `allow_nan=False` makes any non-finite value that got past the
  conversion a ValueError, not a token.

  Args:
    record: what the file holds (JSON-shaped).
    indent: as `json.dumps` takes it (None: one line).

  Returns:
    The JSON text, e.g. '{"weight": 0.1, "validation_rmse": [[0.0, null]]}'.
  """
  return json.dumps(finite_or_null(record), indent=indent, allow_nan=False)


def history_json(history: Mapping[str, Sequence[float]]) -> str:
  """The text of HISTORY_FILE: metric name -> one value per epoch, a NaN or infinite value (an epoch whose loss
  diverged) as null.

  Args:
    history: Keras history, metric name -> per-epoch values (floats).

  Returns:
    The JSON text (`run_file_json`), e.g. '{"rmse": [0.9, null]}' for {'rmse': [0.9, nan]}.
  """
  record: Dict[str, List[Optional[float]]] = {name: [float(v) for v in values] for name, values in history.items()}
  return run_file_json(record)


def write_texts(model_run_dir: str, texts: Mapping[str, str]) -> None:
  """Writes each file's text into `model_run_dir` (created if missing), as it is: nothing is added or converted.

  Args:
    model_run_dir: the Trainer's ModelRun directory (a local path or a URI `tf.io.gfile` takes, e.g. gs://).
    texts: file name (e.g. HISTORY_FILE) -> its text (`history_json`, `run_file_json`), written in this order.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top  (slow; only to write)
  tf.io.gfile.makedirs(model_run_dir)
  for name, text in texts.items():
    with tf.io.gfile.GFile(os.path.join(model_run_dir, name), 'w') as f:
      f.write(text)
