"""Push a training run's metrics to a DB manager the way a Katib trial does, then read them back.

python push_and_read.py --address 127.0.0.1:6789 [--trial demo-trial-x7k2p9qz]
"""

from __future__ import annotations

import argparse
import math
import sys
from datetime import UTC, datetime, timedelta

import grpc

from katib_api.v1beta1 import api_pb2, api_pb2_grpc


def main(argv: list[str] | None = None) -> int:
    """Report ten epochs of loss/accuracy for one trial, print them as stored, check the count."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", required=True, help="DB manager HOST:PORT")
    parser.add_argument("--trial", default="demo-trial-x7k2p9qz")
    args = parser.parse_args(argv)
    start = datetime.now(UTC)
    with grpc.insecure_channel(args.address) as channel:
        stub = api_pb2_grpc.DBManagerStub(channel)
        for epoch in range(10):
            stamp = (start + timedelta(seconds=epoch)).isoformat(timespec="microseconds").replace("+00:00", "Z")
            logs = [
                api_pb2.MetricLog(
                    time_stamp=stamp, metric=api_pb2.Metric(name="loss", value=f"{math.exp(-epoch / 3):.4f}")
                ),
                api_pb2.MetricLog(
                    time_stamp=stamp, metric=api_pb2.Metric(name="accuracy", value=f"{1 - math.exp(-epoch / 2):.4f}")
                ),
            ]
            stub.ReportObservationLog(
                api_pb2.ReportObservationLogRequest(
                    trial_name=args.trial, observation_log=api_pb2.ObservationLog(metric_logs=logs)
                ),
                timeout=10,
            )
        reply = stub.GetObservationLog(
            api_pb2.GetObservationLogRequest(trial_name=args.trial, metric_name="loss"), timeout=10
        )
    print(f"trial {args.trial}: {len(reply.observation_log.metric_logs)} loss points stored")
    for log in reply.observation_log.metric_logs:
        print(f"  {log.time_stamp}  {log.metric.name}={log.metric.value}")
    return 0 if len(reply.observation_log.metric_logs) == 10 else 1


if __name__ == "__main__":
    sys.exit(main())
