"""The demo job's definition: its model (BML), sizes, stakes and budget."""

from __future__ import annotations

from importlib import resources

N_VALIDATORS, N_WORKERS, N_EVALUATORS = 4, 3, 2
BUDGET = 1_000_000
WORKER_STAKE = 10_000
REGISTRY_STAKE = 5_000
FUNDING = 200_000
ROUNDS, LOCAL_EPOCHS = 8, 2
TARGET_ACCURACY_BPS = 9_700


def demo_bml() -> str:
    """The demo's BML document (a small CNN on the 8x8 digits, SGD with momentum)."""
    return resources.files("bcai.demo").joinpath("digits_cnn.yaml").read_text()
