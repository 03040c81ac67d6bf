"""The ONNX standard's own backend test cases against `from_onnx` + the VM (`BcaiBackend`).

The installed onnx wheel ships the node-test generators (`onnx.backend.test.case.node`:
the model and its inputs/outputs computed by numpy reference code) and the small model
suites on disk (pytorch-converted, pytorch-operator, simple). Every case runs through the
backend once (a module fixture, ~10 s) and ends in one of:

- "pass": outputs equal the reference in count, dtype, shape and value (the suite's own
  comparison, rtol 1e-3 / atol 1e-7 unless the case says otherwise);
- "unsupported": `UnsupportedOperators` naming what the VM cannot express;
- anything else (wrong numbers, another exception) is a bug these tests report.
"""

from __future__ import annotations

import glob
import inspect
import os
import random
import subprocess
import sys
import traceback
import unittest
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import onnx.backend.test
import pytest
from onnx import helper, numpy_helper
from onnx.backend.test.runner import Runner

from bcai.errors import BcaiError, InvalidFeed, InvalidModel, UnsupportedOperators
from bcai.vm import VM
from bcai.vm.frontends.onnx import SUPPORTED_OPS, from_onnx
from bcai.vm.frontends.onnx_backend import BcaiBackend

DATA_DIR = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")
DISK_KINDS = ("pytorch-converted", "pytorch-operator", "simple")

