"""registry_artifact through real playbooks against Distribution 2.8, and with the oras Python client.

oras pulls what we push and we pull what oras pushes. Distribution 2.8 has no referrers API, so
attaching uses the client's tag-schema fallback index; the test reads that index with raw HTTP.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.rig.flavours import RigRegistry
from tests.rig.images import RawPuller, RawPusher, make_image, referrers_tag
from tests.rig.tools import oras_push_notes, require_module

TYPE = "application/vnd.example.sbom.v1"


def artifact_task(registry: RigRegistry, ref: str, **options: Any) -> dict[str, Any]:
    return {"name": "artifact", "ocireg.registry.registry_artifact": {
        "reference": f"{registry.host}/{ref}", **options}, "register": "out"}


def test_push_attach_pull_round_trip(plain_registry: RigRegistry, run_playbook, tmp_path: Path) -> None:
    subject = RawPusher.for_registry(plain_registry).push_image("team/app", make_image("app"), tag="1.0")
    src = tmp_path / "src"
    (src / "bundle" / "sub").mkdir(parents=True)
    (src / "bundle" / "sub" / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(src / "bundle" / "sub" / "run.sh", 0o755)
    (src / "sbom.json").write_text('{"sbom": true}')
    push = artifact_task(plain_registry, "team/app", subject=":1.0", artifact_type=TYPE,
                         files=[{"path": str(src / "sbom.json"), "media_type": "application/json"},
                                str(src / "bundle")])

    mark = plain_registry.mark()
    checked = run_playbook(tasks=[push], check=True, diff=True)
    assert checked.rc == 0, checked.explain()
    assert checked.task("artifact").changed and plain_registry.writes_since(mark) == []

    pushed = run_playbook(tasks=[push])
    assert pushed.rc == 0, pushed.explain()
    digest = pushed.task("artifact")["digest"]
    raw, _media_type, _digest = RawPuller.for_registry(plain_registry).manifest("team/app",
                                                                                referrers_tag(subject.digest))
    assert [m["digest"] for m in json.loads(raw)["manifests"]] == [digest]

    mark = plain_registry.mark()
    again = run_playbook(tasks=[push])
    assert again.rc == 0 and again.task("artifact").changed is False, again.explain()
    assert again.task("artifact")["digest"] == digest and plain_registry.writes_since(mark) == []

    dest = tmp_path / "pulled"
    pull = artifact_task(plain_registry, "team/app", action="pull", subject=":1.0", artifact_type=TYPE,
                         dest=str(dest))
    mark = plain_registry.mark()
    checked = run_playbook(tasks=[pull], check=True)
    assert checked.rc == 0 and checked.task("artifact").changed and not dest.exists(), checked.explain()
    pulled = run_playbook(tasks=[pull])
    assert pulled.rc == 0, pulled.explain()
    assert pulled.task("artifact")["digest"] == digest
    assert (dest / "sbom.json").read_text() == '{"sbom": true}'
    assert (dest / "bundle" / "sub" / "run.sh").stat().st_mode & 0o777 == 0o755
    # Only the artifact's files are inside dest; what the pull remembers lives beside it.
    assert sorted(p.name for p in dest.iterdir()) == ["bundle", "sbom.json"]
    beside = tmp_path / ".pulled.ocireg-artifact.json"
    recorded = json.loads(beside.read_text())
    assert list(recorded) == ["bundle"]
    rerun = run_playbook(tasks=[pull])
    assert rerun.rc == 0 and rerun.task("artifact").changed is False, rerun.explain()

    # 1.0.0 kept the record inside dest: a pull still honours it (nothing unpacked again) and moves it.
    beside.unlink()
    (dest / ".ocireg-artifact.json").write_text(json.dumps(recorded))
    moved = run_playbook(tasks=[pull])
    assert moved.rc == 0 and moved.task("artifact").changed is False, moved.explain()
    (dest / "sbom.json").write_text("changed")
    repaired = run_playbook(tasks=[pull])
    assert repaired.rc == 0 and repaired.task("artifact").changed, repaired.explain()
    assert sorted(p.name for p in dest.iterdir()) == ["bundle", "sbom.json"]
    assert json.loads(beside.read_text()) == recorded

    # oras reads what we pushed (by digest: it does not list referrers itself). Only this step needs oras:
    # the round trip above runs without it, and a missing oras fails here rather than skipping the file.
    client = require_module("oras.client", "oras").OrasClient(hostname=plain_registry.host, insecure=True)
    out = tmp_path / "oras-out"
    client.pull(target=f"{plain_registry.host}/team/app@{digest}", outdir=str(out))
    assert (out / "sbom.json").read_text() == '{"sbom": true}'
    assert (out / "bundle" / "sub" / "run.sh").read_text() == "#!/bin/sh\n"


def test_we_pull_what_oras_pushes_and_blobs(plain_registry: RigRegistry, run_playbook, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    client = oras_push_notes(plain_registry.host, f"{plain_registry.host}/team/files:v1", tmp_path / "oras-src",
                             monkeypatch)
    dest = tmp_path / "ours"
    pulled = run_playbook(tasks=[artifact_task(plain_registry, "team/files:v1", action="pull", dest=str(dest))])
    assert pulled.rc == 0, pulled.explain()
    assert (dest / "notes.txt").read_text() == "from oras\n"
    layer = pulled.task("artifact")["files"][0]["digest"]

    blob_file = tmp_path / "blob.bin"
    tasks = [artifact_task(plain_registry, f"team/files@{layer}", action="pull_blob", dest=str(blob_file))]
    first = run_playbook(tasks=tasks)
    assert first.rc == 0 and first.task("artifact").changed, first.explain()
    assert blob_file.read_text() == "from oras\n"
    assert run_playbook(tasks=tasks).task("artifact").changed is False

    (tmp_path / "up.bin").write_bytes(b"uploaded blob")
    up = [artifact_task(plain_registry, "team/files", action="push_blob", src=str(tmp_path / "up.bin"))]
    done = run_playbook(tasks=up)
    assert done.rc == 0 and done.task("artifact").changed, done.explain()
    assert RawPuller.for_registry(plain_registry).blob("team/files", done.task("artifact")["digest"]) == \
        b"uploaded blob"
    assert run_playbook(tasks=up).task("artifact").changed is False
