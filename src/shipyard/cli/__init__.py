"""The ``shipyard`` command: clusterctl's verbs and the management plane's lifecycle.

`main.main` is the entry point. Commands import the server, storage and providers lazily, inside
the command, so ``shipyard --help`` stays fast and works while parts are missing.
"""
