"""session_url: an upload Location naming http:// for the https host the client reached stays on https.

Pure URL logic, no server: the end-to-end proof is the TLS personality (see FINDINGS.md) when it runs.
"""
from __future__ import annotations

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._client.uploads import (
    session_url,
)


@pytest.mark.parametrize(("answered", "location", "expected"), [
    # Behind a TLS proxy the registry names http:// (distribution #123): kept on https, same host:port.
    ("https://reg.example/v2/a/blobs/uploads/", "http://reg.example/v2/a/blobs/uploads/u1?_state=x",
     "https://reg.example/v2/a/blobs/uploads/u1?_state=x"),
    ("https://reg.example:5000/v2/a/blobs/uploads/", "http://reg.example:5000/v2/a/blobs/uploads/u1",
     "https://reg.example:5000/v2/a/blobs/uploads/u1"),
    ("https://127.0.0.1:8443/v2/a/blobs/uploads/", "http://127.0.0.1/v2/a/blobs/uploads/u1",
     "https://127.0.0.1:8443/v2/a/blobs/uploads/u1"),
    # Relative and schemeless Locations resolve against the answer.
    ("https://reg.example/v2/a/blobs/uploads/", "/v2/a/blobs/uploads/u1", "https://reg.example/v2/a/blobs/uploads/u1"),
    # Another host or another explicit port is a real move: taken as sent.
    ("https://reg.example/v2/a/blobs/uploads/", "http://other.example/up/u1", "http://other.example/up/u1"),
    ("https://reg.example:5000/v2/a/blobs/uploads/", "http://reg.example:5001/u1", "http://reg.example:5001/u1"),
    # A plain-http registry keeps plain http; https stays https.
    ("http://127.0.0.1:5000/v2/a/blobs/uploads/", "http://127.0.0.1:5000/v2/a/u1", "http://127.0.0.1:5000/v2/a/u1"),
    ("https://reg.example/v2/a/blobs/uploads/", "https://reg.example/v2/a/u1", "https://reg.example/v2/a/u1"),
])
def test_session_url(answered: str, location: str, expected: str) -> None:
    assert session_url(answered, location) == expected
