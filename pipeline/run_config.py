"""Turns command-line flags into the run's configuration: model hyperparameters, gate and column types."""

import argparse
import dataclasses
import json
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Tuple, Type, TypeVar

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from ingestion.interactions import ColumnType
from pipeline.configs import RankingGate, RetrievalGate, SegmentGate
from schema import features
from trainer.common.hyperparameters import ConfigCodec
from trainer.ranking import hparams as ranking_hparams
from trainer.retrieval import hparams as retrieval_hparams

_Hyperparameters = TypeVar('_Hyperparameters', bound=ConfigCodec)
# A frozen dataclass of settings: hyperparameters or a gate's thresholds.
_Settings = TypeVar('_Settings')

# Schema feature types (tensorflow_metadata FeatureType names) -> interactions column types.
_SCHEMA_TYPES = {'INT': ColumnType.INT, 'FLOAT': ColumnType.FLOAT, 'BYTES': ColumnType.STRING}


def add_model_flags(parser: argparse.ArgumentParser) -> None:
  """Adds the training knobs, the gate thresholds and Transform's statistics switch to `parser`."""
  group = parser.add_argument_group('ranking model')
  group.add_argument('--ranking-config', default='default', choices=sorted(ranking_hparams.NAMED_CONFIGURATIONS),
                     help="Named configuration; 'seed' reproduces the seed notebook's model.")
  group.add_argument('--ranking-hparams', metavar='JSON',
                     help='A JSON object of RankingHyperparameters fields (trainer/ranking/hparams.py) applied on '
                          'top of the named configuration, e.g. \'{"context_features": ["interaction_time"]}\'; '
                          'the flags below apply last.')
  group.add_argument('--epochs', type=int, help='Training epochs (overrides the configuration).')
  group.add_argument('--batch-size', type=int, help='Training batch size.')
  group.add_argument('--learning-rate', type=float, help='Optimizer learning rate.')
  group.add_argument('--embedding-dim', type=int, help='Width of the user and item id embeddings.')
  gate = parser.add_argument_group('ranking gate')
  gate.add_argument('--max-rmse', type=float, default=RankingGate.max_rmse,
                    help='Bless (and push) the ranking model only if its eval RMSE is at most this (stars).')
  gate.add_argument('--max-rmse-increase', type=float, default=RankingGate.max_rmse_increase,
                    help='... and only if it is worse than the last blessed model by at most this much (stars).')
  segments = parser.add_argument_group('ranking segment gate')
  segments.add_argument('--segment-min-examples', type=int, default=SegmentGate.min_examples,
                        help='Gate only segments (e.g. user_occupation=writer) with at least this many eval '
                        'examples; smaller ones are reported.')
  segments.add_argument('--segment-max-margin', type=float, default=SegmentGate.max_margin,
                        help='Bless only if no gated segment\'s RMSE exceeds the overall RMSE by more (stars).')
  segments.add_argument('--segment-max-regression', type=float, default=SegmentGate.max_regression,
                        help='... and none exceeds the last blessed model\'s RMSE on it by more (stars).')
  segments.add_argument('--segment-margin-standard-errors', type=float, default=SegmentGate.margin_standard_errors,
                        help='Subtract this many standard errors of a segment\'s RMSE from its margin before '
                        'comparing it with --segment-max-margin (e.g. 2: refuse only excesses the segment\'s '
                        'sampling noise does not explain); 0 judges the plain margin.')
  retrieval = parser.add_argument_group('retrieval model')
  retrieval.add_argument('--retrieval-config', default='default',
                         choices=sorted(retrieval_hparams.NAMED_CONFIGURATIONS), help='Named configuration.')
  retrieval.add_argument('--retrieval-hparams', metavar='JSON',
                         help='A JSON object of RetrievalHyperparameters fields (trainer/retrieval/hparams.py) '
                              'applied on top of the named configuration; the flags below apply last.')
  retrieval.add_argument('--retrieval-epochs', type=int, help='Training epochs (overrides the configuration).')
  retrieval.add_argument('--retrieval-batch-size', type=int, help='Training batch size (in-batch negatives + 1).')
  retrieval.add_argument('--retrieval-learning-rate', type=float, help='Optimizer learning rate.')
  retrieval.add_argument('--retrieval-temperature', type=float, help='In-batch softmax temperature.')
  retrieval.add_argument('--retrieval-k', type=int, help='Candidates the exported model returns per user (K).')
  retrieval.add_argument('--retrieval-index', choices=retrieval_hparams.INDEXES,
                         help='Candidate index of the export; scann (approximate, for large catalogues) needs a '
                              'ScaNN-enabled TF Serving; its candidates and the best item-item candidates are '
                              're-scored together.')
  transform = parser.add_argument_group('transform')
  transform.add_argument(
      '--transform-statistics', action='store_true',
      help='Have Transform also compute statistics of its input and of the transformed features (its pre/post '
           'transform statistics, schema and anomalies outputs, for inspecting the features the models see). Off '
           'by default: StatisticsGen and ExampleValidator already check the raw data (~8 s on MovieLens 100K).')
  retrieval_gate_flags = parser.add_argument_group('retrieval gate')
  retrieval_gate_flags.add_argument(
      '--min-recall-at-100', type=float, default=RetrievalGate.min_recall_at_100,
      help='Bless (and push) the retrieval model only if its eval Recall@100 (seen items removed) reaches this.')
  retrieval_gate_flags.add_argument(
      '--min-top-100-accuracy', type=float, default=RetrievalGate.min_top_100_accuracy,
      help='... and its top-100 accuracy (seen items kept) reaches this.')
  retrieval_gate_flags.add_argument(
      '--max-retrieval-decrease', type=float, default=RetrievalGate.max_decrease,
      help='... and neither is below the last blessed retrieval model\'s by more than this.')
  retrieval_gate_flags.add_argument(
      '--retrieval-segment-max-shortfall', type=float, default=RetrievalGate.segment_max_shortfall,
      help='... and no user segment (gender, occupation, age bucket) of at least --retrieval-segment-min-users '
           'users has a Recall@100 more than this below the overall one (default 1: segments are reported, '
           'not gated; e.g. 0.1).')
  retrieval_gate_flags.add_argument(
      '--retrieval-segment-min-users', type=int, default=RetrievalGate.segment_min_users,
      help='Users (with a Recall@100) a segment needs to be gated by --retrieval-segment-max-shortfall (default '
           f'{RetrievalGate.segment_min_users}).')


