"""Unit tests of the CBOR decoder and encoder that COSE envelopes need."""

from __future__ import annotations


import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.notation import (
    cbor,
)


# -- CBOR -----------------------------------------------------------------------------------------------
def test_cbor_round_trip_of_what_cose_uses():
    assert cbor.loads(cbor.dumps(["Signature1", b"\x01" * 300, b"", "é" * 30])) == \
        ["Signature1", b"\x01" * 300, b"", "é" * 30]
    assert cbor.loads(bytes.fromhex("c11a514b67b0")) == cbor.Tag(1, 1363896240)  # RFC 8949 appendix A
    assert cbor.loads(bytes.fromhex("a201020304")) == {1: 2, 3: 4}
    assert cbor.loads(bytes.fromhex("3903e7")) == -1000
    assert cbor.loads(bytes.fromhex("f93e00")) == 1.5
    assert cbor.loads(bytes.fromhex("83f4f5f6")) == [False, True, None]


@pytest.mark.parametrize("hexdata, message", [
    ("5f", "indefinite-length"), ("44aabb", "runs past the end"), ("a20102", "truncated"),
    ("0000", "1 bytes after"), ("a201020103", "key 1 twice"), ("62c328", "not UTF-8"),
    ("81" * 40 + "00", "nested too deeply"), ("f0", "simple value 16"),
])
def test_cbor_refuses_malformed_input(hexdata, message):
    with pytest.raises(cbor.CBORError, match=message):
        cbor.loads(bytes.fromhex(hexdata))
