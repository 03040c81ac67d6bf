"""Discovery: bootstrap, Kademlia lookups and capability queries over the host's own
authenticated connections (requests `kad/find_node` and `kad/find_capable`).

Records are learned from hellos (every connected peer sends its signed record), from
lookup answers, and from the `records` gossip topic (every node announces its record
after bootstrap, on each update and every third of `record_ttl`); each is verified before
use. The capability query is answered from the records a node and its neighbours hold.
With records flooded, every node's cache holds the whole network (up to
`record_cache_size`, 10,000): right for networks of tens to thousands of nodes, not a
global index for millions.

The cache is ordered by when each record was last heard of. A record not heard of for
`record_ttl` is forgotten (its node is likely gone; a live one re-announces), and when the
cache is full the record heard of longest ago goes first, so a flood of fresh signed
records (keys cost nothing) pushes out only records nobody vouches for: those of
connected peers and of routing-table entries are kept (the table drops its own entries
when they fail to answer).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import TYPE_CHECKING

from bcai.encoding import decode, encode
from bcai.errors import BcaiError, InvalidNodeRecord, MalformedMessage, OutboundLimitReached
from bcai.p2p import scoring
from bcai.p2p.kademlia import LookupState, RoutingTable, compute_distance
from bcai.p2p.records import CapabilityQuery, NodeId, NodeRecord, SignedNodeRecord, parse_peer_address

if TYPE_CHECKING:
    from bcai.p2p.host import GossipMessage, Host

RECORDS_TOPIC = "records"
FIND_NODE = "kad/find_node"
FIND_CAPABLE = "kad/find_capable"
MAX_ANSWER_RECORDS = 64
RECORDS_PER_TOKEN = 500  # a capability query costs the asker one more message per this many records scanned


class Discovery:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.table = RoutingTable(host.node_id, host.config.k)
        # node -> (record, when last heard of), the longest unheard first
        self.records: OrderedDict[NodeId, tuple[SignedNodeRecord, float]] = OrderedDict()
        self.own: SignedNodeRecord | None = None
        self._verified: OrderedDict[bytes, SignedNodeRecord] = OrderedDict()
        self._relayed: OrderedDict[NodeId, int] = OrderedDict()  # highest seq relayed per node
        host.register_handler(FIND_NODE, self._serve_find_node)
        host.register_handler(FIND_CAPABLE, self._serve_find_capable)

    def decode_record(self, data: bytes) -> SignedNodeRecord:
        """Decode and verify a signed record; the same bytes seen again skip the work (a
        record arrives many times: in hellos, lookup answers and gossip)."""
        known = self._verified.get(data)
        if known is not None:
            self._verified.move_to_end(data)
            return known
        signed = SignedNodeRecord.from_bytes(data, self.host.config.network_id)
        self._verified[data] = signed
        while len(self._verified) > self.host.config.record_cache_size:
            self._verified.popitem(last=False)
        return signed

    def process_own_record(self, signed: SignedNodeRecord) -> None:
        self.own = signed

    def process_record(self, signed: SignedNodeRecord) -> None:
        """Remember a verified record (a newer sequence number replaces an older one)."""
        node = signed.node_id
        if node == self.host.node_id:
            return
        now = self.host.clock.now()
        known = self.records.get(node)
        if known is not None and known[0].record.seq > signed.record.seq:
            return
        self.records[node] = (signed, now)
        self.records.move_to_end(node)
        self.table.process_seen(signed)
        self._expire(now)

    def _is_vouched_for(self, node: NodeId) -> bool:
        """A connected peer or a routing-table entry: kept however long since it was heard of."""
        return node in self.host._peers or self.table.get(node) is not None

    def _expire(self, now: float) -> None:
        """Forget records unheard of for `record_ttl`, and the longest unheard while the
        cache is over `record_cache_size`; those vouched for count as heard of now."""
        cfg = self.host.config
        for _ in range(len(self.records)):  # each entry at most once: all may be vouched for
            node, (signed, heard) = next(iter(self.records.items()))
            if now - heard < cfg.record_ttl and len(self.records) <= cfg.record_cache_size:
                return
            if self._is_vouched_for(node):
                self.records[node] = (signed, now)
                self.records.move_to_end(node)
            else:
                del self.records[node]
        while len(self.records) > cfg.record_cache_size:  # all vouched for: the cap still holds,
            # the routing table's entries go before connected peers'
            node = next((n for n in self.records if n not in self.host._peers), next(iter(self.records)))
            del self.records[node]

    def get_records(self) -> list[SignedNodeRecord]:
        """Every cached record that has not expired."""
        self._expire(self.host.clock.now())
        return [signed for signed, _ in self.records.values()]

    async def process_record_gossip(self, message: GossipMessage) -> bool:
        """A record announced on the `records` topic (verified; a bad one is the sender's
        fault). Each node's record is relayed once per sequence number: a replayed old one
        (or one relayed before, back after the seen-cache forgot it) stops here instead of
        being flooded across the whole network again."""
        signed = self.decode_record(message.data)
        self.process_record(signed)
        node, seq = signed.node_id, signed.record.seq
        if self._relayed.get(node, -1) >= seq:
            self.host.metrics["stale_records"] += 1
            return False
        self._relayed[node] = seq
        self._relayed.move_to_end(node)
        while len(self._relayed) > self.host.config.record_cache_size:
            self._relayed.popitem(last=False)
        return True

    async def announce(self) -> None:
        """Publish our current record on the `records` topic."""
        if self.own is not None:
            await self.host.publish(RECORDS_TOPIC, self.own.to_bytes())

    def get_record(self, node: NodeId) -> SignedNodeRecord | None:
        self._expire(self.host.clock.now())
        known = self.records.get(node)
        return known[0] if known is not None else None

    async def bootstrap(self, addresses: list[str]) -> int:
        """Connect to `<node id hex>@host:port` addresses, then look up our own id (which
        fills the routing table and makes us known). Returns how many bootstraps answered."""
        connected = 0
        for text in addresses:
            node, address = parse_peer_address(text)
            try:
                await self.host.connect(address, node)
                connected += 1
            except BcaiError:
                continue
        if connected:
            await self.lookup(self.host.node_id)
            await self.announce()
        return connected

    async def lookup(self, target: NodeId) -> list[SignedNodeRecord]:
        """Iterative FIND_NODE: the k closest nodes to `target` that answered or are known."""
        cfg = self.host.config
        state = LookupState(target, self.host.node_id, cfg.k, cfg.alpha, cfg.lookup_ids_per_host)
        state.process_records(self.table.get_closest(target, cfg.k))
        in_flight: dict[asyncio.Task[list[SignedNodeRecord]], NodeId] = {}
        dials = 0
        blocked = False  # a dial found no free outbound slot: dial again once an answer is in
        while True:
            batch = [] if blocked else state.get_next_batch(len(in_flight))
            for signed in batch:
                if signed.node_id not in self.host.peers:
                    if dials >= cfg.lookup_max_dials:  # not asked: the lookup ends with what it has
                        self.host.metrics["lookup_dials_capped"] += 1
                        state.process_failure(signed.node_id)
                        continue
                    dials += 1
                task = asyncio.ensure_future(self._ask(signed, FIND_NODE, encode({"target": target.raw})))
                in_flight[task] = signed.node_id
            if not in_flight:
                if batch:
                    continue  # all of it over the dial cap: the next closest may be connected
                break
            done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            blocked = False
            for task in done:
                node = in_flight.pop(task)
                error = task.exception()
                if error is None:
                    # an answer is the answerer's k closest (and its own record): take no more
                    answer = sorted(task.result(), key=lambda s: compute_distance(s.node_id, target))
                    state.process_answer(node, answer[: cfg.k + 1])
                elif isinstance(error, OutboundLimitReached) and in_flight:
                    # every slot is busy with this lookup's own questions: once one is
                    # answered its connection is idle and makes room (`max_outbound`)
                    dials -= 1
                    state.process_deferred(node)
                    blocked = True
                else:
                    state.process_failure(node)
                    if isinstance(error, OutboundLimitReached):  # our limit, not its failure
                        self.host.metrics["lookup_dials_capped"] += 1
                    else:
                        self.table.process_failure(node)
        return state.get_result()

    async def find_node(self, target: NodeId) -> SignedNodeRecord | None:
        """The signed record of `target`, from our tables or by a lookup."""
        known = self.get_record(target)
        if known is not None:
            return known
        for signed in await self.lookup(target):
            if signed.node_id == target:
                return signed
        return None

    async def find_nodes(self, query: CapabilityQuery, ask_peers: int = 8) -> list[NodeRecord]:
        """Records of nodes matching `query` (e.g. `CapabilityQuery({"gpus": 4})`), from our
        cache and the caches of up to `ask_peers` connected peers; sorted by node id."""
        found = {s.node_id: s for s in self.get_records() if query.is_match(s.record)}
        if self.own is not None and query.is_match(self.own.record):
            found[self.host.node_id] = self.own
        peers = self.host.peers[:ask_peers]
        answers = await asyncio.gather(
            *(self._ask_connected(p, FIND_CAPABLE, encode(query.to_obj())) for p in peers), return_exceptions=True
        )
        for answer in answers:
            if isinstance(answer, BaseException):
                continue
            for signed in answer:
                if query.is_match(signed.record):  # never trust the remote filter
                    found[signed.node_id] = signed
                self.process_record(signed)
        return [found[n].record for n in sorted(found)]

    async def _ask(self, signed: SignedNodeRecord, protocol: str, payload: bytes) -> list[SignedNodeRecord]:
        node = signed.node_id
        if node not in self.host.peers:  # not kept: closed once idle, or for a later dial's slot
            await self.host.connect(signed.record.address, node, keep=False)
        return await self._ask_connected(node, protocol, payload)

    async def _ask_connected(self, node: NodeId, protocol: str, payload: bytes) -> list[SignedNodeRecord]:
        body = await self.host.request(node, protocol, payload)
        try:
            items = decode(body)
            if not isinstance(items, list) or len(items) > MAX_ANSWER_RECORDS:
                raise InvalidNodeRecord(f"an answer is a list of at most {MAX_ANSWER_RECORDS} records")
            records = [self.decode_record(item) for item in items]
        except (BcaiError, TypeError) as exc:
            self.host.penalize(node, scoring.PENALTY_MALFORMED, f"bad {protocol} answer: {exc}")
            raise InvalidNodeRecord(f"bad {protocol} answer from {node!r}") from None
        for signed in records:
            self.process_record(signed)
        return records

    async def _serve_find_node(self, peer: NodeId, payload: bytes) -> bytes:
        try:
            request = decode(payload)
            target = NodeId(request["target"])
        except (BcaiError, TypeError, KeyError):
            raise MalformedMessage("find_node wants {target: 32 bytes}") from None
        closest = self.table.get_closest(target, self.host.config.k)
        if self.own is not None:  # let the asker learn our newest record too
            closest.append(self.own)
        return encode([s.to_bytes() for s in closest[:MAX_ANSWER_RECORDS]])

    async def _serve_find_capable(self, peer: NodeId, payload: bytes) -> bytes:
        try:
            query = CapabilityQuery.from_obj(decode(payload))
        except BcaiError as exc:
            raise MalformedMessage(f"bad capability query: {exc}") from None
        records = self.get_records()
        # a scan of every cached record (up to 32 conditions each) is not one message's work
        if not self.host.take_tokens(peer, len(records) // RECORDS_PER_TOKEN):
            return encode([])  # over its rate limit (and penalised for it)
        matches = [s for s in records if query.is_match(s.record)]
        if self.own is not None and query.is_match(self.own.record):
            matches.append(self.own)
        return encode([s.to_bytes() for s in matches[:MAX_ANSWER_RECORDS]])
