"""Start and stop a real CNCF Distribution registry for tests.

Each :class:`RegistryServer` runs ``/usr/bin/docker-registry serve CONFIG`` on
127.0.0.1 with a free port and a temp storage dir, deletes enabled, and its
access log captured so tests can count the requests a run sent.

The count waits for no clock: :meth:`RegistryServer.mark` and
:meth:`RegistryServer.requests_since` send a marker request and wait until the
log shows it, so every request answered before is in the log (or they raise
:class:`AccessLogTimeout` naming the registry and the marker).
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
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

REGISTRY_BIN = os.environ.get("OCIREG_REGISTRY_BIN", "/usr/bin/docker-registry")

# Gorilla's combined log format, as Distribution writes it:
# 127.0.0.1 - - [22/Nov/2026:07:50:01 +0000] "GET /v2/ HTTP/1.1" 200 2 "" "ua"
_ACCESS_RE = re.compile(r'^\S+ - \S+ \[[^\]]+\] "(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3}) ')


#: Path prefix of the counter's marker requests: never a registry API path, never counted.
MARKER_PREFIX = "/ocireg-rig-marker/"


class AccessLogTimeout(RuntimeError):
    """The registry's access log did not show a counter marker in time: a count would be a guess."""


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
        self._log_changed = threading.Condition(self._log_lock)
        self._log_closed = False
        self._held: list[str] | None = None
        self._on_held: Callable[[str], None] | None = None
        #: How long :meth:`mark` / :meth:`requests_since` wait for the log to show their marker before they raise.
        self.marker_timeout = 30.0
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
                time.sleep(0.05)  # poll until /v2/ answers, up to the deadline above
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
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._log_changed:
                if self._held is not None:
                    self._held.append(line)
                    if self._on_held is not None:
                        self._on_held(line)
                else:
                    self._log_lines.append(line)
                self._log_changed.notify_all()
        with self._log_changed:
            self._log_closed = True
            self._log_changed.notify_all()

    def log_text(self) -> str:
        """The whole captured log (application and access lines)."""
        with self._log_lock:
            return "\n".join(self._log_lines)

    def hold_log(self, on_line: Callable[[str], None] | None = None) -> None:
        """Hold back every log line captured from now on, as a slow log would, until :meth:`release_log`.

        ``on_line`` runs (in the reader thread) for each line held, so a test can see what the
        registry logged while the counter cannot.
        """
        with self._log_changed:
            self._held = []
            self._on_held = on_line

    def release_log(self) -> None:
        """Let the lines :meth:`hold_log` held back through, in order, and stop holding."""
        with self._log_changed:
            self._log_lines.extend(self._held or [])
            self._held, self._on_held = None, None
            self._log_changed.notify_all()

    def mark(self) -> int:
        """A position in the access log, after every request answered so far; pass it to :meth:`requests_since`."""
        return self._sync()

    def requests_since(self, mark: int = 0) -> list[LoggedRequest]:
        """Requests the registry logged after ``mark`` (from :meth:`mark`) and before now; markers left out."""
        end = self._sync()
        with self._log_lock:
            lines = self._log_lines[mark:end]
        found = []
        for line in lines:
            match = _ACCESS_RE.match(line)
            if match and not match["path"].startswith(MARKER_PREFIX):
                found.append(LoggedRequest(match["method"], match["path"], int(match["status"])))
        return found

    def writes_since(self, mark: int = 0) -> list[LoggedRequest]:
        """Only the PUT / POST / PATCH / DELETE requests logged after ``mark``."""
        return [r for r in self.requests_since(mark) if r.method in ("PUT", "POST", "PATCH", "DELETE")]

    def _marker_kwargs(self) -> dict[str, Any]:
        """``requests`` TLS arguments for the marker (a flavour with a CA or client certificate overrides this)."""
        return {"verify": False} if self.scheme == "https" else {}

    def _sync(self) -> int:
        """Send a marker request and wait until the access log shows it; the log position just after it.

        Distribution writes a request's access line in the request's handler, and Go sends the
        buffered end of an answer only after the handler returned: a client that saw an answer end
        (every write, error and manifest answer fits that buffer) saw it after its line was
        written. The marker, sent after that, is logged after it, so waiting for the marker's line
        waits for theirs, however late the pipe is, with no clock. (A blob body larger than Go's
        buffer may reach the client a moment before its line; the marker's own round trip covers
        that moment.) The marker is a GET outside ``/v2/``: a 404 on every flavour, logged before
        any auth check, touching no repository and no token server. A registry that exited logs
        nothing more: its log up to the end is the answer.
        """
        if self._proc is None:
            raise RuntimeError(f"registry {self.url} was never started: there is no access log to count")
        if self._proc.poll() is not None:
            if self._reader is not None:
                self._reader.join(self.marker_timeout)
            with self._log_lock:
                return len(self._log_lines)
        path = f"{MARKER_PREFIX}{uuid.uuid4().hex}"
        with self._log_lock:
            scanned = len(self._log_lines)
        try:
            requests.get(f"{self.url}{path}", timeout=30, **self._marker_kwargs())
        except requests.RequestException as exc:
            raise AccessLogTimeout(f"registry {self.url}: could not send the log marker {path}: {exc}") from exc
        wanted = f'"GET {path} HTTP/'
        deadline = time.monotonic() + self.marker_timeout
        with self._log_changed:
            while True:
                while scanned < len(self._log_lines):
                    scanned += 1
                    if wanted in self._log_lines[scanned - 1]:
                        return scanned
                left = deadline - time.monotonic()
                if left <= 0 or self._log_closed:
                    raise AccessLogTimeout(f"registry {self.url}: access log did not show marker {path} "
                                           f"within {self.marker_timeout:g} s")
                self._log_changed.wait(left)
