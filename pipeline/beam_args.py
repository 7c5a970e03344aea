"""Beam runner arguments of the pipeline's data components: local DirectRunner, Dataflow, Flink and Spark.

ImportExampleGen, StatisticsGen, Transform and Evaluator run their data processing as Apache Beam pipelines;
TFX hands every component the same `beam_pipeline_args`. This module is the one place those arguments are
built, for each runner the pipeline supports:

- DirectRunner (`direct`): in the process that runs the component (this machine, or the component's pod on
  Kubeflow). `in_memory` runs bundles in the process; `multi_processing` starts worker processes
  (`--direct_num_workers=0`: one per core). Local runs choose by data size (`local_beam_pipeline_args`):
  measured on MovieLens 100K (100K rows) on 2 cores, the whole ranking pipeline took 190 s multi-process
  against 120 s in memory (user CPU 5 min vs 2.5 min): worker start-up and pickling cost more than the
  parallelism saves at that size, so multi-processing starts at `MULTI_PROCESSING_MIN_ROWS`.
- DataflowRunner (`dataflow`): Google Cloud Dataflow in `project`/`region`, staging through a `gs://` temp
  location. Workers run the pipeline image itself (`--sdk_container_image`), which has the Beam SDK boot
  entrypoint and this package installed, so `preprocessing_fn` imports on the workers too.
- FlinkRunner (`flink`): a Flink cluster's REST endpoint (`--flink_master=http://host:8081`). The pipeline is
  submitted as an uber jar (`--flink_submit_uber_jar`), so the component's container needs no Java job
  server. The Python user code runs in an SDK environment: DOCKER (the pipeline image, started by each task
  manager) or EXTERNAL (a Beam worker pool, e.g. a sidecar at localhost:50000).
- SparkRunner (`spark`): either a Beam Spark job server already running in the cluster (`--job_endpoint`,
  submitted with PortableRunner), or a Spark master plus its REST endpoint for uber-jar submission. Same SDK
  environments as Flink.
"""

import argparse
import dataclasses
from typing import Any, List, Optional, Sequence, Tuple

DIRECT = 'direct'
DATAFLOW = 'dataflow'
FLINK = 'flink'
SPARK = 'spark'
BEAM_RUNNERS = (DIRECT, DATAFLOW, FLINK, SPARK)

IN_MEMORY = 'in_memory'
MULTI_PROCESSING = 'multi_processing'
DIRECT_RUNNING_MODES = (IN_MEMORY, MULTI_PROCESSING)

# Above this many interactions a local DirectRunner uses one worker process per core; below it the in-memory
# mode is faster (see the module docstring for the measurement).
MULTI_PROCESSING_MIN_ROWS = 2_000_000

# How a portable runner (Flink, Spark) starts the Python SDK workers that run the user code.
DOCKER_ENVIRONMENT = 'DOCKER'
EXTERNAL_ENVIRONMENT = 'EXTERNAL'
PORTABLE_ENVIRONMENT_TYPES = (DOCKER_ENVIRONMENT, EXTERNAL_ENVIRONMENT)


def _require(settings: Sequence[Tuple[str, Any, str]], runner: str) -> None:
  """Raises ValueError naming every (flag, value, meaning) whose value is empty."""
  missing = [f'{flag} ({meaning})' for flag, value, meaning in settings if not value]
  if missing:
    raise ValueError(f'{runner} needs ' + ', '.join(missing) + '. Pass them on the command line.')


