"""syncpeer's HTTP API on the simulated links: the public routes peers use (in the protocol
versions the node speaks) and the admin
routes the harness drives, answering what `syncpeer.io.api`, `io.admin`, `io.deletes` and
`io.dht_admin` answer (the same statuses and JSON, decided by the same core functions).

Every error answer is `{"error": message}`; an exception in a handler is a 500, logged as
`http_handler_failed`, as the aiohttp server's error middleware does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

from syncpeer.core import envelope, protocol, serve
from syncpeer.core.admin import BadRequest, describe, publish_request
from syncpeer.core.dht.lookup import LookupResult, lookup_answer, lookup_request
from syncpeer.core.discovery import DiscoveryError
from syncpeer.core.errors import (
    InvalidCard,
    InvalidEnvelope,
    InvalidName,
    NotARecipient,
    UnknownFriend,
)
from syncpeer.core.fetch import FROM_HEADER
from syncpeer.core.keyring import Friend
from syncpeer.core.names import validate_name
from syncpeer.core.sync_events import FriendHeard
from syncpeer.sim.host import Reply, Request

if TYPE_CHECKING:
    from syncpeer.sim.node import SimPeer

Route = Callable[["Call"], None]


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Call:
    """One request being answered: its parts, and `json` / `bytes` / `fail` to answer."""

    def __init__(self, request: Request, peer: str | None, reply: Reply, params: list[str]):
        self.request = request
        self.peer = peer
        self._reply = reply
        self.params = params
        self.answered = False

    @property
    def query(self) -> dict[str, str]:
        query = self.request.path.partition("?")[2]
        return {key: values[0] for key, values in parse_qs(query).items()} if query else {}

    @property
    def header(self) -> Mapping[str, str]:
        return self.request.headers

    def send(
        self,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
        pace: tuple[int, int, float] | None = None,
    ) -> None:
        if self.answered:
            return
        self.answered = True
        self._reply(status, {**headers, "Content-Length": str(len(body))}, body, pace)

    def json(self, value: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> None:
        body = json.dumps(value, default=str).encode()
        self.send(status, {**(headers or {}), "Content-Type": "application/json"}, body)

    def raw(self, data: bytes, status: int = 200, headers: Mapping[str, str] | None = None) -> None:
        self.send(status, {"Content-Type": "application/octet-stream", **(headers or {})}, data)

    def fail(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        self.json({"error": message}, status, headers)

    def answer(self, answer: serve.Answer) -> None:
        if answer.body is None:
            self.send(answer.status, answer.headers, b"")
        else:
            self.json(answer.body, answer.status, answer.headers)

    def body_json(self) -> dict[str, Any]:
        try:
            body = json.loads(self.request.body)
        except ValueError:
            raise ApiError(400, "request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise ApiError(400, "request body must be a JSON object")
        return body

    def name(self) -> str:
        try:
            return validate_name(self.params[0])
        except InvalidName as error:
            raise ApiError(400, str(error)) from None


class SimApi:
    """The routes of one node."""

    def __init__(self, peer: SimPeer) -> None:
        self.peer = peer
        self.log = peer.log.bind(component="http")
        self.negotiator = serve.Negotiator(peer.versions)
        self.chunk_lists = serve.ChunkLists()
        self.routes: dict[tuple[str, ...], dict[str, Route]] = {
            ("health",): {"GET": self.health},
            ("ready",): {"GET": self.ready},
            ("identity",): {"GET": self.identity},
            ("files",): {"GET": self.listing},
            ("files", "*"): {"GET": self.envelope},
            ("admin", "friends"): {"GET": self.list_friends, "POST": self.add_friend},
            ("admin", "friends", "*"): {"DELETE": self.remove_friend},
            ("admin", "files"): {"GET": self.list_files, "POST": self.publish},
            ("admin", "files", "*"): {"DELETE": self.delete},
            ("admin", "files", "*", "content"): {"GET": self.content},
            ("admin", "files", "*", "versions"): {"GET": self.versions},
            ("admin", "open"): {"POST": self.open_envelope},
            ("admin", "status"): {"GET": self.status},
            ("admin", "events"): {"GET": self.events},
            ("admin", "dht", "table"): {"GET": self.dht_table},
            ("admin", "dht", "lookup"): {"POST": self.dht_lookup},
        }
        if protocol.V1_1 in peer.versions.speaks:
            self.routes[("files", "*", "chunks")] = {"GET": self.chunks}
        # The routes with a name in them, by length: tried after the exact paths.
        self._patterns: dict[int, list[tuple[tuple[str, ...], dict[str, Route]]]] = {}
        for shape, methods in self.routes.items():
            if "*" in shape:
                self._patterns.setdefault(len(shape), []).append((shape, methods))

    def handle(self, request: Request, peer: str | None, reply: Reply) -> None:
        path = request.path.partition("?")[0]
        segments = [unquote(part) for part in path.strip("/").split("/")]
        shape = tuple(segments)
        methods = self.routes.get(shape)
        params: list[str] = []
        if methods is None:
            for pattern, wild in self._patterns.get(len(segments), ()):
                if all(p == "*" or p == s for s, p in zip(segments, pattern, strict=True)):
                    methods, params = (
                        wild,
                        [s for s, p in zip(segments, pattern, strict=True) if p == "*"],
                    )
                    break
        call = Call(request, peer, reply, params)
        if methods is None:
            call.fail(404, "Not Found")
            return
        route = methods.get(request.method)
        if route is None:
            call.fail(405, "Method Not Allowed", {"Allow": ",".join(methods)})
            return
        self._run(route, call)

    def _run(self, route: Route, call: Call) -> None:
        try:
            route(call)
        except ApiError as error:
            call.fail(error.status, error.message)
        except Exception as error:
            self.log.exception(
                "http_handler_failed",
                trace_id=call.header.get("X-Trace-Id"),
                method=call.request.method,
                path=call.request.path,
            )
            call.fail(500, f"internal error: {type(error).__name__}")

    # ------------------------------------------------------------------ public

    def health(self, call: Call) -> None:
        peer = self.peer
        call.json(
            {
                "status": "ok",
                "name": peer.identity.name,
                "fingerprint": peer.fingerprint,
                "address": peer.address,
                "protocols": list(peer.versions.speaks),
            }
        )

    def ready(self, call: Call) -> None:
        dht = self.peer.dht
        wants_dht = self.peer.config.udp_port is not None
        call.answer(serve.ready(wants_dht, dht.protocol if dht is not None else None))

    def identity(self, call: Call) -> None:
        call.json(self.peer.identity.card.to_json())

    def _requester(self, call: Call) -> str | None:
        return call.peer if "X-Trace-Id" in call.header else None

    def listing(self, call: Call) -> None:
        peer = self.peer
        if peer.liar is not None and not peer.liar.trickles:
            call.json(peer.liar.listing(self._requester(call)))
            return
        trace_id = call.header.get("X-Trace-Id")
        version = self.negotiator.poll(call.header.get(protocol.HEADER), call.peer, trace_id)
        if isinstance(version, serve.Refused):
            if version.log is not None:
                self.log.error(version.log.event, **version.log.fields)
            call.answer(version.answer)
            return
        poller = call.header.get(FROM_HEADER)
        if poller and peer.syncer.engine.gave_up_on(poller):
            peer.syncer.feed(FriendHeard(poller))
        call.answer(
            serve.listing(
                peer.files.model,
                peer.instance,
                peer.mutants,
                version,
                if_none_match=call.header.get("If-None-Match"),
                author=call.query.get("author"),
            )
        )

    def envelope(self, call: Call) -> None:
        peer = self.peer
        if peer.liar is not None and not peer.liar.trickles:
            self._lie(call)
            return
        answer, part = serve.envelope(
            peer.files.model,
            call.params[0],
            if_match=call.header.get("If-Match"),
            range_header=call.header.get("Range"),
        )
        if part is None:
            call.answer(answer)
            return
        data = peer.files.read(part.file)
        if part.length != len(data):
            data = data[part.first : part.last + 1]
        peer.counters.bytes_served += len(data)
        if peer.liar is not None:  # a slowloris
            pace = peer.liar.pace(len(data))
            event = peer.liar.served_event(
                part.file.name, part.file, call.peer, first=part.first, fast=pace[0]
            )
            peer.log.info(event.event, **event.fields)
            call.send(answer.status, answer.headers, data, pace)
            return
        call.raw(data, answer.status, answer.headers)
        trace_id = call.header.get("X-Trace-Id")
        event = serve.served_event(part, trace_id, "complete", call.peer)
        self.log.info(event.event, **event.fields)

    def chunks(self, call: Call) -> None:
        peer = self.peer
        lie = peer.liar.chunk_list(call.params[0]) if peer.liar is not None else None
        if lie is not None:
            call.answer(lie)
            return
        call.answer(
            serve.chunk_list(
                peer.files.model,
                call.params[0],
                self.chunk_lists,
                peer.files.read,
                if_match=call.header.get("If-Match"),
            )
        )

    def _lie(self, call: Call) -> None:
        peer = self.peer
        assert peer.liar is not None
        name = call.params[0]
        served = peer.liar.envelope(name, self._requester(call))
        if served is None:
            call.fail(404, f"no file named {name!r}")
            return
        event = peer.liar.served_event(name, served[0], call.peer)
        peer.log.info(event.event, **event.fields)
        data = served[1]
        call.raw(data, headers={"ETag": f'"{hashlib.sha256(data).hexdigest()}"'})

    # ------------------------------------------------------------------ friends

    def list_friends(self, call: Call) -> None:
        call.json({"friends": [friend.to_json() for friend in self.peer.keyring]})

    def add_friend(self, call: Call) -> None:
        body = call.body_json()
        if set(body) == {"fingerprint"}:
            self._add_by_fingerprint(call, body["fingerprint"])
            return
        try:
            friend = Friend.from_json(body)
            added = self.peer.add_friend(friend)
        except (InvalidCard, ValueError) as error:
            raise ApiError(400, str(error)) from None
        call.json({"added": added, "friend": friend.to_json()})

    def _add_by_fingerprint(self, call: Call, fingerprint: object) -> None:
        """{"fingerprint": F} alone: the DHT finds F's address, F's node serves its card."""
        if fingerprint == self.peer.fingerprint:
            raise ApiError(400, "a node cannot add its own card as a friend")
        began = self.peer.host.now()

        def found(friend: Friend | DiscoveryError, lookup: LookupResult | None) -> None:
            if isinstance(friend, DiscoveryError):
                call.fail(friend.status, str(friend))
                return
            added = self.peer.add_friend(friend)
            assert lookup is not None
            call.json(
                {
                    "added": added,
                    "friend": friend.to_json(),
                    "lookup": {
                        "hops": lookup.hops,
                        "rpcs": len(lookup.queried),
                        "duration_ms": round((self.peer.host.now() - began) * 1000, 3),
                    },
                }
            )

        self.peer.discover_friend(fingerprint, found)

    def remove_friend(self, call: Call) -> None:
        fingerprint = call.params[0]
        try:
            self.peer.remove_friend(fingerprint)
        except UnknownFriend as error:
            raise ApiError(404, str(error)) from None
        call.json({"removed": fingerprint})

    # ------------------------------------------------------------------ files

    def _describe(self, file: Any) -> dict[str, Any]:
        return describe(file, self.peer.fingerprint)

    def list_files(self, call: Call) -> None:
        files = self.peer.files.model.files(call.query.get("author"))
        call.json({"files": [self._describe(file) for file in files]})

    def publish(self, call: Call) -> None:
        try:
            name, content, recipients = publish_request(call.body_json())
            file = self.peer.publish(name, content, recipients)
        except (BadRequest, InvalidName, UnknownFriend) as error:
            raise ApiError(400, str(error)) from None
        call.json(self._describe(file))
        self.peer.equivocate(file.name)

    def delete(self, call: Call) -> None:
        name = call.name()
        current = self.peer.files.model.current(name)
        if current is None or current.deleted:
            raise ApiError(404, f"no file named {name!r}")
        call.json(self._describe(self.peer.seal(name, None, None)))

    def content(self, call: Call) -> None:
        name = call.name()
        current = self.peer.files.model.current(name)
        if current is not None and current.deleted:
            raise ApiError(404, f"{name!r} was deleted (version {current.version})")
        try:
            plaintext = self.peer.plaintext(name)
        except NotARecipient:
            raise ApiError(403, "not a recipient") from None
        except KeyError:
            raise ApiError(404, f"no file named {name!r}") from None
        call.raw(plaintext)

    def open_envelope(self, call: Call) -> None:
        data = call.request.body
        peer = self.peer
        try:
            plaintext = envelope.decrypt(envelope.verify(data, peer.mutants), peer.identity)
        except InvalidEnvelope as error:
            raise ApiError(422, f"rejected envelope: {error}") from None
        except NotARecipient:
            raise ApiError(403, "not a recipient") from None
        peer.log.info("envelope_opened", component="crypto", size=len(data))
        call.raw(plaintext)

    def versions(self, call: Call) -> None:
        name = call.name()
        files = self.peer.files
        current = files.model.current(name)
        history = files.model.history(name)
        if current is None and not history:
            raise ApiError(404, f"no file named {name!r}")
        call.json(
            {
                "name": name,
                "current": None if current is None else self._describe(current),
                "versions": [
                    {**self._describe(file), "path": files.history_path(file)} for file in history
                ],
            }
        )

    # ------------------------------------------------------------------ status

    def status(self, call: Call) -> None:
        peer = self.peer
        call.json(
            {
                "name": peer.identity.name,
                "fingerprint": peer.fingerprint,
                "address": peer.address,
                "friends": len(peer.keyring),
                "files": len(peer.files.model.files()),
                "generation": peer.files.model.generation,
                "in_flight": peer.engine.in_flight,
                "partial_bytes": sum(peer.files.partials().values()),
                **peer.counters.to_json(),
                "dht": peer.dht.status() if peer.dht is not None else None,
                "protocol": {
                    "speaks": list(peer.versions.speaks),
                    "friends": peer.engine.protocols(),
                    "mismatches": peer.engine.mismatches(),
                },
            }
        )

    def events(self, call: Call) -> None:
        try:
            since = int(call.query.get("since", "0"))
        except ValueError:
            raise ApiError(400, "since must be an integer") from None
        events, next_seq = self.peer.events.since(since)
        call.json({"events": events, "next": next_seq})

    # ------------------------------------------------------------------ the DHT

    def dht_table(self, call: Call) -> None:
        if self.peer.dht is None:
            raise ApiError(404, "this node runs no DHT (start it with --udp-port)")
        call.json(self.peer.dht.table())

    def dht_lookup(self, call: Call) -> None:
        dht = self.peer.dht
        if dht is None:
            raise ApiError(404, "this node runs no DHT (start it with --udp-port)")
        try:
            target, want_value = lookup_request(call.body_json())
        except ValueError as error:
            raise ApiError(400, str(error)) from None
        began = self.peer.host.now()

        def done(result: LookupResult) -> None:
            answer, event = lookup_answer(result, (self.peer.host.now() - began) * 1000)
            dht.log.info(event.event, **event.fields)
            call.json(answer)

        dht.lookup(target, done, want_value=want_value)
