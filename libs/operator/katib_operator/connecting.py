"""How a controller reaches the API server: kopf's credentials from the same ``KubeConfig`` as our calls.

So kopf's watches and our writes use one identity and never read global client state.
"""

from __future__ import annotations

import kopf

from katib_operator.kubeapi import KubeConfig


def connection_info(config: KubeConfig) -> kopf.ConnectionInfo:
    """kopf's login credentials for ``config``."""
    return kopf.ConnectionInfo(
        server=config.server,
        ca_path=config.ca_file,
        insecure=config.insecure,
        username=config.username,
        password=config.password,
        scheme="Bearer" if config.token or config.token_file else None,
        token=config.bearer(),
        certificate_path=config.cert_file,
        private_key_path=config.key_file,
        default_namespace=config.namespace,
    )
