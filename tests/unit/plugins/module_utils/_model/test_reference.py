"""Unit tests for image reference parsing and normalisation (Docker-compatible defaults)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
    InvalidReferenceError,
    RegistryError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import (
    NAME_TOTAL_LENGTH_MAX,
    Reference,
    is_loopback,
    normalize_registry,
    validate_repository,
    validate_tag,
)

D256 = "sha256:" + "ab" * 32
D512 = "sha512:" + "cd" * 64


class TestDockerNormalisation:
    """The table docker's reference.ParseNormalizedNamed would give for the same inputs."""

    @pytest.mark.parametrize(
        ("text", "registry", "repository", "tag", "digest"),
        [
            ("nginx", "docker.io", "library/nginx", None, None),
            ("nginx:1.25", "docker.io", "library/nginx", "1.25", None),
            ("library/nginx", "docker.io", "library/nginx", None, None),
            ("myuser/app", "docker.io", "myuser/app", None, None),
            ("myuser/team/app:v1", "docker.io", "myuser/team/app", "v1", None),
            ("docker.io/nginx", "docker.io", "library/nginx", None, None),
            ("docker.io/library/nginx", "docker.io", "library/nginx", None, None),
            ("index.docker.io/nginx", "docker.io", "library/nginx", None, None),
            ("registry-1.docker.io/myuser/app", "docker.io", "myuser/app", None, None),
            ("Docker.IO/nginx", "docker.io", "library/nginx", None, None),
            ("localhost/app", "localhost", "app", None, None),
            ("localhost:5000/app", "localhost:5000", "app", None, None),
            ("localhost:5000", "docker.io", "library/localhost", "5000", None),
            ("registry.example.com/app", "registry.example.com", "app", None, None),
            ("Registry.Example.COM/team/app:Tag_1", "registry.example.com", "team/app", "Tag_1", None),
            ("registry.example.com:5000/team/app:1.0", "registry.example.com:5000", "team/app", "1.0", None),
            ("127.0.0.1:5000/app", "127.0.0.1:5000", "app", None, None),
            ("[::1]:5000/app:dev", "[::1]:5000", "app", "dev", None),
            ("[2001:db8::1]/app", "[2001:db8::1]", "app", None, None),
            ("ghcr.io/owner/app@" + D256, "ghcr.io", "owner/app", None, D256),
            ("ghcr.io/owner/app:v1@" + D256, "ghcr.io", "owner/app", "v1", D256),
            ("nginx@" + D512, "docker.io", "library/nginx", None, D512),
            ("quay.io/a_b/c__d/e---f/g.h:latest", "quay.io", "a_b/c__d/e---f/g.h", "latest", None),
            ("example:5000/app", "example:5000", "app", None, None),
        ],
    )
    def test_parse(self, text, registry, repository, tag, digest):
        ref = Reference.parse(text)
        assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)

    def test_default_registry_is_used_when_there_is_no_host(self):
        ref = Reference.parse("team/app:1", default_registry="registry.example.com:5000")
        assert ref == Reference("registry.example.com:5000", "team/app", "1")

    def test_single_component_is_not_prefixed_on_other_registries(self):
        assert Reference.parse("app", default_registry="registry.example.com").repository == "app"

    def test_default_registry_is_normalised(self):
        assert Reference.parse("app", default_registry="index.docker.io").name == "docker.io/library/app"

    def test_invalid_default_registry(self):
        with pytest.raises(InvalidReferenceError, match="not a valid registry host"):
            Reference.parse("app", default_registry="bad host")


