"""I/O clients for the Generia platform and image/text providers, free of Dagster wiring."""
