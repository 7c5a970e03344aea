"""Retrieval model: two towers narrowing the catalogue to candidates."""
