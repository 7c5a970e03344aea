"""benchmarks/retrieval_index_latency.py: the generated catalogue's examples and a small run on the fixture."""

import os
import re
import sys

import pytest
import tensorflow as tf

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmarks'))
import retrieval_index_latency  # pylint: disable=g-import-not-at-top,wrong-import-position


def _example(item_id: str, genre: str) -> bytes:
  return tf.train.Example(features=tf.train.Features(feature={
      'item_id': tf.train.Feature(bytes_list=tf.train.BytesList(value=[item_id.encode()])),
      'item_genres': tf.train.Feature(bytes_list=tf.train.BytesList(value=[genre.encode()])),
  })).SerializeToString()


def test_examples_are_cycled_under_the_new_names_keeping_their_other_features():
  renamed = retrieval_index_latency.renamed_examples(
      [_example('i1', 'Drama'), _example('i2', 'Comedy')], 'item_id', ['gen0', 'gen1', 'gen2'])
  parsed = [tf.train.Example.FromString(r).features.feature for r in renamed]
  assert [f['item_id'].bytes_list.value[0] for f in parsed] == [b'gen0', b'gen1', b'gen2']
  # gen2 is the first example again.
  assert [f['item_genres'].bytes_list.value[0] for f in parsed] == [b'Drama', b'Comedy', b'Drama']


@pytest.mark.slow
def test_a_small_run_times_both_indexes(fixture_pipeline_run, capsys):
  assert retrieval_index_latency.main(['--run-dir', fixture_pipeline_run.output_dir, '--items', '2000',
                                       '--covered', '50', '--users', '100', '--requests', '30']) == 0
  out = capsys.readouterr().out
  assert 'catalogue items=2000 ' in out and 'item-item: users=100 covered=50' in out
  for index in ('brute_force', 'scann'):
    assert re.search(rf'index={index} items=2000 item_item_weight=1 export_s=[\d.]+ p50_ms=[\d.]+ p99_ms=[\d.]+ '
                     r'requests=30', out)
  overlap = float(re.search(r'overlap with brute force: ([\d.]+)', out).group(1))
  assert 0.0 <= overlap <= 1.0


@pytest.mark.parametrize('flags, message', [
    (['--items', '0'], 'argument --items: 0 must be at least 1.'),
    (['--requests', '0'], 'argument --requests: 0 must be at least 1.'),
    (['--users', '10', '--requests', '30'], '--requests 30: at most --users (10); each request is a generated user.'),
    (['--item-item-weight', '-1'], 'argument --item-item-weight: -1 must be a number >= 0.'),
    (['--item-item-weight', 'nan'], 'argument --item-item-weight: nan must be a number >= 0.'),
    (['--items', '100', '--covered', '101'], '--covered 101: must be from 1 to --items (100)'),
])
def test_bad_sizes_are_usage_errors_naming_the_flag_before_the_run_is_read(tmp_path, flags, message, capsys):
  # Before, these reached the run (here: none, exit 2 for that) and then a traceback, or 10 requests for 30.
  with pytest.raises(SystemExit) as exit_info:
    retrieval_index_latency.main(['--run-dir', str(tmp_path), *flags])
  assert exit_info.value.code == 2
  assert message in capsys.readouterr().err


def test_covered_is_not_checked_without_the_item_item_model(tmp_path, capsys):
  assert retrieval_index_latency.main(['--run-dir', str(tmp_path), '--items', '100', '--covered', '101',
                                       '--item-item-weight', '0']) == 2  # no run there
  assert 'No ML Metadata store at' in capsys.readouterr().err
