"""pykatib's local mode: Katib Experiments on this machine, with the same logic as in a cluster."""