# Cases that must pass (where this onnx version has them): one or more per supported
# operator family, with the attribute forms fixed for the conformance suite.
MUST_PASS = (
    "test_abs", "test_add_bcast", "test_sub_bcast", "test_mul_bcast", "test_div_bcast", "test_div_int32_trunc",
    "test_pow_types_int64_float32", "test_pow_bcast_scalar", "test_max_example", "test_max_one_input",
    "test_min_example", "test_sum_example", "test_mean_example", "test_equal_bcast", "test_less_bcast", "test_relu",
    "test_leakyrelu", "test_elu", "test_selu", "test_selu_default", "test_prelu_broadcast", "test_prelu_example",
    "test_softplus", "test_hardsigmoid", "test_gelu_tanh_1", "test_softmax_axis_0", "test_logsoftmax_axis_1",
    "test_softmax_large_number", "test_gemm_all_attributes", "test_gemm_transposeA",
    "test_gemm_default_scalar_bias", "test_matmul_4d", "test_conv_with_strides_and_asymmetric_padding",
    "test_conv_with_autopad_same", "test_convtranspose", "test_maxpool_2d_pads", "test_maxpool_2d_same_upper",
    "test_maxpool_2d_ceil", "test_maxpool_2d_uint8", "test_maxpool_2d_dilations",
    "test_averagepool_2d_pads_count_include_pad", "test_averagepool_2d_ceil", "test_globalaveragepool",
    "test_batchnorm_example", "test_flatten_axis0", "test_flatten_negative_axis1", "test_transpose_default",
    "test_concat_3d_axis_negative_1", "test_split_equal_parts_1d", "test_reduce_max_default_axes_keepdim_example",
    "test_argmax_negative_axis_keepdims_example_select_last_index", "test_argmin_default_axis_example",
    "test_gather_negative_indices", "test_cast_FLOAT_to_DOUBLE", "test_clip", "test_clip_default_inbounds",
    "test_clip_min_greater_than_max", "test_where_long_example", "test_shape_start_1_end_negative_1",
    "test_dropout_default", "test_identity", "test_erf", "test_sign", "test_averagepool_2d_same_upper",
    "test_constant_pad", "test_edge_pad", "test_wrap_pad", "test_constantofshape_float_ones", "test_expand_dim_changed",
    "test_layer_normalization_2d_axis0", "test_layer_normalization_4d_axis_negative_2", "test_lstm_defaults",
    "test_reduce_mean_negative_axes_keepdims_example", "test_reduce_prod_do_not_keepdims_example",
    "test_reduce_sum_default_axes_keepdims_example", "test_reduce_sum_empty_axes_input_noop_example",
    "test_reduce_max_empty_set", "test_reshape_negative_dim", "test_reshape_reordered_all_dims", "test_slice_neg_steps",
    "test_slice_negative_axes", "test_squeeze_negative_axes", "test_unsqueeze_negative_axes",
    "test_dropout_default_mask", "test_split_variable_parts_1d_opset18",
    "test_sin", "test_acosh_example", "test_atanh", "test_tan", "test_round", "test_isnan",
    "test_isinf_negative", "test_isinf_positive", "test_not_3d", "test_and_bcast4v3d", "test_or_bcast3v1d",
    "test_xor4d", "test_bitwise_and_ui8_bcast_4v3d", "test_bitwise_not_2d", "test_bitwise_xor_i32_2d",
    "test_bitshift_left_uint8", "test_bitshift_right_int32_shift_ge_width", "test_less_equal_bcast",
    "test_greater_equal_uint8", "test_mod_mixed_sign_int32", "test_mod_int64_fmod", "test_mod_fmod_0_signed_zero_float32",
    "test_mod_float_edge_cases_fmod_0_float64", "test_castlike_FLOAT_to_BFLOAT16", "test_size_example",
    "test_range_int32_type_negative_delta", "test_triu_neg", "test_tril_out_pos", "test_gather_elements_negative_indices",
    "test_cumsum_1d_reverse_exclusive", "test_cumsum_2d_negative_axis", "test_reduce_l1_empty_set",
    "test_reduce_l2_negative_axes_keep_dims_random", "test_reduce_log_sum_desc_axes",
    "test_reduce_log_sum_exp_empty_set", "test_reduce_log_sum_exp_do_not_keepdims_random",
    "test_reduce_sum_square_default_axes_keepdims_random", "test_layer_normalization_4d_axis2_expanded_ver18",
    "test_nllloss_NCd1d2d3_none_no_weight_negative_ii_expanded", "test_rms_normalization_3d_axis1_epsilon_expanded",
    "test_add_int8", "test_div_int16", "test_bitshift_right_int8_negative_input", "test_clip_default_int8_min",
    "test_mod_mixed_sign_int8", "test_less_equal_int16_expanded", "test_attention_4d_causal_fp16_expanded",
    "test_attention_4d_gqa_with_past_and_present_expanded", "test_attention_3d_diff_heads_sizes_softcap_expanded",
    "test_layer_normalization_4d_axis_negative_4_expanded",
    "test_attention_4d", "test_attention_4d_gqa_causal", "test_attention_3d_with_past_and_present_qk_matmul_softcap",
    "test_attention_4d_fp16", "test_rms_normalization_3d_axis_negative_2_epsilon", "test_nllloss_NCd1d2d3_sum_weight_high_ii",
    "test_nllloss_NCd1_mean_weight_negative_ii", "test_sce_mean_weight_ii_4d_log_prob", "test_sce_none_weights",
    "test_causal_conv_with_state_with_bias_and_past_state", "test_spacetodepth_crd_mode_example",
    "test_depthtospace_crd_mode_example", "test_celu", "test_thresholdedrelu_default", "test_blackmanwindow",
    "test_hannwindow_symmetric", "test_group_normalization_epsilon", "test_mvn", "test_hardswish", "test_mish",
    "test_swish", "test_swiglu_alpha",
    "test_cumprod_1d_reverse_exclusive", "test_cumprod_2d_int32", "test_hardmax_one_hot", "test_hardmax_negative_axis",
    "test_onehot_negative_indices", "test_onehot_out_of_range_indices", "test_onehot_with_negative_axis",
    "test_l1normalization_axis_last", "test_lpnormalization_default", "test_compress_default_axis",
    "test_compress_negative_axis", "test_eyelike_populate_off_main_diagonal", "test_eyelike_with_dtype",
    "test_top_k_same_values_largest", "test_top_k_smallest", "test_top_k_negative_axis", "test_einsum_batch_diagonal",
    "test_einsum_batch_matmul", "test_einsum_inner_prod", "test_einsum_scalar", "test_einsum_sum_bfloat16",
    "test_resize_upsample_scales_nearest", "test_resize_downsample_sizes_nearest_not_smaller",
    "test_resize_upsample_sizes_nearest_round_prefer_ceil_asymmetric", "test_resize_upsample_scales_linear_align_corners",
    "test_resize_downsample_scales_linear_half_pixel_symmetric", "test_resize_downsample_sizes_linear_pytorch_half_pixel",
    "test_resize_upsample_scales_cubic_A_n0p5_exclude_outside", "test_resize_downsample_sizes_cubic_antialias",
    "test_resize_tf_crop_and_resize_extrapolation_value", "test_resize_tf_crop_and_resize_axes_3_2",
    "test_scatter_elements_with_duplicate_indices", "test_scatter_elements_with_negative_indices",
    "test_scatter_elements_with_reduction_mul", "test_scatter_with_axis",
)


