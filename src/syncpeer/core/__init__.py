"""The sans-IO core: no sockets, no clock reads, no randomness of its own, no threads, no
state shared between nodes.

A driver hands in monotonic time for timers and wall-clock time for timestamps, as separate
numbers; random bytes (`RandomSource`) for keys, nonces and DHT ids, and a `random.Random`
for the sync engine's trace ids; and each node's `Mutants`. So the same logic runs over real
sockets and in a deterministic simulator of many nodes in one process (docs/syncpeer.md,
"What the core takes from its driver").
"""
