"""TF Serving backend: the shipped models.config, the config writer, the compose file, and the REST client
against a stand-in server.

No TF Serving binary or Docker engine is available here, so the REST calls go to a stand-in on loopback that
answers TF Serving's documented REST shapes (model status; columnar `inputs` -> `outputs`, one output unnamed)
by calling the fixture's SavedModels. It checks our side of the protocol, not TF Serving itself.
"""

import argparse
import base64
import json
import os
import re
import threading
import time
from typing import Any, Dict, Iterator, Set, Tuple

import pytest
import tensorflow as tf
import yaml
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from serving import app, backend_flags, models, recommender, tf_serving_backend, tf_serving_config
from tests import serving_recommender_test as fixture
from tests import tf_serving_fixtures
from tests.serving_http_test import get_json
from trainer.ranking import export as ranking_export
from trainer.retrieval import export as retrieval_export

SERVING_PACKAGE_DIR = os.path.dirname(os.path.abspath(models.__file__))


def test_models_config_parses_and_names_both_models():
  with open(os.path.join(SERVING_PACKAGE_DIR, 'models.config'), encoding='utf-8') as f:
    config = text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())
  entries = {c.name: c for c in config.model_config_list.config}
  assert sorted(entries) == sorted([models.RETRIEVAL_MODEL, models.RANKING_MODEL])
  for name, entry in entries.items():
    assert entry.base_path == f'/models/{name}'
    assert entry.model_platform == 'tensorflow'
    assert entry.model_version_policy.latest.num_versions == 2


def test_compose_mounts_the_serving_dir_and_the_written_config():
  with open(os.path.join(SERVING_PACKAGE_DIR, 'docker-compose.yaml'), encoding='utf-8') as f:
    compose = yaml.safe_load(f)
  services = compose['services']
  tf_serving = services['tf-serving']
  assert tf_serving['image'].startswith('tensorflow/serving:')
  assert '--model_config_file=/config/models.config' in tf_serving['command']
  assert '--model_config_file_poll_wait_seconds=5' in tf_serving['command']  # re-reads the written config
  assert any(v.endswith(':/models:ro') for v in tf_serving['volumes'])
  assert 'tf-serving-config:/config:ro' in tf_serving['volumes']
  assert tf_serving['depends_on'] == {'tf-serving-config': {'condition': 'service_healthy'}}
  # The writer: the shipped models.config as template, the config into the volume TF Serving reads.
  writer = services['tf-serving-config']
  assert writer['entrypoint'] == ['python', '-m', 'serving.tf_serving_config']
  assert './models.config:/config-template/models.config:ro' in writer['volumes']
  assert 'tf-serving-config:/config' in writer['volumes']
  assert {'--serving-dir=/models', '--template=/config-template/models.config',
          '--output=/config/models.config'} <= set(writer['command'])
  assert 'tf-serving-config' in compose['volumes']
  service = services['recommender']
  assert '--tf-serving-url=http://tf-serving:8501' in service['command']
  assert all(port.startswith('127.0.0.1:') for s in services.values() for port in s.get('ports', []))


def _complete_version(serving_dir: str, model: str, version: int) -> None:
  path = models.version_dir(serving_dir, model, version)
  os.makedirs(path)
  with open(os.path.join(path, models.SAVED_MODEL_FILE), 'wb'):
    pass


def test_written_config_lists_only_models_with_a_complete_version(tmp_path):
  template_path = os.path.join(SERVING_PACKAGE_DIR, 'models.config')
  template = tf_serving_config.read_model_server_config(template_path)
  serving_dir, output = str(tmp_path / 'serving'), str(tmp_path / 'config' / 'models.config')

  def written() -> model_server_config_pb2.ModelServerConfig:
    return tf_serving_config.read_model_server_config(output)

  # Nothing pushed yet: an empty model list (TF Serving starts and serves no model).
  assert tf_serving_config.update(template_path, serving_dir, output)
  assert written().WhichOneof('config') == 'model_config_list' and not written().model_config_list.config
  # Retrieval pushed, the ranking model refused (its directory holds only a staging copy): retrieval only,
  # with the template's entry unchanged.
  _complete_version(serving_dir, models.RETRIEVAL_MODEL, 1)
  os.makedirs(os.path.join(serving_dir, models.RANKING_MODEL, '.staging-2'))
  assert tf_serving_config.update(template_path, serving_dir, output)
  assert list(written().model_config_list.config) == [
      entry for entry in template.model_config_list.config if entry.name == models.RETRIEVAL_MODEL]
  assert not tf_serving_config.update(template_path, serving_dir, output)  # unchanged: not rewritten
  # Both pushed: the template itself.
  _complete_version(serving_dir, models.RANKING_MODEL, 2)
  assert tf_serving_config.update(template_path, serving_dir, output)
  assert written() == template
  assert sorted(os.listdir(os.path.dirname(output))) == ['models.config']  # no temporary file left


