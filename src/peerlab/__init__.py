"""peerlab: bring up a network of nodes, break it, drive a workload, check the result."""

from peerlab.errors import PeerlabError, UsageError

__version__ = "0.1.0"

__all__ = ["PeerlabError", "UsageError", "__version__"]
