"""katib-trial-controller: Trials → jobs, metric logs → observations and conditions, finalizer → cleanup."""

__version__ = "0.1.0"
