"""The authenticated channel: handshake, identity checks, refusal of plaintext, frame
integrity (tamper, replay, reorder) and the frame size limit, on both transports."""

from __future__ import annotations

import asyncio
import os
import struct

import nacl.bindings as sodium
import pytest
from p2p_netkit import TRANSPORTS, Net, eventually, run

from bcai.crypto import PrivateKey
from bcai.errors import (
    FrameAuthenticationFailed,
    FrameTooLarge,
    HandshakeFailed,
    PeerIdentityMismatch,
)
from bcai.p2p import HostConfig, NodeId, perform_handshake
from bcai.p2p.secure import MAGIC, compute_hkdf, compute_session_keys


async def _pair(net: Net, network_a: str = "bcai", network_b: str = "bcai", expected: NodeId | None = None):
    """A raw channel pair, one side accepting through the transport's listener."""
    accepted: asyncio.Future = asyncio.get_running_loop().create_future()
    key_a, key_b = PrivateKey.from_label("a"), PrivateKey.from_label("b")

    async def on_stream(stream):
        try:
            accepted.set_result(await perform_handshake(stream, key_b, network_b))
        except Exception as exc:  # handed to the test
            accepted.set_exception(exc)

    transport = net.transport()
    address = await transport.listen("127.0.0.1:0", on_stream)
    stream = await net.transport().dial(address)
    dialed = perform_handshake(stream, key_a, network_a, expected if expected else NodeId.of(key_b.public_key))
    results = await asyncio.gather(dialed, accepted, return_exceptions=True)
    await transport.close()
    return results, key_a, key_b


async def _listen_and_dial(net: Net):
    """A listener running the handshake (its outcome in the returned future) and a raw
    stream dialed to it, for tests that speak the protocol by hand."""
    accepted: asyncio.Future = asyncio.get_running_loop().create_future()

    async def on_stream(stream):
        try:
            accepted.set_result(await perform_handshake(stream, PrivateKey.from_label("l"), "bcai", timeout=3))
        except Exception as exc:  # handed to the test
            accepted.set_exception(exc)

    transport = net.transport()
    address = await transport.listen("127.0.0.1:0", on_stream)
    return accepted, transport, await net.transport().dial(address)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_handshake_authenticates_both_sides_and_carries_frames(kind: str) -> None:
    async def main() -> None:
        (ours, theirs), key_a, key_b = await _pair(Net(kind))
        assert ours.remote_id == NodeId.of(key_b.public_key)
        assert theirs.remote_id == NodeId.of(key_a.public_key)
        await ours.send(b"hello")
        await ours.send(b"")
        await theirs.send(b"x" * 100_000)
        assert await theirs.recv() == b"hello"
        assert await theirs.recv() == b""
        assert await ours.recv() == b"x" * 100_000
        ours.close(), theirs.close()

    run(main)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_large_frames_interleaved_with_small_ones_arrive_intact(kind: str) -> None:
    """Frames from OFFLOAD_BYTES up are sealed as (length, ciphertext) in two writes and
    opened on a worker thread; on TCP a write goes out in slices: all must reassemble."""
    import os

    from bcai.p2p.secure import MAX_FRAME, OFFLOAD_BYTES

    async def main() -> None:
        (ours, theirs), _, _ = await _pair(Net(kind))
        frames = [os.urandom(OFFLOAD_BYTES), b"vote", os.urandom(OFFLOAD_BYTES - 1), os.urandom(3 << 20), b"",
                  os.urandom(MAX_FRAME - 7)]

        async def send_all() -> None:
            for frame in frames:
                await ours.send(frame[:5], frame[5:])

        sending = asyncio.get_running_loop().create_task(send_all())
        for frame in frames:
            assert bytes(await theirs.recv()) == frame
        await sending
        ours.close(), theirs.close()

    run(main)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_invalid_wrong_identity_is_refused(kind: str) -> None:
    async def main() -> None:
        impostor_expected = NodeId.of(PrivateKey.from_label("somebody else").public_key)
        (ours, theirs), _, _ = await _pair(Net(kind), expected=impostor_expected)
        assert isinstance(ours, PeerIdentityMismatch)
        theirs.close()  # the listener saw a valid peer; the dialer hung up on it

    run(main)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_invalid_other_network_is_refused(kind: str) -> None:
    async def main() -> None:
        (ours, theirs), _, _ = await _pair(Net(kind), network_a="bcai-main", network_b="bcai-test")
        assert isinstance(ours, HandshakeFailed) and isinstance(theirs, HandshakeFailed)
        await asyncio.sleep(0)

    run(main)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_invalid_plaintext_peer_is_refused_by_host(kind: str) -> None:
    async def main() -> None:
        net = Net(kind)
        host = await net.host("listener")
        stream = await net.raw_dial(host.address)
        await stream.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"\x00" * 64)
        await eventually(lambda: host.metrics["handshake_failures"] == 1)
        assert host.peers == []
        with pytest.raises(Exception):
            while True:  # the host closed the stream: reading runs dry
                await stream.read_exactly(1)
        stream.close()
        await net.close()

    run(main)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_invalid_silent_peer_times_out_in_handshake(kind: str) -> None:
    async def main() -> None:
        net = Net(kind)
        host = await net.host("listener", HostConfig(handshake_timeout=0.05))
        stream = await net.raw_dial(host.address)
        await stream.write(MAGIC)  # half a hello, then nothing
        await eventually(lambda: host.metrics["handshake_failures"] == 1)
        assert host.peers == []
        stream.close()
        await net.close()

    run(main)


