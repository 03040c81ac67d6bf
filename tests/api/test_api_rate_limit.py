"""The API's per-client rate limiter (pure, with a fake clock): which addresses share a
bucket, and that bounding its memory never refills a bucket that is in use."""

from __future__ import annotations

from bcai.api.app import MAX_RATE_BUCKETS, RateLimiter, compute_client_key


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_ipv6_clients_share_a_bucket_per_64_and_ipv4_mapped_is_ipv4() -> None:
    assert compute_client_key("2001:db8:1:2::1") == compute_client_key("2001:db8:1:2:ffff:ffff:ffff:ffff") \
        == "2001:db8:1:2::/64"
    assert compute_client_key("2001:db8:1:3::1") != compute_client_key("2001:db8:1:2::1")
    assert compute_client_key("::ffff:10.1.2.3") == compute_client_key("10.1.2.3") == "10.1.2.3"
    assert compute_client_key("10.1.2.4") != "10.1.2.3"
    assert compute_client_key("testclient") == "testclient"


def test_invalid_fresh_ipv6_addresses_do_not_get_fresh_tokens() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2, clock)
    granted = [limiter.take(f"2001:db8::{i:x}") for i in range(1, 11)]  # one /64, ten addresses
    assert granted == [1, 1] + [0] * 8
    assert limiter.take("::ffff:192.0.2.1", 5) == 2 and limiter.take("192.0.2.1") == 0


def test_invalid_address_spray_does_not_refill_a_busy_clients_bucket() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2, clock)
    for i in range(MAX_RATE_BUCKETS):  # a spray of addresses, then quiet
        limiter.take(f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}")
    clock.now += 2.0
    assert limiter.take("192.0.2.1", 2) == 2  # a busy client empties its bucket
    assert limiter.take("192.0.2.99") == 1  # a new client while the table is full
    assert limiter.take("192.0.2.1") == 0  # still empty: only the idle (full) buckets were forgotten
    assert len(limiter.buckets) == 2
