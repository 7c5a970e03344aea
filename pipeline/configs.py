"""Pipeline and environment settings: names, user-code paths and gates (plain values).

Runners own paths; model hyperparameters live in `trainer/*/hparams.py`; the data contract in `schema/`;
Beam runner arguments in `pipeline/beam_args.py`.
"""

import dataclasses
import math
import os

PIPELINE_NAME = 'woonkly-recommender'

# User code, passed to TFX as dotted paths into this installed package (no module_file wheels).
PREPROCESSING_FN = 'transform.preprocessing.preprocessing_fn'
RANKING_RUN_FN = 'trainer.ranking.run.run_fn'
RETRIEVAL_RUN_FN = 'trainer.retrieval.run.run_fn'

# Component ids (stable: ML Metadata, the run summary and the inspection CLI look components up by them).
EXAMPLE_GEN_ID = 'ImportExampleGen'
STATISTICS_GEN_ID = 'StatisticsGen'
SCHEMA_GEN_ID = 'SchemaGen'
EXAMPLE_VALIDATOR_ID = 'ExampleValidator'
ANOMALIES_GATE_ID = 'AnomaliesGate'
TRANSFORM_ID = 'Transform'
RANKING_TRAINER_ID = 'ranking_trainer'
RANKING_MODEL_RESOLVER_ID = 'latest_blessed_ranking_model_resolver'
RANKING_EVALUATOR_ID = 'ranking_evaluator'
RANKING_SEGMENT_GATE_ID = 'ranking_segment_gate'
RANKING_PUSHER_ID = 'ranking_pusher'
RETRIEVAL_TRAINER_ID = 'retrieval_trainer'
RETRIEVAL_MODEL_RESOLVER_ID = 'latest_blessed_retrieval_model_resolver'
RETRIEVAL_GATE_ID = 'retrieval_gate'
RETRIEVAL_PUSHER_ID = 'retrieval_pusher'
# Custom property naming the gate that wrote a ModelBlessing (RANKING_SEGMENT_GATE_ID or RETRIEVAL_GATE_ID). The
# Kubeflow compiler ignores a resolver's producer_component_id, so kubeflow_runner.py adds it to each resolver's
# query: otherwise either resolver could take any blessed model (the Evaluator's or the other model's).
BLESSING_GATE_KEY = 'blessing_gate'

# Layout of one output directory (the runners' --output-dir).
PREPARED_DATA_SUBDIR = 'data'
PIPELINE_ROOT_SUBDIR = 'tfx'
METADATA_FILE = 'metadata.sqlite'
SERVING_SUBDIR = 'serving'
RANKING_SERVING_SUBDIR = 'ranking'
RETRIEVAL_SERVING_SUBDIR = 'retrieval'


def is_version_name(name: str) -> bool:
  """Whether a directory name under a model's serving subdirectory is a version number: ASCII digits only, as TF
  Serving reads them (`str.isdigit` also takes digits such as '²', which `int` refuses). The Pusher and the
  servers read version names by this one rule."""
  return name.isascii() and name.isdigit()

# The curated schema of the MovieLens-shaped interactions format.
CURATED_SCHEMA_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'schema',
                                   'schema.pbtxt')


def _store_floats_as_floats(settings: object) -> None:
  """Stores each whole number given for a `float` field of the frozen dataclass `settings` as a float.

  `SegmentGate(max_margin=0)` is a valid setting, but TFX refuses an int for a component's float Parameter
  (TypeError "Expected type <class 'float'> for parameter 'max_margin' but got 0") when the pipeline is built.
  """
  for field in dataclasses.fields(settings):
    value = getattr(settings, field.name)
    if field.type is float and isinstance(value, int) and not isinstance(value, bool):
      object.__setattr__(settings, field.name, float(value))