@dataclasses.dataclass(frozen=True)
class DirectRunnerSettings:
  """Beam's DirectRunner in the process that runs each component.

  Attributes:
    running_mode: `in_memory` (bundles in this process) or `multi_processing` (worker processes).
    num_workers: worker processes for `multi_processing`; 0 means one per core. Must be 0 in memory.
  """
  running_mode: str = IN_MEMORY
  num_workers: int = 0

  def __post_init__(self) -> None:
    if self.running_mode not in DIRECT_RUNNING_MODES:
      raise ValueError(f'--direct-running-mode={self.running_mode!r} is not one of {DIRECT_RUNNING_MODES}.')
    if self.num_workers < 0:
      raise ValueError(f'--direct-num-workers={self.num_workers} must be >= 0 (0: one per core).')
    if self.running_mode == IN_MEMORY and self.num_workers:
      raise ValueError(f'--direct-num-workers={self.num_workers} has no effect with --direct-running-mode='
                       f'{IN_MEMORY} (one process); add --direct-running-mode={MULTI_PROCESSING}, or drop it.')

  def beam_pipeline_args(self) -> List[str]:
    """The DirectRunner's command-line arguments."""
    num_workers = 1 if self.running_mode == IN_MEMORY else self.num_workers
    return ['--runner=DirectRunner', f'--direct_running_mode={self.running_mode}',
            f'--direct_num_workers={num_workers}']


def local_beam_pipeline_args(num_rows: int) -> List[str]:
  """DirectRunner arguments for a local run over `num_rows` interactions (in memory below 2M rows).

  Args:
    num_rows: interactions the run processes (train + eval).

  Returns:
    Multi-process arguments (one worker per core) from `MULTI_PROCESSING_MIN_ROWS` rows on; below, no
    arguments (Beam's default, the in-memory DirectRunner).
  """
  if num_rows >= MULTI_PROCESSING_MIN_ROWS:
    return DirectRunnerSettings(running_mode=MULTI_PROCESSING, num_workers=0).beam_pipeline_args()
  # No arguments at all: Beam's default is this very DirectRunner in memory, and TFX packages its own
  # installation into an sdist for every Beam component whenever beam_pipeline_args is non-empty (to ship
  # it to remote workers; ~10 s each here, measured), which a local in-process run does not need.
  return []


@dataclasses.dataclass(frozen=True)
class DataflowSettings:
  """Google Cloud Dataflow.

  Attributes:
    project: the GCP project the Dataflow jobs run (and are billed) in.
    region: the Dataflow regional endpoint, e.g. `europe-west1`.
    temp_location: a `gs://` path for temporary files and, unless `staging_location` is set, staging.
    sdk_container_image: the worker image: the pipeline image (Beam boot entrypoint + this package).
    staging_location: a `gs://` path for staged files; None uses `temp_location`.
    max_num_workers: the autoscaling ceiling (workers); None leaves it to Dataflow.
    machine_type: the worker machine type, e.g. `n1-standard-4`; None leaves it to Dataflow.
    service_account_email: the workers' service account; None uses the project's default.
  """
  project: str
  region: str
  temp_location: str
  sdk_container_image: str
  staging_location: Optional[str] = None
  max_num_workers: Optional[int] = None
  machine_type: Optional[str] = None
  service_account_email: Optional[str] = None

  def __post_init__(self) -> None:
    _require([('--dataflow-project', self.project, 'the GCP project'),
              ('--dataflow-region', self.region, 'the Dataflow region, e.g. europe-west1'),
              ('--dataflow-temp-location', self.temp_location, 'a gs:// path for temporary files'),
              ('--image', self.sdk_container_image, 'the worker image')], 'DataflowRunner')
    for flag, location in (('--dataflow-temp-location', self.temp_location),
                           ('--dataflow-staging-location', self.staging_location)):
      if location and not location.startswith('gs://'):
        raise ValueError(f'{flag}={location!r} must be a gs:// path: Dataflow workers cannot read local '
                         'files. Use e.g. gs://<bucket>/dataflow/tmp.')
    if self.max_num_workers is not None and self.max_num_workers < 1:
      raise ValueError(f'--dataflow-max-num-workers={self.max_num_workers} must be >= 1.')

  def beam_pipeline_args(self) -> List[str]:
    """The DataflowRunner's command-line arguments."""
    args = ['--runner=DataflowRunner', f'--project={self.project}', f'--region={self.region}',
            f'--temp_location={self.temp_location}', f'--sdk_container_image={self.sdk_container_image}',
            # The SDK is already installed in the image: don't stage a tarball of it.
            '--sdk_location=container']
    optional = (('staging_location', self.staging_location), ('max_num_workers', self.max_num_workers),
                ('machine_type', self.machine_type), ('service_account_email', self.service_account_email))
    return args + [f'--{name}={value}' for name, value in optional if value is not None]


