"""Compiles the recommender pipeline into a Kubeflow Pipelines v2 PipelineSpec (YAML), without any cluster.

The spec runs on a KFP 2 cluster or on Vertex AI Pipelines (see docs/kubeflow.md). It is the same
`pipeline.pipeline.create_pipeline(...)` the local runner runs; every component runs in --image, the pipeline
image the Dockerfile builds (locked dependencies + this package, so the dotted user-code paths import there).

  python kubeflow_runner.py --image europe-docker.pkg.dev/my-project/woonkly/pipeline:0.1.0 \\
      --pipeline-root gs://my-bucket/woonkly/root --data-root gs://my-bucket/woonkly/data \\
      --serving-dir gs://my-bucket/woonkly/serving \\
      --beam-runner dataflow --dataflow-project my-project --dataflow-region europe-west1 \\
      --dataflow-temp-location gs://my-bucket/woonkly/dataflow-tmp

--data-root holds the prepared train/ and eval/ tf.Example TFRecord files (ingestion.prepare writes them).
"""

from pipeline import environment

environment.use_legacy_keras()

# pylint: disable=g-import-not-at-top,wrong-import-position
import argparse
import hashlib
import importlib.resources
import os
import posixpath
import re
import sys
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

from absl import logging

from pipeline import beam_args, configs, run_config

if TYPE_CHECKING:
  from tfx import v1 as tfx

DEFAULT_OUTPUT = 'woonkly_pipeline.yaml'

# Where the Dockerfile installs the locked environment and this package (its UV_PROJECT_ENVIRONMENT); files
# bundled with the package (the curated schema) are read from there inside the container.
IMAGE_VENV = '/opt/venv'
IMAGE_SITE_PACKAGES = f'{IMAGE_VENV}/lib/python3.10/site-packages'

# The pipeline names KFP 2 and Vertex AI accept (TFX's KubeflowV2DagRunner refuses others when compiling).
PIPELINE_NAME_PATTERN = r'[a-z0-9][a-z0-9-]{0,127}'

SCHEMA_PACKAGE = 'schema'
SCHEMA_FILE = 'schema.pbtxt'
# The input parameter that puts the schema's sha256 into ImportSchemaGen's task (`key_schema_import_by_content`).
SCHEMA_SHA256_PARAMETER = 'schema_sha256'


def schema_sha256(schema: Optional[str]) -> Optional[str]:
  """The sha256 (hex) of the schema file the compiled pipeline imports, when it can be read here.

  The default (`--schema` not given) is the schema bundled with the installed package, the same bytes as the
  image's (built from this tree); a `--schema` that is a file on this machine is read too. None for a path only the
  image or the pods see, or a gs:// URI.
  """
  if schema is None:
    content = importlib.resources.files(SCHEMA_PACKAGE).joinpath(SCHEMA_FILE).read_bytes()
  elif os.path.isfile(schema):
    with open(schema, 'rb') as f:
      content = f.read()
  else:
    return None
  return hashlib.sha256(content).hexdigest()


def key_schema_import_by_content(spec: Dict[str, Any], sha256: str) -> None:
  """Adds the schema's sha256 as an input parameter of ImportSchemaGen's task in a compiled PipelineSpec (in place).

  ImportSchemaGen gets the schema by path, and KFP's and Vertex AI's cache key holds a task's input parameters, not
  the files they name: a schema edited at the same path (or rebuilt into an image with the same tag) would be
  served from the cache, the pipeline validating and transforming against the schema imported before (what
  local_runner.py avoids by importing a content-named copy). With its sha256 among the inputs, an edited schema
  makes a new cache key; an unchanged one keeps it. ImportSchemaGen's executor reads only `schema_file` and ignores
  the extra execution property.

  Raises:
    RuntimeError: if the spec has no ImportSchemaGen task with a `schema_file` parameter (a TFX upgrade moved it).
  """
  task = spec.get('root', {}).get('dag', {}).get('tasks', {}).get(configs.SCHEMA_GEN_ID, {})
  parameters = task.get('inputs', {}).get('parameters', {})
  component = spec.get('components', {}).get(task.get('componentRef', {}).get('name', ''), {})
  definitions = component.get('inputDefinitions', {}).get('parameters', {})
  if 'schema_file' not in parameters or 'schema_file' not in definitions:
    raise RuntimeError(f'The compiled spec has no {configs.SCHEMA_GEN_ID} task with a schema_file parameter; the TFX '
                       'compiler changed: update kubeflow_runner.key_schema_import_by_content.')
  definitions[SCHEMA_SHA256_PARAMETER] = {'parameterType': 'STRING'}
  parameters[SCHEMA_SHA256_PARAMETER] = {'runtimeValue': {'constant': sha256}}


