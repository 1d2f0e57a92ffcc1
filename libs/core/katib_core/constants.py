"""Names Katib gives to things: API group, labels, condition types and reasons, enum values, env.

Shared by the SDK, the webhook and the controllers so that no service keeps its own copy. The
enums are ``StrEnum``: each member *is* its wire string, so they compare equal to the plain
strings found in CRD JSON.
"""

from __future__ import annotations

from typing import Final

from katib_core.enums import StrEnum

# -- API -----------------------------------------------------------------------------------

GROUP: Final = "kubeflow.org"
VERSION: Final = "v1beta1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
EXPERIMENT_KIND: Final = "Experiment"
TRIAL_KIND: Final = "Trial"
SUGGESTION_KIND: Final = "Suggestion"
EXPERIMENT_PLURAL: Final = "experiments"
TRIAL_PLURAL: Final = "trials"
SUGGESTION_PLURAL: Final = "suggestions"

# -- labels, finalizers, env ---------------------------------------------------------------

EXPERIMENT_LABEL: Final = "katib.kubeflow.org/experiment"
TRIAL_LABEL: Final = "katib.kubeflow.org/trial"
SUGGESTION_LABEL: Final = "katib.kubeflow.org/suggestion"
#: Namespaces with this label set to ``enabled`` get the pod webhook.
METRICS_COLLECTOR_INJECTION_LABEL: Final = "katib.kubeflow.org/metrics-collector-injection"
#: Trial finalizer that deletes the trial's metric logs before the Trial goes away.
CLEAN_METRICS_FINALIZER: Final = "clean-metrics-in-db"

#: Set by the pod webhook on the primary container: the Trial a process reports for.
TRIAL_NAME_ENV: Final = "KATIB_TRIAL_NAME"
#: pykatib: where ``report_metrics`` pushes when no address is passed (local mode sets it).
DB_MANAGER_ADDRESS_ENV: Final = "KATIB_DB_MANAGER_ADDRESS"
DEFAULT_DB_MANAGER_ADDRESS: Final = "katib-db-manager.kubeflow:6789"
DEFAULT_DB_MANAGER_PORT: Final = 6789
DEFAULT_PRIMARY_CONTAINER_NAME: Final = "training-container"

#: The value Katib stores and shows for a metric that was never reported.
UNAVAILABLE: Final = "unavailable"
#: pykatib's ``report_metrics(..., step=N)`` sends N as one more metric log of this name, with the
#: same timestamp as the values it belongs to (Katib's proto has no step field; docs/sdk.md).
STEP_METRIC: Final = "pykatib.step"
#: ``status`` of a condition that holds.
CONDITION_TRUE: Final = "True"
CONDITION_FALSE: Final = "False"


# -- enums of the CRDs ---------------------------------------------------------------------


class ExperimentConditionType(StrEnum):
    CREATED = "Created"
    RUNNING = "Running"
    RESTARTING = "Restarting"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class TrialConditionType(StrEnum):
    CREATED = "Created"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    KILLED = "Killed"
    FAILED = "Failed"
    METRICS_UNAVAILABLE = "MetricsUnavailable"
    EARLY_STOPPED = "EarlyStopped"


class SuggestionConditionType(StrEnum):
    CREATED = "Created"
    DEPLOYMENT_READY = "DeploymentReady"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class ExperimentReason(StrEnum):
    CREATED = "ExperimentCreated"
    RUNNING = "ExperimentRunning"
    RESTARTING = "ExperimentRestarting"
    GOAL_REACHED = "ExperimentGoalReached"
    MAX_TRIALS_REACHED = "ExperimentMaxTrialsReached"
    SUGGESTION_END_REACHED = "ExperimentSuggestionEndReached"
    FAILED = "ExperimentFailed"


class TrialReason(StrEnum):
    CREATED = "TrialCreated"
    RUNNING = "TrialRunning"
    SUCCEEDED = "TrialSucceeded"
    METRICS_UNAVAILABLE = "MetricsUnavailable"
    FAILED = "TrialFailed"
    EARLY_STOPPED = "TrialEarlyStopped"


class ObjectiveType(StrEnum):
    MINIMIZE = "minimize"
    MAXIMIZE = "maximize"


class MetricStrategyType(StrEnum):
    MIN = "min"
    MAX = "max"
    LATEST = "latest"


class ParameterType(StrEnum):
    DOUBLE = "double"
    INT = "int"
    DISCRETE = "discrete"
    CATEGORICAL = "categorical"
    UNKNOWN = "unknown"


class Distribution(StrEnum):
    UNIFORM = "uniform"
    LOG_UNIFORM = "logUniform"
    NORMAL = "normal"
    LOG_NORMAL = "logNormal"
    UNKNOWN = "unknown"


class CollectorKind(StrEnum):
    STDOUT = "StdOut"
    FILE = "File"
    TENSORFLOW_EVENT = "TensorFlowEvent"
    PROMETHEUS_METRIC = "PrometheusMetric"
    CUSTOM = "Custom"
    #: The trial pushes with ``report_metrics``: no sidecar (was ``None`` before Katib 0.18).
    PUSH = "Push"


class FileSystemKind(StrEnum):
    DIRECTORY = "Directory"
    FILE = "File"
    INVALID = "Invalid"


class FileFormat(StrEnum):
    TEXT = "TEXT"
    JSON = "JSON"


class ComparisonType(StrEnum):
    EQUAL = "equal"
    LESS = "less"
    GREATER = "greater"


class ResumePolicy(StrEnum):
    NEVER = "Never"
    LONG_RUNNING = "LongRunning"
    FROM_VOLUME = "FromVolume"
