"""Local mode: Experiments on this machine, trials as subprocesses (issue 7)."""