@dataclass
class Case:
    name: str
    model: onnx.ModelProto
    data_sets: list[tuple[list[Any], list[Any]]]
    rtol: float
    atol: float


@dataclass
class Outcome:
    kind: str  # pass | unsupported | mismatch | crash
    detail: str = ""


def _load_disk_case(kind: str, case_dir: str) -> Case:
    model = onnx.load(os.path.join(case_dir, "model.onnx"))
    data_sets = []
    for ds in sorted(glob.glob(os.path.join(case_dir, "test_data_set_*"))):
        sides = []
        for prefix in ("input", "output"):
            arrays = []
            for k in range(len(glob.glob(os.path.join(ds, f"{prefix}_*.pb")))):
                tensor = onnx.TensorProto()
                with open(os.path.join(ds, f"{prefix}_{k}.pb"), "rb") as f:
                    tensor.ParseFromString(f.read())
                arrays.append(numpy_helper.to_array(tensor))
            sides.append(arrays)
        data_sets.append((sides[0], sides[1]))
    return Case(f"{kind}/{os.path.basename(case_dir)}", model, data_sets, 1e-3, 1e-7)


def _collect(module: Any) -> list[Any]:
    """`collect_testcases()` (onnx >= 1.17) or `collect_testcases(op_type)` (older; all cases
    whatever the argument)."""
    fn = module.collect_testcases
    return list(fn() if not inspect.signature(fn).parameters else fn(None))


def collect_cases() -> list[Case]:
    """Every node case (generated), the model cases that carry a model, and the on-disk
    suites with their data."""
    from onnx.backend.test.case import model as model_cases
    from onnx.backend.test.case import node as node_cases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the generators' own numpy overflow warnings
        generated = [case for module in (node_cases, model_cases) for case in _collect(module)]
    cases = [Case(c.name, c.model, list(c.data_sets), c.rtol, c.atol) for c in generated
             if c.model is not None and c.data_sets is not None]
    for kind in DISK_KINDS:
        for case_dir in sorted(glob.glob(os.path.join(DATA_DIR, kind, "test_*"))):
            if os.path.exists(os.path.join(case_dir, "model.onnx")) and glob.glob(os.path.join(case_dir, "test_data_set_*")):
                cases.append(_load_disk_case(kind, case_dir))
    return cases


def unsupported_ops(model: onnx.ModelProto) -> set[str]:
    """Operators of the graph that are not in `SUPPORTED_OPS` (other domains included)."""
    return {n.op_type for n in model.graph.node
            if n.domain not in ("", "ai.onnx") or n.op_type not in SUPPORTED_OPS}


