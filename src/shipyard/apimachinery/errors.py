"""Kubernetes API errors, one class per Status reason.

The server raises these; the client rebuilds them from a Status body with `from_status`. Each
maps 1:1 to a `metav1.StatusReason` and its HTTP code, so a caller can catch `Conflict` on either
side of the wire::

    StatusError                      (any non-success Status)
    ├── BadRequest               400  BadRequest
    ├── Unauthorized             401  Unauthorized
    ├── Forbidden                403  Forbidden
    ├── NotFound                 404  NotFound
    ├── MethodNotAllowed         405  MethodNotSupported
    ├── NotAcceptable            406  NotAcceptable
    ├── AlreadyExists            409  AlreadyExists
    ├── Conflict                 409  Conflict
    ├── Gone                     410  Gone
    │   └── Expired              410  Expired
    ├── RequestEntityTooLarge    413  RequestEntityTooLarge
    ├── UnsupportedMediaType     415  UnsupportedMediaType
    ├── Invalid                  422  Invalid
    ├── TooManyRequests          429  TooManyRequests
    ├── InternalError            500  InternalError
    ├── ServiceUnavailable       503  ServiceUnavailable
    └── Timeout                  504  Timeout
"""

from __future__ import annotations

from typing import Any, ClassVar, NotRequired, TypedDict, cast


class StatusCause(TypedDict, total=False):
    reason: str
    message: str
    field: str


class StatusDetails(TypedDict, total=False):
    name: str
    group: str
    kind: str
    uid: str
    causes: list[StatusCause]
    retryAfterSeconds: int


class Status(TypedDict):
    kind: str
    apiVersion: str
    metadata: dict[str, Any]
    status: str
    message: NotRequired[str]
    reason: NotRequired[str]
    details: NotRequired[StatusDetails]
    code: int


class StatusError(Exception):
    """A request failed; `status()` is the body kube-apiserver would send."""

    code: ClassVar[int] = 500
    reason: ClassVar[str] = ""

    def __init__(
        self,
        message: str,
        *,
        details: StatusDetails | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details: StatusDetails = details or {}
        self.headers: dict[str, str] = headers or {}

    @property
    def causes(self) -> list[StatusCause]:
        return self.details.get("causes", [])

    def status(self) -> Status:
        body: Status = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "code": self.code,
        }
        if self.reason:
            body["reason"] = self.reason
        if self.details:
            body["details"] = self.details
        return body


class BadRequest(StatusError):
    code = 400
    reason = "BadRequest"


class Unauthorized(StatusError):
    code = 401
    reason = "Unauthorized"


class Forbidden(StatusError):
    code = 403
    reason = "Forbidden"


class NotFound(StatusError):
    code = 404
    reason = "NotFound"


class MethodNotAllowed(StatusError):
    code = 405
    reason = "MethodNotAllowed"


class NotAcceptable(StatusError):
    code = 406
    reason = "NotAcceptable"


class AlreadyExists(StatusError):
    code = 409
    reason = "AlreadyExists"


class Conflict(StatusError):
    code = 409
    reason = "Conflict"


class Gone(StatusError):
    code = 410
    reason = "Gone"


class Expired(Gone):
    reason = "Expired"


class RequestEntityTooLarge(StatusError):
    code = 413
    reason = "RequestEntityTooLarge"


class UnsupportedMediaType(StatusError):
    code = 415
    reason = "UnsupportedMediaType"


class Invalid(StatusError):
    code = 422
    reason = "Invalid"


class TooManyRequests(StatusError):
    code = 429
    reason = "TooManyRequests"


class InternalError(StatusError):
    code = 500
    reason = "InternalError"


class ServiceUnavailable(StatusError):
    code = 503
    reason = "ServiceUnavailable"


class Timeout(StatusError):
    code = 504
    reason = "Timeout"


_BY_REASON: dict[str, type[StatusError]] = {
    cls.reason: cls
    for cls in (
        BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, NotAcceptable,
        AlreadyExists, Conflict, Gone, Expired, RequestEntityTooLarge, UnsupportedMediaType,
        Invalid, TooManyRequests, InternalError, ServiceUnavailable, Timeout,
    )
}
_BY_CODE: dict[int, type[StatusError]] = {
    400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 405: MethodNotAllowed,
    406: NotAcceptable, 409: Conflict, 410: Gone, 413: RequestEntityTooLarge,
    415: UnsupportedMediaType, 422: Invalid, 429: TooManyRequests, 500: InternalError,
    503: ServiceUnavailable, 504: Timeout,
}


def from_status(body: dict[str, Any], code: int | None = None) -> StatusError:
    """Rebuild the error a Status body describes; unknown reasons fall back to the HTTP code."""
    reason = str(body.get("reason") or "")
    http_code = int(body.get("code") or code or 500)
    cls = _BY_REASON.get(reason) or _BY_CODE.get(http_code, StatusError)
    details = cast(StatusDetails, body.get("details") or {})
    err = cls(str(body.get("message") or reason or f"HTTP {http_code}"), details=details)
    if cls is StatusError or (cls.code != http_code and reason not in _BY_REASON):
        err.code = http_code  # type: ignore[misc]
    return err


def not_found(resource: str, group: str, name: str) -> NotFound:
    qualified = f"{resource}.{group}" if group else resource
    return NotFound(
        f'{qualified} "{name}" not found',
        details={"name": name, "group": group, "kind": resource},
    )


def already_exists(resource: str, group: str, name: str) -> AlreadyExists:
    qualified = f"{resource}.{group}" if group else resource
    return AlreadyExists(
        f'{qualified} "{name}" already exists',
        details={"name": name, "group": group, "kind": resource},
    )


def conflict(resource: str, group: str, name: str) -> Conflict:
    qualified = f"{resource}.{group}" if group else resource
    return Conflict(
        f'Operation cannot be fulfilled on {qualified} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        details={"name": name, "group": group, "kind": resource},
    )


def invalid(kind: str, group: str, name: str, causes: list[StatusCause]) -> Invalid:
    """422 with kube-apiserver's message: `Kind.group "name" is invalid: [a, b]`."""
    qualified = f"{kind}.{group}" if group else kind
    parts = [
        f"{c['field']}: {c['message']}" if c.get("field") else c.get("message", "")
        for c in causes
    ]
    summary = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    return Invalid(
        f'{qualified} "{name}" is invalid: {summary}',
        details={"name": name, "group": group, "kind": kind, "causes": causes},
    )
