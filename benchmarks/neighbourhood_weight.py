"""Validation and eval RMSE of the ranking model blended with the neighbourhood model, per blend weight and seed.

  .venv/bin/python benchmarks/neighbourhood_weight.py --run-dir outputs/ml100k [--seeds 42 7 1] \
      [--weights 0 0.1 0.2 0.3 0.35 0.4 0.5 1] [--json weights.json]

On the latest run's Transform output in `--run-dir`, for each seed: trains the ranking network of the named
configuration (`default` unless `--ranking-config`) as the Trainer does (canonical order, the validation slice
carved from TRAIN, early stopping on it), fits the item-item neighbourhood model on the same training rows
(`trainer/ranking/neighbourhood.py`), and prints the RMSE (stars) of (1 - w) * network + w * neighbourhood on the
validation slice — what the default weight is chosen on — and on the eval split (for information) for every
weight w. Weight 0 is the network alone, 1 the neighbourhood model alone. Exit status 2 for an unknown
`--ranking-config`, when `--run-dir` holds no finished run or the configuration has no validation slice.
"""

import argparse
import dataclasses
import json
import sys
from typing import Dict, Optional, Sequence


import benchmark_flags
from pipeline import environment
from serving import backend_flags
from run_outputs import open_run, split_files


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--run-dir', required=True, help='A local_runner.py --output-dir holding a finished run.')
  parser.add_argument('--seeds', type=benchmark_flags.seed, nargs='+', action=benchmark_flags.DistinctValues,
                      default=[42, 7, 1], help='Training seeds (default 42 7 1).')
  parser.add_argument('--weights', type=backend_flags.ranking_weight, nargs='+', action=benchmark_flags.DistinctValues,
                      default=[0, 0.1, 0.2, 0.3, 0.35, 0.4, 0.5, 1],
                      help='Blend weights of the neighbourhood model, each in [0, 1].')
  parser.add_argument('--ranking-config', default='default', help='Named ranking configuration (default: default).')
  parser.add_argument('--json', help='Also write the figures to this JSON file.')
  return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = parse_args(argv)
  environment.use_legacy_keras()
  # pylint: disable=g-import-not-at-top
  from trainer.common import feature_specs, inputs
  from trainer.ranking import hparams as hparams_lib, run
  # pylint: enable=g-import-not-at-top
  try:
    configuration = hparams_lib.named_configuration(args.ranking_config)
  except ValueError as e:
    print(f'--ranking-config: {e}', file=sys.stderr)
    return 2
  opened = open_run(args.run_dir)
  if opened is None:
    return 2
  _, tf_transform_output, data_accessor, examples_uri = opened
  if not configuration.validation_fraction:
    print(f'The {args.ranking_config!r} configuration has no validation slice (validation_fraction=0) to choose '
          'the weight on; pick a configuration with one.', file=sys.stderr)
    return 2
  train_all = inputs.in_canonical_order(
      inputs.load_split(split_files(examples_uri, 'train'), data_accessor, tf_transform_output))
  eval_split = inputs.load_split(split_files(examples_uri, 'eval'), data_accessor, tf_transform_output)
  train_split, validation_split = run.carve_validation(train_all, configuration.validation_fraction)
  figures: Dict[str, Dict[str, Dict[str, float]]] = {}
  for seed in args.seeds:
    hparams = dataclasses.replace(configuration, seed=seed, neighbourhood_weight=0.0, neighbourhood_weight_choices=())
    towers = feature_specs.model_features(tf_transform_output, hparams.user_features, hparams.item_features,
                                          hparams.context_features, hparams.user_slope_features)
    network, _ = run.train_ranking_model(train_split, validation_split, towers, hparams)
    neighbourhood = run.fit_neighbourhood(train_split, configuration)
    by_split = {name: run.blend_rmse_by_weight(network, neighbourhood, split, args.weights)
                for name, split in (('validation', validation_split), ('eval', eval_split))}
    figures[str(seed)] = {f'{weight:g}': {name: round(by_split[name][weight], 4) for name in by_split}
                          for weight in args.weights}
  print('weight  ' + '  '.join(f'seed {seed}: validation / eval' for seed in figures))
  for weight in args.weights:
    print(f'{weight:<7g} ' + '  '.join(
        f'{figures[seed][f"{weight:g}"]["validation"]:.4f} / {figures[seed][f"{weight:g}"]["eval"]:.4f}'.ljust(27)
        for seed in figures))
  if args.json:
    with open(args.json, 'w', encoding='utf-8') as f:
      json.dump(figures, f, indent=1)
  return 0


if __name__ == '__main__':
  sys.exit(main())
