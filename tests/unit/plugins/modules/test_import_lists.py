"""Each module imports only what its runs need: what a module file loads is paid by every task before its first request.

Under Ansible the module and its module_utils run from a zip of sources, so every file imported is also
compiled, on every run. Each check runs in a fresh interpreter (the import state of this test process says
nothing) and lists what got loaded: first by importing the module file, then by running the module as
Ansible does, up to its first request (a connect that is stopped before it leaves the process, so no
registry is needed; a run that ends before any request is listed at its end). What must stay out: the copy
engine where nothing is copied, the mirror engine where one image is copied, the archive stores (and
``tarfile``) where no archive is named, signature verification and ``cryptography`` unless ``verify`` is
set (``_glue.module.verifier`` imports them then; ``verify``'s argument spec alone is ``_ops.verify.spec``),
unpacking and artifacts outside their own modules, blob uploads and the relink retry where nothing is written,
the challenge parser and token flows (``_client.auth.challenge``, ``.token``) before a registry answers 401,
and what only some runs reach (:data:`ON_DEMAND`): pagination where no list is read, the referrers code where
no referrer is read or written, the 405 advice and the option advice before anything is refused or fails, tag
ordering where no tag is listed, the lease code without ``prune_lease``, attached artifacts without
``referrers``, the copy graph where nothing is copied, the conversion to OCI without ``format: oci``.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import COLLECTIONS_PATH

UTILS = "ansible_collections.ocireg.registry.plugins.module_utils."
MODULES = "ansible_collections.ocireg.registry.plugins.modules."
COPY_ENGINE = UTILS + "_ops.copying.image"
TRANSFER = UTILS + "_ops.copying.transfer"
MIRROR_ENGINE = (UTILS + "_ops.sync.run", UTILS + "_ops.sync.spec", UTILS + "_model.tag_selection")
LAYOUT = UTILS + "_ops.copying.local.layout"
LEASE = UTILS + "_ops.coordination.lease"  # the opt-in prune_lease only
ARCHIVES = (UTILS + "_ops.copying.local.archive", UTILS + "_ops.copying.local.docker_archive", "tarfile")
VERIFY = (UTILS + "_ops.verify.check", UTILS + "_ops.verify.signatures", "cryptography")
UNPACK = (UTILS + "_ops.unpack.apply",)
ARTIFACT = (UTILS + "_ops.artifact.pack", UTILS + "_ops.artifact.transfer")
#: The parsers of ``verify`` (registry_tag and registry_copy need only its spec, ``_ops.verify.spec``).
VERIFY_PARSER = (UTILS + "_ops.verify.policy", UTILS + "_ops.verify.notation.spec")
#: What only a write uses: blob uploads and the manifest PUT's relink retry.
WRITES = (UTILS + "_client.uploads", UTILS + "_client.relink")
#: The challenge parser and the token flows: a client loads them only when a registry answers 401 (see the last
#: test); every request's scopes come from ``_client.auth.scopes``.
CHALLENGE = (UTILS + "_client.auth.challenge", UTILS + "_client.auth.token")
#: What the runs below do not reach before their first request, and none of them at all in these runs: each is
#: imported by the function that needs it (a module's payload is compiled on every run under Ansible).
PAGINATION = UTILS + "_client.pagination"  # tag and catalog lists (Repository.tags, Registry.catalog)
REFERRERS = (UTILS + "_client.referrer_index", UTILS + "_model.referrers")  # referrers read or written
ADVICE = (UTILS + "_client.transport.refusals", UTILS + "_glue.advice")  # a 405 answered; a failure worded
TAG_ORDER = UTILS + "_model.tag_order"  # tags listed, filtered and sorted
ATTACHED = UTILS + "_ops.copying.attached"  # a copy with referrers
GRAPH = UTILS + "_ops.copying.graph"  # a copy's graph walk (a promotion in one repository reads no graph)
CONVERT = UTILS + "_ops.copying.convert"  # format: oci, and the Docker-types warning of a local layout
ON_DEMAND = (PAGINATION, *REFERRERS, *ADVICE)

NOT_LOADED = {
    "registry_manifest_info": (COPY_ENGINE, UTILS + "_ops.sync.run", UTILS + "_ops.retention.prune",
                               *ARCHIVES, *VERIFY, *VERIFY_PARSER, *UNPACK, *ARTIFACT, *WRITES, *CHALLENGE),
    "registry_tag": (COPY_ENGINE, UTILS + "_ops.sync.run", *ARCHIVES, *VERIFY, *VERIFY_PARSER, *UNPACK, *ARTIFACT,
                     *WRITES, *CHALLENGE),
    # The engines are imported by the run that uses them (see the runs below).
    "registry_copy": (COPY_ENGINE, TRANSFER, *MIRROR_ENGINE, LAYOUT, *ARCHIVES, *VERIFY, *VERIFY_PARSER, *UNPACK,
                      *ARTIFACT, UTILS + "_ops.retention.prune", *WRITES, *CHALLENGE),
    "registry_prune": (COPY_ENGINE, *ARCHIVES, *VERIFY, *UNPACK, *ARTIFACT),
    "registry_unpack": (COPY_ENGINE, *VERIFY, *ARTIFACT),
    "registry_artifact": (COPY_ENGINE, *VERIFY),
}

#: Nothing listens here: the connect is stopped in the process before it is sent.
HOST = "127.0.0.1:9"
IMAGE = f"{HOST}/team/app"

#: (module, arguments, must be loaded by its first request, must not be).
RUNS: dict[str, tuple[str, dict[str, Any], tuple[str, ...], tuple[str, ...]]] = {
    "manifest_info": ("registry_manifest_info", {"reference": f"{IMAGE}:1"},
                      (UTILS + "_ops.facts.describe",),
                      (COPY_ENGINE, TRANSFER, *MIRROR_ENGINE, UTILS + "_ops.promotion.apply", LAYOUT, *ARCHIVES,
                       *VERIFY, *VERIFY_PARSER, *UNPACK, *ARTIFACT, *WRITES, *CHALLENGE, *ON_DEMAND, TAG_ORDER)),
    "tag": ("registry_tag", {"repository": IMAGE, "source": ":1", "tags": ["2"]},
            (UTILS + "_ops.promotion.apply",),
            (COPY_ENGINE, GRAPH, TRANSFER, *MIRROR_ENGINE, LEASE, LAYOUT, *ARCHIVES, *VERIFY, *VERIFY_PARSER,
             *UNPACK, *ARTIFACT, *WRITES, *CHALLENGE, *ON_DEMAND)),
    "copy one image": ("registry_copy", {"src": f"{IMAGE}:1", "dest": f"{HOST}/mirror/app:1"},
                       (COPY_ENGINE, TRANSFER),
                       (*MIRROR_ENGINE, LEASE, ATTACHED, CONVERT, LAYOUT, *ARCHIVES, *VERIFY, *VERIFY_PARSER, *UNPACK,
                        *ARTIFACT, *CHALLENGE, *ON_DEMAND)),
    "mirror with tags": ("registry_copy", {"src": IMAGE, "dest": f"{HOST}/mirror/app", "tags": [".*"]},
                         (COPY_ENGINE, *MIRROR_ENGINE),
                         (LAYOUT, *ARCHIVES, *VERIFY, *VERIFY_PARSER, *UNPACK, *ARTIFACT, *CHALLENGE)),
    "mirror with select": ("registry_copy", {"src": IMAGE, "dest": f"{HOST}/mirror/app", "select": {}},
                           (COPY_ENGINE, *MIRROR_ENGINE),
                           (TRANSFER, LAYOUT, *ARCHIVES, *VERIFY, *VERIFY_PARSER, *UNPACK, *ARTIFACT, *CHALLENGE)),
}

#: Runs the module as Ansible's AnsiballZ loader does (runpy as __main__; the arguments from a file, as for a
#: module run directly), and prints sys.modules at the first connect, or at the end of a run that sends nothing.
RUNNER = """
import json, os, runpy, socket, sys
def listed(*_args):
    sys.stdout.flush()
    sys.__stdout__.write("\\nLOADED " + json.dumps(sorted(sys.modules)) + "\\n")
    sys.__stdout__.flush()
    os._exit(0)
