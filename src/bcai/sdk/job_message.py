"""`JobMessage`: the signed envelope of everything said on a job's channel.

The signer is a participant of the job (its client, a worker or an evaluator); nodes check
the signature (domain "job-msg", the chain id) and the signer's membership before they
keep or relay a message (`bcai.node.job_relay`). The payload is opaque to them.
"""

from __future__ import annotations

from dataclasses import dataclass

from bcai.crypto import PrivateKey, PublicKey
from bcai.encoding import decode, encode
from bcai.errors import BcaiError, InvalidJobMessage

DOMAIN = "job-msg"
MAX_MESSAGE_BYTES = 15 * 1024 * 1024  # under the 16 MiB p2p frame, envelope included


@dataclass(frozen=True)
class JobMessage:
    job_id: bytes
    sender: PublicKey
    payload: bytes
    signature: bytes

    @staticmethod
    def _signed(job_id: bytes, sender: PublicKey, payload: bytes) -> bytes:
        return encode([job_id, sender.raw, payload])

    @classmethod
    def create(cls, key: PrivateKey, chain_id: str, job_id: bytes, payload: bytes) -> JobMessage:
        return cls(job_id, key.public_key, payload,
                   key.sign(DOMAIN, chain_id, cls._signed(job_id, key.public_key, payload)))

    def to_bytes(self) -> bytes:
        return encode([self._signed(self.job_id, self.sender, self.payload), self.signature])

    @classmethod
    def from_bytes(cls, data: bytes, chain_id: str) -> JobMessage:
        """Decode and check the signature; raise `InvalidJobMessage` on anything wrong."""
        if len(data) > MAX_MESSAGE_BYTES:
            raise InvalidJobMessage(f"job message over {MAX_MESSAGE_BYTES} bytes")
        try:
            signed, signature = decode(data)
            job_id, sender, payload = decode(signed)
            if type(job_id) is not bytes or len(job_id) != 32 or type(payload) is not bytes \
                    or type(signature) is not bytes:
                raise ValueError("field types")
            key = PublicKey(sender)
            key.verify(DOMAIN, chain_id, signed, signature)
        except (BcaiError, ValueError, TypeError) as exc:
            raise InvalidJobMessage(f"bad job message: {exc}") from None
        return cls(job_id, key, payload, signature)