def image_schema_path() -> str:
  """The bundled curated schema's path inside the pipeline image.

  The schema is package data of the installed `schema` package; its place relative to the packages' root
  is the same in this installation and in the image's site-packages.

  Returns:
    e.g. `/opt/venv/lib/python3.10/site-packages/schema/schema.pbtxt`.

  Raises:
    FileNotFoundError: the installed `schema` package has no schema.pbtxt (package-data missing).
  """
  bundled = importlib.resources.files(SCHEMA_PACKAGE).joinpath(SCHEMA_FILE)
  if not bundled.is_file():
    raise FileNotFoundError(
        f'The installed {SCHEMA_PACKAGE!r} package has no {SCHEMA_FILE} ({bundled}). Reinstall the package '
        '(uv sync); pyproject.toml must list it under [tool.setuptools.package-data].')
  return posixpath.join(IMAGE_SITE_PACKAGES, SCHEMA_PACKAGE, SCHEMA_FILE)


def schema_columns(schema: Optional[str]) -> Optional[List[str]]:
  """The columns of the schema the compiled pipeline validates its examples against, when it can be read here.

  The default (`--schema` not given) is the schema bundled with the installed package, the same file as the
  image's; a `--schema` that is a file on this machine is read too. A path only the image or the pods see (or a
  gs:// URI) cannot be read here: None.

  Raises:
    ValueError: naming `--schema`, if the file cannot be read as text (e.g. a binary schema.pb) or is no Schema
      text proto (`pipeline.run_config.read_schema`).
  """
  if schema is None:
    from google.protobuf import text_format  # pylint: disable=g-import-not-at-top
    from tensorflow_metadata.proto.v0 import schema_pb2  # pylint: disable=g-import-not-at-top
    text = importlib.resources.files(SCHEMA_PACKAGE).joinpath(SCHEMA_FILE).read_text(encoding='utf-8')
    parsed = text_format.Parse(text, schema_pb2.Schema())
  elif os.path.isfile(schema):
    parsed = run_config.read_schema(schema)
  else:
    return None
  return [feature.name for feature in parsed.feature]


def check_model_inputs(args: argparse.Namespace) -> None:
  """Refuses, before compiling, hyperparameters naming features that the schema's columns do not give the models
  (as `local_runner.py` refuses them against the prepared data): on the cluster the Trainer would fail only after
  ExampleGen, StatisticsGen and Transform ran.

  Raises:
    ValueError: naming the flag and the feature (`pipeline.run_config.check_model_inputs`).
  """
  columns = schema_columns(args.schema)
  if columns is None:
    logging.warning('--schema %s cannot be read on this machine: the hyperparameters\' feature names are checked '
                    'only when the Trainers run.', args.schema)
    return
  run_config.check_model_inputs(args, run_config.model_settings(args), columns)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
  """Parses the command line; invalid values exit with a message naming the flag."""
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--image', required=True,
                      help='The pipeline image every component runs in (built from the Dockerfile), '
                      'e.g. europe-docker.pkg.dev/<project>/<repo>/pipeline:<tag>.')
  parser.add_argument('--pipeline-root', required=True,
                      help='Where component outputs are written, readable and writable by every pod, '
                      'e.g. gs://<bucket>/woonkly/root (written as the spec\'s defaultPipelineRoot).')
  parser.add_argument('--data-root', required=True,
                      help='Directory holding the prepared train/ and eval/ tf.Example TFRecord files '
                      '(ingestion.prepare output), e.g. gs://<bucket>/woonkly/data.')
  parser.add_argument('--serving-dir', required=True,
                      help='Push destination: blessed models go to <serving-dir>/ranking/<version>/, '
                      'e.g. gs://<bucket>/woonkly/serving.')
  parser.add_argument('--schema', default=None,
                      help='Curated schema.pbtxt, as a path readable inside the image (or a gs:// URI). '
                      'Default: the schema bundled with the installed package, '
                      f'{IMAGE_SITE_PACKAGES}/{SCHEMA_PACKAGE}/{SCHEMA_FILE}.')
  parser.add_argument('--pipeline-name', default=configs.PIPELINE_NAME, help='Default: %(default)s.')
  parser.add_argument('--disable-cache', action='store_true',
                      help='Run every component even when its inputs and settings did not change.')
  parser.add_argument('--output', default=DEFAULT_OUTPUT,
                      help='The PipelineSpec file to write (.yaml). Default: %(default)s.')
  beam_args.add_beam_flags(parser)
  run_config.add_model_flags(parser)
  args = parser.parse_args(argv)
  for flag, location in (('--pipeline-root', args.pipeline_root), ('--data-root', args.data_root),
                         ('--serving-dir', args.serving_dir), ('--schema', args.schema)):
    if location is not None and not (location.startswith('/') or '://' in location):
      parser.error(f'{flag}={location!r} must be a URI (gs://...) or an absolute path that the pods see; '
                   'a relative path would resolve inside each container.')
  if not args.image or any(c.isspace() for c in args.image):
    # An empty one would compile with TFX's default image, gcr.io/tfx-oss-public/tfx, which lacks this package.
    parser.error(f'--image={args.image!r} is not an image reference; pass the pipeline image built from the '
                 'Dockerfile, e.g. europe-docker.pkg.dev/<project>/<repo>/pipeline:<tag> (an empty shell variable?).')
  if not re.fullmatch(PIPELINE_NAME_PATTERN, args.pipeline_name):
    parser.error(f'--pipeline-name={args.pipeline_name!r} is not a name KFP accepts: lowercase letters, digits and '
                 f"'-', starting with a letter or digit, at most 128 characters ({PIPELINE_NAME_PATTERN}); "
                 f'e.g. {configs.PIPELINE_NAME}.')
  if not args.output.endswith(('.yaml', '.yml')):
    parser.error(f'--output={args.output!r} must end in .yaml: KFP 2 and Vertex AI take a YAML PipelineSpec.')
  return args


