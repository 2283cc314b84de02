"""What a mirror says it copied, against real Distribution 2.8 registries: tags that share digests.

Tags of one repository often share a manifest (``1.0`` and ``1.0.1`` at one image) and base layers.
A mirror's ``copied`` / ``already_present`` count each digest once per destination repository, so
check mode's prediction is what the real run then does, the real run says the same at every
``concurrency`` (which tag happens to move a shared layer does not change the totals), and both
are what the destination's access log shows was written.
"""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._glue.clients import (
    ClientFactory,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.image import (
    CopyOptions,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.transfer import (
    run_transfer,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.sync.run import (
    SyncOptions,
    run_sync,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.sync.spec import (
    expand_spec,
)

from tests.rig.fault_proxy import FaultProxy, Reply
from tests.rig.images import RawPusher, iter_content, make_image, make_index, make_layer

BASE = [make_layer("counts-base-0", 3000), make_layer("counts-base-1", 2000)]
ONE = make_image("counts-one", layers=[*BASE, make_layer("counts-one", 700)])
TWO = make_image("counts-two", layers=[*BASE, make_layer("counts-two", 900)])
#: Already at the destination under its tag before the mirror: its base layer is "already present".
OLD = make_image("counts-old", layers=[BASE[0], make_layer("counts-old", 500)])
ARM = make_image("counts-arm", layers=[BASE[0], make_layer("counts-arm", 800)], platform="linux/arm64")
MULTI = make_index([ONE, ARM])
#: Tag -> content: two tags per image, and an index whose amd64 child is ONE itself.
TAGS = {"1.0": ONE, "1.0.1": ONE, "2.0": TWO, "latest": TWO, "0.9": OLD, "multi": MULTI, "multi-stable": MULTI}


def _digests(content):
    """Manifests and blobs (digest -> size) of a content tree."""
    manifests, blobs = set(), {}
    for item in iter_content(content):
        manifests.add(item.digest)
        for blob in getattr(item, "blobs", lambda: ())():
            blobs[blob.digest] = blob.size
    return manifests, blobs


def expected_counts():
    """What a mirror of TAGS into a destination holding OLD as 0.9 must move, by distinct digest."""
    manifests, blobs = set(), {}
    for content in TAGS.values():
        more_manifests, more_blobs = _digests(content)
        manifests |= more_manifests
        blobs.update(more_blobs)
    old_manifests, old_blobs = _digests(OLD)
    new_blobs = {d: s for d, s in blobs.items() if d not in old_blobs}
    copied = {"manifests": len(manifests - old_manifests), "blobs": len(new_blobs), "bytes": sum(new_blobs.values())}
    # Present: OLD's manifest (its tag already holds it) and the one OLD blob the new images use.
    present = {"manifests": 1, "blobs": 1, "bytes": BASE[0].size}
    return copied, present


def written(registry, mark, tag_digests):
    """Distinct manifest digests PUT (a tag resolved through ``tag_digests``) and blobs uploaded or mounted,
    from the log: the writes the registry accepted."""
    manifests, blobs = set(), set()
    for request in registry.writes_since(mark):
        if request.status != 201:
            continue  # refused (a blob that failed its digest check), or a mount that became an upload
        url = urlsplit(request.path)
        if request.method == "PUT" and "/manifests/" in url.path:
            reference = url.path.rpartition("/manifests/")[2]
            manifests.add(tag_digests.get(reference, reference))
        elif request.method == "PUT" and "/blobs/uploads/" in url.path:
            blobs.add(parse_qs(url.query)["digest"][0])
        elif request.method == "POST" and "mount=" in url.query:
            blobs.add(parse_qs(url.query)["mount"][0])
    return manifests, blobs


@pytest.fixture
def src(registry_factory):
    registry = registry_factory()
    pusher = RawPusher.for_registry(registry)
    for tag, content in TAGS.items():
        pusher.push("shared/app", content, tag=tag)
    return registry


def fresh_destination(registry_factory):
    registry = registry_factory()
    RawPusher.for_registry(registry).push("shared/app", OLD, tag="0.9")
    return registry


def tags_spelling(src, dest, *, check_mode, concurrency):
    factory = ClientFactory({"plain_http": True, "retries": 1, "timeout": 30})

    def open_repository(reference, _side):
        return factory.registry(reference.registry).repository(reference.repository)
    done = run_transfer(f"{src.host}/shared/app", f"{dest.host}/shared/app", CopyOptions(check_mode=check_mode),
                        open_repository, tag_patterns=[".*"], concurrency=concurrency)
    return done.mirror.to_dict()


def spec_spelling(src, dest, *, check_mode, concurrency):
    factory = ClientFactory({"plain_http": True, "retries": 1, "timeout": 30})
    pairs = expand_spec([{"src": f"{src.host}/shared/app", "dest": f"{dest.host}/shared/app", "naming": "exact"}])
    return run_sync(pairs, lambda host, _side: factory.registry(host),
                    SyncOptions(concurrency=concurrency, check_mode=check_mode))


@pytest.mark.parametrize("spelling", [tags_spelling, spec_spelling], ids=["tags", "mirror_spec"])
def test_shared_digests_count_once_check_mode_real_run_and_access_log_agree(src, registry_factory, spelling):
    copied, present = expected_counts()
    tag_digests = {tag: content.digest for tag, content in TAGS.items()}
    seen = {}
    for concurrency in (1, 8):
        dest = fresh_destination(registry_factory)
        mark = dest.mark()
        predicted = spelling(src, dest, check_mode=True, concurrency=concurrency)
        assert dest.writes_since(mark) == []
        mark = dest.mark()
        done = spelling(src, dest, check_mode=False, concurrency=concurrency)
        manifests, blobs = written(dest, mark, tag_digests)
        assert not done["failed"], done["failed_tags"]
        numbers = {"predicted": (predicted["copied"], predicted["already_present"]),
                   "done": (done["copied"], done["already_present"])}
        assert numbers == {"predicted": (copied, present), "done": (copied, present)}, concurrency
        assert (len(manifests), len(blobs)) == (copied["manifests"], copied["blobs"]), concurrency
        assert done["summary"]["bytes"] == predicted["summary"]["bytes"] == copied["bytes"]
        assert done["repositories"][0]["bytes"] == copied["bytes"]
        seen[concurrency] = numbers, {key: value for key, value in done["summary"].items() if key != "seconds"}
        # Run again: nothing to copy, and every tag's manifest counts as present once per digest.
        again = spelling(src, dest, check_mode=False, concurrency=concurrency)
        assert again["copied"] == {"manifests": 0, "blobs": 0, "bytes": 0}
        assert again["already_present"] == {"manifests": len({c.digest for c in TAGS.values()}), "blobs": 0,
                                            "bytes": 0}
    assert seen[1] == seen[8]


def test_into_a_layout_its_repositories_share_one_count(src, tmp_path):
    # Two repositories of one layout share its blob store: a layer both need is written, and counted, once.
    pusher = RawPusher.for_registry(src)
    pusher.push("shared/other", TWO, tag="2.0")
    factory = ClientFactory({"plain_http": True, "retries": 1, "timeout": 30})

    def open_repository(reference, _side):
        return factory.registry(reference.registry).repository(reference.repository)

    bundle = tmp_path / "bundle"
    run_transfer(f"{src.host}/shared/app", f"oci:{bundle}", CopyOptions(), open_repository, tag_patterns=[".*"])
    run_transfer(f"{src.host}/shared/other", f"oci:{bundle}", CopyOptions(), open_repository, tag_patterns=[".*"])
    manifests, blobs = set(), {}
    for content in TAGS.values():
        more_manifests, more_blobs = _digests(content)
        manifests |= more_manifests
        blobs.update(more_blobs)
    copied = {"manifests": len(manifests), "blobs": len(blobs), "bytes": sum(blobs.values())}
    for concurrency in (1, 8):
        into = tmp_path / f"copy-{concurrency}"
        results = [run_transfer(f"oci:{bundle}", f"oci:{into}", CopyOptions(check_mode=check_mode),
                                open_repository, tag_patterns=[".*"], concurrency=concurrency).mirror.to_dict()
                   for check_mode in (True, False)]
        assert [r["copied"] for r in results] == [copied, copied], concurrency
        assert [r["already_present"] for r in results] == [{"manifests": 0, "blobs": 0, "bytes": 0}] * 2
        assert sorted(results[1]["tag_results"]) == sorted(
            [f"shared/app:{tag}" for tag in TAGS] + ["shared/other:2.0"])


#: A tag whose copy fails after it wrote the layer it shares with the others: its big layer is
#: corrupted in the source's storage, so that copy fails only once the whole layer has streamed,
#: long after the small shared layer and its config were written.
SHARED = make_layer("counts-failing-shared", 3000)
BROKEN = make_image("counts-broken", layers=[SHARED, make_layer("counts-broken-big", 8_000_000)])
GOOD = {"1.0": make_image("counts-good-1", layers=[SHARED, make_layer("counts-good-1", 700)]),
        "2.0": make_image("counts-good-2", layers=[SHARED, make_layer("counts-good-2", 900)])}


def corrupt(registry, digest):
    """Flip the last byte of a blob in a registry's storage: it is served, and fails its digest check."""
    hexa = digest.partition(":")[2]
    path = registry.storage / "docker/registry/v2/blobs/sha256" / hexa[:2] / hexa / "data"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def failing_mirror(src, dest, spelling, concurrency):
    factory = ClientFactory({"plain_http": True, "retries": 1, "timeout": 30})
    if spelling == "tags":
        def open_repository(reference, _side):
            return factory.registry(reference.registry).repository(reference.repository)
        return run_transfer(f"{src.host}/fail/app", f"{dest.host}/fail/app", CopyOptions(), open_repository,
                            tag_patterns=[".*"], keep_going=True, concurrency=concurrency).mirror.to_dict()
    pairs = expand_spec([{"src": f"{src.host}/fail/app", "dest": f"{dest.host}/fail/app", "naming": "exact"}])
    return run_sync(pairs, lambda host, _side: factory.registry(host), SyncOptions(concurrency=concurrency))


@pytest.mark.parametrize("spelling", ["tags", "mirror_spec"])
def test_what_a_failed_tag_wrote_counts_as_copied_at_any_concurrency(registry_factory, spelling):
    src = registry_factory()
    pusher = RawPusher.for_registry(src)
    pusher.push("fail/app", BROKEN, tag="0-broken")  # sorted first: at concurrency 1 it runs before the others
    for tag, content in GOOD.items():
        pusher.push("fail/app", content, tag=tag)
    corrupt(src, BROKEN.layers[1].digest)
    tag_digests = {tag: content.digest for tag, content in GOOD.items()}
    # No comparison of the two runs' totals: what the broken tag writes before its corrupt layer fails depends
    # on timing at concurrency 8 (its other blobs may or may not be out), so only each run against its own log.
    for concurrency in (1, 8):
        dest = registry_factory()  # fresh: nothing was there before the run
        mark = dest.mark()
        done = failing_mirror(src, dest, spelling, concurrency)
        manifests, blobs = written(dest, mark, tag_digests)
        assert [name.rpartition(":")[2] for name in done["failed_tags"]] == ["0-broken"], done["failed_tags"]
        assert SHARED.digest in blobs  # written once, by whichever tag got there first
        # What the run wrote is copied, whichever tag wrote it; nothing was there before the run.
        assert (done["copied"]["manifests"], done["copied"]["blobs"]) == (len(manifests), len(blobs)), concurrency
        assert done["already_present"] == {"manifests": 0, "blobs": 0, "bytes": 0}, concurrency
        assert done["summary"]["bytes"] == done["repositories"][0]["bytes"] == done["copied"]["bytes"]


def _denied(_request):
    """A registry that refuses one tag (a policy on the tag's name, as a registry's immutable-tag rule)."""
    body = b'{"errors": [{"code": "DENIED", "message": "tag multi is protected", "detail": null}]}'
    return Reply(403, [("Content-Type", "application/json")], body)


@pytest.mark.parametrize("spelling", ["tags", "mirror_spec"])
def test_the_children_a_failed_index_wrote_count_as_copied(registry_factory, spelling):
    """An index whose tag the destination refuses: its children were written before the refusal. A fake
    in front of the real destination refuses the PUT of the tag (Distribution has no such rule)."""
    src, dest = registry_factory(), registry_factory()
    RawPusher.for_registry(src).push("idx/app", MULTI, tag="multi")
    factory = ClientFactory({"plain_http": True, "retries": 1, "timeout": 30})
    with FaultProxy.for_registry(dest) as proxy:
        proxy.add("respond", method="PUT", path=r"/manifests/multi$", times=None, handler=_denied)
        mark = dest.mark()
        if spelling == "tags":
            def open_repository(reference, _side):
                return factory.registry(reference.registry).repository(reference.repository)
            done = run_transfer(f"{src.host}/idx/app", f"{proxy.host}/idx/app", CopyOptions(), open_repository,
                                tag_patterns=[".*"], keep_going=True).mirror.to_dict()
        else:
            pairs = expand_spec([{"src": f"{src.host}/idx/app", "dest": f"{proxy.host}/idx/app", "naming": "exact"}])
            done = run_sync(pairs, lambda host, _side: factory.registry(host), SyncOptions())
    manifests, blobs = written(dest, mark, {})
    assert [name.rpartition(":")[2] for name in done["failed_tags"]] == ["multi"], done
    assert manifests == {child.digest for child in MULTI.children}  # both images, not the index
    assert (done["copied"]["manifests"], done["copied"]["blobs"]) == (len(manifests), len(blobs))
    assert done["already_present"] == {"manifests": 0, "blobs": 0, "bytes": 0}


def test_a_tag_pointed_at_a_manifest_already_there_counts_it_present(registry_factory):
    """The destination holds the image under one tag; the mirror adds a second tag for it: that PUT
    writes a tag, not a manifest, so the manifest counts already present, not copied."""
    src, dest = registry_factory(), registry_factory()
    for tag in ("a", "b"):
        RawPusher.for_registry(src).push("again/app", ONE, tag=tag)
    RawPusher.for_registry(dest).push("again/app", ONE, tag="a")
    factory = ClientFactory({"plain_http": True})
    pairs = expand_spec([{"src": f"{src.host}/again/app", "dest": f"{dest.host}/again/app", "naming": "exact"}])
    done = run_sync(pairs, lambda host, _side: factory.registry(host), SyncOptions())
    assert done["repositories"][0]["copied"] == ["b"] and not done["failed"], done
    assert done["copied"] == {"manifests": 0, "blobs": 0, "bytes": 0}
    assert done["already_present"]["manifests"] == 1
