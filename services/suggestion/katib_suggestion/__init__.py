"""katib-suggestion: our algorithms over Katib's ``api.v1.beta1`` Suggestion and EarlyStopping gRPC APIs."""
