"""The test rig proves itself: every registry flavour, the token server, the raw
image fixture, skopeo interop, the request counter and the playbook runner.

Nothing here uses the project's client: if these pass, a failing client test
points at the client, not at the rig.
"""
from __future__ import annotations

import gzip
import json
import re
import subprocess
import threading
from pathlib import Path

import jwt
import pytest
import requests
import yaml

from tests.rig.fault_proxy import FaultProxy, _oci_error
from tests.rig.flavours import RigRegistry
from tests.rig.images import (
    DOCKER_MANIFEST,
    DigestMismatch,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    PulledImage,
    PushedImage,
    RawPuller,
    RawPusher,
    RigHTTPError,
    cosign_tag,
    make_artifact,
    make_cosign_signature,
    make_image,
    make_index,
    make_layer,
    make_multiarch,
    make_referrers_index,
    referrers_tag,
    sha256_digest,
    write_oci_layout,
)
from tests.rig.playbook import BIN_DIR, REPO_ROOT, DeprecationInRun, PlaybookRunner, deprecation_warnings
from tests.rig.registry_server import MARKER_PREFIX, AccessLogTimeout
from tests.rig.token_server import TokenServer
from tests.rig.tools import require_tool


def assert_same_content(pushed: PushedImage, pulled: PulledImage) -> None:
    """Every manifest byte and blob that went up came back, under the same digests."""
    assert pulled.digest == pushed.digest == sha256_digest(pushed.manifest)
    assert pulled.manifest == pushed.manifest
    assert pulled.media_type == pushed.media_type
    if pushed.children:
        assert [c.digest for c in pulled.children] == [c.digest for c in pushed.children]
        for up, down in zip(pushed.children, pulled.children):
            assert_same_content(up, down)
    else:
        expected = {b.digest: b.data for b in pushed.content.blobs()}
        assert pulled.blobs == expected
        assert set(pulled.blobs) == {pushed.config_digest, *pushed.layer_digests}


# -- each flavour: push and pull with raw HTTP -----------------------------------------
def test_push_and_pull_through_each_flavour(each_registry: RigRegistry) -> None:
    pusher = RawPusher.for_registry(each_registry)
    puller = RawPuller.for_registry(each_registry)
    oci = pusher.push_image("rig/oci", seed="oci", layers=2, labels={"rig": "yes"})
    docker = pusher.push_image("rig/docker", make_image("docker", docker=True), tag="v1")
    multi = pusher.push("rig/multi", make_multiarch("multi"), tag="v1")
    docker_list = pusher.push("rig/multi", make_multiarch("dlist", docker=True), tag="dlist")

    assert oci.media_type == OCI_MANIFEST and docker.media_type == DOCKER_MANIFEST
    assert multi.media_type == OCI_INDEX and docker_list.media_type == DOCKER_MANIFEST_LIST
    assert_same_content(oci, puller.pull("rig/oci", "latest"))
    assert_same_content(oci, puller.pull("rig/oci", oci.digest))
    assert_same_content(docker, puller.pull("rig/docker", "v1"))
    assert_same_content(multi, puller.pull("rig/multi", "v1"))
    assert_same_content(docker_list, puller.pull("rig/multi", "dlist"))
    assert sorted(puller.tags("rig/multi")) == ["dlist", "v1"]


def test_counter_counts_exactly_what_a_raw_pull_sent(each_registry: RigRegistry) -> None:
    pushed = RawPusher.for_registry(each_registry).push_image("count/me", seed="count", layers=2)
    puller = RawPuller.for_registry(each_registry)
    mark = each_registry.mark()
    puller.pull("count/me", pushed.digest)

    logged = [(r.method, r.path, r.status) for r in each_registry.requests_since(mark)]
    sent = [(r.method, r.path, r.status) for r in puller.registry_requests()]
    assert logged == sent
    # manifest + config + 2 layers, plus one 401 challenge on the auth flavours
    assert len([s for s in sent if s[2] == 200]) == 4
    assert each_registry.writes_since(mark) == []


