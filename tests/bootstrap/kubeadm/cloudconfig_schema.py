"""cloud-init's own JSON schema for `#cloud-config` (draft-04), from Debian's cloud-init
package. Missing means the machine lacks `apt-get install -y cloud-init`: the tests that need
it fail (never skip) with that instruction."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml

SCHEMA_PATH = Path(
    "/usr/lib/python3/dist-packages/cloudinit/config/schemas/schema-cloud-config-v1.json")


@functools.cache
def validator() -> Any:
    if not SCHEMA_PATH.exists():
        raise AssertionError(
            f"{SCHEMA_PATH} is missing: install cloud-init's schema with "
            "`apt-get install -y cloud-init` (Debian) to run these tests")
    return jsonschema_rs.Draft4Validator(json.loads(SCHEMA_PATH.read_text()))


def assert_valid_cloud_config(user_data: str) -> dict[str, Any]:
    """Parse `user_data` as cloud-init does (it must be `#cloud-config`, after an optional
    Jinja header) and assert it satisfies the schema; returns the parsed document."""
    lines = user_data.splitlines()
    if lines and lines[0].startswith("## template:"):
        lines = lines[1:]
    assert lines and lines[0].strip() == "#cloud-config", user_data[:80]
    doc = yaml.safe_load(user_data)
    assert isinstance(doc, dict), doc
    errors = [str(e) for e in validator().iter_errors(doc)]
    assert not errors, errors
    return doc