@dataclasses.dataclass(frozen=True)
class RankingGate:
  """The Evaluator's blessing rule for the ranking model.

  Attributes:
    max_rmse: bless only if the overall eval RMSE (stars) is at most this (TFMA's upper bound is inclusive).
    max_rmse_increase: bless only if the RMSE exceeds the last blessed model's by at most this (stars).
  """
  max_rmse: float = 1.0
  max_rmse_increase: float = 0.01

  def __post_init__(self) -> None:
    _store_floats_as_floats(self)
    if not 0 < self.max_rmse < math.inf:  # refuses NaN too
      raise ValueError(f'max_rmse={self.max_rmse} must be a positive number (stars).')
    if not 0 <= self.max_rmse_increase < math.inf:
      raise ValueError(f'max_rmse_increase={self.max_rmse_increase} must be >= 0 (stars).')


@dataclasses.dataclass(frozen=True)
class RetrievalGate:
  """The retrieval gate's blessing rule (metrics on the eval split, every catalogue item ranked).

  The minimums are the retrieval targets on MovieLens 100K (popularity reaches 0.425 and 0.295); set them
  for other data with the runner's flags.

  Attributes:
    min_recall_at_100: bless only if Recall@100 with the user's training items removed reaches this.
    min_top_100_accuracy: ... and top-100 categorical accuracy (seen items kept) reaches this.
    max_decrease: ... and neither is below the last blessed retrieval model's by more than this.
    segment_min_users: user segments (one value of gender, occupation or age bucket) with fewer users that have a
      Recall@100 are reported only.
    segment_max_shortfall: ... and no larger segment's Recall@100 is below the overall Recall@100 by more than
      this. Opt-in: 1 (the default) refuses nothing, since a recall is in [0, 1]; on the canonical MovieLens split
      the default model's largest shortfall over segments of 50 users is 0.05 (docs/retrieval.md).
  """
  min_recall_at_100: float = 0.55
  min_top_100_accuracy: float = 0.30
  max_decrease: float = 0.01
  segment_min_users: int = 50
  segment_max_shortfall: float = 1.0

  def __post_init__(self) -> None:
    _store_floats_as_floats(self)
    for name in ('min_recall_at_100', 'min_top_100_accuracy'):
      if not 0.0 <= getattr(self, name) <= 1.0:
        raise ValueError(f'{name}={getattr(self, name)} must be in [0, 1].')
    if not 0.0 <= self.max_decrease <= 1.0:
      raise ValueError(f'max_decrease={self.max_decrease} must be in [0, 1].')
    if not 0.0 <= self.segment_max_shortfall <= 1.0:  # refuses NaN too
      raise ValueError(f'segment_max_shortfall={self.segment_max_shortfall} must be in [0, 1] (1 gates no '
                       'segment).')
    if isinstance(self.segment_min_users, bool) or not isinstance(self.segment_min_users, int) or (
        self.segment_min_users < 1):
      raise ValueError(f'segment_min_users={self.segment_min_users!r} must be a whole number >= 1, e.g. 50.')


@dataclasses.dataclass(frozen=True)
class SegmentGate:
  """The objective segmentation rule for the ranking model (applied after the Evaluator's overall gate).

  Attributes:
    min_examples: segments (one value of a slicing column) with fewer evaluation examples are reported only.
    max_margin: bless only if no gated segment's RMSE is above the overall RMSE by more than this (stars).
    max_regression: ... and none is above the last blessed model's RMSE on that segment by more than this.
    margin_standard_errors: z: a segment's margin less z standard errors of its RMSE is what must stay within
      max_margin (a segment is refused only when sampling noise does not explain its excess); 0 is the plain
      margin, the issue's rule.
  """
  min_examples: int = 500
  max_margin: float = 0.08
  max_regression: float = 0.02
  margin_standard_errors: float = 0.0

  def __post_init__(self) -> None:
    _store_floats_as_floats(self)
    if self.min_examples < 1:
      raise ValueError(f'min_examples={self.min_examples} must be a positive number of evaluation examples.')
    if not 0 <= self.max_margin < math.inf:  # refuses NaN too
      raise ValueError(f'max_margin={self.max_margin} must be >= 0 (stars).')
    if not 0 <= self.max_regression < math.inf:
      raise ValueError(f'max_regression={self.max_regression} must be >= 0 (stars).')
    if not 0 <= self.margin_standard_errors < math.inf:
      raise ValueError(f'margin_standard_errors={self.margin_standard_errors} must be >= 0 (standard errors of a '
                       'segment\'s RMSE), e.g. 2; 0 judges the plain margin.')