def test_counter_sees_writes(plain_registry: RigRegistry) -> None:
    pusher = RawPusher(plain_registry.url)
    mark = plain_registry.mark()
    pusher.push_image("count/writes", seed="writes", layers=1)
    writes = [(w.method, w.status) for w in plain_registry.writes_since(mark)]
    # two blobs (POST + PUT each) then the manifest PUT
    assert writes == [("POST", 202), ("PUT", 201), ("POST", 202), ("PUT", 201), ("PUT", 201)]


def test_counter_waits_for_a_late_log_and_still_counts_exactly(plain_registry: RigRegistry) -> None:
    pushed = RawPusher(plain_registry.url).push_image("late/log", seed="late", layers=2)
    puller = RawPuller(plain_registry.url)
    mark = plain_registry.mark()
    marker_logged = threading.Event()

    def held(line: str) -> None:
        if MARKER_PREFIX in line:
            marker_logged.set()

    counted: list[object] = []
    counter = threading.Thread(target=lambda: counted.extend(plain_registry.requests_since(mark)))
    plain_registry.hold_log(held)  # from here on the registry logs, but the counter sees nothing yet
    try:
        puller.pull("late/log", pushed.digest)
        counter.start()
        assert marker_logged.wait(30), "the counter sent no marker the registry logged"
        # The pull and the marker are logged but held back, so the counter cannot have seen its marker
        # and must still be waiting however long it is given: this join cannot time out wrongly. A
        # counter on a clock (the old 0.15 s settle) returns within it, with nothing counted.
        counter.join(timeout=2.0)
        assert counter.is_alive() and counted == []
    finally:
        plain_registry.release_log()
    counter.join(30)
    assert not counter.is_alive()
    sent = [(r.method, r.path, r.status) for r in puller.registry_requests()]
    assert [(r.method, r.path, r.status) for r in counted] == sent  # type: ignore[attr-defined]
    assert len(sent) == 4  # manifest, config, two layers; the marker is never counted


def test_counter_raises_when_the_marker_never_reaches_the_log(plain_registry: RigRegistry) -> None:
    plain_registry.marker_timeout = 0.5
    plain_registry.hold_log()  # the log never catches up
    try:
        not_shown = (rf"registry {re.escape(plain_registry.url)}: access log did not show marker "
                     rf"{MARKER_PREFIX}[0-9a-f]{{32}} within 0.5 s")
        with pytest.raises(AccessLogTimeout, match=not_shown):
            plain_registry.mark()
        with pytest.raises(AccessLogTimeout, match=not_shown):
            plain_registry.writes_since(0)
    finally:
        plain_registry.release_log()
    # Once the log catches up the counter works again, and the markers of the failed calls count as nothing.
    assert plain_registry.requests_since(plain_registry.mark()) == []


def test_counter_reads_a_stopped_registry_to_the_end_of_its_log(plain_registry: RigRegistry) -> None:
    mark = plain_registry.mark()
    RawPusher(plain_registry.url).push_image("stopped/app", seed="stopped", layers=1)
    plain_registry.stop()
    # No marker can be answered now; the log is complete because the process that wrote it has exited.
    assert [(w.method, w.status) for w in plain_registry.writes_since(mark)] == [
        ("POST", 202), ("PUT", 201), ("POST", 202), ("PUT", 201), ("PUT", 201)]


