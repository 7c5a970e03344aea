"""Two overlapping pushes to one serving directory: the one that started (was blessed) last stays served, and the
slow earlier one does not publish a version below it."""

import os
from typing import Any, Callable, List

from components import serving_pusher
from tests.pusher_fixtures import model_dir as _model_dir
from tests.pusher_fixtures import run_executor


def _later_push_during_copy(monkeypatch, slow_model: str, later_push: Callable[[], Any]) -> List[Any]:
  """Sets the clock to 1000.5 and makes the copy of `slow_model` slow: once it is copied, the clock jumps to 1005.5
  and `later_push()` runs (another run's push, all of it during the slow one's copy). Returns the list its result
  is appended to."""
  clock = [1000.5]
  monkeypatch.setattr(serving_pusher.time, 'time', lambda: clock[0])
  copy = serving_pusher._copy_into  # pylint: disable=protected-access
  later = []

  def slow_copy(src: str, dst: str) -> None:
    copy(src, dst)
    if src == slow_model:
      clock[0] = 1005.5
      later.append(later_push())

  monkeypatch.setattr(serving_pusher, '_copy_into', slow_copy)
  return later


def test_a_slow_push_does_not_publish_below_a_later_push(tmp_path, monkeypatch):
  # Push A (run 1) takes version 1000 at clock 1000 and copies slowly; during its copy push B (run 2) starts at
  # clock 1005, takes 1005 and publishes. Before, A then renamed 1000 into place below 1005: never served (servers
  # serve the highest number), yet A's run recorded it as pushed.
  base = str(tmp_path / 'serving' / 'ranking')
  model_a, model_b = _model_dir(str(tmp_path), 'a', b'run 1'), _model_dir(str(tmp_path), 'b', b'run 2')
  pushed_b = _later_push_during_copy(monkeypatch, model_a, lambda: serving_pusher.push_atomically(model_b, base))
  assert serving_pusher.push_atomically(model_a, base) is None
  assert pushed_b == [1005]
  assert sorted(os.listdir(base)) == ['1005']  # no version 1000, no staging directory left
  assert serving_pusher.newest_served_version(base) == 1005
  assert serving_pusher.model_fingerprint(os.path.join(base, '1005')) == serving_pusher.model_fingerprint(model_b)


def test_a_push_that_overlaps_an_older_one_still_publishes_above_it(tmp_path, monkeypatch):
  # The reverse order: B's copy is slow and A (started first, version 1000) publishes during it; B (1005) is above
  # it and publishes: the push that started last is served.
  base = str(tmp_path / 'serving' / 'ranking')
  model_a, model_b = _model_dir(str(tmp_path), 'a', b'run 1'), _model_dir(str(tmp_path), 'b', b'run 2')
  monkeypatch.setattr(serving_pusher.time, 'time', lambda: 1000.5)
  assert serving_pusher.push_atomically(model_a, base) == 1000
  monkeypatch.setattr(serving_pusher.time, 'time', lambda: 1005.5)
  assert serving_pusher.push_atomically(model_b, base) == 1005
  assert sorted(os.listdir(base)) == ['1000', '1005']


def _superseded_executor_push(tmp_path, monkeypatch):
  """As above, through the executor: A (blessed, run 1) takes 1000 and copies slowly; run 2's push B publishes 1005
  meanwhile. Returns A's pushed_model artifact."""
  base = str(tmp_path / 'serving' / 'ranking')
  model_b = _model_dir(str(tmp_path), 'b', b'run 2')
  model_a = os.path.join(str(tmp_path), 'a', 'Format-Serving')  # where run_executor writes A's model
  pushed_b = _later_push_during_copy(monkeypatch, model_a, lambda: serving_pusher.push_model(model_b, base))
  pushed_a = run_executor(str(tmp_path), 'a', b'run 1', base)
  assert pushed_b == [serving_pusher.PushOutcome(version=1005)]
  assert sorted(os.listdir(base)) == ['1005']
  return pushed_a


def test_a_superseded_push_is_recorded_not_pushed_naming_the_newer_version_that_stays_served(tmp_path, monkeypatch):
  # Before, A's artifact had only pushed=0, which the reports read as "not blessed".
  pushed_a = _superseded_executor_push(tmp_path, monkeypatch)
  assert pushed_a.get_int_custom_property('pushed') == 0
  assert pushed_a.get_string_custom_property('not_pushed_reason') == 'superseded'
  assert pushed_a.get_string_custom_property('superseded_by_version') == '1005'
  assert not pushed_a.has_custom_property('pushed_destination')
  assert not pushed_a.has_custom_property('pushed_version')
  assert not os.path.exists(pushed_a.uri)  # no copy of a model that was not pushed


