import pytest

from katib_core.errors import ValidationError
from pykatib import search


def test_double_and_int() -> None:
    assert search.double(0.1, 0.2).to_api() == {
        "parameterType": "double",
        "feasibleSpace": {"min": "0.1", "max": "0.2"},
    }
    assert search.int(10, 20, step=2).to_api() == {
        "parameterType": "int",
        "feasibleSpace": {"min": "10", "max": "20", "step": "2"},
    }
    assert search.double(1e-4, 1e-1, distribution="logUniform").to_api() == {
        "parameterType": "double",
        "feasibleSpace": {"min": "0.0001", "max": "0.1", "distribution": "logUniform"},
    }


def test_categorical_values_go_to_the_list() -> None:
    # kubeflow-katib >= 0.18 puts them in feasibleSpace.distribution, which Katib rejects.
    assert search.categorical(["sgd", "adam"]).to_api() == {
        "parameterType": "categorical",
        "feasibleSpace": {"list": ["sgd", "adam"]},
    }
    assert search.categorical([1, 2.5, True]).to_api()["feasibleSpace"] == {"list": ["1", "2.5", "True"]}
    assert search.discrete([16, 32]).to_api() == {"parameterType": "discrete", "feasibleSpace": {"list": ["16", "32"]}}


def test_helpers_return_fresh_objects() -> None:
    first, second = search.int(1, 2), search.int(1, 2)
    first.name = "a"
    assert second.name is None


def test_bad_arguments_name_the_field() -> None:
    with pytest.raises(ValidationError, match="^distribution: "):
        search.double(0.1, 0.2, distribution="gaussian")
    with pytest.raises(ValidationError, match="^list: "):
        search.categorical("abc")
