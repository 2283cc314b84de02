"""roles/retention through real ``ansible-playbook`` runs, garbage collection included.

The registry here is not a rig fixture: the role must stop, reconfigure and
restart it, so the test runs CNCF Distribution 2.8 itself through two small
scripts (start: ``docker-registry serve`` in the background with a pid file;
stop: kill that pid) and gives them to the role as
``retention_gc_service_commands``. That is the role's command path for
registries not run by a service manager; the ``ansible.builtin.service`` path
needs a real init system and is not exercised here.

``retention_gc_binary`` is a wrapper that first tries a blob upload and
records the status, then runs the real ``docker-registry garbage-collect``:
it proves the registry really was read-only while garbage was collected.
Images are seeded with the rig's raw HTTP clients.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
import yaml

from tests.rig.images import Image, RawPuller, RawPusher, make_image, make_multiarch
from tests.rig.registry_server import REGISTRY_BIN, free_port

WRITE = re.compile(r'"(PUT|POST|PATCH|DELETE) /v2/')
SECRET = "ocireg-role-test-http-secret"  # in the registry config: the role must never print it


class ScriptedRegistry:
    """A Distribution process controlled by start/stop scripts, as a service manager would."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self.storage = root / "storage"
        self.storage.mkdir(parents=True)
        self.config_path = root / "config.yml"
        self.log = root / "registry.log"
        self.pidfile = root / "registry.pid"
        config = {
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": False}},
            "storage": {"filesystem": {"rootdirectory": str(self.storage)}, "delete": {"enabled": True},
                        "maintenance": {"uploadpurging": {"enabled": False}}},
            "http": {"addr": self.host, "secret": SECRET},
        }
        # A comment and a key order a YAML round trip would lose: the restore must be byte for byte.
        self.config_text = "# managed by hand\n" + yaml.safe_dump(config, sort_keys=False)
        self.config_path.write_text(self.config_text)
        self.start_script = root / "start.sh"
        # Returns once the port accepts connections, as a service manager's start does for a notify service.
        self.start_script.write_text(
            f'nohup {REGISTRY_BIN} serve "{self.config_path}" >> "{self.log}" 2>&1 < /dev/null &\n'
            f'echo $! > "{self.pidfile}"\n'
            f'until (echo > /dev/tcp/127.0.0.1/{self.port}) 2>/dev/null; do sleep 0.05; done\n')
        self.stop_script = root / "stop.sh"
        # The registry is reparented when the starting shell exits; a zombie waiting to be reaped counts as stopped.
        self.stop_script.write_text(
            f'pid=$(cat "{self.pidfile}")\nkill "$pid"\n'
            'while kill -0 "$pid" 2>/dev/null && ! grep -q "^State:.*Z" "/proc/$pid/status" 2>/dev/null; do\n'
            '  sleep 0.05\ndone\n')

    def start(self) -> None:
        subprocess.run(["bash", str(self.start_script)], check=True, timeout=30)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                requests.get(f"{self.url}/v2/", timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.05)  # poll until /v2/ answers, up to the deadline above
        raise RuntimeError(f"registry did not start:\n{self.log.read_text()}")

    def stop(self) -> None:
        """Kill the registry process the pid file names, if it still runs (only ever one we started)."""
        if not self.pidfile.exists():
            return
        pid = int(self.pidfile.read_text().strip())
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        for _attempt in range(200):
            try:
                os.kill(pid, 0)
                if "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text():
                    return  # a zombie: stopped, waiting for its new parent to reap it
            except (ProcessLookupError, FileNotFoundError):
                return
            time.sleep(0.05)  # poll until the process is gone or a zombie, 200 times at most (10 s)

    def writes(self) -> int:
        """Write requests in the access log so far."""
        return len(WRITE.findall(self.log.read_text())) if self.log.exists() else 0

    def blob_file(self, digest: str) -> Path:
        hexpart = digest.partition(":")[2]
        return self.storage / "docker" / "registry" / "v2" / "blobs" / "sha256" / hexpart[:2] / hexpart / "data"