socket.socket.connect = listed
sys.argv = sys.argv[1:]
try:
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
finally:
    listed()
"""


def _fresh(argv: list[str]) -> set[str]:
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True, check=False,
                          env={"PYTHONPATH": str(COLLECTIONS_PATH), "PATH": "/usr/bin:/bin"})
    marked = [line for line in proc.stdout.splitlines() if line.startswith("LOADED ")]
    assert marked, f"no module list: {proc.stdout[-2000:]} {proc.stderr[-2000:]}"
    return set(json.loads(marked[-1].removeprefix("LOADED ")))


def loaded_by(module: str) -> set[str]:
    """The names in ``sys.modules`` after importing ``module`` in a fresh interpreter."""
    code = (f"import json, sys; import {MODULES}{module}; "
            "print('LOADED ' + json.dumps(sorted(sys.modules)))")
    return _fresh(["-c", code])


def loaded_by_run(module: str, args: dict[str, Any], workdir: Path) -> set[str]:
    """The names in ``sys.modules`` when a run of ``module`` with ``args`` opens its first connection."""
    params = workdir / "args.json"
    params.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"plain_http": True, "_ansible_check_mode": True, **args}}))
    return _fresh(["-c", RUNNER, MODULES + module, str(params)])


@pytest.mark.parametrize("module", sorted(NOT_LOADED))
def test_a_module_does_not_import_what_its_runs_do_not_need(module: str) -> None:
    loaded = loaded_by(module)
    assert f"{MODULES}{module}" in loaded  # the check saw the import
    assert sorted(name for name in NOT_LOADED[module] if name in loaded) == []


@pytest.mark.parametrize("run", sorted(RUNS))
def test_a_run_loads_only_what_it_uses_before_its_first_request(run: str, tmp_path: Path) -> None:
    module, args, needed, unneeded = RUNS[run]
    loaded = loaded_by_run(module, args, tmp_path)
    assert UTILS + "_client.registry" in loaded  # it got as far as a request
    assert sorted(name for name in needed if name not in loaded) == []  # the check is not blind
    assert sorted(name for name in unneeded if name in loaded) == []


def test_a_run_with_verify_loads_the_verifier(tmp_path: Path) -> None:
    # verify is the one option that needs the signature code (and cryptography): it is loaded then.
    loaded = loaded_by_run("registry_copy", {"src": f"{IMAGE}:1", "dest": f"{HOST}/mirror/app:1",
                                             "verify": {"keys": ["-----BEGIN PUBLIC KEY-----\nMFkw\n"
                                                                 "-----END PUBLIC KEY-----\n"]}}, tmp_path)
    assert UTILS + "_ops.verify.check" in loaded


def test_the_check_sees_what_a_module_does_import() -> None:
    # The same check finds what a module file does import: an empty answer above is not blindness.
    loaded = loaded_by("registry_copy")
    assert UTILS + "_glue.module" in loaded
    assert UTILS + "_ops.verify.spec" in loaded  # verify's spec; its parser is loaded by a run with verify


#: A registry on loopback that challenges with Bearer until the request carries the token its realm hands out,
#: and whether the token code was loaded before the challenge and after it.
CHALLENGED = """
import json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        port = self.server.server_address[1]
        if self.path.startswith("/token"):
            body, status, headers = json.dumps({"token": "t0k3n"}).encode(), 200, {"Content-Type": "application/json"}
        elif self.headers.get("Authorization") == "Bearer t0k3n":
            body, status, headers = b"{}", 200, {"Content-Type": "application/json"}
        else:
            realm = f'Bearer realm="http://127.0.0.1:{port}/token",service="test"'
            body, status, headers = b"{}", 401, {"WWW-Authenticate": realm, "Content-Type": "application/json"}
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *_args):
        pass
