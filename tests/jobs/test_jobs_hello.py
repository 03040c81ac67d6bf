"""Participants repeat their hello on the job channel until a key release reaches them
(gossip is best effort: a node that joins the topic late misses earlier hellos)."""

from __future__ import annotations

import asyncio

from bcai.crypto import PrivateKey
from bcai.training.jobflow import KeyRelease, MemoryJobChannel, read_hello, say_hello_until, seen_key_release


def test_hello_is_repeated_until_a_key_release_arrives() -> None:
    async def scenario() -> None:
        hub = MemoryJobChannel()
        factory = hub.as_factory()
        worker, client = PrivateKey.from_label("worker"), PrivateKey.from_label("client")
        mine, theirs = factory(None, "job"), factory(None, "job")  # type: ignore[arg-type]
        received: list[bytes] = []
        mine.subscribe(received.append)
        heard: list[bytes] = []
        theirs.subscribe(heard.append)
        task = asyncio.create_task(say_hello_until(mine, worker.public_key, seen_key_release(received), every_s=0.01))
        await asyncio.sleep(0.1)
        assert not task.done() and len(heard) >= 3
        assert all(read_hello(h) == worker.public_key for h in heard)
        release = KeyRelease.create(client, "chain", bytes(32), "train", [worker.public_key], bytes(32))
        await theirs.publish(release.to_bytes())
        await asyncio.wait_for(task, 1)
        count = len([h for h in heard if read_hello(h) is not None])
        await asyncio.sleep(0.05)
        assert len([h for h in heard if read_hello(h) is not None]) == count  # it stopped

    asyncio.run(scenario())
