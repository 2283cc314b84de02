# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
name: registry
short_description: Read digests, tags, platforms, configs and more from OCI and Docker registries
version_added: 0.1.0
author:
  - ocireg.registry contributors (@ocireg)
description:
  - Answers one question (O(query)) about each term, straight from the registry's HTTP API,
    on the controller. No Docker daemon or skopeo is needed.
  - Terms are image references, C(host/repository:tag) or C(host/repository@sha256:...); without a
    host the image is on Docker Hub, without a tag or digest C(latest) is used.
    For O(query=repositories) a term is C(host) or C(host/prefix).
  - Terms are answered concurrently, at most O(max_concurrency) at a time.
  - "Queries with one value per term (V(digest), V(exists), V(config), V(labels), V(manifest))
    return a list with one element per term, in term order: C(lookup()) with one term gives that
    element itself, as every lookup does."
  - "Queries whose answer is a list (V(tags), V(platforms), V(referrers), V(repositories)) return
    the elements of all terms in one flat list, as C(ansible.builtin.fileglob) does. Use
    C(query()) or C(wantlist=true) to get a list even for one term (C(lookup()) joins a list of
    strings with commas), and give one term per call when you need the answers apart."
  - Options are given only as keyword arguments of the lookup (C(username=...)); they are not read
    from variables or environment variables. Credentials left out are read from the Docker or
    podman auth files, as for the modules (see O(auth_file)).
  - O(username), O(password) and O(registry_token) are for the one registry the terms name; with
    terms on several registries they are refused, and O(registry_auth) gives each registry its own.
options:
  _terms:
    description:
      - Image references, or registry hosts with an optional repository prefix for O(query=repositories).
    type: list
    elements: str
    required: true
  query:
    description:
      - What to return for each term.
      - V(digest) the manifest digest the tag points to (of the O(platform)'s image, when set).
      - V(exists) V(true) or V(false); never fails for a missing tag, digest or repository.
      - V(tags) the repository's tags (the term's tag is ignored), filtered by O(pattern), ordered by O(sort).
        These are all the tags the registry lists, including those that belong to another manifest
        (see O(attached_tags)).
      - V(platforms) C(os/arch[/variant]) of each image of an index, or of a single image (from its config).
      - V(config) the image config facts (architecture, os, created, labels, env, entrypoint, cmd,
        user, working_dir, exposed_ports, history_length); an index needs O(platform).
      - V(labels) the image's labels (a dict); an index needs O(platform).
      - V(manifest) the manifest JSON as data.
      - V(referrers) the manifests whose subject is the image (signatures, SBOMs),
        each with digest, media_type, size, artifact_type and annotations.
      - V(repositories) the names of the repositories under the term's prefix (from the catalog API,
        which many hosted registries do not offer), filtered by O(pattern), sorted.
      - Every query except V(exists) fails for a missing image, with a message saying so.
    type: str
    choices: [digest, tags, exists, platforms, config, labels, manifest, referrers, repositories]
    default: digest
  pattern:
    description:
      - For O(query=tags) and O(query=repositories), keep only names this Python regular expression
        matches in full (C(v1\..*) matches C(v1.2) but not C(xv1.2)).
      - Repository names are matched whole, with their prefix (C(team/app)).
    type: str
  attached_tags:
    description:
      - For O(query=tags), whether to list the tags that belong to another manifest rather than name an
        image of their own. V(false) leaves them out.
      - They are cosign's C(sha256-<hex>.sig), C(.att) and C(.sbom) (signatures, attestations and SBOMs
        of the image with that digest), the referrers fallback tag C(sha256-<hex>) (the index of an image's
        referrers on registries without the referrers API; sha512 subjects give C(sha512-<first 64 hex>))
        and C(ocireg-prune-lease-<expiry>-<hex>) (the lease a running M(ocireg.registry.registry_prune)
        holds while it deletes).
    type: bool
    default: true
    version_added: 1.0.0
  sort:
    description:
      - Order of O(query=tags).
      - V(lexical) by code point (C(1.10) before C(1.9)).
      - V(semver) by semantic version precedence (C(v) prefix and missing minor or patch allowed,
        pre-releases before their release); tags that are not versions come first, lexically,
        so the last element is the newest version.
      - V(none) keeps the registry's order.
    type: str
    choices: [lexical, semver, none]
    default: lexical
  platform:
    description:
      - For a multi-platform image, answer about the image for this platform, C(os/arch[/variant]),
        such as C(linux/arm64) (which matches C(linux/arm64/v8)).
      - Used by V(digest), V(exists), V(config), V(labels), V(manifest) and V(referrers).
        With V(exists), an index without that platform gives V(false); the other queries fail
        and list the platforms the index has.
    type: str
  max_concurrency:
    description:
      - How many terms are answered at the same time (1 to 64).
    type: int
    default: 8
