"""The services' environment variables as pydantic-settings models (docs/design.md)."""
