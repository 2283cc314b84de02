# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Test-rig callback: write every task result as one JSON line to a file.

ansible-core ships no JSON stdout callback that records every result and
ansible.posix is not installed, so the playbook fixture (tests/rig/playbook.py) enables this as an
extra (notification) callback. The normal stdout callback keeps printing what
a user would see, which secret-leak tests grep; this file is what tests parse.
Results reach callbacks already censored for ``no_log``.
"""
from __future__ import annotations

DOCUMENTATION = """
name: rig_events
type: notification
short_description: JSON lines of task results for the ocireg test rig
description:
  - Appends one JSON object per task result (and per loop item) to the file named by
    the C(OCIREG_RIG_EVENTS) environment variable.
requirements:
  - enabled via C(ANSIBLE_CALLBACKS_ENABLED=rig_events)
"""

import json
import os

from ansible.plugins.callback import CallbackBase
from ansible.release import __version__ as _core_version

# Only the public CallbackTaskResult API of ansible-core 2.19+ (the oldest core the collection
# claims): .result, .task and .host; ._result, ._task and ._host are slated for deprecation.
_CORE = tuple(int(part) for part in _core_version.split(".")[:2])


def _task_name(result):
    """The task's own (templated) name, as the tests look tasks up: without the "role : " prefix.

    ansible-core 2.19 has the templated name only in task_fields (deprecated from 2.20 on, so
    read there only); 2.20+ hands callbacks the templated task, whose task_name adds the role.
    """
    task = result.task
    name = result.task_fields.get("name") if _CORE < (2, 20) else None
    return str(name or task.name or task.get_name())


class CallbackModule(CallbackBase):
    """Append JSON lines: one per task result, loop item and the final stats."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "rig_events"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._path = os.environ.get("OCIREG_RIG_EVENTS")
        self._play = None

    def _write(self, record):
        if not self._path:
            return
        with open(self._path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, default=str, sort_keys=True) + "\n")

    def _task_record(self, kind, status, result, **extra):
        task = result.task
        data = dict(result.result)
        record = {
            "kind": kind,
            "status": status,
            "play": self._play,
            "task": _task_name(result),
            "action": task.action,
            "host": result.host.get_name(),
            "changed": bool(data.get("changed", False)),
            "failed": status == "failed",
            "skipped": status == "skipped",
            "diff": data.get("diff"),
            "result": data,
        }
        record.update(extra)
        self._write(record)

    def v2_playbook_on_play_start(self, play):
        self._play = play.get_name()

    def v2_runner_on_ok(self, result, **kwargs):
        self._task_record("task", "ok", result)

    def v2_runner_on_failed(self, result, ignore_errors=False, **kwargs):
        self._task_record("task", "failed", result, ignore_errors=bool(ignore_errors))

    def v2_runner_on_skipped(self, result, **kwargs):
        self._task_record("task", "skipped", result)

    def v2_runner_on_unreachable(self, result, **kwargs):
        self._task_record("task", "unreachable", result)

    def v2_runner_item_on_ok(self, result, **kwargs):
        self._task_record("item", "ok", result)

    def v2_runner_item_on_failed(self, result, **kwargs):
        self._task_record("item", "failed", result)

    def v2_runner_item_on_skipped(self, result, **kwargs):
        self._task_record("item", "skipped", result)

    def v2_playbook_on_stats(self, stats):
        summary = {host: stats.summarize(host) for host in sorted(stats.processed)}
        self._write({"kind": "stats", "stats": summary})