def run_case(case: Case) -> Outcome:
    def as_array(v: Any) -> Any:
        return numpy_helper.to_array(v) if isinstance(v, onnx.TensorProto) else v

    try:
        rep = BcaiBackend.prepare(case.model, "CPU")
        for inputs, outputs in case.data_sets:
            got = rep.run([as_array(v) for v in inputs])
            Runner.assert_similar_outputs([as_array(v) for v in outputs], list(got), case.rtol, case.atol)
    except UnsupportedOperators as exc:
        return Outcome("unsupported", str(exc))
    except AssertionError as exc:
        return Outcome("mismatch", str(exc)[:400])
    except Exception:  # noqa: BLE001 - what the test reports as a crash
        return Outcome("crash", traceback.format_exc()[-800:])
    return Outcome("pass")


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return collect_cases()


@pytest.fixture(scope="module")
def outcomes(cases: list[Case]) -> dict[str, Outcome]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {c.name: run_case(c) for c in cases}


def _report(bad: dict[str, Outcome]) -> str:
    return "\n".join(f"{name}: {o.kind}: {o.detail}" for name, o in sorted(bad.items()))


def test_cases_with_supported_operators_match_the_reference_or_refuse(cases, outcomes):
    """Never wrong numbers, never a raw exception: a case whose operators are all in
    SUPPORTED_OPS passes, or raises UnsupportedOperators for an attribute form / dtype the
    VM cannot express."""
    supported = [c.name for c in cases if not unsupported_ops(c.model)]
    assert len(supported) > 400
    bad = {n: outcomes[n] for n in supported if outcomes[n].kind not in ("pass", "unsupported")}
    assert not bad, _report(bad)
    refused = {n: outcomes[n] for n in supported if outcomes[n].kind == "unsupported"}
    assert all(o.detail for o in refused.values())


def test_every_case_passes_or_raises_unsupported_operators_naming_the_operator(cases, outcomes):
    bad = {c.name: outcomes[c.name] for c in cases if outcomes[c.name].kind not in ("pass", "unsupported")}
    assert not bad, _report(bad)
    unnamed = {}
    for c in cases:
        missing = unsupported_ops(c.model)
        if missing:
            outcome = outcomes[c.name]
            assert outcome.kind == "unsupported", (c.name, outcome)
            if not any(op in outcome.detail for op in missing):
                unnamed[c.name] = outcome
    assert not unnamed, _report(unnamed)


def test_representative_cases_pass(outcomes):
    present = [n for n in MUST_PASS if n in outcomes]
    assert len(present) >= len(MUST_PASS) * 3 // 4  # the names are from this onnx generation
    failing = {n: outcomes[n] for n in present if outcomes[n].kind != "pass"}
    assert not failing, _report(failing)


def test_pass_counts_per_suite(cases, outcomes, capsys):
    """The counts docs/vm.md reports (printed with -s); at least the ones measured with
    onnx 1.23.2 when that version runs."""
    passed = sum(o.kind == "pass" for o in outcomes.values())
    node_like = [c for c in cases if "/" not in c.name]
    supported = [c for c in node_like if not unsupported_ops(c.model)]
    node_passed = sum(outcomes[c.name].kind == "pass" for c in supported)
    with capsys.disabled():
        print(f"\nonnx {onnx.__version__}: {passed} of {len(cases)} cases pass; generated cases: "
              f"{node_passed} of {len(supported)} with supported operators pass "
              f"({len(node_like)} generated in all)")
    if onnx.__version__.startswith("1.23."):
        assert node_passed >= 1299


def test_onnx_backend_test_runner_drives_bcai():
    """onnx.backend.test.BackendTest itself (the way the suite is usually run) over a few
    node and pytorch-converted cases."""
    backend_test = onnx.backend.test.BackendTest(BcaiBackend, __name__)
    backend_test.include(r"^test_(relu|gemm_all_attributes|maxpool_2d_pads|Conv2d_padding|operator_index)_cpu$")
    result = unittest.TestResult()
    backend_test.test_suite.run(result)
    ran = result.testsRun - len(result.skipped)
    assert ran == 5, [t.id() for t, _ in result.skipped if "_cpu" in t.id()]
    assert result.wasSuccessful(), result.errors + result.failures


