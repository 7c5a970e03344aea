"""What the ranking Evaluator's metrics cost: its executor re-run on a pipeline run's outputs with each metric set.

  .venv/bin/python benchmarks/evaluator_metrics.py --run-dir outputs/ml100k [--metric-sets one_pass separate]

Runs TFX's Evaluator executor in this process on the latest run's eval examples and trained ranking model, with
the pipeline's eval config (slices, RMSE bound; no baseline model), once per metric set, and prints its wall
seconds and overall RMSE for each:

- `one_pass`: the pipeline's metrics, RMSE/MAE/mean label/mean prediction from one combiner
  (`pipeline/rating_metrics.py`), plus ExampleCount;
- `separate`: the same four as Keras' RootMeanSquaredError/MeanAbsoluteError (wrapped by TFMA) and TFMA's
  MeanLabel/MeanPrediction, each its own pass, plus ExampleCount (what the pipeline used before);
- `count_only`: ExampleCount alone: the cost of everything but the rating metrics (loading the model, calling
  it, slicing, writing).

Exit status 2 when `--run-dir` holds no finished run with a trained ranking model.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence

import benchmark_flags
from pipeline import configs, environment

METRIC_SETS = ('one_pass', 'separate', 'count_only')


def metric_configs(metric_set: str, one_pass: Sequence) -> List:
  """The MetricConfigs of `metric_set`, given the pipeline's own (`one_pass`, with the RMSE bound on RMSE)."""
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  count = [m for m in one_pass if m.class_name == 'ExampleCount']
  if metric_set == 'one_pass':
    return list(one_pass)
  if metric_set == 'count_only':
    return count
  rmse = next(m for m in one_pass if json.loads(m.config or '{}').get('name') == 'root_mean_squared_error')
  return count + [
      tfma.MetricConfig(class_name='RootMeanSquaredError', per_slice_thresholds=rmse.per_slice_thresholds),
      tfma.MetricConfig(class_name='MeanAbsoluteError'), tfma.MetricConfig(class_name='MeanLabel'),
      tfma.MetricConfig(class_name='MeanPrediction')]


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--run-dir', required=True, help='a local_runner.py --output-dir with a finished run')
  parser.add_argument('--metric-sets', nargs='+', action=benchmark_flags.DistinctValues, choices=METRIC_SETS,
                      default=list(METRIC_SETS),
                      help='metric sets to time, in this order (default: all)')
  parser.add_argument('--json', help='also write {"seconds": {set: s}, "rmse": {set: stars}} to this file')
  args = parser.parse_args(argv)

  environment.use_legacy_keras()
  # pylint: disable=g-import-not-at-top
  import tensorflow_model_analysis as tfma
  from google.protobuf import json_format
  from tfx.components.evaluator import executor as evaluator_executor
  from tfx.types import standard_artifacts
  from tfx.types import standard_component_specs as specs
  from inspection import store as store_lib
  from pipeline import eval_configs, run_summary
  # pylint: enable=g-import-not-at-top
  try:
    store = run_summary.open_store(os.path.join(args.run_dir, configs.METADATA_FILE))
  except store_lib.StoreError as e:
    print(e, file=sys.stderr)
    return 2
  summary = run_summary.latest_run(store, configs.PIPELINE_NAME)
  outputs = summary.output_artifacts if summary else {}
  if not outputs.get(configs.RANKING_TRAINER_ID, {}).get('model') or not outputs.get(configs.EXAMPLE_GEN_ID):
    print(f'No trained ranking model is recorded under {args.run_dir}; run local_runner.py there first.',
          file=sys.stderr)
    return 2

  examples = standard_artifacts.Examples()
  examples.uri = outputs[configs.EXAMPLE_GEN_ID]['examples'][0].uri
  examples.split_names = json.dumps(['train', 'eval'])
  model = standard_artifacts.Model()
  model.uri = outputs[configs.RANKING_TRAINER_ID]['model'][0].uri
  pipeline_config = eval_configs.ranking_eval_config(configs.RankingGate())
  one_pass = pipeline_config.metrics_specs[0].metrics

  seconds: Dict[str, float] = {}
  rmse: Dict[str, float] = {}
  with tempfile.TemporaryDirectory() as work:
    for metric_set in args.metric_sets:
      eval_config = tfma.EvalConfig()
      eval_config.CopyFrom(pipeline_config)
      del eval_config.metrics_specs[0].metrics[:]
      eval_config.metrics_specs[0].metrics.extend(metric_configs(metric_set, one_pass))
      evaluation = standard_artifacts.ModelEvaluation()
      evaluation.uri = os.path.join(work, metric_set, 'evaluation')
      blessing = standard_artifacts.ModelBlessing()
      blessing.uri = os.path.join(work, metric_set, 'blessing')
      properties = {specs.EVAL_CONFIG_KEY: json_format.MessageToJson(eval_config),
                    specs.EXAMPLE_SPLITS_KEY: json.dumps(['eval'])}
      start = time.perf_counter()
      evaluator_executor.Executor().Do({specs.EXAMPLES_KEY: [examples], specs.MODEL_KEY: [model]},
                                       {specs.EVALUATION_KEY: [evaluation], specs.BLESSING_KEY: [blessing]},
                                       properties)
      seconds[metric_set] = round(time.perf_counter() - start, 2)
      overall = next(m for m in tfma.load_metrics(evaluation.uri) if not m.slice_key.single_slice_keys)
      values = {e.key.name: e.value.double_value.value for e in overall.metric_keys_and_values}
      rmse[metric_set] = values.get('root_mean_squared_error', float('nan'))
      print(f'{metric_set}: {seconds[metric_set]:.2f} s, overall RMSE {rmse[metric_set]:.6f}', flush=True)
  if args.json:
    with open(args.json, 'w', encoding='utf-8') as f:
      json.dump({'seconds': seconds, 'rmse': rmse}, f)
  return 0


if __name__ == '__main__':
  sys.exit(main())
