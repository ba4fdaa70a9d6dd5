"""The deterministic simulator: many nodes of a system with a sans-IO core in one process, on
virtual time, with every source of nondeterminism owned by the run's seed.

    loop.py      the event loop: virtual time, timers in (time, order), run until
    clock.py     VirtualClock: peerlab's Clock over the loop (waiting runs the simulation)
    disk.py      a node's simulated disk: what a crash keeps and what it loses
    host.py      what a simulated node gets from the simulator (time, randomness, timers,
                 its disk, datagrams, requests, its log)
    network.py   the links between nodes: datagrams and request streams under faults,
                 and the fault plane behind `env.net`
    world.py     the nodes, their lives (start, crash, stop, pause) and the harness's requests
    explore.py, shrink.py, runs.py   many seeds at once; the smallest failing schedule

The backend that puts it behind an Environment is `peerlab.backends.sim`; docs/sim.md says
what the simulation sees and what it cannot, and how a system joins it.
"""
