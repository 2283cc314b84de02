"""Fixtures that start real registries and run real playbooks (see tests/rig).

Registries (CNCF Distribution 2.8 on 127.0.0.1, free port, temp storage,
deletes enabled, stopped by PID; each is a
:class:`tests.rig.flavours.RigRegistry`, a ``RegistryServer`` subclass):

``plain_registry``
    Anonymous plain HTTP.
``basic_registry``
    htpasswd basic auth (bcrypt). Users ``alice``/``secret`` and
    ``bob``/``bobpass`` may both pull and push (htpasswd has no ACL).
``token_registry``
    ``auth.token`` trusting the ``token_server`` fixture (same test).
``tls_registry``
    HTTPS with a private CA (trustme), anonymous.
``tls_registry_mtls``
    HTTPS that also requires a client certificate (``clientcas``).
``each_registry``
    Parametrized over the five above (ids ``plain``, ``basic``, ``token``,
    ``tls``, ``mtls``): a test using it runs once per flavour.
``registry_factory``
    ``registry_factory(users=…, token_server=…, tls_ca=…, client_ca=…,
    extra={config sections})`` starts a custom one (stopped at teardown).
``plain_registry_module``, ``basic_registry_module``, ``token_registry_module``
(with ``token_server_module``), ``tls_registry_module``
    The same, shared by all tests of a module (startup is ~25 ms, so use
    these only to share *content*; remember that state then leaks between tests).

Every registry exposes:

* ``.host`` (``127.0.0.1:PORT``), ``.url`` (``http(s)://host``), ``.port``,
  ``.scheme``, ``.storage`` (its filesystem root), ``.config`` (the dict
  written as config.yml), ``.log_text()``.
* Request counter from the access log: ``m = reg.mark()`` then
  ``reg.requests_since(m)`` / ``reg.writes_since(m)`` -> list of
  ``LoggedRequest(method, path, status)``. Every request is logged, including
  401 challenges and auth failures. Each call sends a marker request
  (``/ocireg-rig-marker/<token>``, never counted) and waits until the log shows
  it, so no request answered before is missed; a log that never shows it
  raises ``AccessLogTimeout`` naming the registry and the marker.
* ``.username`` / ``.password`` / ``.auth`` (tuple) / ``.users`` (dict):
  accepted credentials, ``None`` on anonymous flavours.
* ``.token_server``: the TokenServer (token flavour), else ``None``.
* ``.ca_path`` (CA PEM), ``.client_cert`` / ``.client_key`` (PEM files, mTLS
  only), ``.cert_dir`` (``ca.crt`` + ``client.cert``/``client.key``, the
  layout ``skopeo --cert-dir`` wants); ``None`` on plain HTTP.
* ``.requests_kwargs()`` -> ``{"verify": ca, "cert": (crt, key)}`` for requests;
  ``.skopeo_args(role=None|"src"|"dest", creds=True)`` -> TLS / creds flags;
  ``.docker_ref(repo, tag_or_digest)`` -> ``docker://host/repo:tag``.

Token server (``token_server``; :class:`tests.rig.token_server.TokenServer`):

* ``.realm``, ``.service``, ``.issuer``, ``.rootcertbundle``, ``.users``
  (``alice``/``secret``, ``bob``/``bobpass``), ``.acl`` (list of ``Grant``:
  alice push+pull+delete on everything and ``registry:catalog:*``; bob pull on
  ``team/*``; anonymous pull on ``public/*``; build more with
  ``tests.rig.token_server.grant``).
* Knobs (plain attributes, change them in the test): ``.reject_post = 404|405``
  makes POST fail so clients fall back to GET; ``.expires_in = N`` sets token
  lifetime (``exp`` too; negative gives already-expired tokens);
  ``.strict_oauth`` (default True) answers a POST lacking ``client_id`` or with
  another ``service`` with 400 ``invalid_request``; ``.acl`` / ``.users`` can be
  replaced.
* OAuth2 POST: ``grant_type=password`` (+ ``access_type=offline`` for a
  ``refresh_token``) and ``grant_type=refresh_token``; GET: Basic or
  anonymous, ``offline_token=true`` adds a ``refresh_token`` for a user.
* Request log: ``.requests`` / ``.mark()`` / ``.requests_since(m)`` ->
  ``TokenRequest(method, path, params, username, grant_type, scopes, status,
  granted, authorization)``.

Playbooks (``run_playbook``; :class:`tests.rig.playbook.PlaybookRunner`):

* The collection is built with ``ansible-galaxy collection build`` and
  installed into a temp collections path once per session
  (``rig_collection`` -> ``InstalledCollection(tarball, collections_path, path)``).
* ``run_playbook(playbook=None, *, tasks=None, check=False, diff=False,
  extra_vars=None, env=None, verbosity=0, args=None)``; ``playbook`` is YAML
  text, a play dict or a list of plays; ``tasks=[…]`` wraps tasks into a
  ``hosts: localhost, gather_facts: false`` play. Connection is local and the
  interpreter is this Python.
* Returns ``PlaybookResult``: ``.rc``, ``.stdout``, ``.stderr`` (full, default
  callback output), ``.tasks`` (``TaskResult`` per task and host, in order:
  ``.name``, ``.action``, ``.status``, ``.changed``, ``.failed``,
  ``.skipped``, ``.result`` dict, ``.diff``; ``task["key"]`` reads the
  result), ``.task(name)``, ``.tasks_named(name)``, ``.items`` (loop items),
  ``.stats``, ``.events_text`` (raw JSON lines), ``.output`` (all text, for
  secret-leak greps), ``.explain()`` (for assert messages).

Images: ``from tests.rig.images import make_image, make_index, make_multiarch,
make_artifact, make_cosign_signature, cosign_tag, make_referrers_index,
referrers_tag, write_oci_layout, RawPusher, RawPuller`` (see that module's
docstring). ``RawPusher.for_registry(reg)`` / ``RawPuller.for_registry(reg,
anonymous=True)`` build clients with the registry's TLS files and default user.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.rig.flavours import DEFAULT_BASIC_USERS, RigRegistry
from tests.rig.playbook import InstalledCollection, PlaybookRunner, build_and_install
from tests.rig.token_server import TokenServer

FLAVOURS = ("plain", "basic", "token", "tls", "mtls")


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    """The private CA every TLS registry's server certificate comes from."""
    return trustme.CA(organization_name="ocireg test server CA")


