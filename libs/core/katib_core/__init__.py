"""Pure domain logic shared by every pykatib service, the SDK and the local runner.

Nothing here performs I/O or imports gRPC, Kubernetes clients or database drivers: services
read state, call these functions, and write the results.
"""
