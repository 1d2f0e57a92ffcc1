"""The fast path's objective source is byte for byte what bash writes for tune()'s trial script."""

from __future__ import annotations

import subprocess
from typing import Any

from pykatib import _tuning, search
from pykatib_local import objective_script


def tricky(parameters):  # type: ignore[no-untyped-def]
    """Backslashes: "\\n", r"\\d+", a continuation \
    and quotes ' " inside."""
    import re

    pattern = r"\d+\\"
    return [*re.findall(pattern, "a1\\b22\\"), "tab\there", "line\\\nnext"]


def dollars(parameters):  # type: ignore[no-untyped-def]
    return "costs $5"


def script_for(objective: Any, **tune: Any) -> str:
    """tune()'s trial script, rendered as Katib renders it (placeholders replaced by values)."""
    experiment = _tuning.build_experiment(
        name="e",
        namespace="default",
        objective=objective,
        parameters={"lr": search.double(0.01, 0.1), "kind": search.categorical(["a", "b"])},
        objective_metric_name="loss",
        trials_have_pykatib=True,
        **tune,
    )
    template = experiment.spec.trial_template  # type: ignore[union-attr]
    container = template.trial_spec["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index,union-attr]
    assert container["command"] == ["bash", "-c"]
    (script,) = container["args"]
    return str(script).replace("${trialParameters.lr}", "0.05").replace("${trialParameters.kind}", "b")


def bash_writes(script: str) -> str:
    """The file the script hands to python, written by bash itself (the python line replaced by cat)."""
    head, last = script.rsplit("\n", 1)
    assert last == 'python -u "$program_path/ephemeral_script.py"'
    done = subprocess.run(
        ["bash", "-c", head + '\ncat "$program_path/ephemeral_script.py"; rm -r "$program_path"'],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_the_source_is_what_bash_writes_backslashes_and_all() -> None:
    script = script_for(tricky)
    found = objective_script.from_argv(["bash", "-c", script])
    assert found.source is not None, found.reason
    assert found.source == bash_writes(script)
    assert found.source.endswith("tricky({'lr': float('0.05'), 'kind': 'b'})")


def test_what_bash_would_expand_or_install_runs_as_the_command() -> None:
    assert "$" in objective_script.from_script(script_for(dollars)).reason
    assert objective_script.from_script(script_for(tricky, packages_to_install=["numpy"])).source is None
    edited = script_for(tricky).replace("python -u", "python -X dev -u")
    assert objective_script.from_script(edited).source is None
    assert objective_script.from_argv(["python", "-c", "print(1)"]).source is None
    ends_early = script_for(tricky).replace("import re\n", "import re\nEOM\n", 1)
    assert "EOM" in objective_script.from_script(ends_early).reason
