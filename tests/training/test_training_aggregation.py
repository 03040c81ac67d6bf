import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bcai.errors import InvalidAggregationParameter, InvalidUpdate
from bcai.training import FedAvg, FedProx, Krum, Median, ModelUpdate, TrimmedMean, compute_proximal_term


def upd(values, n=1, name="w"):
    return ModelUpdate({name: torch.tensor(values, dtype=torch.float32)}, n)


def test_fedavg_weights_by_samples():
    out = FedAvg().aggregate([upd([1.0, 2.0], 1), upd([3.0, 4.0], 3)])
    assert torch.allclose(out["w"], torch.tensor([2.5, 3.5]))


def test_fedavg_does_not_modify_its_input():
    a, b = upd([1.0, 1.0]), upd([3.0, 3.0])
    FedAvg().aggregate([a, b])
    FedAvg().aggregate([a])
    assert a.params["w"].tolist() == [1.0, 1.0] and b.params["w"].tolist() == [3.0, 3.0]


def test_numpy_in_numpy_out_and_multiple_parameters():
    updates = [
        ModelUpdate({"w": np.array([[1.0, 2.0]], dtype=np.float32), "b": np.array([0.0], dtype=np.float32)}, 2),
        ModelUpdate({"w": np.array([[3.0, 6.0]], dtype=np.float32), "b": np.array([4.0], dtype=np.float32)}, 2),
    ]
    out = FedAvg().aggregate(updates)
    assert isinstance(out["w"], np.ndarray) and out["w"].shape == (1, 2)
    np.testing.assert_allclose(out["w"], [[2.0, 4.0]])
    np.testing.assert_allclose(out["b"], [2.0])


def test_fedprox_server_is_fedavg_and_keeps_mu():
    updates = [upd([1.0], 1), upd([5.0], 3)]
    assert torch.equal(FedProx(mu=0.1).aggregate(updates)["w"], FedAvg().aggregate(updates)["w"])
    assert FedProx(mu=0.1).mu == 0.1


def test_proximal_term_value_and_gradient():
    local = {"w": torch.tensor([1.0, 2.0], requires_grad=True), "b": torch.tensor([0.0], requires_grad=True)}
    glob = {"w": torch.tensor([0.0, 0.0]), "b": torch.tensor([1.0])}
    term = compute_proximal_term(local, glob, mu=0.2)
    assert float(term.detach()) == pytest.approx(0.1 * (1 + 4 + 1))
    term.backward()
    assert torch.allclose(local["w"].grad, 0.2 * torch.tensor([1.0, 2.0]))
    assert torch.allclose(local["b"].grad, torch.tensor([-0.2]))
    assert float(compute_proximal_term(local, glob, mu=0.0).detach()) == 0.0


def test_median_odd_and_even():
    assert Median().aggregate([upd([1.0, 9.0]), upd([2.0, 0.0]), upd([100.0, 5.0])])["w"].tolist() == [2.0, 5.0]
    assert Median().aggregate([upd([1.0]), upd([2.0]), upd([4.0]), upd([100.0])])["w"].tolist() == [3.0]


def test_trimmed_mean_drops_extremes():
    updates = [upd([v]) for v in (-100.0, 1.0, 2.0, 3.0, 1000.0)]
    assert TrimmedMean(beta=0.2).aggregate(updates)["w"].tolist() == [2.0]
    assert TrimmedMean(beta=0.0).aggregate(updates)["w"].tolist() == [pytest.approx(181.2)]
    assert TrimmedMean(beta=0.1).compute_trim(5) == 0


def test_krum_picks_the_central_update_and_multi_krum_averages():
    updates = [upd([0.0, 0.0]), upd([0.1, 0.0]), upd([0.0, 0.1]), upd([0.1, 0.1]), upd([50.0, -50.0])]
    params = [{"w": u.params["w"]} for u in updates]
    assert Krum(f=1).compute_selection(params)[0] in {0, 1, 2, 3}
    assert 4 not in Krum(f=1, m=3).compute_selection(params)
    chosen = Krum(f=1).aggregate(updates)["w"]
    assert any(torch.equal(chosen, u.params["w"]) for u in updates[:4])
    assert float(Krum(f=1, m=4).aggregate(updates)["w"].abs().max()) <= 0.1 + 1e-6


# --- properties ---------------------------------------------------------------------------

vectors = st.lists(st.floats(-1e3, 1e3, width=32), min_size=1, max_size=6)


@given(vectors, st.lists(st.integers(1, 1000), min_size=1, max_size=7))
def test_fedavg_of_identical_updates_is_that_update(values, counts):
    x = torch.tensor(values, dtype=torch.float32)
    out = FedAvg().aggregate([ModelUpdate({"w": x.clone()}, n) for n in counts])["w"]
    assert torch.allclose(out, x, rtol=1e-5, atol=1e-4)


