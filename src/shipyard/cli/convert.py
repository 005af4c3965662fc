"""``shipyard convert -f old.yaml``: Cluster API's first API (`cluster.k8s.io/v1alpha1`)
rewritten as today's objects (see `shipyard.api.legacy` for the mapping).

The converted manifest goes to stdout (or `-o FILE`), ready for `kubectl apply -f -`; every
field that could not be carried over is listed on stderr under "Could not map:". Input that
holds no v1alpha1 objects, or that is not YAML, is a clear error with exit status 1.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import yaml


@click.command("convert")
@click.option("-f", "--filename", "files", multiple=True, required=True,
              help="Manifest(s) to convert; - reads stdin.")
@click.option("-i", "--infrastructure", default="process", show_default=True,
              help="Provider for provider specs that are not AWS's.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the result here instead of stdout.")
def convert(files: tuple[str, ...], infrastructure: str, output: Path | None) -> None:
    """Convert cluster.k8s.io/v1alpha1 manifests to current Cluster API objects."""
    from shipyard.api.legacy import ConversionError
    from shipyard.api.legacy import convert as run

    docs: list[object] = []
    for name in files:
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text()
            docs += list(yaml.safe_load_all(text))
        except OSError as e:
            raise click.ClickException(f"cannot read {name}: {e.strerror or e}") from e
        except yaml.YAMLError as e:
            raise click.ClickException(f"{name} is not valid YAML: {e}") from e
    try:
        result = run(docs, infrastructure)
    except ConversionError as e:
        raise click.ClickException(str(e)) from e
    rendered = yaml.safe_dump_all(result.objects, sort_keys=False)
    if output is not None:
        output.write_text(rendered)
    else:
        click.echo(rendered, nl=False)
    if result.unmapped:
        click.echo("Could not map:", err=True)
        for note in result.unmapped:
            click.echo(f"  - {note}", err=True)
