"""``KatibClient.tune()``'s Experiment, built without I/O.

For the same arguments this is the Experiment kubeflow-katib 0.19.0 creates (docs/katib-compat.md#tune-experiment;
compared field by field in ``tests/compat``), except that:

- categorical values go to ``feasibleSpace.list`` (upstream's ``distribution`` is rejected by Katib);
- a Push trial without ``packages_to_install`` installs pykatib only if its image lacks it, so an
  image with pykatib starts training without touching pip;
- invalid names, objectives and parameters fail here, naming the field, before anything is sent.
"""

from __future__ import annotations

import builtins
import inspect
import symtable
import textwrap
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from katib_core import constants, validation
from katib_core.errors import ValidationError
from katib_core.models import (
    AlgorithmSetting,
    AlgorithmSpec,
    CollectorSpec,
    Experiment,
    ExperimentSpec,
    MetricsCollectorSpec,
    ObjectiveSpec,
    ObjectMeta,
    ParameterSpec,
    TrialParameterSpec,
    TrialTemplate,
)
from pykatib import _openapi
from pykatib._version import __version__

BASE_IMAGE_PYTORCH = "docker.io/pytorch/pytorch:2.2.1-cuda12.1-cudnn8-runtime"
DEFAULT_PIP_INDEX_URLS = ("https://pypi.org/simple",)
PYTORCH_CONTAINER = "pytorch"
_ISTIO_ANNOTATION = "sidecar.istio.io/inject"


def build_experiment(
    *,
    name: str,
    namespace: str,
    objective: Callable[..., Any] | None,
    parameters: Mapping[str, Any] | None,
    base_image: str = BASE_IMAGE_PYTORCH,
    env_per_trial: Any = None,
    algorithm_name: str = "random",
    algorithm_settings: Any = None,
    objective_metric_name: str | None = None,
    additional_metric_names: Sequence[str] = (),
    objective_type: str = "maximize",
    objective_goal: float | None = None,
    max_trial_count: int | None = None,
    parallel_trial_count: int | None = None,
    max_failed_trial_count: int | None = None,
    resources_per_trial: Any = None,
    retain_trials: bool = False,
    packages_to_install: Sequence[str] | None = None,
    pip_index_urls: Sequence[str] | None = DEFAULT_PIP_INDEX_URLS,
    metrics_collector_config: Mapping[str, Any] | None = None,
    trial_active_deadline_seconds: int | None = None,
    trials_have_pykatib: bool = False,
) -> Experiment:
    """The Experiment ``tune`` creates for a custom objective function (see the module docstring).

    Raises:
        ValueError: an argument is missing or invalid; ``ValidationError`` names the field.
    """
    if not name:
        raise ValueError("Please specify name for the Experiment.")
    if not objective or not parameters:
        raise ValueError("One of the required parameters is None")
    _check_objective_function(objective)
    kind = _collector_kind(metrics_collector_config)

    specs, trial_parameters, inputs = [], [], {}
    for key, value in parameters.items():
        spec = as_parameter_spec(value)
        if spec is None:
            inputs[key] = value
            continue
        spec.name = key
        specs.append(spec)
        trial_parameters.append(TrialParameterSpec(name=key, reference=key))
        inputs[key] = _Typed(_typed_expression(spec, f"${{trialParameters.{key}}}"))

    distributed = _is_trainer_resources(resources_per_trial) and (
        resources_per_trial.num_workers > 1 or resources_per_trial.num_procs_per_worker > 1
    )
    if packages_to_install is None and kind == constants.CollectorKind.PUSH and not trials_have_pykatib:
        install = _install_unless_importable("pykatib", [f"pykatib=={__version__}"], pip_index_urls)
    elif packages_to_install is not None:
        install = _pip_install(packages_to_install, pip_index_urls)
    else:
        install = ""
    script = install + _exec_script(objective, inputs, "torchrun" if distributed else "python -u")

    experiment = Experiment(
        metadata=ObjectMeta(name=name, namespace=namespace),
        spec=ExperimentSpec(
            objective=ObjectiveSpec(
                type=objective_type,
                objective_metric_name=objective_metric_name,
                additional_metric_names=list(additional_metric_names),
                goal=objective_goal,
            ),
            algorithm=AlgorithmSpec(algorithm_name=algorithm_name, algorithm_settings=_settings(algorithm_settings)),
            max_trial_count=max_trial_count,
            parallel_trial_count=parallel_trial_count,
            max_failed_trial_count=max_failed_trial_count,
            metrics_collector_spec=MetricsCollectorSpec(collector=CollectorSpec(kind=kind)),
            parameters=specs,
            trial_template=_trial_template(
                script=script,
                base_image=base_image,
                resources=resources_per_trial,
                env_per_trial=env_per_trial,
                retain=retain_trials,
                trial_parameters=trial_parameters,
                deadline=trial_active_deadline_seconds,
            ),
        ),
    )
    validation.check_experiment(experiment)
    return experiment


