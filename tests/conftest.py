"""Fixtures every test directory may use: the real Kubernetes cluster (tests/k8s)."""

pytest_plugins = ["tests.k8s.fixtures"]
