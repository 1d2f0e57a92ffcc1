"""`python -m katib_testcluster`: run a test cluster (with the CRDs) until Ctrl-C, for manual poking.

python -m katib_testcluster            # prints the KUBECONFIG to export
KUBECONFIG=... kubectl get experiments,trials -A
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from katib_testcluster import cluster, crds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m katib_testcluster", description=__doc__)
    parser.add_argument("--crd-dir", type=Path, help="default: $PYKATIB_CRD_DIR or the repo's infra/crds")
    parser.add_argument("--no-crds", action="store_true", help="apply no CRDs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    crd_dir = None if args.no_crds else (args.crd_dir or crds.find_dir())
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    with cluster.running(crd_dir=crd_dir) as running:
        print(f"export KUBECONFIG={running.kubeconfig}", flush=True)
        print(f"# up in {running.startup_seconds:.1f}s; logs in {running.dir}/logs; Ctrl-C stops", flush=True)
        done.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
