"""An async REST client for any Kubernetes API server (Shipyard's or a real one).

Controllers reach the API only through this package, never through the server's code: that is
what lets the same controllers run against kube-apiserver.
"""