def ranking_hyperparameters(args: argparse.Namespace) -> ranking_hparams.RankingHyperparameters:
  """The named configuration with the flags that were given applied on top.

  Raises:
    ValueError: naming the flag, for a value the hyperparameters refuse (e.g. `--epochs 0`, `--learning-rate nan`).
  """
  configured = with_json_fields(ranking_hparams.named_configuration(args.ranking_config), args.ranking_hparams,
                                '--ranking-hparams')
  return with_flag_values(configured, _ranking_flag_values(args))


def _ranking_flag_values(args: argparse.Namespace) -> Tuple[Tuple[str, str, Any], ...]:
  """(field, flag, value) of the ranking hyperparameters' own flags (value None when not given)."""
  return (('epochs', '--epochs', args.epochs), ('batch_size', '--batch-size', args.batch_size),
          ('learning_rate', '--learning-rate', args.learning_rate),
          ('id_embedding_dim', '--embedding-dim', args.embedding_dim))


def _retrieval_flag_values(args: argparse.Namespace) -> Tuple[Tuple[str, str, Any], ...]:
  """(field, flag, value) of the retrieval hyperparameters' own flags (value None when not given)."""
  return (('epochs', '--retrieval-epochs', args.retrieval_epochs),
          ('batch_size', '--retrieval-batch-size', args.retrieval_batch_size),
          ('learning_rate', '--retrieval-learning-rate', args.retrieval_learning_rate),
          ('temperature', '--retrieval-temperature', args.retrieval_temperature),
          ('top_k', '--retrieval-k', args.retrieval_k), ('index', '--retrieval-index', args.retrieval_index))


def model_configs_summary(args: argparse.Namespace) -> str:
  """One short line naming each model's configuration and the flags given on top of it, e.g. `ranking config:
  default with --ranking-hparams, --epochs 5; retrieval config: default` (the hyperparameters themselves are the
  Trainers' custom_config, several hundred characters each)."""
  parts = []
  for model, config, json_flag, json_text, flag_values in (
      ('ranking', args.ranking_config, '--ranking-hparams', args.ranking_hparams, _ranking_flag_values(args)),
      ('retrieval', args.retrieval_config, '--retrieval-hparams', args.retrieval_hparams,
       _retrieval_flag_values(args))):
    given = ([json_flag] if json_text is not None else []) + [
        f'{flag} {value}' for _, flag, value in flag_values if value is not None]
    parts.append(f'{model} config: {config}' + (f' with {", ".join(given)}' if given else ''))
  return '; '.join(parts)


def with_flag_values(hparams: _Settings, flag_values: Sequence[Tuple[str, str, Any]]) -> _Settings:
  """`hparams` (hyperparameters or a gate's settings) with each (field, flag, value) whose value is not None
  applied in turn.

  Raises:
    ValueError: naming the flag whose value the settings refuse, with their own reason.
  """
  for field, flag, value in flag_values:
    if value is None:
      continue
    try:
      hparams = dataclasses.replace(hparams, **{field: value})
    except ValueError as e:
      raise ValueError(f'{flag} {value}: {e}') from e
  return hparams