class TestAccessors:
    def test_str_is_canonical(self):
        assert str(Reference.parse("nginx")) == "docker.io/library/nginx"
        assert str(Reference.parse("index.docker.io/nginx:1")) == "docker.io/library/nginx:1"
        assert str(Reference.parse("r.example/a:t@" + D256)) == "r.example/a:t@" + D256

    def test_name(self):
        assert Reference.parse("r.example:5000/a/b:t@" + D256).name == "r.example:5000/a/b"

    @pytest.mark.parametrize(
        ("text", "identifier"),
        [("app", "latest"), ("app:v2", "v2"), ("app@" + D256, D256), ("app:v2@" + D256, D256)],
    )
    def test_identifier_prefers_digest_then_tag_then_latest(self, text, identifier):
        assert Reference.parse(text).identifier == identifier

    @pytest.mark.parametrize(
        ("text", "api_host"),
        [
            ("nginx", "registry-1.docker.io"),
            ("index.docker.io/a/b", "registry-1.docker.io"),
            ("ghcr.io/a/b", "ghcr.io"),
            ("localhost:5000/a", "localhost:5000"),
        ],
    )
    def test_api_host(self, text, api_host):
        assert Reference.parse(text).api_host == api_host

    def test_with_tag_drops_the_digest(self):
        ref = Reference.parse("r.example/a:old@" + D256).with_tag("new")
        assert (ref.tag, ref.digest) == ("new", None)

    def test_with_digest_keeps_the_tag(self):
        ref = Reference.parse("r.example/a:v1").with_digest(D512)
        assert (ref.tag, ref.digest) == ("v1", D512)
        assert str(ref) == "r.example/a:v1@" + D512

    def test_with_tag_validates(self):
        with pytest.raises(InvalidReferenceError, match="not a valid tag"):
            Reference.parse("a").with_tag("-bad")

    def test_with_digest_validates(self):
        with pytest.raises(InvalidInputError, match="not a valid digest"):
            Reference.parse("a").with_digest("sha256:short")

    def test_references_are_frozen_and_hashable(self):
        ref = Reference.parse("a:1")
        with pytest.raises(AttributeError):
            ref.tag = "2"  # type: ignore[misc]
        assert {ref, Reference.parse("docker.io/library/a:1")} == {ref}


class TestDirectConstruction:
    def test_constructor_normalises_like_parse(self):
        assert Reference("index.docker.io", "nginx", "1") == Reference.parse("nginx:1")

    def test_constructor_validates(self):
        with pytest.raises(InvalidReferenceError, match="must be lowercase"):
            Reference("r.example", "App")
        with pytest.raises(InvalidReferenceError, match="not a valid tag"):
            Reference("r.example", "app", tag="")
        with pytest.raises(InvalidInputError, match="not a valid digest"):
            Reference("r.example", "app", digest="md5:00")

    def test_constructor_checks_total_length(self):
        with pytest.raises(InvalidReferenceError, match="too long"):
            Reference("r.example", "a" * 250)


