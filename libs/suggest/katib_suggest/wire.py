"""Katib's ``api.v1.beta1`` Suggestion/EarlyStopping messages ↔ our core types, in one place.

The ``katib-suggestion`` service reads requests with it and ``RemoteSuggester`` writes them, so
the two sides cannot drift. Requests are built as Katib's controller builds them
(docs/suggestion.md#what-katib-sends): the whole Experiment (algorithm settings already merged
with the Suggestion's status), every trial with its parameter assignments, its last condition
only and one value per metric, ``current_request_number`` (how many to answer) and
``total_request_number`` (all assignments ever requested, this batch included).

Katib's ``Experiment`` message carries no namespace or uid, so an algorithm's state is keyed by
the Experiment's name; the algorithms check that the history extends what they remember and
rebuild otherwise, so two namespaces' Experiments of one name cannot mix.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from katib_api.v1beta1 import api_pb2
from katib_core import suggestions
from katib_core.constants import ComparisonType, Distribution, ObjectiveType, ParameterType, TrialConditionType
from katib_core.models import (
    AlgorithmSetting,
    AlgorithmSpec,
    EarlyStoppingRule,
    EarlyStoppingSetting,
    EarlyStoppingSpec,
    Experiment,
    ExperimentSpec,
    FeasibleSpace,
    GraphConfig,
    NasConfig,
    ObjectiveSpec,
    ObjectMeta,
    Operation,
    ParameterAssignment,
    ParameterSpec,
    TrialAssignment,
)
from katib_core.suggestions import SuggestionReply, SuggestionRequest, SuggestionTrial

_PARAMETER_TYPES: Final[dict[str, Any]] = {
    ParameterType.DOUBLE: api_pb2.DOUBLE,
    ParameterType.INT: api_pb2.INT,
    ParameterType.DISCRETE: api_pb2.DISCRETE,
    ParameterType.CATEGORICAL: api_pb2.CATEGORICAL,
}
_DISTRIBUTIONS: Final[dict[str, Any]] = {
    Distribution.UNIFORM: api_pb2.UNIFORM,
    Distribution.LOG_UNIFORM: api_pb2.LOG_UNIFORM,
    Distribution.NORMAL: api_pb2.NORMAL,
    Distribution.LOG_NORMAL: api_pb2.LOG_NORMAL,
}
_OBJECTIVES: Final[dict[str, Any]] = {
    ObjectiveType.MINIMIZE: api_pb2.MINIMIZE,
    ObjectiveType.MAXIMIZE: api_pb2.MAXIMIZE,
}
_CONDITIONS: Final[dict[str, Any]] = {
    TrialConditionType.CREATED: api_pb2.TrialStatus.CREATED,
    TrialConditionType.RUNNING: api_pb2.TrialStatus.RUNNING,
    TrialConditionType.SUCCEEDED: api_pb2.TrialStatus.SUCCEEDED,
    TrialConditionType.KILLED: api_pb2.TrialStatus.KILLED,
    TrialConditionType.FAILED: api_pb2.TrialStatus.FAILED,
    TrialConditionType.METRICS_UNAVAILABLE: api_pb2.TrialStatus.METRICSUNAVAILABLE,
    TrialConditionType.EARLY_STOPPED: api_pb2.TrialStatus.EARLYSTOPPED,
}
_COMPARISONS: Final[dict[str, Any]] = {
    ComparisonType.EQUAL: api_pb2.EQUAL,
    ComparisonType.LESS: api_pb2.LESS,
    ComparisonType.GREATER: api_pb2.GREATER,
}


def _inverse(table: Mapping[str, Any]) -> dict[int, str]:
    return {number: str(name) for name, number in table.items()}


_PARAMETER_TYPE_NAMES: Final = _inverse(_PARAMETER_TYPES)
_DISTRIBUTION_NAMES: Final = _inverse(_DISTRIBUTIONS)
_OBJECTIVE_NAMES: Final = _inverse(_OBJECTIVES)
_CONDITION_NAMES: Final = _inverse(_CONDITIONS)
_COMPARISON_NAMES: Final = _inverse(_COMPARISONS)


# --- Experiment -------------------------------------------------------------------------------


def experiment_to_proto(experiment: Experiment) -> api_pb2.Experiment:
    """The Experiment as Katib's controller sends it (``ConvertExperiment``)."""
    spec = experiment.spec or ExperimentSpec()
    algorithm = spec.algorithm or AlgorithmSpec()
    message = api_pb2.Experiment(name=(experiment.metadata.name if experiment.metadata else None) or "")
    out = message.spec
    out.algorithm.CopyFrom(algorithm_to_proto(algorithm))
    out.objective.CopyFrom(_objective_to_proto(spec.objective))
    out.parameter_specs.parameters.extend(_parameter_to_proto(p) for p in spec.parameters or ())
    if spec.early_stopping is not None:
        out.early_stopping.CopyFrom(early_stopping_to_proto(spec.early_stopping))
    if spec.parallel_trial_count is not None:
        out.parallel_trial_count = spec.parallel_trial_count
    if spec.max_trial_count is not None:
        out.max_trial_count = spec.max_trial_count
    if spec.nas_config is not None:
        out.nas_config.CopyFrom(_nas_to_proto(spec.nas_config))
    return message


