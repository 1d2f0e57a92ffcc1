"""katib-experiment-controller: Experiments → Suggestion record → Trials, and the Experiment's status."""

__version__ = "0.1.0"