def test_backend_run_node_and_devices():
    assert BcaiBackend.supports_device("CPU") and not BcaiBackend.supports_device("CUDA")
    x = np.array([[-1.0, 2.0], [3.0, -4.0]], dtype=np.float32)
    (y,) = BcaiBackend.run_node(helper.make_node("Relu", ["x"], ["y"]), [x])
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    out = BcaiBackend.run_node(helper.make_node("Add", ["a", "b"], ["c"]), {"a": x, "b": x[0]})
    np.testing.assert_array_equal(out["c"], x + x[0])
    assert not BcaiBackend.supports_device("TPU")
    with pytest.raises(ValueError, match="CPU only"):
        BcaiBackend.prepare(helper.make_model(helper.make_graph([], "g", [], [])), "CUDA")
    with pytest.raises(InvalidModel, match="not a valid ONNX"):
        BcaiBackend.prepare(b"\x08\x07garbage")
    value = numpy_helper.from_array(np.array([1.5, 2.5], np.float32), "v")
    (c,) = BcaiBackend.run_node(helper.make_node("Constant", [], ["c"], value=value), [])
    np.testing.assert_array_equal(c, [1.5, 2.5])


def test_backend_rep_checks_feeds():
    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2])])
    rep = BcaiBackend.prepare(helper.make_model(graph))
    with pytest.raises(InvalidFeed, match="takes 1 inputs"):
        rep.run([np.zeros(2, np.float32), np.zeros(2, np.float32)])
    with pytest.raises(InvalidFeed, match="missing inputs"):
        rep.run({"z": np.zeros(2, np.float32)})
    with pytest.raises(InvalidFeed, match="must be float32"):
        rep.run([np.zeros(2, np.float64)])
    np.testing.assert_array_equal(rep.run(np.array([-1.0, 1.0], np.float32))[0], [0.0, 1.0])