def build_pipeline(args: argparse.Namespace, beam_pipeline_args: List[str]) -> 'tfx.dsl.Pipeline':
  """The recommender pipeline with Kubeflow's paths and settings (no ML Metadata config: KFP owns it).

  Args:
    args: the parsed command line.
    beam_pipeline_args: the chosen Beam runner's arguments (`beam_args.beam_pipeline_args_from_flags`).

  Returns:
    The `tfx.dsl.Pipeline` that `compile_pipeline` turns into a spec.
  """
  from pipeline import pipeline as pipeline_lib

  return pipeline_lib.create_pipeline(
      pipeline_name=args.pipeline_name,
      pipeline_root=args.pipeline_root,
      examples_dir=args.data_root,
      serving_dir=args.serving_dir,
      **run_config.model_settings(args),
      schema_path=args.schema or image_schema_path(),
      metadata_connection_config=None,
      beam_pipeline_args=beam_pipeline_args,
      enable_cache=not args.disable_cache,
  )


def compile_pipeline(tfx_pipeline: 'tfx.dsl.Pipeline', *, image: str, output_path: str,
                     schema_digest: Optional[str] = None) -> Dict[str, Any]:
  """Compiles `tfx_pipeline` with KubeflowV2DagRunner and writes its PipelineSpec as YAML.

  TFX writes only the PipelineSpec to a .yaml file, which drops the pipeline root (it lives in the
  PipelineJob's runtime config). This writes the same PipelineSpec with `defaultPipelineRoot` set, so a run
  started from the file writes under --pipeline-root unless the submitter overrides it.

  Args:
    tfx_pipeline: the pipeline from `build_pipeline`.
    image: the container image of every component.
    output_path: the YAML file to write (local path or gs:// URI).
    schema_digest: the imported schema's sha256 (`schema_sha256`), put among ImportSchemaGen's inputs so a cached
      run re-imports an edited schema (`key_schema_import_by_content`); None leaves the task keyed by path only.

  Returns:
    The PipelineSpec as a JSON-style dict (what the file holds).

  Raises:
    OSError: naming `--output` and the fix, if the file or its directory cannot be written.
  """
  from google.protobuf import json_format
  from kfp.pipeline_spec import pipeline_spec_pb2
  import tensorflow as tf
  from tfx import v1 as tfx  # pylint: disable=redefined-outer-name
  from tfx.dsl.io import fileio
  import yaml

  runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
      config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
          default_image=image,
          # Schema 2.1.0: what the KFP 2 backend accepts; Vertex AI Pipelines takes it too.
          use_pipeline_spec_2_1=True))
  pipeline_job = runner.run(tfx_pipeline, write_out=False)
  spec = pipeline_job['pipelineSpec']
  restrict_blessing_resolvers(spec)
  if schema_digest is not None:
    key_schema_import_by_content(spec, schema_digest)
  spec['defaultPipelineRoot'] = tfx_pipeline.pipeline_info.pipeline_root
  json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())  # Fails on a field KFP would not know.
  output_dir = os.path.dirname(output_path)
  try:
    if output_dir and not fileio.exists(output_dir):
      fileio.makedirs(output_dir)
    with fileio.open(output_path, 'w') as f:
      f.write(f'# PIPELINE DEFINITION\n# Name: {spec["pipelineInfo"]["name"]}\n'
              f'# Compiled by kubeflow_runner.py from TFX ({spec.get("sdkVersion", "")}).\n')
      yaml.safe_dump(spec, f, sort_keys=True)
  except (OSError, tf.errors.OpError) as e:
    raise OSError(f'--output {output_path}: cannot be written ({type(e).__name__}: {e}). Fix: pass a .yaml path in '
                  'a directory this account may create and write (a local path, or gs:// with credentials).') from e
  return spec


