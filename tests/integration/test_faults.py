"""Faults between our client and real Distribution registries: copies finish, or fail cleanly.

Every test puts :class:`tests.rig.fault_proxy.FaultProxy` between the client
and a real Distribution 2.8 registry, because Distribution cannot be made to
fail on demand (500/502/503, 429 with ``Retry-After``, resets, stalls, cut or
corrupted bodies). The proxy answers or cuts requests itself and forwards the
rest, so everything that does get through is the real registry's work.

Results are checked at the *real* registry, not through the proxy, with the
rig's :class:`~tests.rig.images.RawPuller` (which verifies every digest
itself). Nothing here measures time: the client's sleeps go to a recorder
(``TransportOptions.sleep``), and the one playbook test that really sleeps
checks a lower bound from the proxy's timestamps.

Run with ``-rP`` to see the figures (copies, faults injected, failures).
"""
from __future__ import annotations

import email.utils
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.image import CopyOptions, copy_image
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    DigestMismatchError,
    RateLimitedError,
    TransportError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import Registry
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.core import TransportOptions
from tests.rig import images
from tests.rig.fault_proxy import TRANSIENT_KINDS, FaultProxy, proxy_pool
from tests.rig.images import RawPuller, RawPusher

BLOBS = r"/blobs/sha256:"
#: Small layers keep 50 copies quick; three of them make the copy parallel.
IMAGE = images.make_image("faults", layers=3, layer_size=256 * 1024)
COPIES = 50
FAULT_RATE = 0.1


class Sleeps(list):
    """Stands in for ``time.sleep``: records each delay instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def proxies() -> Iterator[Callable[..., FaultProxy]]:
    """``proxies(registry, **options)``: a FaultProxy in front of ``registry`` (stopped at teardown)."""
    with proxy_pool() as start:
        yield start


def client(proxy: FaultProxy, sleeps: Sleeps, **options) -> Registry:
    """Our client for the registry behind ``proxy``; it never really sleeps."""
    settings = {"timeout": (5.0, 10.0), "retries": 3, "plain_http": True, "sleep": sleeps, **options}
    return Registry(proxy.host, TransportOptions(**settings))


@dataclass
class FaultyCopy:
    """A seeded source and an empty destination registry, each behind a faulty proxy, and our clients."""

    dest_registry: Any
    src_proxy: FaultProxy
    dest_proxy: FaultProxy
    src: Registry
    dest: Registry
    sleeps: Sleeps

    def faults(self) -> Counter[str]:
        return self.src_proxy.counts() + self.dest_proxy.counts()


def faulty_copy(src_registry, registry_factory, proxies, seed: int, **options) -> FaultyCopy:
    """Seed ``src/app:v1`` and put both registries behind proxies with transient faults (``options``)."""
    seeded(src_registry)
    dest_registry = registry_factory()
    settings = {"rate": FAULT_RATE, "body_paths": BLOBS, **options}
    src_proxy = proxies(src_registry, seed=seed, **settings)
    dest_proxy = proxies(dest_registry, seed=seed + 1, **settings)
    sleeps = Sleeps()
    return FaultyCopy(dest_registry, src_proxy, dest_proxy, client(src_proxy, sleeps), client(dest_proxy, sleeps),
                      sleeps)


def seeded(registry, name: str = "src/app", content=IMAGE):
    """Push ``content`` as ``name:v1`` with the rig's raw client (never ours)."""
    return RawPusher.for_registry(registry).push(name, content, tag="v1")


def tag_exists(registry, name: str, tag: str = "v1") -> bool:
    """Whether the real registry (not the proxy) has ``name:tag``."""
    return RawPuller.for_registry(registry).digest_of(name, tag) is not None


def blob_present(registry, name: str, digest: str) -> bool:
    """Whether the real registry has ``digest`` linked in repository ``name``."""
    return requests.head(f"{registry.url}/v2/{name}/blobs/{digest}", timeout=10).status_code == 200


# --- the proxy does what it says (the rig proves itself) ------------------------------------------------


@pytest.mark.parametrize("kind", ["500", "502", "503", "429"])
def test_proxy_status_faults_never_reach_the_registry(plain_registry, proxies, kind):
    proxy = proxies(plain_registry, retry_after="7")
    proxy.add(kind, method="GET", path=r"^/v2/$")
    mark = plain_registry.mark()
    first = requests.get(f"{proxy.url}/v2/", timeout=10)
    second = requests.get(f"{proxy.url}/v2/", timeout=10)
    assert first.status_code == int(kind) and second.status_code == 200
    assert first.headers.get("Retry-After") == ("7" if kind == "429" else None)
    assert [r.path for r in plain_registry.requests_since(mark)] == ["/v2/"]  # only the second one
    assert [(i.kind, i.source) for i in proxy.injected] == [(kind, "script")]


