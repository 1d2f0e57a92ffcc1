import sys

from katib_trial_controller.main import main

sys.exit(main())
