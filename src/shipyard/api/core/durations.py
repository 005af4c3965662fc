"""metav1.Duration strings (Go's ``time.Duration`` text form) to whole seconds and back.

Why: v1beta1 timeouts are Durations (``"10m"``, ``"1h30m0s"``), v1beta2 stores ``*Seconds`` ints.
Upstream truncates to whole seconds on the way in and prints Go's canonical form on the way out
(``600`` -> ``"10m0s"``); the conversion keeps the original spelling in its annotation when the
two differ.
"""

from __future__ import annotations

import re

__all__ = ["format_seconds", "parse_seconds"]

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
          "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_seconds(text: str) -> int:
    """Whole seconds of a Go duration string, truncated toward zero as Go's int32(d.Seconds())."""
    body = text
    sign = 1
    if body[:1] in "+-":
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    if body == "0":
        return 0
    if not body:
        raise ValueError(f"invalid duration {text!r}")
    pos, total = 0, 0.0
    while pos < len(body):
        match = _PART.match(body, pos)
        if match is None:
            raise ValueError(f"invalid duration {text!r}")
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    return sign * int(total)


def format_seconds(seconds: int) -> str:
    """Go's ``(time.Duration(s) * time.Second).String()`` for whole seconds."""
    if seconds == 0:
        return "0s"
    sign = "-" if seconds < 0 else ""
    rest = abs(seconds)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{sign}{minutes}m{secs}s"
    return f"{sign}{secs}s"
