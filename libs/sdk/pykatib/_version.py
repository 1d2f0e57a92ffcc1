"""The version of the ``pykatib`` distribution (keep in step with ``libs/sdk/BUILD``)."""

__version__ = "0.1.0"
