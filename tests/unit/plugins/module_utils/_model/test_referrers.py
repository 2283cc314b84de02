"""Unit tests for _model/referrers.py: what counts as a subject's referrers index."""
from __future__ import annotations

import hashlib

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._model.referrers import (
    entries_refusal,
    fallback_refusal,
)


def dg(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


SUBJECT, INDEX, SBOM, CHILD = dg("subject"), dg("index"), dg("sbom"), dg("child")


def test_a_real_fallback_index_is_one():
    assert fallback_refusal(SUBJECT, INDEX, True) is None
    assert fallback_refusal(SUBJECT, INDEX, True, {SBOM: SUBJECT}) is None


def test_the_subject_itself_is_no_referrers_index():
    """GitLab resolves the missing tag sha256-<hex> to sha256:<hex> (oras-project/oras-go #1396)."""
    assert "subject itself" in fallback_refusal(SUBJECT, SUBJECT, True)


def test_an_image_manifest_is_no_referrers_index():
    assert fallback_refusal(SUBJECT, INDEX, False) == "it is not an index"


@pytest.mark.parametrize("judged", [{CHILD: None}, {CHILD: dg("other")}, {CHILD: None, SBOM: dg("other")}])
def test_entries_that_all_name_another_subject_or_none_make_no_referrers_index(judged):
    assert "names it" in fallback_refusal(SUBJECT, INDEX, True, judged)
    assert entries_refusal(SUBJECT, judged) is not None


def test_entries_that_cannot_be_judged_are_not_held_against_it():
    assert entries_refusal(SUBJECT, {}) is None
    assert entries_refusal(SUBJECT, {CHILD: None, SBOM: SUBJECT}) is None
