"""Ranking model: predicts a user's rating of an item (stars)."""