@pytest.fixture
def scripted_registry(tmp_path: Path) -> Iterator[ScriptedRegistry]:
    registry = ScriptedRegistry(tmp_path / "registry")
    registry.start()
    yield registry
    registry.stop()


def blobs_of(image: Image) -> list[str]:
    """The manifest, config and layer digests: every file the image stores."""
    return [image.digest] + [blob.digest for blob in image.blobs()]


def gc_probe(root: Path, url: str) -> tuple[Path, Path]:
    """A garbage-collect wrapper recording what a blob upload gets while it runs, and its record file."""
    record = root / "probe-status"
    wrapper = root / "gc-wrapper.sh"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'"{sys.executable}" -c "import requests, sys; '
        f"print(requests.post(sys.argv[1], timeout=5).status_code)\" '{url}/v2/probe/blobs/uploads/' > \"{record}\"\n"
        f'exec {REGISTRY_BIN} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper, record


def role_play(registry: ScriptedRegistry, wrapper: Path, **overrides: Any) -> dict[str, Any]:
    role_vars = {
        "retention_policies": [{
            "name": "old dev images",
            "registry": registry.host,
            "repositories": ["team/*"],
            "match": ["dev-.*"],
            "older_than": "30d",
            # team/lib holds only dev-1, so this plan empties it: emptying a repository needs the opt-in.
            "allow_empty_repository": True,
        }],
        "retention_defaults": {"max_deletions": 10},
        "retention_gc_enabled": True,
        "retention_gc_mode": "readonly",
        "retention_gc_config": str(registry.config_path),
        "retention_gc_binary": str(wrapper),
        "retention_gc_service_commands": {"stop": f"bash {registry.stop_script}",
                                          "start": f"bash {registry.start_script}"},
        "retention_gc_health_url": f"{registry.url}/v2/",
        **overrides,
    }
    return {"name": "retention", "hosts": "localhost", "gather_facts": False,
            "roles": [{"role": "ocireg.registry.retention", "vars": role_vars}]}


def test_role_check_mode_then_prune_and_collect_garbage_read_only(scripted_registry: ScriptedRegistry,
                                                                  run_playbook) -> None:
    registry = scripted_registry
    pusher = RawPusher(registry.url)
    kept = make_image("release")
    doomed = {"team/app": make_image("app-dev"), "team/lib": make_image("lib-dev")}
    pusher.push_image("team/app", kept, tag="release-1")
    for repository, image in doomed.items():
        pusher.push_image(repository, image, tag="dev-1")
    wrapper, probe = gc_probe(registry.root, registry.url)
    play = role_play(registry, wrapper)

    writes = registry.writes()
    checked = run_playbook(play, check=True)
    assert checked.rc == 0, checked.explain()
    assert registry.writes() == writes
    assert not probe.exists()  # no garbage collection in check mode
    (line,) = checked.task("Show the summary")["msg"]
    assert line.startswith("old dev images: 2 repositories, 3 digests: delete 2")
    assert "would apply 2 deletions and 0 untags" in line and "garbage collection needed" in line

    done = run_playbook(play, diff=True, verbosity=1)
    assert done.rc == 0, done.explain()
    # The configuration (secrets included) is read and rewritten without being shown, not even with --diff.
    assert SECRET not in done.output
    assert "content" not in done.task("Read the configuration, to restore it byte for byte afterwards").result
    (line,) = done.task("Show the summary")["msg"]
    assert "applied 2 deletions" in line
    # Garbage-collect ran while the registry refused uploads (read-only maintenance mode) ...
    assert probe.read_text().strip() == "405"
    # ... removed every file of the deleted images and none of the kept one ...
    for image in doomed.values():
        assert [d for d in blobs_of(image) if registry.blob_file(d).exists()] == []
    assert all(registry.blob_file(d).exists() for d in blobs_of(kept))
    # ... and the registry is back, writable, with its configuration restored byte for byte.
    assert registry.config_path.read_text() == registry.config_text
    puller = RawPuller(registry.url)
    assert puller.pull("team/app", "release-1").digest == kept.digest
    assert puller.tags("team/lib") == []
    assert pusher.push_image("team/app", make_image("after"), tag="after").digest


