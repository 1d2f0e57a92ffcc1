"""``tune()`` of the official kubeflow-katib SDK against pykatib, for sdk_e2e_test.py.

Runs in the ``katib-compat`` resolve as its own pex (``tests/e2e:official-tune``):

    official-tune.pex KUBECONFIG NAMESPACE NAME '{"base_image": ..., "packages_to_install": ...}'

creates the Experiment with ``tune(..., metrics_collector_config={"kind": "Push"})``, waits for
Succeeded with the official client, and prints one JSON line: the optimal trial
(``get_optimal_hyperparameters``) and the Experiment as stored. Each trial also pushes
``python_minor``, the minor version of the Python it ran on.
"""

from __future__ import annotations

import json
import sys

from kubeflow import katib
from kubernetes import client


def objective(parameters):  # type: ignore[no-untyped-def]  # its source runs in the trial: no annotations
    """The training: pushes ``loss`` with the official ``report_metrics`` (runs inside the trial)."""
    import os
    import sys

    from kubeflow.katib import report_metrics
    from kubeflow.katib.utils import utils

    if not os.path.exists("/var/run/secrets/kubernetes.io/serviceaccount/namespace"):
        # The test node agent mounts no service-account volume; the SDK reads it unguarded.
        utils.get_current_k8s_namespace = lambda: "node-agent"
    x = float(parameters["x"])
    address = os.environ.get("KATIB_DB_MANAGER_ADDRESS", "katib-db-manager.kubeflow:6789")
    for step in range(3):
        report_metrics({"loss": (x - 0.3) ** 2 + 0.01 / (step + 1)}, db_manager_address=address)
    report_metrics({"python_minor": sys.version_info[1]}, db_manager_address=address)


def main(argv: list[str]) -> int:
    kubeconfig, namespace, name, extra = argv
    katib_client = katib.KatibClient(config_file=kubeconfig, namespace=namespace)
    katib_client.tune(
        name=name,
        objective=objective,
        parameters={"x": katib.search.double(min=0.0, max=1.0)},
        objective_metric_name="loss",
        objective_type="minimize",
        max_trial_count=3,
        parallel_trial_count=3,
        metrics_collector_config={"kind": "Push"},
        **json.loads(extra),
    )
    katib_client.wait_for_experiment_condition(name=name, namespace=namespace, timeout=600, polling_interval=2)
    optimal = katib_client.get_optimal_hyperparameters(name=name, namespace=namespace)
    stored = katib_client.get_experiment(name=name, namespace=namespace)
    plain = client.ApiClient().sanitize_for_serialization
    print(json.dumps({"optimal": plain(optimal), "experiment": plain(stored)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
