"""Structural validation of a program, before any tensor exists.

Checks (each failure names the section, the instruction index and its kind):

- every id an instruction reads is defined earlier (by init, an entry input or an
  earlier instruction of the same entry); no id is defined twice;
- entry inputs do not shadow state, entry names are unique, outputs are defined;
- `parameters` and `buffers` name state tensors (made in `init`), disjoint;
- in-place instructions (optimizer steps) and training-mode batch norm update only state;
- `Backward` differentiates with respect to state tensors that require grad;
- `init` holds only instructions that create state (no feeds exist there).

Shapes and dtypes are checked afterwards by the planner, which runs the program on
`meta` tensors (see `plan.py`).
"""

from __future__ import annotations

from bcai.errors import InvalidProgram, UndefinedTensor
from bcai.vm import isa
from bcai.vm.program import Program


def where(section: str, index: int, instr: isa.Instruction) -> str:
    return f"{section} instruction {index} ({instr.KIND})"


def validate_program(program: Program) -> tuple[str, ...]:
    """Check the program's structure; return the state ids (in creation order)."""
    state: list[str] = []
    defined: set[str] = set()
    requires_grad: set[str] = set()
    for index, instr in enumerate(program.init):
        loc = where("init", index, instr)
        if isinstance(instr, (isa.Backward, isa.AdamStep, isa.SGDStep, isa.Dropout, isa.PythonExecute)):
            raise InvalidProgram(f"{loc}: init may only create state, not train or run code")
        _check_reads(loc, instr, defined)
        for out in instr.write_ids():
            if out in defined:
                raise InvalidProgram(f"{loc}: tensor id {out!r} is defined twice")
            defined.add(out)
            state.append(out)
        if isinstance(instr, isa.TensorCreate) and instr.requires_grad:
            requires_grad.add(instr.id)
    state_set = set(state)
    for kind, ids in (("parameters", program.parameters), ("buffers", program.buffers)):
        missing = [i for i in ids if i not in state_set]
        if missing:
            raise InvalidProgram(f"Program.{kind} names ids that init does not create: {missing}")
        if len(set(ids)) != len(ids):
            raise InvalidProgram(f"Program.{kind} lists an id twice")
    if set(program.parameters) & set(program.buffers):
        raise InvalidProgram("an id cannot be both a parameter and a buffer")
    if len(set(program.entry_names)) != len(program.entries):
        raise InvalidProgram(f"entry names must be unique: {list(program.entry_names)}")
    for entry in program.entries:
        section = f"entry {entry.name!r}"
        names = [s.name for s in entry.inputs]
        if len(set(names)) != len(names):
            raise InvalidProgram(f"{section}: an input name is listed twice")
        clash = [n for n in names if n in state_set]
        if clash:
            raise InvalidProgram(f"{section}: inputs {clash} shadow state tensors of the same id")
        scope = state_set | set(names)
        for index, instr in enumerate(entry.body):
            loc = where(section, index, instr)
            _check_reads(loc, instr, scope)
            for out in instr.write_ids():
                if out in scope:
                    raise InvalidProgram(f"{loc}: tensor id {out!r} is already defined (ids are written once)")
                scope.add(out)
            _check_state_updates(loc, instr, state_set, requires_grad)
        missing = [o for o in entry.outputs if o not in scope]
        if missing:
            raise UndefinedTensor(f"{section}: outputs {missing} are never defined")
    return tuple(state)


def _check_reads(loc: str, instr: isa.Instruction, defined: set[str]) -> None:
    for name in instr.read_ids():
        if name not in defined:
            raise UndefinedTensor(f"{loc}: reads tensor id {name!r} before anything defines it")


def _check_state_updates(loc: str, instr: isa.Instruction, state: set[str], requires_grad: set[str]) -> None:
    if isinstance(instr, isa.AdamStep):
        updated = instr.params + instr.exp_avgs + instr.exp_avg_sqs + instr.steps
    elif isinstance(instr, isa.SGDStep):
        updated = instr.params + instr.momentum_buffers
    elif isinstance(instr, isa.BatchNorm) and instr.training:
        updated = tuple(i for i in (instr.running_mean, instr.running_var) if i is not None)
    else:
        updated = ()
    not_state = [i for i in updated if i not in state]
    if not_state:
        raise InvalidProgram(f"{loc}: updates {not_state} in place, but only state tensors (made in init) can be updated")
    if isinstance(instr, (isa.AdamStep, isa.SGDStep)):
        frozen = [p for p in instr.params if p not in requires_grad]
        if frozen:
            raise InvalidProgram(f"{loc}: parameters {frozen} are not created with requires_grad")
    if isinstance(instr, isa.Backward):
        bad = [w for w in instr.wrt if w not in requires_grad]
        if bad:
            raise InvalidProgram(f"{loc}: Backward wrt {bad}: only state tensors created with requires_grad")