def test_distribution_delete_untagged_breaks_multi_platform_images(scripted_registry: ScriptedRegistry) -> None:
    """Why the role refuses retention_gc_delete_untagged without retention_gc_delete_untagged_accept_risk.

    On Distribution 2.8 ``garbage-collect --delete-untagged`` deletes the
    untagged children of a *tagged* index (distribution/distribution#3178,
    fixed only in 3.0): the index then no longer pulls. registry_prune's own
    deletions never need that flag.
    """
    registry = scripted_registry
    index = RawPusher(registry.url).push("team/multi", make_multiarch("gc"), tag="v1")
    registry.stop()
    subprocess.run([REGISTRY_BIN, "garbage-collect", "--delete-untagged", str(registry.config_path)],
                   check=True, capture_output=True)
    registry.start()
    puller = RawPuller(registry.url)
    assert puller.head_manifest("team/multi", "v1").status_code == 200
    assert [puller.head_manifest("team/multi", c.digest).status_code for c in index.children] == [404, 404]


def test_the_summary_reads_as_english(run_playbook) -> None:
    """The summary line's counts agree in number with their nouns, and skips are worded, not a raw dict.

    No registry is needed: the role's summary tasks are given prune results as registry_prune returns them.
    """
    def counts(**summary: Any) -> dict[str, Any]:
        return {"digests": 1, "delete": 0, "delete_cascaded": 0, "untag": 0, "keep": 1, "tags_before": 3,
                "tags_after": 3, "applied": {"delete": 0, "untag": 0}, "skipped": {}, **summary}

    results = {"results": [
        {"retention_index": 0, "repositories": ["reg/team/app"], "gc_required": False,
         "summary": counts(skipped={"a_new_reason": 1, "kept_image": 2, "unknown_age": 1},  # sorted, as given
                           applied={"delete": 1, "untag": 0}),
         "in_use": {"protected": 1, "unresolved": ["reg/team/app:v0"]},
         "deferred": [{"status": "pending"}, {"status": "untagged"}, {"status": "untagged"}, {"status": "rescued"}]},
        {"retention_index": 1, "repositories": ["reg/team/a", "reg/team/b"], "gc_required": True,
         "summary": counts(digests=4, applied={"delete": 2, "untag": 1}, skipped={"kept_image": 1}),
         "in_use": {"protected": 3, "unresolved": ["reg/a:1", "reg/b:2"]}},
    ]}
    play = {"name": "summary", "hosts": "localhost", "gather_facts": False, "tasks": [
        {"ansible.builtin.include_role": {"name": "ocireg.registry.retention", "tasks_from": "summary"},
         "vars": {"retention_policies": [{"name": "one"}, {"name": "two"}], "retention_results": results}}]}
    done = run_playbook(play)
    assert done.rc == 0, done.explain()
    one, two = done.task("Show the summary")["msg"]
    assert one == ("one: 1 repository, 1 digest: delete 0 (0 with their owner), untag 0, keep 1; tags 3 -> 3; "
                   "applied 1 deletion and 0 untags; skipped: a_new_reason: 1, 2 kept images, 1 image of unknown age; "
                   "in use: 1 digest kept, 1 tag no longer resolves; deferred: 2 untagged, 1 pending, 1 rescued"), one
    assert two == ("two: 2 repositories, 4 digests: delete 0 (0 with their owner), untag 0, keep 1; tags 3 -> 3; "
                   "applied 2 deletions and 1 untag; skipped: 1 kept image; in use: 3 digests kept, 2 tags no longer "
                   "resolve; garbage collection needed"), two
