"""Unit tests of plugins/module_utils/_client/auth/challenge.py: WWW-Authenticate parsing (with
hypothesis fuzzing), scopes, and the realm checks; all pure.

The Authenticator's token flows are in test_token.py.
"""
from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.ocireg.registry.plugins.module_utils._client.auth.challenge import (
    REGISTRY_CATALOG_SCOPE,
    Challenge,
    check_realm,
    clean_scopes,
    parse_www_authenticate,
    scope_for,
    scopes_cover,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    AuthenticationError,
    InvalidInputError,
)

HOST = "registry.example.com"


# -- WWW-Authenticate parsing -------------------------------------------------------------


def test_parses_the_spec_example() -> None:
    header = ('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
              'scope="repository:samalba/my-app:pull,push"')
    assert parse_www_authenticate(header) == [Challenge("bearer", {
        "realm": "https://auth.docker.io/token",
        "service": "registry.docker.io",
        "scope": "repository:samalba/my-app:pull,push",
    })]


def test_parses_several_challenges_in_one_header() -> None:
    header = 'Bearer realm="https://a/token",service="svc",scope="a b", Basic realm="x"'
    found = parse_www_authenticate(header)
    assert [c.scheme for c in found] == ["bearer", "basic"]
    assert found[0].scopes == ["a", "b"]
    assert found[1].params == {"realm": "x"}


def test_quoted_strings_keep_escaped_quotes_commas_and_spaces_verbatim() -> None:
    header = r'Bearer realm="https://h/t?a=1,b=2", service="my \"svc\", v2", scope="repository:A/b:pull push"'
    (challenge,) = parse_www_authenticate(header)
    assert challenge.realm == "https://h/t?a=1,b=2"
    assert challenge.service == 'my "svc", v2'
    assert challenge.params["scope"] == "repository:A/b:pull push"


def test_scheme_and_param_names_are_case_insensitive_values_are_not() -> None:
    (challenge,) = parse_www_authenticate('BEARER Realm="https://H/Token",SERVICE=Svc')
    assert challenge == Challenge("bearer", {"realm": "https://H/Token", "service": "Svc"})


def test_whitespace_and_empty_list_elements_are_tolerated() -> None:
    header = ' ,\tBearer   realm = "r" ,  , service\t=\t"s"  ,, Basic ,'
    assert parse_www_authenticate(header) == [
        Challenge("bearer", {"realm": "r", "service": "s"}), Challenge("basic", {}),
    ]


def test_token68_is_kept_apart_from_params() -> None:
    found = parse_www_authenticate("Negotiate YWJj+/==, Basic realm=foo")
    assert found == [Challenge("negotiate", {}, "YWJj+/=="), Challenge("basic", {"realm": "foo"})]
    assert parse_www_authenticate("Bearer realm=") == [Challenge("bearer", {}, "realm=")]  # valid token68


def test_unquoted_url_values_are_accepted_as_real_registries_send_them() -> None:
    (challenge,) = parse_www_authenticate("Bearer realm=https://auth.example.com/token,scope=repository:a/b:pull")
    assert challenge.realm == "https://auth.example.com/token"
    assert challenge.scopes == ["repository:a/b:pull"]


def test_insufficient_scope_error_param() -> None:
    (challenge,) = parse_www_authenticate('Bearer realm="r",error="insufficient_scope",scope="repository:a:push"')
    assert challenge.error == "insufficient_scope"


def test_first_of_duplicate_params_wins() -> None:
    (challenge,) = parse_www_authenticate('Bearer realm="first", realm="second"')
    assert challenge.realm == "first"


def test_empty_header_has_no_challenges() -> None:
    assert parse_www_authenticate("") == []
    assert parse_www_authenticate(" , ") == []


@pytest.mark.parametrize("header", [
    'Bearer realm="unterminated',
    'realm="no scheme"',
    'Bearer realm=, service="x"',
    'Bearer realm="a" service="b"',
    "Bearer @@@",
    '"quoted"',
    "Bearer realm=\"x\",\n service=\"y\"",
    "Basic\x00",
    'Bearer realm="trailing backslash\\',
])
def test_malformed_headers_raise_invalid_input(header: str) -> None:
    with pytest.raises(InvalidInputError, match="malformed WWW-Authenticate header"):
        parse_www_authenticate(header)


def test_non_text_header_raises_invalid_input() -> None:
    with pytest.raises(InvalidInputError):
        parse_www_authenticate(b"Bearer realm=x")  # type: ignore[arg-type]


def _parse_or_invalid(header: str) -> list[Challenge] | None:
    try:
        return parse_www_authenticate(header)
    except InvalidInputError:
        return None


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=120))
def test_fuzz_any_text_parses_or_raises_invalid_input_only(header: str) -> None:
    found = _parse_or_invalid(header)
    assert found is None or all(isinstance(c, Challenge) and c.scheme == c.scheme.lower() for c in found)


# Random strings over the characters that matter to the grammar reach the
# parser's deeper branches far more often than arbitrary unicode does.
_GRAMMAR_CHARS = ' \t,="\\=/+-.:_~Bbearerasicalm' + "\n\x00é"


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=_GRAMMAR_CHARS, max_size=60))
def test_fuzz_grammar_characters_parse_or_raise_invalid_input_only(header: str) -> None:
    _parse_or_invalid(header)


_tokens = st.text(alphabet=string.ascii_letters + string.digits + "-_.", min_size=1, max_size=10)
_values = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


_scheme_strategy = st.sampled_from(["Bearer", "Basic", "Negotiate", "X-Custom"])
_param_strategy = st.tuples(st.sampled_from(["realm", "service", "scope", "error", "Realm"]),
                            st.text(alphabet='\\", =a/:é', max_size=8))