def test_config_writer_cli_writes_once(tmp_path):
  serving_dir, output = str(tmp_path / 'serving'), str(tmp_path / 'models.config')
  _complete_version(serving_dir, models.RETRIEVAL_MODEL, 7)
  template_path = os.path.join(SERVING_PACKAGE_DIR, 'models.config')
  assert tf_serving_config.main(['--serving-dir', serving_dir, '--template', template_path,
                                 '--output', output, '--once']) == 0
  names = [c.name for c in tf_serving_config.read_model_server_config(output).model_config_list.config]
  assert names == [models.RETRIEVAL_MODEL]


def test_config_writer_keeps_the_last_config_through_failing_polls(tmp_path, monkeypatch, caplog):
  template_path, output = str(tmp_path / 'template.config'), str(tmp_path / 'models.config')
  serving_dir = str(tmp_path / 'serving')
  with open(os.path.join(SERVING_PACKAGE_DIR, 'models.config'), encoding='utf-8') as f:
    shipped = f.read()
  with open(template_path, 'w', encoding='utf-8') as f:
    f.write(shipped)
  _complete_version(serving_dir, models.RETRIEVAL_MODEL, 1)
  listed_before_each_poll = []

  def sleep(seconds: float) -> None:  # Instead of waiting, changes what the next poll finds.
    assert seconds == 0.5
    listed_before_each_poll.append(
        [c.name for c in tf_serving_config.read_model_server_config(output).model_config_list.config])
    step = len(listed_before_each_poll)
    if step == 1:
      os.remove(template_path)  # the next poll's OSError
    elif step == 2:
      with open(template_path, 'w', encoding='utf-8') as f:
        f.write('model_config_list { config { name: ')  # the next poll's ValueError (a half-saved edit)
    elif step == 3:
      with open(template_path, 'w', encoding='utf-8') as f:
        f.write(shipped)
      _complete_version(serving_dir, models.RANKING_MODEL, 2)
    else:
      raise KeyboardInterrupt

  monkeypatch.setattr(tf_serving_config.time, 'sleep', sleep)
  assert tf_serving_config.main(['--serving-dir', serving_dir, '--template', template_path, '--output', output,
                                 '--poll-interval-s', '0.5']) == 0
  # Polls 2 and 3 failed and kept the retrieval-only config; poll 4 found the ranking version.
  assert listed_before_each_poll == [[models.RETRIEVAL_MODEL]] * 3 + [[models.RETRIEVAL_MODEL, models.RANKING_MODEL]]
  warnings = [r.getMessage() for r in caplog.records if r.levelname == 'WARNING']
  assert len(warnings) == 2
  assert warnings[0].startswith(f'Could not update {output} (it keeps the config last written; trying again in '
                                '0.5 s): FileNotFoundError: ')
  assert f'ValueError: {template_path} is not a text ModelServerConfig' in warnings[1]


@pytest.mark.parametrize('interval', ['nan', 'inf', '0', '-1', 'soon', '1e10'])
def test_a_poll_interval_that_is_not_a_finite_positive_number_is_refused_before_writing(tmp_path, interval, capsys):
  # Before, nan and inf passed the `<= 0` check, the config was written, and the first time.sleep raised
  # (ValueError, OverflowError): the writer died with a traceback after one write.
  output = str(tmp_path / 'models.config')
  with pytest.raises(SystemExit) as exit_info:
    tf_serving_config.main(['--serving-dir', str(tmp_path), '--template',
                            os.path.join(SERVING_PACKAGE_DIR, 'models.config'), '--output', output,
                            '--poll-interval-s', interval])
  assert exit_info.value.code == 2
  assert '--poll-interval-s' in capsys.readouterr().err
  assert not os.path.exists(output)


@pytest.mark.parametrize('text', ['1e10', '9223372037'])
def test_a_duration_longer_than_a_wait_can_last_is_refused(text):
  # time.sleep and threading.Event.wait raise OverflowError above threading.TIMEOUT_MAX (9223372036 s): before,
  # 1e10 passed, the writer wrote once and died with a traceback at its first sleep, and the service's poller
  # thread died at its first wait (new versions were never loaded).
  with pytest.raises(argparse.ArgumentTypeError, match=f'{text} must be .* at most 9223372036 s'):
    backend_flags.positive_seconds(text)
  assert backend_flags.positive_seconds('9223372036') == 9223372036.0


