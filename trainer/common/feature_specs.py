"""Describes the Transform outputs the towers can encode: which are ids, token bags or numbers, and sizes.

Derived from the Transform graph (its transformed schema and vocabulary files), never from hard-coded sizes,
so the same trainer code serves MovieLens and the network's own interactions with other `user_*`/`item_*`
columns.
"""

import dataclasses
import enum
from typing import Callable, Dict, List, Optional, Sequence, Union

import tensorflow as tf
import tensorflow_transform as tft

from schema import features
from transform import preprocessing


# A raw column's parsing spec (`tft.TFTransformOutput.raw_feature_spec`): FixedLenFeature, or VarLenFeature for a
# column the schema lets be missing (`value_count` without `shape`, e.g. item_release_year, recent_rating).
RawFeatureSpec = Union[tf.io.FixedLenFeature, tf.io.VarLenFeature]


class FeatureKind(enum.Enum):
  """How a transformed feature is encoded."""
  ID = 'id'  # one vocabulary index per row, int64 [batch]
  TOKEN_BAG = 'token_bag'  # vocabulary indices, SparseTensor int64 [batch, None]
  NUMERIC = 'numeric'  # z-scored float32 [batch]


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
  """One model input.

  Attributes:
    raw_key: the interactions column, e.g. 'item_genres'.
    kind: how it is encoded.
    input_dim: embedding table rows (vocabulary size + out-of-vocabulary buckets); 0 for numeric features.
  """
  raw_key: str
  kind: FeatureKind
  input_dim: int = 0

  @property
  def transformed_key(self) -> str:
    return features.transformed_name(self.raw_key)


@dataclasses.dataclass(frozen=True)
class TowerFeatures:
  """The inputs of a model: the user (query) side, the item (candidate) side and the interaction's context
  (context features, fed to the rating network, and context features with a per-user linear slope; only the
  ranking model reads the context)."""
  user: Sequence[FeatureSpec]
  item: Sequence[FeatureSpec]
  context: Sequence[FeatureSpec] = ()
  slopes: Sequence[FeatureSpec] = ()


def model_features(tf_transform_output: tft.TFTransformOutput,
                   user_features: Optional[Sequence[str]] = None,
                   item_features: Optional[Sequence[str]] = None,
                   context_features: Sequence[str] = (),
                   slope_features: Sequence[str] = ()) -> TowerFeatures:
  """Lists the features each tower encodes, from the Transform output.

  Args:
    tf_transform_output: the Transform graph of this pipeline run.
    user_features: raw columns the user side uses (e.g. ('user_id',)); None means `user_id` and every
      `user_*` column Transform produced.
    item_features: the same for the item side; None means `item_id` and every `item_*` column.
    context_features: context features (`features.CONTEXT_FEATURES`) the rating network reads; none by default.
    slope_features: context features whose effect is a global plus a per-user linear slope; none by default.

  Returns:
    The features of each side, ids first, then the others by name; the context and slope features as given.

  Raises:
    ValueError: if a requested column is not among the Transform outputs, or a context feature is not one.
  """
  available = available_features(tf_transform_output)
  user_keys = _select(available, user_features, features.USER_ID, features.is_user_feature, 'user_features')
  item_keys = _select(available, item_features, features.ITEM_ID, features.is_item_feature, 'item_features')
  for parameter, requested in (('context_features', context_features), ('user_slope_features', slope_features)):
    not_context = [k for k in requested if not features.is_context_feature(k)]
    if not_context:
      raise ValueError(f'{parameter} names {not_context}, which are not context features; choose from '
                       f'{list(features.CONTEXT_FEATURES)}.')
    _require_available(available, requested, parameter, features.is_context_feature)
  return TowerFeatures(user=[available[k] for k in user_keys], item=[available[k] for k in item_keys],
                       context=[available[k] for k in context_features],
                       slopes=[available[k] for k in slope_features])


def available_features(tf_transform_output: tft.TFTransformOutput) -> Dict[str, FeatureSpec]:
  """Returns a FeatureSpec per raw column Transform produced a model input for, keyed by raw column."""
  specs: Dict[str, FeatureSpec] = {}
  for transformed_key, spec in tf_transform_output.transformed_feature_spec().items():
    if not transformed_key.endswith(features.TRANSFORMED_SUFFIX):
      continue
    raw_key = features.raw_name(transformed_key)
    if raw_key == features.LABEL_KEY:
      continue
    if spec.dtype == tf.float32:
      specs[raw_key] = FeatureSpec(raw_key, FeatureKind.NUMERIC)
      continue
    vocabulary_size = tf_transform_output.vocabulary_size_by_name(features.vocabulary_name(raw_key))
    kind = FeatureKind.TOKEN_BAG if isinstance(spec, tf.io.VarLenFeature) else FeatureKind.ID
    specs[raw_key] = FeatureSpec(raw_key, kind, vocabulary_size + preprocessing.NUM_OOV_BUCKETS)
  return specs


def _select(available: Dict[str, FeatureSpec], requested: Optional[Sequence[str]], id_key: str,
            is_side_feature, parameter: str) -> List[str]:
  if requested is None:
    return [id_key] + sorted(k for k in available if is_side_feature(k))
  _require_available(available, requested, parameter, lambda k: k == id_key or is_side_feature(k))
  return list(requested)


def _require_available(available: Dict[str, FeatureSpec], requested: Sequence[str], parameter: str,
                       accepts: Callable[[str], bool]) -> None:
  """Raises ValueError, naming `parameter` and the fix, unless Transform produced every `requested` feature; the
  features listed as available are those `parameter` takes (`accepts`), not every model input."""
  missing = [k for k in requested if k not in available]
  if missing:
    raise ValueError(
        f'{parameter} names {missing}, which the Transform output does not hold; available for {parameter}: '
        f'{sorted(k for k in available if accepts(k))}. Fix the {parameter} hyperparameter or add the column to the '
        'interactions data.')
