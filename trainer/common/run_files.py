"""Names of the files the trainers write into their ModelRun artifact (inspection/report.py reads them)."""

# Keras history of either trainer: metric name -> one value per epoch (JSON).
HISTORY_FILE = 'history.json'
# The retrieval model's FactorizedTopK accuracies after training (JSON).
EVALUATION_FILE = 'evaluation.json'
# The ranking model's neighbourhood blend weight and each candidate's validation RMSE (JSON; with the blend on).
BLEND_FILE = 'neighbourhood_blend.json'
# The retrieval model's item-item scores: weight, penalty, users, interactions and items covered (JSON; weight > 0).
ITEM_ITEM_FILE = 'item_item.json'