@pytest.mark.parametrize("kind", TRANSPORTS)
@pytest.mark.parametrize("attack", ["tamper", "replay", "reorder", "truncate_tag"])
def test_invalid_frames_kill_the_channel(kind: str, attack: str) -> None:
    async def main() -> None:
        (ours, theirs), _, _ = await _pair(Net(kind))
        from bcai.p2p.secure import seal_frame

        first, second = b"".join(seal_frame(ours, b"one")), b"".join(seal_frame(ours, b"two"))
        if attack == "tamper":
            wire = first[:-1] + bytes([first[-1] ^ 1])
        elif attack == "replay":
            wire = first + first
        elif attack == "reorder":
            wire = second + first
        else:
            wire = struct.pack(">I", 16) + first[4:20]
        await ours.stream.write(wire)
        if attack == "replay":
            assert await theirs.recv() == b"one"
        with pytest.raises(FrameAuthenticationFailed):
            await theirs.recv()
        ours.close(), theirs.close()

    run(main)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_invalid_frame_shorter_than_its_tag(kind: str) -> None:
    async def main() -> None:
        (ours, theirs), _, _ = await _pair(Net(kind))
        await ours.stream.write(struct.pack(">I", 5) + b"12345")
        with pytest.raises(FrameAuthenticationFailed):
            await theirs.recv()
        ours.close(), theirs.close()

    run(main)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_invalid_oversized_frame_is_refused_before_reading_it(kind: str) -> None:
    async def main() -> None:
        (ours, theirs), _, _ = await _pair(Net(kind))
        # Only the 4-byte header is sent: recv must refuse at once, not wait for 1 GiB.
        await ours.stream.write(struct.pack(">I", 1 << 30))
        with pytest.raises(FrameTooLarge):
            await asyncio.wait_for(theirs.recv(), 2.0)
        with pytest.raises(FrameTooLarge):
            await ours.send(b"x" * (ours.max_frame + 1))
        ours.close(), theirs.close()

    run(main)


def test_session_keys_are_mirrored_and_bound_to_both_ephemerals() -> None:
    a, b, shared = b"\x01" * 32, b"\x02" * 32, b"\x03" * 32
    send_a, recv_a, challenge_a = compute_session_keys(a, b, shared)
    send_b, recv_b, challenge_b = compute_session_keys(b, a, shared)
    assert (send_a, recv_a, challenge_a) == (recv_b, send_b, challenge_b)
    assert send_a != recv_a
    assert compute_session_keys(a, b"\x04" * 32, shared)[2] != challenge_a