def test_backend_compiles_per_value_of_inputs_needed_as_constants():
    """Reshape's shape fed as a graph input: the rep binds it when `run` gets it, one
    compiled program per distinct value."""
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["r"]), helper.make_node("Relu", ["r"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 3]),
                                           helper.make_tensor_value_info("shape", onnx.TensorProto.INT64, [2])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["a", "b"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    rep = BcaiBackend.prepare(model)
    x = np.arange(-3, 3, dtype=np.float32).reshape(2, 3)
    for shape in ([3, 2], [6, 1], [3, 2]):
        (y,) = rep.run([x, np.array(shape, np.int64)])
        np.testing.assert_array_equal(y, np.maximum(x, 0).reshape(shape))
    assert len(rep._sessions) == 2
    with pytest.raises(InvalidFeed, match="graph declares int64"):
        rep.run([x, np.array([3, 2], np.int32)])


class _TypedResult(unittest.TestResult):
    """A TestResult that keeps each error's exception type (the text hides subclasses)."""

    def __init__(self) -> None:
        super().__init__()
        self.error_types: list[type[BaseException]] = []

    def addError(self, test: unittest.TestCase, err: Any) -> None:
        super().addError(test, err)
        self.error_types.append(err[0])


@pytest.mark.slow
def test_full_onnx_backend_test_suite(tmp_path, monkeypatch):
    """onnx.backend.test.BackendTest over every CPU test it has (node, pytorch-converted,
    pytorch-operator, simple and the light "real" models, whose outputs it computes with
    onnx's ReferenceEvaluator under ONNX_HOME): no wrong result, no exception other than
    UnsupportedOperators."""
    monkeypatch.setenv("ONNX_HOME", str(tmp_path))
    backend_test = onnx.backend.test.BackendTest(BcaiBackend, __name__)
    backend_test.include(r"_cpu$")
    result = _TypedResult()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        backend_test.test_suite.run(result)
    crashes = [(t.id(), err[-400:]) for (t, err), kind in zip(result.errors, result.error_types)
               if not issubclass(kind, UnsupportedOperators)]
    assert not result.failures and not crashes, (result.failures, crashes)
    passed = result.testsRun - len(result.skipped) - len(result.errors)
    print(f"\nBackendTest: {passed} of {result.testsRun - len(result.skipped)} CPU tests pass")
    if onnx.__version__.startswith("1.23."):
        assert passed >= 1416


def test_backend_binds_the_graph_inputs_a_needed_constant_is_computed_from():
    """Reshape's shape = Concat(Max(rows, 1), [-1]): the rep binds `rows` (not `x`, which
    only reaches the shape through Shape)."""
    one = numpy_helper.from_array(np.array([1], np.int64), "one")
    rest = numpy_helper.from_array(np.array([-1], np.int64), "rest")
    nodes = [helper.make_node("Max", ["rows", "one"], ["r"]), helper.make_node("Shape", ["x"], ["xs"]),
             helper.make_node("Concat", ["r", "rest"], ["target"], axis=0),
             helper.make_node("Reshape", ["x", "target"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 6]),
                                           helper.make_tensor_value_info("rows", onnx.TensorProto.INT64, [1])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["a", "b"])], [one, rest])
    rep = BcaiBackend.prepare(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    assert rep.bound == ("rows",)
    x = np.arange(12, dtype=np.float32).reshape(2, 6)
    np.testing.assert_array_equal(rep.run([x, np.array([4], np.int64)])[0], x.reshape(4, 3))
    np.testing.assert_array_equal(rep.run([x, np.array([0], np.int64)])[0], x.reshape(1, 12))


def _mutate_and_compile(cases: list[Case], seed: int, count: int) -> list[str]:
    """Corrupt 1-4 random bytes of random supported-operator models; compile and load.
    Returns what escaped as something other than a bcai error."""
    rng = random.Random(seed)
    pool = [c for c in cases if not unsupported_ops(c.model)]
    escaped = []
    for _ in range(count):
        case = rng.choice(pool)
        data = bytearray(case.model.SerializeToString())
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if (error := _escape(bytes(data))) is not None:
            escaped.append(f"{case.name}: {error}")
    return escaped


def _escape(data: bytes) -> str | None:
    """None when `data` compiles and loads, or fails with a bcai error; else what escaped."""
    try:
        VM("cpu").load(from_onnx(data))
    except BcaiError:
        return None
    except Exception as exc:  # noqa: BLE001 - what the tests report
        return f"{type(exc).__name__}: {exc}"[:300]
    return None


def _extreme_attributes(cases: list[Case], sample: int | None, seed: int) -> list[str]:
    """Set each int / ints / float attribute of supported-operator cases to extreme values
    (huge, negative, zero); compile and load. Returns what escaped as a non-bcai error."""
    rng = random.Random(seed)
    variants = []
    for case in cases:
        if unsupported_ops(case.model):
            continue
        for ni, node in enumerate(case.model.graph.node):
            for ai, attr in enumerate(node.attribute):
                if attr.type in (onnx.AttributeProto.INT, onnx.AttributeProto.FLOAT) or (
                        attr.type == onnx.AttributeProto.INTS and len(attr.ints)):
                    variants += [(case, ni, ai, v) for v in (-(2**40), -9, -1, 0, 1, 9, 2**40)]
    if sample is not None:
        variants = rng.sample(variants, min(sample, len(variants)))
    escaped = []
    for case, ni, ai, v in variants:
        model = onnx.ModelProto()
        model.CopyFrom(case.model)
        attr = model.graph.node[ni].attribute[ai]
        if attr.type == onnx.AttributeProto.INT:
            attr.i = v
        elif attr.type == onnx.AttributeProto.FLOAT:
            attr.f = float(v)
        else:
            attr.ints[rng.randrange(len(attr.ints))] = v
        if (error := _escape(model.SerializeToString())) is not None:
            escaped.append(f"{case.name} {attr.name}={v}: {error}")
    return escaped


@pytest.mark.parametrize("fuzz,size", [("bytes", 2000), ("attributes", 800),
                                       pytest.param("bytes", 20000, marks=pytest.mark.slow),
                                       pytest.param("attributes", None, marks=pytest.mark.slow)])
def test_corrupted_models_give_bcai_errors_only(cases, fuzz, size):
    """Random byte flips, and every numeric attribute set to extreme values (all of them
    under -m slow): compiling and loading raise bcai errors or succeed, nothing else."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if fuzz == "bytes":
            escaped = _mutate_and_compile(cases, seed=size, count=size)
        else:
            escaped = _extreme_attributes(cases, sample=size, seed=0)
    assert not escaped, "\n".join(escaped)


_CRASHERS = {
    # onnx 1.23's C++ shape inference aborts (assertion) on this one ...
    "split_num_outputs": ("""
node = helper.make_node("Split", ["x"], ["a", "b", "c"], axis=0, num_outputs=2)
inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [6])]
outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["n"]) for n in "abc"]
""", "InvalidModel: Split node"),
    # ... and segfaults on this one (an operator the VM does not have)
    "gathernd_batch_dims": ("""
