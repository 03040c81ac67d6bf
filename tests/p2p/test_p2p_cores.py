"""The pure p2p cores with tiny inputs: rate limit, scores and bans, seen-cache,
forwarding rule, k-buckets, lookup state, node records, wire decoding."""

from __future__ import annotations

import pytest

from bcai.crypto import PrivateKey
from bcai.errors import InvalidGossip, InvalidNodeRecord, MalformedMessage
from bcai.p2p import CapabilityQuery, NodeId, NodeRecord, SeenCache, SignedNodeRecord, job_topic, parse_peer_address
from bcai.p2p.budget import BufferBudget
from bcai.p2p.gossip import Priority, compute_forward_targets, get_topic_policy
from bcai.p2p.kademlia import LookupState, RoutingTable, compute_bucket_index, compute_distance
from bcai.p2p.records import MAX_CAPABILITIES
from bcai.p2p.scoring import PeerScores, TokenBucket
from bcai.p2p.wire import Hello, Publish, Request, Response, Subscribe, decode_message, encode_message


def _id(n: int) -> NodeId:
    return NodeId(n.to_bytes(32, "big"))


def _signed(label: str, seq: int = 1, **caps: int) -> SignedNodeRecord:
    key = PrivateKey.from_label(label)
    return NodeRecord(key.public_key, "127.0.0.1:1", frozenset({"worker"}), caps, seq).sign(key, "bcai")


def test_token_bucket_allows_burst_then_rate() -> None:
    bucket = TokenBucket.full(rate=10, burst=5, now=0.0)
    assert [bucket.take(0.0) for _ in range(6)] == [True] * 5 + [False]
    assert bucket.take(0.1) and not bucket.take(0.1)
    assert sum(bucket.take(10.0) for _ in range(10)) == 5  # refill capped at the burst


def test_token_bucket_in_debt_for_what_arrived_until_repaid() -> None:
    """The byte rate charges a frame once it is in, whatever its size: the bucket goes into
    debt and the reader waits `debt / rate` seconds before reading on."""
    bucket = TokenBucket.full(rate=100, burst=200, now=0.0)
    bucket.charge(0.0, 150)
    assert bucket.get_debt(0.0) == 0
    bucket.charge(0.0, 250)  # a frame larger than what is left (or than the burst)
    assert bucket.get_debt(0.0) == 200
    assert bucket.get_debt(1.5) == 50 and bucket.get_debt(2.0) == 0
    assert bucket.get_debt(100.0) == 0 and bucket.take(100.0, 200)  # refilled to the burst only


def test_connection_pool_refuses_what_does_not_fit_with_the_reserve() -> None:
    budget = BufferBudget(total_limit=100, peer_recv_limit=40, seal_limit=30, conn_limit=10)
    assert budget.try_open_connection(4, reserve=4)  # inbound: 4 + 4 held back for dials
    assert not budget.try_open_connection(4, reserve=4)
    assert budget.try_open_connection(4)  # a dial may use the reserve
    assert not budget.try_open_connection(4) and budget.connections == 8 == budget.peak_connections
    budget.close_connection(4)
    budget.close_connection(4)
    assert budget.connections == 0


def test_scores_ban_at_threshold_recover_over_time_and_expire() -> None:
    scores = PeerScores(ban_threshold=-100, ban_seconds=60, recovery_per_s=1)
    peer = _id(1)
    assert not scores.process_penalty(peer, 50, now=0)
    assert scores.get_score(peer, now=20) == -30
    assert not scores.process_penalty(peer, 60, now=20)  # -90
    assert scores.process_penalty(peer, 20, now=20)  # -110: banned
    assert scores.is_banned(peer, now=79) and not scores.is_banned(peer, now=80)
    assert scores.get_score(peer, now=80) == 0


def test_scores_table_stays_bounded() -> None:
    scores = PeerScores(max_tracked=10)
    for n in range(100):
        scores.process_penalty(_id(n), 1, now=0)
    assert len(scores.scores) <= 10