def test_pull_if_present_reads_only_404_as_absent(plain_registry: RigRegistry, basic_registry: RigRegistry) -> None:
    pushed = RawPusher(plain_registry.url).push_image("absent/app", seed="absent")
    puller = RawPuller(plain_registry.url)
    present = puller.pull_if_present("absent/app", "latest")
    assert present is not None and present.digest == pushed.digest
    assert puller.pull_if_present("absent/app", "never-pushed") is None
    assert puller.pull_if_present("never/pushed", pushed.digest) is None

    with FaultProxy.for_registry(plain_registry) as proxy:
        proxy.add("500", method="GET", path=r"/manifests/", times=1)
        with pytest.raises(RigHTTPError) as broken:
            RawPuller(proxy.url).pull_if_present("absent/app", "latest")
        assert broken.value.status_code == 500
        # The manifest is there but a layer is not: a failure, not absence.
        proxy.add("respond", method="GET", path=r"/blobs/", times=1,
                  handler=lambda request: _oci_error(404, "BLOB_UNKNOWN", "blob unknown to registry"))
        with pytest.raises(RigHTTPError) as missing_blob:
            RawPuller(proxy.url).pull_if_present("absent/app", "latest")
        assert missing_blob.value.status_code == 404 and "/blobs/" in missing_blob.value.response.url

    RawPusher.for_registry(basic_registry).push_image("absent/app", seed="absent")
    with pytest.raises(RigHTTPError) as denied:
        RawPuller(basic_registry.url, username="alice", password="wrong").pull_if_present("absent/app")
    assert denied.value.status_code == 401

    layer_hex = pushed.layer_digests[0].split(":")[1]
    blob_file = plain_registry.storage / "docker/registry/v2/blobs/sha256" / layer_hex[:2] / layer_hex / "data"
    blob_file.write_bytes(bytes(blob_file.stat().st_size))
    with pytest.raises(DigestMismatch):
        puller.pull_if_present("absent/app", "latest")


