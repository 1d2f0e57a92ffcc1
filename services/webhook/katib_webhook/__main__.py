"""``python -m katib_webhook``: the same as the ``katib-webhook`` command."""

import sys

from katib_webhook.main import main

sys.exit(main())
