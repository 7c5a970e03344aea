"""What the ranking and retrieval hyperparameter dataclasses share: the custom_config codec, the optimizer and the
checks of the features each side reads."""

import dataclasses
import math
import typing
from typing import Any, Dict, Mapping, Optional, Sequence, Type, TypeVar

import tensorflow as tf

from schema import features

OPTIMIZERS = ('adam', 'adagrad', 'sgd')

_Config = TypeVar('_Config', bound='ConfigCodec')


class ConfigCodec:
  """Mixin for frozen hyperparameter dataclasses stored in a Trainer's custom_config (JSON)."""

  def to_config(self) -> Dict[str, Any]:
    """Returns a JSON-serialisable dict (lists for tuples), the form stored in Trainer custom_config."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

  @classmethod
  def from_config(cls: Type[_Config], config: Mapping[str, Any]) -> _Config:
    """Inverse of `to_config`; every value is checked against its field's type first (what JSON flags give).

    Raises:
      ValueError: on a key that is not a field of the class, naming the known ones, or on a value of the wrong
        type (a string for a list, 2.5 for an int, NaN or infinity for a float), naming the field.
    """
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(config) - known)
    if unknown:
      raise ValueError(f'Unknown {cls.__name__} fields {unknown}; known: {sorted(known)}.')
    hints = typing.get_type_hints(cls)
    for name, value in config.items():
      expected = _describe_mismatch(value, hints[name])
      if expected:
        raise ValueError(f'{cls.__name__}.{name}={value!r} must be {expected}.')
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in config.items()})


def from_custom_config(codec: Type[_Config], custom_config: Optional[Mapping[str, Any]], key: str) -> _Config:
  """The hyperparameters stored under `key` in a Trainer's custom_config (`pipeline.create_pipeline` always puts
  them there), read with `codec.from_config`.

  Args:
    codec: the hyperparameter dataclass, e.g. RankingHyperparameters.
    custom_config: the Trainer's `fn_args.custom_config` (None when the Trainer was given none).
    key: the model's custom_config key, e.g. 'ranking_hyperparameters'.

  Returns:
    The hyperparameters; `{key: {}}` gives the dataclass's defaults.

  Raises:
    ValueError: if `custom_config` has no `key` (a Trainer not built by `create_pipeline` would otherwise train the
      defaults without a word), naming the key and the fix; if its value is not a JSON object; from `from_config`.
  """
  if key not in (custom_config or {}):
    raise ValueError(f'The Trainer\'s custom_config has no {key!r} key (its keys: {sorted(custom_config or {})}), '
                     f'so it does not say which {codec.__name__} to train with: pass custom_config={{{key!r}: '
                     f'hyperparameters.to_config()}}, as pipeline.create_pipeline does ({{{key!r}: {{}}}} trains the '
                     'defaults).')
  config = custom_config[key]
  if not isinstance(config, Mapping):
    raise ValueError(f'custom_config[{key!r}]={config!r} must be a JSON object of {codec.__name__} fields, e.g. '
                     '{"epochs": 3}.')
  return codec.from_config(config)


def _describe_mismatch(value: Any, annotation: Any) -> str:
  """'' if `value` (a JSON value) fits the field type `annotation`, else what it must be, e.g. 'an integer'."""
  origin, args = typing.get_origin(annotation), typing.get_args(annotation)
  if origin is typing.Union:  # Optional[X]
    if value is None:
      return ''
    inner = [a for a in args if a is not type(None)]
    expected = _describe_mismatch(value, inner[0])
    return f'{expected} or null' if expected else ''
  if origin is tuple:
    if not isinstance(value, (list, tuple)):
      return f'a list, e.g. [{_example(args[0])}]'
    for element in value:
      expected = _describe_mismatch(element, args[0])
      if expected:
        return f'a list of which every element is {expected}'
    return ''
  if annotation is bool:
    return '' if isinstance(value, bool) else 'true or false'
  if annotation is int:
    return '' if isinstance(value, int) and not isinstance(value, bool) else 'an integer'
  if annotation is float:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return '' if number and _is_finite_float(value) else 'a finite number'
  if annotation is str:
    return '' if isinstance(value, str) else 'a string'
  return ''


def _is_finite_float(value: float) -> bool:
  """True if the number `value` is finite as a float: an integer past the float range (JSON gives 10**400 as an
  int) is not, where `math.isfinite` would raise OverflowError."""
  try:
    return math.isfinite(value)
  except OverflowError:
    return False


def _example(annotation: Any) -> str:
  return {int: '1', float: '0.5', str: '"name"'}.get(annotation, '...')


def check_finite_numbers(hparams: Any) -> None:
  """Raises ValueError, naming the field, if a float field of the dataclass `hparams` (or an element of a tuple
  field) is NaN or infinite: `x <= 0` is False for NaN, so the range checks alone let it through (from a flag such
  as `--learning-rate nan`; JSON values are checked by `ConfigCodec.from_config` already)."""
  for field in dataclasses.fields(hparams):
    value = getattr(hparams, field.name)
    if any(isinstance(v, float) and not math.isfinite(v) for v in (value if isinstance(value, tuple) else (value,))):
      raise ValueError(f'{field.name}={value!r} must be a finite number.')


def check_features_named_once(hparams: Any, field_names: Sequence[str]) -> None:
  """Raises ValueError, naming the field, if a feature-list field of `hparams` (a tuple of raw column names, or None)
  names a feature more than once: the encoder would concatenate its encoding twice (the same `user_id` embedding
  in two places of the user vector), which is never what a list of inputs means."""
  for name in field_names:
    requested = getattr(hparams, name) or ()
    repeated = sorted({k for k in requested if requested.count(k) > 1})
    if repeated:
      raise ValueError(f'{name}={list(requested)} names {repeated} more than once; name each feature once.')


def check_side_features(hparams: Any, side_noun: str, context_hint: str) -> None:
  """Raises ValueError unless `hparams.user_features` / `item_features` (when given) read their own side only.

  A model's user side parses `user_id` and the `user_*` columns, its item side `item_id` and the `item_*` columns:
  an item column on the user side would give the user's vector the row's own item (and a retrieval export has no
  item to parse), a context feature belongs to neither.

  Args:
    hparams: a dataclass with `user_features` and `item_features` (each None or a tuple of raw column names).
    side_noun: what the model calls a side in messages ('tower', 'side').
    context_hint: where the messages send context features, e.g. "context features ... go in context_features".
  """
  for name, id_key, is_side_feature, side in (
      ('user_features', features.USER_ID, features.is_user_feature, 'user'),
      ('item_features', features.ITEM_ID, features.is_item_feature, 'item')):
    requested = getattr(hparams, name)
    if requested is None:
      continue
    if not requested:
      raise ValueError(f'{name}=[] leaves the {side} {side_noun} without inputs; name at least {id_key!r}, or null '
                       f'for {id_key!r} and every {side}_* column.')
    other_side = [k for k in requested if k != id_key and not is_side_feature(k)]
    if other_side:
      raise ValueError(f'{name} names {other_side}, which are not {side} features: the {side} {side_noun} reads '
                       f'{id_key!r} and {side}_* columns only ({context_hint}). Remove them.')


# The largest seed `tf.keras.utils.set_random_seed` accepts (NumPy's legacy seeding takes [0, 2**32 - 1]).
MAX_SEED = 2**32 - 1


def check_seed(seed: int, models: int = 1) -> None:
  """Raises ValueError unless the seeds `seed`, ..., `seed + models - 1` (one per model trained, e.g. ensemble
  members) are each in [0, MAX_SEED]: `tf.keras.utils.set_random_seed` refuses others only once the Trainer runs,
  after ExampleGen and Transform, with NumPy's message that names no parameter."""
  if not 0 <= seed <= MAX_SEED - (models - 1):
    raise ValueError(f'seed={seed} must be a whole number from 0 to {MAX_SEED - (models - 1)}'
                     + (f' (the {models} models trained take seeds seed to seed + {models - 1}, each at most '
                        f'{MAX_SEED})' if models > 1 else '') + ', e.g. 42.')


def check_optimizer(name: str) -> None:
  """Raises ValueError unless `name` is one of OPTIMIZERS."""
  if name not in OPTIMIZERS:
    raise ValueError(f'optimizer={name!r} is not supported; choose one of {OPTIMIZERS}.')


def build_optimizer(name: str, learning_rate: float) -> tf.keras.optimizers.Optimizer:
  """The Keras optimizer called `name` (one of OPTIMIZERS) with `learning_rate`."""
  check_optimizer(name)
  if name == 'adagrad':
    return tf.keras.optimizers.Adagrad(learning_rate=learning_rate)
  if name == 'sgd':
    return tf.keras.optimizers.SGD(learning_rate=learning_rate)
  return tf.keras.optimizers.Adam(learning_rate=learning_rate)


def choose_configuration(configurations: Mapping[str, _Config], name: str, model: str) -> _Config:
  """Returns `configurations[name]`, the named configuration of `model` ('ranking', 'retrieval').

  Raises:
    ValueError: for an unknown name, listing the known ones.
  """
  if name not in configurations:
    raise ValueError(f'Unknown {model} configuration {name!r}; choose one of {sorted(configurations)}.')
  return configurations[name]
