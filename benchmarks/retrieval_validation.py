"""Retrieval hyperparameters compared on a validation slice of TRAIN, never on the eval split.

  .venv/bin/python benchmarks/retrieval_validation.py --run-dir outputs/ml100k \
      [--hparams '{"batch_size": 512}' ...] [--seeds 42 7 1] [--json validation.json]

On the latest run in `--run-dir` (its raw training examples and Transform graph), every 20th training interaction
(in canonical order) is held out; the retrieval model of the `default` configuration, with each `--hparams`
override in turn (`{}` = the default itself), is trained on the rest as the retrieval Trainer trains it (sampling
shares from the rows it trains on; item-item scores fitted on those rows too) and measured on the held-out
interactions: Recall@10 and Recall@100 per user with the user's remaining training items removed from the ranking
and the truth, averaged over users (`components/retrieval_metrics.py`, as the retrieval gate computes them on the
eval split). A held-out slice has
about 4 interactions per user against 21 in the eval split, so its figures are lower than the gate's; they
rank configurations. Exit status 2 when `--run-dir` holds no finished run.
"""

import argparse
import collections
import json
import sys
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

import numpy as np

import benchmark_flags
from pipeline import environment
from run_outputs import open_run, raw_examples_uri, split_files

if TYPE_CHECKING:
  from trainer.retrieval import hparams as hparams_lib  # pylint: disable=g-import-not-at-top

# Every VALIDATION_EVERY-th training interaction (canonical order) is held out.
VALIDATION_EVERY = 20
CUTOFFS = (10, 100)


def interactions_by_user(users: Sequence[int], items: Sequence[bytes],
                         column_of: Mapping[bytes, int]) -> Tuple[Dict[int, Set[int]], Dict[int, int]]:
  """(user -> the catalogue columns of the user's items, user -> the row of the user's first interaction)."""
  by_user: Dict[int, Set[int]] = collections.defaultdict(set)
  first_row: Dict[int, int] = {}
  for row, (user, item) in enumerate(zip(users, items)):
    by_user[int(user)].add(column_of[item])
    first_row.setdefault(int(user), row)
  return dict(by_user), first_row


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--run-dir', required=True, help='A local_runner.py --output-dir holding a finished run.')
  parser.add_argument('--hparams', nargs='+', default=['{}'],
                      help='JSON overrides of the default retrieval configuration, one per candidate.')
  parser.add_argument('--seeds', type=benchmark_flags.seed, nargs='+', action=benchmark_flags.DistinctValues,
                      default=[42, 7, 1], help='Training seeds (default 42 7 1).')
  parser.add_argument('--json', help='Also write the figures to this JSON file.')
  args = parser.parse_args(argv)
  candidates: Dict[str, Any] = {}  # --hparams text -> its configuration
  for text in args.hparams:
    try:
      overrides = json.loads(text)
    except json.JSONDecodeError as e:
      parser.error(f'--hparams {text!r} is not JSON ({e.msg}); write e.g. \'{{"batch_size": 512}}\'.')
    if isinstance(overrides, dict) and 'seed' in overrides:  # each candidate is trained with every --seeds seed
      parser.error(f'--hparams {text!r} sets seed; give the seeds with --seeds instead.')
    try:
      candidate = configuration(overrides)
    except ValueError as e:  # an unknown field, a value of the wrong type or out of range: before the run is read
      parser.error(f'--hparams {text!r}: {e}')
    same = [earlier for earlier, other in candidates.items() if other == candidate]
    if same:  # e.g. '{}' twice, or '{}' and the default batch size spelt out: the same training twice
      parser.error(f'--hparams {text!r} is the same configuration as {same[0]!r}; each runs the same training, so '
                   'give it once.')
    candidates[text] = candidate
  return args


