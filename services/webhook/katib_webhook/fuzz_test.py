"""Fuzzing the admission webhook: ≥ 10,000 generated AdmissionReviews, zero crashes, clear denials.

Three generators: the captured Experiment and Pod reviews with one value anywhere replaced by
arbitrary JSON (the interesting case: almost valid objects), arbitrary JSON documents, and
arbitrary bytes. Every answer must be a well-formed AdmissionReview response carrying the
request's uid when it had one; a denial must be 400/403 with a message (a 500 would mean an
unhandled exception); an allowed answer's JSON Patch must apply to the object it was computed on.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import os
from pathlib import Path
from typing import Any

import jsonpatch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from katib_webhook import kube
from katib_webhook.admission import MUTATE_EXPERIMENT, MUTATE_POD, PATHS, VALIDATE_EXPERIMENT, Admission
from katib_webhook.admission_test import SETTINGS, Objects, load, trial

#: Examples per test; the four tests send ≥ 10,000 reviews in all.
EXAMPLES = int(os.environ.get("PYKATIB_FUZZ_EXAMPLES", "2600"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
DATA = Path(__file__).parent / "testdata"

EXPERIMENT_REVIEW = load("experiment-review.json")
POD_REVIEW = load("pod-review.json")
ADMISSION = Admission(
    SETTINGS,
    reader=Objects(load("job.json"), trial("Push"), trial("StdOut") | {"metadata": {"name": "other"}}),
    convert_batch_job=kube.batch_job_round_trip(kube.offline_client()),
)
LOOP = asyncio.new_event_loop()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


def paths(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``document``."""
    found = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            found += paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += paths(value, (*prefix, index))
    return found


EXPERIMENT_PATHS = paths(EXPERIMENT_REVIEW)[1:]
POD_PATHS = paths(POD_REVIEW)[1:]


def replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    out = copy.deepcopy(document)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def answer(path: str, body: bytes) -> dict[str, Any]:
    review: dict[str, Any] = LOOP.run_until_complete(ADMISSION.review(path, body))
    assert review["kind"] == "AdmissionReview"
    response: dict[str, Any] = review["response"]
    assert isinstance(response["allowed"], bool)
    if not response["allowed"]:
        status = response["status"]
        assert status["code"] in (400, 403), status  # 500 = an exception escaped a handler
        assert status["message"].strip(), status
    return response


def check_patch(request: Any, response: dict[str, Any]) -> None:
    if not response["allowed"] or "patch" not in response:
        return
    ops = json.loads(base64.b64decode(response["patch"]))
    jsonpatch.apply_patch(request["object"], ops)  # raises if the patch does not fit the object


@FUZZ
@given(st.sampled_from(EXPERIMENT_PATHS), json_values, st.sampled_from([MUTATE_EXPERIMENT, VALIDATE_EXPERIMENT]))
def test_almost_valid_experiments_are_answered_cleanly(path: tuple[Any, ...], value: Any, webhook: str) -> None:
    review = replaced(EXPERIMENT_REVIEW, path, value)
    response = answer(webhook, json.dumps(review).encode())
    request = review.get("request")
    if isinstance(request, dict) and isinstance(request.get("uid"), str) and request["uid"]:
        assert response["uid"] == request["uid"]
        check_patch(request, response)


@FUZZ
@given(st.sampled_from(POD_PATHS), json_values)
def test_almost_valid_pods_are_answered_cleanly(path: tuple[Any, ...], value: Any) -> None:
    review = replaced(POD_REVIEW, path, value)
    response = answer(MUTATE_POD, json.dumps(review).encode())
    request = review.get("request")
    if isinstance(request, dict) and isinstance(request.get("uid"), str) and request["uid"]:
        assert response["uid"] == request["uid"]
        check_patch(request, response)


@FUZZ
@given(json_values, st.sampled_from(PATHS))
def test_arbitrary_json_is_denied_as_malformed(document: Any, webhook: str) -> None:
    response = answer(webhook, json.dumps(document).encode())
    assert not response["allowed"]
    assert response["status"]["code"] == 400


@FUZZ
@given(st.binary(max_size=200), st.sampled_from([*PATHS, "/nope"]))
def test_arbitrary_bytes_are_denied_as_malformed(body: bytes, webhook: str) -> None:
    response = answer(webhook, body)
    assert not response["allowed"]
    assert "malformed AdmissionReview" in response["status"]["message"]
