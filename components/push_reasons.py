"""What the project's Pusher (components/serving_pusher.py) recorded of a push: why it did not push a model, or
that it found the model already served; the custom properties it records on the pushed_model artifact, and their
wording in the run and inspection reports.

Standard library only, so the inspection tools can read them without importing TensorFlow.
"""

import os
from typing import Optional

# String custom property of a pushed_model artifact whose `pushed` is 0: why the model was not pushed.
NOT_PUSHED_REASON_KEY = 'not_pushed_reason'
# Its values: no blessing passed (what an artifact without the property, written before it, means too), or a
# later-started push published a higher version while this one copied (`serving_pusher.push_model`).
NOT_BLESSED = 'not_blessed'
SUPERSEDED = 'superseded'
# String custom property (as `pushed_version`) of a superseded push's artifact: the newer version that stays served.
SUPERSEDED_BY_VERSION_KEY = 'superseded_by_version'
# Int custom property of a pushed_model artifact whose `pushed` is 1: 1 when the Pusher found the model's files
# already served as the newest complete version (an unchanged rerun) and copied nothing, its `pushed_destination`
# and `pushed_version` being that version's, written by an earlier push; 0 when it copied the model to its
# `pushed_destination`. An artifact without it was written before the Pusher recorded it: either.
ALREADY_SERVED_KEY = 'already_served'


def why_not_pushed(reason: Optional[str], superseded_by: Optional[str]) -> str:
  """The reason of a model not pushed, as the reports word it.

  Args:
    reason: the artifact's NOT_PUSHED_REASON_KEY; None (an artifact written before it was recorded) is NOT_BLESSED.
    superseded_by: its SUPERSEDED_BY_VERSION_KEY, or None.

  Returns:
    e.g. 'not blessed', 'superseded by version 1005 of a later push, which stays served'; a reason this module does
    not know, as recorded.
  """
  reason = NOT_BLESSED if reason is None else reason
  if reason == SUPERSEDED:
    newer = f'version {superseded_by} of a later push' if superseded_by is not None else "a later push's newer version"
    return f'superseded by {newer}, which stays served'
  return 'not blessed' if reason == NOT_BLESSED else reason


def found_already_served(already_served: Optional[int]) -> bool:
  """Whether a pushed model's ALREADY_SERVED_KEY (None when the artifact has none) says the Pusher copied nothing."""
  return already_served == 1


def already_served(version: Optional[str], destination: Optional[str] = None) -> str:
  """A model the Pusher found already served, as the reports word it.

  Args:
    version: the artifact's `pushed_version`; None to take it from `destination` (its last path component).
    destination: the artifact's `pushed_destination`, or None.

  Returns:
    e.g. 'already served as version 1005 (unchanged since an earlier run; not copied again)'.
  """
  if version is None and destination:
    version = os.path.basename(destination.rstrip('/'))
  served = f'as version {version} ' if version else ''
  return f'already served {served}(unchanged since an earlier run; not copied again)'
