"""Trainer modules: shared inputs and towers (common/), the ranking and the retrieval models."""
