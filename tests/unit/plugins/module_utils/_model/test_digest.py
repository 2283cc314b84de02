"""Unit tests for digest validation, computation and streaming verification."""
from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.ocireg.registry.plugins.module_utils._model.digest import (
    ALGORITHMS,
    Hasher,
    compute_digest,
    validate_digest,
    verify_stream,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    DigestMismatchError,
    InvalidDigestError,
    RegistryError,
)

HELLO_SHA256 = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
HELLO_SHA512 = (
    "sha512:9b71d224bd62f3785d96d46ad3ea3d73319bfbc2890caadae2dff72519673ca7"
    "2323c3d99ba5c11d7c7acc6e14b8c5da0c4663475c2e5c3adef46f73bcdec043"
)
EMPTY_SHA256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


class TestValidateDigest:
    @pytest.mark.parametrize("digest", [HELLO_SHA256, HELLO_SHA512, EMPTY_SHA256])
    def test_valid_digests_are_returned_unchanged(self, digest):
        assert validate_digest(digest) == digest

    @pytest.mark.parametrize(
        ("digest", "reason"),
        [
            ("", "missing the 'algorithm:' prefix"),
            ("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", "missing the 'algorithm:' prefix"),
            ("md5:5d41402abc4b2a76b9719d911017c592", "unsupported algorithm 'md5'"),
            ("sha384:" + "a" * 96, "unsupported algorithm 'sha384'"),
            ("SHA256:" + "a" * 64, "malformed algorithm 'SHA256'"),
            (":" + "a" * 64, "malformed algorithm ''"),
            ("sha256:" + "A" * 64, "the hex part must be lowercase"),
            ("sha256:" + "g" * 64, "must be hex characters"),
            ("sha256:", "must be hex characters"),
            ("sha256:" + "a" * 63, "sha256 needs 64 hex characters, got 63"),
            ("sha256:" + "a" * 65, "sha256 needs 64 hex characters, got 65"),
            ("sha512:" + "a" * 64, "sha512 needs 128 hex characters, got 64"),
            ("sha256:" + "a" * 63 + "\n", "must be hex characters"),
            ("sha256: " + "a" * 64, "must be hex characters"),
        ],
    )
    def test_invalid_digests_say_what_is_wrong(self, digest, reason):
        with pytest.raises(InvalidDigestError) as info:
            validate_digest(digest)
        message = str(info.value)
        assert reason in message
        assert repr(digest) in message
        assert "expected sha256:<64 lowercase hex>" in message

    @pytest.mark.parametrize("value", [None, 42, b"sha256:abc", ["sha256"]])
    def test_non_strings_are_refused(self, value):
        with pytest.raises(InvalidDigestError, match="must be a string"):
            validate_digest(value)

    def test_supported_algorithms_are_exactly_sha256_and_sha512(self):
        assert ALGORITHMS == {"sha256": 64, "sha512": 128}


class TestComputeDigest:
    def test_sha256_is_the_default(self):
        assert compute_digest(b"hello") == HELLO_SHA256

    def test_sha512(self):
        assert compute_digest(b"hello", "sha512") == HELLO_SHA512

    def test_empty_content(self):
        assert compute_digest(b"") == EMPTY_SHA256

    @pytest.mark.parametrize("data", [bytearray(b"hello"), memoryview(b"hello")])
    def test_bytes_like_inputs(self, data):
        assert compute_digest(data) == HELLO_SHA256

    @pytest.mark.parametrize("algorithm", ["md5", "sha1", "SHA256", ""])
    def test_unsupported_algorithm(self, algorithm):
        with pytest.raises(InvalidDigestError, match="unsupported digest algorithm"):
            compute_digest(b"hello", algorithm)


