"""Katib's suggestion algorithms, in-process, behind one call (optuna samplers, as Katib's own service uses).

Kept apart from ``katib_core`` and the SDK so that trial images never carry optuna::

    suggester = Suggester()
    reply = suggester.suggest(plan.request)          # plan from katib_core.planning
    validate_algorithm_settings(experiment)          # the webhook's ValidateAlgorithmSettings
"""

from katib_core.search_algorithms import ALGORITHMS
from katib_suggest.algorithms import Suggester, validate_algorithm_settings

__all__ = ["ALGORITHMS", "Suggester", "validate_algorithm_settings"]
