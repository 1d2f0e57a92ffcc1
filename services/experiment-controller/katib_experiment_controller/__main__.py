import sys

from katib_experiment_controller.main import main

sys.exit(main())