@pytest.fixture(scope="session")
def client_ca() -> trustme.CA:
    """A separate CA for client certificates (mTLS flavour)."""
    return trustme.CA(organization_name="ocireg test client CA")


def _registry(**kwargs: Any) -> Iterator[RigRegistry]:
    with RigRegistry(**kwargs) as server:
        yield server


def _token_server() -> Iterator[TokenServer]:
    with TokenServer() as server:
        yield server


# -- function scope (the default) ------------------------------------------------------
@pytest.fixture
def plain_registry() -> Iterator[RigRegistry]:
    """An anonymous plain-HTTP Distribution registry on 127.0.0.1, deletes enabled."""
    yield from _registry()


@pytest.fixture
def basic_registry() -> Iterator[RigRegistry]:
    """htpasswd (bcrypt) basic auth; ``.username``/``.password`` is alice/secret."""
    yield from _registry(users=DEFAULT_BASIC_USERS)


@pytest.fixture
def token_server() -> Iterator[TokenServer]:
    """A JWT token server (GET + OAuth2 POST) with the default ACL."""
    yield from _token_server()


@pytest.fixture
def token_registry(token_server: TokenServer) -> Iterator[RigRegistry]:
    """Token auth trusting ``token_server``; ``.username``/``.password`` is alice/secret."""
    yield from _registry(token_server=token_server)


@pytest.fixture
def tls_registry(tls_ca: trustme.CA) -> Iterator[RigRegistry]:
    """HTTPS with a private CA (``.ca_path``), anonymous."""
    yield from _registry(tls_ca=tls_ca)


@pytest.fixture
def tls_registry_mtls(tls_ca: trustme.CA, client_ca: trustme.CA) -> Iterator[RigRegistry]:
    """HTTPS requiring a client certificate (``.client_cert``/``.client_key``)."""
    yield from _registry(tls_ca=tls_ca, client_ca=client_ca)


@pytest.fixture(params=FLAVOURS)
def each_registry(request: pytest.FixtureRequest) -> RigRegistry:
    """Each flavour in turn (test ids ``[plain]``, ``[basic]``, …)."""
    name = {"plain": "plain_registry", "basic": "basic_registry", "token": "token_registry",
            "tls": "tls_registry", "mtls": "tls_registry_mtls"}[request.param]
    return request.getfixturevalue(name)


@pytest.fixture
def registry_factory() -> Iterator[Callable[..., RigRegistry]]:
    """Start custom registries: ``registry_factory(users=…, tls_ca=…, extra=…)``."""
    started: list[RigRegistry] = []

    def start(**kwargs: Any) -> RigRegistry:
        server = RigRegistry(**kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


# -- module scope (shared content) -----------------------------------------------------
@pytest.fixture(scope="module")
def plain_registry_module() -> Iterator[RigRegistry]:
    """Like ``plain_registry``, shared by a test module."""
    yield from _registry()


@pytest.fixture(scope="module")
def basic_registry_module() -> Iterator[RigRegistry]:
    """Like ``basic_registry``, shared by a test module."""
    yield from _registry(users=DEFAULT_BASIC_USERS)


@pytest.fixture(scope="module")
def token_server_module() -> Iterator[TokenServer]:
    """Like ``token_server``, shared by a test module."""
    yield from _token_server()


@pytest.fixture(scope="module")
def token_registry_module(token_server_module: TokenServer) -> Iterator[RigRegistry]:
    """Like ``token_registry`` (trusting ``token_server_module``), shared by a test module."""
    yield from _registry(token_server=token_server_module)


@pytest.fixture(scope="module")
def tls_registry_module(tls_ca: trustme.CA) -> Iterator[RigRegistry]:
    """Like ``tls_registry``, shared by a test module."""
    yield from _registry(tls_ca=tls_ca)


# -- playbooks -------------------------------------------------------------------------
@pytest.fixture(scope="session")
def rig_collection(tmp_path_factory: pytest.TempPathFactory) -> InstalledCollection:
    """The collection built from this checkout and installed into a temp path (once)."""
    return build_and_install(tmp_path_factory.mktemp("collection"))


@pytest.fixture
def run_playbook(rig_collection: InstalledCollection, tmp_path: Path) -> PlaybookRunner:
    """Call it to run ``ansible-playbook`` against the installed collection."""
    return PlaybookRunner(rig_collection, tmp_path)
