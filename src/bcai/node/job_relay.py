"""The job channel between nodes: signed job messages relayed on each job's gossip topic.

A job's participants (its client, workers and evaluators, as the chain records them) talk
during the job: the client's sealed data keys, the workers' round updates. They hand a
`JobMessage` to their own node's API; the node checks it, keeps it, and publishes it on
the job's topic (`job/<id>`), which only nodes with a participant subscribe to (a node
subscribes when one of its API users first posts or reads that job's messages). Every
node checks every message before keeping or forwarding it: the envelope's signature
(domain "job-msg", the chain id) and that the signer is a participant of that job on
chain. The payload is opaque here; the job flow (`bcai.training.jobflow`) reads it.

Each node keeps the last messages of each job, bounded by count and bytes, and serves
them by index (`GET /jobs/{id}/messages?after=N`).

Nodes commit blocks at slightly different times, so a message from a participant that just
joined (a worker whose Volunteer the sender's node has committed) can arrive at a node one
block behind. Such a message (well signed, for this job, but its signer not a participant
in this node's view yet) is held in a small per-job pending queue and checked again on
every read, instead of being dropped for good.
"""

from __future__ import annotations

from collections import deque
from typing import Awaitable, Callable

from bcai.crypto import Address
from bcai.errors import InvalidGossip, InvalidJobMessage
from bcai.p2p import GossipMessage, Host, job_topic
from bcai.sdk.job_message import JobMessage

MAX_MESSAGES_PER_JOB = 4096
MAX_BYTES_PER_JOB = 256 * 1024 * 1024
MAX_JOBS = 256
MAX_PENDING_PER_JOB = 64  # signed messages whose signer this node does not know as a participant yet


class _JobLog:
    def __init__(self) -> None:
        self.start = 0  # index of messages[0]
        self.messages: deque[bytes] = deque()
        self.size = 0
        self.pending: deque[tuple[JobMessage, bytes]] = deque(maxlen=MAX_PENDING_PER_JOB)

    def append(self, data: bytes) -> None:
        self.messages.append(data)
        self.size += len(data)
        while len(self.messages) > MAX_MESSAGES_PER_JOB or self.size > MAX_BYTES_PER_JOB:
            self.size -= len(self.messages.popleft())
            self.start += 1

    def since(self, after: int) -> tuple[list[tuple[int, bytes]], int]:
        first = max(after, self.start)
        items = list(self.messages)[first - self.start:]
        return [(first + i, data) for i, data in enumerate(items)], self.start + len(self.messages)


class JobRelay:
    """One node's view of the job channels it takes part in."""

    def __init__(self, host: Host, chain_id: str,
                 get_participants: Callable[[bytes], set[Address] | None]) -> None:
        self.host = host
        self.chain_id = chain_id
        self.get_participants = get_participants
        self.logs: dict[bytes, _JobLog] = {}

    def check(self, data: bytes) -> JobMessage:
        message = JobMessage.from_bytes(data, self.chain_id)
        self.check_member(message)
        return message

    def check_member(self, message: JobMessage) -> None:
        participants = self.get_participants(message.job_id)
        if participants is None:
            raise InvalidJobMessage(f"no job {message.job_id.hex()[:16]} on chain")
        if message.sender.address not in participants:
            raise InvalidJobMessage(f"{message.sender.address} is not a participant of job {message.job_id.hex()[:16]}")

    async def join(self, job_id: bytes) -> _JobLog:
        log = self.logs.get(job_id)
        if log is None:
            if len(self.logs) >= MAX_JOBS:  # forget the oldest job we follow
                oldest = next(iter(self.logs))
                del self.logs[oldest]
                await self.host.unsubscribe(job_topic(oldest.hex()))
            log = self.logs[job_id] = _JobLog()
            await self.host.subscribe(job_topic(job_id.hex()), self._make_handler(job_id))
        return log

    def _make_handler(self, job_id: bytes) -> Callable[[GossipMessage], Awaitable[None]]:
        async def on_gossip(gossip: GossipMessage) -> None:
            try:
                message = JobMessage.from_bytes(gossip.data, self.chain_id)
            except InvalidJobMessage as exc:
                raise InvalidGossip(str(exc)) from None
            if message.job_id != job_id:
                raise InvalidGossip("a message for another job on this job's topic")
            log = self.logs.get(job_id)
            if log is None:
                return
            try:
                self.check_member(message)
            except InvalidJobMessage:
                log.pending.append((message, gossip.data))  # our chain view may be a block behind the sender's node
                return
            log.append(gossip.data)

        return on_gossip

    async def post(self, job_id: bytes, data: bytes) -> int:
        """Check, keep and publish a message from a local API user; return its index."""
        message = self.check(data)
        if message.job_id != job_id:
            raise InvalidJobMessage("the message is for another job")
        log = await self.join(job_id)
        log.append(data)
        await self.host.publish(job_topic(job_id.hex()), data)
        return log.start + len(log.messages) - 1

    async def read(self, job_id: bytes, after: int) -> tuple[list[tuple[int, bytes]], int] | None:
        """The messages from index `after` on and the next index; None for a job not on
        chain (reading must not make us follow it: a stream of made-up job ids would push
        the real jobs' logs out of the `MAX_JOBS` we keep)."""
        if self.get_participants(job_id) is None:
            return None
        log = await self.join(job_id)
        self._admit_pending(log)
        return log.since(after)

    def _admit_pending(self, log: _JobLog) -> None:
        """Keep the pending messages whose signers are participants by now."""
        waiting = list(log.pending)
        log.pending.clear()
        for message, data in waiting:
            try:
                self.check_member(message)
            except InvalidJobMessage:
                log.pending.append((message, data))
                continue
            log.append(data)
