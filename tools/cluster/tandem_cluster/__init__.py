"""tandem_cluster: a three-site CephFS cluster in network namespaces, for Tandem's tests and
drills. The command is tools/cluster/tandem-cluster; docs/cephfs.md documents both."""
from .cluster import Cluster, ClusterError, preflight  # noqa: F401
from .layout import Layout, default_layout  # noqa: F401
