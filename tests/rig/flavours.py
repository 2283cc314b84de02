"""Registry flavours: plain, htpasswd basic auth, token auth, TLS and mutual TLS.

:class:`RigRegistry` is a :class:`~tests.rig.registry_server.RegistryServer`
whose extra features combine freely (basic auth over TLS works too). Every
attribute exists on every flavour and is ``None`` when it does not apply, so
helpers can take "any registry" and ask it how to connect:

* ``username`` / ``password`` / ``users``: credentials the registry accepts
  (basic flavour: from the htpasswd file; token flavour: the token server's).
* ``token_server``: the :class:`~tests.rig.token_server.TokenServer` it trusts.
* ``ca_path`` / ``client_cert`` / ``client_key`` / ``cert_dir``: TLS files.
  ``cert_dir`` is laid out for ``skopeo --cert-dir`` (``ca.crt``,
  ``client.cert``, ``client.key``).
* :meth:`RigRegistry.requests_kwargs` and :meth:`RigRegistry.skopeo_args`:
  the flags a raw ``requests`` call or a ``skopeo`` command needs.
"""
from __future__ import annotations

from typing import Any

import bcrypt
import requests
import trustme

from tests.rig.registry_server import RegistryServer
from tests.rig.token_server import TokenServer

DEFAULT_BASIC_USERS = {"alice": "secret", "bob": "bobpass"}

# bcrypt's minimum cost: Distribution checks the hash on every request, and the
# default cost (12) would add a quarter second to each one.
_BCRYPT_ROUNDS = 4


def htpasswd_line(username: str, password: str) -> str:
    """One ``user:bcrypt-hash`` line as ``htpasswd -B`` writes it."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=_BCRYPT_ROUNDS)).decode()
    return f"{username}:{hashed}"


class RigRegistry(RegistryServer):
    """A Distribution registry with optional basic auth, token auth, TLS and client certs."""

    def __init__(self, *, users: dict[str, str] | None = None, token_server: TokenServer | None = None,
                 tls_ca: trustme.CA | None = None, client_ca: trustme.CA | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        if users is not None and token_server is not None:
            raise ValueError("a registry has one auth method: pass users (basic) or token_server, not both")
        if client_ca is not None and tls_ca is None:
            raise ValueError("client certificates need TLS: pass tls_ca too")
        super().__init__(extra=extra, scheme="https" if tls_ca else "http")
        self.users: dict[str, str] | None = None
        self.username: str | None = None
        self.password: str | None = None
        self.token_server = token_server
        self.ca_path: str | None = None
        self.client_cert: str | None = None
        self.client_key: str | None = None
        self.cert_dir: str | None = None
        if users is not None:
            self._setup_basic(users)
        if token_server is not None:
            self.config["auth"] = token_server.registry_auth_config()
            self.users = dict(token_server.users)
            self.username, self.password = next(iter(self.users.items()), (None, None))
        if tls_ca is not None:
            self._setup_tls(tls_ca, client_ca)

    def _setup_basic(self, users: dict[str, str]) -> None:
        path = self.workdir / "htpasswd"
        path.write_text("".join(htpasswd_line(u, p) + "\n" for u, p in users.items()))
        self.config["auth"] = {"htpasswd": {"realm": "ocireg-test", "path": str(path)}}
        self.users = dict(users)
        self.username, self.password = next(iter(users.items()), (None, None))

    def _setup_tls(self, ca: trustme.CA, client_ca: trustme.CA | None) -> None:
        certs = self.workdir / "certs"
        certs.mkdir()
        server = ca.issue_cert("127.0.0.1", "localhost")
        # Not in cert_dir: skopeo treats every *.key there as a client key.
        server_chain = self.workdir / "server.pem"
        server_chain.write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))
        server_key = self.workdir / "server.key"
        server_key.write_bytes(server.private_key_pem.bytes())
        ca_file = certs / "ca.crt"
        ca_file.write_bytes(ca.cert_pem.bytes())
        tls: dict[str, Any] = {"certificate": str(server_chain), "key": str(server_key)}
        if client_ca is not None:
            client_ca_file = self.workdir / "client-ca.pem"
            client_ca_file.write_bytes(client_ca.cert_pem.bytes())
            tls["clientcas"] = [str(client_ca_file)]
            client = client_ca.issue_cert("ocireg-test-client")
            (certs / "client.cert").write_bytes(b"".join(blob.bytes() for blob in client.cert_chain_pems))
            (certs / "client.key").write_bytes(client.private_key_pem.bytes())
            self.client_cert = str(certs / "client.cert")
            self.client_key = str(certs / "client.key")
        self.config["http"]["tls"] = tls
        self.ca_path = str(ca_file)
        self.cert_dir = str(certs)

    # -- how to connect ------------------------------------------------------------
    @property
    def auth(self) -> tuple[str, str] | None:
        """``(username, password)`` for ``requests`` / raw clients, or None when anonymous."""
        if self.username is None or self.password is None:
            return None
        return (self.username, self.password)

    def requests_kwargs(self) -> dict[str, Any]:
        """``verify`` / ``cert`` for a ``requests`` call to this registry (no credentials)."""
        kwargs: dict[str, Any] = {}
        if self.ca_path:
            kwargs["verify"] = self.ca_path
        if self.client_cert and self.client_key:
            kwargs["cert"] = (self.client_cert, self.client_key)
        return kwargs

    def _marker_kwargs(self) -> dict[str, Any]:
        # The counter's marker must pass the TLS handshake (and mTLS's client check) to be logged.
        return self.requests_kwargs()

    def skopeo_args(self, role: str | None = None, *, creds: bool = True) -> list[str]:
        """TLS and credential flags for ``skopeo``; ``role`` is ``"src"`` / ``"dest"`` for copy."""
        prefix = f"--{role}-" if role else "--"
        args = [f"{prefix}cert-dir", self.cert_dir] if self.cert_dir else [f"{prefix}tls-verify=false"]
        if creds and self.auth:
            args += [f"{prefix}creds", f"{self.username}:{self.password}"]
        return args

    def docker_ref(self, repository: str, reference: str = "latest") -> str:
        """``docker://HOST/REPO:TAG`` (or ``@sha256:…``) for skopeo."""
        sep = "@" if ":" in reference else ":"
        return f"docker://{self.host}/{repository}{sep}{reference}"

    # -- lifecycle -----------------------------------------------------------------
    def start(self, ready_check: Any = None, timeout: float = 20.0) -> "RigRegistry":
        """Start and wait until ``/v2/`` answers over this flavour's TLS settings."""
        def tls_ready(server: RegistryServer) -> None:
            requests.get(f"{server.url}/v2/", timeout=1, **self.requests_kwargs())

        super().start(ready_check=ready_check or (tls_ready if self.ca_path else None), timeout=timeout)
        return self

    def __enter__(self) -> "RigRegistry":
        return self.start()
