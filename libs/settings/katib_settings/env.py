"""Environment variables of the services, validated by pydantic-settings (docs/design.md).

Each service declares its variables as an ``EnvSettings`` model (one field per variable, the
variable's exact name as ``validation_alias``) and reads them with ``from_environ``; flags stay on
argparse and win over these values. The mapping is passed in, not read from ``os.environ``, so
``main`` hands over ``os.environ`` and tests hand over a dict. An empty variable counts as unset
(Kubernetes manifests often set ``value: ""``) unless a model sets ``env_ignore_empty=False``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

import pydantic
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from katib_core.errors import ValidationError
from katib_core.models import first_error


class EnvSettings(BaseSettings):
    """Base of a service's env model: exact (case-sensitive) names, unknown variables ignored."""

    model_config = SettingsConfigDict(case_sensitive=True, env_ignore_empty=True, extra="ignore", frozen=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only what from_environ passes in: no process environment, .env file or secrets dir.
        return (init_settings,)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Self:
        """The model's variables from ``environ``.

        Raises:
            ValidationError: a variable is malformed; ``field`` is its name.
        """
        try:
            return cls(**_MappingSource(cls, environ)())
        except pydantic.ValidationError as exc:
            where, message = first_error(exc)
            given = exc.errors(include_url=False)[0].get("input")
            raise ValidationError(where, f"{message} (got {given!r})" if isinstance(given, str) else message) from None


class _MappingSource(EnvSettingsSource):
    """pydantic-settings' env source over a given mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, Any]:
        return {name: value for name, value in self._environ.items() if value != "" or not self.env_ignore_empty}
