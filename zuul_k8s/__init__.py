"""zuul-k8s: run Zuul executors unprivileged on Kubernetes."""

__version__ = "0.1.0"
