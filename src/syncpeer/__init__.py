"""syncpeer: the reference peer-to-peer encrypted file-sync peer that peerlab tests.

`syncpeer.core` holds the sans-IO logic (identity, keyring, envelopes, store, sync decisions);
`syncpeer.io` drives it with asyncio, aiohttp and the filesystem. syncpeer never imports peerlab.
"""

__version__ = "0.1.0"
