"""Response media types, negotiated from Accept as kube-apiserver does.

JSON is the default and what every client we know asks for; YAML is served by converting the
JSON answer; a Table is asked for with ``as=Table;g=meta.k8s.io``. An Accept header that admits
none of them gets 406, naming what is accepted.
"""

from __future__ import annotations

from typing import Literal

import orjson

from shipyard.apimachinery import errors
from shipyard.apiserver.codec import encode_yaml
from shipyard.apiserver.http import Message, Send

MediaType = Literal["json", "yaml"]

_JSON = frozenset({"application/json", "*/*", "application/*", "*"})
_YAML = frozenset({"application/yaml"})
ACCEPTED = "application/json, application/yaml"


def negotiate(accept: str) -> MediaType:
    if not accept.strip():
        return "json"
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in _JSON:
            return "json"
        if media in _YAML:
            return "yaml"
    raise errors.NotAcceptable(f"only the following media types are accepted: {ACCEPTED}")


def yaml_sender(send: Send) -> Send:
    """Wrap ``send`` so a complete JSON response leaves as YAML (never used for streams)."""
    start: list[Message] = []

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            start.append(message)
            return
        head = start.pop() if start else None
        body = message.get("body", b"")
        if head is not None:
            headers = list(head.get("headers", []))
            ctype = dict(headers).get(b"content-type", b"")
            if ctype.startswith(b"application/json") and body:
                body = encode_yaml(orjson.loads(body))
                headers = [(k, v) for k, v in headers
                           if k not in (b"content-type", b"content-length")]
                headers += [(b"content-type", b"application/yaml"),
                            (b"content-length", str(len(body)).encode())]
            await send({**head, "headers": headers})
        await send({**message, "body": body})

    return wrapped
