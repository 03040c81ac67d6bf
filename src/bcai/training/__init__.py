"""Training: aggregation and privacy (pure), and the shells that run jobs.

Pure cores:

- `updates.py`: `ModelUpdate` (name -> torch tensor or numpy array, plus sample count)
  and `check_updates`, the gate every rule passes input through.
- `aggregation/`: the rule plugins (FedAvg, FedProx, Median, TrimmedMean, Krum) and
  outlier flagging; see its `__init__`.
- `privacy/`: differential privacy (a wrapper rule) and secure aggregation (pairwise
  masks); see its `__init__`.

Shells (imported from their modules, not re-exported here, so `import bcai.training`
stays light):
- `data.py`: the digits dataset, deterministic shards, encrypted dataset artifacts.
- `spec.py`: `JobSpec`, the document a `PostJob` names by CID.
- `federated.py`: coordinator-free federated rounds (`run_federated_worker`), signed
  round updates, round checkpoints.
- `data_parallel.py`: synchronous data-parallel training on torch.distributed (gloo),
  `run_data_parallel_worker` (resumable from a checkpoint, checkpoints every K steps).
- `dp_job.py`: data-parallel jobs on the job flow: rendezvous on the job channel
  (`DpMessage`, `DpBoard`), one spawned rank process per worker, checkpoints by CID,
  new generations after a lost rank (`run_data_parallel_job`).
- `competitive.py`: competitive jobs: each worker's grid point of the spec's hyperparameter
  search (pure), its own training and submission, the evaluator attesting every model.
- `checkpoints.py`: federated round checkpoints recorded on chain, resume from the latest.
- `jobflow.py`: the client, worker and evaluator agents of a job and the job channel
  (dispatching competitive jobs to `competitive.py`, data-parallel ones to `dp_job.py`).
"""

from bcai.training.aggregation import (
    DEFAULT_MAD_MULTIPLIER,
    AggregationRule,
    FedAvg,
    FedProx,
    Krum,
    Median,
    OutlierFlag,
    TrimmedMean,
    compute_outlier_flags,
    compute_proximal_term,
)
from bcai.training.privacy import (
    DEFAULT_DELTA,
    EPSILON_PRESETS,
    FRACTIONAL_BITS,
    DifferentialPrivacy,
    MaskedUpdate,
    compute_classic_sigma,
    compute_clipped,
    compute_gaussian_sigma,
    compute_mask,
    compute_masked_update,
    compute_pair_seed,
    compute_pair_seed_from_secret,
    compute_secure_average,
    compute_secure_sum,
)
from bcai.training.updates import ModelUpdate, check_updates

__all__ = [
    "DEFAULT_DELTA",
    "DEFAULT_MAD_MULTIPLIER",
    "EPSILON_PRESETS",
    "FRACTIONAL_BITS",
    "AggregationRule",
    "DifferentialPrivacy",
    "FedAvg",
    "FedProx",
    "Krum",
    "MaskedUpdate",
    "Median",
    "ModelUpdate",
    "OutlierFlag",
    "TrimmedMean",
    "check_updates",
    "compute_classic_sigma",
    "compute_clipped",
    "compute_gaussian_sigma",
    "compute_mask",
    "compute_masked_update",
    "compute_outlier_flags",
    "compute_pair_seed",
    "compute_pair_seed_from_secret",
    "compute_proximal_term",
    "compute_secure_average",
    "compute_secure_sum",
]
