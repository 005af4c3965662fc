"""The string formats kube-apiserver checks in CRD schemas (go-openapi/strfmt's registry).

A format kube does not know is dropped from the schema (`StripUnsupportedFormats`): integers keep
only int32/int64, numbers float/double, strings the list below; anything else validates nothing.
Names are normalised by removing dashes, as go-openapi does (`date-time` == `datetime`).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable
from email.utils import parseaddr
from urllib.parse import urlparse

_UUID = re.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$")
_UUID3 = re.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}$")
_UUID4 = re.compile(
    r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$"
)
_UUID5 = re.compile(
    r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$"
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?$"
)
_DURATION = re.compile(
    r"^(?:[-+]?(?:\d+(?:\.\d*)?|\.\d+)\s*(?:ns|us|µs|ms|s|m|h|d|w)\s*)+$"
    r"|^(?:\d+\s*(?:ns|us|µs|ms|s|m|h|d|w|nanoseconds?|microseconds?|milliseconds?|seconds?|"
    r"minutes?|hours?|days?|weeks?))$"
)
_HOSTNAME = re.compile(
    r"^[a-zA-Z0-9\p{S}]?$|^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)*"
    r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.?$".replace(r"\p{S}", "")
)
_MAC = re.compile(
    r"^(?:[0-9A-Fa-f]{2}[:-]){5,7}[0-9A-Fa-f]{2}$|^(?:[0-9A-Fa-f]{4}\.){2,3}[0-9A-Fa-f]{4}$"
)
_HEXCOLOR = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_RGBCOLOR = re.compile(
    r"^rgb\(\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})\s*\)$"
)
_BSON = re.compile(r"^[0-9a-fA-F]{24}$")
_SSN = re.compile(r"^\d{3}[- ]?\d{2}[- ]?\d{4}$")
_ISBN10 = re.compile(r"^(?:\d[- ]?){9}[\dXx]$")
_ISBN13 = re.compile(r"^(?:\d[- ]?){12}\d$")
_QUANTITY = re.compile(
    r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$"
)
_SHORT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LONG_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _matches(rx: re.Pattern[str]) -> Callable[[str], bool]:
    return lambda s: rx.match(s) is not None


def _ip(version: int) -> Callable[[str], bool]:
    def check(s: str) -> bool:
        try:
            return ipaddress.ip_address(s).version == version
        except ValueError:
            return False
    return check


def _cidr(s: str) -> bool:
    try:
        ipaddress.ip_network(s, strict=False)
    except ValueError:
        return False
    return "/" in s


def _byte(s: str) -> bool:
    try:
        base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _uri(s: str) -> bool:
    parsed = urlparse(s)
    return bool(parsed.scheme) or s.startswith("/")


def _email(s: str) -> bool:
    _, addr = parseaddr(s)
    return "@" in addr


def _date(s: str) -> bool:
    if not _DATE.match(s):
        return False
    month, day = int(s[5:7]), int(s[8:10])
    return 1 <= month <= 12 and 1 <= day <= 31


def _date_time(s: str) -> bool:
    return _DATE_TIME.match(s) is not None and _date(s[:10])


def _short_name(s: str) -> bool:
    return len(s) <= 63 and _SHORT_NAME.match(s) is not None


def _long_name(s: str) -> bool:
    return len(s) <= 253 and _LONG_NAME.match(s) is not None


def _always(_: str) -> bool:
    return True


# normalised name -> checker; every format kube-apiserver recognises for strings
STRING_FORMATS: dict[str, Callable[[str], bool]] = {
    "bsonobjectid": _matches(_BSON),
    "uri": _uri,
    "email": _email,
    "hostname": lambda s: len(s) <= 255 and _HOSTNAME.match(s) is not None,
    "ipv4": _ip(4),
    "ipv6": _ip(6),
    "cidr": _cidr,
    "mac": _matches(_MAC),
    "uuid": _matches(_UUID),
    "uuid3": _matches(_UUID3),
    "uuid4": _matches(_UUID4),
    "uuid5": _matches(_UUID5),
    "isbn": lambda s: _ISBN10.match(s) is not None or _ISBN13.match(s) is not None,
    "isbn10": _matches(_ISBN10),
    "isbn13": _matches(_ISBN13),
    "creditcard": lambda s: sum(c.isdigit() for c in s) in range(12, 20),
    "ssn": _matches(_SSN),
    "hexcolor": _matches(_HEXCOLOR),
    "rgbcolor": lambda s: (m := _RGBCOLOR.match(s)) is not None
    and all(int(g) <= 255 for g in m.groups()),
    "byte": _byte,
    "password": _always,
    "date": _date,
    "duration": _matches(_DURATION),
    "datetime": _date_time,
    "quantity": _matches(_QUANTITY),
    "k8sshortname": _short_name,
    "k8slongname": _long_name,
}


def effective_format(schema_type: str, fmt: str) -> str:
    """The format kube-apiserver keeps for a node (`""` when it strips it)."""
    if not fmt:
        return ""
    if schema_type in ("", "string"):
        return fmt if fmt.replace("-", "") in STRING_FORMATS else ""
    if schema_type == "integer":
        return fmt if fmt in ("int32", "int64") else ""
    if schema_type == "number":
        return fmt if fmt in ("float", "double") else ""
    return ""


def string_checker(fmt: str) -> Callable[[str], bool] | None:
    return STRING_FORMATS.get(fmt.replace("-", ""))
