import textwrap

import pytest
import yaml

from katib_core import katib_config
from katib_core.errors import ValidationError
from katib_core.katib_config import Route

#: The shape of Katib v0.19's default katib-config (images shortened), plus one pykatib endpoint.
DOCUMENT = textwrap.dedent("""
    apiVersion: config.kubeflow.org/v1beta1
    kind: KatibConfig
    init:
      controller:
        webhookPort: 8443
    runtime:
      metricsCollectors:
        - kind: StdOut
          image: example/file-collector
      suggestions:
        - algorithmName: random
          image: example/suggestion-hyperopt
        - algorithmName: enas
          image: example/suggestion-enas
          resources:
            limits:
              memory: 400Mi
        - algorithmName: my-bohb
          endpoint: bohb.tuning.svc:6789
      earlyStoppings:
        - algorithmName: medianstop
          image: example/earlystopping-medianstop
    """)
OURS = frozenset({"random", "tpe"})


def test_a_katib_config_document_and_its_configmap_read_the_same() -> None:
    direct = katib_config.loads(DOCUMENT)
    wrapped = katib_config.loads(
        yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "data": {"katib-config.yaml": DOCUMENT}})
    )
    assert direct == wrapped
    assert sorted(direct.suggestions) == ["enas", "my-bohb", "random"]
    assert direct.suggestions["enas"].extra == {"resources": {"limits": {"memory": "400Mi"}}}
    assert list(direct.early_stoppings) == ["medianstop"]
    assert direct.metrics_collectors[0]["kind"] == "StdOut"
    assert katib_config.endpoints(direct) == {"my-bohb": "bohb.tuning.svc:6789"}


def test_routes_ours_in_process_endpoints_remote_other_images_deployed() -> None:
    config = katib_config.loads(DOCUMENT)
    assert katib_config.route("random", config, OURS) == Route.IN_PROCESS  # Katib's image is not needed
    assert katib_config.route("tpe", config, OURS) == Route.IN_PROCESS  # no entry: ours
    assert katib_config.route("my-bohb", config, OURS) == Route.ENDPOINT
    assert katib_config.route("enas", config, OURS) == Route.DEPLOY
    assert katib_config.route("darts", config, OURS) == Route.UNKNOWN
    remote_tpe = katib_config.loads("runtime: {suggestions: [{algorithmName: tpe, endpoint: '127.0.0.1:6789'}]}")
    assert katib_config.route("tpe", remote_tpe, OURS) == Route.ENDPOINT  # an endpoint wins over in-process
    assert katib_config.route("tpe", katib_config.KatibConfig(), OURS) == Route.IN_PROCESS


@pytest.mark.parametrize(
    ("text", "field", "saying"),
    [
        ("kind: Deployment", "katib-config: kind", "is not KatibConfig"),
        ("runtime: {suggestions: {a: b}}", "katib-config: runtime.suggestions", "must be a list"),
        ("runtime: {suggestions: [{image: x}]}", "katib-config: runtime.suggestions[0].algorithmName", "required"),
        (
            "runtime: {suggestions: [{algorithmName: a}]}",
            "katib-config: runtime.suggestions[0].image",
            "needs an image",
        ),
        (
            "runtime: {suggestions: [{algorithmName: a, image: x}, {algorithmName: a, image: y}]}",
            "katib-config: runtime.suggestions[1].algorithmName",
            "configured twice",
        ),
        (
            "runtime: {earlyStoppings: [{algorithmName: a, endpoint: 'no-port'}]}",
            "katib-config: runtime.earlyStoppings[0].endpoint",
            "HOST:PORT",
        ),
        ("runtime: {metricsCollectors: 3}", "katib-config: runtime.metricsCollectors", "list"),
        ("runtime: [", "katib-config", "is not YAML"),
        ("kind: ConfigMap\ndata: {}", "katib-config: data.katib-config.yaml", "no katib-config document"),
    ],
)
def test_a_wrong_entry_is_named(text: str, field: str, saying: str) -> None:
    with pytest.raises(ValidationError) as caught:
        katib_config.loads(text)
    assert caught.value.field == field
    assert saying in caught.value.reason


def test_an_empty_document_configures_nothing() -> None:
    assert katib_config.loads("") == katib_config.KatibConfig()
    assert katib_config.deployed_name("exp", "enas") == "exp-enas"
