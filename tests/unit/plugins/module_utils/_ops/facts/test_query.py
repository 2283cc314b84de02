"""The lookup's catalog terms (_ops/facts/query.py)."""
from __future__ import annotations

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import InvalidInputError
from ansible_collections.ocireg.registry.plugins.module_utils._ops.facts.query import split_catalog_term


@pytest.mark.parametrize("term,expected", [
    ("registry.example.com", ("registry.example.com", "")),
    ("registry.example.com:5000/team/", ("registry.example.com:5000", "team")),
    ("127.0.0.1:5000/a/b", ("127.0.0.1:5000", "a/b")),
])
def test_split_catalog_term(term, expected):
    assert split_catalog_term(term) == expected


def test_split_catalog_term_refuses_a_bad_prefix():
    with pytest.raises(InvalidInputError):
        split_catalog_term("registry.example.com/Team")
