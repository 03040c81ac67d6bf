"""The Tendermint BFT engine, sans I/O: `engine.handle(event) -> list[Action]`.

The rules are those of "The latest gossip on BFT consensus" (Buchman, Kwon, Milosevic,
2018), Algorithm 1, with "2f+1" read as "more than 2/3 of voting power" and "f+1" as
"more than 1/3":

- propose: the round's proposer broadcasts its valid value (a block it saw a polka for)
  or a new block; the others wait `timeout_propose(round)`;
- prevote: for the proposal if it is valid and we are not locked on another block, or if
  it carries a polka from a round at or after our lock (this is the only way to unlock);
  nil otherwise, or on timeout;
- precommit: on a polka (more than 2/3 prevotes for one block) we lock on it and precommit
  it; on a nil polka or a prevote timeout we precommit nil;
- commit: more than 2/3 precommits for a block we hold and find valid, in any round;
- skip: more than 1/3 of power seen in a later round makes us jump to it.

Our own proposals, locks and votes go out through `PersistWal` before `Broadcast`. After a
restart the WAL is replayed: a vote already signed for (height, round, type) is sent again
as it was, never replaced, so a restarted node cannot double-sign.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from bcai.consensus.app import Application
from bcai.consensus.blocks import (
    ChainTip, build_block, check_block, check_certificate, check_evidence, search_nonce, solve_work,
)
from bcai.consensus.config import ConsensusParams, Genesis
from bcai.consensus.events import (
    COMMIT_WAIT,
    GOSSIP,
    PRECOMMIT_STEP,
    PREVOTE_STEP,
    PROPOSE,
    SOLVE,
    Action,
    Broadcast,
    CommitBlock,
    Event,
    EvidenceFound,
    MessageRejected,
    PersistWal,
    Received,
    ScheduleTimeout,
    SendBlocks,
    Start,
    SyncBlock,
    TimeoutFired,
)
from bcai.consensus.messages import (
    PRECOMMIT,
    PREVOTE,
    Block,
    CommitCertificate,
    DuplicateVoteEvidence,
    Message,
    Proposal,
    Vote,
    WalEntry,
    WalLock,
    decode_message,
    sign_proposal,
    sign_vote,
)
from bcai.consensus.validators import Validator, ValidatorSet
from bcai.crypto import PrivateKey, PublicKey
from bcai.errors import BcaiError, BlockRejected, InvalidCertificate, InvalidEvidence, InvalidMessage, InvalidSignature
from bcai.verify.pouw import WorkResult

MAX_ROUNDS_AHEAD = 100  # votes further ahead of our round are dropped (bounded memory)
# proposals (up to max_block_bytes each) further ahead are dropped: a proposer re-sends its
# proposal while its round makes no progress, and we skip ahead on votes alone
MAX_PROPOSAL_ROUNDS_AHEAD = 2
MAX_FUTURE_MESSAGES = 10_000  # messages buffered for the next height
MAX_FUTURE_PROPOSALS = 4  # of which proposals (each up to max_block_bytes)
MAX_SYNC_BUFFER = 1_000  # early synced blocks kept, and at most this many bytes of them:
MAX_SYNC_BUFFER_BYTES = 64 * 1024 * 1024
KEEP_COMMIT_TIMES = 100  # heights whose commit time we remember (catch-up hints to peers behind)


class RoundVotes:
    """The votes of one (round, type).

    `votes` holds each validator's first vote (it counts once toward "more than 2/3 of
    anything"). Power per block id counts every validator that signed for that block id, even
    after it signed something else first: a double-signer's vote for X is still a vote for X
    (Algorithm 1 counts messages per value), so a polka another node saw can be recognised
    here too. Each validator may add at most `MAX_CONFLICTING` further block ids (bounded
    memory); its first conflicting vote is already evidence.
    """

    __slots__ = ("votes", "by_block", "power", "total", "conflicts")

    def __init__(self) -> None:
        self.votes: dict[bytes, Vote] = {}
        self.by_block: dict[bytes | None, dict[bytes, Vote]] = {}
        self.power: dict[bytes | None, int] = {}
        self.total = 0
        self.conflicts: dict[bytes, int] = {}


MAX_CONFLICTING = 3


class Engine:
    """One validator's (or observer's, with `key=None`) consensus state machine."""

    def __init__(
        self,
        params: ConsensusParams,
        genesis: Genesis,
        app: Application,
        key: PrivateKey | None,
        tip: ChainTip | None = None,
        wal: Sequence[WalEntry] = (),
        verified: dict[int, tuple[object, bytes]] | None = None,
        nonce_slice: int = 0,
    ) -> None:
        self.params = params
        # 0: a new block's nonce search runs to the end inside one `handle` call; N > 0: at
        # most N tries per call, the rest on `SOLVE` timeouts of 0 ms, so the shell's event
        # loop (gossip, API) runs between slices; the block found is the same
        self.nonce_slice = nonce_slice
        self._solving: tuple[int, Block, int] | None = None  # (round, block without its nonce, next try)
        self.app = app
        self.key = key
        self.address = key.address.raw if key is not None else None
        self.tip = tip if tip is not None else ChainTip.genesis(params, genesis)
        self._wal = list(wal)
        # an optional cache of message objects whose signature already verified (keyed by
        # id, holding the object); a simulator shares one among all its nodes so each vote
        # is checked once, however many nodes receive that same object
        self._verified = verified
        # offence id -> its height, for offences punished on chain within the evidence window
        # (older ones are refused as too old anyway; the ledger also refuses a second one)
        self.committed_offences: dict[bytes, int] = {}
        self.pending_evidence: dict[bytes, DuplicateVoteEvidence] = {}  # offence id -> evidence
        self.rejected_count = 0  # messages and blocks we refused (each also a MessageRejected action)
        self._out: list[Action] = []
        self._now = 0
        self._work: dict[bytes, WorkResult] = {}
        self._sent_blocks: dict[tuple[bytes, int], int] = {}  # (peer, height) -> when we last offered
        self._sync_buffer: dict[int, tuple[Block, CommitCertificate]] = {}
        self._commit_times: dict[int, int] = {}  # height -> when we committed it (recent heights)
        self.height = 0  # 0 until Start
        self.locked_round: int = -1
        self.locked_block: Block | None = None
        self.valid_round: int = -1
        self.valid_block: Block | None = None
        self._started = False  # False during the pause after a commit (round 0 not begun yet)
        self.round = 0
        self.step = PROPOSE

    # --- the one entry point ---------------------------------------------------------

    def handle(self, event: Event) -> list[Action]:
        out: list[Action] = []
        self._out = out
        self._now = event.now_ms
        if isinstance(event, Received) and self.height:  # the common case first
            self._on_received(event.message)
        elif isinstance(event, Start):
            self._on_start()
        elif self.height == 0:
            raise RuntimeError("the engine must receive Start first")
        elif isinstance(event, Received):
            self._on_received(event.message)
        elif isinstance(event, TimeoutFired):
            self._on_timeout(event)
        elif isinstance(event, SyncBlock):
            self._on_sync(event.block, event.certificate)
        else:
            raise TypeError(f"not an engine event: {event!r}")
        self._out = []
        return out

    # --- height and round lifecycle --------------------------------------------------

    def _on_start(self) -> None:
        last = self.app.get_last_height()
        if last != self.tip.height:
            raise RuntimeError(f"app is at height {last} but the chain tip is at {self.tip.height}")
        self._enter_height(last + 1)
        start_round = 0
        for entry in self._wal:  # replay what we signed at this height before a crash
            if entry.height != self.height:
                continue
            start_round = max(start_round, entry.round)
            if isinstance(entry, Vote):
                self._own[(entry.round, entry.vote_type)] = entry
                self._add_vote(entry)
            elif isinstance(entry, Proposal):
                self._own_proposals[entry.round] = entry
            elif isinstance(entry, WalLock) and entry.round > self.locked_round:
                self.locked_round, self.locked_block = entry.round, entry.block
                self.valid_round, self.valid_block = entry.round, entry.block
                self.blocks[entry.block.block_id] = entry.block
        self._wal = []
        self._start_round(start_round)
        # what we signed may not have left before the crash: send it (again)
        for vote_type in (PREVOTE, PRECOMMIT):
            vote = self._own.get((start_round, vote_type))
            if vote is not None:
                self._out.append(Broadcast(vote))
        # resume the step we had reached in that round (a signed vote is never replaced)
        if (start_round, PRECOMMIT) in self._own:
            self.step = PRECOMMIT_STEP
            self._schedule(PRECOMMIT_STEP)
        elif (start_round, PREVOTE) in self._own:
            self.step = PREVOTE_STEP
            self._schedule(PREVOTE_STEP)
        self._run_rules()

    def _enter_height(self, height: int) -> None:
        self.height = height
        self.validators = ValidatorSet.from_priorities(self.app.get_validators(height), self.tip.get_priorities())
        self.round = 0
        self.step = PROPOSE
        self.locked_round, self.locked_block = -1, None
        self.valid_round, self.valid_block = -1, None
        self.proposals: dict[int, Proposal] = {}
        self.blocks: dict[bytes, Block] = {}
        self._validity: dict[bytes, bool] = {}
        self.votes: dict[tuple[int, int], RoundVotes] = {}
        self._round_power: dict[int, dict[bytes, int]] = {}
        self._own: dict[tuple[int, int], Vote] = {}
        self._own_proposals: dict[int, Proposal] = {}
        self._scheduled: set[tuple[int, int]] = set()
        self._polka_done: set[int] = set()
        self._commit_candidates: list[tuple[int, bytes]] = []
        self._skip_round = -1
        self._future: list[Message] = []
        self._solving = None

    def _start_round(self, round_: int) -> None:
        previous = self.round
        self._started = True
        self.round = round_
        self.step = PROPOSE
        # re-send our votes of the round we leave: a cheap stand-in for vote gossip on lossy links
        for vote_type in (PREVOTE, PRECOMMIT):
            vote = self._own.get((previous, vote_type))
            if vote is not None and previous != round_:
                self._out.append(Broadcast(vote))
        proposer = self.validators.get_proposer(round_)
        self._solving = None
        if proposer.address == self.address:
            proposal = self._own_proposals.get(round_)
            if proposal is None:
                proposal = self._make_proposal(round_)
            if proposal is not None:  # else the nonce search goes on (`SOLVE`)
                self._propose(proposal)
        self._schedule(PROPOSE)
        self._out.append(ScheduleTimeout(self.height, round_, GOSSIP, self.params.gossip_interval_ms))

    def _send_polka(self, proposal: Proposal) -> None:
        """Re-proposing a valid value: send the prevotes that justify its pol_round too, so
        that validators which missed some of them can check the polka (a stand-in for the
        vote gossip that carries a proposal's POL in CometBFT)."""
        if proposal.pol_round < 0:
            return
        rv = self.votes.get((proposal.pol_round, PREVOTE))
        voters = rv.by_block.get(proposal.block.block_id, {}) if rv is not None else {}
        for vote in voters.values():
            self._out.append(Broadcast(vote))

    def _propose(self, proposal: Proposal) -> None:
        if self._own_proposals.get(proposal.round) is None:
            self._own_proposals[proposal.round] = proposal
            self._out.append(PersistWal(proposal))
        self._out.append(Broadcast(proposal))
        self._send_polka(proposal)
        self._accept_proposal(proposal)

    def _make_proposal(self, round_: int) -> Proposal | None:
        """Our proposal for `round_`; None while a sliced nonce search is still on."""
        assert self.key is not None
        if self.valid_block is not None:
            return sign_proposal(self.key, self.params.chain_id, round_, self.valid_round, self.valid_block)
        work = self._work.get(self.tip.block_id)
        if work is None:
            work = self._work[self.tip.block_id] = solve_work(self.params, self.tip)
        evidence = tuple(self._get_includable_evidence())[: self.params.max_evidence_per_block]
        budget = self.params.max_block_bytes - len(work.proof) - 64 * 1024
        draft = build_block(
            self.params, self.tip, self.app.get_app_hash(), self.key.address.raw, (), evidence, self._now, work,
            find_nonce=False,
        )
        txs = tuple(self.app.build_payload(self.height, max(0, budget), draft))[: self.params.max_block_txs]
        block = build_block(
            self.params, self.tip, self.app.get_app_hash(), self.key.address.raw, txs, evidence, self._now, work,
            find_nonce=not self.nonce_slice,
        )
        if not self.nonce_slice:
            return sign_proposal(self.key, self.params.chain_id, round_, -1, block)
        self._solving = (round_, block, 0)  # nonce 0 for now: searched in slices
        return self._continue_solving()

    def _get_includable_evidence(self) -> list[DuplicateVoteEvidence]:
        """Pending evidence that `check_block` accepts at this height, by offence id. What no
        longer passes (aged out, or its height's set is no longer known) is dropped: a block
        we propose with it would be refused, round after round."""
        includable = []
        for offence_id, ev in sorted(self.pending_evidence.items()):
            try:
                check_evidence(ev, self.params, self.height, self.app.get_evidence_max_age(), self._get_validator_map)
            except InvalidEvidence:
                del self.pending_evidence[offence_id]
                continue
            includable.append(ev)
        return includable

    def _continue_solving(self) -> Proposal | None:
        """One slice of the nonce search: the signed proposal once found, else None and a
        `SOLVE` timeout of 0 ms for the next slice."""
        assert self._solving is not None and self.key is not None
        round_, draft, start = self._solving
        block = search_nonce(draft, start, self.nonce_slice)
        if block is None:
            self._solving = (round_, draft, start + self.nonce_slice)
            self._out.append(ScheduleTimeout(self.height, round_, SOLVE, 0))
            return None
        self._solving = None
        return sign_proposal(self.key, self.params.chain_id, round_, -1, block)

    def _schedule(self, step: int) -> None:
        key = (self.round, step)
        if key not in self._scheduled:
            self._scheduled.add(key)
            self._out.append(ScheduleTimeout(self.height, self.round, step, self.params.get_timeout_ms(step, self.round)))

    # --- incoming messages -----------------------------------------------------------

    def _on_received(self, message: Message | bytes) -> None:
        try:
            if isinstance(message, bytes):
                message = decode_message(message, self.params.max_block_bytes + 64 * 1024)
            if isinstance(message, Vote):
                changed = self._on_vote(message)
            elif isinstance(message, Proposal):
                changed = self._on_proposal(message)
            else:
                raise InvalidMessage(f"not a consensus message: {type(message).__name__}")
        except InvalidMessage as exc:
            self._reject(exc)
            return
        # every rule's precondition is a vote threshold, a proposal or a step; a vote that
        # crossed no threshold cannot make any rule fire (this keeps big networks fast)
        if changed:
            self._run_rules()

    def _reject(self, error: BcaiError) -> None:
        self.rejected_count += 1
        self._out.append(MessageRejected(error))

    def _verify(self, message: Proposal | Vote, public_key: PublicKey) -> None:
        cache = self._verified
        if cache is not None:
            # identity, not equality: the very object that verified before (kept alive by
            # the cache, so its id cannot be reused) needs no second check
            hit = cache.get(id(message))
            if hit is not None and hit[0] is message and hit[1] == public_key.raw:
                return
        try:
            message.verify(public_key, self.params.chain_id)
        except InvalidSignature as exc:
            raise InvalidMessage(f"bad signature: {exc}") from None
        if cache is not None:
            cache[id(message)] = (message, public_key.raw)

    def _is_elsewhere(self, message: Message, sender: bytes) -> bool:
        """Handle a message for another height; True if it is not for this one."""
        if message.height == self.height:
            return False
        if message.height == self.height + 1:
            self._keep_for_next_height(message, sender)
        elif message.height < self.height and sender in self.validators:
            # a validator is behind: once it had time to commit by itself, offer it our blocks
            committed_at = self._commit_times.get(message.height, -self.params.block_resend_ms)
            last = self._sent_blocks.get((sender, message.height))
            if self._now - committed_at >= self.params.gossip_interval_ms and (
                last is None or self._now - last >= self.params.block_resend_ms
            ):
                # signed by it (an address fixes its key): nobody else can send us a hint to it
                self._verify(message, self.validators.by_address[sender].public_key)
                self._sent_blocks[(sender, message.height)] = self._now
                self._out.append(SendBlocks(sender, message.height))
        return True

    def _keep_for_next_height(self, message: Message, sender: bytes) -> None:
        """Buffer a message for height + 1 once its signer is checked against that height's set
        (already final): unchecked, anyone could fill the buffer, with proposals of megabytes."""
        if len(self._future) >= MAX_FUTURE_MESSAGES:
            return
        if isinstance(message, Proposal):
            if message.block.size > self.params.max_block_bytes:
                raise InvalidMessage(f"oversized proposal: {message.block.size} > {self.params.max_block_bytes} bytes")
            if sum(isinstance(m, Proposal) for m in self._future) >= MAX_FUTURE_PROPOSALS:
                return  # its proposer re-sends it while the round makes no progress
        validator = self._get_validator_map(self.height + 1).get(sender)
        if validator is None:
            raise InvalidMessage("message for the next height from a validator outside its set")
        self._verify(message, validator.public_key)
        self._future.append(message)

    def _on_vote(self, vote: Vote) -> bool:
        # the hot path of a big network: every line here runs once per vote per node
        if vote.height != self.height:
            self._is_elsewhere(vote, vote.validator)
            return False
        validator = self.validators.by_address.get(vote.validator)
        if validator is None:
            raise InvalidMessage("vote from a validator outside this height's set")
        if vote.round > self.round + MAX_ROUNDS_AHEAD:
            return False
        self._verify(vote, validator.public_key)
        return self._add_vote(vote, validator.power)

    def _add_vote(self, vote: Vote, power: int | None = None) -> bool:
        """Count a vote; True when it crossed a threshold some rule waits for."""
        key = (vote.round, vote.vote_type)
        rv = self.votes.get(key)
        if rv is None:
            rv = self.votes[key] = RoundVotes()
        address, block_id = vote.validator, vote.block_id
        if power is None:
            power = self.validators.by_address[address].power
        quorum = self.validators.quorum_power
        crossed = False
        first = rv.votes.get(address)
        if first is None:
            rv.votes[address] = vote
            total_before = rv.total
            rv.total = total_before + power
            crossed = total_before < quorum <= total_before + power
            if vote.round > self.round and self._note_round_participant(vote.round, address, power):
                crossed = True
        elif first.block_id == block_id:
            return False  # the same vote again
        else:
            self._record_evidence(DuplicateVoteEvidence.of(first, vote))
            voters = rv.by_block.get(block_id)
            if (voters is not None and address in voters) or rv.conflicts.get(address, 0) >= MAX_CONFLICTING:
                return False
            rv.conflicts[address] = rv.conflicts.get(address, 0) + 1
        voters = rv.by_block.get(block_id)
        if voters is None:
            voters = rv.by_block[block_id] = {}
        voters[address] = vote
        before = rv.power.get(block_id, 0)
        rv.power[block_id] = before + power
        if before < quorum <= before + power:
            crossed = True
            if vote.vote_type == PRECOMMIT and block_id is not None:
                self._commit_candidates.append((vote.round, block_id))
        return crossed

    def _note_round_participant(self, round_: int, address: bytes, power: int) -> bool:
        """Track who spoke in later rounds; True when one of them now holds more than 1/3."""
        if round_ <= self.round:
            return False
        seen = self._round_power.setdefault(round_, {})
        if address not in seen:
            seen[address] = power
            if round_ > self._skip_round and self.validators.is_one_third(sum(seen.values())):
                self._skip_round = round_
                return True
        return False

    def _record_evidence(self, ev: DuplicateVoteEvidence) -> None:
        if ev.offence_id in self.committed_offences or ev.offence_id in self.pending_evidence:
            return
        self.pending_evidence[ev.offence_id] = ev
        self._out.append(EvidenceFound(ev))

    def _on_proposal(self, proposal: Proposal) -> bool:
        if self._is_elsewhere(proposal, proposal.proposer):
            return False
        if proposal.round > self.round + MAX_PROPOSAL_ROUNDS_AHEAD:
            return False
        proposer = self.validators.get_proposer(proposal.round)
        if proposal.proposer != proposer.address:
            raise InvalidMessage(f"proposal for round {proposal.round} not from that round's proposer")
        if proposal.block.size > self.params.max_block_bytes:
            raise InvalidMessage(f"oversized proposal: {proposal.block.size} > {self.params.max_block_bytes} bytes")
        if proposal.round in self.proposals:
            return False  # we keep the first proposal of a round (a second one is equivocation, not slashable)
        self._verify(proposal, proposer.public_key)
        self._accept_proposal(proposal)
        return True

    def _accept_proposal(self, proposal: Proposal) -> None:
        self.proposals[proposal.round] = proposal
        self.blocks.setdefault(proposal.block.block_id, proposal.block)
        self._note_round_participant(proposal.round, proposal.proposer, self.validators.by_address[proposal.proposer].power)

    def _on_timeout(self, t: TimeoutFired) -> None:
        if t.height != self.height or t.round != self.round:
            return
        if t.step == COMMIT_WAIT:
            if not self._started:
                self._start_round(0)
                self._run_rules()
            return
        if not self._started:
            return
        if t.step == SOLVE:
            if self._solving is not None and self._solving[0] == self.round:
                proposal = self._continue_solving()
                if proposal is not None:
                    self._propose(proposal)
                    self._run_rules()
            return
        if t.step == GOSSIP:
            # the round has not moved on: re-send what we signed in it (and the round before)
            for round_ in (self.round - 1, self.round):
                for vote_type in (PREVOTE, PRECOMMIT):
                    vote = self._own.get((round_, vote_type))
                    if vote is not None:
                        self._out.append(Broadcast(vote))
            proposal = self._own_proposals.get(self.round)
            if proposal is not None:
                self._out.append(Broadcast(proposal))
                self._send_polka(proposal)
            self._out.append(ScheduleTimeout(self.height, self.round, GOSSIP, self.params.gossip_interval_ms))
            return
        if t.step == PROPOSE and self.step == PROPOSE:
            self._vote(PREVOTE, None)
            self.step = PREVOTE_STEP
        elif t.step == PREVOTE_STEP and self.step == PREVOTE_STEP:
            self._vote(PRECOMMIT, None)
            self.step = PRECOMMIT_STEP
        elif t.step == PRECOMMIT_STEP:
            self._start_round(self.round + 1)
        self._run_rules()

    # --- the rules -------------------------------------------------------------------

    def _run_rules(self) -> None:
        if not self._started:
            return  # votes and proposals are kept; the rules run once round 0 begins
        while True:
            if self._try_commit():
                self._begin_next_height()
                return
            if self._skip_round > self.round:
                self._start_round(self._skip_round)
                continue
            if not self._try_round_step():
                return

    def _is_valid(self, block_id: bytes) -> bool:
        known = self._validity.get(block_id)
        if known is None:
            try:
                self._check_block(self.blocks[block_id], self._now)
                known = True
            except BlockRejected as exc:
                self._reject(exc)
                known = False
            self._validity[block_id] = known
        return known

    def _check_block(self, block: Block, now_ms: int | None) -> None:
        check_block(
            block, self.params, self.tip, self.app.get_app_hash(), now_ms, self._get_validator_map,
            self.app.get_evidence_max_age(), self.committed_offences.__contains__, self._check_last_commit, self._check_app_payload,
        )

    def _check_app_payload(self, block: Block) -> None:
        try:
            self.app.check_payload(block)
        except BlockRejected:
            raise
        except BcaiError as exc:
            raise BlockRejected(f"the application rejects the block: {exc.code}: {exc}") from None

    def _check_last_commit(self, certificate: CommitCertificate, height: int, block_id: bytes) -> None:
        try:
            self._verify_certificate(certificate, height, block_id, self._get_validator_map(height))
        except InvalidCertificate as exc:
            raise BlockRejected(f"bad last commit: {exc}") from None

    def _get_validator_map(self, height: int) -> Mapping[bytes, Validator]:
        if height == self.height:
            return self.validators.by_address
        try:
            validators = self.app.get_validators(height)
        except (BcaiError, KeyError):
            return {}  # a height the application no longer knows: nobody counts as a member
        return {v.address: v for v in validators}

    def _has_quorum(self, round_: int, vote_type: int, block_id: bytes | None) -> bool:
        rv = self.votes.get((round_, vote_type))
        return rv is not None and self.validators.is_quorum(rv.power.get(block_id, 0))

    def _try_round_step(self) -> bool:
        r = self.round
        proposal = self.proposals.get(r)
        block_id = proposal.block.block_id if proposal is not None else None
        if self.step == PROPOSE and proposal is not None:
            vr = proposal.pol_round
            locked_id = self.locked_block.block_id if self.locked_block is not None else None
            if vr == -1:
                ok = self._is_valid(block_id) and (self.locked_round == -1 or locked_id == block_id)  # type: ignore[arg-type]
            elif vr < r and self._has_quorum(vr, PREVOTE, block_id):
                # a polka at vr >= our lock round unlocks us
                ok = self._is_valid(block_id) and (self.locked_round <= vr or locked_id == block_id)  # type: ignore[arg-type]
            else:
                ok = None
            if ok is not None:
                self._vote(PREVOTE, block_id if ok else None)
                self.step = PREVOTE_STEP
                return True
        prevotes = self.votes.get((r, PREVOTE))
        if self.step == PREVOTE_STEP and prevotes is not None and self.validators.is_quorum(prevotes.total):
            if (r, PREVOTE_STEP) not in self._scheduled:
                self._schedule(PREVOTE_STEP)
                return True
        if (
            self.step >= PREVOTE_STEP
            and proposal is not None
            and r not in self._polka_done
            and self._has_quorum(r, PREVOTE, block_id)
            and self._is_valid(block_id)  # type: ignore[arg-type]
        ):
            self._polka_done.add(r)
            if self.step == PREVOTE_STEP:
                self.locked_round, self.locked_block = r, proposal.block
                self._out.append(PersistWal(WalLock(self.height, r, proposal.block)))
                self._vote(PRECOMMIT, block_id)
                self.step = PRECOMMIT_STEP
            self.valid_round, self.valid_block = r, proposal.block
            return True
        if self.step == PREVOTE_STEP and self._has_quorum(r, PREVOTE, None):
            self._vote(PRECOMMIT, None)
            self.step = PRECOMMIT_STEP
            return True
        precommits = self.votes.get((r, PRECOMMIT))
        if precommits is not None and self.validators.is_quorum(precommits.total):
            if (r, PRECOMMIT_STEP) not in self._scheduled:
                self._schedule(PRECOMMIT_STEP)
                return True
        return False

    def _vote(self, vote_type: int, block_id: bytes | None) -> None:
        if self.key is None or self.address not in self.validators:
            return
        key = (self.round, vote_type)
        vote = self._own.get(key)
        if vote is None:
            vote = sign_vote(self.key, self.params.chain_id, vote_type, self.height, self.round, block_id)
            self._own[key] = vote
            self._out.append(PersistWal(vote))
            self._add_vote(vote)
        # else: already signed before a crash: send the same vote again, never a different one
        self._out.append(Broadcast(vote))

    # --- deciding --------------------------------------------------------------------

    def _try_commit(self) -> bool:
        for round_, block_id in self._commit_candidates:
            if block_id in self.blocks and self._is_valid(block_id):
                rv = self.votes[(round_, PRECOMMIT)]
                sigs = tuple(sorted((a, v.signature) for a, v in rv.by_block[block_id].items()))
                self._commit(self.blocks[block_id], CommitCertificate(self.height, round_, block_id, sigs))
                return True
        return False

    def _commit(self, block: Block, certificate: CommitCertificate) -> None:
        app_hash = self.app.apply_block(block, certificate)
        for ev in block.evidence:
            self.committed_offences[ev.offence_id] = ev.height
            self.pending_evidence.pop(ev.offence_id, None)
        oldest = block.height - self.app.get_evidence_max_age()
        for offence_id in [o for o, height in self.committed_offences.items() if height < oldest]:
            del self.committed_offences[offence_id]
        h = block.header
        self.tip = ChainTip(
            h.height, h.block_id, h.time_ms, h.target, h.time_ms - self.tip.time_ms,
            tuple(sorted(self.validators.compute_priorities_after(certificate.round).items())), certificate,
        )
        self._work.clear()
        self._commit_times[h.height] = self._now
        self._commit_times.pop(h.height - KEEP_COMMIT_TIMES, None)
        self._sent_blocks = {k: t for k, t in self._sent_blocks.items() if k[1] > h.height - 10}
        self._out.append(CommitBlock(block, certificate, app_hash))
        future = self._future
        self._enter_height(h.height + 1)
        self._future = future

    def _begin_next_height(self) -> None:
        """After a commit: pause `timeout_commit_ms`, keeping what arrives for the new height."""
        future, self._future = self._future, []
        self._started = False
        self._out.append(ScheduleTimeout(self.height, 0, COMMIT_WAIT, self.params.timeout_commit_ms))
        for message in future:
            if message.height != self.height:
                continue
            try:
                if isinstance(message, Vote):
                    self._on_vote(message)
                else:
                    self._on_proposal(message)
            except InvalidMessage as exc:
                self._reject(exc)

    # --- catch-up --------------------------------------------------------------------

    def _on_sync(self, block: Block, certificate: CommitCertificate) -> None:
        if block.height > self.height:  # early: kept unchecked (its set may be unknown yet), so bounded
            if block.size > self.params.max_block_bytes:
                self._reject(BlockRejected(f"oversized block: {block.size} > {self.params.max_block_bytes} bytes"))
            else:
                self._buffer_synced_block(block, certificate)
        # apply buffered blocks in height order (a loop, not recursion: catch-up may be long)
        while True:
            if block.height == self.height:
                try:
                    self._check_certificate(block, certificate)
                    self._check_block(block, None)
                except (InvalidCertificate, BlockRejected) as exc:
                    self._reject(exc)
                    break
                self._commit(block, certificate)
                self._begin_next_height()
            for height in [h for h in self._sync_buffer if h < self.height]:
                del self._sync_buffer[height]
            item = self._sync_buffer.pop(self.height, None)
            if item is None:
                break
            block, certificate = item
        self._run_rules()

    def _buffer_synced_block(self, block: Block, certificate: CommitCertificate) -> None:
        """Keep an early synced block within the buffer's bounds, preferring the lowest heights
        (the next ones we need): junk far ahead cannot crowd them out."""
        buffer = self._sync_buffer
        buffer[block.height] = (block, certificate)
        size = sum(b.size for b, _ in buffer.values())
        while len(buffer) > MAX_SYNC_BUFFER or size > MAX_SYNC_BUFFER_BYTES:
            highest = max(buffer)
            size -= buffer.pop(highest)[0].size

    def _check_certificate(self, block: Block, certificate: CommitCertificate) -> None:
        """Raise `InvalidCertificate` unless more than 2/3 of this height's power precommitted `block`."""
        self._verify_certificate(certificate, block.height, block.block_id, self.validators.by_address)

    def _verify_certificate(
        self, certificate: CommitCertificate, height: int, block_id: bytes, validators: Mapping[bytes, Validator]
    ) -> None:
        check_certificate(certificate, height, block_id, validators, self.params.chain_id, self._verified)