def experiment_from_proto(message: api_pb2.Experiment) -> Experiment:
    """The Experiment a Katib controller sent, as our model (only what the message carries)."""
    spec = message.spec
    return Experiment(
        metadata=ObjectMeta(name=message.name or None),
        spec=ExperimentSpec(
            parameters=[_parameter_from_proto(p) for p in spec.parameter_specs.parameters],
            objective=_objective_from_proto(spec.objective) if spec.HasField("objective") else None,
            algorithm=algorithm_from_proto(spec.algorithm) if spec.HasField("algorithm") else None,
            early_stopping=early_stopping_from_proto(spec.early_stopping) if spec.HasField("early_stopping") else None,
            parallel_trial_count=spec.parallel_trial_count or None,
            max_trial_count=spec.max_trial_count or None,
            nas_config=_nas_from_proto(spec.nas_config) if spec.HasField("nas_config") else None,
        ),
    )


def algorithm_to_proto(algorithm: AlgorithmSpec) -> api_pb2.AlgorithmSpec:
    return api_pb2.AlgorithmSpec(
        algorithm_name=algorithm.algorithm_name or "",
        algorithm_settings=[
            api_pb2.AlgorithmSetting(name=s.name or "", value=s.value or "") for s in algorithm.algorithm_settings or ()
        ],
    )


def algorithm_from_proto(message: api_pb2.AlgorithmSpec) -> AlgorithmSpec:
    return AlgorithmSpec(
        algorithm_name=message.algorithm_name,
        algorithm_settings=[AlgorithmSetting(name=s.name, value=s.value) for s in message.algorithm_settings] or None,
    )


def early_stopping_to_proto(spec: EarlyStoppingSpec) -> api_pb2.EarlyStoppingSpec:
    return api_pb2.EarlyStoppingSpec(
        algorithm_name=spec.algorithm_name or "",
        algorithm_settings=[
            api_pb2.EarlyStoppingSetting(name=s.name or "", value=s.value or "") for s in spec.algorithm_settings or ()
        ],
    )


def early_stopping_from_proto(message: api_pb2.EarlyStoppingSpec) -> EarlyStoppingSpec:
    return EarlyStoppingSpec(
        algorithm_name=message.algorithm_name,
        algorithm_settings=[EarlyStoppingSetting(name=s.name, value=s.value) for s in message.algorithm_settings]
        or None,
    )


def _objective_to_proto(objective: ObjectiveSpec | None) -> api_pb2.ObjectiveSpec:
    objective = objective or ObjectiveSpec()
    message = api_pb2.ObjectiveSpec(
        type=_OBJECTIVES.get(objective.type or "", api_pb2.UNKNOWN),
        objective_metric_name=objective.objective_metric_name or "",
        additional_metric_names=objective.additional_metric_names or [],
    )
    if objective.goal is not None:
        message.goal = objective.goal
    return message


def _objective_from_proto(message: api_pb2.ObjectiveSpec) -> ObjectiveSpec:
    return ObjectiveSpec(
        type=_OBJECTIVE_NAMES.get(message.type),
        # proto3 cannot tell an unset goal from 0.0; Katib sends it only when the user set one.
        goal=message.goal or None,
        objective_metric_name=message.objective_metric_name or None,
        additional_metric_names=list(message.additional_metric_names) or None,
    )


def _parameter_to_proto(parameter: ParameterSpec) -> api_pb2.ParameterSpec:
    space = parameter.feasible_space or FeasibleSpace()
    return api_pb2.ParameterSpec(
        name=parameter.name or "",
        parameter_type=_PARAMETER_TYPES.get(parameter.parameter_type or "", api_pb2.UNKNOWN_TYPE),
        feasible_space=api_pb2.FeasibleSpace(
            max=space.max or "",
            min=space.min or "",
            list=list(space.list or ()),
            step=space.step or "",
            distribution=_DISTRIBUTIONS.get(space.distribution or "", api_pb2.DISTRIBUTION_UNSPECIFIED),
        ),
    )


