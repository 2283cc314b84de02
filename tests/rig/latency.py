"""A TCP proxy that adds a fixed one-way delay in each direction, in front of a rig registry.

It stands in for a WAN link (the test machines' kernel has no netem): order within a connection
is kept, throughput is not shaped. :class:`LatencyProxy` runs this file as its own process (so
the delays do not share an interpreter lock with the client under test); the client talks to
``proxy.host`` and the registry's access log still counts every request.

Run by hand: ``python tests/rig/latency.py LISTEN_PORT TARGET_HOST:TARGET_PORT ONE_WAY_MS``.
"""
from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    queue: asyncio.Queue = asyncio.Queue()

    async def deliver() -> None:
        loop = asyncio.get_running_loop()
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                try:
                    writer.write_eof()
                except OSError:
                    pass
                return
            writer.write(data)
            await writer.drain()

    task = asyncio.create_task(deliver())
    loop = asyncio.get_running_loop()
    try:
        while True:
            data = await reader.read(262144)
            await queue.put((loop.time() + delay, data or None))
            if not data:
                break
        await task
    except (ConnectionError, OSError):
        task.cancel()
    finally:
        try:
            writer.close()
        except OSError:
            pass


async def _serve(listen: int, target: str, one_way_ms: float) -> None:
    host, port = target.rsplit(":", 1)
    delay = one_way_ms / 1000.0

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            client_writer.close()
            return
        await asyncio.sleep(delay)  # the SYN's trip
        await asyncio.gather(_pump(client_reader, server_writer, delay), _pump(server_reader, client_writer, delay),
                             return_exceptions=True)

    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    async with server:
        await server.serve_forever()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LatencyProxy:
    """The proxy in its own process in front of ``target`` (``host:port``); use as a context manager."""

    def __init__(self, target: str, one_way_ms: float) -> None:
        self.target = target
        self.one_way_ms = one_way_ms
        self.port = _free_port()
        self.host = f"127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> LatencyProxy:
        """Start the process and wait (polling, at most ``timeout`` s) until it accepts connections."""
        self._proc = subprocess.Popen([sys.executable, __file__, str(self.port), self.target, str(self.one_way_ms)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)  # polls for the listening socket
        self.stop()
        raise RuntimeError(f"the latency proxy in front of {self.target} did not start within {timeout} s")

    def stop(self) -> None:
        """Stop the process (the one this object started)."""
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
            self._proc = None

    def __enter__(self) -> LatencyProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    asyncio.run(_serve(int(sys.argv[1]), sys.argv[2], float(sys.argv[3])))
