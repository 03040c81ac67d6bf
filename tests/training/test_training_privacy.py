import math

import nacl.public
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bcai.errors import (
    InvalidAggregationParameter,
    InvalidMaskedUpdate,
    MaskedClientDropped,
    UnsupportedPrivacyComposition,
)
from bcai.training import (
    EPSILON_PRESETS,
    FRACTIONAL_BITS,
    DifferentialPrivacy,
    FedAvg,
    FedProx,
    Krum,
    MaskedUpdate,
    Median,
    ModelUpdate,
    TrimmedMean,
    compute_classic_sigma,
    compute_clipped,
    compute_gaussian_sigma,
    compute_masked_update,
    compute_pair_seed,
    compute_pair_seed_from_secret,
    compute_secure_average,
    compute_secure_sum,
)

# --- differential privacy -------------------------------------------------------------------


def test_presets_are_the_spec_epsilons():
    assert EPSILON_PRESETS == {"high": 0.1, "medium": 1.0, "low": 10.0}


def test_analytic_sigma_satisfies_the_privacy_condition_tightly():
    def delta_of(sigma, eps):
        phi = lambda x: 0.5 * math.erfc(-x / math.sqrt(2))  # noqa: E731
        return phi(1 / (2 * sigma) - eps * sigma) - math.exp(eps) * phi(-1 / (2 * sigma) - eps * sigma)

    for eps in (0.1, 1.0, 10.0):
        sigma = compute_gaussian_sigma(eps, 1e-5, 1.0)
        assert delta_of(sigma, eps) <= 1e-5 < delta_of(sigma * 0.999, eps)
    assert compute_gaussian_sigma(1.0, 1e-5, 1.0) == pytest.approx(3.7306, abs=1e-3)  # Balle & Wang 2018
    assert compute_gaussian_sigma(1.0, 1e-5, 3.0) == pytest.approx(3 * compute_gaussian_sigma(1.0, 1e-5, 1.0))


def test_analytic_sigma_is_below_the_classic_bound():
    for eps in (0.1, 0.5, 0.9):
        assert compute_gaussian_sigma(eps, 1e-5, 1.0) < compute_classic_sigma(eps, 1e-5, 1.0)
    assert compute_classic_sigma(0.5, 1e-5, 1.0) == pytest.approx(math.sqrt(2 * math.log(1.25e5)) / 0.5)


def test_clipping_scales_only_large_updates():
    small = {"w": torch.tensor([0.3, 0.4])}
    assert compute_clipped(small, 1.0) is small
    big = compute_clipped({"a": torch.tensor([3.0]), "b": torch.tensor([4.0])}, 1.0)
    assert torch.allclose(big["a"], torch.tensor([0.6])) and torch.allclose(big["b"], torch.tensor([0.8]))


def test_dp_noise_has_the_right_scale_with_a_fixed_seed():
    zeros = [ModelUpdate({"w": torch.zeros(200_000)}, 10) for _ in range(4)]
    dp = DifferentialPrivacy(FedAvg(), clip_norm=1.0, epsilon=1.0, seed=7)
    sigma = dp.compute_noise_sigma([10] * 4)
    assert sigma == pytest.approx(compute_gaussian_sigma(1.0, 1e-5, 2.0 * 1.0 / 4))
    noise = dp.aggregate(zeros)["w"]
    assert float(noise.mean()) == pytest.approx(0.0, abs=5 * sigma / math.sqrt(200_000))
    assert float(noise.std()) == pytest.approx(sigma, rel=0.01)


def test_dp_is_reproducible_from_its_seed_and_fresh_each_round():
    updates = [ModelUpdate({"w": torch.ones(5)}, 1), ModelUpdate({"w": torch.zeros(5)}, 1)]
    a = DifferentialPrivacy(FedAvg(), clip_norm=1.0, epsilon=10.0, seed=1)
    b = DifferentialPrivacy(FedAvg(), clip_norm=1.0, epsilon=10.0, seed=1)
    first = a.aggregate(updates)["w"]
    assert torch.equal(first, b.aggregate(updates)["w"])
    assert not torch.equal(first, a.aggregate(updates)["w"])


