"""Inspection CLI and HTML report against the ML Metadata store of a real (small) pipeline run.

The report is opened in headless Chromium (Debian package `chromium`); the assertions are on the text the
browser lays out and on the rendered size of the chart bars, not on the HTML source.
"""

import csv
import glob
import json
import os
import shutil
import subprocess

import pytest

from components import segment_gate
from inspection import cli, queries, report
from pipeline import configs, run_summary

pytestmark = pytest.mark.slow

CHROMIUM_INSTALL = 'apt-get update && apt-get install -y chromium'
# Components of a run of pipeline/pipeline.py, in the order of their ids in pipeline/configs.py.
EXPECTED_COMPONENTS = {
    configs.EXAMPLE_GEN_ID, configs.STATISTICS_GEN_ID, configs.SCHEMA_GEN_ID, configs.EXAMPLE_VALIDATOR_ID,
    configs.ANOMALIES_GATE_ID, configs.TRANSFORM_ID, configs.RANKING_TRAINER_ID,
    configs.RANKING_MODEL_RESOLVER_ID, configs.RANKING_EVALUATOR_ID, configs.RANKING_PUSHER_ID}


def _cli_json(capsys, output_dir, *command):
  assert cli.main(['--output-dir', output_dir, '--json', *command]) == 0
  return json.loads(capsys.readouterr().out)


def _num_interactions(csv_path):
  with open(csv_path, newline='', encoding='utf-8') as f:
    return sum(1 for _ in csv.DictReader(f))


def test_runs_lists_every_component_of_the_run(fixture_pipeline_run, capsys):
  runs = _cli_json(capsys, fixture_pipeline_run.output_dir, 'runs')
  assert len(runs) == 1
  components = runs[0]['components']
  assert {c['component_id'] for c in components} >= EXPECTED_COMPONENTS
  assert {c['state'] for c in components} == {'COMPLETE'}
  assert all(c['wall_seconds'] >= 0 for c in components)
  assert runs[0]['wall_seconds'] >= max(c['wall_seconds'] for c in components)
  assert cli.main(['--output-dir', fixture_pipeline_run.output_dir, 'runs']) == 0
  table = capsys.readouterr().out
  assert table.startswith(f"Run {runs[0]['run_id']} (started ")
  assert f'{configs.RANKING_TRAINER_ID} ' in table


def test_artifacts_are_the_newest_of_each_output_with_uris(fixture_pipeline_run, capsys):
  artifacts = _cli_json(capsys, fixture_pipeline_run.output_dir, 'artifacts')
  by_output = {(a['producer'], a['output_key']): a for a in artifacts}
  pipeline_root = os.path.join(fixture_pipeline_run.output_dir, configs.PIPELINE_ROOT_SUBDIR)
  model = by_output[(configs.RANKING_TRAINER_ID, 'model')]
  assert model['type'] == 'Model'
  assert model['uri'].startswith(os.path.join(pipeline_root, configs.RANKING_TRAINER_ID, 'model') + os.sep)
  assert by_output[(configs.RANKING_PUSHER_ID, 'pushed_model')]['properties']['pushed'] == 1


def test_lineage_of_the_pushed_model_reaches_the_data(fixture_pipeline_run, capsys):
  [pushed_dir] = fixture_pipeline_run.pushed_versions()
  lineage = _cli_json(capsys, fixture_pipeline_run.output_dir, 'lineage', pushed_dir)
  assert lineage['target']['type'] == 'PushedModel'
  assert lineage['target']['properties']['pushed_destination'] == pushed_dir
  steps = {s['component_id']: s for s in lineage['steps']}
  assert lineage['steps'][0]['component_id'] == configs.RANKING_PUSHER_ID
  assert set(steps) >= {configs.RANKING_PUSHER_ID, configs.RANKING_TRAINER_ID, configs.RANKING_EVALUATOR_ID,
                        configs.TRANSFORM_ID, configs.SCHEMA_GEN_ID, configs.EXAMPLE_GEN_ID}
  evaluator_outputs = {o['output_key']: o for o in steps[configs.RANKING_EVALUATOR_ID]['outputs']}
  assert evaluator_outputs['blessing']['properties']['blessed'] == 1
  assert evaluator_outputs['evaluation']['type'] == 'ModelEvaluation'
  trainer_inputs = {i['output_key'] for i in steps[configs.RANKING_TRAINER_ID]['inputs']}
  assert trainer_inputs == {'transformed_examples', 'schema', 'transform_graph'}
  # The same lineage found from the trainer's model id, and a clear error for an unknown target.
  model_id = str(next(i['artifact_id'] for i in steps[configs.RANKING_PUSHER_ID]['inputs'] if i['type'] == 'Model'))
  assert _cli_json(capsys, fixture_pipeline_run.output_dir, 'lineage', model_id)['steps'][0]['component_id'] == (
      configs.RANKING_TRAINER_ID)
  assert cli.main(['--output-dir', fixture_pipeline_run.output_dir, 'lineage', '/no/such/model']) == 1
  assert 'No artifact in the store has URI or pushed destination /no/such/model' in capsys.readouterr().err