def _parameter_from_proto(message: api_pb2.ParameterSpec) -> ParameterSpec:
    space = message.feasible_space
    return ParameterSpec(
        name=message.name,
        # UNKNOWN_TYPE stays visible, so validation names the parameter instead of guessing.
        parameter_type=_PARAMETER_TYPE_NAMES.get(message.parameter_type, ParameterType.UNKNOWN),
        feasible_space=FeasibleSpace(
            max=space.max or None,
            min=space.min or None,
            list=list(space.list) or None,
            step=space.step or None,
            distribution=_DISTRIBUTION_NAMES.get(space.distribution),
        ),
    )


def _nas_to_proto(nas: NasConfig) -> api_pb2.NasConfig:
    graph = nas.graph_config or GraphConfig()
    message = api_pb2.NasConfig(
        graph_config=api_pb2.GraphConfig(
            num_layers=graph.num_layers or 0,
            input_sizes=graph.input_sizes or [],
            output_sizes=graph.output_sizes or [],
        )
    )
    for operation in nas.operations or ():
        added = message.operations.operation.add(operation_type=operation.operation_type or "")
        added.parameter_specs.parameters.extend(_parameter_to_proto(p) for p in operation.parameters or ())
    return message


def _nas_from_proto(message: api_pb2.NasConfig) -> NasConfig:
    graph = message.graph_config
    return NasConfig(
        graph_config=GraphConfig(
            num_layers=graph.num_layers or None,
            input_sizes=list(graph.input_sizes) or None,
            output_sizes=list(graph.output_sizes) or None,
        ),
        operations=[
            Operation(
                operation_type=o.operation_type or None,
                parameters=[_parameter_from_proto(p) for p in o.parameter_specs.parameters] or None,
            )
            for o in message.operations.operation
        ]
        or None,
    )


# --- Trials -------------------------------------------------------------------------------------


def trial_from_proto(message: api_pb2.Trial) -> SuggestionTrial:
    """A trial as our algorithms see it. Katib already picked each metric's value by its strategy."""
    return SuggestionTrial(
        name=message.name,
        assignments=tuple((a.name, a.value) for a in message.spec.parameter_assignments.assignments),
        condition=_CONDITION_NAMES.get(message.status.condition),
        metrics=tuple((m.name, m.value) for m in message.status.observation.metrics),
    )


def trial_to_proto(trial: SuggestionTrial, objective: ObjectiveSpec | None) -> api_pb2.Trial:
    """A trial as Katib's controller sends it (no condition yet: ``CREATED``, the proto default)."""
    message = api_pb2.Trial(name=trial.name)
    message.spec.objective.CopyFrom(_objective_to_proto(objective))
    message.spec.parameter_assignments.assignments.extend(
        api_pb2.ParameterAssignment(name=n, value=v) for n, v in trial.assignments
    )
    message.status.condition = _CONDITIONS.get(trial.condition or "", api_pb2.TrialStatus.CREATED)
    message.status.observation.metrics.extend(api_pb2.Metric(name=n, value=v) for n, v in trial.metrics)
    return message


def succeeded_trial_names(trials: Iterable[api_pb2.Trial]) -> list[str]:
    """The trials whose last condition is Succeeded: the ones Katib's medianstop reads logs of."""
    return [t.name for t in trials if t.status.condition == api_pb2.TrialStatus.SUCCEEDED]


# --- GetSuggestions -----------------------------------------------------------------------------


def request_to_proto(request: SuggestionRequest) -> api_pb2.GetSuggestionsRequest:
    """``GetSuggestionsRequest`` for ``request``: every issued assignment as a trial (oldest first),
    with its condition and metrics when ``request.history`` knows the trial."""
    spec = request.experiment.spec
    objective = spec.objective if spec else None
    known = {t.name: t for t in request.history}
    trials = []
    for assignment in request.issued:
        name = assignment.name or ""
        pairs = tuple((a.name or "", a.value or "") for a in assignment.parameter_assignments or ())
        seen = known.get(name)
        trial = trial_to_proto(
            SuggestionTrial(name, pairs, seen.condition if seen else None, seen.metrics if seen else ()), objective
        )
        trial.spec.labels.update(assignment.labels or {})  # as Katib: the Trial's labels (PBT's lineage)
        trials.append(trial)
    return api_pb2.GetSuggestionsRequest(
        experiment=experiment_to_proto(request.experiment),
        trials=trials,
        current_request_number=request.count,
        total_request_number=len(request.issued) + request.count,
    )