def test_seen_cache_is_bounded_in_size_and_age() -> None:
    seen = SeenCache(max_size=3, ttl=10)
    assert seen.process_message_id(b"a", 0) and not seen.process_message_id(b"a", 1)
    for m in (b"b", b"c", b"d"):
        assert seen.process_message_id(m, 2)
    assert len(seen) == 3 and not seen.is_seen(b"a", 2)  # evicted by size
    assert seen.is_seen(b"b", 11.9) and not seen.is_seen(b"b", 12)  # expired by age
    with pytest.raises(ValueError):
        SeenCache(max_size=0)


def test_forward_targets_are_subscribers_except_the_source() -> None:
    topics = {_id(1): {"blocks"}, _id(2): {"blocks", "txs"}, _id(3): {"txs"}}
    assert compute_forward_targets(topics, "blocks", exclude=_id(1)) == [_id(2)]
    assert compute_forward_targets(topics, "txs", exclude=None) == [_id(2), _id(3)]
    assert compute_forward_targets(topics, "job/7", exclude=None) == []


def test_topic_policies_never_drop_consensus() -> None:
    assert get_topic_policy("consensus") .priority == Priority.CONSENSUS
    assert not get_topic_policy("consensus").drop_when_full
    assert not get_topic_policy("blocks").drop_when_full
    assert not get_topic_policy(job_topic("ab")).drop_when_full
    assert get_topic_policy("txs").drop_when_full
    assert job_topic(b"\xab") == "job/ab"
    with pytest.raises(InvalidGossip):
        job_topic("Bad Id!")


def test_bucket_index_and_distance() -> None:
    own = _id(0)
    assert compute_distance(_id(5), _id(3)) == 6
    assert compute_bucket_index(own, _id(1)) == 255
    assert compute_bucket_index(own, NodeId(b"\x80" + bytes(31))) == 0
    with pytest.raises(ValueError):
        compute_bucket_index(own, own)


def test_routing_table_keeps_old_entries_and_promotes_replacements() -> None:
    records = [_signed(f"r{i}") for i in range(40)]
    own = NodeId(bytes(32))
    table = RoutingTable(own, k=2)
    # all ids with a leading 1 bit fall in bucket 0
    bucket0 = [r for r in records if r.node_id.raw[0] >= 0x80][:4]
    assert [table.process_seen(r) for r in bucket0] == [True, True, False, False]
    assert [r.node_id for r in table.buckets[0]] == [bucket0[0].node_id, bucket0[1].node_id]
    table.process_failure(bucket0[0].node_id)
    assert [r.node_id for r in table.buckets[0]] == [bucket0[1].node_id, bucket0[3].node_id]
    older = _signed(next(f"r{i}" for i in range(40) if records[i] is bucket0[1]), seq=0)
    table.process_seen(older)
    assert table.get(bucket0[1].node_id).record.seq == 1  # never rolled back


def test_closest_sorts_by_xor_distance() -> None:
    records = [_signed(f"c{i}") for i in range(30)]
    table = RoutingTable(NodeId(bytes(32)), k=20)
    for r in records:
        table.process_seen(r)
    target = records[7].node_id
    closest = table.get_closest(target, 5)
    assert closest[0].node_id == target
    distances = [compute_distance(r.node_id, target) for r in closest]
    assert distances == sorted(distances)


def test_lookup_state_asks_alpha_at_a_time_and_finishes() -> None:
    records = [_signed(f"l{i}") for i in range(6)]
    state = LookupState(records[0].node_id, own=_id(1), k=3, alpha=2, max_per_host=10)  # all at one host
    state.process_records(records[1:3])
    batch = state.get_next_batch()
    assert len(batch) == 2 and state.get_next_batch(in_flight=2) == []
    state.process_answer(batch[0].node_id, [records[0], records[3]])
    state.process_failure(batch[1].node_id)
    while not state.is_done():
        for r in state.get_next_batch():
            state.process_answer(r.node_id, [])
    result = state.get_result()
    assert result[0].node_id == records[0].node_id
    assert batch[1].node_id not in {r.node_id for r in result}


