"""ScaNN + item-item export: ScaNN's padding entries do not hide a valid item-item candidate of the same column."""

import numpy as np
import tensorflow as tf

from schema import features
from tests.retrieval_export_test import TRAIN_ROWS, is_user_column, serialized
from tests.transform_fixtures import analyzed_copy, movielens_like_row
from trainer.common import feature_specs
from trainer.retrieval import export, hparams as hparams_lib, item_item
from trainer.retrieval.model import RetrievalModel


class _PaddedScannAnswer(tf.Module):
  """Stands in for a ScaNN index that found one item for every query: column 3, then ScaNN's padding.

  ScaNN pads a short answer with its first identifier scored NaN (tfrs ScaNN, 40 items in 20 leaves searching 1:
  answers `[116, 122, 100, 100]` scored `[3.25, 2.83, nan, nan]` for identifiers 100..139); the item-item path
  indexes catalogue columns, so the padding is column 0.
  """

  def __call__(self, queries: tf.Tensor):
    """Args: queries: float32 `[batch, embedding_dim]`. Returns: (float32 `[batch, 2]`, int64 `[batch, 2]`)."""
    batch_size = tf.shape(queries)[0]
    return (tf.tile(tf.constant([[0.5, float('nan')]], tf.float32), [batch_size, 1]),
            tf.tile(tf.constant([[3, 0]], tf.int64), [batch_size, 1]))


def test_scann_padding_does_not_drop_the_first_catalogue_item_from_the_item_item_candidates(tmp_path, monkeypatch):
  tf_transform_output = analyzed_copy(TRAIN_ROWS, str(tmp_path / 'transform'))
  hparams = hparams_lib.RetrievalHyperparameters(id_embedding_dim=4, feature_embedding_dim=2, embedding_dim=3,
                                                 top_k=2, index=hparams_lib.SCANN_INDEX, item_item_weight=100.0)
  model = RetrievalModel(feature_specs.model_features(tf_transform_output), hparams)
  catalogue = tf.constant([serialized(movielens_like_row('u1', f'i{n}', 3.0, year=(1950 + n,))) for n in range(20)])
  item_ids, item_embeddings = export.embed_catalogue(model.candidate_tower, catalogue, tf_transform_output,
                                                     tf_transform_output.transform_features_layer())
  assert item_ids.numpy().tolist()[:8] == [f'i{n}'.encode() for n in range(8)]  # column n is item i<n>
  # Covered items i0, i1, i7; B[i1, i0] = 5, B[i1, i7] = 1. u1 has i1: item-item scores i0 5, i1 0 (seen), i7 1,
  # so its two item-item candidates are i0 and i7.
  weights = np.zeros([3, 3], np.float32)
  weights[1, 0], weights[1, 2] = 5.0, 1.0
  scorer = item_item.ItemItemScorer(item_item.histories_from_sets({b'u1': {1}}),
                                    item_item.ItemItemWeights(np.array([0, 1, 7]), weights), 20)
  monkeypatch.setattr(export, 'candidate_index', lambda ids, embeddings, hparams: _PaddedScannAnswer())
  export_dir = str(tmp_path / 'model')
  export.export_retrieval_model(model.query_tower, item_ids, item_embeddings, tf_transform_output, hparams,
                                export_dir, item_item=scorer)

  requests = tf.constant([serialized(TRAIN_ROWS[0], keep=is_user_column)])
  assert TRAIN_ROWS[0][features.USER_ID] == 'u1'
  reloaded = tf.saved_model.load(export_dir)
  exact = reloaded.signatures[export.CATALOGUE_SCORES_SIGNATURE](examples=requests)[export.SCORES_OUTPUT].numpy()
  answer = reloaded.signatures[export.SERVING_SIGNATURE](examples=requests)
  # Candidates: i3 (ScaNN), the padding (column 0, no candidate), i0 and i7 (item-item). The towers' scores are
  # within [-1, 1], so i0 (500 + tower) and i7 (100 + tower) answer. Before, i0 counted as a repeat of the
  # padding entry and scored -inf: the answer was i7, i3.
  assert answer[export.ITEM_IDS_OUTPUT].numpy().tolist() == [[b'i0', b'i7']]
  np.testing.assert_allclose(answer[export.SCORES_OUTPUT].numpy(), exact[:, [0, 7]], rtol=1e-5, atol=1e-5)