def segment_gate(args: argparse.Namespace) -> SegmentGate:
  """The ranking model's segmentation rule from the flags.

  Raises:
    ValueError: naming the flag, for a value the rule refuses (e.g. `--segment-max-margin -1`).
  """
  return with_flag_values(SegmentGate(), (
      ('min_examples', '--segment-min-examples', args.segment_min_examples),
      ('max_margin', '--segment-max-margin', args.segment_max_margin),
      ('max_regression', '--segment-max-regression', args.segment_max_regression),
      ('margin_standard_errors', '--segment-margin-standard-errors', args.segment_margin_standard_errors)))


def ranking_gate(args: argparse.Namespace) -> RankingGate:
  """The ranking model's blessing thresholds from the flags.

  Raises:
    ValueError: naming the flag, for a value the gate refuses (e.g. `--max-rmse 0`).
  """
  return with_flag_values(RankingGate(), (
      ('max_rmse', '--max-rmse', args.max_rmse), ('max_rmse_increase', '--max-rmse-increase', args.max_rmse_increase)))


def retrieval_hyperparameters(args: argparse.Namespace) -> retrieval_hparams.RetrievalHyperparameters:
  """The named retrieval configuration with the flags that were given applied on top.

  Raises:
    ValueError: naming the flag, for a value the hyperparameters refuse (e.g. `--retrieval-k 0`).
  """
  configured = with_json_fields(retrieval_hparams.named_configuration(args.retrieval_config),
                                args.retrieval_hparams, '--retrieval-hparams')
  return with_flag_values(configured, _retrieval_flag_values(args))


def with_json_fields(hparams: _Hyperparameters, text: Optional[str], flag: str) -> _Hyperparameters:
  """`hparams` with the fields of the JSON object `text` replaced (unchanged when `text` is None).

  Raises:
    ValueError: naming `flag`, when `text` is not a JSON object or names an unknown field or a bad value.
  """
  if text is None:
    return hparams
  try:
    fields: Mapping[str, Any] = json.loads(text)
  except json.JSONDecodeError as e:
    raise ValueError(f'{flag} is not valid JSON ({e}); pass an object such as \'{{"epochs": 5}}\'.') from e
  if not isinstance(fields, dict):
    raise ValueError(f'{flag} must be a JSON object of hyperparameter fields, got {text!r}.')
  codec: Type[_Hyperparameters] = type(hparams)
  try:
    return codec.from_config({**hparams.to_config(), **fields})
  except (TypeError, ValueError) as e:
    raise ValueError(f'{flag}: {e}') from e


def retrieval_gate(args: argparse.Namespace) -> RetrievalGate:
  """The retrieval model's blessing thresholds from the flags.

  Raises:
    ValueError: naming the flag, for a value the gate refuses (e.g. `--min-recall-at-100 2`).
  """
  return with_flag_values(RetrievalGate(), (
      ('min_recall_at_100', '--min-recall-at-100', args.min_recall_at_100),
      ('min_top_100_accuracy', '--min-top-100-accuracy', args.min_top_100_accuracy),
      ('max_decrease', '--max-retrieval-decrease', args.max_retrieval_decrease),
      ('segment_max_shortfall', '--retrieval-segment-max-shortfall', args.retrieval_segment_max_shortfall),
      ('segment_min_users', '--retrieval-segment-min-users', args.retrieval_segment_min_users)))


def read_schema(schema_path: str) -> schema_pb2.Schema:
  """The curated schema.pbtxt `--schema` names.

  Raises:
    ValueError: naming `--schema`, the file and the fix, if it cannot be read as text (e.g. a binary schema.pb) or
      is no Schema text proto (with its line and column).
  """
  try:
    with open(schema_path, encoding='utf-8') as f:
      return text_format.Parse(f.read(), schema_pb2.Schema())
  except (OSError, UnicodeDecodeError) as e:
    raise ValueError(f'--schema {schema_path}: cannot be read ({e}). Fix: pass a curated schema.pbtxt (text format), '
                     'e.g. a copy of OUTPUT_DIR/tfx/SchemaGen/schema/<id>/schema.pbtxt.') from e
  except text_format.ParseError as e:
    raise ValueError(f'--schema {schema_path}: not a TFMD Schema in text format ({e}; line:column). Fix: correct '
                     'the file, starting from a copy of OUTPUT_DIR/tfx/SchemaGen/schema/<id>/schema.pbtxt.') from e


