"""Ingestion: the interactions data contract, MovieLens adapter, splits and ExampleGen inputs.

Modules are imported explicitly (`from ingestion import interactions`); nothing is imported here so that
reading a CSV does not pull in TensorFlow.
"""