def configuration(overrides: Any, seed: Optional[int] = None) -> 'hparams_lib.RetrievalHyperparameters':
  """The default retrieval configuration with the JSON `overrides` (a dict of its fields) and `seed`.

  Raises:
    ValueError: if `overrides` is not a JSON object, names an unknown field or gives a value the field refuses.
  """
  environment.use_legacy_keras()
  from trainer.retrieval import hparams as hparams_lib  # pylint: disable=g-import-not-at-top  (imports TensorFlow)
  if not isinstance(overrides, dict):
    raise ValueError(f'{overrides!r} is not a JSON object of RetrievalHyperparameters fields, e.g. {{"epochs": 5}}.')
  config = {**hparams_lib.DEFAULT.to_config(), **overrides}
  if seed is not None:
    config['seed'] = seed
  return hparams_lib.RetrievalHyperparameters.from_config(config)


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = parse_args(argv)
  environment.use_legacy_keras()
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  from components import retrieval_metrics
  from schema import features
  from trainer.common import feature_specs, hyperparameters, inputs
  from trainer.retrieval import candidates, export, item_item, model as model_lib
  # pylint: enable=g-import-not-at-top
  opened = open_run(args.run_dir)
  if opened is None:
    return 2
  summary, tf_transform_output, _, _ = opened
  raw_examples = raw_examples_uri(summary)
  train_files, eval_files = split_files(raw_examples, 'train'), split_files(raw_examples, 'eval')
  transform_layer = tf_transform_output.transform_features_layer()
  train_pairs = inputs.in_canonical_order(inputs.in_memory(
      candidates.transformed_pairs(train_files, tf_transform_output, transform_layer)))
  fitted_pairs, held_out_pairs = inputs.every_nth(train_pairs, VALIDATION_EVERY)
  catalogue = candidates.catalogue_examples(train_files + eval_files)
  user_key = features.transformed_name(features.USER_ID)

  def user_items(pairs: inputs.InMemorySplit, column_of: Mapping[bytes, int]):
    return interactions_by_user(pairs.columns[user_key].numpy().reshape(-1),
                                pairs.columns[features.ITEM_ID].numpy(), column_of)

  figures: Dict[str, Dict[str, Dict[str, float]]] = {}
  for text in args.hparams:
    figures[text] = {}
    for seed in args.seeds:
      hparams = configuration(json.loads(text), seed)
      tf.keras.utils.set_random_seed(seed)
      towers = feature_specs.model_features(tf_transform_output, hparams.user_features, hparams.item_features)
      shares = None
      if hparams.sampling_bias_correction:
        item_id = next(s for s in towers.item if s.raw_key == features.ITEM_ID)
        shares = candidates.item_shares(fitted_pairs, item_id.input_dim)
      model = model_lib.RetrievalModel(towers, hparams, item_sampling_probability=shares)
      model.compile(optimizer=hyperparameters.build_optimizer(hparams.optimizer, hparams.learning_rate))
      model.fit(inputs.training_batches(fitted_pairs, hparams.batch_size, seed), epochs=hparams.epochs, verbose=0)
      item_ids, item_embeddings = export.embed_catalogue(model.candidate_tower, catalogue, tf_transform_output,
                                                         transform_layer)
      column_of = {item: column for column, item in enumerate(item_ids.numpy())}
      truth, first_row = user_items(held_out_pairs, column_of)
      seen, _ = user_items(fitted_pairs, column_of)
      users: List[int] = sorted(truth)
      queries = model.query_tower(held_out_pairs.batch(tf.constant([first_row[u] for u in users], tf.int64)))
      scores = queries.numpy() @ item_embeddings.numpy().T
      if hparams.item_item_weight > 0:
        # As the export scores: the item-item score of the user's fitted items, on the items not among them.
        histories = item_item.histories_from_sets({str(u).encode(): items for u, items in seen.items()})
        scorer = item_item.ItemItemScorer.fit(histories, len(column_of), hparams.item_item_l2,
                                              hparams.item_item_max_items)
        item_item_scores = scorer(tf.constant([str(u).encode() for u in users]))
        scores += hparams.item_item_weight * item_item_scores.numpy()
      figures[text][str(seed)] = {
          f'recall_at_{k}': round(retrieval_metrics.mean_recall(retrieval_metrics.recall_per_user(
              scores, [truth[u] for u in users], [seen.get(u, set()) for u in users], k)), 4)
          for k in CUTOFFS}
      print(f'{text} seed {seed}: ' + ' '.join(f'{k}={v}' for k, v in figures[text][str(seed)].items()),
            flush=True)
  print('\nhyperparameters (mean over seeds ' + ', '.join(map(str, args.seeds)) + '): Recall@10 / Recall@100')
  for text, by_seed in figures.items():
    means = [np.mean([f[f'recall_at_{k}'] for f in by_seed.values()]) for k in CUTOFFS]
    print(f'{text:40s} {means[0]:.4f} / {means[1]:.4f}')
  if args.json:
    with open(args.json, 'w', encoding='utf-8') as f:
      json.dump(figures, f, indent=1)
  return 0


if __name__ == '__main__':
  sys.exit(main())
