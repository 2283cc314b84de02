# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The image references that running workloads name, read from the data a playbook already has.

A *source* is plain data from any task:

* ``kubernetes.core.k8s_info`` output (``{resources: [...]}``), also registered in a loop
  (``{results: [{resources: [...]}, ...]}``), a Kubernetes ``List`` (``{items: [...]}``, as
  ``kubectl get -o json`` writes it), or the Kubernetes objects themselves;
* a Pod: ``spec.containers[].image``, ``spec.initContainers[].image``,
  ``spec.ephemeralContainers[].image``, and what the kubelet reports it runs,
  ``status.containerStatuses[].imageID`` (and the init and ephemeral statuses): the
  manifest digest actually pulled, such as ``docker-pullable://reg/app@sha256:...``
  (dockershim) or ``reg/app@sha256:...`` (containerd, CRI-O). A container whose spec image has a
  tag and whose status (same ``name``, in the status list of its kind) has an imageID with a digest
  of the same repository gives one ``reg/app:tag@sha256:...``: ``in_use`` protects that digest and
  does not look the tag up, which may have been deleted or moved since the Pod started;
* a workload with a pod template: Deployment, ReplicaSet, StatefulSet, DaemonSet, Job
  (``spec.template``), CronJob (``spec.jobTemplate.spec.template``);
* a list of sources, a string (one reference or ``sha256:`` digest), or any other mapping,
  whose values are sources (inventory variables such as ``{app_image: reg/app:1.4}``).

