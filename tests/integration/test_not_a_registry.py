"""A web server that is not a registry (the wrong port) is said to be one, never read as "image missing".

The non-registry is a real one: Python's ``http.server`` serving an empty directory in a thread on
127.0.0.1 (it answers 404 to every GET and HEAD and 501 to every write, with no
``Docker-Distribution-API-Version`` header and no OCI error body). The registries are real
Distribution ones from the rig; "a registry that does not send the header" is Distribution behind the
rig's FaultProxy with a rewrite rule that strips that header from every answer (no registry we can
run omits it, and the client must still not mistake its misses for a wrong host).

Requests are counted in the registry's access log and the proxy's records: a registry that sends the
header pays nothing for the check; one that does not pays exactly one ``GET /v2/`` per client, on the
first miss; a success never asks.
"""
from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import (
    Registry,
)
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.core import (
    TransportOptions,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    NotARegistryError,
    NotFoundError,
    TransportError,
)

from tests.rig import images
from tests.rig.fault_proxy import FaultProxy, Reply
from tests.rig.flavours import RigRegistry
from tests.rig.images import RawPusher

IMAGE = images.make_image("not-a-registry")
CONFIG = IMAGE.config
assert CONFIG is not None


class FileServer:
    """``python -m http.server`` in a thread on 127.0.0.1, recording ``(method, path)`` of every request."""

    def __init__(self, root: Path) -> None:
        self.requests: list[tuple[str, str]] = []
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def log_request(self, code: Any = "-", size: Any = "-") -> None:
                if getattr(self, "path", None):  # not the TLS handshake the loopback https attempt sends
                    server.requests.append((self.command, self.path))

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
        self._httpd.daemon_threads = True
        self.host = f"127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def pings(self) -> int:
        return sum(1 for method, path in self.requests if path == "/v2/")

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[FileServer]:
    server = FileServer(tmp_path)
    yield server
    server.stop()


def client(host: str, **options: Any) -> Registry:
    return Registry(host, TransportOptions(sleep=lambda _s: None, **options))


def assert_not_a_registry(error: BaseException, host: str) -> None:
    message = str(error)
    assert isinstance(error, NotARegistryError), message
    assert f"{host} answered 404 for /v2/: it is not a container registry (or not at this address)" in message
    assert "check the host name and port" in message
    assert "retry" not in message and "does not exist" not in message
    assert "\n" not in message


def test_every_read_and_write_on_a_file_server_says_it_is_not_a_registry(file_server: FileServer) -> None:
    registry = client(file_server.host)
    repository = registry.repository("team/app")
    calls = {
        "resolve": lambda: repository.resolve("v1"),
        "fetch manifest": lambda: repository.fetch_manifest("v1"),
        "tags": repository.tags,
        "catalog": lambda: list(registry.catalog()),
        "blob exists": lambda: repository.blob_exists(CONFIG.digest),
        "push blob": lambda: repository.push_blob(CONFIG.digest, CONFIG.size, CONFIG.data),
        "ping": registry.ping,
    }
    for name, call in calls.items():
        with pytest.raises(NotARegistryError) as caught:
            call()
        assert_not_a_registry(caught.value, file_server.host)
        assert name and caught.value.host == file_server.host
    # Asked once for this client, whatever the number of misses; Registry.ping's own GET /v2/ is its answer.
    assert file_server.pings() == 2, file_server.requests


def test_a_write_refused_with_501_is_not_reported_as_a_registry_failure(file_server: FileServer) -> None:
    repository = client(file_server.host).repository("team/app", for_write=True)
    with pytest.raises(NotARegistryError) as caught:
        repository.push_manifest("v1", IMAGE.data, IMAGE.media_type)
    assert_not_a_registry(caught.value, file_server.host)
    assert caught.value.status == 501
    assert [r for r in file_server.requests if r[0] == "PUT"] == [("PUT", "/v2/team/app/manifests/v1")]


def test_distribution_misses_cost_what_they_did(plain_registry: RigRegistry) -> None:
    """Distribution sends the API version header on every answer: no /v2/ is ever added."""
    RawPusher.for_registry(plain_registry).push("team/app", IMAGE, tag="v1")
    repository = client(plain_registry.host).repository("team/app")
    repository.resolve("v1")  # the connection and scheme are settled before counting
    mark = plain_registry.mark()
    assert repository.resolve("missing") is None
    assert [(r.method, r.path, r.status) for r in plain_registry.requests_since(mark)] == [
        ("HEAD", "/v2/team/app/manifests/missing", 404)]
    mark = plain_registry.mark()
    with pytest.raises(NotFoundError):
        client(plain_registry.host).repository("no/such").tags()
    assert [r.path.split("?")[0] for r in plain_registry.requests_since(mark)] == ["/v2/no/such/tags/list"]


