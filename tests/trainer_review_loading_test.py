"""trainer.retrieval.loading: a retrieval export whose saved_model.pb is not a SavedModel fails naming the file."""

import os

import pytest

from trainer.retrieval import loading

# Field 2 of SavedModel (meta_graphs, length-delimited) announcing 5 bytes of which only 2 follow: a truncated file.
TRUNCATED_SAVED_MODEL = b'\x12\x05ab'


def test_a_truncated_saved_model_is_an_os_error_naming_the_file(tmp_path):
  # Before: google.protobuf DecodeError "Error parsing message with type 'tensorflow.SavedModel'", which names no
  # file and is not the OSError tf.saved_model.load raises for the same export (what callers catch).
  (tmp_path / loading.SAVED_MODEL_FILE).write_bytes(TRUNCATED_SAVED_MODEL)
  path = os.path.join(str(tmp_path), loading.SAVED_MODEL_FILE)
  for load in (loading.scann_ops_of, loading.load_retrieval_model):
    with pytest.raises(OSError) as error:
      load(str(tmp_path) + '/')
    assert str(error.value).startswith(f'Cannot parse file {path}: Error parsing message')
    assert str(error.value).endswith('it is not a SavedModel (a truncated or corrupt export): re-export or re-push '
                                     'the model.')