@pytest.mark.parametrize("kind", ["reset", "truncate"])
def test_proxy_cuts_a_blob_body_midway(plain_registry, proxies, kind):
    seeded(plain_registry)
    proxy = proxies(plain_registry)
    layer = IMAGE.layers[0]
    proxy.add(kind, method="GET", path=BLOBS)
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(f"{proxy.url}/v2/src/app/blobs/{layer.digest}", timeout=10).content  # noqa: B018
    assert proxy.injected[0].kind == kind
    assert proxy.injected[0].detail == f"after {layer.size // 2} of {layer.size} bytes"
    assert requests.get(f"{proxy.url}/v2/src/app/blobs/{layer.digest}", timeout=10).content == layer.data


def test_proxy_flips_one_byte_of_a_blob(plain_registry, proxies):
    seeded(plain_registry)
    proxy = proxies(plain_registry)
    layer = IMAGE.layers[1]
    proxy.add("flip", method="GET", path=BLOBS)
    body = requests.get(f"{proxy.url}/v2/src/app/blobs/{layer.digest}", timeout=10).content
    assert len(body) == layer.size
    assert [i for i in range(layer.size) if body[i] != layer.data[i]] == [layer.size // 2]


def test_proxy_stall_outlasts_a_client_timeout(plain_registry, proxies):
    proxy = proxies(plain_registry, stall=30.0)
    proxy.add("stall", method="GET", path=r"^/v2/$")
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(f"{proxy.url}/v2/", timeout=(5, 0.5))
    assert [(i.kind, i.stall) for i in proxy.injected] == [("stall", 30.0)]


def test_proxy_resets_a_write_before_the_registry_sees_it(plain_registry, proxies):
    proxy = proxies(plain_registry)
    proxy.add("reset", method="POST")
    mark = plain_registry.mark()
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(f"{proxy.url}/v2/src/app/blobs/uploads/", timeout=10)
    assert plain_registry.requests_since(mark) == []


def test_proxy_random_faults_are_seeded_and_bounded(plain_registry, proxies):
    """Same seed, same decisions; ``max_consecutive`` caps a streak on one request."""
    def statuses(proxy: FaultProxy, count: int) -> list[int]:
        return [requests.get(f"{proxy.url}/v2/", timeout=10).status_code for _n in range(count)]

    first, second = (statuses(proxies(plain_registry, rate=0.5, seed=11, kinds=("500", "503")), 40)
                     for _run in range(2))
    assert first == second
    assert {500, 503, 200} <= set(first)
    always = proxies(plain_registry, rate=1.0, kinds=("502",), max_consecutive=2)
    assert statuses(always, 6) == [502, 502, 200] * 2


# --- transient faults: every copy succeeds ------------------------------------------------------------------


def test_fifty_copies_through_ten_percent_faults_are_all_identical(plain_registry, registry_factory, proxies):
    """50 copies of a 3-layer image, source and destination each behind 10 % injected faults.

    The faults are every transient kind (500/502/503, 429, resets, cut
    bodies); bodies are only cut on blob downloads, which the client resumes
    (see ``test_a_manifest_body_cut_midway_is_fetched_again`` for the rest).
    """
    pair = faulty_copy(plain_registry, registry_factory, proxies, seed=1)
    failures = []
    for n in range(COPIES):
        try:
            result = copy_image(pair.src.repository("src/app"), "v1", pair.dest.repository(f"dst/app{n}"), ["v1"],
                                CopyOptions())
        except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
            failures.append(f"copy {n}: {type(exc).__name__}: {exc}")
            continue
        assert result.digest == IMAGE.digest and result.changed
        assert result.copied["blobs"] == 4  # config + 3 layers, nothing left out
    injected = pair.faults()
    requests_sent = len(pair.src_proxy.requests) + len(pair.dest_proxy.requests)
    print(f"FIGURES faults: {COPIES} copies, {requests_sent} requests, {sum(injected.values())} faults injected "
          f"{dict(injected)}, {len(failures)} failures, {len(pair.sleeps)} retries slept")
    assert failures == []
    puller = RawPuller.for_registry(pair.dest_registry)
    for n in range(COPIES):
        assert puller.pull(f"dst/app{n}", "v1").digest == IMAGE.digest  # every blob re-verified at the registry
    assert set(injected) == set(TRANSIENT_KINDS)  # each kind really happened
    assert sum(injected.values()) >= requests_sent * FAULT_RATE / 2


@pytest.mark.parametrize("kind", ["reset", "truncate"])
def test_a_manifest_body_cut_midway_is_fetched_again(plain_registry, proxies, kind):
    seeded(plain_registry)
    proxy = proxies(plain_registry)
    proxy.add(kind, method="GET", path=r"/manifests/")
    manifest = client(proxy, Sleeps()).repository("src/app").fetch_manifest(IMAGE.digest)
    assert manifest.raw == IMAGE.data


# --- corruption: always detected, never tagged ----------------------------------------------------------------


def _targets() -> dict[str, str]:
    """Each GET a copy makes at the source, by name: the manifest, the config and each layer."""
    found = {"manifest": IMAGE.digest, "config": IMAGE.config.digest}
    found.update({f"layer-{n}": layer.digest for n, layer in enumerate(IMAGE.layers)})
    return found


@pytest.mark.parametrize("target", list(_targets()))
def test_a_flipped_byte_is_detected_and_nothing_is_tagged(plain_registry, registry_factory, proxies, target):
    seeded(plain_registry)
    dest_registry = registry_factory()
    proxy = proxies(plain_registry)
    digest = _targets()[target]
    proxy.add("flip", method="GET", path=rf"/{digest}$")
    mark = dest_registry.mark()
    sleeps = Sleeps()
    dest = Registry(dest_registry.host, TransportOptions(plain_http=True, sleep=sleeps))
    with pytest.raises(DigestMismatchError):
        copy_image(client(proxy, sleeps).repository("src/app"), "v1", dest.repository("dst/app"), ["v1"],
                   CopyOptions())
    assert [i.kind for i in proxy.injected] == ["flip"]
    assert not [r for r in dest_registry.writes_since(mark) if "/manifests/" in r.path]
    assert not tag_exists(dest_registry, "dst/app")
    assert not blob_present(dest_registry, "dst/app", digest)  # the corrupt blob was not committed either
    # The corruption was in transit only: the same copy now completes.
    copy_image(client(proxy, sleeps).repository("src/app"), "v1", dest.repository("dst/app"), ["v1"], CopyOptions())
    assert RawPuller.for_registry(dest_registry).pull("dst/app", "v1").digest == IMAGE.digest


def test_random_flips_amid_transient_faults_fail_exactly_the_copies_they_hit(plain_registry, registry_factory,
                                                                             proxies):
    """A copy fails with DigestMismatchError if and only if a byte it read was flipped; failed ones tag nothing."""
    seeded(plain_registry)
    dest_registry = registry_factory()
    src_proxy = proxies(plain_registry, rate=0.08, seed=3, kinds=("flip",),
                        flip_paths=r"/(blobs|manifests)/sha256:")
    dest_proxy = proxies(dest_registry, rate=FAULT_RATE, seed=4, body_paths=BLOBS)
    sleeps = Sleeps()
    src, dest = client(src_proxy, sleeps), client(dest_proxy, sleeps)
    outcomes: Counter[str] = Counter()
    for n in range(24):
        mark = src_proxy.mark()
        try:
            copy_image(src.repository("src/app"), "v1", dest.repository(f"dst/app{n}"), ["v1"], CopyOptions())
        except DigestMismatchError:
            outcome = "detected"
        else:
            outcome = "copied"
        flipped = bool(src_proxy.injected_since(mark))
        assert (outcome == "detected") == flipped, f"copy {n}: {outcome} but flipped={flipped}"
        assert tag_exists(dest_registry, f"dst/app{n}") == (outcome == "copied")
        outcomes[outcome] += 1
    print(f"FIGURES flips: 24 copies, {src_proxy.counts()['flip']} bytes flipped, {outcomes['detected']} copies "
          f"failed with DigestMismatchError, {outcomes['copied']} complete, {sum(dest_proxy.counts().values())} "
          "transient faults on the destination")
    assert outcomes["detected"] >= 1 and outcomes["copied"] >= 1


# --- stalls and rate limits ----------------------------------------------------------------------------------


def test_a_stall_hits_the_timeout_and_fails_clearly(plain_registry, proxies):
    seeded(plain_registry)
    proxy = proxies(plain_registry, stall=30.0)
    proxy.add("stall", method="GET", path=r"/manifests/", times=None)
    sleeps = Sleeps()
    repo = client(proxy, sleeps, timeout=1.0, retries=1).repository("src/app")
    with pytest.raises(TransportError) as caught:
        repo.fetch_manifest(IMAGE.digest)
    message = str(caught.value)
    assert "timed out" in message and proxy.host in message and "raise timeout" in message
    assert "\n" not in message
    assert [i.kind for i in proxy.injected] == ["stall", "stall"]  # the first try and one retry
    assert len(sleeps) == 1


def test_retry_after_is_waited_out_as_said(plain_registry, proxies):
    seeded(plain_registry)
    proxy = proxies(plain_registry)
    proxy.add("429", method="GET", path=r"/manifests/", times=2, retry_after=7)
    sleeps = Sleeps()
    manifest = client(proxy, sleeps).repository("src/app").fetch_manifest(IMAGE.digest)
    assert manifest.raw == IMAGE.data
    assert sleeps == [7.0, 7.0]
    assert [i.retry_after for i in proxy.injected] == ["7", "7"]


def test_retry_after_as_an_http_date(plain_registry, proxies):
    seeded(plain_registry)
    now = 1_800_000_000.0
    proxy = proxies(plain_registry)
    proxy.add("429", method="HEAD", path=r"/manifests/", retry_after=email.utils.formatdate(now + 42, usegmt=True))
    sleeps = Sleeps()
    found = client(proxy, sleeps, clock=lambda: now).repository("src/app").resolve("v1")
    assert found is not None and found.digest == IMAGE.digest
    assert sleeps == [42.0]


def test_retry_after_is_capped_and_an_endless_rate_limit_is_reported(plain_registry, proxies):
    proxy = proxies(plain_registry)
    proxy.add("429", method="GET", path=r"/tags/list", times=None, retry_after=86400)
    sleeps = Sleeps()
    repo = client(proxy, sleeps, retries=2, retry_after_cap=60.0).repository("src/app")
    with pytest.raises(RateLimitedError) as caught:
        repo.tags()
    assert sleeps == [60.0, 60.0]
    assert len(proxy.injected) == 3
    assert "rate limit" in str(caught.value) and "\n" not in str(caught.value)


# --- the same through ansible-playbook ------------------------------------------------------------------------


def test_modules_ride_out_faults_time_out_and_honour_retry_after(plain_registry, registry_factory, proxies,
                                                                 run_playbook):
    """Real module runs: a copy through faults, a stall against ``timeout: 1``, a 429 with ``Retry-After: 1``.

    Here the client really sleeps; the only time check is a lower bound taken
    from the proxy's own clock (the retry cannot arrive before the wait ends).
    """
    pair = faulty_copy(plain_registry, registry_factory, proxies, seed=5, retry_after="0")
    stalling = proxies(plain_registry, stall=30.0)
    stalling.add("stall", method="GET", path=r"/manifests/", times=None)
    limited = proxies(plain_registry)
    limited.add("429", path=r"/manifests/", retry_after=1)
    run = run_playbook(tasks=[
        {"name": "copy", "ocireg.registry.registry_copy": {
            "src": f"{pair.src_proxy.host}/src/app:v1", "dest": f"{pair.dest_proxy.host}/dst/app:v1"}},
        {"name": "stalled", "ignore_errors": True, "ocireg.registry.registry_manifest_info": {
            "reference": f"{stalling.host}/src/app@{IMAGE.digest}", "timeout": 1, "retries": 0}},
        {"name": "limited", "ocireg.registry.registry_manifest_info": {"reference": f"{limited.host}/src/app:v1"}},
    ])
    copy, stalled, limited_task = run.task("copy"), run.task("stalled"), run.task("limited")
    # Not copy.status: registry_copy returns a "skipped" key, which Ansible reads as "task skipped".
    assert not copy.failed and copy["digest"] == IMAGE.digest, run.explain()
    assert RawPuller.for_registry(pair.dest_registry).pull("dst/app", "v1").digest == IMAGE.digest
    assert stalled.failed and "timed out" in stalled["msg"] and "\n" not in stalled["msg"]
    assert "Traceback" not in run.output
    assert limited_task.status == "ok" and limited_task["digest"] == IMAGE.digest
    first = limited.injected[0]
    retried_at = next(r.at for r in limited.requests if r.fault is None and r.path == first.path)
    injected_at = first.at
    assert retried_at - injected_at >= 0.95  # Retry-After: 1 was waited out, not ignored
    print(f"FIGURES module copy: {sum(pair.faults().values())} faults injected, copy succeeded")


def test_concurrent_clients_share_one_proxy(plain_registry, registry_factory, proxies):
    """Four copies at once through the same faulty proxies (the proxy and the client are thread-safe)."""
    pair = faulty_copy(plain_registry, registry_factory, proxies, seed=8)
    errors: list[BaseException] = []

    def one(n: int) -> None:
        try:
            copy_image(pair.src.repository("src/app"), "v1", pair.dest.repository(f"par/app{n}"), ["v1"],
                       CopyOptions())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(pair.faults().values()) > 0
    for n in range(4):
        assert RawPuller.for_registry(pair.dest_registry).pull(f"par/app{n}", "v1").digest == IMAGE.digest
