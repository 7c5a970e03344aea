"""Where the ranking trainer's wall time goes, and what tracing costs both trainers, on a pipeline run's outputs.

  .venv/bin/python benchmarks/trainer_phases.py --run-dir outputs/ml100k [--trainer retrieval] [--json phases.json]

Runs the ranking Trainer's steps (`trainer/ranking/run.py`, the `default` configuration unless
`--ranking-config`) in this process on the latest run's Transform output in `--run-dir` and prints seconds per
phase: loading the splits in canonical order, the first training step of a fresh model (its trace) with the
steps traced without AutoGraph (as the trainer does, `trainer/common/tracing.py`) and, for comparison, with
AutoGraph converting them, the whole fit, the eval RMSE and the export. With `--trainer retrieval` it times the
retrieval Trainer's steps instead (`trainer/retrieval/run.py`, default retrieval configuration, the run's raw
training examples through its Transform graph): reading the training pairs, the model's first training step with
only TFRS's Retrieval task converted by AutoGraph (`trainer.retrieval.model.RetrievalTask`, as the trainer does) and
with the whole step converted, then the fit, the item-item scores, the export and the serving assets. One trainer per
process: AutoGraph caches what it converted, so a second model's converted trace would be flattered by the first's.
Figures are wall seconds on this machine; the first-step figures include one step (~10 ms). Exit status 2 when
`--run-dir` holds no finished run.
"""

import argparse
import json
import sys
import tempfile
import time
from typing import Any, Callable, Dict, Optional, Sequence, TypeVar

from pipeline import environment
from run_outputs import open_run, raw_examples_uri, split_files

_T = TypeVar('_T')


def timed(seconds: Dict[str, float], phase: str, step: Callable[[], _T]) -> _T:
  """Runs `step`, records its wall seconds as `seconds[phase]` and returns its result."""
  start = time.perf_counter()
  result = step()
  seconds[phase] = round(time.perf_counter() - start, 2)
  print(f'{phase}: {seconds[phase]:.2f} s', flush=True)
  return result


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--run-dir', required=True, help='A local_runner.py --output-dir holding a finished run.')
  parser.add_argument('--trainer', choices=('ranking', 'retrieval'), default='ranking',
                      help='Whose phases to time (default: ranking).')
  parser.add_argument('--ranking-config', default='default', help='Named ranking configuration (default: default).')
  parser.add_argument('--json', help='Also write the figures to this JSON file.')
  return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = parse_args(argv)
  environment.use_legacy_keras()
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  import tensorflow_recommenders as tfrs
  from trainer.common import feature_specs, inputs
  from trainer.ranking import export, hparams as hparams_lib, model as model_lib, run
  # pylint: enable=g-import-not-at-top

  opened = open_run(args.run_dir)
  if opened is None:
    return 2
  summary, tf_transform_output, data_accessor, examples_uri = opened
  seconds: Dict[str, float] = {}
  if args.trainer == 'retrieval':
    return _report(retrieval_phases(summary, tf_transform_output, seconds), args.json)
  hparams = hparams_lib.named_configuration(args.ranking_config)

  train_split = timed(seconds, 'read train split in canonical order', lambda: inputs.in_canonical_order(
      inputs.load_split(split_files(examples_uri, 'train'), data_accessor, tf_transform_output)))
  eval_split = inputs.load_split(split_files(examples_uri, 'eval'), data_accessor, tf_transform_output)
  watched_split = eval_split
  if hparams.validation_fraction:
    train_split, watched_split = run.carve_validation(train_split, hparams.validation_fraction)
  timed(seconds, 'one pass over the training batches',
        lambda: sum(1 for _ in inputs.training_batches(train_split, hparams.batch_size, hparams.seed)))
  tower_features = feature_specs.model_features(
      tf_transform_output, hparams.user_features, hparams.item_features, hparams.context_features,
      hparams.user_slope_features)

  class StepsConvertedByAutograph(model_lib.RankingModel):
    """The ranking model with tfrs.models.Model's steps, which Keras traces with AutoGraph converting them."""
    train_step = tfrs.models.Model.train_step
    test_step = tfrs.models.Model.test_step

  def first_step(model_class: type) -> None:
    first_training_step(model_class(tower_features, hparams, 3.5), hparams, train_split)

  model, history = timed(seconds, 'fit (train_ranking_model)', lambda: run.train_ranking_model(
      train_split, watched_split, tower_features, hparams))
  # Unconverted first: AutoGraph caches what it converted, which would flatter a second converted trace.
  timed(seconds, 'first training step, traced without AutoGraph', lambda: first_step(model_lib.RankingModel))
  timed(seconds, 'first training step, traced with AutoGraph', lambda: first_step(StepsConvertedByAutograph))
  eval_rmse = timed(seconds, 'eval RMSE', lambda: run.rmse(model, eval_split))
  with tempfile.TemporaryDirectory() as export_dir:
    timed(seconds, 'export', lambda: export.export_ranking_model(model, tf_transform_output, export_dir))
  return _report({'seconds': seconds, 'epochs': len(history['rmse']), 'eval_rmse': round(eval_rmse, 6),
                  'tensorflow': tf.__version__}, args.json)


