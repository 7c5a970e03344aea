"""Benchmark: retrieval `serving_default` latency, brute force against ScaNN, on a large generated catalogue.

  .venv/bin/python benchmarks/retrieval_index_latency.py --run-dir OUTPUT_DIR [--items 200000] [--covered 2000]
      [--users 5000] [--requests 300] [--item-item-weight 1]

On the latest run in `--run-dir` (its raw examples and Transform graph), a retrieval model of the default
configuration, untrained (latency does not depend on the weights), embeds a catalogue of `--items` generated
items: the run's real catalogue examples repeated under new item ids (`gen<n>`, unknown to Transform: the
out-of-vocabulary embedding plus the item's real features). With `--item-item-weight` > 0 an item-item model
over the `--covered` most popular of them is fitted on `--users` generated users (Zipf-like histories of 60
items, `item_item_fit.generated_histories`). The same model is exported twice, with `index='brute_force'` and
`index='scann'`, and each export is loaded and timed on single-user requests (the run's real user columns
under the generated user ids): p50 and p99 in ms after a warm-up, and the share of ScaNN's top 100 that brute
force also returns (the approximation's overlap). Prints one line per index.
"""

import argparse
import os
import sys
import tempfile
import time
from typing import List, Optional, Sequence

import numpy as np

import benchmark_flags
from pipeline import environment
from run_outputs import open_run, raw_examples_uri, split_files

WARMUP_REQUESTS = 20
ITEMS_PER_USER = 60


def renamed_examples(serialized: Sequence[bytes], key: str, names: Sequence[str]) -> List[bytes]:
  """`serialized` tf.Examples cycled to len(names), each with its bytes feature `key` set to the next name."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  parsed = [tf.train.Example.FromString(s) for s in serialized]
  renamed = []
  for n, name in enumerate(names):
    example = tf.train.Example()
    example.CopyFrom(parsed[n % len(parsed)])
    example.features.feature[key].bytes_list.value[:] = [name.encode()]
    renamed.append(example.SerializeToString())
  return renamed


def _percentile_ms(seconds: Sequence[float], q: float) -> float:
  return float(np.percentile(np.asarray(seconds) * 1e3, q))


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--run-dir', required=True, help='A local_runner.py --output-dir holding a finished run.')
  parser.add_argument('--items', type=benchmark_flags.positive_int, default=200_000, help='Generated catalogue items.')
  parser.add_argument('--covered', type=int, default=2_000, help='Items the item-item model covers.')
  parser.add_argument('--users', type=benchmark_flags.positive_int, default=5_000,
                      help='Generated users with item-item histories.')
  parser.add_argument('--requests', type=benchmark_flags.positive_int, default=300,
                      help='Timed single-user requests per index.')
  parser.add_argument('--item-item-weight', type=benchmark_flags.non_negative_float, default=1.0,
                      help='0 = the two towers alone.')
  args = parser.parse_args(argv)
  if args.requests > args.users:
    parser.error(f'--requests {args.requests}: at most --users ({args.users}); each request is a generated user.')
  if args.item_item_weight > 0 and not 1 <= args.covered <= args.items:
    parser.error(f'--covered {args.covered}: must be from 1 to --items ({args.items}); the item-item model covers '
                 'the most popular of the generated items.')
  environment.use_legacy_keras()
  # pylint: disable=g-import-not-at-top
  import scann  # pylint: disable=unused-import  (ScaNN's ops, for the ScaNN export)
  import tensorflow as tf
  import item_item_fit
  from ingestion import example_columns
  from schema import features
  from trainer.common import feature_specs
  from trainer.retrieval import candidates, export, hparams as hparams_lib, item_item, loading
  from trainer.retrieval.model import RetrievalModel
  # pylint: enable=g-import-not-at-top
  opened = open_run(args.run_dir)
  if opened is None:
    return 2
  summary, tf_transform_output, _, _ = opened
  train_files = split_files(raw_examples_uri(summary), 'train')

  real_items = candidates.catalogue_examples(train_files).numpy()
  item_names = [f'gen{n}' for n in range(args.items)]
  catalogue = tf.constant(renamed_examples(real_items, features.ITEM_ID, item_names), dtype=tf.string)
  hparams = hparams_lib.RetrievalHyperparameters(item_item_weight=args.item_item_weight)
  model = RetrievalModel(feature_specs.model_features(tf_transform_output), hparams)
  started = time.perf_counter()
  item_ids, item_embeddings = export.embed_catalogue(model.candidate_tower, catalogue, tf_transform_output,
                                                     tf_transform_output.transform_features_layer())
  print(f'catalogue items={args.items} embedded in {time.perf_counter() - started:.1f}s '
        f'(embedding_dim={item_embeddings.shape[1]})')

  scorer = None
  user_names = [f'u{u}' for u in range(args.users)]
  if args.item_item_weight > 0:
    # Generated histories over the catalogue's first `covered` columns (the popular ones).
    histories = item_item.histories_from_sets(
        item_item_fit.generated_histories(args.covered, args.users, ITEMS_PER_USER, seed=0))
    scorer = item_item.ItemItemScorer.fit(histories, args.items, hparams.item_item_l2, args.covered)
    print(f'item-item: users={args.users} covered={scorer.num_covered}')
  real_users = next(iter(example_columns.serialized_examples(train_files).batch(args.requests))).numpy()
  requests = renamed_examples(real_users, features.USER_ID, user_names[:args.requests])

  answers = {}
  with tempfile.TemporaryDirectory() as work_dir:
    for index in hparams_lib.INDEXES:
      export_dir = os.path.join(work_dir, index)
      started = time.perf_counter()
      export.export_retrieval_model(
          model.query_tower, item_ids, item_embeddings, tf_transform_output,
          hparams_lib.RetrievalHyperparameters(item_item_weight=args.item_item_weight, index=index), export_dir,
          item_item=scorer)
      exported = time.perf_counter() - started
      serve = loading.load_retrieval_model(export_dir).signatures[export.SERVING_SIGNATURE]
      for request in requests[:WARMUP_REQUESTS]:
        serve(examples=tf.constant([request]))
      timings, ids = [], []
      for request in requests:
        begin = time.perf_counter()
        answer = serve(examples=tf.constant([request]))[export.ITEM_IDS_OUTPUT].numpy()
        timings.append(time.perf_counter() - begin)
        ids.append(set(answer[0].tolist()))
      answers[index] = ids
      print(f'index={index} items={args.items} item_item_weight={args.item_item_weight:g} export_s={exported:.1f} '
            f'p50_ms={_percentile_ms(timings, 50):.2f} p99_ms={_percentile_ms(timings, 99):.2f} '
            f'requests={len(requests)}')
  scann_ids, exact_ids = answers[hparams_lib.SCANN_INDEX], answers[hparams_lib.BRUTE_FORCE_INDEX]
  overlap = np.mean([len(a & b) / len(b) for a, b in zip(scann_ids, exact_ids)])
  print(f'scann top-{hparams.top_k} overlap with brute force: {overlap:.4f}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
