"""``python -m katib_trial_controller.push_secret``: create the push signing Secret if it is missing.

Run once per install (infra/components/push-auth runs it as a Job) before the DB manager and the
controllers start: they mount the Secret, so they wait until it exists. An existing Secret is
never touched, so re-running is harmless and a rotated secret survives upgrades.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Final

from katib_core import push_auth
from katib_core.errors import AlreadyExistsError
from katib_operator import kubeapi
from katib_operator.objects import Objects
from katib_trial_controller.push_tokens import SECRETS

DEFAULT_NAME: Final = "katib-push-auth"
#: The key the DB manager's and the controllers' mounts read (``/etc/katib/push-auth/secret``).
KEY: Final = "secret"


def signing_secret(namespace: str, name: str, secret: str) -> dict[str, object]:
    """The Secret body: one signing secret under key ``secret`` (add lines to rotate)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/part-of": "pykatib"}},
        "type": "Opaque",
        "stringData": {KEY: secret + "\n"},
    }


def ensure(objects: Objects, namespace: str, name: str = DEFAULT_NAME) -> bool:
    """Create the Secret with a fresh random secret unless it exists; True if created."""
    try:
        objects.create(SECRETS, namespace, signing_secret(namespace, name, push_auth.new_secret()))
    except AlreadyExistsError:
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="katib-push-secret", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--namespace", required=True, help="namespace of the Secret (the install's, e.g. kubeflow)")
    p.add_argument("--name", default=DEFAULT_NAME, help=f"name of the Secret (default {DEFAULT_NAME})")
    p.add_argument("--kubeconfig", help="kubeconfig file (default $KUBECONFIG, else in-cluster)")
    args = p.parse_args(argv)
    try:
        objects = Objects(kubeapi.KubeApi(kubeapi.load(args.kubeconfig)))
        created = ensure(objects, args.namespace, args.name)
    except Exception as exc:  # - a one-line reason, no traceback, exit 1
        print(f"katib-push-secret: {exc}", file=sys.stderr)
        return 1
    state = "created" if created else "exists already (kept)"
    print(f"Secret {args.namespace}/{args.name} {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