def test_the_run_report_of_a_superseded_push_names_the_version_that_stays_served(tmp_path, monkeypatch):
  from pipeline import configs, run_report, run_summary  # pylint: disable=g-import-not-at-top
  pushed_a = _superseded_executor_push(tmp_path, monkeypatch)
  summary = run_summary.RunSummary(run_id='r1', components=[], output_artifacts={
      configs.RANKING_PUSHER_ID: {'pushed_model': [pushed_a.mlmd_artifact]}})
  assert run_report._push_lines(summary, configs.RANKING_PUSHER_ID, 'Ranking') == [  # pylint: disable=protected-access
      'Ranking model not pushed (superseded by version 1005 of a later push, which stays served).']


def test_push_model_names_the_version_that_superseded_it(tmp_path, monkeypatch):
  base = str(tmp_path / 'serving' / 'ranking')
  model_a, model_b = _model_dir(str(tmp_path), 'a', b'run 1'), _model_dir(str(tmp_path), 'b', b'run 2')
  pushed_b = _later_push_during_copy(monkeypatch, model_a, lambda: serving_pusher.push_atomically(model_b, base))
  assert serving_pusher.push_model(model_a, base) == serving_pusher.PushOutcome(version=None, superseded_by=1005)
  assert pushed_b == [1005]


def test_a_model_not_blessed_is_recorded_not_pushed_for_that_reason(tmp_path):
  base = str(tmp_path / 'serving' / 'ranking')
  refused = run_executor(str(tmp_path), 'm', b'w', base, blessed=0)
  assert refused.get_int_custom_property('pushed') == 0
  assert refused.get_string_custom_property('not_pushed_reason') == 'not_blessed'
  assert not refused.has_custom_property('superseded_by_version')
  assert not os.path.exists(base)  # nothing written


def test_a_push_that_is_published_records_no_reason(tmp_path, monkeypatch):
  base = str(tmp_path / 'serving' / 'ranking')
  monkeypatch.setattr(serving_pusher.time, 'time', lambda: 1000.5)
  pushed = run_executor(str(tmp_path), 'm', b'w', base)
  assert pushed.get_int_custom_property('pushed') == 1
  assert pushed.get_string_custom_property('pushed_version') == '1000'
  assert not pushed.has_custom_property('not_pushed_reason')
  assert not pushed.has_custom_property('superseded_by_version')


def test_a_later_push_numbers_above_a_push_still_copying_whose_clock_ran_ahead(tmp_path, monkeypatch):
  # Push A (another machine, its clock 10 s ahead) claimed 2000 and is copying; push B starts after it with its clock
  # at 1990. Before, B took 1990 (only version directories counted), published it, and A then published 2000 above
  # it: the earlier blessing served. Now B takes 2001, and A, once copied, finds 2001 newer and does not publish.
  base = str(tmp_path / 'serving' / 'ranking')
  model_a, model_b = _model_dir(str(tmp_path), 'a', b'run 1'), _model_dir(str(tmp_path), 'b', b'run 2')
  monkeypatch.setattr(serving_pusher.time, 'time', lambda: 2000.5)
  copy = serving_pusher._copy_into  # pylint: disable=protected-access
  pushed_b = []

  def slow_copy(src: str, dst: str) -> None:
    copy(src, dst)
    if src == model_a:  # B's whole push, on a machine whose clock reads 1990, happens during A's copy
      with monkeypatch.context() as behind:
        behind.setattr(serving_pusher.time, 'time', lambda: 1990.5)
        pushed_b.append(serving_pusher.push_atomically(model_b, base))

  monkeypatch.setattr(serving_pusher, '_copy_into', slow_copy)
  assert serving_pusher.push_model(model_a, base) == serving_pusher.PushOutcome(version=None, superseded_by=2001)
  assert pushed_b == [2001]
  assert sorted(os.listdir(base)) == ['2001']
  assert serving_pusher.model_fingerprint(os.path.join(base, '2001')) == serving_pusher.model_fingerprint(model_b)
