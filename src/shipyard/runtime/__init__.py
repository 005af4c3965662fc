"""The controller runtime: informers and caches, work queues, the reconcile contract, the
manager, leader election and metrics, in the spirit of controller-runtime.

A controller is a `Reconciler` (`async def reconcile(req) -> Result`) registered on a `Manager`
with the kind it is `for_`, the kinds it `owns` and any other `watches`::

    mgr = Manager(client, leader_election=LeaderElectionConfig("my-ctrl", "kube-system"))
    await mgr.new_controller("configmaps", MyReconciler(mgr), for_=("v1", "ConfigMap"),
                             owns=[("v1", "Secret")], max_concurrent_reconciles=4)
    await mgr.run()
"""

from shipyard.runtime.cache import Cache, object_key
from shipyard.runtime.clock import Clock, FakeClock, LoopClock
from shipyard.runtime.controller import CacheSyncTimeout, Controller
from shipyard.runtime.handlers import EnqueueHandler, MapFunc, for_object, for_owner
from shipyard.runtime.informers import EventHandler, Informer
from shipyard.runtime.leaderelection import LeaderElectionConfig, LeaderElector
from shipyard.runtime.manager import LeaderElectionLost, Manager
from shipyard.runtime.metrics import REGISTRY, Metrics, default_metrics, serve_metrics
from shipyard.runtime.queueing import ShutDown, WorkQueue
from shipyard.runtime.ratelimiting import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    RateLimiter,
    default_controller_rate_limiter,
)
from shipyard.runtime.reconcile import Reconciler, Request, Result, TerminalError

__all__ = [
    "REGISTRY",
    "BucketRateLimiter",
    "Cache",
    "Clock",
    "CacheSyncTimeout",
    "Controller",
    "EnqueueHandler",
    "EventHandler",
    "FakeClock",
    "Informer",
    "ItemExponentialFailureRateLimiter",
    "LeaderElectionConfig",
    "LeaderElectionLost",
    "LeaderElector",
    "LoopClock",
    "Manager",
    "MapFunc",
    "MaxOfRateLimiter",
    "Metrics",
    "RateLimiter",
    "Reconciler",
    "Request",
    "Result",
    "ShutDown",
    "TerminalError",
    "WorkQueue",
    "default_controller_rate_limiter",
    "default_metrics",
    "for_object",
    "for_owner",
    "object_key",
    "serve_metrics",
]