class TestParseErrors:
    def test_uppercase_repository_message(self):
        with pytest.raises(InvalidReferenceError) as info:
            Reference.parse("registry.example.com/App:1")
        assert str(info.value) == (
            "'registry.example.com/App:1' is not a valid image reference: repository names must be "
            "lowercase (expected [host[:port]/]name[:tag][@digest])"
        )

    @pytest.mark.parametrize(
        ("text", "reason"),
        [
            ("", "it is empty"),
            ("nginx ", "it contains whitespace"),
            ("ngi\tnx", "it contains whitespace"),
            ("Nginx", "repository names must be lowercase"),
            ("MyUser/app", "repository names must be lowercase"),
            ("a" * 64, "image ID"),
            ("nginx:", "the tag is empty"),
            ("nginx:-x", "invalid tag '-x'"),
            ("nginx:.x", "invalid tag '.x'"),
            ("nginx:a+b", "invalid tag 'a+b'"),
            ("nginx:" + "t" * 129, "the tag is 129 characters long, at most 128"),
            ("nginx@", "the digest after '@' is empty"),
            ("nginx@sha256:abc", "sha256 needs 64 hex characters, got 3"),
            ("nginx@md5:" + "a" * 32, "unsupported algorithm 'md5'"),
            ("nginx@" + "a" * 64, "missing the 'algorithm:' prefix"),
            ("nginx@sha256:" + "AB" * 32, "must be lowercase"),
            ("a@b@" + D256, "invalid digest"),
            ("/nginx", "empty path component"),
            ("r.example/", "the repository name is empty"),
            ("r.example//a", "empty path component"),
            ("r.example/a/", "empty path component"),
            ("a//b", "empty path component"),
            ("r.example/-a", "invalid repository path component '-a'"),
            ("r.example/a-", "invalid repository path component 'a-'"),
            ("r.example/a..b", "invalid repository path component 'a..b'"),
            ("r.example/a___b", "invalid repository path component 'a___b'"),
            ("r.example/.a", "invalid repository path component '.a'"),
            ("r.example/a_.b", "invalid repository path component 'a_.b'"),
            ("r.example/é", "invalid repository path component"),
            ("-r.example/a", "invalid registry host '-r.example'"),
            ("r..example/a", "invalid registry host 'r..example'"),
            ("r.example:port/a", "invalid registry host 'r.example:port'"),
            ("r.example:/a", "invalid registry host 'r.example:'"),
            ("[::1/a", "invalid registry host"),
            ("[zz::1]:5000/a", "invalid registry host '[zz::1]:5000'"),
            ("https://r.example/a", "an image reference takes no URL scheme: write 'r.example/a'"),
            ("https://127.0.0.1:5650/team/app:v1",
             "an image reference takes no URL scheme: write '127.0.0.1:5650/team/app:v1'"),
            ("HTTP://r.example/a@sha256:" + "a" * 64, "takes no URL scheme: write 'r.example/a@sha256:"),
            ("oci://r.example/a", "an image reference takes no URL scheme: write 'r.example/a'"),
            ("r.example/a:b:c", "invalid repository path component 'a:b'"),
        ],
    )
    def test_message_says_what_is_wrong_and_the_expected_form(self, text, reason):
        with pytest.raises(InvalidReferenceError) as info:
            Reference.parse(text)
        message = str(info.value)
        assert message.startswith(f"{text!r} is not a valid image reference: ")
        assert reason in message
        assert message.endswith("(expected [host[:port]/]name[:tag][@digest])")

    @pytest.mark.parametrize("value", [None, 5, b"nginx"])
    def test_non_string(self, value):
        with pytest.raises(InvalidReferenceError, match="must be a string"):
            Reference.parse(value)

    def test_invalid_reference_is_an_input_error(self):
        assert issubclass(InvalidReferenceError, InvalidInputError)

    def test_total_length_limit_counts_host_and_slash(self):
        host = "registry.example.org:5000"
        longest = "a" * (NAME_TOTAL_LENGTH_MAX - len(host) - 1)
        assert Reference.parse(f"{host}/{longest}").repository == longest
        with pytest.raises(InvalidReferenceError, match="host/repository is 256 characters long, at most 255"):
            Reference.parse(f"{host}/{longest}a")

    def test_total_length_limit_counts_docker_hub_normalisation(self):
        # docker.io/library/ is 18 characters, so 237 is the longest official-image name.
        assert Reference.parse("a" * 237).repository == "library/" + "a" * 237
        with pytest.raises(InvalidReferenceError, match="256 characters long"):
            Reference.parse("a" * 238)

    def test_longest_tag(self):
        assert Reference.parse("a:" + "T" * 128).tag == "T" * 128


class TestParseRelative:
    BASE = Reference.parse("r.example/team/app:v1@" + D256)

    def test_tag_only_replaces_tag_and_digest(self):
        assert Reference.parse_relative(":staging", self.BASE) == Reference("r.example", "team/app", "staging")

    def test_digest_only(self):
        assert Reference.parse_relative("@" + D512, self.BASE) == Reference("r.example", "team/app", None, D512)

    def test_tag_and_digest(self):
        assert Reference.parse_relative(":s@" + D512, self.BASE) == Reference("r.example", "team/app", "s", D512)

    def test_full_reference_ignores_the_base(self):
        assert Reference.parse_relative("other.example/x:1", self.BASE) == Reference("other.example", "x", "1")
        assert Reference.parse_relative("nginx", self.BASE) == Reference("docker.io", "library/nginx")

    @pytest.mark.parametrize(
        ("text", "reason"),
        [
            (":", "the tag is empty"),
            (":-bad", "invalid tag"),
            ("@", "the digest after '@' is empty"),
            ("@sha256:1", "sha256 needs 64"),
            (": x", "whitespace"),
            (":a/b", "invalid tag 'a/b'"),
        ],
    )
    def test_errors_quote_the_relative_text(self, text, reason):
        with pytest.raises(InvalidReferenceError) as info:
            Reference.parse_relative(text, self.BASE)
        assert str(info.value).startswith(f"{text!r} is not a valid image reference")
        assert reason in str(info.value)


