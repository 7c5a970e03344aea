"""Runs the whole local pipeline on generated interactions, for the end-to-end, inspection and serving tests."""

import dataclasses
import glob
import os
from typing import List, Optional, Sequence

import local_runner
from ingestion import fixtures
from pipeline import configs

# Training knobs that keep a fixture run short; the gate is loose because the data is tiny and noisy.
FAST_TRAINING_ARGS = ('--epochs', '3', '--batch-size', '64', '--max-rmse', '2.0')


def kubeflow_pipeline(*flags: str):
  """The tfx.dsl.Pipeline `kubeflow_runner` builds from placeholder gs:// locations and `flags`, without Beam
  arguments (nothing runs: for tests of the pipeline's structure and settings)."""
  import kubeflow_runner  # pylint: disable=g-import-not-at-top  (imports TFX)
  args = kubeflow_runner.parse_args(['--image', 'img', '--pipeline-root', 'gs://b/root', '--data-root', 'gs://b/data',
                                     '--serving-dir', 'gs://b/serving', *flags])
  return kubeflow_runner.build_pipeline(args, beam_pipeline_args=[])


def local_pipeline(**settings):
  """The tfx.dsl.Pipeline `create_pipeline` builds with the default models and `settings` (its keyword arguments,
  e.g. `segment_gate=...`), on paths that do not exist (nothing runs: for tests of the components' settings)."""
  # pylint: disable=g-import-not-at-top  (imports TFX and TFMA)
  from pipeline import eval_configs, pipeline as pipeline_lib
  from trainer.ranking import hparams as ranking_hparams
  # pylint: enable=g-import-not-at-top
  return pipeline_lib.create_pipeline(**{
      'pipeline_name': 'settings', 'pipeline_root': '/nonexistent/root', 'examples_dir': '/nonexistent/examples',
      'serving_dir': '/nonexistent/serving', 'ranking_hyperparameters': ranking_hparams.DEFAULT,
      'ranking_eval_config': eval_configs.ranking_eval_config(configs.RankingGate()), **settings})


@dataclasses.dataclass(frozen=True)
class PipelineRun:
  """A finished local run: its output directory, input file and exit code."""
  output_dir: str
  interactions_csv: str
  exit_code: int

  @property
  def serving_dir(self) -> str:
    return os.path.join(self.output_dir, configs.SERVING_SUBDIR)

  def pushed_versions(self, model: str = configs.RANKING_SERVING_SUBDIR) -> List[str]:
    """Version directories pushed for `model` ('ranking' or 'retrieval'), oldest first."""
    return sorted(glob.glob(os.path.join(self.serving_dir, model, '*')), key=lambda p: int(os.path.basename(p)))


def write_fixture_interactions(path: str, **generator_args) -> str:
  """Writes generated interactions (MovieLens columns, invented values) to `path` and returns it."""
  fixtures.write_synthetic_interactions(path, **generator_args)
  return path


def run_pipeline(output_dir: str, interactions_csv: str, extra_args: Sequence[str] = FAST_TRAINING_ARGS,
                 schema_path: Optional[str] = configs.CURATED_SCHEMA_PATH) -> PipelineRun:
  """Runs local_runner in this process on `interactions_csv` with the curated schema."""
  argv = ['--interactions', interactions_csv, '--output-dir', output_dir, *extra_args]
  if schema_path:
    argv += ['--schema', schema_path]
  return PipelineRun(output_dir, interactions_csv, local_runner.main(argv))
