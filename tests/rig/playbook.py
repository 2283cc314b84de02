"""Build and install the collection, then run real ``ansible-playbook`` against it.

:func:`build_and_install` runs ``ansible-galaxy collection build`` on the
checkout and ``ansible-galaxy collection install -p`` into a temp dir, so the
tests exercise what a user would install (build_ignore and all), not the
working tree. :class:`PlaybookRunner` runs a playbook (Python data or YAML
text) on ``localhost`` with the local connection and this interpreter, and
returns a :class:`PlaybookResult` with the full stdout / stderr and the
per-task results the ``rig_events`` callback (tests/rig/callback_plugins)
wrote as JSON lines.

The environment is hermetic: ``ANSIBLE_*`` variables from the caller's shell
are dropped, no ansible.cfg is read, and only the installed copy of the
collection is on the collections path.

A run that prints a ``[DEPRECATION WARNING]`` raises :class:`DeprecationInRun`:
a rig run executes only the collection's content and the test's own playbook,
so any deprecation is ours to fix before the ansible-core that removes the
feature arrives (``allow_deprecations=True`` for a test of a deprecated option).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = Path(sys.executable).parent
CALLBACK_DIR = Path(__file__).resolve().parent / "callback_plugins"
COLLECTION = "ocireg.registry"


DEPRECATION_MARK = "[DEPRECATION WARNING]"


class DeprecationInRun(AssertionError):
    """A playbook run printed a deprecation warning (see the module docstring)."""


def deprecation_warnings(text: str) -> list[str]:
    """Every ``[DEPRECATION WARNING]`` in ``text``, each with the lines that continue it."""
    found: list[str] = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if DEPRECATION_MARK not in line:
            continue
        block = [line[line.index(DEPRECATION_MARK):]]
        # ansible-core 2.19+ continues a warning on indented lines (origin, source excerpt).
        for follow in lines[index + 1:]:
            if not follow.startswith((" ", "\t")) or not follow.strip():
                break
            block.append(follow)
        found.append("\n".join(block))
    return found


@dataclass(frozen=True)
class InstalledCollection:
    """Where the built collection went."""

    tarball: Path
    collections_path: Path  # the dir to put on ANSIBLE_COLLECTIONS_PATH

    @property
    def path(self) -> Path:
        """The installed collection's root (``…/ansible_collections/ocireg/registry``)."""
        return self.collections_path / "ansible_collections" / "ocireg" / "registry"