@dataclasses.dataclass(frozen=True)
class PortableEnvironment:
  """Where a portable runner (Flink, Spark) runs the Python SDK workers that execute the user code.

  Attributes:
    environment_type: DOCKER (each task manager starts `config`, an image) or EXTERNAL (an already running
      Beam worker pool at `config`, host:port, e.g. a sidecar container at localhost:50000).
    config: the image (DOCKER) or the worker pool's address (EXTERNAL).
  """
  environment_type: str
  config: str

  def __post_init__(self) -> None:
    if self.environment_type not in PORTABLE_ENVIRONMENT_TYPES:
      raise ValueError(f'--beam-environment-type={self.environment_type!r} is not one of '
                       f'{PORTABLE_ENVIRONMENT_TYPES}.')
    what = 'the SDK image' if self.environment_type == DOCKER_ENVIRONMENT else 'the worker pool host:port'
    _require([('--beam-environment-config', self.config, what)],
             f'The {self.environment_type} SDK environment')

  def beam_pipeline_args(self) -> List[str]:
    """The portable environment's command-line arguments."""
    return [f'--environment_type={self.environment_type}', f'--environment_config={self.config}']


@dataclasses.dataclass(frozen=True)
class FlinkSettings:
  """Apache Flink, submitted as an uber jar to the cluster's REST endpoint.

  Attributes:
    flink_master: the Flink REST endpoint, e.g. `http://flink-jobmanager:8081`.
    environment: where the Python user code runs.
    parallelism: the job's parallelism; None uses the cluster's default.
    flink_version: the cluster's Flink major.minor version (e.g. `1.18`); None uses Beam's newest.
  """
  flink_master: str
  environment: PortableEnvironment
  parallelism: Optional[int] = None
  flink_version: Optional[str] = None

  def __post_init__(self) -> None:
    _require([('--flink-master', self.flink_master, 'the Flink REST endpoint, e.g. http://host:8081')],
             'FlinkRunner')
    if self.parallelism is not None and self.parallelism < 1:
      raise ValueError(f'--flink-parallelism={self.parallelism} must be >= 1.')

  def beam_pipeline_args(self) -> List[str]:
    """The FlinkRunner's command-line arguments."""
    args = ['--runner=FlinkRunner', f'--flink_master={self.flink_master}', '--flink_submit_uber_jar']
    if self.flink_version:
      args.append(f'--flink_version={self.flink_version}')
    if self.parallelism is not None:
      args.append(f'--parallelism={self.parallelism}')
    return args + self.environment.beam_pipeline_args()


@dataclasses.dataclass(frozen=True)
class SparkSettings:
  """Apache Spark: a Beam Spark job server (`job_endpoint`), or a master plus REST endpoint (uber jar).

  Attributes:
    environment: where the Python user code runs.
    job_endpoint: a running Beam Spark job server, host:port (e.g. `spark-beam-jobserver:8099`).
    master_url: the Spark master, e.g. `spark://spark-master:7077` (with `rest_url`, instead of a job server).
    rest_url: the master's REST submission endpoint, e.g. `http://spark-master:6066`.
  """
  environment: PortableEnvironment
  job_endpoint: Optional[str] = None
  master_url: Optional[str] = None
  rest_url: Optional[str] = None

  def __post_init__(self) -> None:
    if self.job_endpoint and (self.master_url or self.rest_url):
      raise ValueError('SparkRunner takes either --spark-job-endpoint or --spark-master-url with '
                       '--spark-rest-url, not both.')
    if not self.job_endpoint:
      _require([('--spark-master-url', self.master_url, 'e.g. spark://host:7077'),
                ('--spark-rest-url', self.rest_url, 'e.g. http://host:6066')],
               'SparkRunner without --spark-job-endpoint')

  def beam_pipeline_args(self) -> List[str]:
    """The Spark runner's command-line arguments."""
    if self.job_endpoint:
      args = ['--runner=PortableRunner', f'--job_endpoint={self.job_endpoint}']
    else:
      args = ['--runner=SparkRunner', f'--spark_master_url={self.master_url}', '--spark_submit_uber_jar',
              f'--spark_rest_url={self.rest_url}']
    return args + self.environment.beam_pipeline_args()