def test_node_record_roundtrip_and_signature() -> None:
    signed = _signed("rec", seq=3, gpus=4, memory_mb=65536)
    again = SignedNodeRecord.from_bytes(signed.to_bytes(), "bcai")
    assert again == signed and again.node_id == NodeId.of(PrivateKey.from_label("rec").public_key)
    with pytest.raises(InvalidNodeRecord):
        SignedNodeRecord.from_bytes(signed.to_bytes(), "other-network")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda obj: obj[0].update(seq=4),  # changed after signing
        lambda obj: obj[0].update(caps={"gpus": -1}),
        lambda obj: obj[0].update(roles=["king"]),
        lambda obj: obj[0].update(addr="no spaces allowed"),
        lambda obj: obj[0].pop("seq"),
        lambda obj: obj.append(b""),
    ],
)
def test_invalid_node_records_are_rejected(mutate) -> None:
    from bcai.encoding import decode, encode

    obj = decode(_signed("bad", gpus=4).to_bytes())
    mutate(obj)
    with pytest.raises(InvalidNodeRecord):
        SignedNodeRecord.from_bytes(encode(obj), "bcai")


def test_invalid_record_inputs() -> None:
    key = PrivateKey.from_label("x")
    with pytest.raises(InvalidNodeRecord):
        NodeRecord(key.public_key, "h:1", capabilities={"Bad": 1})
    with pytest.raises(InvalidNodeRecord):
        NodeRecord(key.public_key, "h:1").sign(PrivateKey.from_label("y"), "bcai")
    with pytest.raises(InvalidNodeRecord):
        SignedNodeRecord.from_bytes(b"\xff\x00", "bcai")
    with pytest.raises(InvalidNodeRecord):
        parse_peer_address("127.0.0.1:5")
    with pytest.raises(InvalidNodeRecord):
        NodeId(b"short")
    node, address = parse_peer_address(f"{NodeId.of(key.public_key)}@127.0.0.1:26656")
    assert address == "127.0.0.1:26656" and node == NodeId.of(key.public_key)


def test_capability_query() -> None:
    rich = _signed("gpu", gpus=8, memory_mb=1024).record
    poor = _signed("cpu", cpus=4).record
    query = CapabilityQuery({"gpus": 4})
    assert query.is_match(rich) and not query.is_match(poor)
    assert not CapabilityQuery(roles=frozenset({"validator"})).is_match(rich)
    assert CapabilityQuery.from_obj(query.to_obj()) == query
    with pytest.raises(InvalidNodeRecord):
        CapabilityQuery({"gpus": "4"})  # type: ignore[dict-item]
    with pytest.raises(InvalidNodeRecord):
        CapabilityQuery.from_obj({"caps": {}, "roles": ["x"]})


def test_invalid_capability_query_with_too_many_conditions() -> None:
    """A record has at most MAX_CAPABILITIES capabilities, so a query needs no more
    conditions; 200,000 always-true ones (1.7 MB) used to cost ~18 ms per cached record
    to answer: minutes of a blocked event loop for one `kad/find_capable` request."""
    conditions = {f"c{i}": 0 for i in range(MAX_CAPABILITIES)}
    assert CapabilityQuery.from_obj({"caps": conditions, "roles": []}).is_match(_signed("cpu", cpus=4).record)
    conditions["one_more"] = 0
    with pytest.raises(InvalidNodeRecord, match="conditions"):
        CapabilityQuery.from_obj({"caps": conditions, "roles": []})


@pytest.mark.parametrize(
    "message",
    [
        Publish("blocks", b"\x00" * 10),
        Request(2**64 - 1, "content/get", b"cid"),
        Response(7, False, b"nope"),
        Response(8, True, b""),
        Hello(b"record", ("txs", "job/1")),
        Subscribe("job/1", False),
    ],
)
def test_wire_roundtrip(message) -> None:
    assert decode_message(encode_message(message)) == message


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\x09",
        b"\x03",  # publish without topic
        b"\x03\x05abc",  # topic length beyond the frame
        b"\x03\x03ABC",  # upper case topic
        b"\x03\x02\xff\xfe",  # not ascii
        b"\x04\x00\x00",  # truncated request
        b"\x05" + bytes(8) + b"\x07",  # bad status
        b"\x01\xff",  # bad cbor
        b"\x01\xa0",  # hello without fields
        b"\x02\x82\x63txs\x01",  # subscribe with an int flag
    ],
)
def test_invalid_wire_frames(frame: bytes) -> None:
    with pytest.raises(MalformedMessage):
        decode_message(frame)


