"""docs/compatibility.md is generated from the registry personalities; the committed file must match."""
from __future__ import annotations

from tests.rig.personalities.table import ROOT, render


def test_committed_doc_equals_generated() -> None:
    committed = (ROOT / "docs" / "compatibility.md").read_text()
    assert committed == render(), "regenerate: python -m tests.rig.personalities.table > docs/compatibility.md"


def test_every_personality_and_quirk_cites_a_source() -> None:
    from tests.rig.personalities.registries import PERSONALITIES

    assert len(PERSONALITIES) == 10
    for data in PERSONALITIES.values():
        assert data.quirks, data.key
        for quirk in data.quirks:
            assert quirk.source.strip() and (quirk.before or quirk.after or quirk.seed), (data.key, quirk.name)
