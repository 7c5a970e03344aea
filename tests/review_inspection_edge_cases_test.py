"""Inspection on edge inputs: non-finite TFMA metrics, records written before a setting existed, missing files."""

import json
import math

from google.protobuf import json_format
from tensorflow_model_analysis.proto import metrics_for_slice_pb2

from inspection import queries, tables


def _tfma_value(**fields: float) -> dict:
  """A TFMA MetricValue as `tfma.load_eval_result` hands it over: through protobuf's MessageToDict."""
  value = metrics_for_slice_pb2.MetricValue()
  if 'double' in fields:
    value.double_value.value = fields['double']
  if 'bounded' in fields:
    value.bounded_value.value.value = fields['bounded']
  return json_format.MessageToDict(value)


def test_nan_and_infinite_tfma_metrics_are_kept_not_dropped():
  # MessageToDict spells them 'NaN', 'Infinity', '-Infinity'; before, those strings failed the number check and
  # the metric vanished from the slice (its table cell empty, its --json key missing).
  metrics = {'': {'': {'root_mean_squared_error': _tfma_value(double=math.nan),
                       'mean_label': _tfma_value(double=3.5),
                       'max_error': _tfma_value(double=math.inf),
                       'min_error': _tfma_value(bounded=-math.inf),
                       'example_count': _tfma_value(double=0.0)}}}
  assert metrics['']['']['root_mean_squared_error'] == {'doubleValue': 'NaN'}
  values = queries._metric_values(metrics)  # pylint: disable=protected-access
  assert sorted(values) == ['example_count', 'max_error', 'mean_label', 'min_error', 'root_mean_squared_error']
  assert math.isnan(values['root_mean_squared_error'])
  assert (values['max_error'], values['min_error'], values['mean_label'], values['example_count']) == (
      math.inf, -math.inf, 3.5, 0.0)
  # --json writes them as null (strict JSON has no NaN), under their names.
  validation = queries.ModelValidation('Evaluator', 'r1', '/e', None, None, False,
                                       [queries.SliceMetrics('user_gender=X', values)], [], [])
  [evaluation] = json.loads(tables.to_json([validation]))
  assert evaluation['slices'][0]['metrics'] == {'example_count': 0, 'max_error': None, 'mean_label': 3.5,
                                                'min_error': None, 'root_mean_squared_error': None}


def test_segment_gate_section_says_when_the_minimum_of_examples_is_not_recorded():
  from inspection import report  # pylint: disable=g-import-not-at-top
  # An execution without the min_examples setting: before, the sentence read 'at least None eval examples'.
  gate = queries.segment_gate_report('ranking_segment_gate', {'passed': True, 'overall_rmse': 0.9, 'segments': []},
                                     max_margin=None, min_examples=None)
  section = report._segment_gate_section([gate])  # pylint: disable=protected-access
  assert 'None' not in section
  assert ('<p>Overall RMSE 0.9000; a gated segment (the minimum of eval examples is not recorded) may be at most '
          'not recorded stars above it (the dashed line).</p>') in section
  recorded = queries.segment_gate_report('ranking_segment_gate', {'passed': True, 'overall_rmse': 0.9,
                                                                  'segments': []}, max_margin=0.08, min_examples=500)
  assert ('<p>Overall RMSE 0.9000; a segment with at least 500 eval examples may be at most 0.08 stars above it '
          '(the dashed line).</p>') in report._segment_gate_section([recorded])  # pylint: disable=protected-access