# -- the auth flavours really enforce auth ---------------------------------------------
def test_basic_registry_needs_the_right_password(basic_registry: RigRegistry) -> None:
    anonymous = requests.get(f"{basic_registry.url}/v2/", timeout=10)
    wrong = requests.get(f"{basic_registry.url}/v2/", auth=(basic_registry.username, "wrong"), timeout=10)
    right = requests.get(f"{basic_registry.url}/v2/", auth=basic_registry.auth, timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic ")
    assert wrong.status_code == 401
    assert right.status_code == 200
    bob = RawPusher(basic_registry.url, username="bob", password="bobpass")
    assert bob.push_image("bob/anything").digest


def test_tls_registry_needs_its_ca(tls_registry: RigRegistry) -> None:
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{tls_registry.url}/v2/", timeout=10)
    assert requests.get(f"{tls_registry.url}/v2/", verify=tls_registry.ca_path, timeout=10).status_code == 200
    assert tls_registry.client_cert is None


def test_mtls_registry_needs_a_client_certificate(tls_registry_mtls: RigRegistry) -> None:
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(f"{tls_registry_mtls.url}/v2/", verify=tls_registry_mtls.ca_path, timeout=10)
    response = requests.get(f"{tls_registry_mtls.url}/v2/", verify=tls_registry_mtls.ca_path,
                            cert=(tls_registry_mtls.client_cert, tls_registry_mtls.client_key), timeout=10)
    assert response.status_code == 200


# -- token flavour: ACL, grants, fallbacks ---------------------------------------------
def _action_set(scope: str) -> tuple[str, frozenset[str]]:
    """A scope as (resource, set of actions)."""
    resource, _sep, actions = scope.rpartition(":")
    return resource, frozenset(actions.split(","))


def test_token_acl_limits_bob_and_anonymous(token_registry: RigRegistry, token_server: TokenServer) -> None:
    alice = RawPusher.for_registry(token_registry)
    team = alice.push_image("team/app", seed="team")
    public = alice.push_image("public/app", seed="public")
    alice.push_image("private/app", seed="private")

    bob = RawPusher(token_registry.url, username="bob", password="bobpass")
    mark = token_server.mark()
    with pytest.raises(RigHTTPError) as denied:
        bob.push_image("other/app", seed="bob")
    assert denied.value.status_code in (401, 403)
    asked = token_server.requests_since(mark)
    # The scope comes from Distribution's challenge, whose action order varies
    # from run to run (it is built from a Go map), so compare actions as sets.
    assert [(r.username, [_action_set(s) for s in r.scopes], r.granted) for r in asked] == [
        ("bob", [_action_set("repository:other/app:pull,push")], []),
    ]
    with pytest.raises(RigHTTPError) as denied_team_push:
        bob.push_image("team/app", seed="bob")
    assert denied_team_push.value.status_code in (401, 403)
    assert_same_content(team, RawPuller(token_registry.url, username="bob", password="bobpass").pull("team/app"))

    anonymous = RawPuller(token_registry.url)
    assert_same_content(public, anonymous.pull("public/app"))
    with pytest.raises(RigHTTPError) as private:
        anonymous.pull("private/app")
    assert private.value.status_code == 401
    assert [r.username for r in token_server.requests_since(mark)][-2:] == [None, None]


def _post_token(server: TokenServer, **form: str) -> requests.Response:
    return requests.post(server.realm, data={"service": server.service, "client_id": "ocireg-rig", **form},
                         timeout=10)


def test_token_post_password_and_refresh_grants(token_registry: RigRegistry, token_server: TokenServer) -> None:
    RawPusher.for_registry(token_registry).push_image("team/app", seed="grants")
    first = _post_token(token_server, grant_type="password", username="alice", password="secret",
                        access_type="offline", scope="repository:team/app:pull")
    assert first.status_code == 200
    body = first.json()
    assert body["scope"] == "repository:team/app:pull"
    assert body["expires_in"] == token_server.expires_in and body["refresh_token"]
    manifest = requests.get(f"{token_registry.url}/v2/team/app/manifests/latest",
                            headers={"Authorization": f"Bearer {body['access_token']}", "Accept": OCI_MANIFEST},
                            timeout=10)
    assert manifest.status_code == 200

    refreshed = _post_token(token_server, grant_type="refresh_token", refresh_token=body["refresh_token"],
                            scope="repository:team/app:pull,push repository:team/other:pull")
    assert refreshed.status_code == 200
    assert "refresh_token" not in refreshed.json()  # only with access_type=offline
    upload = requests.post(f"{token_registry.url}/v2/team/app/blobs/uploads/",
                           headers={"Authorization": f"Bearer {refreshed.json()['access_token']}"}, timeout=10)
    assert upload.status_code == 202

    assert _post_token(token_server, grant_type="password", username="alice", password="nope").status_code == 401
    assert _post_token(token_server, grant_type="refresh_token", refresh_token="forged").status_code == 400
    no_client_id = requests.post(token_server.realm, timeout=10, data={
        "service": token_server.service, "grant_type": "password", "username": "alice", "password": "secret"})
    assert no_client_id.status_code == 400 and no_client_id.json()["error"] == "invalid_request"
    posts = [(r.method, r.grant_type, r.scopes, r.status) for r in token_server.requests if r.method == "POST"]
    assert posts == [
        ("POST", "password", ["repository:team/app:pull"], 200),
        ("POST", "refresh_token", ["repository:team/app:pull,push", "repository:team/other:pull"], 200),
        ("POST", "password", [], 401),
        ("POST", "refresh_token", [], 400),
        ("POST", "password", [], 400),
    ]


@pytest.mark.parametrize("status", [404, 405])
def test_token_server_can_refuse_post_so_clients_use_get(token_server: TokenServer, status: int) -> None:
    token_server.reject_post = status
    refused = _post_token(token_server, grant_type="password", username="alice", password="secret")
    assert refused.status_code == status
    got = requests.get(token_server.realm, auth=("alice", "secret"), timeout=10, params={
        "service": token_server.service, "offline_token": "true", "client_id": "ocireg-rig",
        "scope": ["repository:a/b:pull", "repository:c/d:push"]})
    assert got.status_code == 200
    body = got.json()
    assert body["token"] == body["access_token"] and body["refresh_token"] and body["issued_at"]
    assert [(r.method, r.status) for r in token_server.requests] == [("POST", status), ("GET", 200)]
    assert token_server.requests[-1].scopes == ["repository:a/b:pull", "repository:c/d:push"]
    wrong = requests.get(token_server.realm, auth=("alice", "bad"), params={"service": token_server.service},
                         timeout=10)
    assert wrong.status_code == 401


def test_token_claims_and_expiry_knob(token_registry: RigRegistry, token_server: TokenServer) -> None:
    token_server.expires_in = 7
    body = requests.get(token_server.realm, params={"service": token_server.service, "scope": "repository:x/y:pull"},
                        auth=("alice", "secret"), timeout=10).json()
    header = jwt.get_unverified_header(body["token"])
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert header["alg"] == "RS256" and header["x5c"]
    assert claims["exp"] - claims["iat"] == 7 == body["expires_in"]
    assert claims["aud"] == token_server.service and claims["iss"] == token_server.issuer
    assert claims["access"] == [{"type": "repository", "name": "x/y", "actions": ["pull"]}]

    # A token that is already expired must be refused by the registry: proves exp is checked.
    token_server.expires_in = -120
    expired = requests.get(token_server.realm, params={"service": token_server.service, "scope": "registry:catalog:*"},
                           auth=("alice", "secret"), timeout=10).json()["token"]
    token_server.expires_in = 300
    fresh = requests.get(token_server.realm, params={"service": token_server.service, "scope": "registry:catalog:*"},
                         auth=("alice", "secret"), timeout=10).json()["token"]
    catalog = f"{token_registry.url}/v2/_catalog"
    assert requests.get(catalog, headers={"Authorization": f"Bearer {expired}"}, timeout=10).status_code == 401
    assert requests.get(catalog, headers={"Authorization": f"Bearer {fresh}"}, timeout=10).status_code == 200


def test_token_mode_counts_registry_and_token_requests_separately(token_registry: RigRegistry,
                                                                  token_server: TokenServer) -> None:
    pushed = RawPusher.for_registry(token_registry).push_image("count/token", seed="tok")
    puller = RawPuller.for_registry(token_registry)
    registry_mark, token_mark = token_registry.mark(), token_server.mark()
    puller.pull("count/token", pushed.digest)
    realm_requests = [r for r in puller.sent if r.url.startswith(token_server.realm)]
    assert len(realm_requests) == 1
    assert [(r.method, r.scopes) for r in token_server.requests_since(token_mark)] == [
        ("GET", ["repository:count/token:pull"])]
    logged = [(r.method, r.path, r.status) for r in token_registry.requests_since(registry_mark)]
    assert logged == [(r.method, r.path, r.status) for r in puller.registry_requests()]
    assert [r[2] for r in logged] == [401, 200, 200, 200]


# -- image fixture ---------------------------------------------------------------------
def test_images_are_deterministic_and_well_formed() -> None:
    assert make_image("same").digest == make_image("same").digest
    assert make_image("same").digest != make_image("other").digest
    layer = make_layer("z", size=4096)
    assert layer.data[4:8] == b"\0\0\0\0"  # gzip header mtime 0
    assert layer.diff_id == sha256_digest(gzip.decompress(layer.data))
    assert len(layer.data) > 4096  # random content does not compress away

    image = make_image("cfg", created="2020-02-02T02:02:02Z", labels={"a": "b"}, platform="linux/arm/v7")
    config = json.loads(image.config.data)
    assert (config["created"], config["config"]["Labels"]) == ("2020-02-02T02:02:02Z", {"a": "b"})
    assert (config["os"], config["architecture"], config["variant"]) == ("linux", "arm", "v7")
    assert config["rootfs"]["diff_ids"] == [image.layers[0].diff_id]

    index = make_multiarch("plat", platforms=("linux/amd64", "linux/arm64/v8"))
    platforms = [m["platform"] for m in index.manifest["manifests"]]
    assert platforms == [{"os": "linux", "architecture": "amd64"},
                         {"os": "linux", "architecture": "arm64", "variant": "v8"}]
    sig = make_cosign_signature(image)
    assert cosign_tag(image) == "sha256-" + image.digest.split(":")[1] + ".sig"
    assert json.loads(sig.layers[0].data)["critical"]["image"]["docker-manifest-digest"] == image.digest
    assert referrers_tag(image.digest) == "sha256-" + image.digest.split(":")[1]
    with pytest.raises(ValueError):
        make_image("bad", docker=True, subject=image)


def test_artifacts_signatures_and_referrers_tag_round_trip(plain_registry: RigRegistry) -> None:
    pusher, puller = RawPusher(plain_registry.url), RawPuller(plain_registry.url)
    subject = pusher.push_image("art/app", seed="subject")
    sbom = make_artifact(subject.content, annotations={"org.opencontainers.image.created": "2024-01-01T00:00:00Z"})
    pushed_sbom = pusher.push("art/app", sbom, tag=None)
    sig = pusher.push("art/app", make_cosign_signature(subject.content), tag=cosign_tag(subject.digest))
    ref_index = make_referrers_index([sbom])
    pushed_index = pusher.push("art/app", ref_index, tag=referrers_tag(subject.digest))

    pulled_sbom = puller.pull("art/app", pushed_sbom.digest)
    assert pulled_sbom.json["subject"]["digest"] == subject.digest
    assert pulled_sbom.json["artifactType"] == "application/vnd.ocireg.test.sbom.v1+json"
    assert_same_content(pushed_sbom, pulled_sbom)
    assert_same_content(sig, puller.pull("art/app", cosign_tag(subject.digest)))
    listed = puller.pull("art/app", referrers_tag(subject.digest))
    assert_same_content(pushed_index, listed)
    assert listed.json["manifests"][0]["artifactType"] == sbom.artifact_type
    assert sorted(puller.tags("art/app")) == sorted(["latest", cosign_tag(subject.digest),
                                                     referrers_tag(subject.digest)])


def test_delete_is_enabled(plain_registry: RigRegistry) -> None:
    pusher, puller = RawPusher(plain_registry.url), RawPuller(plain_registry.url)
    pushed = pusher.push_image("del/app", seed="del")
    pusher.delete_manifest("del/app", pushed.digest)
    assert puller.head_manifest("del/app", pushed.digest).status_code == 404


# -- skopeo interop --------------------------------------------------------------------
def _skopeo(*args: str) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run([require_tool("skopeo"), *args], capture_output=True, timeout=120, check=False)  # noqa: S603
    assert proc.returncode == 0, proc.stderr.decode()
    return proc


@pytest.mark.skopeo
@pytest.mark.parametrize("flavour", ["plain_registry", "token_registry", "tls_registry", "tls_registry_mtls"])
def test_skopeo_reads_and_copies_what_the_rig_pushed(request: pytest.FixtureRequest, flavour: str) -> None:
    registry: RigRegistry = request.getfixturevalue(flavour)
    pushed = RawPusher.for_registry(registry).push("sk/src", make_multiarch("skopeo"), tag="v1")
    raw = _skopeo("inspect", "--raw", *registry.skopeo_args(), registry.docker_ref("sk/src", "v1")).stdout
    assert raw == pushed.manifest

    _skopeo("copy", "--all", "--preserve-digests", *registry.skopeo_args("src"), *registry.skopeo_args("dest"),
            registry.docker_ref("sk/src", "v1"), registry.docker_ref("sk/dst", "copied"))
    assert_same_content(pushed, RawPuller.for_registry(registry).pull("sk/dst", "copied"))


@pytest.mark.skopeo
def test_skopeo_seeds_a_registry_from_an_oci_layout(plain_registry: RigRegistry, tmp_path: Path) -> None:
    index = make_index([make_image("layout-a", platform="linux/amd64"),
                        make_image("layout-b", platform="linux/arm64/v8")])
    layout = write_oci_layout(tmp_path / "layout", index, tag="v2")
    _skopeo("copy", "--all", "--preserve-digests", *plain_registry.skopeo_args("dest"), f"oci:{layout}:v2",
            plain_registry.docker_ref("seeded/app", "v2"))
    pulled = RawPuller(plain_registry.url).pull("seeded/app", "v2")
    assert pulled.digest == index.digest
    assert [c.digest for c in pulled.children] == [c.digest for c in index.children]


# -- playbook runner -------------------------------------------------------------------
@pytest.mark.oldest_core
def test_playbook_runner_returns_parsed_task_results(run_playbook: PlaybookRunner, tmp_path: Path) -> None:
    target = tmp_path / "written.txt"
    result = run_playbook(tasks=[
        {"name": "ping", "ansible.builtin.ping": {}},
        {"name": "say", "ansible.builtin.debug": {"msg": "hello {{ who }}"}},
        {"name": "write", "ansible.builtin.copy": {"dest": str(target), "content": "x\n"}},
        {"name": "hidden", "ansible.builtin.debug": {"msg": "s3cr3t-value"}, "no_log": True},
        {"name": "boom", "ansible.builtin.fail": {"msg": "expected failure"}, "ignore_errors": True},
    ], check=True, diff=True, extra_vars={"who": "rig"})
    assert result.rc == 0, result.explain()
    assert [t.name for t in result.tasks] == ["ping", "say", "write", "hidden", "boom"]
    assert result.task("ping")["ping"] == "pong"
    assert result.task("say")["msg"] == "hello rig"
    write = result.task("write")
    assert write.changed and write.diff  # check + diff reached ansible
    assert not target.exists()  # --check really was passed
    assert "s3cr3t-value" not in result.events_text
    boom = result.task("boom")
    assert boom.failed and boom.ignore_errors and boom["msg"] == "expected failure"
    assert result.stats["localhost"]["ignored"] == 1
    assert "TASK [say]" in result.stdout


@pytest.mark.oldest_core
def test_playbook_runner_uses_the_built_collection(run_playbook: PlaybookRunner, tmp_path: Path) -> None:
    collection = run_playbook.collection
    version = yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text())["version"]
    assert collection.tarball.name == f"ocireg-registry-{version}.tar.gz"
    info = json.loads((collection.path / "MANIFEST.json").read_text())["collection_info"]
    assert (info["namespace"], info["name"]) == ("ocireg", "registry")
    listed = subprocess.run(  # noqa: S603 - the venv's own ansible-galaxy
        [str(BIN_DIR / "ansible-galaxy"), "collection", "list", "ocireg.registry", "--format", "json"],
        capture_output=True, text=True, env=run_playbook.env(tmp_path / "unused.jsonl"), check=False, timeout=120)
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout)
    assert found == {str(collection.collections_path / "ansible_collections"): {"ocireg.registry": {"version": version}}}


