"""Pure generation logic: what the pipeline asks of a text model and how it asks (no I/O)."""
