"""A small JWT token server that a Distribution registry (``auth.token``) trusts.

It implements the two ways a client gets a registry bearer token
(/work/shared/specs/distribution-auth/token.md and oauth.md):

* ``GET /token?service=…&scope=…&scope=…[&offline_token=true]`` with Basic
  credentials or none (anonymous);
* ``POST /token`` (OAuth2 form): ``grant_type=password`` with
  ``username``/``password`` or ``grant_type=refresh_token`` with
  ``refresh_token``; ``scope`` is one space-separated string.

Tokens are RS256 JWTs whose header carries an ``x5c`` chain (signing cert
first); the chain's root is written to :attr:`TokenServer.rootcertbundle`,
which the registry config points at. Distribution 2.8 verifies that chain
against the bundle, then checks ``iss``, ``aud`` (a string in 2.8), ``exp`` /
``nbf`` and the ``access`` claim.

What each user may do comes from an ACL: a list of :class:`Grant` (who, which
repositories as an ``fnmatch`` pattern, which actions). The granted set is the
intersection of what was asked and what the ACL allows, never an error
(token.md: "it must not be considered an error").

Every request is recorded (:attr:`TokenServer.requests`, :meth:`mark`,
:meth:`requests_since`) so tests can assert POST vs GET and which scopes a
client asked for. Knobs for tests: ``reject_post`` (answer POST with 404 or
405 so clients fall back to GET), ``expires_in`` (short-lived tokens) and
``strict_oauth`` (default on: a POST without ``client_id`` or with another
``service`` gets 400 ``invalid_request``, as oauth.md marks both REQUIRED).
"""
from __future__ import annotations

import base64
import functools
import json
import secrets
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fnmatch import fnmatchcase
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, load_pem_private_key

ANONYMOUS = ""  # the ``sub`` of a token issued without credentials (jwt.md)
ANY_USER = "*"  # a Grant subject matching every authenticated user


@dataclass(frozen=True)
class Grant:
    """``subject`` may ``actions`` on repositories whose name matches ``pattern``.

    ``subject`` is a user name, :data:`ANONYMOUS` (no credentials) or
    :data:`ANY_USER` (any authenticated user). ``resource_type`` is the scope's
    type: ``repository`` or ``registry`` (``registry:catalog:*``).
    """

    subject: str
    pattern: str
    actions: frozenset[str]
    resource_type: str = "repository"


def grant(subject: str, pattern: str, *actions: str, resource_type: str = "repository") -> Grant:
    """Shorthand: ``grant("bob", "team/*", "pull")``."""
    return Grant(subject, pattern, frozenset(actions), resource_type)


DEFAULT_USERS = {"alice": "secret", "bob": "bobpass"}
DEFAULT_ACL: tuple[Grant, ...] = (
    grant("alice", "*", "pull", "push", "delete", "*"),
    grant("alice", "catalog", "*", resource_type="registry"),
    grant("bob", "team/*", "pull"),
    grant(ANONYMOUS, "public/*", "pull"),
)


@dataclass(frozen=True)
class Scope:
    """One ``type:name:actions`` entry (scope.md)."""

    type: str
    name: str
    actions: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> "Scope":
        """Parse ``repository:team/app:pull,push``; the name may hold ``:`` (a port)."""
        type_, sep, rest = text.partition(":")
        name, sep2, actions = rest.rpartition(":")
        if not (type_ and sep and sep2 and name):
            raise ValueError(f"malformed scope {text!r}")
        return cls(type_, name, tuple(a for a in actions.split(",") if a))

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"


@dataclass
class TokenRequest:
    """One request the token server answered."""

    method: str
    path: str
    params: dict[str, list[str]]  # query string (GET) or form body (POST)
    username: str | None  # from Basic credentials or the password grant
    grant_type: str | None
    scopes: list[str]  # as asked: repeated GET params or the split POST string
    status: int
    granted: list[dict[str, Any]] = field(default_factory=list)  # the token's ``access`` claim
    authorization: str | None = None  # the raw Authorization header, for leak checks


@dataclass(frozen=True)
class SigningMaterial:
    """A root CA and an RSA signing cert it issued (PEM), shared by token servers."""

    root_pem: bytes
    key_pem: bytes
    x5c: tuple[str, ...]  # base64 (standard, not url-safe) DER, signing cert first