def _run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)  # noqa: S603 - test tooling
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def hermetic_env(workdir: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without ``ANSIBLE_*``, plus settings that keep runs isolated.

    An empty ``workdir/ansible.cfg`` is the config file, so none from cwd or
    home is read.
    """
    config = workdir / "ansible.cfg"
    if not config.exists():
        config.write_text("# empty on purpose: the test rig configures ansible through the environment\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update({
        "ANSIBLE_CONFIG": str(config),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "0",
        # On, whatever the caller's shell says: PlaybookRunner.run fails a run that prints one.
        "ANSIBLE_DEPRECATION_WARNINGS": "1",
        "PATH": f"{BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}",
    })
    env.update(extra)
    return env


def build_and_install(workdir: Path, source: Path = REPO_ROOT) -> InstalledCollection:
    """``ansible-galaxy collection build`` ``source`` into ``workdir`` and install it there."""
    galaxy = str(BIN_DIR / "ansible-galaxy")
    build_dir = workdir / "build"
    install_dir = workdir / "collections"
    build_dir.mkdir(parents=True, exist_ok=True)
    env = hermetic_env(workdir, ANSIBLE_HOME=str(workdir / "ansible-home"))
    _run([galaxy, "collection", "build", str(source), "--output-path", str(build_dir), "--force"], env=env)
    tarballs = sorted(build_dir.glob("ocireg-registry-*.tar.gz"))
    if len(tarballs) != 1:
        raise RuntimeError(f"expected one collection tarball in {build_dir}, found {tarballs}")
    _run([galaxy, "collection", "install", str(tarballs[0]), "-p", str(install_dir), "--force"], env=env)
    return InstalledCollection(tarballs[0], install_dir)


@dataclass
class TaskResult:
    """One task's result on one host, as the ``rig_events`` callback recorded it."""

    name: str
    action: str
    host: str
    status: str  # ok, failed, skipped, unreachable
    changed: bool
    failed: bool
    skipped: bool
    result: dict[str, Any]
    diff: Any = None
    play: str | None = None
    ignore_errors: bool = False

    def __getitem__(self, key: str) -> Any:
        """``task["msg"]`` reads the module's return value."""
        return self.result[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.result.get(key, default)


@dataclass
class PlaybookResult:
    """What one ``ansible-playbook`` run produced."""

    rc: int
    stdout: str
    stderr: str
    tasks: list[TaskResult]
    items: list[TaskResult]  # per-item results of loops, in order
    stats: dict[str, Any]
    events_text: str  # the raw JSON lines, for leak checks
    playbook_path: Path
    command: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        """stdout + stderr + the event log: everything a run printed or recorded."""
        return "\n".join((self.stdout, self.stderr, self.events_text))

    def task(self, name: str) -> TaskResult:
        """The one result of the task called ``name`` (KeyError if none, ValueError if several)."""
        found = [t for t in self.tasks if t.name == name]
        if not found:
            raise KeyError(f"no task named {name!r}; tasks were {[t.name for t in self.tasks]}")
        if len(found) > 1:
            raise ValueError(f"{len(found)} results for task {name!r}; use tasks_named()")
        return found[0]

    def tasks_named(self, name: str) -> list[TaskResult]:
        """Every result of tasks called ``name`` (several hosts, or a repeated name)."""
        return [t for t in self.tasks if t.name == name]

    def explain(self) -> str:
        """A failure message for asserts: rc and the tail of the output."""
        return f"rc={self.rc}\n--- stdout ---\n{self.stdout[-4000:]}\n--- stderr ---\n{self.stderr[-4000:]}"


def _to_result(record: dict[str, Any]) -> TaskResult:
    return TaskResult(name=record["task"], action=record["action"], host=record["host"], status=record["status"],
                      changed=record["changed"], failed=record["failed"], skipped=record["skipped"],
                      result=record["result"], diff=record.get("diff"), play=record.get("play"),
                      ignore_errors=record.get("ignore_errors", False))


def as_plays(playbook: Any = None, tasks: list[dict[str, Any]] | None = None) -> list[dict[str, Any]] | str:
    """Normalise what :meth:`PlaybookRunner.run` accepts into a list of plays or YAML text."""
    if tasks is not None:
        if playbook is not None:
            raise TypeError("pass a playbook or tasks, not both")
        return [{"name": "rig", "hosts": "localhost", "gather_facts": False, "tasks": tasks}]
    if isinstance(playbook, str):
        return playbook
    if isinstance(playbook, dict):
        return [playbook]
    if isinstance(playbook, list):
        return playbook
    raise TypeError(f"playbook must be YAML text, a play dict or a list of plays, not {type(playbook).__name__}")


class PlaybookRunner:
    """Runs playbooks against an installed collection."""

    def __init__(self, collection: InstalledCollection, workdir: Path) -> None:
        self.collection = collection
        self.workdir = workdir
        self._count = 0

    def env(self, events: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The environment one run gets."""
        home = self.workdir / "ansible-home"
        return hermetic_env(
            self.workdir,
            ANSIBLE_COLLECTIONS_PATH=str(self.collection.collections_path),
            ANSIBLE_CALLBACK_PLUGINS=str(CALLBACK_DIR),
            ANSIBLE_CALLBACKS_ENABLED="rig_events",
            ANSIBLE_HOME=str(home),
            ANSIBLE_LOCAL_TEMP=str(home / "tmp"),
            ANSIBLE_REMOTE_TMP=str(home / "remote-tmp"),
            OCIREG_RIG_EVENTS=str(events),
            **(extra or {}),
        )

    def run(self, playbook: Any = None, *, tasks: list[dict[str, Any]] | None = None, check: bool = False,
            diff: bool = False, extra_vars: dict[str, Any] | None = None, env: dict[str, str] | None = None,
            verbosity: int = 0, args: list[str] | None = None, timeout: float = 600,
            allow_deprecations: bool = False) -> PlaybookResult:
        """Run a playbook (plays as data or YAML text, or just ``tasks=[…]`` on localhost).

        Raises :class:`DeprecationInRun` when the run printed a deprecation warning, unless
        ``allow_deprecations``.
        """
        self._count += 1
        rundir = Path(tempfile.mkdtemp(prefix=f"run{self._count}-", dir=self.workdir))
        plays = as_plays(playbook, tasks)
        playbook_path = rundir / "playbook.yml"
        playbook_path.write_text(plays if isinstance(plays, str) else yaml.safe_dump(plays, sort_keys=False))
        vars_path = rundir / "extra_vars.json"
        vars_path.write_text(json.dumps({"ansible_python_interpreter": sys.executable, **(extra_vars or {})}))
        events = rundir / "events.jsonl"
        command = [str(BIN_DIR / "ansible-playbook"), "-i", "localhost,", "-c", "local", "-e", f"@{vars_path}"]
        if check:
            command.append("--check")
        if diff:
            command.append("--diff")
        if verbosity:
            command.append("-" + "v" * verbosity)
        command += [*(args or []), str(playbook_path)]
        proc = subprocess.run(command, capture_output=True, text=True, cwd=rundir, env=self.env(events, env),  # noqa: S603
                              timeout=timeout, check=False)
        events_text = events.read_text() if events.exists() else ""
        records = [json.loads(line) for line in events_text.splitlines() if line.strip()]
        stats = next((r["stats"] for r in reversed(records) if r["kind"] == "stats"), {})
        deprecations = deprecation_warnings(f"{proc.stdout}\n{proc.stderr}")
        if deprecations and not allow_deprecations:
            raise DeprecationInRun(
                f"ansible-playbook printed {len(deprecations)} deprecation warning(s); our content must raise none "
                f"(playbook {playbook_path}):\n" + "\n".join(deprecations))
        return PlaybookResult(
            rc=proc.returncode, stdout=proc.stdout, stderr=proc.stderr,
            tasks=[_to_result(r) for r in records if r["kind"] == "task"],
            items=[_to_result(r) for r in records if r["kind"] == "item"],
            stats=stats, events_text=events_text, playbook_path=playbook_path, command=command,
        )

    __call__ = run


def guide_recipe(guide: Path, mark: str) -> str:
    """The first YAML block after ``mark`` (an HTML comment) in a guide: a recipe a test runs as written."""
    text = guide.read_text()
    assert mark in text, f"{guide.name} lost the recipe marked {mark}"
    block = text.split(mark, 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    yaml.safe_load(block)
    return block