extends_documentation_fragment:
  - ocireg.registry.registry
notes:
  - The lookup runs on the controller, so C(requests) must be installed in the Python that runs Ansible.
  - Add C(errors='ignore') or C(errors='warn') to the lookup call to get V(null) instead of a failure.
seealso:
  - module: ocireg.registry.registry_manifest_info
    description: The same facts, and more, as a task.
"""

EXAMPLES = r"""
- name: Pin a deployment to the digest prod points to (query=digest is the default)
  ansible.builtin.set_fact:
    app_image: "registry.example.com/team/app@{{ lookup('ocireg.registry.registry', 'registry.example.com/team/app:prod') }}"

- name: Digest of the arm64 image of a multi-platform tag
  ansible.builtin.debug:
    msg: "{{ lookup('ocireg.registry.registry', 'docker.io/library/alpine:3.20', platform='linux/arm64') }}"

- name: Does the release exist yet?
  ansible.builtin.debug:
    msg: "{{ lookup('ocireg.registry.registry', 'registry.example.com/team/app:' ~ release, query='exists') }}"

- name: Newest v1 release (semver order, last element)
  ansible.builtin.set_fact:
    newest_v1: >-
      {{ query('ocireg.registry.registry', 'registry.example.com/team/app',
               query='tags', pattern='v1\.[0-9]+\.[0-9]+', sort='semver') | last }}

- name: The repository's own tags, without signature, attestation and referrers-index tags
  ansible.builtin.debug:
    msg: "{{ query('ocireg.registry.registry', 'registry.example.com/team/app', query='tags', attached_tags=false) }}"

- name: Platforms of a multi-platform image, as a list
  ansible.builtin.debug:
    msg: "{{ query('ocireg.registry.registry', 'docker.io/library/alpine:3.20', query='platforms') }}"

- name: Creation time and user of an image
  ansible.builtin.debug:
    msg: >-
      {% set c = lookup('ocireg.registry.registry', 'registry.example.com/team/app:prod', query='config') %}
      built {{ c.created }}, runs as {{ c.user or 'root' }}

- name: One label, with credentials
  ansible.builtin.debug:
    msg: >-
      {{ lookup('ocireg.registry.registry', 'registry.example.com/team/app:prod', query='labels',
                username='ci', password=registry_password)['org.opencontainers.image.revision'] }}

- name: The manifest as data
  ansible.builtin.debug:
    msg: "{{ lookup('ocireg.registry.registry', 'registry.example.com/team/app:prod', query='manifest').layers | length }}"

- name: Is the image signed? (referrers such as cosign signatures or notation signatures)
  ansible.builtin.debug:
    msg: "{{ query('ocireg.registry.registry', 'registry.example.com/team/app:prod', query='referrers') | length > 0 }}"

- name: Every repository under team/ whose name ends in -api
  ansible.builtin.debug:
    msg: "{{ query('ocireg.registry.registry', 'registry.example.com/team', query='repositories', pattern='team/.*-api') }}"

- name: Digests of several tags at once, in a template
  ansible.builtin.template:
    src: images.env.j2
    dest: /etc/app/images.env
  vars:
    refs: [registry.example.com/team/app:1.0, registry.example.com/team/app:1.1]
    digests: "{{ query('ocireg.registry.registry', *refs) }}"

- name: Digests from two private registries, each with its own credentials
  ansible.builtin.debug:
    msg: "{{ query('ocireg.registry.registry', 'registry.example.com/team/app:prod', 'ghcr.io/acme/tool:1.4',
                   registry_auth=registry_logins) }}"
  vars:
    registry_logins:
      - {registry: registry.example.com, username: ci, password: "{{ registry_password }}"}
      - {registry: ghcr.io, username: my-bot, password: "{{ ghcr_token }}"}

- name: A private registry with its own CA
  ansible.builtin.debug:
    msg: "{{ lookup('ocireg.registry.registry', 'registry.internal:5000/app:prod', ca_path='/etc/pki/internal-ca.pem') }}"
"""

RETURN = r"""
_list:
  description:
    - One element per term for V(digest) (str), V(exists) (bool), V(config), V(labels) and
      V(manifest) (dicts).
    - For V(tags), V(platforms), V(repositories) (str) and V(referrers) (dicts) the elements of
      every term's answer, in one list.
  type: list
  elements: raw