class TestIsLoopback:
    @pytest.mark.parametrize(
        "host",
        [
            "localhost", "LOCALHOST", "localhost:5000", "localhost.", "127.0.0.1", "127.0.0.1:5000",
            "127.1.2.3:443", "::1", "[::1]", "[::1]:5000", "0:0:0:0:0:0:0:1",
        ],
    )
    def test_loopback(self, host):
        assert is_loopback(host)

    @pytest.mark.parametrize(
        "host",
        [
            "", "docker.io", "registry.example.com:5000", "10.0.0.1", "128.0.0.1:5000", "[2001:db8::1]:5000",
            "localhost.example.com", "mylocalhost", "0.0.0.0", "[::1", None, 127,
        ],
    )
    def test_not_loopback(self, host):
        assert not is_loopback(host)


class TestNormalizeRegistry:
    @pytest.mark.parametrize(
        ("host", "expected"),
        [
            ("docker.io", "docker.io"),
            ("index.docker.io", "docker.io"),
            ("registry-1.docker.io", "docker.io"),
            ("https://index.docker.io/v1/", "docker.io"),
            ("http://Registry.Example.com:5000", "registry.example.com:5000"),
            (" ghcr.io ", "ghcr.io"),
            ("[::1]:5000", "[::1]:5000"),
            ("localhost", "localhost"),
            ("docker.io:443", "docker.io:443"),
        ],
    )
    def test_normalise(self, host, expected):
        assert normalize_registry(host) == expected

    @pytest.mark.parametrize("host", ["", "bad host", "-x.example", "x.example:abc", "https://", None])
    def test_invalid(self, host):
        with pytest.raises(InvalidReferenceError, match="not a valid registry host.*expected host\\[:port\\]"):
            normalize_registry(host)


class TestValidateTagAndRepository:
    @pytest.mark.parametrize("tag", ["latest", "v1.2.3", "_x", "1", "A-b_c.d", "x" * 128])
    def test_valid_tags(self, tag):
        assert validate_tag(tag) == tag

    @pytest.mark.parametrize(
        ("tag", "reason"),
        [
            ("", "empty"), (".x", "invalid tag"), ("-x", "invalid tag"), ("a b", "invalid tag"),
            ("a:b", "invalid tag"), ("x" * 129, "129 characters"), (None, "must be a string"),
        ],
    )
    def test_invalid_tags(self, tag, reason):
        with pytest.raises(InvalidReferenceError, match="not a valid tag") as info:
            validate_tag(tag)
        assert reason in str(info.value)

    @pytest.mark.parametrize("name", ["a", "library/nginx", "a/b/c", "a.b_c__d-e--f", "0"])
    def test_valid_repositories(self, name):
        assert validate_repository(name) == name

    @pytest.mark.parametrize(
        ("name", "reason"),
        [
            ("", "empty"), ("App", "must be lowercase"), ("a//b", "empty path component"),
            ("a/", "empty path component"), ("a:b", "invalid repository path component"),
            ("a" * 256, "256 characters long"), (3, "must be a string"),
        ],
    )
    def test_invalid_repositories(self, name, reason):
        with pytest.raises(InvalidReferenceError, match="not a valid repository name") as info:
            validate_repository(name)
        assert reason in str(info.value)


# --- property tests -----------------------------------------------------------------------------

_LOWER = "abcdefghijklmnopqrstuvwxyz0123456789"
_alnum = st.text(_LOWER, min_size=1, max_size=6)
_separator = st.sampled_from([".", "_", "__", "-", "--", "---"])


@st.composite
def path_components(draw, separators=_separator):
    parts = [draw(_alnum)]
    for _unused in range(draw(st.integers(0, 2))):
        parts += [draw(separators), draw(_alnum)]
    return "".join(parts)


