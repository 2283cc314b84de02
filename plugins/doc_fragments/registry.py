# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared documentation of the connection, authentication and TLS options."""
from __future__ import annotations


class ModuleDocFragment:
    """Options every registry module and the lookup accept."""

    # Connection and authentication options common to every module and the lookup.
    DOCUMENTATION = r"""
options:
  username:
    description:
      - Username for the registry.
      - When neither O(username) nor O(registry_token) is given, credentials are read from
        O(auth_file) or the default auth files (see O(auth_file)), including credential helpers.
    type: str
  password:
    description:
      - Password or access token for O(username). Never logged or returned.
    type: str
  registry_token:
    description:
      - A bearer token sent as-is (C(Authorization) header, C(Bearer) scheme) to registries that use token auth.
      - Most cloud registries (ECR, Artifact Registry, ACR) want their short-lived tokens as O(password)
        with a fixed O(username) instead; see the authentication guide in C(docs/guide_authentication.md).
      - Takes precedence over O(username) and O(password). Never logged or returned.
    type: str
  auth_file:
    description:
      - Path to a Docker C(config.json) or podman C(auth.json) to read credentials from.
      - When not set, the files are searched in this order, as Docker and skopeo do
        C($DOCKER_CONFIG/config.json), C(~/.docker/config.json), C($REGISTRY_AUTH_FILE),
        C($XDG_RUNTIME_DIR/containers/auth.json), C(~/.config/containers/auth.json).
      - C(credHelpers) and C(credsStore) entries run C(docker-credential-<name> get).
      - Entries are matched by registry host; podman-style C(host/namespace) keys are not used yet.
    type: path
  validate_certs:
    description:
      - Verify the registry's TLS certificate.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file with the CA certificates to trust for the registry (and its token service).
    type: path
  client_cert:
    description:
      - PEM client certificate for registries that require mutual TLS.
    type: path
  client_key:
    description:
      - PEM private key of O(client_cert).
    type: path
  plain_http:
    description:
      - Talk plain HTTP instead of HTTPS.
      - When not set, plain HTTP is used only for loopback hosts (C(localhost), C(127.0.0.0/8), C(::1)), as Docker does.
    type: bool
  timeout:
    description:
      - Seconds to wait for the registry to connect or to send data, per request.
    type: float
    default: 60
  retries:
    description:
      - How many times a request is retried after a connection error or a 408, 429, 500, 502, 503 or 504 answer.
      - Waits grow exponentially with jitter; C(Retry-After) is honoured up to 60 seconds.
    type: int
    default: 3
notes:
  - Passwords, tokens and the C(auth) strings of auth files never appear in results, warnings or errors.
  - C(Authorization) is never sent to another host after a redirect.
requirements:
  - requests >= 2.28 (on the host that executes the module)
"""

    # src_auth of modules that read from a second registry (registry_copy, registry_tag).
    SRC_AUTH = r"""
options:
  src_auth:
    description:
      - Connection options for the source registry only, when they differ from the module's own.
        A key left out falls back to the module's top-level option of the same name.
    type: dict
    suboptions:
      username:
        description: Username for this registry.
        type: str
      password:
        description: Password or access token for the username. Never logged or returned.
        type: str
      registry_token:
        description: A bearer token sent as-is; takes precedence over username and password. Never logged or returned.
        type: str
      auth_file:
        description: Docker C(config.json) or podman C(auth.json) to read credentials from.
        type: path
      validate_certs:
        description: Verify the registry's TLS certificate.
        type: bool
      ca_path:
        description: PEM file with the CA certificates to trust.
        type: path
      client_cert:
        description: PEM client certificate for mutual TLS.
        type: path
      client_key:
        description: PEM private key of the client certificate.
        type: path
      plain_http:
        description: Talk plain HTTP instead of HTTPS; when not set, only loopback hosts use plain HTTP.
        type: bool
"""

    # dest_auth of modules that write to a second registry (registry_copy).
    DEST_AUTH = r"""
options:
  dest_auth:
    description:
      - Connection options for the destination registry only, with the same keys as O(src_auth).
        A key left out falls back to the module's top-level option of the same name.
    type: dict
    suboptions:
      username:
        description: Username for this registry.
        type: str
      password:
        description: Password or access token for the username. Never logged or returned.
        type: str
      registry_token:
        description: A bearer token sent as-is; takes precedence over username and password. Never logged or returned.
        type: str
      auth_file:
        description: Docker C(config.json) or podman C(auth.json) to read credentials from.
        type: path
      validate_certs:
        description: Verify the registry's TLS certificate.
        type: bool
      ca_path:
        description: PEM file with the CA certificates to trust.
        type: path
      client_cert:
        description: PEM client certificate for mutual TLS.
        type: path
      client_key:
        description: PEM private key of the client certificate.
        type: path
      plain_http:
        description: Talk plain HTTP instead of HTTPS; when not set, only loopback hosts use plain HTTP.
        type: bool
"""
