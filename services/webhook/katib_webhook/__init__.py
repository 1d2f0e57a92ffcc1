"""Katib's admission webhooks (``katib-webhook``): Experiment defaulting and validation, Pod injection."""
