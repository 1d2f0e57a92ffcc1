"""Katib v0.19's ``examples/v1beta1`` Experiments, as the facts that decide their admission.

One entry per example file, named after its path without ``.yaml`` (``hp-tuning/tpe`` is
``examples/v1beta1/hp-tuning/tpe.yaml``). Each builds an Experiment carrying what Katib's webhook
and local mode look at: the objective, the algorithm and its settings, early stopping, the
parameters (types, feasible spaces, steps, distributions), the metrics collector, the trial's kind
and the shape of its template (pod templates, containers with or without ``command``, resource
limits, trial parameters and their substitutions), the counts and ``resumePolicy``. Values that
decide nothing (images, scripts, flags, paths, regular expressions of the same shape) are our own;
the files themselves are not copied here.

Each entry also says what it gets (allowed unless it says otherwise):

- ``katib``: Katib v0.19's own webhook (``pkg/webhook/v1beta1/experiment/validator``) with its
  default katib-config and, for the ConfigMap example, the ``trial-templates`` ConfigMap a Katib
  v0.19 installation ships;
- ``webhook``: ours (``/mutate-experiment``, then ``/validate-experiment`` on the patched object);
- ``local``: local mode (``pykatib_local.backend.prepare``).

A denial names its field: the message starts with ``fields[0]`` and names every one of
``fields``; ``saying`` is a phrase of the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import yaml

Json = dict[str, Any]

#: Algorithms of Katib's default katib-config that pykatib does not implement (yet): our webhook
#: and local mode deny them naming ``spec.algorithm.algorithmName``.
UNIMPLEMENTED: Final = frozenset({"enas", "darts"})

#: The algorithm entries of Katib v0.19's default katib-config (``runtime.suggestions``; images are
#: Katib's ``ghcr.io/kubeflow/katib/suggestion-*``, tags shortened) and its one early-stopping entry.
DEFAULT_KATIB_CONFIG: Final[Json] = {
    "apiVersion": "config.kubeflow.org/v1beta1",
    "kind": "KatibConfig",
    "runtime": {
        "suggestions": [
            {"algorithmName": name, "image": f"ghcr.io/kubeflow/katib/suggestion-{image}:v0.19.0"}
            for name, image in (
                ("random", "hyperopt"),
                ("tpe", "hyperopt"),
                ("grid", "optuna"),
                ("hyperband", "hyperband"),
                ("bayesianoptimization", "skopt"),
                ("cmaes", "goptuna"),
                ("sobol", "goptuna"),
                ("multivariate-tpe", "optuna"),
                ("enas", "enas"),
                ("darts", "darts"),
                ("pbt", "pbt"),
            )
        ],
        "earlyStoppings": [
            {"algorithmName": "medianstop", "image": "ghcr.io/kubeflow/katib/earlystopping-medianstop:v0.19.0"}
        ],
    },
}

ALGORITHM: Final = "spec.algorithm.algorithmName"
COLLECTOR_KIND: Final = "spec.metricsCollectorSpec.collector.kind"
TRIAL_KIND: Final = "spec.trialTemplate.trialSpec.kind"
UNKNOWN_ALGORITHM: Final = "is not a known algorithm"


# -- verdicts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """Allowed, or denied naming ``fields`` (the first one leads the message) and ``saying`` a phrase."""

    allowed: bool
    fields: tuple[str, ...] = ()
    saying: str = ""

    @property
    def field(self) -> str:
        return self.fields[0] if self.fields else ""


ALLOW: Final = Verdict(True)


def deny(*fields: str, saying: str = "") -> Verdict:
    return Verdict(False, fields, saying)


@dataclass(frozen=True)
class Example:
    """One file of Katib's ``examples/v1beta1`` and the verdicts it gets."""

    path: str
    experiment: Json
    katib: Verdict = ALLOW
    webhook: Verdict = ALLOW
    local: Verdict = ALLOW
    #: What the cluster holds for the webhook to read (a trial template ConfigMap).
    config_maps: tuple[Json, ...] = ()

    @property
    def algorithm(self) -> str:
        return str(self.experiment["spec"]["algorithm"]["algorithmName"])

    @property
    def name(self) -> str:
        return str(self.experiment["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.experiment["metadata"]["namespace"])


# -- the Experiment ----------------------------------------------------------------------------


def experiment(
    name: str,
    *,
    objective: Json,
    algorithm: Json,
    template: Json,
    parameters: Sequence[Json] = (),
    counts: tuple[int, int, int] = (3, 12, 3),
    namespace: str = "kubeflow",
    **spec: Any,
) -> Json:
    """An Experiment; ``counts`` is (parallelTrialCount, maxTrialCount, maxFailedTrialCount)."""
    parallel, most, failed = counts
    body: Json = {
        "objective": objective,
        "algorithm": algorithm,
        "parallelTrialCount": parallel,
        "maxTrialCount": most,
        "maxFailedTrialCount": failed,
        "trialTemplate": template,
        **spec,
    }
    if parameters:
        body["parameters"] = list(parameters)
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


def objective(
    direction: str, metric: str, goal: float | None = None, *others: str, strategies: Mapping[str, str] | None = None
) -> Json:
    found: Json = {"type": direction, "objectiveMetricName": metric}
    if goal is not None:
        found["goal"] = goal
    if others:
        found["additionalMetricNames"] = list(others)
    if strategies:
        found["metricStrategies"] = [{"name": k, "value": v} for k, v in strategies.items()]
    return found


def algorithm(name: str, **settings: str) -> Json:
    """``algorithmName`` and its settings (Katib's settings are strings)."""
    found: Json = {"algorithmName": name}
    if settings:
        found["algorithmSettings"] = [{"name": k, "value": v} for k, v in settings.items()]
    return found


def double(name: str, low: str, high: str, *, step: str = "", distribution: str = "") -> Json:
    return _ranged(name, "double", low, high, step, distribution)


def integer(name: str, low: str, high: str, *, step: str = "", distribution: str = "") -> Json:
    return _ranged(name, "int", low, high, step, distribution)


def _ranged(name: str, kind: str, low: str, high: str, step: str, distribution: str) -> Json:
    space = {"min": low, "max": high}
    if step:
        space["step"] = step
    if distribution:
        space["distribution"] = distribution
    return {"name": name, "parameterType": kind, "feasibleSpace": space}


def categorical(name: str, *values: str) -> Json:
    return {"name": name, "parameterType": "categorical", "feasibleSpace": {"list": list(values)}}


LOSS: Final = objective("minimize", "loss", 0.001)
ACCURACY: Final = objective("maximize", "accuracy", 0.99)
RANDOM: Final = algorithm("random")
MEDIANSTOP: Final = algorithm("medianstop", min_trials_required="1", start_step="2")
#: The two parameters most examples tune, and the trial parameters that pass them on.
LR_MOMENTUM: Final = (double("lr", "0.01", "0.05"), double("momentum", "0.5", "0.9"))
LR_MOMENTUM_REFS: Final = {"learningRate": "lr", "momentum": "momentum"}
#: The narrower ranges of the metrics-collector examples.
LR_MOMENTUM_LOW: Final = (double("lr", "0.01", "0.03"), double("momentum", "0.3", "0.7"))


# -- metrics collectors ------------------------------------------------------------------------


def file_collector(path: str, *, json: bool = False, filters: Sequence[str] = ()) -> Json:
    """Kind File reading ``path`` (no format: TEXT by default; JSON if ``json``), maybe filtered."""
    where: Json = {"path": path, "kind": "File"}
    if json:
        where["format"] = "JSON"
    source: Json = {"fileSystemPath": where}
    if filters:
        source["filter"] = {"metricsFormat": list(filters)}
    return {"collector": {"kind": "File"}, "source": source}


def tfevent_collector(directory: str) -> Json:
    return {
        "collector": {"kind": "TensorFlowEvent"},
        "source": {"fileSystemPath": {"path": directory, "kind": "Directory"}},
    }


def custom_collector(path: str) -> Json:
    """Kind Custom: our own sidecar container (reading the trial's name from its Pod), over a file."""
    sidecar = {
        "name": "custom-metrics-logger-and-collector",
        "image": "registry.example/collector:1",
        "imagePullPolicy": "Always",
        "args": ["-m", "accuracy", "-path", path],
        "env": [{"name": "TrialNamePrefix", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
    }
    return {
        "collector": {"kind": "Custom", "customCollector": sidecar},
        "source": {"fileSystemPath": {"path": path, "kind": "File"}},
    }


def filters_only(*formats: str, kind: str = "") -> Json:
    """A metricsFormat filter, with no collector (the webhook defaults it to StdOut) unless ``kind``."""
    found: Json = {"source": {"filter": {"metricsFormat": list(formats)}}}
    if kind:
        found["collector"] = {"kind": kind}
    return found


# -- trial templates ---------------------------------------------------------------------------


def sub(name: str) -> str:
    """Where Katib substitutes trial parameter ``name``."""
    return "${trialParameters." + name + "}"


def flags(*names: str, quoted: bool = False) -> list[str]:
    """``--<name>=${trialParameters.<name>}`` per name (``"…"`` around the value if ``quoted``)."""
    return [f'--{n}="{sub(n)}"' if quoted else f"--{n}={sub(n)}" for n in names]


def container(
    *uses: str,
    name: str = "training-container",
    command: Sequence[str] | None = ("python3", "/opt/train/main.py"),
    args: Sequence[str] = (),
    **extra: Any,
) -> Json:
    """A container substituting the trial parameters ``uses`` in its command (or in ``args`` if it
    has none); ``command=None`` leaves the image's entrypoint."""
    found: Json = {"name": name, "image": "registry.example/train:1"}
    if command is not None:
        found["command"] = [*command, *flags(*uses)]
        if args:
            found["args"] = list(args)
    else:
        found["args"] = [*args, *flags(*uses)]
    return {**found, **extra}


def pod_template(*containers: Json, metadata: Json | None = None, restart: str | None = "Never") -> Json:
    spec: Json = {"containers": list(containers)}
    if restart:
        spec["restartPolicy"] = restart
    return {**({"metadata": metadata} if metadata else {}), "spec": spec}


def job(*containers: Json, pod_metadata: Json | None = None, metadata: Json | None = None) -> Json:
    """A batch/v1 Job running ``containers``."""
    found: Json = {"apiVersion": "batch/v1", "kind": "Job"}
    if metadata:
        found["metadata"] = metadata
    found["spec"] = {"template": pod_template(*containers, metadata=pod_metadata)}
    return found


def trial_template(
    trial_spec: Json, refs: Mapping[str, str], *, primary: str = "training-container", **extra: Any
) -> Json:
    """``trialSpec`` with trial parameters ``refs`` (name → reference) and the primary container."""
    return {
        "primaryContainerName": primary,
        "trialParameters": [{"name": n, "reference": r} for n, r in refs.items()],
        "trialSpec": trial_spec,
        **extra,
    }


def mnist(
    name: str,
    algo: Json = RANDOM,
    *,
    goal: float = 0.001,
    parameters: Sequence[Json] = LR_MOMENTUM,
    refs: Mapping[str, str] = LR_MOMENTUM_REFS,
    trial: Json | None = None,
    **spec: Any,
) -> Json:
    """The shape most examples share: minimise loss over lr and momentum with a batch/v1 Job whose
    container substitutes every trial parameter in its command (unless ``trial`` says otherwise)."""
    return experiment(
        name,
        objective=objective("minimize", "loss", goal),
        algorithm=algo,
        parameters=parameters,
        template=trial_template(trial or job(container(*refs)), refs),
        **spec,
    )


# -- the trial kinds of the examples -----------------------------------------------------------

#: A trial's status condition, as a gjson query (Katib reads them so).
CONDITION: Final = 'status.conditions.#(type=="{}")#|#(status=="{}")#'
REPLICA_SPECS: Final = {
    "PyTorchJob": "pytorchReplicaSpecs",
    "TFJob": "tfReplicaSpecs",
    "XGBoostJob": "xgbReplicaSpecs",
    "MPIJob": "mpiReplicaSpecs",
}


def operator_job(kind: str, roles: Mapping[str, tuple[int, Json]], *, restart: Sequence[str] = (), **spec: Any) -> Json:
    """A kubeflow.org/v1 training-operator job: per role its replicas and one container (and the
    roles' restartPolicy, in order, if given)."""
    replicas: Json = {}
    for index, (role, (count, one)) in enumerate(roles.items()):
        replicas[role] = {"replicas": count, "template": pod_template(one, restart=None)}
        if restart:
            replicas[role]["restartPolicy"] = restart[index]
    return {"apiVersion": "kubeflow.org/v1", "kind": kind, "spec": {**spec, REPLICA_SPECS[kind]: replicas}}


def pytorch_job() -> Json:
    """Master and Worker, one replica each, both running the training command."""
    training = container(*LR_MOMENTUM_REFS, name="pytorch")
    return operator_job("PyTorchJob", {"Master": (1, training), "Worker": (1, training)}, restart=["OnFailure"] * 2)


def tf_job() -> Json:
    return operator_job(
        "TFJob", {"Worker": (2, container("learningRate", "batchSize", name="tensorflow"))}, restart=["OnFailure"]
    )


def xgboost_job() -> Json:
    """Master and two Workers whose container has args and ports but no command (the image's
    entrypoint reads the args)."""
    training = container(
        "learningRate",
        "numberLeaves",
        name="xgboost",
        command=None,
        args=["--job_type=Train", "--num_trees=100"],
        ports=[{"containerPort": 9991, "name": "xgboostjob-port"}],
        imagePullPolicy="Always",
    )
    return operator_job("XGBoostJob", {"Master": (1, training), "Worker": (2, training)}, restart=["Never", "ExitCode"])


def mpi_job() -> Json:
    """A Launcher running ``mpirun`` with each substitution a list item of its own, and two Workers
    running their image's entrypoint (no command)."""
    launcher = container(
        name="mpi-launcher",
        command=("mpirun",),
        args=["-np", "2", "python", "/opt/train/main.py", "--lr", sub("learningRate"), "--steps", sub("numberSteps")],
        resources={"limits": {"cpu": "500m", "memory": "2Gi"}},
    )
    worker = {"name": "mpi-worker", "image": "registry.example/train:1", "resources": {"limits": {"cpu": "500m"}}}
    return operator_job(
        "MPIJob", {"Launcher": (1, launcher), "Worker": (2, worker)}, slotsPerWorker=1, cleanPodPolicy="Running"
    )


def fpga_job() -> Json:
    """A Job asking for an FPGA (a device plugin's resource, as a YAML integer), its pod template
    labelled and annotated for the FPGA runtime; the substitutions are in ``args``."""
    training = container(
        command=("python3", "tune_xgboost.py"),
        args=["--tree-method=fpga_exact", *flags("alpha", "eta", "subsample")],
        resources={"limits": {"xilinx/aws-vu9p-f1": 1}},
    )
    pod = {"labels": {"inaccel/fpga": "enabled"}, "annotations": {"inaccel/cli": "bitstream install xgboost\n"}}
    return job(training, pod_metadata=pod)


#: Trial parameters referring to the trial's own job (Katib substitutes its metadata).
TRIAL_METADATA: Final = {
    "trialName": "${trialSpec.Name}",
    "trialNamespace": "${trialSpec.Namespace}",
    "trialKind": "${trialSpec.Kind}",
    "trialAPIVersion": "${trialSpec.APIVersion}",
    "trialLabelCustom": "${trialSpec.Labels[custom-key]}",
    "trialAnnotationCustom": "${trialSpec.Annotations[custom-key]}",
}


def metadata_job() -> Json:
    """A Job carrying the label and annotation its trial parameters read, passed on in the env."""
    env = [{"name": f"TRIAL_{n.upper()}", "value": sub(n)} for n in TRIAL_METADATA]
    meta = {"labels": {"custom-key": "a-label"}, "annotations": {"custom-key": "an-annotation"}}
    return job(container(*LR_MOMENTUM_REFS, env=env), metadata=meta)


def argo_template() -> Json:
    """An Argo Workflow (a script step computes the epochs, the next step trains; ``{{…}}`` is
    Argo's), its own success/failure conditions and primary pod label."""
    train_step = {
        "name": "train",
        "template": "train",
        "arguments": {"parameters": [{"name": "epochs", "value": "{{steps.epochs.outputs.result}}"}]},
    }
    workflow = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "spec": {
            "serviceAccountName": "argo",
            "entrypoint": "tune",
            "templates": [
                {"name": "tune", "steps": [[{"name": "epochs", "template": "epochs"}], [train_step]]},
                {"name": "epochs", "script": {"image": "python:3-alpine", "command": ["python"], "source": "print(2)"}},
                {
                    "name": "train",
                    "metadata": {"labels": {"katib.kubeflow.org/model-training": "true"}},
                    "inputs": {"parameters": [{"name": "epochs"}]},
                    "container": container("learningRate", name="model-training"),
                },
            ],
        },
    }
    return trial_template(
        workflow,
        {"learningRate": "lr"},
        primary="main",
        retain=True,
        primaryPodLabels={"katib.kubeflow.org/model-training": "true"},
        successCondition='status.[@this].#(phase=="Succeeded")#',
        failureCondition='status.[@this].#(phase=="Failed")#',
    )


def tekton_template() -> Json:
    """A Tekton PipelineRun whose training step reads ``$(trialParameters.lr)`` (Tekton's syntax),
    never ``${trialParameters.learningRate}``; a run param carries a Katib-like ``reference``."""
    epochs_step = {
        "name": "epochs",
        "image": "python:3-alpine",
        "command": ["sh", "-c"],
        "args": ["echo $(( $(params.epochs-pre) / 200 )) | tee $(results.epochs-post.path)"],
    }
    training_step = {
        "name": "model-training",
        "image": "registry.example/train:1",
        "command": ["python3", "/opt/train/main.py", "--epochs=$(params.epochs)", "--lr=$(trialParameters.lr)"],
    }
    tasks = [
        {
            "name": "data-preprocessing",
            "params": [{"name": "epochs-pre", "value": "$(params.epochs-init)"}],
            "taskSpec": {
                "params": [{"name": "epochs-pre"}],
                "results": [{"name": "epochs-post"}],
                "steps": [epochs_step],
            },
        },
        {
            "name": "model-training",
            "params": [
                {"name": "lr", "value": "$(params.lr)"},
                {"name": "epochs", "value": "$(tasks.data-preprocessing.results.epochs-post)"},
            ],
            "taskSpec": {"params": [{"name": "lr"}, {"name": "epochs"}], "steps": [training_step]},
        },
    ]
    run = {
        "apiVersion": "tekton.dev/v1beta1",
        "kind": "PipelineRun",
        "spec": {
            "params": [{"name": "learningRate", "reference": "lr"}, {"name": "epochs-init", "value": "600"}],
            "pipelineSpec": {"params": [{"name": "lr"}, {"name": "epochs-init"}], "tasks": tasks},
        },
    }
    return trial_template(
        run,
        {"learningRate": "lr"},
        primary="step-model-training",
        retain=True,
        primaryPodLabels={"tekton.dev/pipelineTask": "model-training"},
        successCondition=CONDITION.format("Succeeded", "True"),
        failureCondition=CONDITION.format("Succeeded", "False"),
    )


def train_job() -> Json:
    """A Kubeflow Trainer TrainJob: a runtime reference and the trainer's command (no pod template)."""
    trainer = {
        "numNodes": 2,
        "image": "registry.example/train:1",
        "command": ["python3", "main.py", *flags(*LR_MOMENTUM_REFS)],
    }
    return {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "spec": {"runtimeRef": {"name": "torch-distributed"}, "trainer": trainer},
    }


def config_map_template(refs: Mapping[str, str]) -> Json:
    """No trialSpec: the ``defaultTrialTemplate.yaml`` of ConfigMap kubeflow/trial-templates."""
    return {
        "primaryContainerName": "training-container",
        "successCondition": CONDITION.format("Complete", "True"),
        "failureCondition": CONDITION.format("Failed", "True"),
        "trialParameters": [{"name": n, "reference": r} for n, r in refs.items()],
        "configMap": {
            "configMapName": "trial-templates",
            "configMapNamespace": "kubeflow",
            "templatePath": "defaultTrialTemplate.yaml",
        },
    }


def trial_templates(*uses: str) -> Json:
    """ConfigMap kubeflow/trial-templates whose default template is a Job substituting ``uses``."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "trial-templates", "namespace": "kubeflow"},
        "data": {"defaultTrialTemplate.yaml": yaml.safe_dump(job(container(*uses)))},
    }


#: As a Katib v0.19 installation ships it: the default template substitutes learningRate and
#: momentum (the ConfigMap example's numberLayers and optimizer belonged to the MXNet template
#: Katib v0.17 removed).
INSTALLED_TRIAL_TEMPLATES: Final = trial_templates("learningRate", "momentum")
#: With a default template that uses the ConfigMap example's three trial parameters.
MATCHING_TRIAL_TEMPLATES: Final = trial_templates("learningRate", "numberLayers", "optimizer")


# -- neural architecture search ----------------------------------------------------------------


def operation(kind: str, *parameters: Json) -> Json:
    found: Json = {"operationType": kind}
    if parameters:
        found["parameters"] = list(parameters)
    return found


def enas_operations() -> list[Json]:
    sizes = categorical("filter_size", "3", "5", "7")
    filters = categorical("num_filter", "32", "48", "64", "96", "128")
    stride = categorical("stride", "1", "2")
    depth = categorical("depth_multiplier", "1", "2")
    reduction = [categorical("reduction_type", "max_pooling", "avg_pooling"), integer("pool_size", "2", "3", step="1")]
    return [
        operation("convolution", sizes, filters, stride),
        operation("separable_convolution", sizes, filters, stride, depth),
        operation("depthwise_convolution", sizes, stride, depth),
        operation("reduction", *reduction),
    ]


def darts_gpu_operations() -> list[Json]:
    three = categorical("filter_size", "3")
    return [
        operation("separable_convolution", three),
        operation("dilated_convolution", categorical("filter_size", "3", "5")),
        operation("avg_pooling", three),
        operation("max_pooling", three),
        operation("skip_connection"),
    ]


GPU: Final[Json] = {"resources": {"limits": {"nvidia.com/gpu": 1}}}  # a YAML integer, as the examples write it
DARTS_REFS: Final = {
    "algorithmSettings": "algorithm-settings",
    "searchSpace": "search-space",
    "numberLayers": "num-layers",
}
ENAS_REFS: Final = {"neuralNetworkArchitecture": "architecture", "neuralNetworkConfig": "nn_config"}


def darts(name: str, layers: int, operations: Sequence[Json], *, gpu: bool, **settings: str) -> Json:
    """DARTS: one trial, the best genotype read from StdOut with a filter."""
    return _nas(
        name,
        algorithm("darts", **settings),
        {"graphConfig": {"numLayers": layers}, "operations": list(operations)},
        DARTS_REFS,
        gpu=gpu,
        objective=objective("maximize", "Best-Genotype"),
        metricsCollectorSpec=filters_only(r"([\w-]+)=(Genotype\(.*\))", kind="StdOut"),
        counts=(1, 1, 1),
    )


def enas(name: str, layers: int, *, gpu: bool, counts: tuple[int, int, int]) -> Json:
    graph = {"numLayers": layers, "inputSizes": [32, 32, 3], "outputSizes": [10]}
    config = {"graphConfig": graph, "operations": enas_operations()}
    maximize = objective("maximize", "Validation-Accuracy", 0.99)
    return _nas(name, algorithm("enas"), config, ENAS_REFS, gpu=gpu, objective=maximize, counts=counts)


def _nas(name: str, algo: Json, config: Json, refs: Mapping[str, str], *, gpu: bool, **spec: Any) -> Json:
    """nasConfig instead of parameters; the search reaches a Job's command in quotes."""
    trial = container(command=("python3", "run_trial.py", *flags(*refs, quoted=True)), **(GPU if gpu else {}))
    return experiment(name, algorithm=algo, template=trial_template(job(trial), refs), nasConfig=config, **spec)


# -- the table ---------------------------------------------------------------------------------


def unimplemented(name: str) -> Verdict:
    return deny(ALGORITHM, saying=f"{name!r} {UNKNOWN_ALGORITHM}")


def pull_collector(kind: str) -> Verdict:
    return deny(COLLECTOR_KIND, saying=f"{kind!r}: local mode runs Push and StdOut collectors only")


def trial_kind(what: str) -> Verdict:
    return deny(TRIAL_KIND, saying=f"local mode cannot run {what}")


def unused(index: int) -> Verdict:
    """A trial parameter whose ``${trialParameters.…}`` the template never uses."""
    return deny(f"spec.trialTemplate.trialParameters[{index}].name", saying="is not used in the trial template")


DISTRIBUTION_REFS: Final = {**LR_MOMENTUM_REFS, "epochs": "epochs", "batchSize": "batch_size"}

EXAMPLES: Final[tuple[Example, ...]] = (
    Example(
        "argo/argo-workflow",
        experiment(
            "katib-argo-workflow",
            namespace="argo",
            objective=LOSS,
            algorithm=RANDOM,
            parameters=[double("lr", "0.01", "0.03")],
            counts=(2, 5, 1),
            template=argo_template(),
        ),
        local=trial_kind("an Argo Workflow"),
    ),
    Example(
        "early-stopping/median-stop-with-json-format",
        experiment(
            "median-stop-with-json-format",
            objective=objective("maximize", "accuracy", 0.99, "loss"),
            algorithm=RANDOM,
            earlyStopping=MEDIANSTOP,
            metricsCollectorSpec=file_collector("/logs/metrics.json", json=True),
            parameters=[double("lr", "0.01", "0.5"), integer("num-epochs", "3", "4")],
            counts=(2, 15, 3),
            template=trial_template(
                job(container("learningRate", "numberEpochs")), {"learningRate": "lr", "numberEpochs": "num-epochs"}
            ),
        ),
        local=pull_collector("File"),
    ),
    Example(
        "early-stopping/median-stop",
        mnist("median-stop", earlyStopping=MEDIANSTOP, counts=(2, 15, 3)),
        # StdOut by default: read when the trial exits, too late to stop it
        local=deny("spec.earlyStopping", saying="early-stops Push trials only"),
    ),
    Example(
        "fpga/xgboost-example",
        experiment(
            "xgb-svhn-fpga",
            objective=objective("maximize", "accuracy", 0.99, "time"),
            algorithm=RANDOM,
            parameters=[
                double("alpha", "0.00", "0.05"),
                double("eta", "0.1", "0.4"),
                double("subsample", "0.6", "1.0"),
            ],
            counts=(1, 10, 3),
            template=trial_template(fpga_job(), {"alpha": "alpha", "eta": "eta", "subsample": "subsample"}),
        ),
    ),
    Example(
        "hp-tuning/bayesian-optimization",
        mnist("bayesian-optimization", algorithm("bayesianoptimization", random_state="10")),
    ),
    Example("hp-tuning/cma-es", mnist("cmaes", algorithm("cmaes", restart_strategy="ipop"))),
    Example(
        "hp-tuning/grid",
        mnist(
            "grid",
            algorithm("grid"),
            parameters=[double("lr", "0.01", "0.05", step="0.005"), double("momentum", "0.5", "0.9", step="0.1")],
        ),
    ),
    Example(
        "hp-tuning/hyperband",
        mnist(
            "hyperband",
            algorithm("hyperband", resource_name="num-epochs", eta="2", r_l="2"),
            parameters=[*LR_MOMENTUM, integer("num-epochs", "1", "1")],
            refs={**LR_MOMENTUM_REFS, "numberEpochs": "num-epochs"},
            counts=(2, 2, 2),
        ),
    ),
    Example(
        "hp-tuning/hyperopt-distribution",
        mnist(
            "hyperopt-distribution",
            goal=0.05,
            parameters=[
                double("lr", "0.01", "0.05", step="0.01", distribution="normal"),
                double("momentum", "0.001", "1", distribution="uniform"),
                integer("epochs", "1", "3", distribution="logUniform"),
                integer("batch_size", "32", "64", distribution="logNormal"),
            ],
            refs=DISTRIBUTION_REFS,
        ),
    ),
    Example("hp-tuning/multivariate-tpe", mnist("multivariate-tpe", algorithm("multivariate-tpe"))),
    Example(
        "hp-tuning/optuna-distribution",
        mnist(
            "optuna-distribution",
            algorithm("tpe"),
            goal=0.05,
            parameters=[
                double("lr", "1", "5", step="0.1", distribution="uniform"),
                double("momentum", "0.001", "3", distribution="logUniform"),
                integer("epochs", "1", "3", distribution="uniform"),
                integer("batch_size", "32", "64", distribution="logUniform"),
            ],
            refs=DISTRIBUTION_REFS,
        ),
    ),
    Example(
        "hp-tuning/random",
        mnist("random", trial=job(container(*LR_MOMENTUM_REFS, resources={"limits": {"memory": "1Gi", "cpu": "0.5"}}))),
    ),
    Example(
        "hp-tuning/simple-pbt",
        experiment(
            "simple-pbt",
            objective=objective("maximize", "Validation-accuracy", 0.99),
            algorithm=algorithm(
                "pbt", suggestion_trial_dir="/var/log/katib/checkpoints/", n_population="40", truncation_threshold="0.2"
            ),
            parameters=[double("lr", "0.0001", "0.02", step="0.0001")],
            counts=(2, 2, 3),  # more failures allowed than trials
            resumePolicy="FromVolume",
            template=trial_template(job(container("learningRate")), {"learningRate": "lr"}),
        ),
        katib=deny("spec.maxFailedTrialCount"),
        webhook=deny("spec.maxFailedTrialCount", saying="exceeds maxTrialCount"),
        local=deny("spec.maxFailedTrialCount", saying="exceeds maxTrialCount"),
    ),
    Example("hp-tuning/sobol", mnist("sobol", algorithm("sobol"))),
    Example("hp-tuning/tpe", mnist("tpe", algorithm("tpe"))),  # no settings: TPE's defaults
    Example(
        "kubeflow-trainer/trainjob-pytorch",
        experiment(
            "torch-distributed-example",
            objective=LOSS,
            algorithm=RANDOM,
            parameters=LR_MOMENTUM,
            template=trial_template(train_job(), LR_MOMENTUM_REFS, primary="node"),
        ),
        local=trial_kind("a Kubeflow Trainer TrainJob"),
    ),
    Example(
        "kubeflow-training-operator/mpijob-horovod",
        experiment(
            "mpijob-horovod",
            objective=objective("minimize", "loss", 0.01),
            algorithm=RANDOM,
            parameters=[double("lr", "0.001", "0.003"), integer("num-steps", "50", "150", step="10")],
            counts=(2, 6, 3),
            template=trial_template(
                mpi_job(),
                {"learningRate": "lr", "numberSteps": "num-steps"},
                primary="mpi-launcher",
                primaryPodLabels={"mpi-job-role": "launcher"},
                successCondition=CONDITION.format("Succeeded", "True"),
                failureCondition=CONDITION.format("Failed", "True"),
            ),
        ),
    ),
    Example(
        "kubeflow-training-operator/pytorchjob-mnist",
        experiment(
            "pytorchjob-mnist",
            objective=LOSS,
            algorithm=RANDOM,
            parameters=LR_MOMENTUM,
            template=trial_template(pytorch_job(), LR_MOMENTUM_REFS, primary="pytorch"),
        ),
    ),
    Example(
        "kubeflow-training-operator/tfjob-mnist-with-summaries",
        experiment(
            "tfjob-mnist-with-summaries",
            objective=ACCURACY,
            algorithm=RANDOM,
            metricsCollectorSpec=tfevent_collector("/logs/events/test"),
            parameters=[double("learning_rate", "0.01", "0.05"), integer("batch_size", "32", "64")],
            template=trial_template(
                tf_job(),
                {"learningRate": "learning_rate", "batchSize": "batch_size"},
                primary="tensorflow",
                primaryPodLabels={"training.kubeflow.org/replica-type": "worker"},
            ),
        ),
        local=pull_collector("TensorFlowEvent"),
    ),
    Example(
        "kubeflow-training-operator/xgboostjob-lightgbm",
        experiment(
            "xgboostjob-lightgbm",
            # LightGBM's metric names have a space; lines "<name> : <value>" are read from StdOut
            objective=objective(
                "maximize", "valid_1 auc", 0.99, "valid_1 binary_logloss", "training auc", "training binary_logloss"
            ),
            algorithm=RANDOM,
            metricsCollectorSpec=filters_only(r"(\w+ \w+) : (-?\d+(?:\.\d+)?)"),
            parameters=[double("lr", "0.01", "0.1"), integer("num-leaves", "50", "60", step="1")],
            counts=(2, 6, 3),
            template=trial_template(
                xgboost_job(), {"learningRate": "lr", "numberLeaves": "num-leaves"}, primary="xgboost"
            ),
        ),
        local=deny(
            "spec.trialTemplate.trialSpec.spec.xgbReplicaSpecs.Master.template.spec.containers[0].command",
            saying="it has none",
        ),
    ),
    Example(
        "metrics-collector/custom-metrics-collector",
        mnist(
            "custom-metrics-collector",
            parameters=LR_MOMENTUM_LOW,
            metricsCollectorSpec=custom_collector("/logs/train.log"),
        ),
        local=pull_collector("Custom"),
    ),
    Example(
        "metrics-collector/file-metrics-collector-with-json-format",
        mnist(
            "file-metrics-collector-with-json-format",
            parameters=LR_MOMENTUM_LOW,
            metricsCollectorSpec=file_collector("/logs/metrics.json", json=True),
        ),
        local=pull_collector("File"),
    ),
    Example(
        "metrics-collector/file-metrics-collector",
        mnist(
            "file-metrics-collector",
            parameters=LR_MOMENTUM_LOW,
            # no format: TEXT, read with this filter
            metricsCollectorSpec=file_collector(
                "/logs/train.log", filters=[r"metric=([\w|-]+) value=((-?\d+)(\.\d+)?)"]
            ),
        ),
        local=pull_collector("File"),
    ),
    Example(
        "metrics-collector/metrics-collection-strategy",
        experiment(
            "metrics-collection-strategy",
            objective=objective("minimize", "loss", 0.001, "accuracy", strategies={"accuracy": "max", "loss": "min"}),
            algorithm=algorithm("tpe"),
            parameters=LR_MOMENTUM,
            template=trial_template(job(container(*LR_MOMENTUM_REFS)), LR_MOMENTUM_REFS),
        ),
    ),
    Example(
        "nas/darts-cpu",
        darts(
            "darts-cpu",
            1,
            [operation("max_pooling", categorical("filter_size", "3"))],
            gpu=False,
            num_epochs="1",
            num_nodes="1",
            init_channels="1",
            stem_multiplier="1",
        ),
        webhook=unimplemented("darts"),
        local=unimplemented("darts"),
    ),
    Example(
        "nas/darts-gpu",
        darts("darts-gpu", 3, darts_gpu_operations(), gpu=True, num_epochs="3"),
        webhook=unimplemented("darts"),
        local=unimplemented("darts"),
    ),
    Example(
        "nas/enas-cpu",
        enas("enas-cpu", 1, gpu=False, counts=(2, 3, 2)),
        webhook=unimplemented("enas"),
        local=unimplemented("enas"),
    ),
    Example(
        "nas/enas-gpu",
        enas("enas-gpu", 8, gpu=True, counts=(3, 12, 3)),
        webhook=unimplemented("enas"),
        local=unimplemented("enas"),
    ),
    Example("resume-experiment/from-volume-resume", mnist("from-volume-resume", resumePolicy="FromVolume")),
    Example("resume-experiment/long-running-resume", mnist("long-running-resume", resumePolicy="LongRunning")),
    Example(
        "tekton/pipeline-run",
        experiment(
            "tekton-pipeline-run",
            objective=LOSS,
            algorithm=RANDOM,
            parameters=[double("lr", "0.01", "0.03")],
            counts=(2, 4, 3),
            template=tekton_template(),
        ),
        # ${trialParameters.learningRate} appears nowhere in the template
        katib=deny("spec.trialTemplate.trialParameters[0].name"),
        webhook=unused(0),
        local=trial_kind("a Tekton PipelineRun"),
    ),
    Example(
        "trial-template/trial-configmap-source",
        experiment(
            "trial-configmap-source",
            objective=objective("maximize", "Validation-accuracy", 0.99, "Train-accuracy"),
            algorithm=algorithm("cmaes"),
            parameters=[
                double("lr", "0.01", "0.03"),
                integer("num-layers", "2", "5"),
                categorical("optimizer", "sgd", "adam", "ftrl"),
            ],
            counts=(2, 10, 3),
            template=config_map_template(
                {"learningRate": "lr", "numberLayers": "num-layers", "optimizer": "optimizer"}
            ),
        ),
        # The installed template substitutes no numberLayers (nor optimizer): Katib denies it too.
        katib=deny("spec.trialTemplate.trialParameters[1].name"),
        webhook=unused(1),
        local=deny("spec.trialTemplate.configMap", saying="reads no ConfigMaps"),
        config_maps=(INSTALLED_TRIAL_TEMPLATES,),
    ),
    Example(
        "trial-template/trial-metadata-substitution",
        mnist("trial-metadata-substitution", refs={**LR_MOMENTUM_REFS, **TRIAL_METADATA}, trial=metadata_job()),
    ),
)


def by_path(path: str) -> Example:
    (found,) = (e for e in EXAMPLES if e.path == path)
    return found


def paths(examples: Iterable[Example] = EXAMPLES) -> list[str]:
    return [e.path for e in examples]