def test_hkdf_matches_rfc5869_case_1() -> None:
    okm = compute_hkdf(bytes.fromhex("0b" * 22), bytes.fromhex("000102030405060708090a0b0c"),
                       bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"), 42)
    assert okm.hex() == ("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                         "34007208d5b887185865")


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_invalid_oversized_handshake_proof_is_refused_before_reading_it(kind: str) -> None:
    """Before it has proven an identity a caller may send only the 96-byte proof: a
    length prefix announcing a big frame ends the handshake at once (it used to wait for,
    and on TCP allocate, up to 16 MiB per half-open connection)."""
    async def main() -> None:
        net = Net(kind)
        accepted, transport, stream = await _listen_and_dial(net)
        await stream.write(MAGIC + sodium.crypto_scalarmult_base(os.urandom(32)))
        await stream.write(struct.pack(">I", 16 * 1024 * 1024))
        with pytest.raises(HandshakeFailed, match="bad handshake proof"):
            await asyncio.wait_for(accepted, 2.0)
        stream.close()
        await transport.close()

    run(main)


def test_frames_are_standard_aes_256_gcm_under_the_session_key() -> None:
    """The wire format is the RFC 5116 AEAD: anyone holding the direction's key opens a
    frame with a stock AES-256-GCM (nonce: 4 zero bytes + the 64-bit little-endian
    counter; associated data: the 4-byte length prefix)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from bcai.p2p.secure import SecureChannel, seal_frame

    send_key, recv_key = os.urandom(32), os.urandom(32)
    channel = SecureChannel(None, send_key, recv_key, PrivateKey.from_label("x").public_key)  # type: ignore[arg-type]
    for counter, message in enumerate([b"first", b"second" * 100_000]):
        wire = b"".join(seal_frame(channel, message))
        nonce = bytes(4) + counter.to_bytes(8, "little")
        assert AESGCM(send_key).decrypt(nonce, wire[4:], wire[:4]) == message


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_each_direction_rekeys_after_its_byte_limit_in_step(kind: str) -> None:
    """Both ends count plaintext bytes and switch keys after the same frame: traffic keeps
    flowing across many key changes, and the keys really change (an end that did not
    switch can no longer open the frames)."""
    async def main() -> None:
        (ours, theirs), _, _ = await _pair(Net(kind))
        ours._send.rekey_bytes = theirs._recv.rekey_bytes = 1000
        first_key = ours._send.key
        messages = [os.urandom(size) for size in (10, 999, 1, 5000, 0, 700, 300, 1)]
        for message in messages:
            await ours.send(message)
            assert bytes(await theirs.recv()) == message
        assert ours._send.rekeys == theirs._recv.rekeys == 3  # after 1,009, 5,001 and 1,000 bytes
        assert ours._send.key == theirs._recv.key != first_key
        assert theirs._send.rekeys == ours._recv.rekeys == 0  # the other direction moved nothing
        # a receiver that does not switch in step fails the frame after the switch
        theirs._recv.rekey_bytes = 10**9
        await ours.send(b"a" * 1000)
        assert await theirs.recv() == b"a" * 1000
        await ours.send(b"under the next key")
        with pytest.raises(FrameAuthenticationFailed):
            await theirs.recv()
        ours.close(), theirs.close()

    run(main)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_invalid_older_protocol_version_is_refused_by_name(kind: str) -> None:
    """A node still speaking protocol 1 (ChaCha20-Poly1305) is told which versions meet."""
    async def main() -> None:
        net = Net(kind)
        accepted, transport, stream = await _listen_and_dial(net)
        await stream.write(b"BCAIP2P1" + sodium.crypto_scalarmult_base(os.urandom(32)))
        with pytest.raises(HandshakeFailed, match="protocol version b'1', this node version b'2'"):
            await asyncio.wait_for(accepted, 2.0)
        stream.close()
        await transport.close()

    run(main)
