"""``python -m katib_metrics_collector``: the same as the ``katib-metrics-collector`` command."""

import sys

from katib_metrics_collector.main import main

sys.exit(main())
