"""How a module ends: the registries' warnings become Ansible warnings, and secrets never leave, on success or failure.

``Recorder`` stands in for AnsibleModule (a real one reads its arguments from stdin and exits the
process); ``Factory`` for ClientFactory, whose warnings and secrets come from real registries.
:class:`RegistryTask` is the one owner of that end, as community.docker's ``AnsibleDockerClient`` is.
"""
from __future__ import annotations

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._glue.module import (
    RegistryTask,
    describe,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    ConflictError,
    RegistryError,
    TransportError,
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


def test_fail_warns_and_scrubs_message_and_data() -> None:
    module = Recorder()
    with pytest.raises(Ended) as ended:
        RegistryTask(module, factory=Factory()).fail("token hunter2 refused", applied=["x hunter2"], msg_count=1)
    assert ended.value.how == "fail"
    assert ended.value.result == {"msg": "token ******** refused", "applied": ["x ********"], "msg_count": 1}
    assert module.warnings == ["registry says ******** is deprecated"]


def test_exit_warns_and_scrubs() -> None:
    module = Recorder()
    with pytest.raises(Ended) as ended:
        RegistryTask(module, factory=Factory()).exit({"changed": True, "note": "hunter2"})
    assert (ended.value.how, ended.value.result) == ("exit", {"changed": True, "note": "********"})
    assert module.warnings == ["registry says ******** is deprecated"]


def test_warn_scrubs() -> None:
    module = Recorder()
    RegistryTask(module, factory=Factory()).warn("a lease held by hunter2")
    assert module.warnings == ["a lease held by ********"]


def test_errors_fails_with_the_error_and_the_partial_result() -> None:
    module = Recorder()
    with pytest.raises(Ended) as ended, RegistryTask(module, factory=Factory()).errors(changed=False, src="a"):
        raise RegistryError("bad hunter2", status=500)
    result = ended.value.result
    assert ended.value.how == "fail" and result["msg"] == "bad ********"
    assert result["error"]["message"] == "bad ********" and (result["changed"], result["src"]) == (False, "a")
    assert module.warnings == ["registry says ******** is deprecated"]


def test_errors_without_a_factory_neither_warns_nor_scrubs() -> None:
    module = Recorder()
    with pytest.raises(Ended) as ended, RegistryTask(module).errors():
        raise RegistryError("bad hunter2")
    assert ended.value.result["msg"] == "bad hunter2" and module.warnings == []


def test_an_errors_partial_result_travels_beside_its_detail() -> None:
    module = Recorder()
    err = ConflictError("lost a race", detail={"lost": {"prod": "sha256:b"}},
                        partial={"changed": True, "tags": {"prod": {"after": "sha256:a"}}})
    with pytest.raises(Ended) as ended, RegistryTask(module, fail_results={"src": "x"}).errors():
        raise err
    result = ended.value.result
    assert result["tags"] == {"prod": {"after": "sha256:a"}} and result["changed"] is True and result["src"] == "x"
    assert "lost" not in result  # detail is the error's own facts, not result data
    assert result["error"]["type"] == "ConflictError"


def test_a_module_shaped_partial_replaces_the_errors_own() -> None:
    module = Recorder()
    err = ConflictError("guardrail", partial={"plan": [], "warnings": ["w"]})
    with pytest.raises(Ended) as ended:
        RegistryTask(module).fail_error(err, partial={"plan": []})
    assert "warnings" not in ended.value.result and ended.value.result["plan"] == []


def test_failure_message_words_the_hint_in_module_options() -> None:
    err = TransportError("TLS certificate verify failed for r.example (ping)", host="r.example", operation="ping",
                         hint="tls_untrusted", advice="trust the CA bundle")
    module = Recorder()
    with pytest.raises(Ended) as ended, RegistryTask(module).errors():
        raise err
    message = "TLS certificate verify failed for r.example (ping); set ca_path to your CA bundle or validate_certs: false"
    assert describe(err) == message
    assert ended.value.result["msg"] == message and ended.value.result["error"]["message"] == message
    assert ended.value.result["error"]["host"] == "r.example"
    assert str(err) == "TLS certificate verify failed for r.example (ping); trust the CA bundle"  # the client's words
