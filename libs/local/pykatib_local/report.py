"""The HTML report of an experiment: one self-contained page (plotly.js inlined, works offline).

Objective per trial with the running best, metric curves per trial, parallel coordinates of
parameters against the objective, and a table of every trial. ``render`` is pure: models and
metric logs in, HTML text out; the runner writes it to ``<workdir>/<experiment>/report.html``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from katib_core import constants, metric_history
from katib_core.models import Experiment, Trial


@dataclass(frozen=True)
class MetricLog:
    """One stored metric log of a trial (``time`` is RFC 3339 text)."""

    time: str
    name: str
    value: str


def render(experiment: Experiment, trials: Sequence[Trial], logs: Mapping[str, Sequence[MetricLog]]) -> str:
    """The report page for ``experiment`` (``logs`` maps trial name → its metric logs)."""
    spec = experiment.spec
    objective = spec.objective if spec is not None else None
    metric = (objective.objective_metric_name if objective is not None else None) or ""
    goal = objective.type if objective is not None else None
    ordered = sorted(
        trials, key=lambda t: (t.metadata.creation_timestamp or "", t.metadata.name or "") if t.metadata else ("", "")
    )
    figures = [
        _objective_figure(ordered, metric, goal),
        _curves_figure(ordered, logs, metric),
        _parallel_figure(ordered, metric),
    ]
    name = html.escape((experiment.metadata.name if experiment.metadata else None) or "experiment")
    divs = "\n".join(
        f'<section class="plot">{fig.to_html(full_html=False, include_plotlyjs=False)}</section>' for fig in figures
    )
    return _PAGE.format(
        title=name,
        plotlyjs=get_plotlyjs(),
        summary=_summary(experiment, metric, goal),
        plots=divs,
        table=_table(ordered, metric),
    )


def _value(trial: Trial, metric: str, goal: str | None) -> float | None:
    observation = trial.status.observation if trial.status is not None else None
    for m in (observation.metrics if observation is not None else None) or ():
        if m.name == metric:
            by_goal: dict[str, str | None] = {"minimize": m.min, "maximize": m.max}
            raw = by_goal.get(goal or "", m.latest)
            if raw in (None, constants.UNAVAILABLE):
                raw = m.latest
            try:
                value = float(raw or "nan")
            except ValueError:
                return None
            return value if math.isfinite(value) else None
    return None


def _name(trial: Trial) -> str:
    return (trial.metadata.name if trial.metadata else None) or "?"


def _condition(trial: Trial) -> str:
    conditions = (trial.status.conditions if trial.status is not None else None) or []
    current = [c for c in conditions if c.status == constants.CONDITION_TRUE]
    return current[-1].type if current else "Pending"


def _objective_figure(trials: Sequence[Trial], metric: str, goal: str | None) -> go.Figure:
    names, values, best, best_so_far = [], [], [], None
    for trial in trials:
        value = _value(trial, metric, goal)
        if value is None:
            continue
        names.append(_name(trial))
        values.append(value)
        better = best_so_far is None or (value < best_so_far if goal == "minimize" else value > best_so_far)
        best_so_far = value if better else best_so_far
        best.append(best_so_far)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=names, y=values, mode="markers", name=metric or "objective"))
    fig.add_trace(go.Scatter(x=names, y=best, mode="lines", name="best so far", line={"shape": "hv"}))
    fig.update_layout(
        title=f"Objective per trial ({goal or 'objective'} {metric})", xaxis_title="trial", yaxis_title=metric
    )
    return fig


def _curves_figure(trials: Sequence[Trial], logs: Mapping[str, Sequence[MetricLog]], metric: str) -> go.Figure:
    fig = go.Figure()
    for trial in trials:
        rows = logs.get(_name(trial), ())
        # x: the step= a value was reported at, else its report number
        points = metric_history.history((row.time, row.name, row.value) for row in rows).get(metric, [])
        xs = [p.step if p.step is not None else index for index, p in enumerate(points)]
        ys = [p.value for p in points]
        if ys:
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=_name(trial)))
    fig.update_layout(
        title=f"{metric} over steps, per trial", xaxis_title="step (or report number)", yaxis_title=metric
    )
    return fig


def _parallel_figure(trials: Sequence[Trial], metric: str) -> go.Figure:
    scored = [(t, _value(t, metric, None)) for t in trials]
    scored = [(t, v) for t, v in scored if v is not None]
    names = sorted(
        {a.name for t, _ in scored for a in (t.spec.parameter_assignments if t.spec else None) or () if a.name}
    )
    dimensions = []
    for name in names:
        raw = [_assignment(t, name) for t, _ in scored]
        numbers = [_number(v, None) for v in raw]
        if all(n is not None for n in numbers):
            dimensions.append({"label": name, "values": numbers})
        else:  # categorical: positions, labelled with the categories
            labels = sorted(set(raw))
            dimensions.append(
                {
                    "label": name,
                    "values": [labels.index(v) for v in raw],
                    "tickvals": list(range(len(labels))),
                    "ticktext": labels,
                }
            )
    values = [v for _, v in scored]
    dimensions.append({"label": metric, "values": values})
    fig = go.Figure(
        go.Parcoords(line={"color": values, "colorscale": "Viridis", "showscale": True}, dimensions=dimensions)
    )
    fig.update_layout(title="Parameters and objective (parallel coordinates)")
    return fig


def _assignment(trial: Trial, name: str) -> str:
    for a in (trial.spec.parameter_assignments if trial.spec else None) or ():
        if a.name == name:
            return a.value or ""
    return ""


def _number(text: str | None, default: float | None) -> float | None:
    try:
        return float(text) if text is not None else default
    except ValueError:
        return default


def _summary(experiment: Experiment, metric: str, goal: str | None) -> str:
    status = experiment.status
    rows = [("objective", f"{goal or ''} {metric}".strip())]
    if experiment.spec is not None and experiment.spec.algorithm is not None:
        rows.append(("algorithm", experiment.spec.algorithm.algorithm_name or ""))
    if status is not None:
        current = [c for c in status.conditions or () if c.status == constants.CONDITION_TRUE]
        if current:
            rows.append(("status", f"{current[-1].type}: {current[-1].message or current[-1].reason or ''}"))
        rows.append(
            (
                "trials",
                f"{status.trials or 0} ({status.trials_succeeded or 0} succeeded, "
                f"{status.trials_failed or 0} failed, {status.trial_metrics_unavailable or 0} without metrics)",
            )
        )
        optimal = status.current_optimal_trial
        if optimal is not None and optimal.best_trial_name:
            params = ", ".join(f"{a.name}={a.value}" for a in optimal.parameter_assignments or ())
            rows.append(("best trial", f"{optimal.best_trial_name}: {params}"))
    return "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)


def _table(trials: Sequence[Trial], metric: str) -> str:
    names = sorted({a.name for t in trials for a in (t.spec.parameter_assignments if t.spec else None) or () if a.name})
    head = "".join(f"<th>{html.escape(n)}</th>" for n in ["trial", "status", *names, metric])
    body = []
    for trial in trials:
        value = _value(trial, metric, None)
        cells = [
            _name(trial),
            _condition(trial),
            *(_assignment(trial, n) for n in names),
            "" if value is None else f"{value:g}",
        ]
        body.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    return f"<table class='trials'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title} — pykatib</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ border: 1px solid #ccc; padding: .3rem .6rem; text-align: left; }}
table.trials td {{ font-variant-numeric: tabular-nums; }}
section.plot {{ margin: 1.5rem 0; }}
</style>
<script>{plotlyjs}</script></head>
<body><h1>Experiment {title}</h1>
<table class="summary">{summary}</table>
{plots}
<h2>Trials</h2>
{table}
</body></html>
"""