@settings(max_examples=60)
@given(
    st.integers(3, 11).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, (n - 1) // 2))),
    st.integers(0, 2**31 - 1),
    st.floats(1e3, 1e9),
)
def test_median_is_robust_to_fewer_than_half_poisoned(n_bad, seed, scale):
    n, bad = n_bad
    gen = torch.Generator().manual_seed(seed)
    honest = [torch.rand(8, generator=gen) for _ in range(n - bad)]  # in [0, 1)
    poisoned = [torch.full((8,), scale * (-1) ** i) for i in range(bad)]
    out = Median().aggregate([ModelUpdate({"w": t}) for t in honest + poisoned])["w"]
    lo = torch.stack(honest).min(dim=0).values
    hi = torch.stack(honest).max(dim=0).values
    assert bool(((out >= lo) & (out <= hi)).all())


@settings(max_examples=60)
@given(st.integers(0, 3), st.integers(0, 2**31 - 1), st.floats(10.0, 1e6))
def test_krum_picks_an_honest_update_with_f_byzantine(f, seed, scale):
    n = 2 * f + 3 + (seed % 3)
    gen = torch.Generator().manual_seed(seed)
    centre = torch.rand(6, generator=gen)
    honest = [centre + 0.01 * torch.randn(6, generator=gen) for _ in range(n - f)]
    byzantine = [centre + scale * torch.randn(6, generator=gen) for _ in range(f)]
    updates = [ModelUpdate({"w": t}) for t in honest + byzantine]
    params = [{"w": u.params["w"]} for u in updates]
    assert Krum(f=f).compute_selection(params)[0] < n - f


# --- invalid input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: ModelUpdate({}, 1),
        lambda: ModelUpdate({"w": [1.0]}, 1),
        lambda: ModelUpdate({"": torch.zeros(1)}, 1),
        lambda: ModelUpdate({"w": torch.zeros(1)}, 0),
        lambda: ModelUpdate({"w": torch.zeros(1)}, True),
        lambda: ModelUpdate({"w": torch.zeros(1)}, 1.5),
    ],
)
def test_invalid_update_is_rejected(make):
    with pytest.raises(InvalidUpdate):
        make()


@pytest.mark.parametrize(
    "updates",
    [
        [],
        [upd([1.0]), upd([1.0], name="v")],
        [upd([1.0]), upd([1.0, 2.0])],
        [upd([1.0]), ModelUpdate({"w": torch.tensor([1.0], dtype=torch.float64)})],
        [ModelUpdate({"w": torch.tensor([1, 2])})],
        [ModelUpdate({"w": np.array(["a", "b"], dtype=object)})],
        [ModelUpdate({"w": torch.tensor([1 + 1j])})],
        [upd([1.0]), upd([float("nan")])],
        [upd([float("inf")])],
        "not a list",
    ],
)
def test_invalid_update_sets_are_rejected_by_every_rule(updates):
    for rule in (FedAvg(), FedProx(), Median(), TrimmedMean(0.1), Krum(0)):
        with pytest.raises(InvalidUpdate):
            rule.aggregate(updates)


def test_invalid_rule_parameters_are_rejected():
    for make in (
        lambda: TrimmedMean(0.5),
        lambda: TrimmedMean(-0.1),
        lambda: TrimmedMean(float("nan")),
        lambda: Krum(-1),
        lambda: Krum(1, m=0),
        lambda: FedProx(mu=-1.0),
        lambda: compute_proximal_term({"w": torch.zeros(1)}, {"w": torch.zeros(1)}, mu=float("inf")),
    ):
        with pytest.raises(InvalidAggregationParameter):
            make()
    with pytest.raises(InvalidAggregationParameter):
        Krum(f=1).aggregate([upd([0.0])] * 4)  # needs n > 2f + 2
    with pytest.raises(InvalidAggregationParameter):
        Krum(f=1, m=5).aggregate([upd([0.0])] * 5)  # m > n - f
    with pytest.raises(InvalidUpdate):
        compute_proximal_term({"w": torch.zeros(1)}, {"v": torch.zeros(1)}, mu=0.1)
    with pytest.raises(InvalidUpdate):
        compute_proximal_term({"w": torch.zeros(1)}, {"w": torch.zeros(2)}, mu=0.1)


def test_huge_finite_values_are_accepted_even_when_their_sum_overflows():
    big = torch.full((4,), 3e38)
    out = Median().aggregate([ModelUpdate({"w": big}), ModelUpdate({"w": big}), ModelUpdate({"w": big})])
    assert torch.equal(out["w"], big)


def test_krum_distances_are_accurate_over_all_parameters():
    from bcai.training.aggregation.krum import compute_pairwise_sq_distances

    gen = torch.Generator().manual_seed(5)
    params = [{"a": torch.randn(1000, generator=gen), "b": torch.randn(3, 3, generator=gen)} for _ in range(4)]
    dist = compute_pairwise_sq_distances(params)
    for i in range(4):
        for j in range(4):
            exact = sum(float(((params[i][k].double() - params[j][k].double()) ** 2).sum()) for k in "ab")
            assert float(dist[i, j]) == pytest.approx(exact, rel=1e-5)
