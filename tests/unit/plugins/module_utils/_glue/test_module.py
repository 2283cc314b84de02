"""How a module ends: the registries' warnings become Ansible warnings, and secrets never leave, on success or failure.

``Recorder`` stands in for AnsibleModule (a real one reads its arguments from stdin and exits the
process); ``Factory`` for ClientFactory, whose warnings and secrets come from real registries.
"""
from __future__ import annotations

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._glue.module import (
    exit_with,
    fail_with,
    registry_errors,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    RegistryError,
)


class Ended(Exception):
    """What exit_json / fail_json would end the process with."""

    def __init__(self, how: str, result: dict) -> None:
        super().__init__(how)
        self.how, self.result = how, result


class Recorder:
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warn(self, text: str) -> None:
        self.warnings.append(text)

    def exit_json(self, **result) -> None:
        raise Ended("exit", result)

    def fail_json(self, **result) -> None:
        raise Ended("fail", result)


class Factory:
    def secrets(self) -> list[str]:
        return ["hunter2"]

    def warnings(self) -> list[str]:
        return ["registry says hunter2 is deprecated"]

    def explain(self, err: RegistryError) -> RegistryError:
        return err


def test_fail_with_warns_and_scrubs_message_and_data() -> None:
    module = Recorder()
    with pytest.raises(Ended) as ended:
        fail_with(module, Factory(), "token hunter2 refused", applied=["x hunter2"], msg_count=1)
    assert ended.value.how == "fail"
    assert ended.value.result == {"msg": "token ******** refused", "applied": ["x ********"], "msg_count": 1}
    assert module.warnings == ["registry says ******** is deprecated"]


def test_exit_with_warns_and_scrubs() -> None:
    module = Recorder()
    with pytest.raises(Ended) as ended:
        exit_with(module, Factory(), {"changed": True, "note": "hunter2"})
    assert (ended.value.how, ended.value.result) == ("exit", {"changed": True, "note": "********"})
    assert module.warnings == ["registry says ******** is deprecated"]


def test_registry_errors_fails_with_the_error_and_the_partial_result() -> None:
    module = Recorder()
    with pytest.raises(Ended) as ended, registry_errors(module, Factory(), changed=False, src="a"):
        raise RegistryError("bad hunter2", status=500)
    result = ended.value.result
    assert ended.value.how == "fail" and result["msg"] == "bad ********"
    assert result["error"]["message"] == "bad ********" and (result["changed"], result["src"]) == (False, "a")
    assert module.warnings == ["registry says ******** is deprecated"]


def test_registry_errors_without_a_factory_neither_warns_nor_scrubs() -> None:
    module = Recorder()
    with pytest.raises(Ended) as ended, registry_errors(module):
        raise RegistryError("bad hunter2")
    assert ended.value.result["msg"] == "bad hunter2" and module.warnings == []
