"""The WASM engine: hostile corpus (tests/sandbox/hostile/wasm), host interface, limits,
presets, determinism."""

import hashlib
import struct
from dataclasses import replace
from pathlib import Path

import pytest

from bcai.errors import ConfigError, SandboxInvalidModule, SandboxTrap
from bcai.sandbox.wasm import (
    OUTPUT_CAP_EVALUATION,
    OUTPUT_CAP_TASK,
    PRESETS,
    WasmEngine,
    WasmLimits,
    compute_module_bytes,
    get_preset,
    verify_deterministic,
)

CORPUS = Path(__file__).parent / "hostile" / "wasm"
CASES = sorted(CORPUS.glob("*.wa[st]"))
SHORT = WasmLimits(fuel=20_000_000, timeout_ms=400, max_memory_bytes=32 << 20, max_output_bytes=4 << 20)

IMPORTS = """
  (import "bcai" "input_len" (func $len (result i32)))
  (import "bcai" "read_input" (func $read (param i32 i32 i32) (result i32)))
  (import "bcai" "write_output" (func $write (param i32 i32)))
  (import "bcai" "log" (func $log (param i32 i32)))
"""
# Reads its input, writes it back reversed, logs "hi", returns the input length.
REVERSE = f"""(module {IMPORTS}
  (memory (export "memory") 2)
  (data (i32.const 65536) "hi")
  (func (export "run") (result i32) (local $n i32) (local $i i32)
    (local.set $n (call $read (i32.const 0) (i32.const 0) (call $len)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (i32.store8 (i32.add (i32.const 32768) (local.get $i))
        (i32.load8_u (i32.sub (i32.sub (local.get $n) (i32.const 1)) (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (call $log (i32.const 65536) (i32.const 2))
    (call $write (i32.const 32768) (local.get $n))
    (local.get $n)))"""


@pytest.fixture(scope="module")
def engine():
    return WasmEngine()


def _parse(path: Path) -> tuple[str, WasmLimits, bytes]:
    """The `;; expect: KIND` line, optional `;; limits: key=value ...` overrides and an
    optional `;; input: N` (N zero bytes instead of b"input")."""
    if path.suffix == ".wasm":
        return "invalid_module", SHORT, b"input"
    expect, overrides, data = None, {}, b"input"
    for line in path.read_text().splitlines():
        if line.startswith(";; expect:"):
            expect = line.split(":", 1)[1].strip()
        elif line.startswith(";; limits:"):
            for item in line.split(":", 1)[1].split():
                key, value = item.split("=")
                overrides[key] = int(value)
        elif line.startswith(";; input:"):
            data = bytes(int(line.split(":", 1)[1]))
    assert expect, path.name
    return expect, replace(SHORT, **overrides), data


def test_corpus_is_big_enough():
    assert len(CASES) >= 15


@pytest.mark.parametrize("path", CASES, ids=[p.name for p in CASES])
def test_hostile_module(path, engine):
    expect, limits, data = _parse(path)
    result = engine.execute(path.read_bytes(), data, limits=limits)
    assert (result.status, result.error_kind) == ("error", expect), result.message
    assert result.outputs == {}


def test_reverse_echo_reads_input_writes_output_and_logs(engine):
    result = engine.execute(REVERSE, b"hello", limits=SHORT)
    assert result.ok, result.message
    assert result.outputs["output"] == b"olleh"
    assert result.output_sha256 == hashlib.sha256(b"olleh").hexdigest()
    assert result.log == "hi"
    assert result.extra["return_value"] == 5
    assert result.metrics.fuel_used and result.metrics.fuel_used > 5
    assert result.metrics.peak_memory_bytes == 2 * 65536


def test_binary_and_text_give_the_same_result(engine):
    binary = compute_module_bytes(REVERSE)
    assert binary[:4] == b"\0asm"
    a = engine.execute(REVERSE, b"abc", limits=SHORT)
    b = engine.execute(binary, b"abc", limits=SHORT)
    assert a.output_sha256 == b.output_sha256 and a.metrics.fuel_used == b.metrics.fuel_used


