"""A four-row transformed split over three users and three items, for ranking Trainer tests that train or stub
one (ids are vocabulary indices; ratings in stars)."""

import tensorflow as tf

from schema import features
from trainer.common import inputs
from trainer.common.feature_specs import FeatureKind, FeatureSpec, TowerFeatures

X = features.transformed_name
# Each tower reads only its id, a vocabulary of 3.
TOWERS = TowerFeatures(user=[FeatureSpec(features.USER_ID, FeatureKind.ID, 3)],
                       item=[FeatureSpec(features.ITEM_ID, FeatureKind.ID, 3)])
# (user, item, rating): (0, 0, 4), (1, 1, 5), (2, 2, 5), (0, 2, 2).
SPLIT = inputs.InMemorySplit({
    X(features.USER_ID): tf.constant([0, 1, 2, 0], tf.int64),
    X(features.ITEM_ID): tf.constant([0, 1, 2, 2], tf.int64),
    X(features.RATING): tf.constant([4.0, 5.0, 5.0, 2.0]),
})