"""

import warnings
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleError, AnsibleOptionsError
from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display
from ansible_collections.ocireg.registry.plugins.module_utils._glue.module import (
    describe,
    scrub,
)
from ansible_collections.ocireg.registry.plugins.module_utils._glue.options import (
    CONNECTION_OPTIONS,
    REGISTRY_AUTH,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    RegistryError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import (
    Reference,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_order import (
    TAG_SORTS,
    compile_full_match,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.facts.describe import (
    list_repositories,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.facts.options import (
    check_platform,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.facts.query import (
    LIST_QUERIES,
    QUERIES,
    query_image,
    split_catalog_term,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.pool import (
    check_concurrency,
    map_bounded,
)

try:
    # Probed so that a controller without requests gets a clear message, not a traceback.
    import requests  # noqa: F401  # pylint: disable=unused-import
    from urllib3.exceptions import InsecureRequestWarning
except ImportError:
    HAS_REQUESTS = False
else:
    HAS_REQUESTS = True

display = Display()

# The lookup reads the same option table as the modules (documented by the same doc fragment).
LOOKUP_CONNECTION_OPTIONS = (*CONNECTION_OPTIONS, REGISTRY_AUTH)


class LookupModule(LookupBase):
    """The ``ocireg.registry.registry`` lookup."""

    def run(self, terms: list[Any], variables: Mapping[str, Any] | None = None, **kwargs: Any) -> list[Any]:
        """Answer ``query`` for every term (see DOCUMENTATION)."""
        try:
            self.set_options(var_options=variables, direct=kwargs)
        except AnsibleOptionsError as err:
            # Ansible's message names the bad value but not the good ones.
            raise AnsibleError(
                f"ocireg.registry.registry lookup: {err.message} Valid values: query is one of "
                f"{', '.join(QUERIES)}; sort is one of {', '.join(TAG_SORTS)}."
            ) from None
        unknown = sorted(name for name in kwargs if not self.has_option(name))
        if unknown:
            # A misspelt password= would otherwise silently mean "anonymous".
            raise AnsibleError(
                f"ocireg.registry.registry lookup: unknown option(s) {', '.join(unknown)}; it takes "
                f"{', '.join(sorted(n for n in self.option_definitions if not n.startswith('_')))}"
            )
        if not HAS_REQUESTS:
            raise AnsibleError(
                "the ocireg.registry.registry lookup needs the Python library 'requests' on the controller: "
                "install it into the Python that runs ansible (for example 'pip install requests')"
            )
        # Imported here, after the check above: the client needs requests.
        from ansible_collections.ocireg.registry.plugins.module_utils._glue.clients import (
            ClientFactory,
        )

        query = self.get_option("query")
        options = {name: self.get_option(name) for name in LOOKUP_CONNECTION_OPTIONS}
        try:
            factory = ClientFactory(options)
        except RegistryError as err:  # a malformed registry_auth: says what, never a secret
            raise AnsibleError(f"ocireg.registry.registry lookup: {describe(err)}") from None
        try:
            with warnings.catch_warnings():
                # urllib3 warns on every unverified request, and only then: the user asked for it with
                # validate_certs: false, so say nothing (as skopeo --tls-verify=false does). Unfiltered,
                # the warning goes raw to the worker's stderr, which Ansible prints as "errantly sent".
                warnings.simplefilter("ignore", InsecureRequestWarning)
                answers = self._answer(factory, query, [str(term) for term in terms])
        except RegistryError as err:
            raise AnsibleError(f"ocireg.registry.registry lookup (query={query}): "
                               f"{scrub(describe(err, factory), factory.secrets())}") from None
        finally:
            for text in factory.warnings():
                display.warning(scrub(text, factory.secrets()))
        if query in LIST_QUERIES:
            return [item for answer in answers for item in answer]
        return answers

    def _answer(self, factory: Any, query: str, terms: list[str]) -> list[Any]:
        """One answer per term, in term order; options are checked before any request."""
        pattern = self.get_option("pattern")
        platform = check_platform(self.get_option("platform"))
        workers = check_concurrency(self.get_option("max_concurrency"))
        compile_full_match(pattern)
        # Clients are built here, before the threads: ClientFactory is not meant to be shared while it fills its cache.
        if query == "repositories":
            split = [split_catalog_term(term) for term in terms]
            factory.bind_reads((host for host, _prefix in split), what="terms")
            catalogs = [(factory.registry(host), prefix) for host, prefix in split]
            return map_bounded(lambda item: list_repositories(item[0], item[1], pattern), catalogs, workers)
        references = [Reference.parse(term) for term in terms]
        factory.bind_reads((ref.registry for ref in references), what="terms")
        targets = [(factory.repository(ref), ref) for ref in references]
        sort, attached = self.get_option("sort"), self.get_option("attached_tags")
        return map_bounded(
            lambda item: query_image(item[0], item[1], query, platform=platform, pattern=pattern, order=sort,
                                     attached_tags=attached),
            targets, workers)