def _store_with_statistics_and_anomalies(statistics_uri: str, anomalies_uri: str):
  """An in-memory ML Metadata store holding run 'run-1' of pipeline 'p': StatisticsGen wrote an ExampleStatistics
  artifact at `statistics_uri` and ExampleValidator an ExampleAnomalies one at `anomalies_uri`, splits train and
  eval, as TFX records them."""
  from ml_metadata import metadata_store  # pylint: disable=g-import-not-at-top
  from ml_metadata.proto import metadata_store_pb2 as mlmd  # pylint: disable=g-import-not-at-top
  from pipeline import configs  # pylint: disable=g-import-not-at-top
  config = mlmd.ConnectionConfig()
  config.fake_database.SetInParent()
  writer = metadata_store.MetadataStore(config)
  context_types = {name: writer.put_context_type(mlmd.ContextType(name=name))
                   for name in (queries.PIPELINE_CONTEXT, queries.PIPELINE_RUN_CONTEXT, queries.NODE_CONTEXT)}
  pipeline = mlmd.Context(type_id=context_types[queries.PIPELINE_CONTEXT], name='p')
  run = mlmd.Context(type_id=context_types[queries.PIPELINE_RUN_CONTEXT], name='run-1')
  [pipeline.id, run.id] = writer.put_contexts([pipeline, run])
  for node_id, type_name, uri, key in ((configs.STATISTICS_GEN_ID, queries.EXAMPLE_STATISTICS_TYPE, statistics_uri,
                                        'statistics'),
                                       (configs.EXAMPLE_VALIDATOR_ID, queries.EXAMPLE_ANOMALIES_TYPE, anomalies_uri,
                                        'anomalies')):
    artifact_type = mlmd.ArtifactType(name=type_name)
    artifact_type.properties[queries.SPLIT_NAMES_PROPERTY] = mlmd.STRING
    artifact = mlmd.Artifact(type_id=writer.put_artifact_type(artifact_type), uri=uri)
    artifact.properties[queries.SPLIT_NAMES_PROPERTY].string_value = '["train", "eval"]'
    event = mlmd.Event(type=mlmd.Event.OUTPUT)
    event.path.steps.add().key = key
    execution = mlmd.Execution(type_id=writer.put_execution_type(mlmd.ExecutionType(name=node_id)),
                               last_known_state=mlmd.Execution.COMPLETE)
    node = mlmd.Context(type_id=context_types[queries.NODE_CONTEXT], name=f'p.{node_id}')
    writer.put_execution(execution, [(artifact, event)], [pipeline, run, node])
  return writer


def test_report_notes_statistics_and_anomalies_files_that_are_missing_instead_of_failing(tmp_path):
  from tensorflow_metadata.proto.v0 import statistics_pb2  # pylint: disable=g-import-not-at-top
  from inspection import report  # pylint: disable=g-import-not-at-top
  # The store outlived some of the run's files (an output dir pruned or moved, a store copied alone). Before, the
  # first missing file aborted the whole report with TensorFlow's NotFoundError traceback.
  statistics_uri, anomalies_uri = tmp_path / 'StatisticsGen' / '3', tmp_path / 'ExampleValidator' / '4'
  (statistics_uri / 'Split-train').mkdir(parents=True)  # Split-eval's file, and every anomalies file, missing.
  train = statistics_pb2.DatasetFeatureStatisticsList()
  dataset = train.datasets.add(num_examples=4)
  feature = dataset.features.add()
  feature.path.step.append('rating')
  feature.num_stats.common_stats.num_non_missing = 3
  feature.num_stats.common_stats.num_missing = 1
  feature.num_stats.mean = 3.5
  (statistics_uri / 'Split-train' / report.STATISTICS_FILE).write_bytes(train.SerializeToString())
  opened = _store_with_statistics_and_anomalies(str(statistics_uri), str(anomalies_uri))
  html = report.build_report(opened, 'p', queries.require_run(opened, 'p', 'the store'), serving_dir=None)
  assert '<h3>Split train: 4 examples</h3>' in html
  assert '<td>rating</td><td class="num">3</td><td>25.0%</td><td class="num">3.5000</td>' in html  # 1 of 4 missing
  assert f'<p>Split eval: no FeatureStats.pb at {statistics_uri}/Split-eval/FeatureStats.pb.</p>' in html
  assert (f"<h2>Anomalies</h2>\n<p>Cannot read ExampleValidator's output: {anomalies_uri}/Split-train/"
          'SchemaDiff.pb; No such file or directory.</p>') in html