def request_from_proto(message: api_pb2.GetSuggestionsRequest) -> SuggestionRequest:
    """What our algorithms are asked for a Katib ``GetSuggestionsRequest``.

    Every trial sent counts as issued, in the order sent. Katib leaves MetricsUnavailable trials
    out, so when ``total_request_number - current_request_number`` says more assignments were
    issued than trials came, the difference is counted with empty placeholders: seeded
    algorithms derive each batch's seed from how many assignments came before it, and a count
    that went down would repeat an earlier batch.
    """
    experiment = experiment_from_proto(message.experiment)
    trials = tuple(trial_from_proto(t) for t in message.trials)
    issued = [
        TrialAssignment(
            name=t.name,
            parameter_assignments=[ParameterAssignment(name=n, value=v) for n, v in t.assignments],
            labels=dict(m.spec.labels) or None,
        )
        for t, m in zip(trials, message.trials, strict=True)
    ]
    missing = message.total_request_number - message.current_request_number - len(issued)
    issued.extend(TrialAssignment(name="", parameter_assignments=[]) for _ in range(max(missing, 0)))
    return SuggestionRequest(
        experiment=experiment,
        trials=trials,
        issued=tuple(issued),
        count=max(message.current_request_number, 0),
        key=suggestions.experiment_key(experiment),
    )


def reply_to_proto(reply: SuggestionReply, algorithm: AlgorithmSpec | None) -> api_pb2.GetSuggestionsReply:
    """``GetSuggestionsReply``: the assignments (with trial names and labels when the algorithm gave
    some) and, when the algorithm returned settings (its state: hyperband, PBT), ``algorithm`` with
    them merged into the request's — Katib's controller merges that into the Suggestion's status
    and sends it back in the next request's Experiment. Like Katib's optuna service, algorithms
    without state send no ``algorithm``."""
    message = api_pb2.GetSuggestionsReply()
    for index, assignment in enumerate(reply.assignments):
        added = message.parameter_assignments.add(
            assignments=[api_pb2.ParameterAssignment(name=a.name or "", value=a.value or "") for a in assignment]
        )
        if index < len(reply.trial_names) and reply.trial_names[index]:
            added.trial_name = reply.trial_names[index]
        if index < len(reply.labels) and reply.labels[index]:
            added.labels.update(reply.labels[index])
    if algorithm is not None and reply.algorithm_settings is not None:
        merged = suggestions.merge_settings(algorithm.algorithm_settings, reply.algorithm_settings)
        message.algorithm.CopyFrom(algorithm_to_proto(algorithm.model_copy(update={"algorithm_settings": merged})))
    return message


def reply_from_proto(message: api_pb2.GetSuggestionsReply, count: int, *, running: bool = False) -> SuggestionReply:
    """Our reply for a ``GetSuggestionsReply`` to a request for ``count``.

    Katib's protocol has no "the end": its controller refuses fewer than ``count`` and asks again.
    Ours takes fewer as they come (a grid's last points; hyperband's rung of one, or none while
    it waits for a rung) and asks again later; the end is an empty answer while no trial is
    ``running`` (nothing can change the algorithm's mind any more). The returned ``algorithm``
    settings are the algorithm's state, kept as Katib does.
    """
    assignments = tuple(
        tuple(ParameterAssignment(name=a.name, value=a.value) for a in p.assignments)
        for p in message.parameter_assignments
    )
    labels = tuple(dict(p.labels) for p in message.parameter_assignments)
    names = tuple(p.trial_name for p in message.parameter_assignments)
    settings = None
    if message.HasField("algorithm") and message.algorithm.algorithm_settings:
        settings = tuple(algorithm_from_proto(message.algorithm).algorithm_settings or ())
    return SuggestionReply(
        assignments=assignments,
        exhausted=not assignments and count > 0 and not running,
        labels=labels if any(labels) else (),
        trial_names=names if any(names) else (),
        algorithm_settings=settings,
    )


# --- EarlyStopping ------------------------------------------------------------------------------


def rules_to_proto(rules: Sequence[EarlyStoppingRule]) -> list[api_pb2.EarlyStoppingRule]:
    return [
        api_pb2.EarlyStoppingRule(
            name=r.name or "",
            value=r.value or "",
            comparison=_COMPARISONS.get(r.comparison or "", api_pb2.UNKNOWN_COMPARISON),
            start_step=r.start_step or 0,
        )
        for r in rules
    ]


def rules_from_proto(messages: Iterable[api_pb2.EarlyStoppingRule]) -> list[EarlyStoppingRule]:
    """Katib's controller reads an unknown comparison as ``equal``; so do we."""
    return [
        EarlyStoppingRule(
            name=m.name,
            value=m.value,
            comparison=_COMPARISON_NAMES.get(m.comparison, ComparisonType.EQUAL),
            start_step=m.start_step,
        )
        for m in messages
    ]


__all__ = [
    "algorithm_from_proto",
    "algorithm_to_proto",
    "early_stopping_from_proto",
    "early_stopping_to_proto",
    "experiment_from_proto",
    "experiment_to_proto",
    "reply_from_proto",
    "reply_to_proto",
    "request_from_proto",
    "request_to_proto",
    "rules_from_proto",
    "rules_to_proto",
    "succeeded_trial_names",
    "trial_from_proto",
    "trial_to_proto",
]
