"""Names of the files the trainers write into their ModelRun artifact (inspection/report.py reads them), and the
text of history.json."""

import json
import math
from typing import Dict, List, Mapping, Optional, Sequence

# Keras history of either trainer: metric name -> one value per epoch (JSON; a non-finite value is null).
HISTORY_FILE = 'history.json'
# The retrieval model's FactorizedTopK accuracies after training (JSON).
EVALUATION_FILE = 'evaluation.json'
# The ranking model's neighbourhood blend weight and each candidate's validation RMSE (JSON; with the blend on).
BLEND_FILE = 'neighbourhood_blend.json'
# The retrieval model's item-item scores: weight, penalty, users, interactions and items covered (JSON; weight > 0).
ITEM_ITEM_FILE = 'item_item.json'


def history_json(history: Mapping[str, Sequence[float]]) -> str:
  """The text of HISTORY_FILE: metric name -> one value per epoch, a NaN or infinite value (an epoch whose loss
  diverged) as null.

  JSON has no NaN or Infinity: `json.dump` would write the tokens `NaN` / `Infinity`, which strict JSON readers
  refuse. `allow_nan=False` makes any non-finite value that got past the conversion a ValueError, not a token.

  Args:
    history: Keras history, metric name -> per-epoch values (floats).

  Returns:
    The JSON text, e.g. '{"rmse": [0.9, null]}' for {'rmse': [0.9, nan]}.
  """
  record: Dict[str, List[Optional[float]]] = {
      name: [float(v) if math.isfinite(v) else None for v in values] for name, values in history.items()}
  return json.dumps(record, allow_nan=False)
