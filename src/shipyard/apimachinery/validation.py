"""Object metadata validation with kube-apiserver's exact wording.

Clients (kubectl, the official clients, kopf) show these messages to people and some tests match
them verbatim, so every string here is kube-apiserver's own (k8s.io/apimachinery
`pkg/util/validation`, `pkg/api/validation/objectmeta.go`, `.../meta/v1/validation`). The
contract:

* `is_*` functions return a list of bare detail strings, empty when the value is valid, exactly
  like Go's `validation.IsDNS1123Subdomain` and friends.
* `validate_*` functions return `StatusCause` dicts as kube-apiserver puts them in an Invalid
  Status: `reason` is the field error type, `field` the JSON path, `message` the error body
  (`Invalid value: "Foo": a lowercase RFC 1123 ...`). Feed them to `errors.invalid()`.

Nothing here performs I/O; `generate_name` uses the OS random source.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from shipyard.apimachinery.errors import StatusCause

__all__ = [
    "DNS1123_LABEL_MAX_LENGTH",
    "DNS1123_SUBDOMAIN_MAX_LENGTH",
    "LABEL_VALUE_MAX_LENGTH",
    "TOTAL_ANNOTATION_SIZE_LIMIT",
    "NameValidator",
    "field_forbidden",
    "field_invalid",
    "field_required",
    "field_too_long",
    "generate_name",
    "go_repr",
    "is_dns1123_label",
    "is_dns1123_subdomain",
    "is_qualified_name",
    "is_valid_label_value",
    "is_valid_path_segment_name",
    "name_is_dns_label",
    "name_is_dns_subdomain",
    "name_validator",
    "validate_annotations",
    "validate_finalizers",
    "validate_labels",
    "validate_object_meta",
    "validate_object_meta_update",
    "validate_owner_references",
]

DNS1123_LABEL_MAX_LENGTH = 63
DNS1123_SUBDOMAIN_MAX_LENGTH = 253
LABEL_VALUE_MAX_LENGTH = 63
QUALIFIED_NAME_MAX_LENGTH = 63
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character"
)
_QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QNAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character"
)
_LABEL_VALUE_FMT = "(" + _QNAME_FMT + ")?"
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character"
)

_DNS1123_LABEL_RE = re.compile(_DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)
_QNAME_RE = re.compile(_QNAME_FMT)
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT)

# utilrand.String's alphabet: no vowels (no accidental words), no easily confused characters.
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_RANDOM_SUFFIX_LENGTH = 5
_MAX_GENERATED_NAME_LENGTH = 63
_MAX_PREFIX_LENGTH = _MAX_GENERATED_NAME_LENGTH - _RANDOM_SUFFIX_LENGTH

FINALIZER_ORPHAN = "orphan"
FINALIZER_DELETE_DEPENDENTS = "foregroundDeletion"


# -- detail strings -------------------------------------------------------------------------


def _max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def is_dns1123_label(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > DNS1123_LABEL_MAX_LENGTH:
        errs.append(_max_len_error(DNS1123_LABEL_MAX_LENGTH))
    if not _DNS1123_LABEL_RE.fullmatch(value):
        if _DNS1123_SUBDOMAIN_RE.fullmatch(value):
            errs.append("must not contain dots")
        else:
            errs.append(_regex_error(_DNS1123_LABEL_MSG, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errs.append(_max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH))
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errs.append(_regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_qualified_name(value: str) -> list[str]:
    """Label keys, annotation keys (lower-cased first) and finalizers: `[prefix/]name`."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in is_dns1123_subdomain(prefix))
    else:
        return [
            "a qualified name "
            + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > QUALIFIED_NAME_MAX_LENGTH:
        errs.append("name part " + _max_len_error(QUALIFIED_NAME_MAX_LENGTH))
    if not _QNAME_RE.fullmatch(name):
        errs.append(
            "name part " + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc")
        )
    return errs


def is_valid_label_value(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > LABEL_VALUE_MAX_LENGTH:
        errs.append(_max_len_error(LABEL_VALUE_MAX_LENGTH))
    if not _LABEL_VALUE_RE.fullmatch(value):
        errs.append(
            _regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345")
        )
    return errs


def is_valid_path_segment_name(name: str, prefix: bool = False) -> list[str]:
    """Names that only have to survive as one URL path segment (kube's ValidatePathSegmentName)."""
    if not prefix:
        for banned in (".", ".."):
            if name == banned:
                return [f"may not be '{banned}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]


# -- name validators (Go's ValidateNameFunc: (name, prefix) -> details) -----------------------

NameValidator = Callable[[str, bool], list[str]]


def _mask_trailing_dash(name: str) -> str:
    # Same quirk as kube: a generateName prefix may end in '-'; the real name won't.
    if len(name) > 1 and name.endswith("-"):
        return name[:-2] + "a"
    return name


def name_is_dns_subdomain(name: str, prefix: bool) -> list[str]:
    return is_dns1123_subdomain(_mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool) -> list[str]:
    return is_dns1123_label(_mask_trailing_dash(name) if prefix else name)


_NAME_VALIDATORS: dict[str, NameValidator] = {
    "subdomain": name_is_dns_subdomain,
    "label": name_is_dns_label,
    "path_segment": is_valid_path_segment_name,
}


def name_validator(kind: str) -> NameValidator:
    """`subdomain` (most kinds), `label` (Namespace), `path_segment` (kinds kube leaves loose)."""
    try:
        return _NAME_VALIDATORS[kind]
    except KeyError:
        raise ValueError(f"unknown name validator {kind!r}") from None


def generate_name(prefix: str) -> str:
    """kube's SimpleNameGenerator: prefix (cut to 58 characters) plus 5 random characters."""
    if len(prefix) > _MAX_PREFIX_LENGTH:
        prefix = prefix[:_MAX_PREFIX_LENGTH]
    suffix = "".join(secrets.choice(_NAME_ALPHABET) for _ in range(_RANDOM_SUFFIX_LENGTH))
    return prefix + suffix


# -- field errors as StatusCauses -----------------------------------------------------------


def go_repr(value: Any) -> str:
    """Render a bad value the way field.Error.ErrorBody prints it (%q, %v or %#v)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return _go_quote(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "[]string{" + ", ".join(_go_quote(v) for v in value) + "}"
    if isinstance(value, Mapping):
        inner = ", ".join(f"{k}:{go_repr(v)}" for k, v in value.items())
        return "{" + inner + "}"
    if isinstance(value, list):
        return "[]{" + ", ".join(go_repr(v) for v in value) + "}"
    return str(value)


def _go_quote(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif not ch.isprintable():
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _cause(reason: str, field: str, body: str, detail: str) -> StatusCause:
    message = f"{body}: {detail}" if detail else body
    return {"reason": reason, "message": message, "field": field}


def field_invalid(field: str, value: Any, detail: str) -> StatusCause:
    return _cause("FieldValueInvalid", field, f"Invalid value: {go_repr(value)}", detail)


def field_required(field: str, detail: str = "") -> StatusCause:
    return _cause("FieldValueRequired", field, "Required value", detail)


def field_forbidden(field: str, detail: str) -> StatusCause:
    return _cause("FieldValueForbidden", field, "Forbidden", detail)


def field_too_long(field: str, max_bytes: int) -> StatusCause:
    return _cause("FieldValueTooLong", field, "Too long", f"must have at most {max_bytes} bytes")


# -- metadata ---------------------------------------------------------------------------------


def validate_labels(labels: Mapping[str, Any], field: str = "metadata.labels") -> list[StatusCause]:
    causes: list[StatusCause] = []
    for key, value in labels.items():
        causes.extend(field_invalid(field, key, m) for m in is_qualified_name(key))
        if not isinstance(value, str):
            causes.append(field_invalid(field, value, "must be a string"))
            continue
        causes.extend(field_invalid(field, value, m) for m in is_valid_label_value(value))
    return causes


def validate_annotations(
    annotations: Mapping[str, Any], field: str = "metadata.annotations"
) -> list[StatusCause]:
    causes: list[StatusCause] = []
    total = 0
    for key, value in annotations.items():
        # The rule is a qualified name, except that case doesn't matter.
        causes.extend(field_invalid(field, key, m) for m in is_qualified_name(key.lower()))
        total += len(key.encode()) + len(str(value).encode())
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        causes.append(field_too_long(field, TOTAL_ANNOTATION_SIZE_LIMIT))
    return causes


def _parse_api_version(api_version: str) -> tuple[str, str]:
    """(group, version) as schema.ParseGroupVersion; malformed input gives ("", "")."""
    if not api_version or api_version == "/":
        return "", ""
    slashes = api_version.count("/")
    if slashes == 0:
        return "", api_version
    if slashes == 1:
        group, _, version = api_version.partition("/")
        return group, version
    return "", ""


def validate_owner_references(
    refs: Sequence[Mapping[str, Any]], field: str = "metadata.ownerReferences"
) -> list[StatusCause]:
    causes: list[StatusCause] = []
    first_controller = ""
    for ref in refs:
        api_version = str(ref.get("apiVersion") or "")
        kind = str(ref.get("kind") or "")
        group, version = _parse_api_version(api_version)
        if not version:
            causes.append(field_invalid(f"{field}.apiVersion", api_version,
                                        "version must not be empty"))
        if not kind:
            causes.append(field_invalid(f"{field}.kind", kind, "must not be empty"))
        for key in ("name", "uid"):
            value = str(ref.get(key) or "")
            if not value:
                causes.append(field_invalid(f"{field}.{key}", value, "must not be empty"))
        if (group, version, kind) == ("", "v1", "Event"):
            causes.append(field_invalid(field, dict(ref),
                                        f"{group}/{version}, Kind={kind} is disallowed from being "
                                        "an owner"))
        if ref.get("controller") is True:
            current = f"{kind}/{ref.get('name') or ''}"
            if first_controller:
                causes.append(field_invalid(
                    field, [dict(r) for r in refs],
                    'Only one reference can have Controller set to true. Found "true" in '
                    f"references for {first_controller} and {current}",
                ))
            else:
                first_controller = current
    return causes


def validate_finalizers(
    finalizers: Sequence[str], field: str = "metadata.finalizers"
) -> list[StatusCause]:
    causes: list[StatusCause] = []
    for name in finalizers:
        causes.extend(field_invalid(field, name, m) for m in is_qualified_name(name))
    if FINALIZER_ORPHAN in finalizers and FINALIZER_DELETE_DEPENDENTS in finalizers:
        causes.append(field_invalid(
            field, list(finalizers),
            f"finalizer {FINALIZER_ORPHAN} and {FINALIZER_DELETE_DEPENDENTS} cannot be both set",
        ))
    return causes


def validate_object_meta(
    meta: Mapping[str, Any], *, namespaced: bool, name_validator: str = "subdomain"
) -> list[StatusCause]:
    """ValidateObjectMeta on create; call after the name was generated from generateName."""
    validate_name = _NAME_VALIDATORS.get(name_validator)
    if validate_name is None:
        raise ValueError(f"unknown name validator {name_validator!r}")
    causes: list[StatusCause] = []
    generate = str(meta.get("generateName") or "")
    if generate:
        causes.extend(field_invalid("metadata.generateName", generate, m)
                      for m in validate_name(generate, True))
    name = str(meta.get("name") or "")
    if not name:
        causes.append(field_required("metadata.name", "name or generateName is required"))
    else:
        causes.extend(field_invalid("metadata.name", name, m) for m in validate_name(name, False))
    causes.extend(_validate_common(meta, namespaced))
    return causes


def _validate_common(meta: Mapping[str, Any], namespaced: bool) -> list[StatusCause]:
    causes: list[StatusCause] = []
    namespace = str(meta.get("namespace") or "")
    if namespaced:
        if not namespace:
            causes.append(field_required("metadata.namespace"))
        else:
            causes.extend(field_invalid("metadata.namespace", namespace, m)
                          for m in name_is_dns_label(namespace, False))
    elif namespace:
        causes.append(field_forbidden("metadata.namespace", "not allowed on this type"))
    generation = meta.get("generation")
    if isinstance(generation, int) and generation < 0:
        causes.append(field_invalid("metadata.generation", generation,
                                    "must be greater than or equal to 0"))
    causes.extend(validate_labels(meta.get("labels") or {}))
    causes.extend(validate_annotations(meta.get("annotations") or {}))
    causes.extend(validate_owner_references(meta.get("ownerReferences") or []))
    causes.extend(validate_finalizers(meta.get("finalizers") or []))
    return causes


_IMMUTABLE = ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp",
              "deletionGracePeriodSeconds")


def validate_object_meta_update(
    new: Mapping[str, Any], old: Mapping[str, Any]
) -> list[StatusCause]:
    """ValidateObjectMetaUpdate: immutable fields, resourceVersion, generation, no new finalizers
    while deleting, then the same label/annotation/ownerReference/finalizer rules as create."""
    causes: list[StatusCause] = []
    if old.get("deletionTimestamp"):
        extra = sorted(set(new.get("finalizers") or []) - set(old.get("finalizers") or []))
        if extra:
            causes.append(field_forbidden(
                "metadata.finalizers",
                "no new finalizers can be added if the object is being deleted, found new "
                f"finalizers {go_repr(extra)}",
            ))
    rv = str(new.get("resourceVersion") or "")
    if not rv:
        causes.append(field_invalid("metadata.resourceVersion", rv,
                                    "must be specified for an update"))
    new_gen, old_gen = new.get("generation") or 0, old.get("generation") or 0
    if isinstance(new_gen, int) and isinstance(old_gen, int) and new_gen < old_gen:
        causes.append(field_invalid("metadata.generation", new_gen, "must not be decremented"))
    for key in _IMMUTABLE:
        if new.get(key) != old.get(key):
            value = new.get(key)
            causes.append(field_invalid(f"metadata.{key}", "" if value is None else value,
                                        "field is immutable"))
    causes.extend(validate_labels(new.get("labels") or {}))
    causes.extend(validate_annotations(new.get("annotations") or {}))
    causes.extend(validate_owner_references(new.get("ownerReferences") or []))
    causes.extend(validate_finalizers(new.get("finalizers") or []))
    return causes