def add_beam_flags(parser: argparse.ArgumentParser) -> None:
  """Adds --beam-runner and each runner's settings to `parser`."""
  group = parser.add_argument_group('Beam runner (the data components: ExampleGen, StatisticsGen, Transform, '
                                    'Evaluator)')
  group.add_argument('--beam-runner', default=DIRECT, choices=BEAM_RUNNERS,
                     help='direct: inside each component\'s pod; dataflow: Google Cloud Dataflow; '
                     'flink / spark: a Flink or Spark cluster. Default: %(default)s.')
  group.add_argument('--beam-arg', action='append', default=[], metavar='--NAME=VALUE',
                     help='An extra Beam pipeline argument, appended after the runner\'s own (repeatable), '
                     'e.g. --beam-arg=--experiments=use_runner_v2. One that sets an option the runner\'s own '
                     'arguments set (--runner, --project, ...) is refused: use --beam-runner or the dedicated '
                     'flag.')
  group.add_argument('--direct-running-mode', default=IN_MEMORY, choices=DIRECT_RUNNING_MODES,
                     help='direct: in_memory, or multi_processing from about %d rows on.'
                     % MULTI_PROCESSING_MIN_ROWS)
  group.add_argument('--direct-num-workers', type=int, default=0,
                     help='direct, multi_processing: worker processes (0: one per core of the pod).')
  group.add_argument('--dataflow-project', help='dataflow (required): the GCP project.')
  group.add_argument('--dataflow-region', help='dataflow (required): the region, e.g. europe-west1.')
  group.add_argument('--dataflow-temp-location', help='dataflow (required): gs:// path for temporary files.')
  group.add_argument('--dataflow-staging-location', help='dataflow: gs:// path for staged files.')
  group.add_argument('--dataflow-max-num-workers', type=int, help='dataflow: autoscaling ceiling.')
  group.add_argument('--dataflow-machine-type', help='dataflow: worker machine type, e.g. n1-standard-4.')
  group.add_argument('--dataflow-service-account', help='dataflow: the workers\' service account email.')
  group.add_argument('--flink-master', help='flink (required): the Flink REST endpoint, e.g. http://host:8081.')
  group.add_argument('--flink-parallelism', type=int, help='flink: the job\'s parallelism.')
  group.add_argument('--flink-version', help='flink: the cluster\'s Flink version, e.g. 1.18.')
  group.add_argument('--spark-job-endpoint', help='spark: a running Beam Spark job server, host:8099.')
  group.add_argument('--spark-master-url', help='spark without a job server: spark://host:7077.')
  group.add_argument('--spark-rest-url', help='spark without a job server: the REST endpoint, http://host:6066.')
  group.add_argument('--beam-environment-type', default=DOCKER_ENVIRONMENT, choices=PORTABLE_ENVIRONMENT_TYPES,
                     help='flink/spark: DOCKER runs the SDK workers from an image (default: --image); '
                     'EXTERNAL uses a running Beam worker pool.')
  group.add_argument('--beam-environment-config',
                     help='flink/spark: the SDK image (DOCKER, default --image) or the worker pool\'s '
                     'host:port (EXTERNAL, e.g. localhost:50000).')


