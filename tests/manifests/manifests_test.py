"""The kustomizations build with current kubectl, and what they render is what the services need."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from manifests import kustomize

SERVICES = {
    "katib-db-manager",
    "katib-webhook",
    "katib-experiment-controller",
    "katib-trial-controller",
    "katib-metrics-collector",
}
#: Images built like the others but not part of infra/install: deployed on their own (docs/suggestion.md).
OPTIONAL = {"katib-suggestion"}


@pytest.fixture(scope="module")
def kubectl() -> Path:
    try:
        return kustomize.kubectl()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def install(kubectl: Path) -> list[dict[str, Any]]:
    return kustomize.build(kubectl, kustomize.INSTALL)


@pytest.fixture(scope="module")
def compatible(kubectl: Path) -> list[dict[str, Any]]:
    return kustomize.build(kubectl, kustomize.INFRA / "overlays" / "katib-compatible")


def test_the_expected_kustomizations_exist() -> None:
    found = {str(p) for p in kustomize.kustomizations()}
    expected = {
        "infra/base",
        "infra/install",
        "infra/overlays/katib-compatible",
        *(f"infra/{c}" for c in ("crds", "namespace", "mysql", "db-manager", "webhook", "suggestion")),
        *(f"infra/{c}-controller" for c in ("experiment", "trial")),
    }
    assert expected <= found


@pytest.mark.parametrize("directory", kustomize.kustomizations(), ids=str)
def test_every_kustomization_builds(kubectl: Path, directory: Path) -> None:
    assert kustomize.build(kubectl, directory)


def test_install_puts_every_namespaced_object_in_kubeflow(install: list[dict[str, Any]]) -> None:
    cluster_scoped = {
        "Namespace",
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleBinding",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    }
    for obj in install:
        where = obj["metadata"].get("namespace")
        if obj["kind"] in cluster_scoped:
            assert where is None, obj["metadata"]
        else:
            assert where == "kubeflow", (obj["kind"], obj["metadata"]["name"])
    kinds = {obj["kind"] for obj in install}
    assert {"Deployment", "Service", "ServiceAccount", "ClusterRole", "PersistentVolumeClaim", "Secret"} <= kinds
    deployments = {o["metadata"]["name"] for o in install if o["kind"] == "Deployment"}
    assert deployments == SERVICES - {"katib-metrics-collector"} | {"katib-mysql"}


def test_db_manager_is_where_the_official_sdk_looks(install: list[dict[str, Any]]) -> None:
    service = kustomize.find(install, "Service", "katib-db-manager")
    assert [(p["name"], p["port"]) for p in service["spec"]["ports"]] == [("api", 6789)]
    deployment = kustomize.find(install, "Deployment", "katib-db-manager")
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["ports"] == [{"name": "api", "containerPort": 6789}]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"] == {"port": 6789}
    env = {e["name"]: e for e in container["env"]}
    assert env["DB_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "katib-mysql-secrets"
    kustomize.find(install, "Secret", "katib-mysql-secrets")
    mysql = kustomize.find(install, "Deployment", "katib-mysql")
    claims = [v["persistentVolumeClaim"]["claimName"] for v in mysql["spec"]["template"]["spec"]["volumes"]]
    assert [kustomize.find(install, "PersistentVolumeClaim", c)["metadata"]["name"] for c in claims] == ["katib-mysql"]


def test_push_auth_is_on_in_install_and_off_when_katib_compatible(
    install: list[dict[str, Any]], compatible: list[dict[str, Any]]
) -> None:
    def wiring(objects: list[dict[str, Any]]) -> dict[str, tuple[str | None, list[Any]]]:
        found = {}
        for name, variable in (
            ("katib-db-manager", "KATIB_DB_MANAGER_AUTH_SECRET_FILE"),
            ("katib-trial-controller", "KATIB_PUSH_AUTH_SECRET_FILE"),
            ("katib-experiment-controller", "KATIB_PUSH_AUTH_SECRET_FILE"),
            ("katib-webhook", "KATIB_INJECT_PUSH_TOKEN"),
        ):
            spec = kustomize.find(objects, "Deployment", name)["spec"]["template"]["spec"]
            env = {e["name"]: e.get("value") for e in spec["containers"][0].get("env", ())}
            secrets = [v["secret"]["secretName"] for v in spec.get("volumes", ()) if "secret" in v]
            found[name] = (env.get(variable), secrets)
        return found

    mounted = ("/etc/katib/push-auth/secret", ["katib-push-auth"])
    assert wiring(install) == {
        "katib-db-manager": mounted,
        "katib-trial-controller": mounted,
        "katib-experiment-controller": mounted,
        "katib-webhook": ("true", []),
    }
    assert all(wired == (None, []) for wired in wiring(compatible).values())
    # The key is generated in the cluster by the init Job, never rendered from the repository.
    for objects in (install, compatible):
        assert not [o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == "katib-push-auth"]
    job = kustomize.find(install, "Job", "katib-push-auth-init")["spec"]["template"]["spec"]
    (container,) = job["containers"]
    assert container["command"][-2:] == ["-m", "katib_trial_controller.push_secret"]
    assert (
        container["image"]
        == kustomize.find(install, "Deployment", "katib-trial-controller")["spec"]["template"]["spec"]["containers"][0][
            "image"
        ]
    )
    assert not [o for o in compatible if o["kind"] == "Job"]
    assert {o["metadata"]["name"] for o in install} - {o["metadata"]["name"] for o in compatible} == {
        "katib-push-auth-init"
    }


def test_every_pykatib_image_is_built_by_a_dockerfile(install: list[dict[str, Any]]) -> None:
    titles = kustomize.dockerfiles()
    images = []
    for deployment, container in kustomize.containers(install):
        images.append((deployment, container["image"]))
        # The webhook names the sidecar images it injects.
        for arg in container.get("args", ()):
            if arg.startswith("--collector-image="):
                images.append((deployment, arg.split("=", 2)[2]))
    ours = [(d, i) for d, i in images if i.startswith(kustomize.REGISTRY)]
    assert {i for _, i in images} - {i for _, i in ours} == {"mysql:8.0"}
    for deployment, image in ours:
        name = kustomize.repository(image).removeprefix(kustomize.REGISTRY)
        assert name in titles, f"{deployment}: {image} has no Dockerfile (titles: {sorted(titles)})"
        assert image.endswith(":v0.1.0"), image
    assert {kustomize.repository(i).removeprefix(kustomize.REGISTRY) for _, i in ours} == SERVICES


def test_every_service_image_follows_the_db_managers_conventions() -> None:
    found = kustomize.dockerfiles()
    assert SERVICES | OPTIONAL | {"pykatib-trial"} == set(found)
    for title in SERVICES | OPTIONAL:
        dockerfile = found[title]
        assert dockerfile.path == Path(
            "services", title.removeprefix("katib-").replace("db-manager", "dbmanager"), "Dockerfile"
        )
        steps = kustomize.instructions(dockerfile.text)
        froms = [args for keyword, args in steps if keyword == "FROM"]
        assert froms == ["python:3.11-slim AS build", "python:3.11-slim"], dockerfile.path
        assert ("COPY", f"dist/{title}.pex /tmp/app.pex") in steps
        assert ("RUN", "PEX_TOOLS=1 python3.11 /tmp/app.pex venv --compile /opt/app") in steps
        # Non-root, as the Deployments' runAsNonRoot requires (uid 1000, Katib's).
        assert [args for keyword, args in steps if keyword == "USER"] == ["1000"]
        assert ("ENTRYPOINT", '["/opt/app/pex"]') in steps
        healthchecks = [args for keyword, args in steps if keyword == "HEALTHCHECK"]
        if title == "katib-metrics-collector":  # a one-shot sidecar
            assert not healthchecks
        else:
            (check,) = healthchecks
            assert check.startswith("--"), check
            assert 'CMD ["/opt/app/bin/python"' in check


def test_the_pexes_the_images_copy_include_pex_tools() -> None:
    for title in SERVICES | OPTIONAL:
        build_file = kustomize.dockerfiles()[title].path.parent / "BUILD"
        assert f'output_path="{title}.pex"' in build_file.read_text()
        assert "include_tools=True" in build_file.read_text(), build_file


def test_the_optional_suggestion_service_runs_its_image(kubectl: Path) -> None:
    objects = kustomize.build(kubectl, kustomize.INFRA / "suggestion")
    ((_, container),) = kustomize.containers(objects)
    assert container["image"] == f"{kustomize.REGISTRY}katib-suggestion:v0.1.0"
    (port,) = container["ports"]
    assert port["containerPort"] == 6789  # Katib's suggestion port


def test_probes_hit_the_ports_the_containers_serve(install: list[dict[str, Any]]) -> None:
    for deployment, container in kustomize.containers(install):
        ports = {p.get("name"): p["containerPort"] for p in container.get("ports", ())}
        for kind in ("readinessProbe", "livenessProbe"):
            probe = container.get(kind)
            if probe is None:
                continue
            handler = probe.get("httpGet") or probe.get("grpc") or probe.get("tcpSocket")
            if handler is None:
                assert "exec" in probe, (deployment, kind)
                continue
            port = handler["port"]
            assert (ports.get(port) if isinstance(port, str) else port) in ports.values(), (deployment, kind, port)
        if deployment.endswith("-controller"):
            liveness = container["livenessProbe"]["httpGet"]
            assert f"--liveness=http://0.0.0.0:{ports['healthz']}{liveness['path']}" in container["args"]


def test_webhook_service_reaches_the_webhook(install: list[dict[str, Any]]) -> None:
    service = kustomize.find(install, "Service", "katib-webhook")
    deployment = kustomize.find(install, "Deployment", "katib-webhook")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    # The pod webhooks skip Katib's own Pods by this label, so the webhook never blocks itself.
    assert "katib.kubeflow.org/component" in labels
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert [p["targetPort"] for p in service["spec"]["ports"]] == [p["containerPort"] for p in container["ports"]]
    args = container["args"]
    assert f"--port={container['ports'][0]['containerPort']}" in args
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        configuration = kustomize.find(install, kind, "katib.kubeflow.org")
        for webhook in configuration["webhooks"]:
            target = webhook["clientConfig"]["service"]
            assert (target["name"], target["namespace"]) == ("katib-webhook", "kubeflow")
            assert target["path"] in {"/mutate-experiment", "/validate-experiment", "/mutate-pod"}


def _rules(objects: list[dict[str, Any]], subject: str) -> list[dict[str, Any]]:
    """Every rule bound to ServiceAccount kubeflow/``subject``."""
    found = []
    for binding in objects:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        if {"kind": "ServiceAccount", "name": subject, "namespace": "kubeflow"} in binding["subjects"]:
            ref = binding["roleRef"]
            found.extend(kustomize.find(objects, ref["kind"], ref["name"])["rules"])
    return found


def test_rbac_is_least_privilege(install: list[dict[str, Any]]) -> None:
    for obj in install:
        if obj["kind"] in ("Role", "ClusterRole"):
            for rule in obj["rules"]:
                flat = json.dumps(rule)
                assert '"*"' not in flat, (obj["metadata"]["name"], rule)
                if "secrets" in rule.get("resources", ()):
                    # Only creating: the trial controller the trials' token Secrets, the init Job the signing one.
                    assert obj["metadata"]["name"] in ("katib-trial-controller", "katib-push-auth-init"), rule
                    assert (rule["resources"], rule["verbs"]) == (["secrets"], ["create"]), rule
    for deployment in (o for o in install if o["kind"] == "Deployment"):
        spec = deployment["spec"]["template"]["spec"]
        if deployment["metadata"]["name"] == "katib-mysql":
            assert spec["automountServiceAccountToken"] is False
            continue
        account = spec["serviceAccountName"]
        kustomize.find(install, "ServiceAccount", account)
        assert account == deployment["metadata"]["name"]
    # The DB manager talks to no API server.
    assert _rules(install, "katib-db-manager") == []
    db_spec = kustomize.find(install, "Deployment", "katib-db-manager")["spec"]["template"]["spec"]
    assert db_spec["automountServiceAccountToken"] is False

    def allowed(subject: str) -> set[tuple[str, str, str]]:
        return {
            (group, resource, verb)
            for rule in _rules(install, subject)
            for group in rule["apiGroups"]
            for resource in rule["resources"]
            for verb in rule["verbs"]
        }

    experiment = allowed("katib-experiment-controller")
    assert {("kubeflow.org", "trials", "create"), ("kubeflow.org", "suggestions/status", "update")} <= experiment
    assert not {g for g, _, _ in experiment} & {"batch"}, "the experiment controller runs no jobs"
    trial = allowed("katib-trial-controller")
    assert {
        ("batch", "jobs", "create"),
        ("batch", "jobs", "delete"),
        ("kubeflow.org", "trials/status", "update"),
    } <= trial
    assert ("kubeflow.org", "experiments", "get") not in trial
    for controller in (experiment, trial):
        assert {("coordination.k8s.io", "leases", v) for v in ("create", "get", "update")} <= controller
        assert ("", "events", "create") in controller
    webhook = allowed("katib-webhook")
    assert {verb for _, _, verb in webhook} == {"get", "patch"}
    assert {r for _, r, v in webhook if v == "patch"} == {
        "mutatingwebhookconfigurations",
        "validatingwebhookconfigurations",
    }


def test_containers_run_unprivileged(install: list[dict[str, Any]]) -> None:
    for deployment, container in kustomize.containers(install):
        if deployment == "katib-mysql":
            continue
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert container["imagePullPolicy"] == "IfNotPresent"
    for obj in install:
        if obj["kind"] in ("Deployment", "Job") and obj["metadata"]["name"] != "katib-mysql":
            assert obj["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_install_commands_in_the_docs_name_real_kustomizations() -> None:
    text = Path("docs/install.md").read_text()
    named = {
        Path(match.rstrip("/"))
        for line in text.splitlines()
        if "apply -k" in line or "kubectl kustomize" in line
        for match in re.findall(r"infra/[\w/-]+", line)
    }
    assert named, "docs/install.md names no kustomization"
    assert named <= set(kustomize.kustomizations())
