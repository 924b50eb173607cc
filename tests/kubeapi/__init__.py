"""A loopback Kubernetes API server: the one test double the kit's tests allow."""
