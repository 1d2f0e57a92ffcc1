"""pykatib's DB manager: Katib's ``api.v1.beta1.DBManager`` gRPC service over SQL storage."""