@functools.lru_cache(maxsize=1)
def signing_material() -> SigningMaterial:
    """Generate the CA + signing key once per test process (RSA keygen is the slow part)."""
    ca = trustme.CA(key_type=trustme.KeyType.RSA, organization_name="ocireg test token CA")
    leaf = ca.issue_cert("ocireg-token-signer", common_name="ocireg-token-signer", key_type=trustme.KeyType.RSA)
    chain = [x509.load_pem_x509_certificate(blob.bytes()) for blob in leaf.cert_chain_pems]
    x5c = tuple(base64.b64encode(cert.public_bytes(Encoding.DER)).decode("ascii") for cert in chain)
    return SigningMaterial(ca.cert_pem.bytes(), leaf.private_key_pem.bytes(), x5c)


class TokenServer:
    """A threaded HTTP token server on 127.0.0.1 with a free port (plain HTTP)."""

    def __init__(self, *, service: str = "ocireg-test-registry", issuer: str = "ocireg-test-issuer",
                 users: dict[str, str] | None = None, acl: Iterable[Grant] | None = None,
                 expires_in: int = 300, reject_post: int | None = None, strict_oauth: bool = True) -> None:
        self.service = service
        self.issuer = issuer
        self.users = dict(DEFAULT_USERS if users is None else users)
        self.acl: list[Grant] = list(DEFAULT_ACL if acl is None else acl)
        self.expires_in = expires_in
        self.reject_post = reject_post
        self.strict_oauth = strict_oauth
        self.requests: list[TokenRequest] = []
        self._lock = threading.Lock()
        self._refresh_tokens: dict[str, str] = {}  # opaque token -> user name
        self._material = signing_material()
        # Parsed once: loading an RSA PEM costs ~40 ms, signing ~1 ms.
        self._signing_key = load_pem_private_key(self._material.key_pem, password=None)
        self.workdir = Path(tempfile.mkdtemp(prefix="ocireg-token-"))
        self.rootcertbundle = self.workdir / "root.pem"
        self.rootcertbundle.write_bytes(self._material.root_pem)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self.realm = f"http://{self.host}/token"
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> "TokenServer":
        """Serve in a daemon thread."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and remove the temp dir."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=10)
        self._httpd.server_close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "TokenServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def registry_auth_config(self) -> dict[str, Any]:
        """The ``auth`` section of a Distribution config that trusts this server."""
        return {"token": {"realm": self.realm, "service": self.service, "issuer": self.issuer,
                          "rootcertbundle": str(self.rootcertbundle)}}

    # -- request log ---------------------------------------------------------------
    def mark(self) -> int:
        """A position in :attr:`requests`; pass it to :meth:`requests_since`."""
        with self._lock:
            return len(self.requests)

    def requests_since(self, mark: int = 0) -> list[TokenRequest]:
        """Requests answered after ``mark``."""
        with self._lock:
            return list(self.requests[mark:])

    def _record(self, entry: TokenRequest) -> None:
        with self._lock:
            self.requests.append(entry)

    # -- policy --------------------------------------------------------------------
    def allowed_actions(self, username: str | None, scope: Scope) -> list[str]:
        """What ``username`` (None = anonymous) gets of what ``scope`` asks, in ask order."""
        allowed: set[str] = set()
        for rule in self.acl:
            if rule.resource_type != scope.type or not fnmatchcase(scope.name, rule.pattern):
                continue
            if rule.subject == (username or ANONYMOUS) or (rule.subject == ANY_USER and username):
                allowed |= rule.actions
        return [a for a in scope.actions if a in allowed]

    def issue(self, username: str | None, scopes: Iterable[str]) -> tuple[str, list[dict[str, Any]]]:
        """Sign a token for ``username`` with the granted part of ``scopes``."""
        access = []
        for text in scopes:
            scope = Scope.parse(text)
            actions = self.allowed_actions(username, scope)
            if actions:
                access.append({"type": scope.type, "name": scope.name, "actions": actions})
        now = int(time.time())
        claims = {
            "iss": self.issuer, "sub": username or ANONYMOUS, "aud": self.service,
            "exp": now + self.expires_in, "nbf": now - 1, "iat": now,
            "jti": uuid.uuid4().hex, "access": access,
        }
        token = jwt.encode(claims, self._signing_key, algorithm="RS256",
                           headers={"x5c": list(self._material.x5c)})
        return token, access

    def new_refresh_token(self, username: str) -> str:
        """An opaque refresh token bound to ``username``."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._refresh_tokens[token] = username
        return token

    def user_for_refresh_token(self, token: str) -> str | None:
        """The user a refresh token was issued to, or None when unknown."""
        with self._lock:
            return self._refresh_tokens.get(token)

    def check_password(self, username: str, password: str) -> bool:
        """Constant-time password check against :attr:`users`."""
        expected = self.users.get(username)
        return expected is not None and secrets.compare_digest(expected.encode(), password.encode())


