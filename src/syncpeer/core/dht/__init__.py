"""syncpeer's Kademlia DHT, sans-IO: node ids, the puzzle, messages, records, the routing
table, iterative lookups, and the protocol state machine that ties them together.

Nothing here opens a socket, reads a clock or draws randomness of its own: datagrams, the
time (`now`, monotonic seconds for timers, and `wall`, the wall clock for this node's own
signed record) and random bytes are passed in, and the protocol answers with effects
(datagrams to send, finished lookups, log events). `syncpeer.io.dht_transport` runs it over
asyncio UDP; a test can run many of them in one process against a virtual clock.
See docs/dht.md.
"""

from syncpeer.core.dht.ids import ID_BITS, distance, id_hex, node_id_of, parse_id
from syncpeer.core.dht.lookup import LookupResult
from syncpeer.core.dht.messages import Contact, InvalidMessage
from syncpeer.core.dht.protocol import DhtConfig, DhtProtocol, Effect, LookupDone, Send
from syncpeer.core.dht.records import AddressRecord, InvalidRecord, RecordStore, sign_record
from syncpeer.core.logevent import LogEvent

__all__ = [
    "ID_BITS",
    "AddressRecord",
    "Contact",
    "DhtConfig",
    "DhtProtocol",
    "Effect",
    "InvalidMessage",
    "InvalidRecord",
    "LogEvent",
    "LookupDone",
    "LookupResult",
    "RecordStore",
    "Send",
    "distance",
    "id_hex",
    "node_id_of",
    "parse_id",
    "sign_record",
]