What is *not* a reference is said, with where it was found (the path in the data and, inside a
Kubernetes object, its kind, namespace/name and container): a number where an image should be, a
blank image, a string that is no reference or digest (:func:`parse_image`, the grammar ``in_use``
reads it with), so a bad value is refused where it came from, not as an entry of a flattened list.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._model.digest import (
    validate_digest,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import (
    DEFAULT_TAG,
    Reference,
)

#: Prefixes container runtimes put before an ``imageID``: the reference after them is what ran.
RUNTIME_PREFIXES = ("docker-pullable://", "docker://", "containerd://", "cri-o://")
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
_STATUS_LISTS = ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses")
#: A bare ``algorithm:hex`` entry is a digest (any repository); Docker Hub has no repository of these names.
DIGEST_ALGORITHMS = ("sha256", "sha512")


def strip_runtime_prefix(text: str) -> str:
    """``reg/app@sha256:...`` from ``docker-pullable://reg/app@sha256:...`` (other text unchanged)."""
    for prefix in RUNTIME_PREFIXES:
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


def parse_image(text: str) -> Reference | str:
    """One image entry as a runtime reads it: a :class:`Reference` (with neither tag nor digest it gets
    ``latest``, what a runtime pulls) or a bare digest (``sha256:...``); runtime prefix and surrounding
    blanks removed. Raises :class:`InvalidInputError` with the grammar's reason.
    """
    text = strip_runtime_prefix(text.strip())
    if "/" not in text and "@" not in text and text.split(":", 1)[0] in DIGEST_ALGORITHMS:
        return validate_digest(text)
    reference = Reference.parse(text)
    return reference.with_tag(DEFAULT_TAG) if reference.tag is None and reference.digest is None else reference


def _container(item: Any) -> str:
    name = item.get("name") if isinstance(item, Mapping) else None
    return f"container {name}" if isinstance(name, str) and name else "a container without a name"


def _spec_containers(spec: Any, where: str, key: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for index, container in enumerate(spec.get(key) or () if isinstance(spec, Mapping) else ()):
        if isinstance(container, Mapping):
            yield f"{where}.{key}[{index}]", container


def _pod_spec_images(spec: Any, where: str, owner: str) -> Iterator[tuple[str, Any]]:
    for key in _CONTAINER_LISTS:
        for place, container in _spec_containers(spec, where, key):
            if "image" in container:
                yield f"{place}.image ({owner}, {_container(container)})", container["image"]


def _reference(value: Any) -> Reference | None:
    """``value`` as a :class:`Reference` when it is one (a bare digest, a blank or a bad value is not)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = parse_image(value)
    except InvalidInputError:
        return None  # the unpaired path names it with its place
    return parsed if isinstance(parsed, Reference) else None


def _pair(image: Any, status: Mapping[str, Any]) -> str | None:
    """``NAME:TAG@DIGEST`` when a spec ``NAME:TAG`` ran as ``status.imageID`` ``NAME@DIGEST``, else None.

    Only the same repository pairs (docker's normalisation, runtime prefix removed): an imageID
    from a mirror or another name says nothing about the spec's tag, so both stay as they are.
    """
    spec = _reference(image)
    ran = _reference(status.get("imageID"))
    if spec is None or ran is None or spec.digest is not None or ran.digest is None:
        return None
    if (spec.registry, spec.repository) != (ran.registry, ran.repository):
        return None
    return f"{strip_runtime_prefix(image.strip())}@{ran.digest}"


def _same_image(value: Any, image: Any, digest: str) -> bool:
    """Whether a status ``image`` only repeats the paired spec image or the digest it ran."""
    seen, spec = _reference(value), _reference(image)
    if seen is None or spec is None or (seen.registry, seen.repository) != (spec.registry, spec.repository):
        return False
    return seen.digest == digest if seen.digest is not None else seen.tag == spec.tag


def _pod_images(spec: Any, status: Any, where: str, owner: str) -> Iterator[tuple[str, Any]]:
    """A Pod's images: a container whose status ran its spec ``NAME:TAG`` as a digest of the same
    repository gives one ``NAME:TAG@DIGEST`` (``in_use`` protects the digest and does not look the tag
    up, which may be gone); every other spec image and status entry is given as it is."""
    statuses = status if isinstance(status, Mapping) else {}
    for key, status_key in zip(_CONTAINER_LISTS, _STATUS_LISTS):
        by_name: dict[str, tuple[str, Mapping[str, Any]]] = {}
        for index, item in enumerate(statuses.get(status_key) or ()):
            if isinstance(item, Mapping) and isinstance(item.get("name"), str):
                by_name.setdefault(item["name"], (f"{where}.status.{status_key}[{index}]", item))
        paired: set[str] = set()
        for place, container in _spec_containers(spec, f"{where}.spec", key):
            if "image" not in container:
                continue
            name = container.get("name")
            match = by_name.get(name) if isinstance(name, str) else None
            reference = _pair(container["image"], match[1]) if match else None
            if reference is not None and match is not None:
                paired.add(match[0])
                yield f"{place}.image ({owner}, {_container(container)})", reference
                status_image = match[1].get("image")
                if status_image and not _same_image(status_image, container["image"], reference.rsplit("@", 1)[1]):
                    yield f"{match[0]}.image ({owner}, {_container(match[1])})", status_image
            else:
                yield f"{place}.image ({owner}, {_container(container)})", container["image"]
        for index, item in enumerate(statuses.get(status_key) or ()):
            if f"{where}.status.{status_key}[{index}]" not in paired:
                yield from _status_entry(item, f"{where}.status.{status_key}[{index}]", owner)


def _status_entry(item: Any, place: str, owner: str) -> Iterator[tuple[str, Any]]:
    if not isinstance(item, Mapping):
        return
    # imageID is the digest that was pulled; image the reference the kubelet resolved.
    for field in ("imageID", "image"):
        if item.get(field):
            yield f"{place}.{field} ({owner}, {_container(item)})", item[field]


def _owner(obj: Mapping[str, Any]) -> str:
    """``Pod shop/web-1``: the object's kind and namespace/name, as far as it says them."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        metadata = {}
    name = "/".join(str(part) for part in (metadata.get("namespace"), metadata.get("name")) if part)
    return f"{obj.get('kind') or 'object'} {name or '(no name)'}"


def _object_images(obj: Mapping[str, Any], where: str) -> Iterator[tuple[str, Any]]:
    """The images of one Kubernetes object (a Pod, or a workload with a pod template)."""
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        return
    owner = _owner(obj)
    yield from _pod_images(spec, obj.get("status"), where, owner)
    template = spec.get("template")
    job = spec.get("jobTemplate")
    if isinstance(job, Mapping) and isinstance(job.get("spec"), Mapping):
        template = job["spec"].get("template")
        where = f"{where}.spec.jobTemplate"
    if isinstance(template, Mapping):
        yield from _pod_spec_images(template.get("spec"), f"{where}.spec.template.spec", owner)


def _is_kubernetes_object(value: Mapping[str, Any]) -> bool:
    return "kind" in value or "apiVersion" in value or ("spec" in value and "metadata" in value)


def _walk(source: Any, where: str) -> Iterator[tuple[str, Any]]:
    if isinstance(source, str):
        yield where, source
    elif isinstance(source, Mapping):
        if "resources" in source and isinstance(source["resources"], Sequence):
            # k8s_info's result; its other keys (changed, api_found, failed) are not images.
            for index, obj in enumerate(source["resources"]):
                yield from _walk(obj, f"{where}.resources[{index}]")
        elif "results" in source and isinstance(source["results"], Sequence) and not isinstance(source["results"], str):
            for index, item in enumerate(source["results"]):
                yield from _walk(item, f"{where}.results[{index}]")
        elif "items" in source and isinstance(source["items"], Sequence) and not isinstance(source["items"], str):
            # A Kubernetes List (kubectl get -o json / yaml).
            for index, obj in enumerate(source["items"]):
                yield from _walk(obj, f"{where}.items[{index}]")
        elif _is_kubernetes_object(source):
            yield from _object_images(source, where)
        else:
            for key in sorted(source, key=str):
                yield from _walk(source[key], f"{where}.{key}")
    elif isinstance(source, Sequence) and not isinstance(source, (bytes, bytearray)):
        for index, item in enumerate(source):
            yield from _walk(item, f"{where}[{index}]")
    elif source is None:
        return
    else:
        raise InvalidInputError(
            f"{where} is {type(source).__name__} {source!r}, not an image reference: give references as strings "
            "(reg/app:1.4, reg/app@sha256:...), k8s_info results, Kubernetes objects, lists or mappings of them")


def images_in(sources: Any, name: str = "sources") -> list[str]:
    """Every image reference or digest named in ``sources``, runtime prefixes removed, unique, sorted.

    Raises :class:`InvalidInputError` naming the place of a value that is no reference
    (``sources[2].resources[0].spec.containers[1].image (Pod shop/web, container app) is int 5``),
    a blank one, or a string that :func:`parse_image` refuses (with its reason).
    """
    found: set[str] = set()
    for where, value in _walk(sources, name):
        if not isinstance(value, str):
            raise InvalidInputError(f"{where} is {type(value).__name__} {value!r}, not an image reference")
        text = strip_runtime_prefix(value.strip())
        if not text:
            raise InvalidInputError(f"{where} is blank; an image reference such as reg/app:1.4 is needed there")
        try:
            parse_image(text)
        except InvalidInputError as exc:
            raise InvalidInputError(f"{where} is no image reference: {exc.message}") from None
        found.add(text)
    return sorted(found)
