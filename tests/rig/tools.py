"""Third-party tools the suite proves interop with: required, never skipped.

CI installs every one of them (``scripts/bootstrap.sh`` for the binaries,
``tests/requirements.txt`` for the Python packages), so a missing tool is a
broken machine, not a reason to pass quietly: the test that needs it fails with
one line saying what is missing and how to install it.
"""
from __future__ import annotations

import importlib
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


def require_tool(name: str) -> str:
    """The path of executable ``name``; fails the calling test when it is not installed."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed, and this test needs it: run scripts/bootstrap.sh "
                    f"(or apt-get install {name})", pytrace=False)
    return path


def require_module(module: str, package: str) -> ModuleType:
    """Python module ``module`` (from pip package ``package``); fails the calling test when it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        pytest.fail(f"Python module {module} is missing ({exc}), and this test needs it: "
                    f"pip install -r tests/requirements.txt (package {package})", pytrace=False)


def oras_push_notes(host: str, target: str, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Push a one-file artifact (``notes.txt``) to ``target`` with the real oras client; the client.

    oras insists on file paths below the working directory, so the file is written in ``workdir`` and
    the test's working directory moves there.
    """
    workdir.mkdir()
    (workdir / "notes.txt").write_text("from oras\n")
    monkeypatch.chdir(workdir)
    client = require_module("oras.client", "oras").OrasClient(hostname=host, insecure=True)
    client.push(target=target, files=["notes.txt"])
    return client
