"""The Kubernetes backend: Katib's CRDs through the official ``kubernetes`` client."""