def test_a_poll_failing_in_tf_io_gfile_keeps_the_last_config(tmp_path, monkeypatch, caplog):
  # tf.io.gfile raises tf.errors.OpError (not OSError), e.g. a version directory removed while it is listed.
  def vanished(model_dir: str):
    raise tf.errors.NotFoundError(None, None, f'{model_dir}/7 was removed while listed')

  monkeypatch.setattr(models, 'newest_complete_version', vanished)
  output = str(tmp_path / 'models.config')
  assert not tf_serving_config.poll(os.path.join(SERVING_PACKAGE_DIR, 'models.config'), str(tmp_path), output, 5)
  assert not os.path.exists(output)
  assert 'NotFoundError: ' in caplog.records[-1].getMessage()
  assert 'was removed while listed' in caplog.records[-1].getMessage()


def test_config_writer_fails_at_once_when_the_first_config_cannot_be_written(tmp_path, monkeypatch, capsys):
  def sleep(seconds: float) -> None:
    raise AssertionError(f'the writer went on polling (sleep({seconds})) after its first update failed')

  monkeypatch.setattr(tf_serving_config.time, 'sleep', sleep)
  missing = str(tmp_path / 'no-template.config')
  assert tf_serving_config.main(['--serving-dir', str(tmp_path / 'serving'), '--template', missing,
                                 '--output', str(tmp_path / 'models.config')]) == 2
  assert capsys.readouterr().err == f"error: [Errno 2] No such file or directory: '{missing}'\n"
  assert not os.path.exists(tmp_path / 'models.config')


def test_config_writer_fails_at_once_when_tf_io_gfile_cannot_read_the_serving_dir(tmp_path, monkeypatch, capsys):
  # The first update fails with exit code 2 for an unreadable serving directory; tf.io.gfile reports one as
  # tf.errors.OpError (e.g. PermissionDenied on gs://), which before escaped main as a traceback (exit code 1).
  def unreadable(model_dir: str):
    raise tf.errors.PermissionDeniedError(None, None, f'{model_dir}: permission denied')

  monkeypatch.setattr(models, 'newest_complete_version', unreadable)
  monkeypatch.setattr(tf_serving_config.time, 'sleep', lambda seconds: pytest.fail('went on polling'))
  serving_dir, output = str(tmp_path / 'serving dir'), str(tmp_path / 'models.config')
  assert tf_serving_config.main(['--serving-dir', serving_dir, '--template',
                                 os.path.join(SERVING_PACKAGE_DIR, 'models.config'), '--output', output]) == 2
  assert capsys.readouterr().err == (f'error: PermissionDeniedError: {serving_dir}/{models.RETRIEVAL_MODEL}: '
                                     'permission denied\n')
  assert not os.path.exists(output)


def test_an_output_file_that_is_not_utf8_is_replaced_like_any_other_content(tmp_path):
  # Before: reading it to compare raised UnicodeDecodeError, so the first update exited 2 with a message naming
  # no file, and the file was never replaced (every later poll failed the same way).
  output = tmp_path / 'models.config'
  output.write_bytes(b'\xff\xfe not a config')
  assert tf_serving_config.write_if_changed('model_config_list {\n}\n', str(output))
  assert output.read_text(encoding='utf-8') == 'model_config_list {\n}\n'
  assert not tf_serving_config.write_if_changed('model_config_list {\n}\n', str(output))
  assert sorted(os.listdir(tmp_path)) == ['models.config']


def test_a_template_that_is_not_utf8_is_refused_naming_it(tmp_path):
  # Before: the UnicodeDecodeError's own message ("'utf-8' codec can't decode byte 0xff ..."), without the file.
  template = tmp_path / 'a template.config'
  template.write_bytes(b'\xffmodel_config_list {}')
  with pytest.raises(ValueError, match=re.escape(f'{template} is not a text ModelServerConfig (not UTF-8: ')):
    tf_serving_config.read_model_server_config(str(template))


def test_template_entries_must_point_at_their_model_directory(tmp_path):
  template = model_server_config_pb2.ModelServerConfig()
  template.model_config_list.config.add(name='ranking', base_path='/models/rank', model_platform='tensorflow')
  with pytest.raises(ValueError, match="base_path '/models/rank'"):
    tf_serving_config.servable_config(template, str(tmp_path))


