"""Inputs and feature encoders shared by the ranking and retrieval trainers."""
