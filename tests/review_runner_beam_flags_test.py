"""Beam runner flags that would have no effect on the chosen runner are refused, naming the flag and the fix."""

import argparse

import pytest

from pipeline import beam_args

IMAGE = 'europe-docker.pkg.dev/p/r/woonkly:1'


def _flags(*argv: str) -> argparse.Namespace:
  parser = argparse.ArgumentParser()
  beam_args.add_beam_flags(parser)
  return parser.parse_args(list(argv))


def test_direct_num_workers_in_memory_is_refused():
  # Before, accepted and replaced by --direct_num_workers=1: the in-memory DirectRunner runs one process.
  with pytest.raises(ValueError) as error:
    beam_args.beam_pipeline_args_from_flags(_flags('--direct-num-workers', '4'), image=IMAGE)
  assert str(error.value) == ('--direct-num-workers=4 has no effect with --direct-running-mode=in_memory (one '
                              'process); add --direct-running-mode=multi_processing, or drop it.')
  assert beam_args.beam_pipeline_args_from_flags(
      _flags('--direct-running-mode', 'multi_processing', '--direct-num-workers', '4'), image=IMAGE) == [
          '--runner=DirectRunner', '--direct_running_mode=multi_processing', '--direct_num_workers=4']
  assert beam_args.beam_pipeline_args_from_flags(_flags(), image=IMAGE) == [
      '--runner=DirectRunner', '--direct_running_mode=in_memory', '--direct_num_workers=1']
