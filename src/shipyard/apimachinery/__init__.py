"""Pure object plumbing shared by the server, the client and the controllers.

Nothing in this package performs I/O: it names things (errors, selectors, patches, metadata
rules) the way Kubernetes' own apimachinery does, so every layer above speaks one vocabulary.
"""
