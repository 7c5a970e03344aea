"""The gates' float ML Metadata custom properties: a figure is recorded only when it is a finite number.

Standard library only (no TensorFlow, no TFX import): a gate passes its TFX artifact, which has the one method used.
"""

import math
from typing import Protocol


class FloatPropertyArtifact(Protocol):
  """What `set_finite_float_property` needs of an artifact (`tfx.types.artifact.Artifact` has it)."""

  def set_float_custom_property(self, key: str, value: float) -> None:
    """Sets the float custom property `key`."""


def set_finite_float_property(artifact: FloatPropertyArtifact, name: str, value: float) -> bool:
  """Sets the float custom property `name` of `artifact` to `value` only if it is finite, and says whether it did.

  ML Metadata's SQL store refuses a NaN or infinite property when the artifact is published (`no such column: nan`,
  `no such column: inf`): the run would fail there instead of recording the gate's verdict. A figure left out here
  is in the gate's JSON report as null and its reasons say why.

  Args:
    artifact: the output artifact, e.g. the retrieval gate's ModelEvaluation or the segment gate's ModelBlessing.
    name: the custom property, e.g. 'recall_at_100'.
    value: the figure; an int (e.g. a count) is stored as a float too.

  Returns:
    True if the property was set; False if `value` is NaN, +inf or -inf and the property was left as it was.
  """
  if not math.isfinite(value):
    return False
  artifact.set_float_custom_property(name, float(value))
  return True
