"""Unit tests for merging cosign tag-scheme manifests (``graph.merge_attached``, pure).

The manifests are built with the rig's cosign builders (tests/rig/signing.py), which lay them out
as cosign does: one layer per signature, the signature in the layer annotation, the payloads
listed in the config's ``rootfs.diff_ids``.
"""
from __future__ import annotations

import json

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._model.digest import compute_digest
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import ManifestError
from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import parse_manifest
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.graph import merge_attached

from tests.rig import images
from tests.rig.signing import Signer, make_sig_manifest, simple_signing_payload

SUBJECT = "sha256:" + "ab" * 32


def sig(*signers: Signer, subject: str = SUBJECT, optional=None):
    payload = simple_signing_payload(subject, optional=optional)
    return make_sig_manifest([(payload, signer.sign_b64(payload)) for signer in signers])


def parsed(image):
    return parse_manifest(image.data, image.media_type)


def test_union_keeps_destination_layers_first_and_extends_the_config():
    a, b = Signer(), Signer()
    dest, src = sig(a), sig(b)
    merged = merge_attached(parsed(dest), parsed(src), dest.config.data, src.config.data)
    assert merged is not None
    doc = json.loads(merged.raw)
    assert doc["layers"] == dest.manifest["layers"] + src.manifest["layers"]
    # Same payload blob (same image), different signature annotation: both kept, nothing new to upload
    # beyond the descriptor.
    assert [layer.digest for layer in merged.new_layers] == [src.manifest["layers"][0]["digest"]]
    config = json.loads(merged.config)
    assert config["rootfs"]["diff_ids"] == [layer["digest"] for layer in doc["layers"]]
    assert doc["config"]["digest"] == compute_digest(merged.config)
    assert doc["config"]["size"] == len(merged.config)
    assert merged.media_type == dest.media_type
    # A parseable manifest: the merged bytes are what will be pushed.
    assert parse_manifest(merged.raw, merged.media_type).layers[1].annotations == \
        parsed(src).layers[0].annotations


def test_nothing_to_merge_when_the_destination_holds_every_layer():
    payload = simple_signing_payload(SUBJECT)
    by_a, by_b = (payload, Signer().sign_b64(payload)), (payload, Signer().sign_b64(payload))
    both, only_b = make_sig_manifest([by_a, by_b]), make_sig_manifest([by_b])
    assert merge_attached(parsed(both), parsed(only_b), both.config.data, only_b.config.data) is None
    assert merge_attached(parsed(both), parsed(both)) is None


def test_duplicate_layers_in_the_source_are_added_once_and_order_is_kept():
    payload = simple_signing_payload(SUBJECT)
    by_c = (payload, Signer().sign_b64(payload))
    dest = sig(Signer())
    src = make_sig_manifest([by_c, (payload, Signer().sign_b64(payload)), by_c])  # c twice: an attacker might
    merged = merge_attached(parsed(dest), parsed(src), dest.config.data, src.config.data)
    layers = json.loads(merged.raw)["layers"]
    assert len(layers) == 3
    assert layers[1:] == src.manifest["layers"][:2]


def test_config_without_diff_ids_is_kept():
    a, b = Signer(), Signer()
    dest, src = sig(a), sig(b)
    merged = merge_attached(parsed(dest), parsed(src), b"{}", src.config.data)
    assert merged.config is None
    assert json.loads(merged.raw)["config"] == dest.manifest["config"]


def test_an_index_is_not_merged():
    index = images.make_multiarch("idx")
    with pytest.raises(ManifestError, match="cosign attachments are image manifests"):
        merge_attached(parsed(index), parsed(sig(Signer())))
