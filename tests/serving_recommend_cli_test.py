"""serving.recommend's --user-feature, --k and --user-id flags: read as the HTTP service reads its parameters, and
refused before any model loads."""

from typing import Any, List

import pytest

from serving import backend_flags, recommend


def test_user_features_are_split_at_the_first_equals_sign():
  assert recommend.parse_user_features(['user_gender=F', 'user_zip=a=b', 'user_occupation=']) == {
      'user_gender': 'F', 'user_zip': 'a=b', 'user_occupation': ''}


@pytest.mark.parametrize('pairs, message', [
    (['user_gender'], "--user-feature 'user_gender' must look like COLUMN=VALUE"),
    (['=F'], "--user-feature '=F' must look like COLUMN=VALUE"),
    # Before, the last value was kept without a word (user_gender=M), while the HTTP service refuses a repeated
    # parameter (400 'Parameters [...] are repeated').
    (['user_gender=F', 'user_age=23', 'user_gender=M'],
     "--user-feature user_gender is given more than once ('F', 'M'); pass each column once."),
])
def test_bad_user_features_are_refused(pairs: List[str], message: str):
  with pytest.raises(ValueError) as e:
    recommend.parse_user_features(pairs)
  assert str(e.value).startswith(message)


def test_a_bad_user_feature_is_refused_before_any_model_loads(monkeypatch, capsys):
  loads: List[Any] = []
  monkeypatch.setattr(backend_flags, 'recommender_from_flags', lambda args: loads.append(args))
  assert recommend.main(['--serving-dir', '/not/read', '--user-id', 'u1', '--user-feature', 'user_gender=F',
                         '--user-feature', 'user_gender=M']) == 2
  assert not loads
  assert capsys.readouterr().err == (
      "error: --user-feature user_gender is given more than once ('F', 'M'); pass each column once.\n")


def test_an_unreadable_serving_dir_exits_2_naming_it(monkeypatch, capsys):
  # Before, an error listing the serving dir (tf.io.gfile on a gs:// dir this account may not read) ended the CLI
  # with a traceback (exit 1) naming neither the flag nor the fix.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from serving import models  # pylint: disable=g-import-not-at-top

  def refuse(serving_dir: str, skipped: Any = None) -> None:
    raise tf.errors.PermissionDeniedError(None, None, f'{serving_dir}: permission denied')

  monkeypatch.setattr(models, 'newest_versions', refuse)
  assert recommend.main(['--serving-dir', 'gs://bucket/serving', '--user-id', 'u1']) == 2
  assert capsys.readouterr().err == (
      'error: cannot read --serving-dir gs://bucket/serving: PermissionDeniedError: gs://bucket/serving: permission '
      'denied; check the path and that this account may list and read it.\n')


@pytest.mark.parametrize('argv, message', [
    (['--user-id', 'u1', '--k', '0'], 'error: --k 0 is outside 1..100; pass e.g. --k 10.\n'),
    (['--user-id', 'u1', '--k', '101'], 'error: --k 101 is outside 1..100; pass e.g. --k 10.\n'),
    (['--user-id', '  '], "error: --user-id '  ' is empty; pass the raw user id, e.g. --user-id 42.\n"),
])
def test_a_k_outside_1_to_max_k_or_an_empty_user_id_is_refused_before_any_model_loads(
    monkeypatch, capsys, argv: List[str], message: str):
  # Before, the models were loaded first and recommend() then refused the request without naming the flag
  # ('k=0 must be an integer from 1 to 100.', 'user_id is empty; pass the raw user id.').
  loads: List[Any] = []
  monkeypatch.setattr(backend_flags, 'recommender_from_flags', lambda args: loads.append(args))
  assert recommend.main(['--serving-dir', '/not/read'] + argv) == 2
  assert not loads
  assert capsys.readouterr().err == message


def test_user_feature_help_says_it_replaces_a_known_users_profile_value():
  # Before, the help said only that it chooses the popularity segment of unknown users, while recommend() sends a
  # known user's given columns to the models instead of the profile's values.
  text = ' '.join(recommend._parser().format_help().split())  # pylint: disable=protected-access
  assert ("--user-feature COLUMN=VALUE A user column (repeatable): replaces a known user's profile value in the "
          "models' requests; chooses the popularity segment of an unknown user.") in text


_RUN_THE_PIPELINE = ('run the pipeline first (bin/run-pipeline ... --output-dir OUT writes OUT/serving) or pass the '
                     'right --serving-dir.\n')


@pytest.mark.parametrize('make, says', [
    (lambda path: None, 'does not exist'),
    (lambda path: path.write_text('not a directory'), 'is not a directory'),
    (lambda path: path.mkdir(), "holds no complete version of 'retrieval' (and of 'ranking' for the two-stage "
                                'order) to recommend with'),
])
def test_a_missing_file_or_empty_serving_dir_is_named_with_the_fix(tmp_path, capsys, make, says: str):
  # Before, each answered the HTTP service's 'No model loaded yet: DIR needs a complete version of ...', which
  # neither said that the directory does not exist nor where the pipeline writes it.
  serving_dir = tmp_path / 'serving'
  make(serving_dir)
  assert recommend.main(['--serving-dir', str(serving_dir), '--user-id', 'u1']) == 2
  assert capsys.readouterr().err == f'error: --serving-dir {serving_dir} {says}; {_RUN_THE_PIPELINE}'


def test_a_serving_dir_whose_versions_fail_to_load_keeps_the_registrys_reason(monkeypatch, capsys, tmp_path):
  from serving import models  # pylint: disable=g-import-not-at-top

  class NotReady:
    def recommend(self, *args, **kwargs):
      raise models.ModelsNotReadyError('No model loaded yet from DIR: retrieval version 1 failed to load')

  monkeypatch.setattr(backend_flags, 'recommender_from_flags', lambda args: (None, NotReady()))
  monkeypatch.setattr(models, 'newest_versions', lambda serving_dir, skipped=None: models.ServedVersions(1, None))
  assert recommend.main(['--serving-dir', str(tmp_path), '--user-id', 'u1']) == 2
  assert capsys.readouterr().err == 'error: No model loaded yet from DIR: retrieval version 1 failed to load\n'