class StandInTFServing(tf_serving_fixtures.LoopbackServer):
  """Answers TF Serving's REST API for the versions in `available` from the SavedModels on disk."""

  def __init__(self, serving_dir: str):
    self.available: Set[Tuple[str, int]] = set()
    self.predict_calls = 0
    self.status_delay_s = 0.0  # how long a model status request waits before its answer (a hanging server)
    loaded: Dict[Tuple[str, int], Any] = {}
    stand_in = self

    class Handler(tf_serving_fixtures.RestHandler):

      def do_GET(self) -> None:  # pylint: disable=invalid-name
        name, version = self.model_version()
        time.sleep(stand_in.status_delay_s)
        if (name, version) not in stand_in.available:
          self.answer_json(404, {'error': f'Servable not found for request: Specific({name}, {version})'})
          return
        self.answer_json(200, {'model_version_status': [{'version': str(version), 'state': 'AVAILABLE',
                                                     'status': {'error_code': 'OK', 'error_message': ''}}]})

      def do_POST(self) -> None:  # pylint: disable=invalid-name
        name, version = self.model_version()
        request = json.loads(self.read_body())
        if (name, version) not in stand_in.available or request['signature_name'] != 'serving_default':
          self.answer_json(404, {'error': 'not served'})
          return
        stand_in.predict_calls += 1
        if (name, version) not in loaded:
          loaded[(name, version)] = tf.saved_model.load(models.version_dir(serving_dir, name, version))
        examples = [base64.b64decode(e['b64']) for e in request['inputs']['examples']]
        outputs = loaded[(name, version)].signatures['serving_default'](examples=tf.constant(examples))
        if len(outputs) == 1:  # TF Serving drops the name of a single output
          body = {'outputs': next(iter(outputs.values())).numpy().tolist()}
        else:
          body = {'outputs': {k: v.numpy().tolist() for k, v in outputs.items()}}
        self.answer_json(200, json.loads(json.dumps(body, default=lambda b: b.decode())))

    self._start(Handler)


@pytest.fixture()
def stand_in(tmp_path) -> Iterator[Tuple[StandInTFServing, str]]:
  serving_dir = fixture.build_serving_dir(str(tmp_path))
  server = StandInTFServing(serving_dir)
  yield server, serving_dir
  server.close()


def test_recommendations_through_tf_serving_equal_in_process(stand_in):
  server, serving_dir = stand_in
  registry = models.ModelRegistry(serving_dir, loader=tf_serving_backend.bundle_loader(server.url))
  # TF Serving has not loaded the versions yet: nothing is served, and it is retried at the next refresh.
  assert not registry.refresh()
  with pytest.raises(models.ModelsNotReadyError):
    registry.current()
  server.available = {(models.RETRIEVAL_MODEL, 1), (models.RANKING_MODEL, 1)}
  assert registry.refresh()
  remote = recommender.Recommender(registry, ranking_weight=0.5).recommend('u1', k=3)
  assert server.predict_calls == 4  # warm-up and this request: one retrieval and one ranking call each

  local_registry = models.ModelRegistry(serving_dir)
  assert local_registry.refresh()
  local = recommender.Recommender(local_registry, ranking_weight=0.5).recommend('u1', k=3)
  assert remote.items == local.items
  assert [item.item_id for item in remote.items] == ['i5', 'i4', 'i6']