@pytest.mark.oldest_core
def test_playbook_runner_fails_a_run_that_prints_a_deprecation_warning(run_playbook: PlaybookRunner) -> None:
    # The bool filter's coercion of a list is deprecated (removed in ansible-core 2.23) on every core claimed.
    tasks = [{"name": "coerce", "ansible.builtin.debug": {"msg": "{{ [] | bool }}"}}]
    with pytest.raises(DeprecationInRun, match=r"1 deprecation warning.*\n\[DEPRECATION WARNING\]: .*bool"):
        run_playbook(tasks=tasks)
    allowed = run_playbook(tasks=tasks, allow_deprecations=True)
    assert allowed.rc == 0, allowed.explain()
    assert deprecation_warnings(allowed.stderr + allowed.stdout)


@pytest.mark.oldest_core
def test_playbook_runner_reports_failures_and_yaml_input(run_playbook: PlaybookRunner) -> None:
    result = run_playbook("""
- hosts: localhost
  gather_facts: false
  tasks:
    - name: fails
      ansible.builtin.fail:
        msg: on purpose
    - name: never runs
      ansible.builtin.debug:
        msg: unreachable
""")
    assert result.rc == 2
    assert [t.name for t in result.tasks] == ["fails"]
    assert result.task("fails").failed and result.task("fails")["msg"] == "on purpose"


def test_puller_catches_content_that_does_not_match_its_digest(plain_registry: RigRegistry) -> None:
    pushed = RawPusher(plain_registry.url).push_image("tamper/app", seed="tamper")
    layer_hex = pushed.layer_digests[0].split(":")[1]
    blob_file = plain_registry.storage / "docker/registry/v2/blobs/sha256" / layer_hex[:2] / layer_hex / "data"
    # Same length (Distribution sends the size it recorded) but other bytes:
    # it serves filesystem blobs without re-hashing them, so only the puller can notice.
    blob_file.write_bytes(bytes(blob_file.stat().st_size))
    with pytest.raises(DigestMismatch):
        RawPuller(plain_registry.url).pull("tamper/app")