def as_parameter_spec(value: object) -> ParameterSpec | None:
    """``value`` as a search-space parameter, or None if it is a fixed input.

    Accepts ``katib.search`` results and kubeflow-katib's ``V1beta1ParameterSpec``, repairing the
    latter's categorical bug (values in ``distribution`` instead of ``list``).
    """
    if isinstance(value, ParameterSpec):
        return value.model_copy(deep=True)
    if _openapi.is_openapi_object(value) and hasattr(value, "parameter_type"):
        data = _openapi.to_json(value)
        space = data.get("feasibleSpace") or {}
        if isinstance(space.get("distribution"), list):
            space["list"] = [str(item) for item in space.pop("distribution")]
        return ParameterSpec.from_api(data)
    return None


def _check_objective_function(objective: Callable[..., Any]) -> None:
    if not callable(objective):
        raise ValueError(f"Objective function must be callable, got function type: {type(objective)}")
    signature = inspect.signature(objective)
    try:
        signature.bind({})
    except TypeError:
        raise ValueError(
            "Invalid args in the Objective function. The function args must have only 'parameters' "
            f"dictionary. Current Objective arguments: {signature}"
        ) from None


def _check_free_names(objective: Callable[..., Any], source: str) -> None:
    """Refuse an objective that uses a name the trial will not have.

    Only the function's source runs in the trial (as kubeflow-katib does), so a module imported
    at the top of the user's file, a helper defined beside the objective or a decorator is a
    ``NameError`` in every trial — found here, before any trial starts.
    """
    table = symtable.symtable(source, "<objective>", "exec")
    defined = {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}
    used: set[str] = {s.get_name() for s in table.get_symbols() if s.is_referenced()}
    pending = list(table.get_children())
    while pending:
        scope = pending.pop()
        pending.extend(scope.get_children())
        for symbol in scope.get_symbols():
            if symbol.is_declared_global() and symbol.is_assigned():
                defined.add(symbol.get_name())
            elif symbol.is_global() and symbol.is_referenced():
                used.add(symbol.get_name())
    missing = sorted(name for name in used - defined if not hasattr(builtins, name))
    if missing:
        name = missing[0]
        raise ValueError(
            f"the objective uses {name!r}, which its trials will not have: only the function's own source"
            f" runs in a trial. {_fix_for(objective, name)}"
            + (f" (also undefined: {', '.join(missing[1:])})" if len(missing) > 1 else "")
        )


def _fix_for(objective: Callable[..., Any], name: str) -> str:
    value = getattr(objective, "__globals__", {}).get(name)
    if isinstance(value, types.ModuleType):
        module = value.__name__
        line = f"import {module}" if module == name else f"import {module} as {name}"
        return f"Import it inside the function: `{line}` as its first line."
    origin = getattr(value, "__module__", None)
    if origin and origin not in ("__main__", getattr(objective, "__module__", None)):
        return f"Import it inside the function: `from {origin} import {name}`."
    return "Define or import it inside the function."


def _collector_kind(config: Mapping[str, Any] | None) -> str:
    config = {"kind": constants.CollectorKind.STDOUT} if config is None else config
    kind = config.get("kind")
    if kind not in (constants.CollectorKind.STDOUT, constants.CollectorKind.PUSH):
        raise ValidationError("metrics_collector_config.kind", f"{kind!r} must be 'StdOut' or 'Push'")
    return str(kind)


def _settings(settings: Any) -> list[AlgorithmSetting] | None:
    if settings is None:
        return None
    if isinstance(settings, Mapping):
        return [AlgorithmSetting(name=str(k), value=str(v)) for k, v in settings.items()]
    return [
        item if isinstance(item, AlgorithmSetting) else AlgorithmSetting.from_api(_openapi.to_json(item))
        for item in settings
    ]


# -- the trial's script ------------------------------------------------------------------------


def _pip_install(packages: Sequence[str], index_urls: Sequence[str] | None) -> str:
    urls = list(index_urls or DEFAULT_PIP_INDEX_URLS)
    index = " ".join([f"--index-url {urls[0]}", *(f"--extra-index-url {url}" for url in urls[1:])])
    wanted = " ".join(str(package) for package in packages)
    return (
        '\nif ! [ -x "$(command -v pip)" ]; then\n'
        "    python3 -m ensurepip || python3 -m ensurepip --user || apt-get install python3-pip\n"
        "fi\n\n"
        "PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install --prefer-binary --quiet"
        f"         --no-warn-script-location {index} {wanted}\n"
    )


def _install_unless_importable(module: str, packages: Sequence[str], index_urls: Sequence[str] | None) -> str:
    return f"\nif ! python3 -c 'import {module}' >/dev/null 2>&1; then{_pip_install(packages, index_urls)}fi\n"


class _Typed(str):
    """Python source for a parameter's value in the trial script (its ``repr`` is the source itself)."""

    def __repr__(self) -> str:
        return str(self)


