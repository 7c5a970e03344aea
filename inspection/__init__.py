"""Inspection of past pipeline runs: ML Metadata queries, a CLI and a static HTML run report."""
