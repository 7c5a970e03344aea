"""Writes TF Serving's model config listing only the models that have a complete version, and keeps it current.

TF Serving does not serve anything while a configured model has no version: at start-up it waits for every
configured model to load before opening its ports, and a config reload waits for every newly added model
(tensorflow/serving#1175; `ServerCore::AddModelsViaModelConfigList`). A base path that does not exist makes each
file-system poll fail for all models. On MovieLens the pipeline's segment gate can refuse the first ranking
model while the retrieval model is pushed, so the shipped `serving/models.config` (both models) would keep TF
Serving from serving the retrieval model it has.

This writer takes `serving/models.config` as the template and writes a copy that keeps only the entries whose
model has a complete version under the serving directory (`serving.models.newest_complete_version`: a numeric
directory holding saved_model.pb). It writes atomically (temporary file + rename, so TF Serving never reads half
a file) and only when the content changes. TF Serving, started with `--model_config_file_poll_wait_seconds`,
re-reads it and loads the ranking model once it is listed; serving/docker-compose.yaml wires this up. An error
of the first update ends the writer with exit code 2; one of a later poll (the template being edited, the serving
directory unreadable for a moment) is logged, the config last written stays, and the next poll tries again.

  python -m serving.tf_serving_config --serving-dir OUTPUT_DIR/serving --template serving/models.config \
      --output /config/models.config [--poll-interval-s 5 | --once]
"""

import argparse
import os
import sys
import tempfile
import time
from typing import List, Optional

from absl import logging
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from pipeline import environment
from serving import backend_flags

# Seconds between two looks at the serving directory.
DEFAULT_POLL_INTERVAL_S = 5.0
_HEADER = ('# Written by serving.tf_serving_config from {template}: the models of that template with a complete\n'
           '# version under the serving directory. Do not edit; edit the template.\n')


def read_model_server_config(path: str) -> model_server_config_pb2.ModelServerConfig:
  """Parses a text `ModelServerConfig` (e.g. serving/models.config).

  Raises:
    OSError: if the file cannot be read.
    ValueError: if the file is not UTF-8 text, not a text ModelServerConfig, has no model_config_list, or lists
      a model without a name or a name twice (TF Serving refuses such a config, and would keep serving the one it
      last read).
  """
  try:
    with open(path, encoding='utf-8') as f:
      text = f.read()
  except UnicodeDecodeError as e:
    raise ValueError(f'{path} is not a text ModelServerConfig (not UTF-8: {e}); start from '
                     'serving/models.config.') from e
  try:
    config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
  except text_format.ParseError as e:
    raise ValueError(f'{path} is not a text ModelServerConfig: {e}') from e
  if config.WhichOneof('config') != 'model_config_list':
    raise ValueError(f'{path} has no model_config_list; start from serving/models.config.')
  names = [entry.name for entry in config.model_config_list.config]
  if '' in names:
    raise ValueError(f'{path} lists a model without a name; give each config entry a name, e.g. "retrieval".')
  repeated = sorted({name for name in names if names.count(name) > 1})
  if repeated:
    raise ValueError(f'{path} lists the model(s) {repeated} more than once; keep one config entry per model '
                     '(TF Serving refuses a config that repeats a name).')
  return config


def servable_config(template: model_server_config_pb2.ModelServerConfig,
                    serving_dir: str) -> model_server_config_pb2.ModelServerConfig:
  """The template with only the models that have a complete version under `serving_dir`.

  Args:
    template: a config whose entries' base paths end with `/<name>` (where TF Serving mounts the serving dir).
    serving_dir: the pipeline's serving directory as this process sees it (holding `<name>/<version>/`).

  Returns:
    A copy keeping the template's entries (and their order and policies) whose `<serving_dir>/<name>` has a
    complete version; an empty `model_config_list` when none has.

  Raises:
    ValueError: for a template entry whose base_path does not end with its name.
  """
  # pylint: disable=g-import-not-at-top  (imports TensorFlow: not before the entry point's Keras setting)
  from serving import models
  config = model_server_config_pb2.ModelServerConfig()
  config.CopyFrom(template)
  del config.model_config_list.config[:]
  config.model_config_list.SetInParent()  # an empty list is still a model_config_list
  for entry in template.model_config_list.config:
    if os.path.basename(entry.base_path.rstrip('/')) != entry.name:
      raise ValueError(f'Model {entry.name!r} has base_path {entry.base_path!r}; it must end with '
                       f'/{entry.name} (the model\'s directory under the mounted serving directory).')
    if models.newest_complete_version(os.path.join(serving_dir, entry.name)) is not None:
      config.model_config_list.config.add().CopyFrom(entry)
  return config