def _make_handler(server: TokenServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            pass  # recorded in server.requests instead of stderr noise

        def do_GET(self) -> None:  # noqa: N802 - stdlib naming
            url = urlsplit(self.path)
            params = parse_qs(url.query, keep_blank_values=True)
            entry = TokenRequest("GET", url.path, params, None, None, params.get("scope", []), 0,
                                 authorization=self.headers.get("Authorization"))
            if url.path != "/token":
                return self._finish(entry, 404, {"error": "not_found"})
            username = None
            if self.headers.get("Authorization"):
                username = self._basic_user()
                if username is None:
                    return self._finish(entry, 401, {"error": "invalid credentials"},
                                        {"WWW-Authenticate": 'Basic realm="ocireg-token"'})
            entry.username = username
            token, access = server.issue(username, entry.scopes)
            entry.granted = access
            body: dict[str, Any] = {"token": token, "access_token": token, "expires_in": server.expires_in,
                                    "issued_at": _rfc3339_now()}
            if params.get("offline_token", [""])[0].lower() == "true" and username:
                body["refresh_token"] = server.new_refresh_token(username)
            self._finish(entry, 200, body)

        def do_POST(self) -> None:  # noqa: N802 - stdlib naming
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode("utf-8", "replace"), keep_blank_values=True)
            one = {key: values[0] for key, values in form.items()}
            scope_text = one.get("scope", "")
            entry = TokenRequest("POST", url.path, form, None, one.get("grant_type"),
                                 scope_text.split() if scope_text else [], 0,
                                 authorization=self.headers.get("Authorization"))
            if server.reject_post is not None:
                return self._finish(entry, server.reject_post, {"error": "POST not supported here"})
            if url.path != "/token":
                return self._finish(entry, 404, {"error": "not_found"})
            # oauth.md marks both REQUIRED; real OAuth2 token services refuse requests without them.
            if server.strict_oauth and (not one.get("client_id") or one.get("service") != server.service):
                return self._finish(entry, 400, {"error": "invalid_request",
                                                 "error_description": "client_id and service are required"})
            grant_type = one.get("grant_type")
            if grant_type == "password":
                username = one.get("username", "")
                if not server.check_password(username, one.get("password", "")):
                    return self._finish(entry, 401, {"error": "invalid_grant"})
                refresh = server.new_refresh_token(username) if one.get("access_type") == "offline" else None
            elif grant_type == "refresh_token":
                refresh = one.get("refresh_token", "")
                found = server.user_for_refresh_token(refresh)
                if found is None:
                    return self._finish(entry, 400, {"error": "invalid_grant"})
                username = found
                # oauth.md: a refresh grant only ever hands back the same refresh token.
                refresh = refresh if one.get("access_type") == "offline" else None
            else:
                return self._finish(entry, 400, {"error": "unsupported_grant_type"})
            entry.username = username
            token, access = server.issue(username, entry.scopes)
            entry.granted = access
            body = {"access_token": token, "expires_in": server.expires_in, "issued_at": _rfc3339_now(),
                    "scope": " ".join(str(Scope(a["type"], a["name"], tuple(a["actions"]))) for a in access)}
            if refresh:
                body["refresh_token"] = refresh
            self._finish(entry, 200, body)

        def _basic_user(self) -> str | None:
            header = self.headers.get("Authorization", "")
            scheme, value = (header.split(" ", 1) + [""])[:2]
            if scheme.lower() != "basic":
                return None
            try:
                username, password = (base64.b64decode(value.strip()).decode("utf-8").split(":", 1) + [""])[:2]
            except ValueError:
                return None
            return username if server.check_password(username, password) else None

        def _finish(self, entry: TokenRequest, status: int, body: dict[str, Any],
                    headers: dict[str, str] | None = None) -> None:
            entry.status = status
            server._record(entry)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _rfc3339_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
