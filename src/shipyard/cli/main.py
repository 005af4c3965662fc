"""The ``shipyard`` entry point: a click group that gathers the subcommands.

Each subcommand lives in its own module and imports what it drives lazily.
"""

from __future__ import annotations

import click

from shipyard.cli.apiserver import apiserver
from shipyard.cli.controllers import controllers
from shipyard.cli.convert import convert
from shipyard.cli.create import create
from shipyard.cli.day2 import delete, get
from shipyard.cli.describe import describe
from shipyard.cli.generate import generate
from shipyard.cli.image import build
from shipyard.cli.init import init
from shipyard.cli.management import management
from shipyard.cli.move import move
from shipyard.cli.node import node
from shipyard.cli.rollout import rollout
from shipyard.cli.upgrade import upgrade
from shipyard.cli.webhook import conversion_webhook


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="shipyard", prog_name="shipyard")
def main() -> None:
    """Shipyard: Kubernetes Cluster API with an embedded management plane."""


main.add_command(apiserver)
main.add_command(build)
main.add_command(controllers)
main.add_command(convert)
main.add_command(create)
main.add_command(generate)
main.add_command(init)
main.add_command(management)
main.add_command(conversion_webhook)
main.add_command(node)
main.add_command(move)
main.add_command(upgrade)
main.add_command(describe)
main.add_command(get)
main.add_command(delete)
main.add_command(rollout)

if __name__ == "__main__":
    main()
