"""``python -m shipyard.cli``: how `shipyard management up` starts the server detached."""

from shipyard.cli.main import main

main()
