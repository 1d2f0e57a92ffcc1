"""The Suggestion record and what suggestion algorithms are told (docs/katib-compat.md#suggestion-record).

The ``Suggestion`` CR named after its Experiment is the durable record of every assignment ever
issued, each with its trial name: Trials are created from it by name, so a controller that
restarts (or a second replica) can never issue or create a trial twice. ``record`` appends newly
suggested assignments (naming them); ``request`` builds what an algorithm is told. Called by
``planning``, the experiment controller and local mode; the algorithms live in ``katib_suggest``.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from katib_core import aggregation, conditions, constants, rendering, trial_conditions
from katib_core.constants import SuggestionConditionType, TrialConditionType
from katib_core.models import (
    AlgorithmSetting,
    EarlyStoppingRule,
    Experiment,
    ObjectMeta,
    ParameterAssignment,
    Suggestion,
    SuggestionSpec,
    SuggestionStatus,
    Trial,
    TrialAssignment,
)

#: What a trial name may be (a DNS-1123 label, as Kubernetes requires of a Pod's name parts).
_DNS_LABEL: Final = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
REASON_CREATED: Final = "SuggestionCreated"
REASON_READY: Final = "DeploymentReady"
REASON_RUNNING: Final = "SuggestionRunning"
REASON_SUCCEEDED: Final = "SuggestionSucceeded"
REASON_EXHAUSTED: Final = "SuggestionExhausted"
REASON_FAILED: Final = "SuggestionFailed"


@dataclass(frozen=True, slots=True)
class SuggestionTrial:
    """A trial as a suggestion algorithm sees it: assignments, newest condition, metric values."""

    name: str
    assignments: tuple[tuple[str, str], ...]
    condition: str | None
    #: ``(metric name, value)`` with each value picked by its strategy (``latest`` as fallback).
    metrics: tuple[tuple[str, str], ...] = ()

    def metric(self, name: str | None) -> str | None:
        return next((value for metric, value in self.metrics if metric == name), None)


@dataclass(frozen=True)
class SuggestionRequest:
    """Ask an algorithm for ``count`` more assignments.

    ``issued`` lists every assignment issued so far, oldest first (an algorithm that lost its
    state rebuilds from it). ``history`` is the experiment's trials converted per Katib's rules:
    given as ``trials``, or converted from the Trial objects in ``source`` on first use (only the
    algorithms that learn from results pay for it).
    """

    experiment: Experiment
    trials: tuple[SuggestionTrial, ...] | None
    issued: tuple[TrialAssignment, ...]
    count: int
    key: str = ""
    source: tuple[Trial, ...] = ()

    @functools.cached_property
    def history(self) -> tuple[SuggestionTrial, ...]:
        return self.trials if self.trials is not None else to_suggestion_trials(self.source)


@dataclass(frozen=True)
class SuggestionReply:
    """New assignments (each a list of ``ParameterAssignment``); ``exhausted`` when the space has no more.

    As in Katib's ``GetSuggestionsReply``, an algorithm may also name each new trial
    (``trial_names``; "" lets the controller pick), label it (``labels``: PBT's lineage) and return
    its settings (``algorithm_settings``: hyperband's and PBT's state). Returned settings replace the
    Suggestion status's ``algorithmSettings`` by name, and the next request's Experiment carries them
    (the spec's settings overlaid by the status's), so the state survives restarts in the record.
    """

    assignments: tuple[tuple[ParameterAssignment, ...], ...] = ()
    exhausted: bool = False
    labels: tuple[dict[str, str], ...] = field(default=())
    trial_names: tuple[str, ...] = field(default=())
    #: None: unchanged.
    algorithm_settings: tuple[AlgorithmSetting, ...] | None = None


def is_idle(reply: SuggestionReply, record: Suggestion | None) -> bool:
    """Nothing new and nothing to record (settings absent, or as ``record`` holds them already — a
    service echoes them): the algorithm waits for running trials."""
    if reply.assignments or reply.exhausted:
        return False
    if reply.algorithm_settings is None:
        return True
    kept = list(record.status.algorithm_settings or ()) if record and record.status else []
    return merge_settings(kept, reply.algorithm_settings) == kept


def experiment_key(experiment: Experiment) -> str:
    """``namespace/name/uid``: identifies one Experiment's algorithm state."""
    meta = experiment.metadata or ObjectMeta()
    return f"{meta.namespace or ''}/{meta.name or ''}/{meta.uid or ''}"


def to_suggestion_trials(trials: Iterable[Trial]) -> tuple[SuggestionTrial, ...]:
    """Katib's controller-side conversion: MetricsUnavailable trials and EarlyStopped ones without an
    observation are left out; only the newest condition is sent; each metric's value follows its
    strategy, falling back to ``latest``."""
    result = []
    for trial in sorted(trials, key=lambda t: t.metadata.name or "" if t.metadata else ""):
        status = trial.status
        holding = trial_conditions.held(status)
        if TrialConditionType.METRICS_UNAVAILABLE in holding:
            continue
        observation = status.observation if status else None
        if TrialConditionType.EARLY_STOPPED in holding and observation is None:
            continue
        strategies = trial.spec.objective.metric_strategies if trial.spec and trial.spec.objective else None
        metrics = tuple(
            (m.name or "", aggregation.strategy_value(m, aggregation.strategy_of(strategies, m.name)))
            for m in (observation.metrics if observation else None) or ()
        )
        assignments = tuple(
            (a.name or "", a.value or "") for a in (trial.spec.parameter_assignments if trial.spec else None) or ()
        )
        name = trial.metadata.name if trial.metadata else None
        result.append(SuggestionTrial(name or "", assignments, trial_conditions.last_condition_type(status), metrics))
    return tuple(result)


def merge_settings(
    base: Sequence[AlgorithmSetting] | None, overrides: Iterable[AlgorithmSetting] | None
) -> list[AlgorithmSetting]:
    """``base`` with each of ``overrides`` replacing the setting of its name, or appended (Katib's
    controller merges a reply's settings into the Suggestion status, and the status's into the
    Experiment it sends, this way)."""
    merged = [s.model_copy() for s in base or ()]
    where = {s.name: i for i, s in enumerate(merged)}
    for setting in overrides or ():
        if setting.name in where:
            merged[where[setting.name]] = setting.model_copy()
        else:
            where[setting.name] = len(merged)
            merged.append(setting.model_copy())
    return merged


def request_experiment(experiment: Experiment, record: Suggestion | None) -> Experiment:
    """``experiment`` as an algorithm is shown it: its settings overlaid by the ones the algorithm
    returned before (the record's status), so state such as hyperband's bracket comes back."""
    kept = record.status.algorithm_settings if record and record.status else None
    algorithm = experiment.spec.algorithm if experiment.spec else None
    if not kept or algorithm is None:
        return experiment
    merged = merge_settings(algorithm.algorithm_settings, kept)
    if merged == list(algorithm.algorithm_settings or ()):
        return experiment
    result = experiment.model_copy()
    assert result.spec is not None
    result.spec = result.spec.model_copy(
        update={"algorithm": algorithm.model_copy(update={"algorithm_settings": merged})}
    )
    return result


def new_suggestion(experiment: Experiment, *, now: str) -> Suggestion:
    """The Suggestion of ``experiment`` (same name and namespace, owned by it), Created and Running."""
    meta = experiment.metadata or ObjectMeta()
    spec = experiment.spec
    owners = None
    if meta.uid:
        owners = [
            {
                "apiVersion": experiment.api_version or constants.API_VERSION,
                "kind": constants.EXPERIMENT_KIND,
                "name": meta.name,
                "uid": meta.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    status = SuggestionStatus(start_time=now, suggestion_count=0, suggestions=[])
    status.conditions = conditions.put(
        None, SuggestionConditionType.CREATED, reason=REASON_CREATED, message="Suggestion is created", now=now
    )
    status.conditions = conditions.put(
        status.conditions,
        SuggestionConditionType.DEPLOYMENT_READY,
        reason=REASON_READY,
        message="Algorithm runs in-process",
        now=now,
    )
    status.conditions = conditions.put(
        status.conditions,
        SuggestionConditionType.RUNNING,
        reason=REASON_RUNNING,
        message="Suggestion is running",
        now=now,
    )
    if spec is not None and spec.algorithm is not None:
        status.algorithm_settings = [s.model_copy() for s in spec.algorithm.algorithm_settings or []] or None
    return Suggestion(
        metadata=ObjectMeta(
            name=meta.name,
            namespace=meta.namespace,
            labels=rendering.trial_labels(experiment),
            owner_references=owners,
        ),
        spec=SuggestionSpec(
            algorithm=spec.algorithm.model_copy(deep=True) if spec and spec.algorithm else None,
            early_stopping=spec.early_stopping.model_copy(deep=True) if spec and spec.early_stopping else None,
            requests=0,
            resume_policy=spec.resume_policy if spec else None,
        ),
        status=status,
    )


def issued(suggestion: Suggestion | None) -> list[TrialAssignment]:
    """Every assignment the Suggestion has issued, oldest first."""
    return list(suggestion.status.suggestions or []) if suggestion and suggestion.status else []


def is_exhausted(suggestion: Suggestion | None) -> bool:
    """The algorithm has nothing more to suggest (e.g. the grid is complete)."""
    found = conditions.find(
        suggestion.status.conditions if suggestion and suggestion.status else None, SuggestionConditionType.SUCCEEDED
    )
    return found is not None and found.status == constants.CONDITION_TRUE and found.reason == REASON_EXHAUSTED


def is_failed(suggestion: Suggestion | None) -> bool:
    return conditions.holds(
        suggestion.status.conditions if suggestion and suggestion.status else None, SuggestionConditionType.FAILED
    )


def is_succeeded(suggestion: Suggestion | None) -> bool:
    return conditions.holds(
        suggestion.status.conditions if suggestion and suggestion.status else None, SuggestionConditionType.SUCCEEDED
    )


def record(
    suggestion: Suggestion,
    experiment: Experiment,
    reply: SuggestionReply,
    *,
    taken: Iterable[str],
    rng: random.Random,
    now: str,
    early_stopping_rules: Sequence[EarlyStoppingRule] = (),
) -> Suggestion:
    """``suggestion`` with ``reply``'s assignments appended under fresh trial names.

    ``early_stopping_rules`` (Katib's GetEarlyStoppingRules answer) go with each new assignment,
    hence into the Trials created from them.

    Names avoid ``taken`` (existing trials) and every name already issued. An exhausted reply
    marks the Suggestion Succeeded (``SuggestionExhausted``).
    """
    result = suggestion.model_copy(deep=True)
    status = result.status or SuggestionStatus()
    entries = list(status.suggestions or [])
    used = set(taken) | {a.name for a in entries if a.name}
    name = (experiment.metadata.name if experiment.metadata else None) or "trial"
    for index, assignment in enumerate(reply.assignments):
        given = reply.trial_names[index] if index < len(reply.trial_names) else ""
        if given and given not in used and _DNS_LABEL.fullmatch(given):
            trial_name = given  # as Katib: the algorithm's name (PBT's lineage refers to it)
        else:
            trial_name = rendering.new_trial_name(name, taken=used, rng=rng)
        used.add(trial_name)
        labels = reply.labels[index] if index < len(reply.labels) else None
        entries.append(
            TrialAssignment(
                name=trial_name,
                parameter_assignments=[a.model_copy() for a in assignment],
                labels=labels or None,
                early_stopping_rules=[r.model_copy() for r in early_stopping_rules] or None,
            )
        )
    status.suggestions = entries
    status.suggestion_count = len(entries)
    if reply.algorithm_settings is not None:
        status.algorithm_settings = merge_settings(status.algorithm_settings, reply.algorithm_settings) or None
    status.last_reconcile_time = now
    if reply.exhausted:
        status.conditions = conditions.put(
            conditions.stop_running(status.conditions, now=now),
            SuggestionConditionType.SUCCEEDED,
            reason=REASON_EXHAUSTED,
            message="Suggestion has reached the end of the search space",
            now=now,
        )
        status.completion_time = now
    result.status = status
    spec = result.spec or SuggestionSpec()
    spec.requests = len(entries)
    result.spec = spec
    return result


def mark(
    suggestion: Suggestion, condition_type: SuggestionConditionType, reason: str, message: str, *, now: str
) -> Suggestion:
    """Set a Suggestion condition (completing ones flip Running to False)."""
    result = suggestion.model_copy(deep=True)
    status = result.status or SuggestionStatus()
    current = status.conditions
    if condition_type in (SuggestionConditionType.SUCCEEDED, SuggestionConditionType.FAILED):
        current = conditions.stop_running(current, now=now)
        status.completion_time = now
    status.conditions = conditions.put(current, condition_type, reason=reason, message=message, now=now)
    result.status = status
    return result


def restart(suggestion: Suggestion, *, now: str) -> Suggestion:
    """Running again after an Experiment restart (its Succeeded condition removed)."""
    result = suggestion.model_copy(deep=True)
    status = result.status or SuggestionStatus()
    status.conditions = conditions.put(
        conditions.remove(status.conditions, SuggestionConditionType.SUCCEEDED),
        SuggestionConditionType.RUNNING,
        reason=REASON_RUNNING,
        message="Suggestion is running",
        now=now,
    )
    status.completion_time = None
    result.status = status
    return result
