"""Run one module as Ansible does and write when it first connects to a registry (for bench/lean.py).

    python bench/first_request.py STAMP_FILE MODULE ARGS_FILE
    python bench/first_request.py STAMP_FILE ANSIBALLZ_FILE

Runs ``MODULE`` (``ansible_collections.ocireg.registry.plugins.modules.X``) as
``__main__`` with ``ARGS_FILE`` as its argument, like a module run directly;
or runs ``ANSIBALLZ_FILE`` (an ``AnsiballZ_x.py`` kept from an Ansible run, its
arguments inside) as ``python ANSIBALLZ_FILE`` does, as on a managed host:
Ansible's wrapper imports everything of its zip from sources, so every file
imported is compiled on every run.
The first ``socket.connect`` of the process writes ``time.time()`` and
``time.process_time()`` to ``STAMP_FILE``: start-up is that stamp minus the
moment the parent spawned this process (Python start, imports and argument
parsing, before the first request), and the CPU the process used until then
(what the wall time would be on an idle machine, less file-system waits). Kept tiny so it adds nothing measurable to the start-up it measures.
"""
import runpy
import socket
import sys
import time

_stamp = sys.argv[1]
_connect = socket.socket.connect


def _first_connect(self, address):  # type: ignore[no-untyped-def]
    socket.socket.connect = _connect  # type: ignore[method-assign]
    with open(_stamp, "w", encoding="ascii") as out:
        out.write(f"{time.time()!r} {time.process_time()!r}")
    return _connect(self, address)


socket.socket.connect = _first_connect  # type: ignore[method-assign]
if len(sys.argv) == 3:
    sys.argv = [sys.argv[2]]
    runpy.run_path(sys.argv[0], run_name="__main__")
else:
    sys.argv = sys.argv[2:4]
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
