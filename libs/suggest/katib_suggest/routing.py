"""Each Experiment's algorithm where katib-config puts it: in-process, or a Suggestion service.

``AlgorithmRouter`` is what the experiment loop calls (``katib_core.experiment_loop.Algorithm``)
in the experiment controller and in local mode alike: one loop, whichever side of the wire the
algorithm is on. The decision per algorithm name is ``katib_core.katib_config.route``. A remote
algorithm's settings are checked once per Experiment with Katib's ``ValidateAlgorithmSettings``
before its first ``GetSuggestions``, as Katib's suggestion controller does; a refusal is a
``ValidationError``, which the loop turns into a Failed Suggestion with the service's message.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from katib_core import katib_config, search_algorithms
from katib_core.errors import ValidationError
from katib_core.katib_config import KatibConfig, Route
from katib_core.suggestions import SuggestionReply, SuggestionRequest
from katib_suggest.algorithms import Suggester
from katib_suggest.remote import RemoteSuggester

_FIELD = "spec.algorithm.algorithmName"
#: Where the docs say how to point katib-config at a running service.
_HOW = "docs/suggestion.md#katib-config"


class AlgorithmRouter:
    """In-process ``Suggester`` for our algorithms, ``RemoteSuggester`` per configured endpoint.

    Args:
        in_process: the in-process algorithms.
        config: the katib-config (empty: everything in-process, as before).
        remote: how a client for an endpoint is made (tests inject a short timeout).
    """

    def __init__(
        self,
        in_process: Suggester | None = None,
        config: KatibConfig | None = None,
        *,
        remote: Callable[[str], RemoteSuggester] = RemoteSuggester,
    ) -> None:
        self._local = in_process or Suggester()
        self._config = config or KatibConfig()
        self._make_remote = remote
        self._remotes: dict[str, RemoteSuggester] = {}
        self._validated: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    @property
    def algorithms(self) -> frozenset[str]:
        """Every algorithm name this router can run."""
        configured = {n for n in self._config.suggestions if self.route(n) != Route.DEPLOY}
        return frozenset(search_algorithms.ALGORITHMS) | configured

    def route(self, name: str) -> Route:
        return katib_config.route(name, self._config, search_algorithms.ALGORITHMS)

    def suggest(self, request: SuggestionRequest) -> SuggestionReply:
        """The answer of the Experiment's algorithm, wherever it runs.

        Raises:
            ValidationError: an algorithm no one runs here, or the service refused the settings.
            SuggestionServiceError: the service failed or stayed unavailable (retried by the caller).
        """
        spec = request.experiment.spec
        name = (spec.algorithm.algorithm_name if spec and spec.algorithm else None) or ""
        route = self.route(name)
        if route == Route.IN_PROCESS:
            return self._local.suggest(request)
        if route == Route.ENDPOINT:
            endpoint = self._config.suggestions[name].endpoint
            client = self._remote(endpoint)
            key = (endpoint, request.key)
            if key not in self._validated:
                client.validate(request.experiment)
                self._validated.add(key)
            return client.suggest(request)
        self.check(name)
        raise AssertionError(f"route {route} of {name!r} has no handler")  # - check raised

    def check(self, name: str) -> None:
        """Whether algorithm ``name`` can run here.

        Raises:
            ValidationError: an unknown name, or an image-only entry for an algorithm we lack.
        """
        route = self.route(name)
        if route == Route.DEPLOY:
            image = self._config.suggestions[name].image
            raise ValidationError(
                _FIELD,
                f"{name!r} is configured as the image {image}, which Katib v0.19 deploys per Experiment;"
                f" pykatib does not: run it as a service and give its katib-config entry"
                f" endpoint: HOST:PORT ({_HOW})",
            )
        if route == Route.UNKNOWN:
            known = ", ".join(sorted(self.algorithms))
            raise ValidationError(_FIELD, f"unknown algorithm name {name!r}; known: {known}")

    def forget(self, key: str) -> None:
        self._local.forget(key)
        with self._lock:
            self._validated = {k for k in self._validated if k[1] != key}

    def forget_prefix(self, prefix: str) -> None:
        self._local.forget_prefix(prefix)
        with self._lock:
            self._validated = {k for k in self._validated if not k[1].startswith(prefix)}

    def close(self) -> None:
        with self._lock:
            remotes, self._remotes = list(self._remotes.values()), {}
        for client in remotes:
            client.close()

    def _remote(self, endpoint: str) -> RemoteSuggester:
        with self._lock:
            client = self._remotes.get(endpoint)
            if client is None:
                client = self._remotes[endpoint] = self._make_remote(endpoint)
            return client


def read_katib_config(path: Path, *, field: str = "katib-config") -> KatibConfig:
    """The katib-config file at ``path`` (a KatibConfig document or a ``katib-config`` ConfigMap).

    Raises:
        ValidationError: ``field`` (where the path came from) when it cannot be read; a wrong entry
            is named by its place in the file.
    """
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValidationError(field, f"cannot read {path}: {exc.strerror or exc}") from None
    return katib_config.loads(text, source=str(path))


__all__ = ["AlgorithmRouter", "read_katib_config"]
