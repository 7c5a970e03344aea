"""Test session setup: Keras 2 for TFRS before anything imports TensorFlow, and shared fixtures."""

from pipeline import environment

environment.use_legacy_keras()