@st.composite
def _damaged_headers(draw) -> str:
    """A well-formed header, then cut and spliced at random: unterminated quotes, trailing escapes, stray '='."""
    challenges = draw(st.lists(st.tuples(_scheme_strategy, st.lists(_param_strategy, max_size=3)), min_size=1,
                               max_size=3))
    header = ", ".join(f"{scheme} " + ",".join(f"{k}={_quote(v)}" for k, v in params) for scheme, params in challenges)
    cut = draw(st.integers(0, len(header)))
    skip = draw(st.integers(0, 3))
    splice = draw(st.text(alphabet=_GRAMMAR_CHARS, max_size=3))
    return header[:cut] + splice + header[cut + skip:] if draw(st.booleans()) else header[:cut]


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_damaged_headers())
def test_fuzz_damaged_headers_parse_or_raise_invalid_input_only(header: str) -> None:
    _parse_or_invalid(header)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(_tokens, st.dictionaries(_tokens, _values, min_size=1, max_size=4)), min_size=1, max_size=3),
       st.sampled_from([",", ", ", " ,\t"]))
def test_round_trip_of_generated_challenges(challenges: list[tuple[str, dict[str, str]]], sep: str) -> None:
    """Any params quoted the RFC way come back verbatim (names lower-cased, first duplicate wins)."""
    header = sep.join(f"{scheme} " + sep.join(f"{k}={_quote(v)}" for k, v in params.items())
                      for scheme, params in challenges)
    expected = []
    for scheme, params in challenges:
        lowered: dict[str, str] = {}
        for key, value in params.items():
            lowered.setdefault(key.lower(), value)
        expected.append(Challenge(scheme.lower(), lowered))
    assert parse_www_authenticate(header) == expected


# -- scopes --------------------------------------------------------------------------------


def test_scope_for_builds_the_spec_form() -> None:
    assert scope_for("team/app", ["push", "pull", "pull"]) == "repository:team/app:pull,push"
    assert scope_for("localhost:5000/a", ["pull"]) == "repository:localhost:5000/a:pull"
    assert REGISTRY_CATALOG_SCOPE == "registry:catalog:*"


@pytest.mark.parametrize("repository, actions", [("", ["pull"]), ("a b", ["pull"]), ("/a", ["pull"]),
                                                 ("a", []), ("a", ["Pull"]), ("a", ["pull,push"])])
def test_scope_for_rejects_bad_input(repository: str, actions: list[str]) -> None:
    with pytest.raises(InvalidInputError):
        scope_for(repository, actions)


def test_clean_scopes_merges_actions_per_resource_and_sorts() -> None:
    assert clean_scopes(["repository:b:push", "repository:a:pull", "repository:b:pull", " ", "registry:catalog:*",
                         "repository:localhost:5000/x:pull", "weird"]) == (
        "registry:catalog:*", "repository:a:pull", "repository:b:pull,push", "repository:localhost:5000/x:pull",
        "weird",
    )
    assert clean_scopes(["repository:a:pull", "repository:a:*"]) == ("repository:a:*",)


def test_scopes_cover() -> None:
    granted = clean_scopes(["repository:a:pull,push", "repository:b:pull", "registry:catalog:*"])
    assert scopes_cover(granted, ["repository:a:pull"])
    assert scopes_cover(granted, ["repository:a:push", "repository:b:pull"])
    assert scopes_cover(granted, [])
    assert scopes_cover(granted, ["registry:catalog:*"])
    assert not scopes_cover(granted, ["repository:b:push"])
    assert not scopes_cover(granted, ["repository:c:pull"])
    assert scopes_cover(["repository:a:*"], ["repository:a:delete"])
    assert scopes_cover(["odd"], ["odd"]) and not scopes_cover([], ["odd"])


# -- realm checks (pure decisions) ---------------------------------------------------------


def test_https_realm_on_any_host_is_accepted() -> None:
    assert check_realm("https://auth.example.com/token", HOST, frozenset(), with_credentials=True)


def test_plain_http_realm_on_loopback_is_accepted_with_credentials() -> None:
    for realm in ("http://127.0.0.1:5001/token", "http://localhost/token", "http://[::1]:8/t"):
        assert check_realm(realm, HOST, frozenset(), with_credentials=True) == realm


def test_plain_http_realm_on_a_foreign_host_is_refused_with_credentials() -> None:
    with pytest.raises(AuthenticationError, match="refusing to send credentials over an unencrypted"):
        check_realm("http://auth.example.com/token", HOST, frozenset({HOST}), with_credentials=True)


def test_plain_http_realm_needs_a_plain_http_registry_when_anonymous() -> None:
    realm = "http://auth.example.com/token"
    assert check_realm(realm, HOST, frozenset({HOST}), with_credentials=False) == realm
    assert check_realm(realm, "127.0.0.1:5000", frozenset(), with_credentials=False) == realm
    with pytest.raises(AuthenticationError):
        check_realm(realm, HOST, frozenset(), with_credentials=False)


def test_plain_http_realm_on_a_host_the_user_allowed_plain_http_for() -> None:
    realm = "http://auth.lan:8080/token"
    assert check_realm(realm, "registry.lan", frozenset({"auth.lan:8080"}), with_credentials=True) == realm


@pytest.mark.parametrize("realm", [None, "", "/token", "ftp://h/token", "https:///token", "token",
                                   "https://user:pw@auth.example.com/token", "http://h:notaport/t"])
def test_unusable_realms_are_refused(realm: str | None) -> None:
    with pytest.raises(AuthenticationError) as info:
        check_realm(realm, HOST, frozenset(), with_credentials=False)
    assert "user:pw" not in str(info.value)