class TestHasher:
    def test_streams_and_counts_bytes(self):
        hasher = Hasher()
        for chunk in (b"he", b"", b"llo"):
            hasher.update(chunk)
        assert hasher.size == 5
        assert hasher.digest == HELLO_SHA256
        assert hasher.algorithm == "sha256"
        assert hasher.expected is None
        assert hasher.verify() == HELLO_SHA256

    def test_algorithm_is_taken_from_an_expected_digest(self):
        hasher = Hasher(HELLO_SHA512)
        hasher.update(b"hello")
        assert hasher.algorithm == "sha512"
        assert hasher.verify() == HELLO_SHA512

    def test_mismatch_names_both_digests_and_says_corrupted(self):
        hasher = Hasher(HELLO_SHA256)
        hasher.update(b"hellO")
        with pytest.raises(DigestMismatchError) as info:
            hasher.verify()
        message = str(info.value)
        assert HELLO_SHA256 in message
        assert compute_digest(b"hellO") in message
        assert "corrupted or changed in transit" in message
        assert info.value.detail == {"expected": HELLO_SHA256, "actual": compute_digest(b"hellO")}

    def test_size_is_verified_when_given(self):
        hasher = Hasher(HELLO_SHA256, expected_size=6)
        hasher.update(b"hello")
        with pytest.raises(DigestMismatchError, match="has 5 bytes instead of the 6 announced"):
            hasher.verify()

    def test_right_size_and_digest_pass(self):
        hasher = Hasher(HELLO_SHA256, expected_size=5)
        hasher.update(b"hello")
        assert hasher.verify() == HELLO_SHA256

    def test_size_only_verification(self):
        hasher = Hasher("sha256", expected_size=2)
        hasher.update(b"abc")
        with pytest.raises(DigestMismatchError, match="3 bytes instead of the 2"):
            hasher.verify()

    def test_invalid_expected_digest_is_refused_up_front(self):
        with pytest.raises(InvalidDigestError):
            Hasher("sha256:abc")

    def test_unsupported_algorithm_is_refused(self):
        with pytest.raises(InvalidDigestError, match="unsupported digest algorithm"):
            Hasher("md5")

    @pytest.mark.parametrize("size", [-1, True])
    def test_bad_expected_size(self, size):
        with pytest.raises(InvalidDigestError, match="non-negative"):
            Hasher("sha256", expected_size=size)


class TestVerifyStream:
    def test_yields_every_chunk_unchanged(self):
        chunks = [b"he", b"ll", b"o"]
        assert list(verify_stream(iter(chunks), HELLO_SHA256, size=5)) == chunks

    def test_size_is_optional(self):
        assert b"".join(verify_stream([b"hello"], HELLO_SHA256)) == b"hello"

    def test_mismatch_is_raised_only_after_the_last_chunk(self):
        seen = []
        stream = verify_stream([b"hel", b"lO"], HELLO_SHA256)
        with pytest.raises(DigestMismatchError, match="corrupted or changed in transit"):
            for chunk in stream:
                seen.append(chunk)
        assert seen == [b"hel", b"lO"]

    def test_short_content_fails_on_size(self):
        with pytest.raises(DigestMismatchError, match="4 bytes instead of the 5"):
            list(verify_stream([b"hell"], HELLO_SHA256, size=5))

    def test_oversized_content_fails_before_the_excess_chunk_is_yielded(self):
        produced = []

        def source():
            for chunk in (b"hel", b"lo!", b"never read"):
                produced.append(chunk)
                yield chunk

        seen = []
        with pytest.raises(DigestMismatchError, match="larger than the 5 bytes announced") as info:
            for chunk in verify_stream(source(), HELLO_SHA256, size=5):
                seen.append(chunk)
        assert seen == [b"hel"]
        assert produced == [b"hel", b"lo!"]
        assert type(info.value) is DigestMismatchError  # pylint: disable=unidiomatic-typecheck

    def test_invalid_digest_fails_when_iteration_starts(self):
        with pytest.raises(InvalidDigestError):
            next(verify_stream([b"x"], "sha256:nope"))

    @given(st.lists(st.binary(max_size=64), max_size=8))
    def test_any_chunking_verifies_against_the_whole(self, chunks):
        data = b"".join(chunks)
        for algorithm in ALGORITHMS:
            assert list(verify_stream(chunks, compute_digest(data, algorithm), len(data))) == chunks


@settings(max_examples=2000, deadline=None, database=None)
@given(
    st.one_of(
        st.text(max_size=140),
        st.builds(
            "{}:{}".format,
            st.sampled_from(["sha256", "sha512", "SHA256", "md5", "", "sha256+b64"]),
            st.one_of(st.text("0123456789abcdef", max_size=130), st.text("0123456789abcdefABCg:", max_size=130)),
        ),
    )
)
def test_validate_digest_only_raises_registry_errors(text):
    try:
        assert validate_digest(text) == text
    except RegistryError:
        return
    algorithm, _unused, encoded = text.partition(":")
    assert len(encoded) == ALGORITHMS[algorithm]
    assert hashlib.new(algorithm)  # the algorithm really exists in hashlib