def test_ban_list_stays_bounded_under_a_swarm_of_identities() -> None:
    scores = PeerScores(max_tracked=10, ban_seconds=60)
    for n in range(100):
        assert scores.process_penalty(_id(n), 200, now=n * 0.01)
    assert len(scores.bans) <= 10
    assert scores.is_banned(_id(99), now=1.0)  # the newest bans hold


def test_lookup_state_takes_few_ids_per_host() -> None:
    """Ids are free to make: one host's answers cannot fill a lookup with ids at one address."""
    same = [NodeRecord(k.public_key, addr, seq=1).sign(k, "bcai") for k, addr in
            [(PrivateKey.from_label(f"h{i}"), a) for i, a in enumerate(
                ["10.0.0.9:1", "10.0.0.9:2", "10.0.0.9:3", "[::ffff:10.0.0.9]:4", "EXAMPLE.org.:1", "example.org:2",
                 "example.org:3", "10.0.0.8:1"])]]
    state = LookupState(_id(5), own=_id(1), k=20, alpha=3, max_per_host=2)
    state.process_records(same)
    hosts = sorted(r.record.address for r in state.candidates.values())
    assert len(hosts) == 5  # 2 at 10.0.0.9 (however spelt), 2 at example.org, 10.0.0.8
    assert sum(a.startswith(("10.0.0.9", "[::ffff:10.0.0.9]")) for a in hosts) == 2
    assert sum(a.lower().startswith("example.org") for a in hosts) == 2


def test_buffer_budget_counts_shared_bodies_once_and_evicts_the_heaviest() -> None:
    budget = BufferBudget(total_limit=100, peer_recv_limit=40, seal_limit=30)
    evicted: list[str] = []
    body = b"x" * 30

    def evict_a() -> None:
        evicted.append("a")
        budget.release_send(a, b"h", body)

    a = budget.open_account(evict_a)
    b = budget.open_account(lambda: evicted.append("b"))
    budget.charge_send(a, b"h", body)
    assert budget.get_send_cost(b"h", body) == 1  # the body is in memory once already
    budget.charge_send(b, b"h", body)
    assert budget.total == 32 and a.send == b.send == 31
    budget.charge_recv(a, 40)
    assert not budget.is_within_peer_limit(a, 1) and budget.is_within_peer_limit(b, 10_000)  # one frame always
    assert budget.total == 72 and not budget.is_affordable(50)
    budget.make_room(50)  # a holds the most: cut off, its bytes come back
    assert evicted == ["a"] and a.closed and budget.total == 31 and budget.is_affordable(50)
    budget.release_recv(a, 40)  # a late release for a closed account changes nothing
    assert budget.total == 31 and budget.peak_total == 72
    budget.release_send(b, b"h", body)
    assert budget.total == 0
    assert budget.try_seal(20) and not budget.try_seal(20)  # the sealing pool waits, it never evicts
    budget.release_seal(20)
    assert budget.try_seal(50)  # an empty pool lets one frame through, however large
    with pytest.raises(ValueError):
        BufferBudget(0, 1, 1)


def test_scores_stay_cheap_under_a_churn_of_identities(monkeypatch: pytest.MonkeyPatch) -> None:
    """Identities are free, so a peer can come back as a new one after every ban: with the
    tables full, each newcomer used to cost two passes over all 100,000 tracked scores
    (and each ban a pass over all bans), i.e. milliseconds of CPU per connection. Now the
    least recently penalised entry goes, and the ban that ends first."""
    scores = PeerScores(max_tracked=1000, ban_seconds=600)
    for n in range(1000):
        scores.process_penalty(_id(n), 200 if n % 2 else 5, now=0)
    calls = 0
    real = PeerScores.get_score

    def counting(self: PeerScores, peer: NodeId, now: float) -> float:
        nonlocal calls
        calls += 1
        return real(self, peer, now)

    monkeypatch.setattr(PeerScores, "get_score", counting)
    for n in range(1000, 3000):
        scores.process_penalty(_id(n), 200 if n % 2 else 5, now=1 + n * 0.001)
    assert calls <= 2 * 2000  # about one per penalty; it was ~2,000 per newcomer
    assert len(scores.scores) <= 1000 and len(scores.bans) <= 1000
    assert scores.is_banned(_id(2999), now=4) and not scores.is_banned(_id(1), now=4)  # the first bans ended first
