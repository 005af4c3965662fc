"""Cluster templates shipped per infrastructure provider and flavor, rendered the way
`clusterctl generate cluster` renders a provider's `cluster-template[-<flavor>].yaml`.

Contract:
- Templates live in this package as `<provider>/cluster-template[-<flavor>].yaml`;
  `providers()` and `flavors(provider)` list them; `--from FILE` renders any file instead.
- Variable values come, highest precedence first, from the command's flags (CLUSTER_NAME,
  NAMESPACE, KUBERNETES_VERSION, CONTROL_PLANE_MACHINE_COUNT, WORKER_MACHINE_COUNT), the
  process environment, then the clusterctl config file's top-level keys
  (`$XDG_CONFIG_HOME/cluster-api/clusterctl.yaml` or `~/.cluster-api/clusterctl.yaml`).
- `render(...)` fails with `envsubst.MissingVariables` naming every variable without a value
  or default (clusterctl's message); `list_variables(...)` gives clusterctl's
  `--list-variables` report.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from shipyard.templates import envsubst

PREFIX = "cluster-template"
BUILTIN_DEFAULTS = {
    "NAMESPACE": "current Namespace in the KubeConfig file",
    "CONTROL_PLANE_MACHINE_COUNT": "1",
    "WORKER_MACHINE_COUNT": "0",
}


class TemplateNotFound(LookupError):
    pass


def _root() -> Any:
    return resources.files(__name__)


def providers() -> list[str]:
    return sorted(p.name for p in _root().iterdir()
                  if p.is_dir() and any(f.name.startswith(PREFIX) for f in p.iterdir()))


def flavors(provider: str) -> list[str]:
    """The provider's flavors; "" is the default template."""
    directory = _root() / provider
    if not directory.is_dir():
        return []
    out = []
    for f in directory.iterdir():
        if f.name.startswith(PREFIX) and f.name.endswith(".yaml"):
            out.append(f.name[len(PREFIX):-len(".yaml")].lstrip("-"))
    return sorted(out)


def template_name(flavor: str = "") -> str:
    return f"{PREFIX}-{flavor}.yaml" if flavor else f"{PREFIX}.yaml"


def template_text(provider: str, flavor: str = "") -> str:
    if provider not in providers():
        raise TemplateNotFound(
            f"no templates for infrastructure provider {provider!r}; "
            f"available: {', '.join(providers())}")
    f = _root() / provider / template_name(flavor)
    if not f.is_file():
        known = ", ".join(repr(x) if x else "(default)" for x in flavors(provider))
        raise TemplateNotFound(
            f"provider {provider!r} has no flavor {flavor!r}; available: {known}")
    return str(f.read_text())


def config_path() -> Path:
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if xdg and (Path(xdg) / "cluster-api" / "clusterctl.yaml").exists():
        return Path(xdg) / "cluster-api" / "clusterctl.yaml"
    return Path.home() / ".cluster-api" / "clusterctl.yaml"


def load_config(path: Path | None) -> dict[str, str]:
    """The config file's top-level scalar keys as strings ({} when there is no file)."""
    path = path or config_path()
    if not path.exists():
        return {}
    doc = yaml.safe_load(path.read_text()) or {}
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return {str(k): _scalar(v) for k, v in doc.items() if not isinstance(v, (dict, list))}


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


@dataclass
class Values:
    """Where variables come from (flags > environment > config file)."""

    flags: Mapping[str, str]
    environ: Mapping[str, str]
    config: Mapping[str, str]

    def __call__(self, name: str) -> str | None:
        for source in (self.flags, self.environ, self.config):
            if name in source:
                return source[name]
        return None


def render(text: str, values: Values) -> str:
    return envsubst.substitute(text, values)


def list_variables(text: str, values: Values) -> str:
    """clusterctl's report: required variables without a value, then the optional ones with
    what they default to, names padded to one column."""
    required: list[str] = []
    optional: dict[str, str] = {}
    for var in envsubst.variables(text):
        if var.name in values.flags:
            optional[var.name] = values.flags[var.name]
        elif var.name in BUILTIN_DEFAULTS:
            optional[var.name] = BUILTIN_DEFAULTS[var.name]
        elif var.required:
            required.append(var.name)
        else:
            optional[var.name] = f'"{var.default}"'
    lines: list[str] = []
    width = max((len(n) for n in [*required, *optional]), default=0) + 2
    if required:
        lines.append("Required Variables:")
        lines.extend(f"  - {name}" for name in required)
        lines.append("")
    if optional:
        lines.append("Optional Variables:")
        lines.extend(f"  - {name.ljust(width)}(defaults to {default})"
                     for name, default in sorted(optional.items()))
        lines.append("")
    return "\n".join(lines)


__all__ = ["BUILTIN_DEFAULTS", "TemplateNotFound", "Values", "config_path", "flavors",
           "list_variables", "load_config", "providers", "render", "template_name",
           "template_text"]
