"""The controller runtime: informers and caches, work queues, the reconcile contract, the
manager, leader election and metrics, in the spirit of controller-runtime."""