def test_health_says_unavailable_while_tf_serving_cannot_answer(stand_in):
  server, serving_dir = stand_in
  server.available = {(models.RETRIEVAL_MODEL, 1), (models.RANKING_MODEL, 1)}
  registry = models.ModelRegistry(serving_dir, loader=tf_serving_backend.bundle_loader(server.url))
  assert registry.refresh()
  service = app.make_server(recommender.Recommender(registry), registry, host=app.LOOPBACK_HOST, port=0)
  threading.Thread(target=service.serve_forever, daemon=True).start()
  port = service.server_address[1]
  versions = {'model_versions': {'retrieval': 1, 'ranking': 1}, 'missing_models': []}
  address = server.url[len('http://'):]
  try:
    assert get_json(port, '/healthz') == (200, {'status': 'ok', **versions})
    # TF Serving restarted and has not loaded the served ranking version (yet): known users cannot be answered.
    server.available = {(models.RETRIEVAL_MODEL, 1)}
    assert get_json(port, '/healthz') == (503, {
        'status': 'unavailable', **versions,
        'error': f"TF Serving at {address} reports ranking version 1 as 'not known (yet)'; the service cannot "
                 'answer with it until TF Serving serves it again.'})
    server.available = {(models.RETRIEVAL_MODEL, 1), (models.RANKING_MODEL, 1)}
    assert get_json(port, '/healthz')[0] == 200
    # TF Serving hangs: health answers within its short probe timeout, not the 10 s of a recommendation call.
    server.status_delay_s = 5.0
    started = time.monotonic()
    status, body = get_json(port, '/healthz')
    assert time.monotonic() - started < tf_serving_backend.DEFAULT_TIMEOUT_S / 2
    assert (status, body['status']) == (503, 'unavailable')
    assert body['error'].startswith(f'TF Serving GET /v1/models/retrieval/versions/1 at {address} did not answer: '
                                    'TimeoutError')
    server.status_delay_s = 0.0
    # TF Serving gone: refused at once.
    server.close()
    status, body = get_json(port, '/healthz')
    assert (status, body['status']) == (503, 'unavailable')
    assert 'did not answer: ConnectionRefusedError' in body['error']
    assert get_json(port, '/v1/recommendations?user_id=u1&k=3')[0] == 503
  finally:
    service.shutdown()
    service.server_close()


def test_tf_serving_errors_are_raised_with_the_answer(stand_in):
  server, _ = stand_in
  client = tf_serving_backend.TFServingClient(server.url)
  with pytest.raises(tf_serving_backend.TFServingError, match='404'):
    client.predict(models.RANKING_MODEL, 1, [b''])
  assert retrieval_export.SERVING_SIGNATURE == ranking_export.SERVING_SIGNATURE == 'serving_default'


class SlowFirstAnswer(tf_serving_fixtures.LoopbackServer):
  """A server answering every call with a model status, the first one after `delay_s` seconds."""

  def __init__(self, delay_s: float):
    answered = []

    class Handler(tf_serving_fixtures.RestHandler):

      def do_GET(self) -> None:  # pylint: disable=invalid-name
        if not answered:
          answered.append(True)
          time.sleep(delay_s)
        self.answer_json(200, {'model_version_status': [{'version': '1', 'state': 'AVAILABLE'}]})

      def do_POST(self) -> None:  # pylint: disable=invalid-name
        self.read_body()
        self.do_GET()

    self._start(Handler)


def test_a_timed_out_call_does_not_spoil_the_threads_next_calls():
  server = SlowFirstAnswer(delay_s=1.0)
  try:
    client = tf_serving_backend.TFServingClient(server.url, timeout_s=0.2)
    with pytest.raises(tf_serving_backend.TFServingError, match='did not answer') as e:
      client.predict(models.RETRIEVAL_MODEL, 1, [b''])
    assert e.value.retryable and e.value.status is None
    # Before, the connection stayed mid-request and every later call of this thread raised CannotSendRequest.
    assert client.model_state(models.RETRIEVAL_MODEL, 1) == 'AVAILABLE'
  finally:
    server.close()


def test_error_statuses_tell_whether_the_call_may_succeed_later():
  assert not tf_serving_backend.TFServingError('answered 400', status=400).retryable
  assert not tf_serving_backend.TFServingError('answered 500', status=500).retryable
  assert tf_serving_backend.TFServingError('answered 503', status=503).retryable
  assert tf_serving_backend.TFServingError('refused').retryable


def test_malformed_url_is_refused():
  with pytest.raises(ValueError, match='http://HOST:PORT'):
    tf_serving_backend.TFServingClient('localhost:8501')


def test_a_template_that_repeats_a_model_or_lists_one_without_a_name_is_refused_naming_it(tmp_path):
  # Before, both were copied into the written config, which TF Serving refuses to load ("Illegal to list model
  # ranking 2 times"), so a newly pushed model would never be served.
  entry = 'config {{ name: "{}" base_path: "/models/{}" model_platform: "tensorflow" }}'
  template = tmp_path / 'models.config'
  template.write_text('model_config_list { %s %s %s }' % (
      entry.format('ranking', 'ranking'), entry.format('retrieval', 'retrieval'), entry.format('ranking', 'ranking')))
  with pytest.raises(ValueError, match=re.escape(f"{template} lists the model(s) ['ranking'] more than once")):
    tf_serving_config.read_model_server_config(str(template))
  template.write_text('model_config_list { %s config { base_path: "/models/x" } }' % entry.format('ranking', 'ranking'))
  with pytest.raises(ValueError, match=re.escape(f'{template} lists a model without a name')):
    tf_serving_config.read_model_server_config(str(template))