@st.composite
def domain_labels(draw):
    inner = draw(st.text(_LOWER + "ABCXYZ-", max_size=5))
    return draw(st.sampled_from(_LOWER + "QZ")) + (inner + draw(st.sampled_from(_LOWER)) if inner else "")


@st.composite
def hosts(draw):
    kind = draw(st.sampled_from(["dns", "localhost", "ipv6", "hub"]))
    if kind == "hub":
        return draw(st.sampled_from(["docker.io", "index.docker.io", "registry-1.docker.io"]))
    if kind == "localhost":
        host = "localhost"
    elif kind == "ipv6":
        host = "[" + draw(st.sampled_from(["::1", "2001:db8::1", "fe80::a:b"])) + "]"
    else:
        host = ".".join(draw(st.lists(domain_labels(), min_size=1, max_size=3)))
    port = draw(st.one_of(st.none(), st.integers(1, 65535)))
    if port is None and kind == "dns" and "." not in host:
        port = 5000  # a dotless, portless first component would be read as a Docker Hub namespace
    return host if port is None else f"{host}:{port}"


_TAG_CHARS = "abcXYZ019_.-"


@st.composite
def reference_parts(draw):
    """(text, host or None, path, tag or None, digest or None) of a valid reference."""
    host = draw(st.one_of(st.none(), hosts()))
    # Without a host, a first component holding "." would be taken for one (as docker does).
    first = draw(path_components(st.sampled_from(["_", "__", "-", "--"]) if host is None else _separator))
    path = "/".join([first] + draw(st.lists(path_components(), max_size=2)))
    text = path if host is None else f"{host}/{path}"
    tag = digest = None
    if draw(st.booleans()):
        tag = draw(st.sampled_from("aZ9_")) + draw(st.text(_TAG_CHARS, max_size=20))
        text += ":" + tag
    if draw(st.booleans()):
        algorithm, length = draw(st.sampled_from([("sha256", 64), ("sha512", 128)]))
        digest = f"{algorithm}:" + draw(st.text("0123456789abcdef", min_size=length, max_size=length))
        text += "@" + digest
    return text, host, path, tag, digest


def reference_texts():
    return reference_parts().map(lambda parts: parts[0])


@settings(max_examples=300, deadline=None, database=None)
@given(reference_parts())
def test_round_trip_through_canonical_string(parts):
    text, host, path, tag, digest = parts
    ref = Reference.parse(text)
    assert Reference.parse(str(ref)) == ref
    assert str(Reference.parse(str(ref))) == str(ref)
    registry = "docker.io" if host is None else normalize_registry(host)
    if registry == "docker.io" and "/" not in path:
        path = "library/" + path
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, path, tag, digest)


def _parse_or_registry_error(text):
    try:
        ref = Reference.parse(text)
    except RegistryError as exc:
        assert repr(text) in str(exc)
        return
    assert Reference.parse(str(ref)) == ref


@settings(max_examples=2000, deadline=None, database=None)
@given(st.one_of(st.text(max_size=80), st.text("ab0.-_/:@[]Ax", max_size=40)))
def test_parse_only_raises_registry_errors(text):
    _parse_or_registry_error(text)


@settings(max_examples=500, deadline=None, database=None)
@given(reference_texts(), st.integers(0, 200), st.sampled_from("/:@A.[] -_"))
def test_parse_of_damaged_references_only_raises_registry_errors(text, position, character):
    _parse_or_registry_error(text[:position] + character + text[position + 1:])


@settings(max_examples=500, deadline=None, database=None)
@given(st.text(max_size=30))
def test_parse_relative_only_raises_registry_errors(text):
    base = Reference.parse("r.example/a")
    try:
        ref = Reference.parse_relative(text, base)
    except RegistryError as exc:
        assert repr(text) in str(exc)
        return
    # What parses round-trips, and a relative reference stays in the base's repository, spelled as given.
    assert Reference.parse(str(ref)) == ref
    if text[:1] in (":", "@"):
        assert (ref.registry, ref.repository) == (base.registry, base.repository)
        assert str(ref) == base.name + text
    else:
        assert ref == Reference.parse(text)
