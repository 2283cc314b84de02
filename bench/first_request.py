"""Run one module as Ansible does and write when it first connects to a registry (for bench/lean.py).

    python bench/first_request.py STAMP_FILE MODULE ARGS_FILE [PAYLOAD_ZIP]

Runs ``MODULE`` (``ansible_collections.ocireg.registry.plugins.modules.X``) as
``__main__`` with ``ARGS_FILE`` as its argument, like a module run directly.
With ``PAYLOAD_ZIP`` (bench/lean.py builds it like Ansible's AnsiballZ payload:
``ansible.module_utils`` and the collection's plugins as sources) the module and
its module_utils are imported from that zip first, as on a managed host: no
``.pyc`` there, so every file imported is compiled on every run.
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

_stamp, _module, _args = sys.argv[1:4]
if len(sys.argv) > 4:
    sys.path.insert(0, sys.argv[4])
_connect = socket.socket.connect


def _first_connect(self, address):  # type: ignore[no-untyped-def]
    socket.socket.connect = _connect  # type: ignore[method-assign]
    with open(_stamp, "w", encoding="ascii") as out:
        out.write(f"{time.time()!r} {time.process_time()!r}")
    return _connect(self, address)


socket.socket.connect = _first_connect  # type: ignore[method-assign]
sys.argv = [_module, _args]
runpy.run_module(_module, run_name="__main__", alter_sys=True)