def test_dp_clips_before_aggregating():
    # One huge update: after clipping to 1 it can move the mean by at most 0.5 (+ noise).
    updates = [ModelUpdate({"w": torch.tensor([1e6, 0.0])}, 1), ModelUpdate({"w": torch.zeros(2)}, 1)]
    dp = DifferentialPrivacy.from_preset(FedProx(0.1), "low", clip_norm=1.0, seed=3)
    out = dp.aggregate(updates)["w"]
    assert float(out.abs().max()) < 0.5 + 6 * dp.compute_noise_sigma([1, 1])


def test_dp_refuses_rules_without_a_sensitivity_bound():
    updates = [ModelUpdate({"w": torch.zeros(2)}) for _ in range(5)]
    for rule in (Median(), TrimmedMean(0.2), Krum(1)):
        with pytest.raises(UnsupportedPrivacyComposition):
            DifferentialPrivacy(rule, clip_norm=1.0, epsilon=1.0, seed=0).aggregate(updates)


def test_invalid_dp_parameters_are_rejected():
    for make in (
        lambda: DifferentialPrivacy(FedAvg(), clip_norm=0.0, epsilon=1.0, seed=0),
        lambda: DifferentialPrivacy(FedAvg(), clip_norm=1.0, epsilon=0.0, seed=0),
        lambda: DifferentialPrivacy(FedAvg(), clip_norm=1.0, epsilon=1.0, delta=1.0, seed=0),
        lambda: DifferentialPrivacy(FedAvg(), clip_norm=1.0, epsilon=1.0, seed="x"),
        lambda: DifferentialPrivacy("fedavg", clip_norm=1.0, epsilon=1.0, seed=0),
        lambda: DifferentialPrivacy.from_preset(FedAvg(), "extreme", clip_norm=1.0, seed=0),
        lambda: compute_gaussian_sigma(float("inf"), 1e-5, 1.0),
        lambda: compute_classic_sigma(1.0, 1e-5, 1.0),
        lambda: compute_gaussian_sigma(1.0, 0.0, 1.0),
    ):
        with pytest.raises(InvalidAggregationParameter):
            make()


# --- secure aggregation ----------------------------------------------------------------


def pair_seeds(ids, context=b"job-1"):
    secret = {frozenset((a, b)): bytes([len(a + b)]) * 16 + (a + b).encode()[:16].ljust(16, b"x") for a in ids for b in ids}
    return {
        me: {p: compute_pair_seed_from_secret(secret[frozenset(sorted((me, p)))], context) for p in ids if p != me}
        for me in ids
    }


def quantized(update):
    (name,) = update.params
    return np.rint(update.params[name].numpy().astype(np.float64) * update.num_samples * 2**FRACTIONAL_BITS).astype(np.int64)


def test_x25519_pair_seeds_agree_on_both_sides():
    a, b = nacl.public.PrivateKey.generate(), nacl.public.PrivateKey.generate()
    ab = compute_pair_seed(bytes(a), bytes(b.public_key), b"job-9")
    ba = compute_pair_seed(bytes(b), bytes(a.public_key), b"job-9")
    assert ab == ba and len(ab) == 32
    assert compute_pair_seed(bytes(a), bytes(b.public_key), b"job-10") != ab


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 6), st.integers(0, 2**31 - 1), st.integers(0, 2**40))
def test_masks_cancel_exactly(n, seed, round_id):
    ids = [f"client-{i}" for i in range(n)]
    seeds = pair_seeds(ids)
    gen = torch.Generator().manual_seed(seed)
    updates = [ModelUpdate({"w": torch.randn(7, generator=gen)}, 1 + i) for i in range(n)]
    masked = [compute_masked_update(c, u, seeds[c], round_id) for c, u in zip(ids, updates)]
    # Each masked vector alone looks nothing like the update...
    assert not np.array_equal(masked[0].params["w"].view(np.int64), quantized(updates[0]))
    # ...but the modular sum is exactly the sum of the quantized updates.
    assert np.array_equal(compute_secure_sum(masked, ids)["w"], sum(quantized(u) for u in updates))


