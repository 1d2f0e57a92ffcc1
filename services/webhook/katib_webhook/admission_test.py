"""The handlers on AdmissionReviews captured from the test cluster's kube-apiserver (testdata/).

Cluster reads go through ``Objects``, an in-memory ``ObjectReader`` (our own interface).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
from pathlib import Path
from typing import Any

import jsonpatch
import pytest

from katib_webhook import kube
from katib_webhook.admission import Admission, ReadError
from katib_webhook.settings import AdmissionSettings, Settings

DATA = Path(__file__).parent / "testdata"
SETTINGS = Settings.from_args(["--db-manager-address", "db.test:6789"], {}).admission


def load(name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((DATA / name).read_text())
    return found


class Objects:
    """Objects by (apiVersion, kind, namespace, name); ``failing`` kinds raise ReadError."""

    def __init__(self, *objects: dict[str, Any], failing: tuple[str, ...] = ()) -> None:
        self.objects = {
            (o["apiVersion"], o["kind"], o["metadata"].get("namespace", "kubeflow"), o["metadata"]["name"]): o
            for o in objects
        }
        self.failing = failing
        self.reads: list[str] = []

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        self.reads.append(f"{kind}/{name}")
        if kind in self.failing:
            raise ReadError(f"GET {kind} {namespace}/{name}: 403 Forbidden")
        found = self.objects.get((api_version, kind, namespace, name))
        return copy.deepcopy(found) if found is not None else None


def trial(kind: str = "Push", **spec: Any) -> dict[str, Any]:
    found = load("trial.json")
    found["spec"]["metricsCollector"]["collector"]["kind"] = kind
    if kind == "File":
        found["spec"]["metricsCollector"]["source"] = {
            "fileSystemPath": {"path": "/var/log/katib/metrics.json", "kind": "File", "format": "JSON"}
        }
    found["spec"].update(spec)
    return found


def review(
    path: str, body: Any, reader: Objects | None = None, settings: AdmissionSettings = SETTINGS
) -> dict[str, Any]:
    admission = Admission(settings, reader=reader, convert_batch_job=kube.batch_job_round_trip(kube.offline_client()))
    raw = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    answer: dict[str, Any] = asyncio.run(admission.review(path, raw))["response"]
    return answer


def patched(request_object: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    assert response["allowed"], response
    ops = json.loads(base64.b64decode(response["patch"])) if "patch" in response else []
    result: dict[str, Any] = jsonpatch.apply_patch(request_object, ops)
    return result


def test_a_push_pod_gets_labels_and_env_only() -> None:
    pod_review = load("pod-review.json")
    response = review("/mutate-pod", pod_review, Objects(load("job.json"), trial("Push")))
    assert response["uid"] == pod_review["request"]["uid"]
    assert response["patchType"] == "JSONPatch"
    pod = patched(pod_review["request"]["object"], response)
    assert pod["metadata"]["labels"] == {
        "controller-uid": "50fb0d12-3ec6-4c78-8b80-b297a1b4baad",
        "job-name": "tune-experiment-x7k2m9qp",
        "katib.kubeflow.org/experiment": "tune-experiment",
        "katib.kubeflow.org/trial": "tune-experiment-x7k2m9qp",
    }
    (container,) = pod["spec"]["containers"]
    assert container["env"] == [
        {
            "name": "KATIB_TRIAL_NAME",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['katib.kubeflow.org/trial']"}},
        },
        {"name": "KATIB_DB_MANAGER_ADDRESS", "value": "db.test:6789"},
    ]
    assert container["command"] == ["bash", "-c"]  # Push: no wrapping, no sidecar, no volumes
    assert "shareProcessNamespace" not in pod["spec"]
    original = pod_review["request"]["object"]["spec"]
    assert {k: v for k, v in pod["spec"].items() if k != "containers"} == {
        k: v for k, v in original.items() if k != "containers"
    }


def test_a_stdout_pod_gets_the_sidecar() -> None:
    pod_review = load("pod-review.json")
    pod = patched(
        pod_review["request"]["object"], review("/mutate-pod", pod_review, Objects(load("job.json"), trial("StdOut")))
    )
    primary, sidecar = pod["spec"]["containers"]
    assert sidecar["name"] == "metrics-logger-and-collector"
    assert sidecar["args"][:8] == [
        "-t",
        "tune-experiment-x7k2m9qp",
        "-m",
        "result;loss",
        "-o-type",
        "maximize",
        "-s-db",
        "db.test:6789",
    ]
    assert sidecar["resources"]["limits"] == {"cpu": "500m", "memory": "100Mi", "ephemeral-storage": "5Gi"}
    assert pod["spec"]["shareProcessNamespace"] is True
    assert {"name": "metrics-volume", "emptyDir": {}} in pod["spec"]["volumes"]
    assert primary["command"] == ["bash", "-c"]
    assert primary["args"][0].startswith("(\nprogram_path=$(mktemp -d)\n")
    assert " 1>/var/log/katib/metrics.log 2>&1 " in primary["args"][0]


def test_a_file_pod_gets_the_format_and_its_directory() -> None:
    pod_review = load("pod-review.json")
    pod = patched(
        pod_review["request"]["object"], review("/mutate-pod", pod_review, Objects(load("job.json"), trial("File")))
    )
    primary, sidecar = pod["spec"]["containers"]
    assert sidecar["args"][-4:] == ["-path", "/var/log/katib/metrics.json", "-format", "JSON"]
    assert primary["volumeMounts"][-1] == {"name": "metrics-volume", "mountPath": "/var/log/katib"}
    assert "1>" not in primary["args"][0]  # File: the training writes the file itself


def test_a_missing_primary_container_rejects_the_pod() -> None:
    response = review(
        "/mutate-pod", load("pod-review.json"), Objects(load("job.json"), trial(primaryContainerName="pytorch"))
    )
    assert response["allowed"] is False
    assert response["status"]["code"] == 400
    assert response["status"]["message"] == (
        "Unable to find primary container pytorch in mutated pod containers [training-container]"
    )


def test_a_pod_without_a_trial_owner_is_left_alone() -> None:
    job = load("job.json")
    job["metadata"]["ownerReferences"] = []
    reader = Objects(job, trial())
    response = review("/mutate-pod", load("pod-review.json"), reader)
    assert response == {"uid": load("pod-review.json")["request"]["uid"], "allowed": True}
    assert reader.reads == ["Job/tune-experiment-x7k2m9qp"]
    bare = load("pod-review.json")
    bare["request"]["object"]["metadata"].pop("ownerReferences")
    reader = Objects()
    assert review("/mutate-pod", bare, reader)["allowed"] is True
    assert reader.reads == []


def test_unreadable_owners_leave_the_pod_alone_but_an_unreadable_trial_rejects_it() -> None:
    assert "patch" not in review("/mutate-pod", load("pod-review.json"), Objects(failing=("Job",)))
    response = review("/mutate-pod", load("pod-review.json"), Objects(load("job.json"), failing=("Trial",)))
    assert response["allowed"] is False
    assert response["status"]["code"] == 500
    assert response["status"]["message"].startswith("unable to get Trial kubeflow/tune-experiment-x7k2m9qp: GET Trial")
    response = review("/mutate-pod", load("pod-review.json"), Objects(load("job.json")))
    assert response["status"]["message"] == "unable to get Trial kubeflow/tune-experiment-x7k2m9qp: not found"


def test_the_controller_and_katibs_own_pods_are_never_mutated() -> None:
    reader = Objects(load("job.json"), trial("StdOut"))
    by_controller = load("pod-review.json")
    by_controller["request"]["userInfo"]["username"] = "system:serviceaccount:kubeflow:katib-controller"
    assert "patch" not in review("/mutate-pod", by_controller, reader)
    own = load("pod-review.json")
    own["request"]["object"]["metadata"]["labels"]["katib.kubeflow.org/component"] = "webhook"
    assert "patch" not in review("/mutate-pod", own, reader)
    assert reader.reads == []
    standalone = review("/mutate-pod", load("pod-review.json"), None)
    assert standalone == {"uid": load("pod-review.json")["request"]["uid"], "allowed": True}


def test_the_official_sdks_tune_experiment_is_repaired_defaulted_and_valid() -> None:
    experiment_review = load("experiment-review.json")
    response = review("/mutate-experiment", experiment_review)
    assert response["warnings"] == [
        "spec.parameters[2].feasibleSpace.distribution: categorical values moved to feasibleSpace.list"
    ]
    experiment = patched(experiment_review["request"]["object"], response)
    spec = experiment["spec"]
    assert spec["parameters"][2]["feasibleSpace"] == {"list": ["x", "y"], "distribution": "uniform"}
    assert spec["parallelTrialCount"] == 3
    assert spec["resumePolicy"] == "Never"
    assert spec["metricsCollectorSpec"] == {"collector": {"kind": "Push"}}  # Push gets no defaults
    assert spec["objective"]["metricStrategies"] == [
        {"name": "result", "value": "max"},
        {"name": "loss", "value": "max"},
    ]
    assert spec["trialTemplate"]["successCondition"] == 'status.conditions.#(type=="Complete")#|#(status=="True")#'
    assert (
        experiment["metadata"]["managedFields"] == experiment_review["request"]["object"]["metadata"]["managedFields"]
    )
    validate = copy.deepcopy(experiment_review)
    validate["request"]["object"] = experiment
    assert review("/validate-experiment", validate) == {"uid": experiment_review["request"]["uid"], "allowed": True}
    # a defaulted Experiment needs nothing more
    again = copy.deepcopy(validate)
    assert "patch" not in review("/mutate-experiment", again)


def defaulted_experiment() -> dict[str, Any]:
    experiment_review = load("experiment-review.json")
    return patched(experiment_review["request"]["object"], review("/mutate-experiment", experiment_review))


def validate(
    obj: dict[str, Any], *, old: dict[str, Any] | None = None, reader: Objects | None = None
) -> dict[str, Any]:
    body = load("experiment-review.json")
    body["request"]["object"] = obj
    if old is not None:
        body["request"]["operation"], body["request"]["oldObject"] = "UPDATE", old
    return review("/validate-experiment", body, reader)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.update(maxTrialCount=0), "spec.maxTrialCount: 0 must be greater than 0"),
        (
            lambda s: s["metricsCollectorSpec"]["collector"].update(kind="None"),
            "spec.metricsCollectorSpec.collector.kind: ",
        ),
        (lambda s: s["algorithm"].update(algorithmName="bohb"), "spec.algorithm.algorithmName: "),
        (
            lambda s: s["trialTemplate"]["trialSpec"]["spec"].update(backoffLimt=3),
            "spec.trialTemplate: is not a valid batch/v1 Job: /spec/backoffLimt = 3 is not a Job field",
        ),
    ],
)
def test_a_bad_experiment_is_denied_naming_the_field(change: Any, message: str) -> None:
    experiment = defaulted_experiment()
    change(experiment["spec"])
    response = validate(experiment)
    assert response["allowed"] is False
    assert response["status"]["code"] == 400
    assert message in response["status"]["message"]


def container_of(experiment: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = experiment["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][
        0
    ]
    return found


@pytest.mark.parametrize(
    "resources",
    [
        {"limits": {"cpu": 1, "memory": "1Gi", "nvidia.com/gpu": 1}},  # YAML integers, as Katib's GPU examples
        {"limits": {"cpu": 0.5, "memory": 1.5e9}, "requests": {"cpu": "250m", "memory": "512Mi"}},
        {"limits": {"cpu": "2", "ephemeral-storage": "5G", "example.com/fpga": 2}, "requests": {"cpu": 1e-3}},
    ],
    ids=["integers", "floats", "strings"],
)
def test_quantities_are_read_as_kubernetes_reads_them(resources: dict[str, Any]) -> None:
    experiment = defaulted_experiment()
    container_of(experiment)["resources"] = resources
    assert validate(experiment)["allowed"] is True


@pytest.mark.parametrize(
    ("resources", "field"),
    [
        ({"limits": {"cpu": "1.5x"}}, "containers[0].resources.limits[cpu]: '1.5x' is not a quantity"),
        ({"requests": {"nvidia.com/gpu": True}}, "containers[0].resources.requests[nvidia.com/gpu]: True is not"),
        ({"limits": {"memory": [1]}}, "containers[0].resources.limits[memory]: [1] is not a quantity"),
    ],
)
def test_a_bad_quantity_is_denied_with_its_path_and_no_library_url(resources: dict[str, Any], field: str) -> None:
    experiment = defaulted_experiment()
    container_of(experiment)["resources"] = resources
    response = validate(experiment)
    assert response["allowed"] is False
    message = response["status"]["message"]
    assert message.startswith("spec.trialTemplate.trialSpec.spec.template.spec."), message
    assert field in message, message
    assert "http" not in message


def test_a_job_field_of_the_wrong_type_is_named_without_a_library_url() -> None:
    experiment = defaulted_experiment()
    container_of(experiment)["ports"] = [{"containerPort": "http"}]
    response = validate(experiment)
    assert response["allowed"] is False
    message = response["status"]["message"]
    assert message.startswith("spec.trialTemplate: is not a valid batch/v1 Job: "), message
    assert "containerPort" in message
    assert "https://" not in message


def test_fields_katib_does_not_define_come_back_as_warnings() -> None:
    experiment_review = load("experiment-review.json")
    experiment_review["request"]["object"]["spec"]["parallelTrialCout"] = 2
    response = review("/mutate-experiment", experiment_review)
    assert response["allowed"] is True
    assert "spec.parallelTrialCout: unknown field; did you mean parallelTrialCount?" in response["warnings"]


def test_updates_may_change_only_the_counts() -> None:
    old = defaulted_experiment()
    more = copy.deepcopy(old)
    more["spec"]["maxTrialCount"] = 20
    assert validate(more, old=old)["allowed"] is True
    other = copy.deepcopy(old)
    other["spec"]["algorithm"]["algorithmName"] = "tpe"
    response = validate(other, old=old)
    assert response["allowed"] is False
    assert response["status"]["message"].startswith("spec: only spec.parallelTrialCount, spec.maxTrialCount")
    body = load("experiment-review.json")
    body["request"]["operation"], body["request"]["object"] = "DELETE", None
    assert review("/validate-experiment", body)["allowed"] is True


def test_config_map_templates_are_read_and_checked() -> None:
    experiment = defaulted_experiment()
    job = experiment["spec"]["trialTemplate"].pop("trialSpec")
    experiment["spec"]["trialTemplate"]["configMap"] = {
        "configMapName": "trial-templates",
        "configMapNamespace": "kubeflow",
        "templatePath": "job.yaml",
    }
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "trial-templates", "namespace": "kubeflow"},
        "data": {"job.yaml": json.dumps(job)},  # JSON is YAML
    }
    assert validate(experiment, reader=Objects(config_map))["allowed"] is True
    config_map["data"] = {"job.yaml": "apiVersion: batch/v1\nkind: Job\nspec: {}\n"}
    response = validate(experiment, reader=Objects(config_map))
    assert response["status"]["message"].startswith("spec.trialTemplate.trialParameters[0].name: ${trialParameters.a}")
    response = validate(experiment, reader=Objects())
    assert response["status"]["message"] == "spec.trialTemplate.configMap: ConfigMap kubeflow/trial-templates not found"


MALFORMED: list[tuple[str, Any]] = [
    ("empty", b""),
    ("not json", b"{nope"),
    ("not utf-8", b"\xff\xfe"),
    ("a list", []),
    ("too large", None),
    ("no kind", {"apiVersion": "admission.k8s.io/v1", "request": {"uid": "u"}}),
    ("old version", {"apiVersion": "admission/v1", "kind": "AdmissionReview", "request": {"uid": "u"}}),
    ("no request", {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}),
    ("no uid", {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {}}),
    (
        "no object",
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {"uid": "u", "operation": "CREATE"},
        },
    ),
    (
        "object of another kind",
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {"uid": "u", "operation": "CREATE", "object": {"kind": "ConfigMap"}},
        },
    ),
]


@pytest.mark.parametrize(("case", "body"), MALFORMED, ids=[case for case, _ in MALFORMED])
@pytest.mark.parametrize("path", ["/mutate-pod", "/mutate-experiment", "/validate-experiment", "/elsewhere"])
def test_malformed_reviews_are_denied_with_a_reason(case: str, body: Any, path: str) -> None:
    response = review(path, body, Objects())
    assert response["allowed"] is False, case
    assert response["status"]["code"] == 400
    assert response["status"]["message"].startswith("malformed AdmissionReview: ")


def test_objects_the_models_cannot_read_are_denied() -> None:
    body = load("experiment-review.json")
    body["request"]["object"]["spec"]["maxTrialCount"] = "twelve"
    response = review("/mutate-experiment", body)
    assert response["allowed"] is False
    assert response["status"]["message"].startswith("spec.maxTrialCount: ")


def test_an_unexpected_failure_is_an_answer_not_a_crash() -> None:
    class Broken(Objects):
        async def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
            raise RuntimeError("boom")

    response = review("/mutate-pod", load("pod-review.json"), Broken())
    assert response["allowed"] is False
    assert response["status"]["code"] == 500
    assert "RuntimeError('boom')" in response["status"]["message"]


def test_the_review_version_is_answered_in_kind() -> None:
    body = load("pod-review.json")
    body["apiVersion"] = "admission.k8s.io/v1beta1"
    admission = Admission(SETTINGS, reader=None)
    answer = asyncio.run(admission.review("/mutate-pod", json.dumps(body).encode()))
    assert answer["apiVersion"] == "admission.k8s.io/v1beta1"
    assert answer["kind"] == "AdmissionReview"
