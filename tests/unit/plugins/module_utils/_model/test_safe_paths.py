"""Names that stay inside a directory (_model/safe_paths.py): tar entry names, link targets, path selections."""
from __future__ import annotations

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._model.safe_paths import (
    UnsafePathError,
    name_parts,
    resolve_link_target,
    selection,
    symlink_escapes,
)


@pytest.mark.parametrize("name", ["/etc/passwd", "../x", "a/../../x", "a/..", "x\x00y", "", "/"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(UnsafePathError):
        name_parts(name)


def test_names_are_cleaned() -> None:
    assert name_parts("./usr//bin/./tool/") == ("usr", "bin", "tool")


def test_symlink_escape_and_resolution() -> None:
    assert symlink_escapes(("a", "l"), "../../etc")
    assert not symlink_escapes(("a", "l"), "../etc")
    assert not symlink_escapes(("l",), "/etc")  # absolute: read inside the root
    assert resolve_link_target(("a", "l"), "/../../etc") == ("etc",)
    assert resolve_link_target(("a", "l"), "../../../etc") == ("etc",)
    assert selection(["/usr/bin", "etc/"]) == (("usr", "bin"), ("etc",))
    assert selection(["/"]) == ()
