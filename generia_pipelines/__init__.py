"""Dagster code location that populates Generia worlds with AI characters and their posts."""

__version__ = "0.1.0"