def test_validation_reports_the_gate_and_the_slices(fixture_pipeline_run, capsys):
  answer = _cli_json(capsys, fixture_pipeline_run.output_dir, 'validation')
  [evaluation] = answer['evaluations']
  assert evaluation['component_id'] == configs.RANKING_EVALUATOR_ID
  assert evaluation['blessed'] is True and evaluation['validation_ok'] is True
  assert evaluation['rubber_stamp'] is True  # The first run has no baseline model.
  [rule] = evaluation['thresholds']
  # The fixture run passes --max-rmse 2.0; the default regression allowance is 0.01 stars.
  assert (rule['metric'], rule['slices'], rule['upper_bound']) == ('root_mean_squared_error', 'Overall', 2.0)
  assert (rule['change_direction'], rule['change_absolute']) == ('LOWER_IS_BETTER', 0.01)
  slices = {s['slice']: s['metrics'] for s in evaluation['slices']}
  assert evaluation['slices'][0]['slice'] == 'Overall'
  num_rows = _num_interactions(fixture_pipeline_run.interactions_csv)
  assert slices['Overall']['example_count'] == num_rows - int(0.8 * num_rows)  # The canonical 80/20 split.
  assert slices['Overall']['root_mean_squared_error'] < 2.0
  genders = [s for s in slices if s.startswith('user_gender=')]
  assert sum(slices[s]['example_count'] for s in genders) == slices['Overall']['example_count']


def test_anomalies_per_split_are_clean(fixture_pipeline_run, capsys):
  reports = _cli_json(capsys, fixture_pipeline_run.output_dir, 'anomalies')
  assert [(r['component_id'], r['split'], r['findings']) for r in reports] == [
      (configs.EXAMPLE_VALIDATOR_ID, 'train', []), (configs.EXAMPLE_VALIDATOR_ID, 'eval', [])]


def test_wrong_pipeline_name_is_a_clear_error(fixture_pipeline_run, capsys):
  assert cli.main(['--output-dir', fixture_pipeline_run.output_dir, '--pipeline-name', 'other', 'runs']) == 2
  assert f"holds no run of pipeline 'other' (pipelines recorded: ['{configs.PIPELINE_NAME}'])" in (
      capsys.readouterr().err)


# A script appended to a copy of the report: it writes what the browser lays out (innerText skips what is not
# rendered) and the drawn width of each chart bar into the DOM, which --dump-dom then prints.
_PROBE = """<script>
const text = document.body.innerText;
const bars = Array.from(document.querySelectorAll('svg rect')).map(r => r.getBoundingClientRect().width);
const out = document.createElement('pre');
out.id = 'probe';
out.textContent = JSON.stringify({text: text, bars: bars});
document.body.appendChild(out);
</script>"""


def _chromium() -> str:
  path = shutil.which('chromium')
  if path is None:
    pytest.fail(f'Headless Chromium is needed to check the HTML report; install it with: {CHROMIUM_INSTALL}')
  return path


def _chromium_args(tmp_path):
  return [_chromium(), '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
          '--disable-component-update', '--disable-sync', '--no-first-run', '--host-resolver-rules=MAP * ~NOTFOUND',
          f'--user-data-dir={tmp_path / "chromium-profile"}', '--window-size=1200,3000']


