"""The three readers of an item's current attributes agree on one interactions file.

The item catalog (`ingestion.prepare`, items.csv), the retrieval candidates (`trainer.retrieval.candidates`) and
the serving catalogue (`serving.assets`, catalogue.jsonl) each take every `item_*` column's latest non-missing
value (`ingestion.attributes`). Each has its own tests; this one runs all three on the same file, whose items
change between their rows, and checks them against one answer worked out by hand.
"""

import csv
import json
import os

import tensorflow as tf

from ingestion import examples
from ingestion import prepare
from ingestion import splits
from schema import features
from serving import assets as assets_lib
from trainer.retrieval import candidates

# i1 is renamed at t=30 and given no year then; the newest row (t=50) has no title but a new year. i2's only
# year is on its older row. The file is not in time order, so the first row met is not the answer.
CSV = ('user_id,item_id,rating,timestamp,user_gender,item_title,item_release_year\n'
       'u1,i1,4,50,F,,1996\n'
       'u2,i2,3,40,M,Beta,\n'
       'u1,i2,5,10,F,Beta (old),2001\n'
       'u3,i1,2,30,M,Heat (1995),\n'
       'u2,i1,1,20,M,Heat,1995\n'
       'u3,i3,4,45,M,Gamma,1980\n')
# By hand, per column, the value of the latest row that has one.
EXPECTED = {
    'i1': {features.ITEM_ID: 'i1', features.ITEM_TITLE: 'Heat (1995)', features.ITEM_RELEASE_YEAR: '1996'},
    'i2': {features.ITEM_ID: 'i2', features.ITEM_TITLE: 'Beta', features.ITEM_RELEASE_YEAR: '2001'},
    'i3': {features.ITEM_ID: 'i3', features.ITEM_TITLE: 'Gamma', features.ITEM_RELEASE_YEAR: '1980'},
}


def _as_text(values: dict) -> dict:
  """column -> value as text (bytes decoded, numbers formatted); missing values left out."""
  out = {}
  for column, value in values.items():
    if value is None or value == '':
      continue
    out[column] = value.decode('utf-8') if isinstance(value, bytes) else str(value)
  return out


def test_item_catalog_candidates_and_serving_catalogue_agree(tmp_path) -> None:
  csv_path = tmp_path / 'interactions.csv'
  csv_path.write_text(CSV, encoding='utf-8')
  # Temporal split, eval fraction 1/3: the two newest rows (t=50, t=45) are eval, so i3 is an eval-only item.
  prepared = prepare.prepare_examples(str(csv_path), splits.SplitSpec('temporal', eval_fraction=1 / 3),
                                      str(tmp_path / 'prepared'))
  split_files = [examples.example_path(prepared.examples_dir, name) for name in (splits.TRAIN_SPLIT, splits.EVAL_SPLIT)]
  assert prepared.counts == {splits.TRAIN_SPLIT: 4, splits.EVAL_SPLIT: 2}

  with open(prepared.catalog_path, encoding='utf-8', newline='') as f:
    item_catalog = {row[features.ITEM_ID]: _as_text(row) for row in csv.DictReader(f)}

  candidate_items = {}
  for serialized in candidates.catalogue_examples(split_files).numpy():
    example = tf.train.Example.FromString(serialized)
    values = {name: list(getattr(feature, feature.WhichOneof('kind')).value)[0]
              for name, feature in example.features.feature.items()}
    candidate_items[values[features.ITEM_ID].decode('utf-8')] = _as_text(values)

  assets_dir = str(tmp_path / 'assets')
  assets_lib.write_serving_assets(split_files[:1], split_files, assets_dir)
  with open(os.path.join(assets_dir, assets_lib.CATALOGUE_FILE), encoding='utf-8') as f:
    serving_catalogue = {item[features.ITEM_ID]: _as_text(item) for item in map(json.loads, f)}

  assert item_catalog == EXPECTED
  assert candidate_items == EXPECTED
  assert serving_catalogue == EXPECTED