def test_fuel_is_exact_and_repeatable(engine):
    runs = [engine.execute(REVERSE, b"x" * 100, limits=SHORT) for _ in range(3)]
    assert len({r.metrics.fuel_used for r in runs}) == 1
    # Fuel is checked at function entries and loop headers, so a budget is exact up to
    # one straight-line stretch of code.
    tight = WasmLimits(fuel=runs[0].metrics.fuel_used // 2)
    assert engine.execute(REVERSE, b"x" * 100, limits=tight).error_kind == "out_of_fuel"
    exact = WasmLimits(fuel=runs[0].metrics.fuel_used)
    assert engine.execute(REVERSE, b"x" * 100, limits=exact).ok


def test_nan_results_are_canonical(engine):
    # 0/0 gives a NaN whose payload may differ by CPU; canonicalization pins it.
    module = f"""(module {IMPORTS} (memory (export "memory") 1)
      (func (export "run")
        (f32.store (i32.const 0) (f32.div (f32.const 0) (f32.const 0)))
        (f64.store (i32.const 8) (f64.sqrt (f64.const -1)))
        (call $write (i32.const 0) (i32.const 16))))"""
    out = engine.execute(module, limits=SHORT).outputs["output"]
    assert struct.unpack("<I", out[:4])[0] == 0x7FC00000
    assert struct.unpack("<Q", out[8:16])[0] == 0x7FF8000000000000


PAYLOAD_NAN_OPS = [
    "(f32.add (local.get $a) (f32.const 1))", "(f32.mul (local.get $a) (local.get $a))",
    "(f32.min (local.get $a) (f32.const 1))", "(f32.sqrt (local.get $a))", "(f32.nearest (local.get $a))",
    "(f32.demote_f64 (f64.promote_f32 (local.get $a)))",
    "(f32x4.extract_lane 0 (f32x4.max (f32x4.splat (local.get $a)) (f32x4.splat (f32.const 1))))",
    "(f32x4.extract_lane 0 (f32x4.demote_f64x2_zero (f64x2.promote_low_f32x4 (f32x4.splat (local.get $a)))))",
]


@pytest.mark.parametrize("expr", PAYLOAD_NAN_OPS)
def test_a_nan_payload_does_not_survive_arithmetic(engine, expr):
    # A module feeding a NaN with a payload (0x7fa00001) through arithmetic would read the
    # CPU's NaN propagation (x86 keeps the payload, ARM may not): the result must be the
    # canonical NaN on every node.
    module = f"""(module {IMPORTS} (memory (export "memory") 1)
      (func (export "run") (local $a f32)
        (local.set $a (f32.reinterpret_i32 (i32.const 0x7fa00001)))
        (f32.store (i32.const 0) {expr})
        (call $write (i32.const 0) (i32.const 4))))"""
    out = engine.execute(module, limits=SHORT).outputs["output"]
    assert struct.unpack("<I", out)[0] == 0x7FC00000


def test_host_calls_pay_one_unit_of_fuel_per_byte_copied(engine):
    module = f"""(module {IMPORTS} (memory (export "memory") 1)
      (func (export "run")
        (call $log (i32.const 0) (call $read (i32.const 0) (i32.const 0) (call $len)))
        (call $write (i32.const 0) (call $len))))"""
    fuel = [engine.execute(module, bytes(n), limits=SHORT).metrics.fuel_used for n in (1000, 3000)]
    assert fuel[1] - fuel[0] == 3 * 2000  # read, log and write each copy the input once
    tight = replace(SHORT, fuel=fuel[1] - 1)
    assert engine.execute(module, bytes(3000), limits=tight).error_kind == "out_of_fuel"


def test_verify_deterministic_agrees_across_engines():
    report = verify_deterministic(REVERSE, b"determinism", limits=SHORT, engines=[WasmEngine(), WasmEngine()])
    assert report.deterministic
    assert len(set(report.output_sha256s)) == 1 and report.output_sha256s[0] is not None


def test_verify_deterministic_reports_a_difference():
    # Same module, different limits per engine is not possible, so feed a different fuel
    # budget through two runs on engines that differ: one metered, one not.
    report = verify_deterministic(REVERSE, b"abc", limits=SHORT, engines=[WasmEngine(), WasmEngine(metered=False)])
    assert not report.deterministic  # fuel_used 17 vs None: the runs are not comparable


def test_presets_match_the_spec():
    assert (PRESETS["default"].max_memory_bytes, PRESETS["default"].timeout_ms, PRESETS["default"].fuel) == (512 << 20, 30_000, 10**10)
    assert (PRESETS["strict"].max_memory_bytes, PRESETS["strict"].timeout_ms) == (256 << 20, 10_000)
    assert (PRESETS["relaxed"].max_memory_bytes, PRESETS["relaxed"].timeout_ms) == (1024 << 20, 60_000)
    assert PRESETS["default"].max_output_bytes == OUTPUT_CAP_EVALUATION == 64 << 20
    assert PRESETS["default"].for_task().max_output_bytes == OUTPUT_CAP_TASK == 16 << 20


def test_strict_preset_refuses_what_default_allows(engine):
    module = '(module (memory (export "memory") 5000) (func (export "run")))'  # ~312 MiB
    assert engine.execute(module, limits=get_preset("default")).ok
    assert engine.execute(module, limits=get_preset("strict")).error_kind == "memory_limit"


def test_task_output_cap(engine):
    module = f"""(module {IMPORTS} (memory (export "memory") 1)
      (func (export "run") (local i32)
        (loop (call $write (i32.const 0) (i32.const 65536))
              (local.set 0 (i32.add (local.get 0) (i32.const 1)))
              (br_if 0 (i32.lt_u (local.get 0) (i32.const 257))))))"""  # 16 MiB + 64 KiB
    assert engine.execute(module, limits=WasmLimits()).ok
    assert engine.execute(module, limits=WasmLimits().for_task()).error_kind == "output_too_large"


def test_raise_for_error_gives_the_leaf(engine):
    result = engine.execute('(module (func (export "run") unreachable))', limits=SHORT)
    with pytest.raises(SandboxTrap, match="unreachable"):
        result.raise_for_error()


def test_invalid_limits_are_refused():
    with pytest.raises(ConfigError):
        WasmLimits(fuel=0)
    with pytest.raises(ConfigError):
        WasmLimits(timeout_ms=-1)
    with pytest.raises(ConfigError):
        WasmLimits(max_memory_bytes=True)
    with pytest.raises(ConfigError, match="unknown WASM preset"):
        get_preset("lenient")


def test_invalid_module_sources():
    with pytest.raises(SandboxInvalidModule):
        compute_module_bytes(b"\xff\xfe not utf-8 \x80")
    with pytest.raises(SandboxInvalidModule):
        compute_module_bytes(12345)  # type: ignore[arg-type]


def test_invalid_input_is_a_clear_error(engine):
    assert engine.execute(REVERSE, "text, not bytes", limits=SHORT).error_kind == "invalid_module"  # type: ignore[arg-type]
    big = WasmLimits(max_input_bytes=3)
    assert "over" in engine.execute(REVERSE, b"four", limits=big).message


def test_entry_returning_other_types_is_invalid(engine):
    result = engine.execute('(module (func (export "run") (result f64) (f64.const 1)))', limits=SHORT)
    assert result.error_kind == "invalid_module"


# -- compilation is bounded too (it runs before fuel or the deadline exist) ------------------


def _leb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _binary(bodies: list[bytes], locals_: int = 0) -> bytes:
    """A module of `len(bodies)` functions of type () -> (), the first exported as run."""
    def section(kind: int, payload: bytes) -> bytes:
        return bytes([kind]) + _leb(len(payload)) + payload

    local_decl = (_leb(1) + _leb(locals_) + b"\x7f") if locals_ else _leb(0)
    code = [local_decl + body + b"\x0b" for body in bodies]
    return (
        b"\0asm\x01\0\0\0"
        + section(1, _leb(1) + b"\x60\x00\x00")
        + section(3, _leb(len(bodies)) + _leb(0) * len(bodies))
        + section(7, _leb(1) + _leb(3) + b"run\x00" + _leb(0))
        + section(10, _leb(len(bodies)) + b"".join(_leb(len(c)) + c for c in code))
    )


def _max_rss_mb() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def test_a_million_functions_do_not_reach_the_callers_memory():
    # 5 MB of one-byte functions took 5.7 GB and 120 s to compile in-process. The worker
    # process hits its address-space cap instead; the caller does not grow.
    engine = WasmEngine(compile_memory_bytes=512 << 20, compile_timeout_s=120)
    bomb = _binary([b"\x01"] * 1_000_000)
    before = _max_rss_mb()
    result = engine.execute(bomb, b"", limits=SHORT)
    assert (result.status, result.error_kind) == ("error", "invalid_module")
    assert "compiling the module" in result.message, result.message
    assert _max_rss_mb() - before < 200
    assert engine.execute(REVERSE, b"abc", limits=SHORT).outputs["output"] == b"cba"  # a fresh worker
    engine.close()


def test_a_quadratic_compile_is_cut_at_the_compile_budget():
    # One 400 KB function of `i32.const 1; br_if 0`: Cranelift's time is quadratic in it
    # (113 s measured). The caller waits compile_timeout_s, then kills the worker.
    engine = WasmEngine(compile_timeout_s=2)
    bomb = _binary([b"\x02\x40" + b"\x41\x01\x0d\x00" * 100_000 + b"\x0b"])
    result = engine.execute(bomb, b"", limits=SHORT)
    assert (result.status, result.error_kind) == ("error", "invalid_module")
    assert "longer than 2 s" in result.message, result.message
    assert result.metrics.wall_time_ms < 30_000
    assert engine.execute(REVERSE, b"ab", limits=SHORT).status == "ok"
    engine.close()


def test_fifty_thousand_locals_compile_one_more_does_not(engine):
    # 50 000 locals is wasmtime's per-function cap; a function of them compiles and runs.
    body = b"".join(b"\x20" + _leb(i) + b"\x21" + _leb((i * 7919) % 50_000) for i in range(0, 50_000, 5))
    assert engine.execute(_binary([body], 50_000), b"", limits=SHORT).status == "ok"
    over = engine.execute(_binary([b""], 50_001), b"", limits=SHORT)
    assert (over.status, over.error_kind) == ("error", "invalid_module")
    assert "locals" in over.message, over.message


def test_compile_errors_of_the_worker_are_clear(engine):
    result = engine.execute(b"\0asm\x01\0\0\0\x0a\x01", b"", limits=SHORT)
    assert (result.status, result.error_kind) == ("error", "invalid_module")
    assert result.message.startswith("module does not validate:"), result.message


def test_wat_text_is_parsed_in_the_bounded_worker_too():
    # A million nested blocks: ~400 MB to parse into a tree. The worker's cap refuses it;
    # the caller never parses untrusted text itself.
    engine = WasmEngine(compile_memory_bytes=256 << 20, compile_timeout_s=120)
    depth = 1_000_000
    bomb = "(module (func (export \"run\") " + "(block " * depth + ")" * depth + "))"
    before = _max_rss_mb()
    result = engine.execute(bomb, b"", limits=SHORT)
    assert (result.status, result.error_kind) == ("error", "invalid_module")
    assert "compiling the module" in result.message, result.message
    assert _max_rss_mb() - before < 200
    bad = engine.execute("(module (func $f (i32.frobnicate)))", b"", limits=SHORT)
    assert bad.message.startswith("module text does not parse:"), bad.message
    engine.close()


def test_the_module_cache_is_bounded_in_bytes(monkeypatch):
    from bcai.sandbox.wasm import engine as engine_module

    engine = WasmEngine()
    sizes = []
    for i in range(4):
        module = f'(module (memory (export "memory") 1) (func (export "run") {"(i32.store (i32.const 0) (i32.const %d))" % i * 2000}))'
        assert engine.execute(module, b"", limits=SHORT).status == "ok"
        sizes.append(engine.cached_bytes)
    assert sizes[0] > 0 and sizes == sorted(sizes)  # grows while under the cap
    monkeypatch.setattr(engine_module, "MODULE_CACHE_BYTES", sizes[1])
    assert engine.execute(REVERSE, b"x", limits=SHORT).status == "ok"
    assert 0 < engine.cached_bytes <= sizes[1]
    engine.close()


def test_export_and_import_counts_are_capped(engine):
    # wasmtime-py walks an instance's exports in O(n^2): 100 000 exports held the caller
    # (GIL included) for 187 s. Over the caps the module is refused before instantiation.
    from bcai.sandbox.wasm.engine import MAX_EXPORTS, MAX_IMPORTS

    def exporting(n: int) -> str:
        return '(module (func) (func (export "run")) ' + " ".join(f'(export "e{i}" (func 0))' for i in range(n - 1)) + ")"

    def importing(n: int) -> str:
        return "(module " + ' (import "bcai" "log" (func (param i32 i32)))' * n + ' (func (export "run")))'

    assert engine.execute(exporting(MAX_EXPORTS), b"", limits=SHORT).status == "ok"
    assert engine.execute(importing(MAX_IMPORTS), b"", limits=SHORT).status == "ok"
    for module, what in ((exporting(MAX_EXPORTS + 1), "exports"), (importing(MAX_IMPORTS + 1), "imports"), (exporting(100_000), "exports")):
        result = engine.execute(module, b"", limits=SHORT)
        assert (result.status, result.error_kind) == ("error", "invalid_module")
        assert what in result.message and result.metrics.wall_time_ms < 60_000, result.message


def test_an_artifact_over_the_cap_is_refused_and_the_worker_replaced(monkeypatch):
    from bcai.sandbox.wasm import compiler

    engine = WasmEngine()
    monkeypatch.setattr(compiler, "MAX_ARTIFACT_BYTES", 1000)  # any real module is bigger
    result = engine.execute(REVERSE, b"ab", limits=SHORT)
    assert (result.status, result.error_kind) == ("error", "invalid_module")
    assert "over 1000" in result.message, result.message
    monkeypatch.undo()
    assert engine.execute(REVERSE, b"ab", limits=SHORT).outputs["output"] == b"ba"
    engine.close()
