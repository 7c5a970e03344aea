"""What the ranking and retrieval hyperparameter dataclasses share: the custom_config codec and the optimizer."""

import dataclasses
from typing import Any, Dict, Mapping, Type, TypeVar

import tensorflow as tf

OPTIMIZERS = ('adam', 'adagrad', 'sgd')

_Config = TypeVar('_Config', bound='ConfigCodec')


class ConfigCodec:
  """Mixin for frozen hyperparameter dataclasses stored in a Trainer's custom_config (JSON)."""

  def to_config(self) -> Dict[str, Any]:
    """Returns a JSON-serialisable dict (lists for tuples), the form stored in Trainer custom_config."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

  @classmethod
  def from_config(cls: Type[_Config], config: Mapping[str, Any]) -> _Config:
    """Inverse of `to_config`.

    Raises:
      ValueError: on a key that is not a field of the class, naming the known ones.
    """
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(config) - known)
    if unknown:
      raise ValueError(f'Unknown {cls.__name__} fields {unknown}; known: {sorted(known)}.')
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in config.items()})


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
