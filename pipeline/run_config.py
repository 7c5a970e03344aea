"""Turns command-line flags into the run's configuration: model hyperparameters, gate and column types."""

import argparse
import dataclasses
from typing import Dict

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from ingestion.interactions import ColumnType
from pipeline.configs import RankingGate
from schema import features
from trainer.ranking import hparams as ranking_hparams

# Schema feature types (tensorflow_metadata FeatureType names) -> interactions column types.
_SCHEMA_TYPES = {'INT': ColumnType.INT, 'FLOAT': ColumnType.FLOAT, 'BYTES': ColumnType.STRING}


def add_model_flags(parser: argparse.ArgumentParser) -> None:
  """Adds the training knobs and the gate thresholds to `parser`."""
  group = parser.add_argument_group('ranking model')
  group.add_argument('--ranking-config', default='default', choices=sorted(ranking_hparams.NAMED_CONFIGURATIONS),
                     help="Named configuration; 'seed' reproduces the seed notebook's model.")
  group.add_argument('--epochs', type=int, help='Training epochs (overrides the configuration).')
  group.add_argument('--batch-size', type=int, help='Training batch size.')
  group.add_argument('--learning-rate', type=float, help='Optimizer learning rate.')
  group.add_argument('--embedding-dim', type=int, help='Width of the user and item id embeddings.')
  gate = parser.add_argument_group('ranking gate')
  gate.add_argument('--max-rmse', type=float, default=RankingGate.max_rmse,
                    help='Bless (and push) the ranking model only if its eval RMSE is below this (stars).')
  gate.add_argument('--max-rmse-increase', type=float, default=RankingGate.max_rmse_increase,
                    help='... and only if it is not worse than the last blessed model by this much (stars).')


def ranking_hyperparameters(args: argparse.Namespace) -> ranking_hparams.RankingHyperparameters:
  """The named configuration with the flags that were given applied on top."""
  overrides = {field: value for field, value in (
      ('epochs', args.epochs), ('batch_size', args.batch_size), ('learning_rate', args.learning_rate),
      ('id_embedding_dim', args.embedding_dim)) if value is not None}
  return dataclasses.replace(ranking_hparams.named_configuration(args.ranking_config), **overrides)


def ranking_gate(args: argparse.Namespace) -> RankingGate:
  """The ranking model's blessing thresholds from the flags."""
  return RankingGate(max_rmse=args.max_rmse, max_rmse_increase=args.max_rmse_increase)


def column_types_from_schema(schema_path: str) -> Dict[str, ColumnType]:
  """The declared type of each optional column of a curated schema.pbtxt (e.g. user_zip -> STRING)."""
  with open(schema_path, encoding='utf-8') as f:
    schema = text_format.Parse(f.read(), schema_pb2.Schema())
  return {f.name: _SCHEMA_TYPES[schema_pb2.FeatureType.Name(f.type)] for f in schema.feature
          if features.is_user_feature(f.name) or features.is_item_feature(f.name)}
