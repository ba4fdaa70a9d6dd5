"""syncpeer on peerlab's simulator: the same core (sync engine, store, envelopes, DHT,
the server and client sides of the protocol) driven by a simulated host instead of asyncio.

`SimPeer(host)` is what `launch.sim` in syncpeer's manifest names. The host (see
`peerlab.sim.host`; syncpeer never imports peerlab, so `host.py` here states what it uses)
gives it virtual time, seeded randomness, a disk and simulated links; this package is the
driver, as `syncpeer.io` is over real sockets:

    host.py    the host as this driver uses it
    files.py   envelopes on the host's disk, in step with the store (io/filestore.py)
    log.py     JSON log lines and the event ring (io/logs.py)
    sync.py    the sync engine's driver: polls and downloads as simulated exchanges
    dht.py     the DHT's driver: datagrams and timers
    api.py     the public and admin HTTP API, served on the simulated links
    node.py    SimPeer: one node, wired together
"""
