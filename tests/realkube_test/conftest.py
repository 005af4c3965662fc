"""Fixtures of the real-Kubernetes tier for the tests in this directory.

Importing them here (rather than naming ``tests.realkube`` in ``pytest_plugins``) keeps test
modules free to import `tests.realkube` themselves without pytest's assertion-rewrite warning,
which the suite's ``filterwarnings = error`` would turn into a collection error.
"""

from tests.realkube import realkube, realkube_api, realkube_server

__all__ = ["realkube", "realkube_api", "realkube_server"]