def beam_pipeline_args_from_flags(args: argparse.Namespace, *, image: str) -> List[str]:
  """The Beam arguments of the runner chosen on the command line.

  Args:
    args: flags parsed by a parser that `add_beam_flags` extended.
    image: the pipeline image, used by Dataflow workers and by DOCKER SDK environments.

  Returns:
    The runner's arguments followed by the extra `--beam-arg` values.

  Raises:
    ValueError: a required setting of the chosen runner is missing or invalid (the message names the flag), a
      setting has no effect (`--direct-num-workers` in memory, a setting of another runner), a `--beam-arg`
      is not an option (Beam would drop it with only a warning in a component's log), or a `--beam-arg` sets
      an option the runner's own arguments already set (e.g. `--runner`; Beam keeps the last value, so it
      would silently override `--beam-runner` or the dedicated flag).
  """
  extra = _extra_beam_args(args.beam_arg)
  _refuse_other_runners_settings(args)
  if args.beam_runner == DIRECT:
    settings = DirectRunnerSettings(running_mode=args.direct_running_mode, num_workers=args.direct_num_workers)
  elif args.beam_runner == DATAFLOW:
    settings = DataflowSettings(
        project=args.dataflow_project, region=args.dataflow_region, temp_location=args.dataflow_temp_location,
        sdk_container_image=image, staging_location=args.dataflow_staging_location,
        max_num_workers=args.dataflow_max_num_workers, machine_type=args.dataflow_machine_type,
        service_account_email=args.dataflow_service_account)
  else:
    default_config = image if args.beam_environment_type == DOCKER_ENVIRONMENT else None
    environment = PortableEnvironment(environment_type=args.beam_environment_type,
                                      config=args.beam_environment_config or default_config)
    if args.beam_runner == FLINK:
      settings = FlinkSettings(flink_master=args.flink_master, environment=environment,
                               parallelism=args.flink_parallelism, flink_version=args.flink_version)
    elif args.beam_runner == SPARK:
      settings = SparkSettings(environment=environment, job_endpoint=args.spark_job_endpoint,
                               master_url=args.spark_master_url, rest_url=args.spark_rest_url)
    else:
      raise ValueError(f'--beam-runner={args.beam_runner!r} is not one of {BEAM_RUNNERS}.')
  runner_args = settings.beam_pipeline_args()
  _refuse_overrides(extra, runner_args, args.beam_runner)
  return runner_args + extra


# Per runner: (flag, flags attribute, default) of each setting only that runner reads.
_RUNNER_SETTINGS = {
    DIRECT: (('--direct-running-mode', 'direct_running_mode', IN_MEMORY),
             ('--direct-num-workers', 'direct_num_workers', 0)),
    DATAFLOW: tuple((f'--dataflow-{name}', f'dataflow_{name}'.replace('-', '_'), None) for name in (
        'project', 'region', 'temp-location', 'staging-location', 'max-num-workers', 'machine-type',
        'service-account')),
    FLINK: tuple((f'--flink-{name}', f'flink_{name}', None) for name in ('master', 'parallelism', 'version')),
    SPARK: tuple((f'--spark-{name}', f'spark_{name}'.replace('-', '_'), None) for name in (
        'job-endpoint', 'master-url', 'rest-url')),
}
_PORTABLE_SETTINGS = (('--beam-environment-type', 'beam_environment_type', DOCKER_ENVIRONMENT),
                      ('--beam-environment-config', 'beam_environment_config', None))


def _refuse_other_runners_settings(args: argparse.Namespace) -> None:
  """Raises ValueError naming the first setting given for a runner other than `--beam-runner`'s (it would be
  ignored, e.g. `--dataflow-project` without `--beam-runner dataflow` runs the DirectRunner)."""
  for runner, settings in _RUNNER_SETTINGS.items():
    if runner != args.beam_runner:
      for flag, name, default in settings:
        if getattr(args, name) != default:
          raise ValueError(f'{flag} is a {runner} setting, which --beam-runner={args.beam_runner} ignores; add '
                           f'--beam-runner={runner}, or drop {flag}.')
  if args.beam_runner not in (FLINK, SPARK):
    for flag, name, default in _PORTABLE_SETTINGS:
      if getattr(args, name) != default:
        raise ValueError(f'{flag} is a flink/spark setting, which --beam-runner={args.beam_runner} ignores; add '
                         '--beam-runner=flink or spark, or drop it.')


