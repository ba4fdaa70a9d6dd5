"""The sans-IO core: no sockets, no clock reads, no randomness of its own.

Time and random bytes are passed in by the caller, so the same logic runs over real sockets and
in a deterministic simulator.
"""
