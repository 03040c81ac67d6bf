"""Synchronous data-parallel training on torch.distributed (gloo): pure core and shell.

Every worker of a data-parallel job runs `run_data_parallel_worker` with the same program,
data, seed and global batch size, and its own rank. Each step:

1. every rank takes the same global batch (the epoch's permutation, fixed by seed and
   epoch exactly as `bcai.vm.loop.train_epochs` orders it) and its own contiguous slice
   of it (`compute_rank_slice`: sizes differ by at most one; a rank may get none);
2. it runs the program's `compute_gradients` entry on its slice (the mean-loss gradients
   over its `n_r` examples);
3. one all-reduce (sum, float64) of `n_r * grad` and `n_r * loss` over all ranks, divided
   by the global batch's size `B`, gives the full-batch mean gradient and loss, however
   uneven the slices (the last batch of an epoch);
4. it runs `apply_gradients` with that gradient (cast back to the parameter dtype).

Buffers (batch-norm running statistics) are updated by each rank from its own slice in
`compute_gradients`; the same all-reduce replaces them with their example-weighted mean
(integer buffers: the maximum), so they stay identical too. For `running_mean` that is the
global batch's update; `running_var` misses the variance between slices, and batch norm
normalises each slice with its own statistics (as PyTorch DDP without SyncBatchNorm).

Every rank receives the same reduced bytes, so every rank applies the same update and the
parameters stay bitwise identical; at the end of each epoch the ranks all-gather their
model hashes and stop with an error if any differ. Against one process training on the
same global batches the result differs only by summation order (float64 partial sums,
then one rounding to float32): within float32 rounding of the gradients per step; with one
rank it is bitwise `train_epochs`.

A rank that dies or stalls makes the others fail with `JobTimeout` (gloo reports a closed
connection at once, a silent peer after `timeout_s`) instead of hanging; the process
group is destroyed on every exit path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, Sequence

import numpy as np
import torch
import torch.distributed as dist

from bcai.crypto import Cid
from bcai.errors import InvalidFeed, JobFlowError, JobTimeout
from bcai.training.data import Dataset
from bcai.vm.interpreter import Session
from bcai.vm.isa import TensorSpec
from bcai.vm.kernels import DTYPE_NAMES, TORCH_DTYPES
from bcai.vm.loop import compute_batch_order
from bcai.vm.tensors import compute_tensors_hash, encode_tensors

COMPUTE_ENTRY = "compute_gradients"
APPLY_ENTRY = "apply_gradients"
DEFAULT_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class DataParallelResult:
    """What one rank ends with: the final model (parameters and buffers) as canonical bytes
    and their CID (the same on every rank), the examples this rank and all ranks processed,
    and the mean training loss (weighted by examples; the same on every rank) of each epoch
    this call ran (a resumed epoch's over the steps it ran)."""

    rank: int
    world_size: int
    params: bytes
    model_cid: Cid
    samples: int
    global_samples: int
    epoch_losses: tuple[float, ...]


# --- pure core -----------------------------------------------------------------------------


def compute_rank_slice(batch_len: int, rank: int, world_size: int) -> tuple[int, int]:
    """[start, stop) of `rank`'s contiguous share of a global batch of `batch_len`
    examples: the first `batch_len % world_size` ranks get one more; a share may be empty."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise InvalidFeed(f"rank {rank} is not in [0, {world_size})")
    if batch_len < 0:
        raise InvalidFeed(f"batch length must be >= 0, got {batch_len}")
    base, extra = divmod(batch_len, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def compute_global_batches(n: int, epoch: int, seed: int, batch_size: int) -> list[np.ndarray]:
    """The epoch's global batches (example indices), in `train_epochs`' order."""
    order = compute_batch_order(n, epoch, seed)
    return [order[start:start + batch_size] for start in range(0, n, batch_size)]


def compute_packed(loss: float, tensors: Sequence[torch.Tensor], samples: int) -> torch.Tensor:
    """One float64 vector [n*loss, n*tensor...] (the rank's weighted contribution: its
    gradients, then its floating-point buffers)."""
    parts = [torch.tensor([loss * samples], dtype=torch.float64)]
    parts += [t.detach().to("cpu", torch.float64).reshape(-1) * samples for t in tensors]
    return torch.cat(parts)


def compute_unpacked(total: torch.Tensor, specs: Sequence[TensorSpec], batch_len: int
                     ) -> tuple[float, dict[str, torch.Tensor]]:
    """The global batch's mean loss and the example-weighted means of the packed tensors
    (in their declared dtypes) from the summed `compute_packed` vectors."""
    counts = [int(np.prod(spec.shape, dtype=np.int64)) for spec in specs]
    if total.dim() != 1 or len(total) != 1 + sum(counts):
        raise InvalidFeed(f"gradient vector has shape {list(total.shape)}, the program needs [{1 + sum(counts)}]")
    if batch_len <= 0:
        raise InvalidFeed(f"batch length must be > 0, got {batch_len}")
    mean = total / batch_len
    grads, offset = {}, 1
    for spec, count in zip(specs, counts):
        grads[spec.name] = mean[offset:offset + count].reshape(spec.shape).to(TORCH_DTYPES[spec.dtype])
        offset += count
    return float(mean[0]), grads


def check_data_parallel_program(session: Session) -> tuple[TensorSpec, ...]:
    """The gradient specs of `session`'s program; refuses programs without the entries."""
    names = session.program.entry_names
    if COMPUTE_ENTRY not in names or APPLY_ENTRY not in names:
        raise InvalidFeed(f"data-parallel training needs entries {COMPUTE_ENTRY!r} and {APPLY_ENTRY!r}; the program "
                          f"has {list(names)} (rebuild it with this version's compiler)")
    specs = session.program.entry(APPLY_ENTRY).inputs
    produced = session.program.entry(COMPUTE_ENTRY).outputs
    if tuple(produced[1:]) != tuple(s.name for s in specs):
        raise InvalidFeed(f"{COMPUTE_ENTRY!r} outputs {list(produced)} do not match {APPLY_ENTRY!r} inputs")
    return specs


# --- shell ---------------------------------------------------------------------------------


def run_data_parallel_worker(*, rank: int, world_size: int, init_method: str | None = None, session: Session,
                             data: Dataset, epochs: int, batch_size: int, seed: int, backend: str = "gloo",
                             timeout_s: float = DEFAULT_TIMEOUT_S, store: dist.Store | None = None,
                             start_step: int = 0, checkpoint_every: int = 0,
                             on_checkpoint: Callable[[int, bytes, int], None] | None = None) -> DataParallelResult:
    """Train `session` synchronously with `world_size - 1` peers (see the module doc).

    The rendezvous is `init_method` ("tcp://HOST:PORT", rank 0 listens) or an open
    `store` (a `TCPStore` client of a store someone else hosts): exactly one of them.
    Every rank must pass the same program, data, epochs, batch_size, seed and start_step.

    Resuming: `start_step` global steps (epoch after epoch, `ceil(n / batch_size)` steps
    each) are skipped; the caller has loaded the session's state (`Session.import_state`)
    as it was after them. Checkpoints: after every `checkpoint_every`-th global step (0:
    never) `on_checkpoint(steps_done, session.export_state(), samples)` is called, with the
    examples this rank processed in this call so far; resuming from that state at
    `start_step=steps_done` continues the same run.
    """
    grad_specs = check_data_parallel_program(session)
    buffers = session.state.get(session.program.buffers)
    float_buffers = tuple(TensorSpec(n, tuple(t.shape), DTYPE_NAMES[t.dtype]) for n, t in buffers.items()
                          if t.is_floating_point())
    other_buffers = tuple(n for n, t in buffers.items() if not t.is_floating_point())
    specs = grad_specs + float_buffers
    compute_rank_slice(0, rank, world_size)  # validates rank / world_size
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise InvalidFeed(f"epochs must be an int >= 0, got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise InvalidFeed(f"batch_size must be an int > 0, got {batch_size!r}")
    if not timeout_s > 0:
        raise InvalidFeed(f"timeout_s must be > 0, got {timeout_s!r}")
    for name, value in (("start_step", start_step), ("checkpoint_every", checkpoint_every)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidFeed(f"{name} must be an int >= 0, got {value!r}")
    if (store is None) == (init_method is None):
        raise InvalidFeed("pass exactly one of init_method and store")
    if store is None and (not isinstance(init_method, str)
                          or init_method.partition("://")[0] not in ("tcp", "file", "env")):
        raise InvalidFeed(f"cannot join {init_method!r}: init_method must be tcp://HOST:PORT, file://PATH or env://")
    if dist.is_initialized():
        raise JobFlowError("this process already belongs to a torch.distributed process group")
    plan = session.program.training
    x_name = plan.feature_input if plan is not None else "x"
    y_name = plan.label_input if plan is not None else "y"
    xs, ys = torch.as_tensor(np.asarray(data.x)), torch.as_tensor(np.asarray(data.y))

    where = f"rank {rank}/{world_size}"
    joining = {"store": store} if store is not None else {"init_method": init_method}
    try:
        dist.init_process_group(backend, rank=rank, world_size=world_size, timeout=timedelta(seconds=timeout_s),
                                **joining)
    except ValueError as exc:  # a malformed init_method or backend name
        raise InvalidFeed(f"{where}: cannot join {init_method!r} with backend {backend!r}: {exc}") from exc
    except RuntimeError as exc:  # the store's timeout / connection errors (DistError and kin)
        raise JobTimeout(f"{where}: could not join the process group at {init_method or 'the store'} within "
                         f"{timeout_s}s: "
                         f"{exc}") from exc
    try:
        samples, global_samples, losses = 0, 0, []
        steps_per_epoch = -(-len(xs) // batch_size)
        for epoch in range(start_step // steps_per_epoch, epochs):
            loss_sum, seen = 0.0, 0
            for step, batch in enumerate(compute_global_batches(len(xs), epoch, seed, batch_size)):
                if epoch * steps_per_epoch + step < start_step:
                    continue
                start, stop = compute_rank_slice(len(batch), rank, world_size)
                idx = torch.from_numpy(batch[start:stop])
                if len(idx):
                    out, _ = session.run(COMPUTE_ENTRY, {x_name: xs[idx], y_name: ys[idx]})
                    local = [out[s.name] for s in grad_specs]
                    local += list(session.state.get(tuple(s.name for s in float_buffers)).values())
                    packed = compute_packed(float(out["loss"]), local, len(idx))
                else:
                    packed = compute_packed(0.0, [torch.zeros(s.shape) for s in specs], 0)
                _collective(dist.all_reduce, packed, where=f"{where}, epoch {epoch} step {step}")
                loss, reduced = compute_unpacked(packed, specs, len(batch))
                if other_buffers:
                    _sync_other_buffers(session, other_buffers, where=f"{where}, epoch {epoch} step {step}")
                if float_buffers:
                    session.set_parameters({s.name: reduced[s.name] for s in float_buffers})
                session.run(APPLY_ENTRY, {s.name: reduced[s.name] for s in grad_specs})
                samples += len(idx)
                global_samples += len(batch)
                loss_sum, seen = loss_sum + loss * len(batch), seen + len(batch)
                done = epoch * steps_per_epoch + step + 1
                if on_checkpoint is not None and checkpoint_every and done % checkpoint_every == 0:
                    on_checkpoint(done, session.export_state(), samples)
            losses.append(loss_sum / seen)
            _check_agreement(session, where=f"{where}, end of epoch {epoch}", world_size=world_size)
        model = session.get_parameters()
        return DataParallelResult(rank, world_size, encode_tensors(model), compute_tensors_hash(model), samples,
                                  global_samples, tuple(losses))
    finally:
        dist.destroy_process_group()


def _collective(op: object, *args: object, where: str) -> None:
    try:
        op(*args)  # type: ignore[operator]
    except RuntimeError as exc:  # gloo raises DistBackendError (a RuntimeError) on a lost or silent peer
        raise JobTimeout(f"{where}: a peer left or did not answer in time ({exc})") from exc


def _sync_other_buffers(session: Session, names: tuple[str, ...], *, where: str) -> None:
    """Integer buffers (batch counters): the largest value of any rank (a rank without
    examples this step did not count it)."""
    values = session.state.get(names)
    flat = torch.cat([v.to(torch.int64).reshape(-1) for v in values.values()])
    _collective(dist.all_reduce, flat, dist.ReduceOp.MAX, where=where)
    out, offset = {}, 0
    for name, v in values.items():
        out[name] = flat[offset:offset + v.numel()].reshape(v.shape).to(v.dtype)
        offset += v.numel()
    session.set_parameters(out)


def _check_agreement(session: Session, *, where: str, world_size: int) -> None:
    mine = torch.tensor(list(session.compute_model_hash().to_bytes()), dtype=torch.int64)
    gathered = [torch.empty_like(mine) for _ in range(world_size)]
    _collective(dist.all_gather, gathered, mine, where=where)
    differing = [r for r, h in enumerate(gathered) if not torch.equal(h, mine)]
    if differing:
        raise JobFlowError(f"{where}: model differs from ranks {differing} (the ranks diverged)")