def strip_api_version(_request: Any, reply: Reply) -> Reply:
    """The upstream answer without ``Docker-Distribution-API-Version`` (a registry that omits it)."""
    return Reply(reply.status, [(k, v) for k, v in reply.headers if k.lower() != "docker-distribution-api-version"],
                 reply.body, reply.length)


def test_a_registry_without_the_header_pays_one_ping_per_client_on_a_miss(plain_registry: RigRegistry) -> None:
    RawPusher.for_registry(plain_registry).push("team/app", IMAGE, tag="v1")
    with FaultProxy.for_registry(plain_registry) as proxy:
        proxy.add("rewrite", handler=strip_api_version, times=None)
        registry = client(proxy.host)
        repository = registry.repository("team/app")
        assert repository.resolve("v1") is not None  # a success asks nothing
        assert [r.path for r in proxy.requests].count("/v2/") == 0
        assert repository.resolve("missing") is None  # a HEAD's 404 has no body: the header was the evidence
        assert repository.resolve("missing-too") is None
        with pytest.raises(NotFoundError):
            registry.repository("no/such").tags()  # a GET's 404 with an OCI body needs no ping
        paths = [(r.method, r.path.split("?")[0]) for r in proxy.requests]
        assert paths.count(("GET", "/v2/")) == 1, paths
        assert paths[-4:] == [("HEAD", "/v2/team/app/manifests/missing"), ("GET", "/v2/"),
                              ("HEAD", "/v2/team/app/manifests/missing-too"), ("GET", "/v2/no/such/tags/list")]


def test_a_timeout_says_how_many_attempts_were_made() -> None:
    """A server that accepts connections and never answers (a listening socket nobody reads)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        host = f"127.0.0.1:{listener.getsockname()[1]}"
        registry = client(host, timeout=0.2, retries=2, plain_http=True)
        with pytest.raises(TransportError) as caught:
            registry.repository("team/app").resolve("v1")
    message = str(caught.value)
    assert f"on {host} timed out (connect 0.2 s, read 0.2 s; 3 attempts)" in message, message


def test_every_module_and_the_lookup_fail_with_one_clear_line(
        file_server: FileServer, plain_registry: RigRegistry, run_playbook: Any) -> None:
    """One playbook: each module and the lookup against the file server (registry_copy *to* it, from a real
    registry), each task failing with the one line that names the host and port."""
    RawPusher.for_registry(plain_registry).push("src/app", IMAGE, tag="v1")
    fs = file_server.host
    lookup = f"{{{{ lookup('ocireg.registry.registry', '{fs}/team/app:v1') }}}}"
    tasks = {
        "info": {"ocireg.registry.registry_manifest_info": {"reference": f"{fs}/team/app:v1"}},
        "lookup": {"ansible.builtin.debug": {"msg": lookup}},
        "tag": {"ocireg.registry.registry_tag": {"repository": f"{fs}/team/app", "tags": ["v2"], "source": ":v1"}},
        "prune": {"ocireg.registry.registry_prune": {"repository": f"{fs}/team/app", "keep_latest": 1,
                                                     "missing_repository": "warn"}},
        "copy": {"ocireg.registry.registry_copy": {"src": f"{plain_registry.host}/src/app:v1",
                                                   "dest": f"{fs}/dst/app:v1"}},
    }
    run = run_playbook.run(tasks=[{"name": name, "ignore_errors": True, **task} for name, task in tasks.items()])
    for name in tasks:
        task = run.task(name)
        assert task.failed, f"{name} did not fail: {task.result}"
        message = str(task.get("msg", ""))
        assert f"{fs} answered 404 for /v2/: it is not a container registry (or not at this address)" in message, \
            f"{name}: {message}"
        assert "check the host name and port" in message and "\n" not in message, f"{name}: {message}"
        assert "does not exist" not in message and "retry" not in message, f"{name}: {message}"
    assert "Traceback" not in run.output
    # registry_copy failed on reading the destination, before any write was sent.
    assert not [r for r in file_server.requests if r[0] in ("PUT", "POST", "PATCH", "DELETE")], file_server.requests
    # Each task is its own run (a process of its own): one GET /v2/ each, at most.
    assert file_server.pings() <= len(tasks), file_server.requests