server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import Registry
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.core import TransportOptions
registry = Registry(f"127.0.0.1:{server.server_address[1]}", TransportOptions(plain_http=True))
flow = %r
before = [name for name in flow if name in sys.modules]
answered = registry.ping()
print("LOADED " + json.dumps({"before": before, "answered": answered, "after": [n for n in flow if n in sys.modules],
                              "issued": registry.transport.authenticator.issued_tokens()}))
""" % (CHALLENGE,)


def test_the_token_flows_are_loaded_when_a_registry_challenges() -> None:
    # An anonymous client of an open registry never loads the token code (the runs above); a Bearer
    # challenge loads it, and is answered as before: the token is fetched and the request sent again.
    proc = subprocess.run([sys.executable, "-c", CHALLENGED], capture_output=True, text=True, check=False,
                          env={"PYTHONPATH": str(COLLECTIONS_PATH), "PATH": "/usr/bin:/bin"}, timeout=60)
    marked = [line for line in proc.stdout.splitlines() if line.startswith("LOADED ")]
    assert marked, f"{proc.stdout[-2000:]} {proc.stderr[-2000:]}"
    assert json.loads(marked[-1].removeprefix("LOADED ")) == {
        "before": [], "answered": True, "after": list(CHALLENGE), "issued": ["t0k3n"]}
