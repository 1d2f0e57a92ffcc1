from katib_core import constants, testing
from katib_core.trial_logs import output_container, pod_selector


def test_the_primary_pod_is_selected_by_trial_name_and_primary_pod_labels() -> None:
    trial = testing.trial("exp-abc")
    assert pod_selector(trial) == "katib.kubeflow.org/trial=exp-abc"
    assert trial.spec is not None
    trial.spec.primary_pod_labels = {"training.kubeflow.org/job-role": "master"}
    assert pod_selector(trial) == "katib.kubeflow.org/trial=exp-abc,training.kubeflow.org/job-role=master"


def test_stdout_trials_are_read_from_the_sidecar_others_from_the_primary_container() -> None:
    pushed = testing.trial("t", kind=constants.CollectorKind.PUSH)
    assert output_container(pushed) is None
    assert pushed.spec is not None
    pushed.spec.primary_container_name = "training-container"
    assert output_container(pushed) == "training-container"
    stdout = testing.trial("t", kind=constants.CollectorKind.STDOUT)
    assert output_container(stdout) == "metrics-logger-and-collector"
    file_kind = testing.trial("t", kind=constants.CollectorKind.FILE)
    assert file_kind.spec is not None
    file_kind.spec.primary_container_name = "main"
    assert output_container(file_kind) == "main"