def config_text(config: model_server_config_pb2.ModelServerConfig, template_path: str) -> str:
  """The file content for `config`: a header comment and the text proto."""
  return _HEADER.format(template=template_path) + text_format.MessageToString(config)


def write_if_changed(text: str, output_path: str) -> bool:
  """Writes `text` to `output_path` atomically (temporary file in the same directory + rename) unless the file
  already holds it.

  The file's bytes are compared with `text` in UTF-8: any other content (including bytes that are not UTF-8) is
  replaced.

  Returns:
    True if the file was written.
  """
  content = text.encode('utf-8')
  if os.path.isfile(output_path):
    with open(output_path, 'rb') as f:
      if f.read() == content:
        return False
  directory = os.path.dirname(os.path.abspath(output_path))
  os.makedirs(directory, exist_ok=True)
  handle, temporary = tempfile.mkstemp(prefix='.models.config.', dir=directory)
  try:
    with os.fdopen(handle, 'wb') as f:
      f.write(content)
    os.chmod(temporary, 0o644)  # readable by TF Serving's user in another container
    os.replace(temporary, output_path)
  except OSError:
    os.unlink(temporary)
    raise
  return True


def update(template_path: str, serving_dir: str, output_path: str) -> bool:
  """Rewrites `output_path` from the template and the serving directory if that changes it.

  Returns:
    True if the file was written.
  """
  config = servable_config(read_model_server_config(template_path), serving_dir)
  written = write_if_changed(config_text(config, template_path), output_path)
  if written:
    logging.info('Wrote %s with models %s.', output_path,
                 [entry.name for entry in config.model_config_list.config])
  return written


def poll(template_path: str, serving_dir: str, output_path: str, poll_interval_s: float) -> bool:
  """One look of the watch loop: `update`, except that an error is logged rather than raised.

  A template being edited (momentarily not a ModelServerConfig, or replaced), or a serving directory that cannot
  be read for a moment, must not end the writer: `output_path` keeps the last config written (it is only ever
  replaced whole) and the next poll tries again.

  Args:
    template_path: the full model config, e.g. serving/models.config.
    serving_dir: the pipeline's serving directory.
    output_path: the config file TF Serving reads.
    poll_interval_s: seconds until the next poll, for the log message.

  Returns:
    True if the file was written; False if it was unchanged or the update failed.
  """
  # pylint: disable=g-import-not-at-top  (TensorFlow is loaded by `update` already: serving.models lists versions)
  import tensorflow as tf
  try:
    return update(template_path, serving_dir, output_path)
  except (OSError, ValueError, tf.errors.OpError) as e:  # OpError: tf.io.gfile on a remote or changing directory
    logging.warning('Could not update %s (it keeps the config last written; trying again in %g s): %s: %s',
                    output_path, poll_interval_s, type(e).__name__, e)
    return False


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--serving-dir', required=True,
                      help='The pipeline serving directory holding retrieval/ and ranking/ versions.')
  parser.add_argument('--template', required=True, help='The full model config, e.g. serving/models.config.')
  parser.add_argument('--output', required=True, help='The config file TF Serving reads (--model_config_file).')
  parser.add_argument('--poll-interval-s', type=backend_flags.positive_seconds, default=DEFAULT_POLL_INTERVAL_S,
                      help='Seconds between looks at the serving directory (default 5).')
  parser.add_argument('--once', action='store_true', help='Write the config once and exit.')
  return parser


def main(argv: Optional[List[str]] = None) -> int:
  """Writes the config once, or keeps it current until interrupted; returns the exit code (a bad flag, e.g. a
  --poll-interval-s that is not a number above 0 and at most threading.TIMEOUT_MAX, exits with code 2 before
  anything is written).

  An error of the first update (a missing or invalid template, an unreadable serving directory) fails at once
  with exit code 2; one of a later poll is logged and the next poll tries again (see `poll`).
  """
  args = _parser().parse_args(argv)
  environment.use_legacy_keras()
  logging.set_verbosity(logging.INFO)
  # pylint: disable=g-import-not-at-top  (after the Keras setting; `update` loads TensorFlow anyway)
  import tensorflow as tf
  try:
    update(args.template, args.serving_dir, args.output)
  except (OSError, ValueError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  except tf.errors.OpError as e:  # tf.io.gfile reading the serving directory (e.g. gs://: permission denied)
    print(f'error: {type(e).__name__}: {e.message}', file=sys.stderr)
    return 2
  if args.once:
    return 0
  try:
    while True:
      time.sleep(args.poll_interval_s)
      poll(args.template, args.serving_dir, args.output, args.poll_interval_s)
  except KeyboardInterrupt:
    logging.info('Interrupted.')
  return 0


if __name__ == '__main__':
  sys.exit(main())
