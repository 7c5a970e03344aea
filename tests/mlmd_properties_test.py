"""components/mlmd_properties.py: a finite figure becomes a float custom property; NaN, +inf and -inf do not."""

import math
import os
import subprocess
import sys

import numpy as np
import pytest
from tfx.types import standard_artifacts

from components import mlmd_properties


def test_a_finite_figure_is_set_and_a_count_is_stored_as_a_float():
  evaluation = standard_artifacts.ModelEvaluation()
  assert mlmd_properties.set_finite_float_property(evaluation, 'recall_at_100', 0.25)
  assert evaluation.get_float_custom_property('recall_at_100') == 0.25
  # The retrieval gate's counts (num_eval_pairs) are ints; a numpy float is what a metric often is.
  assert mlmd_properties.set_finite_float_property(evaluation, 'num_eval_pairs', 3)
  assert evaluation.get_float_custom_property('num_eval_pairs') == 3.0
  assert mlmd_properties.set_finite_float_property(evaluation, 'top_100_accuracy', np.float32(0.5))
  assert evaluation.get_float_custom_property('top_100_accuracy') == 0.5
  # Zero and a negative margin are finite figures like any other.
  assert mlmd_properties.set_finite_float_property(evaluation, 'worst_segment_margin', -0.02)
  assert evaluation.get_float_custom_property('worst_segment_margin') == -0.02


@pytest.mark.parametrize('value', [math.nan, math.inf, -math.inf, np.float64('nan')])
def test_a_nan_or_infinite_figure_is_not_set(value):
  # ML Metadata's SQL store refuses each of them on publishing ('no such column: nan', 'no such column: inf').
  blessing = standard_artifacts.ModelBlessing()
  assert not mlmd_properties.set_finite_float_property(blessing, 'worst_segment_margin', value)
  assert not blessing.has_custom_property('worst_segment_margin')
  # A property set before is left as it was, not replaced nor removed.
  blessing.set_float_custom_property('worst_segment_margin', 0.1)
  assert not mlmd_properties.set_finite_float_property(blessing, 'worst_segment_margin', value)
  assert blessing.get_float_custom_property('worst_segment_margin') == 0.1


def test_the_module_imports_neither_tensorflow_nor_tfx():
  script = ('import sys\n'
            'from components import mlmd_properties\n'
            'print(sorted(m for m in ("tensorflow", "tfx") if m in sys.modules))\n')
  repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  imported = subprocess.run([sys.executable, '-c', script], cwd=repo_root, check=True, capture_output=True,
                            text=True).stdout
  assert imported == '[]\n'
