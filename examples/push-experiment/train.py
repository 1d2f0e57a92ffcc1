"""A toy training loop that pushes per-epoch metrics with pykatib (no log format, no sidecar).

The "model" minimises a quadratic with gradient descent; the loss after each epoch is pushed
with ``report_metrics(..., step=epoch)``. Katib injects ``KATIB_TRIAL_NAME`` (the pod webhook,
or local mode), and ``KATIB_DB_MANAGER_ADDRESS`` where the DB manager is not the default.
"""

from __future__ import annotations

import argparse
import math

import pykatib as katib


def main() -> None:
    """Train for a few epochs, pushing loss and accuracy after each one."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--momentum", type=float, default=0.0)
    parser.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    weight, velocity, target = 5.0, 0.0, 1.5
    scale = 0.5 if args.optimizer == "adam" else 1.0
    for epoch in range(args.epochs):
        gradient = 2 * (weight - target)
        velocity = args.momentum * velocity - args.lr * scale * gradient
        weight += velocity
        loss = (weight - target) ** 2
        accuracy = math.exp(-loss)
        katib.report_metrics({"loss": round(loss, 6), "accuracy": round(accuracy, 6)}, step=epoch)
        print(f"epoch {epoch}: loss={loss:.6f} accuracy={accuracy:.6f}")


if __name__ == "__main__":
    main()
