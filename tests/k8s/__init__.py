"""A real Kubernetes for the tests, built from Go modules: the control plane
(etcd, kube-apiserver, kube-controller-manager, kube-scheduler), KWOK fake
nodes, and a real node (kubelet, containerd, runc). See tests/README.md."""
