"""Hostile bytes: every parser of peer input fails only with its own error type."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st
from p2p_netkit import Net, eventually, run

from bcai.crypto import PrivateKey
from bcai.errors import HandshakeFailed, InvalidManifest, InvalidNodeRecord, MalformedMessage
from bcai.p2p import Manifest, NodeId, NodeRecord, SignedNodeRecord, perform_handshake
from bcai.p2p.secure import MAGIC
from bcai.p2p.wire import Hello, decode_message, encode_message

kinds = st.sampled_from([1, 2, 3, 4, 5, 6, 255])


@settings(max_examples=400, deadline=None)
@given(kind=kinds, body=st.binary(max_size=80))
def test_invalid_random_frames_only_raise_malformed(kind: int, body: bytes) -> None:
    try:
        decode_message(bytes([kind]) + body)
    except MalformedMessage:
        pass


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300))
def test_invalid_random_records_and_manifests(data: bytes) -> None:
    try:
        SignedNodeRecord.from_bytes(data, "bcai")
    except InvalidNodeRecord:
        pass
    try:
        Manifest.from_bytes(data)
    except InvalidManifest:
        pass


def test_invalid_handshake_garbage_after_magic() -> None:
    async def main() -> None:
        net = Net("memory")
        for garbage in (MAGIC + bytes(32), MAGIC + b"\x01" + bytes(31), MAGIC + b"x" * 32 + b"\x00\x00\x00\x70" + b"y" * 112):
            transport = net.transport()
            accepted: asyncio.Future = asyncio.get_running_loop().create_future()

            async def on_stream(stream, accepted=accepted):
                try:
                    await perform_handshake(stream, PrivateKey.from_label("l"), "bcai", timeout=1)
                    accepted.set_result(None)
                except Exception as exc:
                    accepted.set_exception(exc)

            address = await transport.listen("127.0.0.1:0", on_stream)
            stream = await net.transport().dial(address)
            await stream.write(garbage)
            try:
                await accepted
                raise AssertionError("garbage completed a handshake")
            except HandshakeFailed:
                pass
            await transport.close()

    run(main)


def test_invalid_hello_with_someone_elses_record_is_penalised() -> None:
    async def main() -> None:
        net = Net("memory")
        host = await net.host("target")
        stream = await net.raw_dial(host.address)
        key = PrivateKey.from_label("liar")
        channel = await perform_handshake(stream, key, "bcai", host.node_id)
        other = PrivateKey.from_label("someone else")
        record = NodeRecord(other.public_key, "127.0.0.1:9").sign(other, "bcai")
        await channel.send(encode_message(Hello(record.to_bytes(), ())))
        await eventually(lambda: host.metrics["penalties"] == 1)
        assert host.get_peer_record(NodeId.of(key.public_key)) is None
        assert host.discovery.get_record(record.node_id) is None
        await net.close()

    run(main)