def _extra_beam_args(values: Sequence[str]) -> List[str]:
  """The `--beam-arg` values, each an option (`--name=value`, `--name`) or the value of the `--name` before it.

  Raises:
    ValueError: naming the first value that is neither: Beam's option parser would discard it with a warning
      ("Unknown pipeline options received") and the run would go on without the setting.
  """
  for i, value in enumerate(values):
    is_option = value.startswith('-') and value.strip('-') != ''
    previous = values[i - 1] if i else ''
    is_previous_value = previous.startswith('--') and '=' not in previous and not value.startswith('-')
    if not (is_option or is_previous_value):
      raise ValueError(f'--beam-arg={value!r} is not a Beam pipeline option, and Beam would ignore it: write '
                       'each as --beam-arg=--NAME=VALUE, e.g. --beam-arg=--experiments=use_runner_v2.')
  return list(values)


# Beam's option names (without the leading `--`) that the runners' own arguments set, each with the flag of this
# module that sets it (None: the runner always sets it, from no flag). `aliases` are Beam's other names of an
# option (same argparse destination).
_DEDICATED_FLAGS = {
    'runner': '--beam-runner',
    'direct_running_mode': '--direct-running-mode',
    'direct_num_workers': '--direct-num-workers',
    'project': '--dataflow-project',
    'region': '--dataflow-region',
    'temp_location': '--dataflow-temp-location',
    'staging_location': '--dataflow-staging-location',
    'max_num_workers': '--dataflow-max-num-workers',
    'machine_type': '--dataflow-machine-type',
    'service_account_email': '--dataflow-service-account',
    'sdk_container_image': '--image',
    'sdk_location': None,
    'flink_master': '--flink-master',
    'flink_version': '--flink-version',
    'parallelism': '--flink-parallelism',
    'flink_submit_uber_jar': None,
    'job_endpoint': '--spark-job-endpoint',
    'spark_master_url': '--spark-master-url',
    'spark_rest_url': '--spark-rest-url',
    'spark_submit_uber_jar': None,
    'environment_type': '--beam-environment-type',
    'environment_config': '--beam-environment-config',
}
_BEAM_ALIASES = {'machine_type': ('worker_machine_type',)}


def _option_name(argument: str) -> str:
  """`--name=value` or `--name` -> `name`."""
  return argument.split('=', 1)[0].lstrip('-')


def _refuse_overrides(extra: Sequence[str], runner_args: Sequence[str], runner: str) -> None:
  """Raises ValueError naming the first `--beam-arg` that sets an option `runner_args` already set.

  Beam parses the arguments with argparse, which keeps the last value of a repeated option and takes a unique
  prefix of an option name as that option (`--runn=FlinkRunner` is `--runner=FlinkRunner`). Extra arguments
  come after the runner's, so such a `--beam-arg` would silently replace the runner (or a dedicated flag's
  value) and the pipeline would run elsewhere, or differently, than the flags say.

  Args:
    extra: the `--beam-arg` values (options, or the value of the option before).
    runner_args: the chosen runner's own arguments (`--name=value` or `--name`).
    runner: the `--beam-runner` value, for the message.

  Raises:
    ValueError: naming the `--beam-arg`, the option it sets, its value in the runner's arguments, and the flag
      to use instead.
  """
  set_by_runner = {_option_name(argument): argument for argument in runner_args}
  for value in extra:
    if not value.startswith('--'):
      continue  # The value of the option before (checked with it), or a single-dash flag Beam discards.
    name = _option_name(value)
    if not name:
      continue  # `--=x`: no option at all.
    for option, argument in set_by_runner.items():
      if any(alias.startswith(name) for alias in (option,) + _BEAM_ALIASES.get(option, ())):
        dedicated = _DEDICATED_FLAGS.get(option)
        fix = f'Use {dedicated} instead.' if dedicated else f'Drop it: --beam-runner={runner} always sets it.'
        raise ValueError(f'--beam-arg={value!r} sets Beam\'s --{option}, which --beam-runner={runner} already '
                         f'sets ({argument}); as the later value it would silently override it. {fix}')