# Resolver node -> the gate whose blessings name its last blessed model.
BLESSING_RESOLVER_GATES = {
    configs.RANKING_MODEL_RESOLVER_ID: configs.RANKING_SEGMENT_GATE_ID,
    configs.RETRIEVAL_MODEL_RESOLVER_ID: configs.RETRIEVAL_GATE_ID,
}


def restrict_blessing_resolvers(spec: Dict[str, Any]) -> None:
  """Makes each last-blessed-model resolver of a compiled PipelineSpec read only its own gate's blessings.

  TFX's Kubeflow V2 compiler turns a LatestBlessedModelStrategy resolver into a query for the latest LIVE
  ModelBlessing with blessed=1, whatever the channel's producer_component_id says (tfx 1.16
  `step_builder._build_resolver_for_latest_model_blessing`). Both resolvers would then take the same artifact:
  possibly the ranking Evaluator's blessing of a model the segment gate refused, or the other model's. Our gates
  mark their blessings with `configs.BLESSING_GATE_KEY`; this adds that condition to each query (in place).

  Raises:
    RuntimeError: if a resolver's query is not where TFX 1.16 puts it (a TFX upgrade changed the compiler), so the
      restriction is never silently lost.
  """
  executors = spec.get('deploymentSpec', {}).get('executors', {})
  for resolver_id, gate_id in BLESSING_RESOLVER_GATES.items():
    label = f'{resolver_id}-model-blessing-resolver_executor'
    queries = executors.get(label, {}).get('resolver', {}).get('outputArtifactQueries', {})
    if not queries or any('tfx.ModelBlessing' not in q.get('filter', '') for q in queries.values()):
      raise RuntimeError(f'The compiled spec has no ModelBlessing query for {resolver_id} under {label!r}; the TFX '
                         'compiler changed: update kubeflow_runner.restrict_blessing_resolvers.')
    for query in queries.values():
      query['filter'] += f' AND metadata.{configs.BLESSING_GATE_KEY}.string_value="{gate_id}"'


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Compiles the pipeline spec and prints where it went. Returns the process exit code."""
  args = parse_args(argv)
  logging.set_verbosity(logging.INFO)
  try:
    runner_args = beam_args.beam_pipeline_args_from_flags(args, image=args.image)
    ranking_hparams = run_config.ranking_hyperparameters(args)
    check_model_inputs(args)
    tfx_pipeline = build_pipeline(args, runner_args)
  except (ValueError, FileNotFoundError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  digest = schema_sha256(args.schema)
  if digest is None:
    logging.warning('--schema %s cannot be read on this machine, so ImportSchemaGen is cached by its path: after '
                    'editing that file, compile with --disable-cache or give the schema a new path (e.g. one '
                    'naming its sha256).', args.schema)
  try:
    spec = compile_pipeline(tfx_pipeline, image=args.image, output_path=args.output, schema_digest=digest)
  except OSError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  print(f'Wrote the pipeline spec ({len(spec["root"]["dag"]["tasks"])} tasks, image {args.image}, '
        f'pipeline root {args.pipeline_root}) to {args.output}\n'
        f'Beam: {" ".join(runner_args)}\nRanking model: {ranking_hparams}', flush=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())
