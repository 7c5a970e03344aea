"""create_pipeline: wires the recommender's TFX components (no paths, globals or side effects here)."""

from typing import List, Optional

import tensorflow_model_analysis as tfma
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx

from components.anomalies_gate import AnomaliesGate
from components.retrieval_gate import RetrievalGate
from components.segment_gate import SegmentGate
from components.serving_pusher import STALE_STAGING_AGE_S, ServingPusher
from pipeline import configs
from trainer.ranking import hparams as ranking_hparams
from trainer.retrieval import hparams as retrieval_hparams

TRAIN_SPLIT = 'train'
EVAL_SPLIT = 'eval'


def create_pipeline(
    *,
    pipeline_name: str,
    pipeline_root: str,
    examples_dir: str,
    serving_dir: str,
    ranking_hyperparameters: ranking_hparams.RankingHyperparameters,
    ranking_eval_config: tfma.EvalConfig,
    segment_gate: configs.SegmentGate = configs.SegmentGate(),
    retrieval_hyperparameters: retrieval_hparams.RetrievalHyperparameters = retrieval_hparams.DEFAULT,
    retrieval_gate: configs.RetrievalGate = configs.RetrievalGate(),
    schema_path: Optional[str] = None,
    metadata_connection_config: Optional[metadata_store_pb2.ConnectionConfig] = None,
    beam_pipeline_args: Optional[List[str]] = None,
    enable_cache: bool = True,
    transform_statistics: bool = False,
    stale_staging_age_s: float = STALE_STAGING_AGE_S,
) -> tfx.dsl.Pipeline:
  """Builds the pipeline: examples -> statistics -> schema -> validation -> Transform -> Trainer -> gate -> push.

  Args:
    pipeline_name: the pipeline's name in ML Metadata.
    pipeline_root: where component outputs are written.
    examples_dir: directory holding `train/` and `eval/` tf.Example TFRecord files (see `ingestion.prepare`).
    serving_dir: root of the TF Serving model directories; the ranking model goes to `<serving_dir>/ranking`.
    ranking_hyperparameters: the ranking model's configuration (passed to the Trainer's custom_config).
    ranking_eval_config: the Evaluator's metrics, slices and blessing thresholds.
    segment_gate: the segmentation rule the ranking model must also pass before it is pushed.
    retrieval_hyperparameters: the retrieval model's configuration (the retrieval Trainer's custom_config).
    retrieval_gate: the retrieval gate's blessing thresholds; the model goes to `<serving_dir>/retrieval`.
    schema_path: a curated schema.pbtxt to validate against; None infers one from the statistics.
    metadata_connection_config: ML Metadata store; None leaves it to the runner (e.g. Kubeflow).
    beam_pipeline_args: arguments of the Beam runner the data components use.
    enable_cache: reuse outputs of components whose inputs and settings did not change.
    transform_statistics: Transform also computes TFDV statistics of its input and of the transformed features
      (its pre_/post_transform_stats, _schema and post_transform_anomalies outputs). Off by default: StatisticsGen
      and ExampleValidator already describe and check the raw data, and on MovieLens 100K the two extra passes
      made Transform ~8 s slower (docs/performance.md).
    stale_staging_age_s: seconds without any change after which both pushers remove a `.staging-<version>`
      directory a dead push left behind (default one hour; `components.serving_pusher`).
  """
  example_gen = tfx.components.ImportExampleGen(
      input_base=examples_dir,
      input_config=tfx.proto.Input(splits=[
          tfx.proto.Input.Split(name=TRAIN_SPLIT, pattern=f'{TRAIN_SPLIT}/*'),
          tfx.proto.Input.Split(name=EVAL_SPLIT, pattern=f'{EVAL_SPLIT}/*'),
      ])).with_id(configs.EXAMPLE_GEN_ID)

  statistics_gen = tfx.components.StatisticsGen(
      examples=example_gen.outputs['examples']).with_id(configs.STATISTICS_GEN_ID)

  if schema_path:
    schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_path).with_id(configs.SCHEMA_GEN_ID)
  else:
    schema_gen = tfx.components.SchemaGen(
        statistics=statistics_gen.outputs['statistics'],
        infer_feature_shape=True).with_id(configs.SCHEMA_GEN_ID)

  example_validator = tfx.components.ExampleValidator(
      statistics=statistics_gen.outputs['statistics'],
      schema=schema_gen.outputs['schema']).with_id(configs.EXAMPLE_VALIDATOR_ID)

  anomalies_gate = AnomaliesGate(
      anomalies=example_validator.outputs['anomalies']).with_id(configs.ANOMALIES_GATE_ID)

  # No analyzer cache: it only pays off when a run re-analyzes spans an earlier run analyzed, and ExampleGen
  # imports one span; writing it made Transform 60 s -> 76 s on the test fixture (an unchanged rerun is still
  # served from the ML Metadata cache, component by component).
  transform = tfx.components.Transform(
      examples=example_gen.outputs['examples'],
      schema=schema_gen.outputs['schema'],
      preprocessing_fn=configs.PREPROCESSING_FN,
      disable_analyzer_cache=True,
      disable_statistics=not transform_statistics).with_id(configs.TRANSFORM_ID)
  transform.add_upstream_node(anomalies_gate)

  ranking_trainer = tfx.components.Trainer(
      run_fn=configs.RANKING_RUN_FN,
      examples=transform.outputs['transformed_examples'],
      transform_graph=transform.outputs['transform_graph'],
      schema=schema_gen.outputs['schema'],
      train_args=tfx.proto.TrainArgs(splits=[TRAIN_SPLIT]),
      eval_args=tfx.proto.EvalArgs(splits=[EVAL_SPLIT]),
      custom_config={ranking_hparams.CUSTOM_CONFIG_KEY: ranking_hyperparameters.to_config()},
  ).with_id(configs.RANKING_TRAINER_ID)

  ranking_model_resolver = tfx.dsl.Resolver(
      strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
      model=tfx.dsl.Channel(
          type=tfx.types.standard_artifacts.Model, producer_component_id=configs.RANKING_TRAINER_ID),
      model_blessing=tfx.dsl.Channel(
          type=tfx.types.standard_artifacts.ModelBlessing,
          producer_component_id=configs.RANKING_SEGMENT_GATE_ID),
  ).with_id(configs.RANKING_MODEL_RESOLVER_ID)

  ranking_evaluator = tfx.components.Evaluator(
      examples=example_gen.outputs['examples'],
      model=ranking_trainer.outputs['model'],
      baseline_model=ranking_model_resolver.outputs['model'],
      eval_config=ranking_eval_config,
      example_splits=[EVAL_SPLIT]).with_id(configs.RANKING_EVALUATOR_ID)

  # The Evaluator gates the overall RMSE; this gate adds the per-segment rule on the same evaluation and its
  # blessing is the one the Pusher and the resolver of the last blessed model read.
  ranking_segment_gate = SegmentGate(
      model=ranking_trainer.outputs['model'],
      evaluation=ranking_evaluator.outputs['evaluation'],
      evaluator_blessing=ranking_evaluator.outputs['blessing'],
      min_examples=segment_gate.min_examples,
      max_margin=segment_gate.max_margin,
      max_regression=segment_gate.max_regression,
      margin_standard_errors=segment_gate.margin_standard_errors,
  ).with_id(configs.RANKING_SEGMENT_GATE_ID)

  ranking_pusher = ServingPusher(
      model=ranking_trainer.outputs['model'],
      model_blessing=ranking_segment_gate.outputs['blessing'],
      push_destination=tfx.proto.PushDestination(
          filesystem=tfx.proto.PushDestination.Filesystem(
              base_directory=f'{serving_dir.rstrip("/")}/{configs.RANKING_SERVING_SUBDIR}')),
      stale_staging_age_s=stale_staging_age_s,
  ).with_id(configs.RANKING_PUSHER_ID)

  # The retrieval Trainer reads the raw examples (its candidates must keep the raw ids of eval-only items) and
  # transforms them with the shared Transform graph.
  retrieval_trainer = tfx.components.Trainer(
      run_fn=configs.RETRIEVAL_RUN_FN,
      examples=example_gen.outputs['examples'],
      transform_graph=transform.outputs['transform_graph'],
      schema=schema_gen.outputs['schema'],
      train_args=tfx.proto.TrainArgs(splits=[TRAIN_SPLIT]),
      eval_args=tfx.proto.EvalArgs(splits=[EVAL_SPLIT]),
      custom_config={retrieval_hparams.CUSTOM_CONFIG_KEY: retrieval_hyperparameters.to_config()},
  ).with_id(configs.RETRIEVAL_TRAINER_ID)

  retrieval_model_resolver = tfx.dsl.Resolver(
      strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
      model=tfx.dsl.Channel(
          type=tfx.types.standard_artifacts.Model, producer_component_id=configs.RETRIEVAL_TRAINER_ID),
      model_blessing=tfx.dsl.Channel(
          type=tfx.types.standard_artifacts.ModelBlessing, producer_component_id=configs.RETRIEVAL_GATE_ID),
  ).with_id(configs.RETRIEVAL_MODEL_RESOLVER_ID)

  retrieval_evaluation_gate = RetrievalGate(
      examples=example_gen.outputs['examples'],
      model=retrieval_trainer.outputs['model'],
      baseline_model=retrieval_model_resolver.outputs['model'],
      min_recall_at_100=retrieval_gate.min_recall_at_100,
      min_top_100_accuracy=retrieval_gate.min_top_100_accuracy,
      max_decrease=retrieval_gate.max_decrease,
      segment_min_users=retrieval_gate.segment_min_users,
      segment_max_shortfall=retrieval_gate.segment_max_shortfall,
  ).with_id(configs.RETRIEVAL_GATE_ID)

  retrieval_pusher = ServingPusher(
      model=retrieval_trainer.outputs['model'],
      model_blessing=retrieval_evaluation_gate.outputs['blessing'],
      push_destination=tfx.proto.PushDestination(
          filesystem=tfx.proto.PushDestination.Filesystem(
              base_directory=f'{serving_dir.rstrip("/")}/{configs.RETRIEVAL_SERVING_SUBDIR}')),
      stale_staging_age_s=stale_staging_age_s,
  ).with_id(configs.RETRIEVAL_PUSHER_ID)

  return tfx.dsl.Pipeline(
      pipeline_name=pipeline_name,
      pipeline_root=pipeline_root,
      components=[
          example_gen, statistics_gen, schema_gen, example_validator, anomalies_gate, transform,
          ranking_trainer, ranking_model_resolver, ranking_evaluator, ranking_segment_gate, ranking_pusher,
          retrieval_trainer, retrieval_model_resolver, retrieval_evaluation_gate, retrieval_pusher,
      ],
      enable_cache=enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=beam_pipeline_args or [],
  )