def column_types_from_schema(schema_path: str) -> Dict[str, ColumnType]:
  """The declared type of each optional column of a curated schema.pbtxt (e.g. user_zip -> STRING).

  Raises:
    ValueError: naming `--schema` and the file, if it cannot be read, is no Schema text proto (`read_schema`) or
      declares a user or item feature of a type other than INT, FLOAT or BYTES.
  """
  schema = read_schema(schema_path)
  types = {}
  for feature in schema.feature:
    if not (features.is_user_feature(feature.name) or features.is_item_feature(feature.name)):
      continue
    type_name = schema_pb2.FeatureType.Name(feature.type)
    if type_name not in _SCHEMA_TYPES:
      raise ValueError(f'--schema {schema_path}: feature {feature.name!r} has type {type_name}; a column of the '
                       f'interactions file is one of {", ".join(_SCHEMA_TYPES)}. Fix: declare it with one of those.')
    types[feature.name] = _SCHEMA_TYPES[type_name]
  return types


# What each feature-list hyperparameter takes (as the hyperparameters' own checks and the Trainers read them): the
# user side `user_id` and user_* columns, the item side `item_id` and item_* columns, the others context features.
_FIELD_ACCEPTS = {
    'user_features': lambda c: c == features.USER_ID or features.is_user_feature(c),
    'item_features': lambda c: c == features.ITEM_ID or features.is_item_feature(c),
    'context_features': features.is_context_feature,
    'user_slope_features': features.is_context_feature,
}


def check_model_inputs(args: argparse.Namespace, settings: Mapping[str, Any], columns: Iterable[str]) -> None:
  """Checks, before Transform and training, that every feature the hyperparameters name is a model input the
  data gives (its columns and what Transform derives from them).

  Args:
    args: the parsed flags (to name `--ranking-config` / `--ranking-hparams` and their retrieval twins).
    settings: `model_settings(args)`.
    columns: the columns of the prepared examples (`PreparedExamples.column_types`).

  Raises:
    ValueError: naming the flags, the hyperparameter, the missing features and the model inputs there are that
      the hyperparameter takes.
  """
  from transform import preprocessing  # pylint: disable=g-import-not-at-top  (imports TensorFlow Transform)
  available = preprocessing.model_input_columns(columns)
  for hparams, config_flag, config, json_flag, fields in (
      (settings['ranking_hyperparameters'], '--ranking-config', args.ranking_config, '--ranking-hparams',
       ('user_features', 'item_features', 'context_features', 'user_slope_features')),
      (settings['retrieval_hyperparameters'], '--retrieval-config', args.retrieval_config, '--retrieval-hparams',
       ('user_features', 'item_features'))):
    for field in fields:
      missing = sorted(set(getattr(hparams, field) or ()) - available)
      if missing:
        # Only the inputs this field takes (the others are refused there: an item column on the user side, ...).
        choices = sorted(c for c in available if _FIELD_ACCEPTS[field](c))
        raise ValueError(
            f'{json_flag} (on {config_flag} {config}): {field} names {missing}, which this data does not give '
            f'the models; the model inputs it gives that {field} takes are {choices or "none"}. Fix: name only '
            f'those in {field} (through {json_flag}), or add the columns to the interactions data.')


def check_training_rows(args: argparse.Namespace, settings: Mapping[str, Any], train_rows: int) -> None:
  """Checks, before Transform and training, that the ranking model has a row left to train on once its validation
  slice is held out: the slice always takes the training split's first row, so a training split of one row with
  `validation_fraction` > 0 leaves none (below one half, any share leaves at least one row of two or more).

  Args:
    args: the parsed flags (to name `--ranking-config` / `--ranking-hparams`).
    settings: `model_settings(args)`.
    train_rows: interactions in the prepared training split.

  Raises:
    ValueError: naming the flags, the hyperparameter and the fixes.
  """
  fraction = settings['ranking_hyperparameters'].validation_fraction
  if fraction and train_rows < 2:
    raise ValueError(
        f'--ranking-hparams (on --ranking-config {args.ranking_config}): validation_fraction={fraction} holds out '
        f'the whole training split of {train_rows} interaction(s) (the validation slice always takes its first), '
        'leaving none to train on. Fix: provide more interactions, or set validation_fraction to 0 (with '
        'early_stopping_patience 0 and neighbourhood_weight_choices [], which need the slice) through '
        '--ranking-hparams.')


def model_settings(args: argparse.Namespace) -> Dict[str, Any]:
  """The models' hyperparameters and gates and the Transform switch from the flags, as `create_pipeline` keyword
  arguments.

  Both runners (local and Kubeflow) pass these, so a flag means the same thing wherever the pipeline runs.

  Raises:
    ValueError: naming the flag, for a hyperparameter or gate value the settings refuse.
  """
  from pipeline import eval_configs  # pylint: disable=g-import-not-at-top  (imports TFMA)
  return {
      'ranking_hyperparameters': ranking_hyperparameters(args),
      'ranking_eval_config': eval_configs.ranking_eval_config(ranking_gate(args)),
      'segment_gate': segment_gate(args),
      'retrieval_hyperparameters': retrieval_hyperparameters(args),
      'retrieval_gate': retrieval_gate(args),
      'transform_statistics': args.transform_statistics,
  }
