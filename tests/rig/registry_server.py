"""Start and stop a real CNCF Distribution registry for tests.

Each :class:`RegistryServer` runs ``/usr/bin/docker-registry serve CONFIG`` on
127.0.0.1 with a free port and a temp storage dir, deletes enabled, and its
access log captured so tests can count the requests a run sent.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

REGISTRY_BIN = os.environ.get("OCIREG_REGISTRY_BIN", "/usr/bin/docker-registry")

# Gorilla's combined log format, as Distribution writes it:
# 127.0.0.1 - - [22/Nov/2026:07:50:01 +0000] "GET /v2/ HTTP/1.1" 200 2 "" "ua"
_ACCESS_RE = re.compile(r'^\S+ - \S+ \[[^\]]+\] "(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3}) ')


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class LoggedRequest:
    """One line of the registry's access log."""

    method: str
    path: str
    status: int


class RegistryServer:
    """A Distribution registry process with its own port, storage and access log."""

    def __init__(self, *, auth: dict[str, Any] | None = None, tls: dict[str, Any] | None = None,
                 extra: dict[str, Any] | None = None, scheme: str | None = None) -> None:
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.workdir = Path(tempfile.mkdtemp(prefix="ocireg-registry-"))
        self.storage = self.workdir / "storage"
        self.storage.mkdir()
        self.scheme = scheme or ("https" if tls else "http")
        self.url = f"{self.scheme}://{self.host}"
        self.config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage)},
                "delete": {"enabled": True},
                "cache": {"blobdescriptor": "inmemory"},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {"addr": self.host, "secret": "ocireg-test-secret", "headers": {"X-Content-Type-Options": ["nosniff"]}},
        }
        if auth:
            self.config["auth"] = auth
        if tls:
            self.config["http"]["tls"] = tls
        if extra:
            for key, value in extra.items():
                self.config[key] = value
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_lines: list[str] = []
        self._log_lock = threading.Lock()
        self._reader: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------
    def start(self, ready_check: Any = None, timeout: float = 20.0) -> "RegistryServer":
        """Start the process and wait until ``/v2/`` answers."""
        if not Path(REGISTRY_BIN).exists():
            raise RuntimeError(f"{REGISTRY_BIN} not found: install the Debian package docker-registry")
        config_path = self.workdir / "config.yml"
        config_path.write_text(yaml.safe_dump(self.config))
        self._proc = subprocess.Popen(  # noqa: S603 - fixed binary, test only
            [REGISTRY_BIN, "serve", str(config_path)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"registry exited early:\n{self.log_text()}")
            try:
                if ready_check is not None:
                    ready_check(self)
                else:
                    requests.get(f"{self.url}/v2/", timeout=1, verify=False)  # noqa: S501 - readiness only
                return self
            except requests.RequestException:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"registry did not answer within {timeout}s:\n{self.log_text()}")

    def stop(self) -> None:
        """Stop the process by PID and remove its storage."""
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "RegistryServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- access log ----------------------------------------------------------------
    def _read_log(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for raw in self._proc.stdout:
            with self._log_lock:
                self._log_lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def log_text(self) -> str:
        """The whole captured log (application and access lines)."""
        with self._log_lock:
            return "\n".join(self._log_lines)

    def mark(self) -> int:
        """A position in the access log; pass it to :meth:`requests_since`."""
        self._settle()
        with self._log_lock:
            return len(self._log_lines)

    def requests_since(self, mark: int = 0) -> list[LoggedRequest]:
        """Requests the registry logged after ``mark`` (from :meth:`mark`)."""
        self._settle()
        with self._log_lock:
            lines = self._log_lines[mark:]
        found = []
        for line in lines:
            match = _ACCESS_RE.match(line)
            if match:
                found.append(LoggedRequest(match["method"], match["path"], int(match["status"])))
        return found

    def writes_since(self, mark: int = 0) -> list[LoggedRequest]:
        """Only the PUT / POST / PATCH / DELETE requests logged after ``mark``."""
        return [r for r in self.requests_since(mark) if r.method in ("PUT", "POST", "PATCH", "DELETE")]

    def _settle(self) -> None:
        # The access log is written after the response is sent; give the reader
        # thread a moment so a request that just completed is counted.
        time.sleep(0.15)
