"""What every pykatib controller runs on: kopf watches → caches + a work queue → worker threads.

Shared by ``katib-experiment-controller`` and ``katib-trial-controller`` (services never import
each other). Decisions stay in ``katib_core``; this package only moves objects in and out.
"""
