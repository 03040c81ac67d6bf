import bcai.training


def test_public_names_are_pinned():
    assert set(bcai.training.__all__) == {
        "DEFAULT_DELTA", "DEFAULT_MAD_MULTIPLIER", "EPSILON_PRESETS", "FRACTIONAL_BITS", "AggregationRule",
        "DifferentialPrivacy", "FedAvg", "FedProx", "Krum", "MaskedUpdate", "Median", "ModelUpdate", "OutlierFlag",
        "TrimmedMean", "check_updates", "compute_classic_sigma", "compute_clipped", "compute_gaussian_sigma",
        "compute_mask", "compute_masked_update", "compute_outlier_flags", "compute_pair_seed",
        "compute_pair_seed_from_secret", "compute_proximal_term", "compute_secure_average", "compute_secure_sum",
    }
    for name in bcai.training.__all__:
        assert hasattr(bcai.training, name)