def test_secure_average_is_fedavg():
    ids = ["a", "b", "c"]
    seeds = pair_seeds(ids)
    updates = [
        ModelUpdate({"w": torch.tensor([[1.0, -2.0]]), "b": torch.tensor([0.5])}, 1),
        ModelUpdate({"w": torch.tensor([[3.0, 2.0]]), "b": torch.tensor([-0.5])}, 2),
        ModelUpdate({"w": torch.tensor([[0.0, 0.25]]), "b": torch.tensor([1.0])}, 5),
    ]
    masked = [compute_masked_update(c, u, seeds[c], 4) for c, u in zip(ids, updates)]
    out = compute_secure_average(masked, ids)
    expected = FedAvg().aggregate(updates)
    assert out["w"].shape == (1, 2)
    np.testing.assert_allclose(out["w"], expected["w"].numpy(), atol=1e-6)
    np.testing.assert_allclose(out["b"], expected["b"].numpy(), atol=1e-6)


def test_a_dropped_masked_client_raises_a_clear_error():
    ids = ["a", "b", "c"]
    seeds = pair_seeds(ids)
    masked = [compute_masked_update(c, ModelUpdate({"w": torch.ones(3)}), seeds[c], 1) for c in ids[:2]]
    with pytest.raises(MaskedClientDropped, match="'c'"):
        compute_secure_average(masked, ids)


def test_invalid_masked_input_is_rejected():
    ids = ["a", "b"]
    seeds = pair_seeds(ids)
    u = ModelUpdate({"w": torch.ones(3)})
    ma = compute_masked_update("a", u, seeds["a"], 1)
    mb = compute_masked_update("b", u, seeds["b"], 1)
    mb_other_round = compute_masked_update("b", u, seeds["b"], 2)
    bad = [
        lambda: compute_masked_update("a", u, {"a": b"\0" * 32}, 1),  # pair with itself
        lambda: compute_masked_update("a", u, {"b": b"short"}, 1),
        lambda: compute_masked_update("", u, seeds["a"], 1),
        lambda: compute_masked_update("a", u, seeds["a"], -1),
        lambda: compute_masked_update("a", ModelUpdate({"w": torch.full((2,), 1e12)}, 1000), seeds["a"], 1),
        lambda: compute_secure_sum([ma, ma], ids),
        lambda: compute_secure_sum([ma, mb], ["a"]),
        lambda: compute_secure_sum([ma, mb_other_round], ids),
        lambda: compute_secure_sum([ma, MaskedUpdate("b", 1, 1, {"w": np.zeros(2, np.uint64)}, {"w": (3,)})], ids),
        lambda: compute_secure_sum([ma, MaskedUpdate("b", 1, 1, {"v": np.zeros(3, np.uint64)}, {"v": (3,)})], ids),
        lambda: compute_secure_sum([ma, mb], []),
        lambda: MaskedUpdate("b", 1, 0, {}, {}),
        lambda: MaskedUpdate("b", -1, 1, {}, {}),
        lambda: MaskedUpdate("b", 1, 1, {"w": np.zeros(1, np.uint64)}, {"w": (-1,)}),
        lambda: MaskedUpdate("b", 1, 1, {"w": np.zeros(1, np.uint64)}, {"w": [1]}),
        lambda: MaskedUpdate("b", 1, 1, {"w": np.zeros(1, np.uint64)}, {}),
    ]
    for call in bad:
        with pytest.raises(InvalidMaskedUpdate):
            call()
    for call in (
        lambda: compute_pair_seed(b"\0" * 31, b"\0" * 32, b""),
        lambda: compute_pair_seed(b"\1" * 32, b"\0" * 32, b""),  # low-order point: all-zero secret
        lambda: compute_pair_seed_from_secret(b"short", b""),
        lambda: compute_pair_seed_from_secret(b"x" * 32, "ctx"),
    ):
        with pytest.raises(InvalidAggregationParameter):
            call()
