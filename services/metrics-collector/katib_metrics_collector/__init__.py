"""Katib's pull-mode metrics collector (``katib-metrics-collector``), the sidecar of StdOut and File trials."""