node = helper.make_node("GatherND", ["x", "i"], ["y"], batch_dims=-9)
inputs = [helper.make_tensor_value_info("x", TensorProto.INT32, [2, 2, 2]),
          helper.make_tensor_value_info("i", TensorProto.INT64, [2, 1])]
outs = [helper.make_tensor_value_info("y", TensorProto.INT32, ["n"])]
""", "UnsupportedOperators: the ONNX graph uses operators the VM cannot express: GatherND"),
}


@pytest.mark.parametrize("name", sorted(_CRASHERS))
def test_models_that_crash_onnx_shape_inference_are_refused_before_it(name):
    """Found by fuzzing: run in a child process, so that a regression fails this test
    instead of killing the test run."""
    build, expected = _CRASHERS[name]
    code = f"""
from onnx import TensorProto, helper
from bcai.errors import BcaiError
from bcai.vm import from_onnx
{build}
graph = helper.make_graph([node], "g", inputs, outs)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
try:
    from_onnx(model.SerializeToString())
except BcaiError as exc:
    print(f"{{type(exc).__name__}}: {{exc}}")
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0 and expected in done.stdout, (done.returncode, done.stdout + done.stderr)


@pytest.mark.parametrize("attrs", [
    {"pads": [1, 0, 0, 2]}, {"pads": [0, 2, 1, 0], "strides": [2, 3]}, {"pads": [0, 0, 1, 1]},
    {"auto_pad": "SAME_UPPER", "strides": [2, 2]}, {"auto_pad": "SAME_LOWER", "strides": [3, 2], "dilations": [2, 1]},
    {"pads": [2, 1, 0, 1], "output_padding": [1, 0], "strides": [2, 2]},
])
@pytest.mark.parametrize("with_bias", [True, False])
def test_conv_transpose_pad_forms_match_the_onnx_reference(attrs, with_bias):
    """Asymmetric pads and auto_pad (lowered as a full transposed conv, a crop/extend Pad
    and the bias) against onnx.reference.ReferenceEvaluator. (output_shape: the suite's
    own cases; the reference evaluator only computes output_shape equal to the natural
    size.)"""
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 4, 5)).astype(np.float32)
    w = rng.standard_normal((2, 3, 3, 2)).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w")]
    inputs = ["x", "w"]
    if with_bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(3).astype(np.float32), "b"))
        inputs.append("b")
    node = helper.make_node("ConvTranspose", inputs, ["y"], **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, x.shape)],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, list("nchw"))], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    (expected,) = ReferenceEvaluator(model).run(None, {"x": x})
    (got,) = BcaiBackend.prepare(model).run([x])
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