def _typed_expression(spec: ParameterSpec, placeholder: str) -> str:
    """The objective gets numbers, not Katib's strings: ``int``/``double`` as ``int``/``float``,
    ``discrete`` as ints when every value is one (else floats), ``categorical`` as the strings it
    holds. A difference from kubeflow-katib (which passes strings), harmless to code calling
    ``float()`` on them (docs/sdk.md#typed-parameters)."""
    kind = spec.parameter_type
    literal = repr(placeholder)
    if kind == constants.ParameterType.INT:
        return f"int({literal})"
    if kind == constants.ParameterType.DOUBLE:
        return f"float({literal})"
    if kind == constants.ParameterType.DISCRETE:
        values = (spec.feasible_space.list if spec.feasible_space else None) or []
        whole = bool(values) and all(v.strip().lstrip("+-").isdigit() for v in values)
        return f"{'int' if whole else 'float'}({literal})"
    return literal


def _exec_script(objective: Callable[..., Any], inputs: Mapping[str, Any], entrypoint: str) -> str:
    source = textwrap.dedent(inspect.getsource(objective))
    _check_free_names(objective, source)
    arguments = ", ".join(f"{key!r}: {value!r}" for key, value in inputs.items())
    code = f"{source}\n{objective.__name__}({{{arguments}}})\n"
    return (
        "\nprogram_path=$(mktemp -d)\n"
        f"read -r -d '' SCRIPT << EOM\n\n{code}\nEOM\n"
        'printf "%s" "$SCRIPT" > "$program_path/ephemeral_script.py"\n'
        f'{entrypoint} "$program_path/ephemeral_script.py"'
    )


# -- the trial's job ---------------------------------------------------------------------------


def _is_trainer_resources(value: object) -> bool:
    return all(hasattr(value, attr) for attr in ("num_workers", "num_procs_per_worker", "resources_per_worker"))


def _resources(resources: Any) -> dict[str, Any] | None:
    if resources is None:
        return None
    if isinstance(resources, Mapping):
        amounts = {str(key).lower(): value for key, value in resources.items()}
        if "gpu" in amounts:
            amounts["nvidia.com/gpu"] = amounts.pop("gpu")
        return {"requests": dict(amounts), "limits": dict(amounts)}
    converted: dict[str, Any] = _openapi.to_json(resources)
    return converted


def _env(env_per_trial: Any) -> tuple[list[Any], list[Any]]:
    if not env_per_trial:
        return [], []
    if isinstance(env_per_trial, Mapping):
        return [{"name": str(k), "value": str(v)} for k, v in env_per_trial.items()], []
    env, env_from = [], []
    for item in env_per_trial:
        kind = type(item).__name__
        if kind == "V1EnvVar" or (isinstance(item, Mapping) and "name" in item):
            env.append(_openapi.to_json(item))
        elif kind == "V1EnvFromSource" or (isinstance(item, Mapping) and {"configMapRef", "secretRef"} & set(item)):
            env_from.append(_openapi.to_json(item))
        else:
            raise ValueError(f"Incorrect value for env_per_trial: {env_per_trial}")
    return env, env_from


def _trial_template(
    *,
    script: str,
    base_image: str,
    resources: Any,
    env_per_trial: Any,
    retain: bool,
    trial_parameters: list[TrialParameterSpec],
    deadline: int | None,
) -> TrialTemplate:
    trainer = _is_trainer_resources(resources)
    container: dict[str, Any] = {
        "name": PYTORCH_CONTAINER if trainer else constants.DEFAULT_PRIMARY_CONTAINER_NAME,
        "image": base_image,
        "command": ["bash", "-c"],
        "args": [script],
    }
    amounts = _resources(resources.resources_per_worker if trainer else resources)
    if amounts is not None:
        container["resources"] = amounts
    env, env_from = _env(env_per_trial)
    if env:
        container["env"] = env
    if env_from:
        container["envFrom"] = env_from
    pod: dict[str, Any] = {
        "metadata": {"annotations": {_ISTIO_ANNOTATION: "false"}},
        "spec": {"containers": [container]},
    }
    if trainer:
        job = _pytorchjob(pod, resources, deadline)
    else:
        pod["spec"]["restartPolicy"] = "Never"
        job = {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": pod}}
        if deadline is not None:
            job["spec"]["activeDeadlineSeconds"] = deadline
    return TrialTemplate(
        primary_container_name=container["name"],
        retain=retain,
        trial_parameters=trial_parameters,
        trial_spec=job,
    )


def _pytorchjob(pod: dict[str, Any], resources: Any, deadline: int | None) -> dict[str, Any]:
    replicas: dict[str, Any] = {"Master": {"replicas": 1, "template": pod}}
    if resources.num_workers > 1:
        replicas["Worker"] = {"replicas": resources.num_workers - 1, "template": pod}
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "spec": {
            "runPolicy": {} if deadline is None else {"activeDeadlineSeconds": deadline},
            "nprocPerNode": str(resources.num_procs_per_worker),
            "pytorchReplicaSpecs": replicas,
        },
    }