def test_html_report_shows_the_run_offline_in_chromium(fixture_pipeline_run, tmp_path):
  out = tmp_path / 'report.html'
  assert report.main(['--output-dir', fixture_pipeline_run.output_dir, '--out', str(out)]) == 0
  page = out.read_text(encoding='utf-8')
  for external in ('<script', 'src=', 'href=', '<link', '@import'):
    assert external not in page  # Self-contained: nothing to fetch.

  probed = tmp_path / 'probed.html'
  probed.write_text(page.replace('</body>', _PROBE + '</body>'), encoding='utf-8')
  dom = subprocess.run(_chromium_args(tmp_path) + ['--dump-dom', probed.as_uri()], capture_output=True,
                       text=True, timeout=120, check=True).stdout
  start = dom.index('<pre id="probe">') + len('<pre id="probe">')
  import html as html_lib  # pylint: disable=import-outside-toplevel
  probe = json.loads(html_lib.unescape(dom[start:dom.index('</pre>', start)]))
  text = probe['text']

  num_rows = _num_interactions(fixture_pipeline_run.interactions_csv)
  num_train = int(0.8 * num_rows)
  assert f'Split train: {num_train} examples' in text
  assert f'Split eval: {num_rows - num_train} examples' in text
  assert 'train\t\t\tNo anomalies\tThe split matches the schema.' in text
  assert f'{configs.RANKING_TRAINER_ID}: rmse' in text and 'eval rmse' in text  # Training curve titles/legend.
  # The default configuration chooses the neighbourhood blend weight among 7 on the validation slice; the
  # Trainer's record holds the lowest-RMSE weight, and the report shows each weight's row.
  [blend_path] = glob.glob(os.path.join(fixture_pipeline_run.output_dir, 'tfx', configs.RANKING_TRAINER_ID,
                                        'model_run', '*', 'neighbourhood_blend.json'))
  with open(blend_path, encoding='utf-8') as f:
    blend = json.load(f)
  assert [w for w, _ in blend['validation_rmse']] == [0.0, 0.1, 0.2, 0.3, 0.35, 0.4, 0.5]
  assert blend['weight'] == min(blend['validation_rmse'], key=lambda pair: (pair[1], pair[0]))[0]
  assert f'{configs.RANKING_TRAINER_ID}: neighbourhood blend weight {blend["weight"]:g}' in text
  for w, validation_rmse in blend['validation_rmse']:
    chosen = '\tyes' if w == blend['weight'] else ''
    assert f'{w:g}\t{validation_rmse:.4f}{chosen}' in text
  # The retrieval Trainer records its item-item scores (default weight 1, l2 500) and the report says them.
  [item_item_path] = glob.glob(os.path.join(fixture_pipeline_run.output_dir, 'tfx', configs.RETRIEVAL_TRAINER_ID,
                                            'model_run', '*', 'item_item.json'))
  with open(item_item_path, encoding='utf-8') as f:
    item_item = json.load(f)
  assert (item_item['weight'], item_item['l2'], item_item['max_items']) == (1.0, 500.0, 10_000)
  assert 0 < item_item['covered_items'] <= item_item['catalogue_items']
  assert 0 < item_item['interactions'] <= num_train
  assert (f'{configs.RETRIEVAL_TRAINER_ID}: item-item scores weight 1 (l2 500) over {item_item["covered_items"]} '
          f'of {item_item["catalogue_items"]} catalogue items (at most 10000), from {item_item["users"]} users\' '
          f'{item_item["interactions"]} distinct training items') in text
  assert f'{configs.RANKING_EVALUATOR_ID}: BLESSED' in text
  assert 'RMSE per user segment (stars)' in text
  assert 'user_gender=F' in text and 'user_gender=M' in text
  store = cli.store_from_flags(cli.parse_args(['--output-dir', fixture_pipeline_run.output_dir, 'runs']))
  run = queries.require_run(store, configs.PIPELINE_NAME, fixture_pipeline_run.output_dir)
  # The segment gate's own section: its verdict, rule and the gated segments against overall + margin.
  [gate] = queries.segment_gate_reports(store, run)
  blessing = run_summary.latest_run(store, configs.PIPELINE_NAME).output_artifacts[
      configs.RANKING_SEGMENT_GATE_ID]['blessing'][0]
  verdict = segment_gate.read_report(blessing.uri)
  assert (gate.component_id, gate.blessed, gate.overall_rmse, gate.segments) == (
      configs.RANKING_SEGMENT_GATE_ID, verdict['blessed'], verdict['overall_rmse'], verdict['segments'])
  assert (gate.max_margin, gate.min_examples) == (0.08, 500)  # the fixture run's settings: the defaults
  assert f'{configs.RANKING_SEGMENT_GATE_ID}: {"BLESSED" if gate.blessed else "NOT BLESSED"}' in text
  assert f'Overall RMSE {gate.overall_rmse:.4f}; a segment with at least 500 eval examples may be at most 0.08' in text
  metric_artifacts = queries.metric_artifacts(store, run)
  if metric_artifacts:  # E.g. the retrieval gate's recall@k, once the pipeline has it.
    for m in metric_artifacts:
      assert f'{m.component_id}.{m.output_key} ({m.type})' in text
      assert all(name in text for name in m.metrics)
  else:
    assert 'No artifact with metric properties (e.g. the retrieval gate) in this run.' in text
  [pushed_dir] = fixture_pipeline_run.pushed_versions()
  assert f'{configs.RANKING_SERVING_SUBDIR}\t{os.path.basename(pushed_dir)}\t{pushed_dir}\tyes' in text
  # One bar per segment slice plus Overall, each drawn with a visible width.
  assert len(probe['bars']) >= 3 and min(probe['bars']) > 0

  screenshot = tmp_path / 'report.png'
  subprocess.run(_chromium_args(tmp_path) + [f'--screenshot={screenshot}', out.as_uri()], capture_output=True,
                 timeout=120, check=True)
  assert screenshot.stat().st_size > 10_000

