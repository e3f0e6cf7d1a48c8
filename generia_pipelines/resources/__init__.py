"""Dagster resources: configuration and lifecycle around the Dagster-free clients."""