def test_a_split_without_examples_is_an_anomaly_not_a_split_that_matches_the_schema():
  from tensorflow_metadata.proto.v0 import anomalies_pb2  # pylint: disable=g-import-not-at-top
  # TFDV marks an empty split with `data_missing` only, and AnomaliesGate stops the run on it. Before, inspection
  # read no finding and said 'no anomalies' for the very split that stopped the run.
  empty = anomalies_pb2.Anomalies(data_missing=True)
  findings = queries._findings(empty)  # pylint: disable=protected-access
  assert findings == [queries.AnomalyFinding('', 'ERROR', 'No examples (TFDV data_missing)',
                                             'The split is empty; check the input files and the split '
                                             'configuration.')]
  table = tables.anomalies_table([queries.SplitAnomalies('ExampleValidator', 'r1', '/a', 'eval', findings)])
  assert 'no anomalies' not in table and 'eval   (dataset)  ERROR     No examples (TFDV data_missing)' in table
  clean = queries._findings(anomalies_pb2.Anomalies())  # pylint: disable=protected-access
  assert clean == []


def test_a_broken_change_threshold_is_reported_under_the_diff_metric_its_value_is():
  from tensorflow_model_analysis.proto import validation_result_pb2  # pylint: disable=g-import-not-at-top
  # The Evaluator's RMSE threshold: upper bound 1.0, and at most 0.01 worse than the last blessed model. The
  # candidate's RMSE is 0.95 (within the bound) but 0.03 above the baseline's: TFMA records the failure under the
  # diff key with the value 0.03. Before, it read 'root_mean_squared_error 0.0300', as if that were the RMSE.
  validation = validation_result_pb2.ValidationResult(validation_ok=False)
  per_slice = validation.metric_validations_per_slice.add()
  failure = per_slice.failures.add()
  failure.metric_key.name = 'root_mean_squared_error'
  failure.metric_key.is_diff = True
  failure.metric_value.double_value.value = 0.03
  failure.metric_threshold.change_threshold.direction = 1  # LOWER_IS_BETTER
  failure.metric_threshold.change_threshold.absolute.value = 0.01
  value_failure = per_slice.failures.add()  # a plain bound broken, for contrast
  value_failure.metric_key.name = 'root_mean_squared_error'
  value_failure.metric_value.double_value.value = 1.2
  value_failure.metric_threshold.value_threshold.upper_bound.value = 1.0
  assert queries._threshold_failures(validation) == [  # pylint: disable=protected-access
      queries.ThresholdFailure('Overall', 'root_mean_squared_error_diff', 0.03,
                               'must be change vs baseline absolute 0.01'),
      queries.ThresholdFailure('Overall', 'root_mean_squared_error', 1.2, 'must be <= 1')]


def test_the_blend_table_shows_a_null_validation_rmse_as_n_a(tmp_path) -> None:
  # neighbourhood_blend.json holds a diverged candidate's RMSE as null (strict JSON); before, '{r:.4f}' raised
  # TypeError and the HTML report failed.
  from inspection import report  # pylint: disable=g-import-not-at-top
  (tmp_path / report.BLEND_FILE).write_text(
      json.dumps({'weight': 0.3, 'validation_rmse': [[0, None], [0.3, 0.87654]]}), encoding='utf-8')
  run = queries.ArtifactRecord(artifact_id=1, type='ModelRun', uri=str(tmp_path), producer='RankingTrainer',
                               output_key='model_run', created_ms=0, properties={})
  html_text = report._blend_table(run)  # pylint: disable=protected-access
  assert '<td>0</td><td>n/a</td><td></td>' in html_text
  assert '<td>0.3</td><td>0.8765</td><td>yes</td>' in html_text