def retrieval_phases(summary: 'run_summary.RunSummary', tf_transform_output: 'tft.TFTransformOutput',
                     seconds: Dict[str, float]) -> dict:
  """Times the retrieval Trainer's steps: reading the pairs, the first step traced both ways, fit, export.

  After the two first steps it runs the Trainer's own steps in its order (default configuration): fitting the
  towers, the item-item scores, the export and the serving assets (the catalogue is embedded untimed).

  Args:
    summary: the run (`pipeline.run_summary.latest_run`) whose ExampleGen output holds the raw examples.
    tf_transform_output: its Transform output.
    seconds: phase -> wall seconds, filled in.

  Returns:
    The figures to print: `seconds` and the TensorFlow version.
  """
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  import tensorflow_recommenders as tfrs
  from trainer.common import feature_specs, inputs
  from serving import assets as serving_assets
  from trainer.retrieval import candidates, hparams as retrieval_hparams_lib, model as retrieval_model_lib
  from trainer.retrieval import export as retrieval_export, run as retrieval_run
  # pylint: enable=g-import-not-at-top
  retrieval_hparams = retrieval_hparams_lib.named_configuration('default')
  transform_layer = tf_transform_output.transform_features_layer()
  raw_train_files = split_files(raw_examples_uri(summary), 'train')
  train_pairs = timed(seconds, 'retrieval: read train pairs in canonical order', lambda: inputs.in_canonical_order(
      inputs.in_memory(candidates.transformed_pairs(raw_train_files, tf_transform_output, transform_layer))))
  retrieval_features = feature_specs.model_features(
      tf_transform_output, retrieval_hparams.user_features, retrieval_hparams.item_features)

  class RetrievalStepsConvertedByAutograph(retrieval_model_lib.RetrievalModel):
    """The retrieval model with tfrs.models.Model's steps and TFRS's own task, all converted by AutoGraph."""
    train_step = tfrs.models.Model.train_step
    test_step = tfrs.models.Model.test_step

    def __init__(self, *args, **kwargs) -> None:
      super().__init__(*args, **kwargs)
      self.task = tfrs.tasks.Retrieval(temperature=retrieval_hparams.temperature,
                                       remove_accidental_hits=retrieval_hparams.remove_accidental_hits)

  def first_retrieval_step(model_class: type) -> None:
    first_training_step(model_class(retrieval_features, retrieval_hparams), retrieval_hparams, train_pairs)

  # The task alone first (what it converts is a small part of what the whole step converts).
  timed(seconds, 'retrieval: first training step, task alone converted',
        lambda: first_retrieval_step(retrieval_model_lib.RetrievalModel))
  timed(seconds, 'retrieval: first training step, whole step converted',
        lambda: first_retrieval_step(RetrievalStepsConvertedByAutograph))
  # The Trainer's own steps after the pairs are read (trainer/retrieval/run.py), in its order.
  model, _ = timed(seconds, 'retrieval: fit (train_retrieval_model)', lambda: retrieval_run.train_retrieval_model(
      train_pairs, retrieval_features, retrieval_hparams))
  raw_files = raw_train_files + split_files(raw_examples_uri(summary), 'eval')
  item_ids, item_embeddings = retrieval_export.embed_catalogue(
      model.candidate_tower, candidates.catalogue_examples(raw_files), tf_transform_output, transform_layer)
  item_item, _ = timed(seconds, 'retrieval: item-item scores', lambda: retrieval_run.fit_item_item(
      raw_train_files, item_ids.numpy(), retrieval_hparams))
  with tempfile.TemporaryDirectory() as export_dir:
    timed(seconds, 'retrieval: export', lambda: retrieval_export.export_retrieval_model(
        model.query_tower, item_ids, item_embeddings, tf_transform_output, retrieval_hparams, export_dir,
        item_item=item_item))
    timed(seconds, 'retrieval: serving assets', lambda: serving_assets.write_serving_assets(
        raw_train_files, raw_files, serving_assets.assets_dir_of(export_dir)))
  return {'seconds': seconds, 'tensorflow': tf.__version__}


def first_training_step(model: 'tf.keras.Model', hparams: Any, split: 'inputs.InMemorySplit') -> None:
  """Compiles a fresh `model` with `hparams`' optimizer and fits one batch of `split`: its first step's trace."""
  # pylint: disable=g-import-not-at-top
  from trainer.common import hyperparameters, inputs
  # pylint: enable=g-import-not-at-top
  model.compile(optimizer=hyperparameters.build_optimizer(hparams.optimizer, hparams.learning_rate))
  model.fit(inputs.training_batches(split, hparams.batch_size, hparams.seed).take(1), verbose=0)


def _report(figures: dict, json_path: Optional[str]) -> int:
  """Prints the figures (and writes them to `json_path` when given); returns the exit status 0."""
  print(json.dumps(figures, indent=1))
  if json_path:
    with open(json_path, 'w', encoding='utf-8') as f:
      json.dump(figures, f, indent=1)
  return 0


if __name__ == '__main__':
  sys.exit(main())
