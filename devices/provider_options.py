"""The options each execution provider takes, so that a profile naming one it does not take is
told so: ONNX Runtime drops an unknown CPU option without a word, and never sees the options of
a provider this machine lacks (the profile is often written for another device).

Names as ONNX Runtime's provider options documentation gives them; a provider not listed here
is not checked (its options pass through as written).
"""

from __future__ import annotations

import warnings

OPTIONS = {
    "CPUExecutionProvider": (),
    "CUDAExecutionProvider": (
        "device_id", "has_user_compute_stream", "user_compute_stream", "gpu_mem_limit",
        "arena_extend_strategy", "cudnn_conv_algo_search", "do_copy_in_default_stream",
        "gpu_external_alloc", "gpu_external_free", "gpu_external_empty_cache",
        "cudnn_conv_use_max_workspace", "enable_cuda_graph", "cudnn_conv1d_pad_to_nc1d",
        "tunable_op_enable", "tunable_op_tuning_enable", "tunable_op_max_tuning_duration_ms",
        "enable_skip_layer_norm_strict_mode", "prefer_nhwc", "use_ep_level_unified_stream",
        "use_tf32", "fuse_conv_bias", "sdpa_kernel"),
    "TensorrtExecutionProvider": (
        "device_id", "has_user_compute_stream", "user_compute_stream",
        "trt_max_partition_iterations", "trt_min_subgraph_size", "trt_max_workspace_size",
        "trt_fp16_enable", "trt_bf16_enable", "trt_int8_enable",
        "trt_int8_calibration_table_name", "trt_int8_use_native_calibration_table",
        "trt_dla_enable", "trt_dla_core", "trt_dump_subgraphs", "trt_engine_cache_enable",
        "trt_engine_cache_path", "trt_engine_cache_prefix", "trt_engine_decryption_enable",
        "trt_engine_decryption_lib_path", "trt_force_sequential_engine_build",
        "trt_context_memory_sharing_enable", "trt_layer_norm_fp32_fallback",
        "trt_timing_cache_enable", "trt_timing_cache_path", "trt_force_timing_cache",
        "trt_detailed_build_log", "trt_build_heuristics_enable", "trt_sparsity_enable",
        "trt_builder_optimization_level", "trt_auxiliary_streams", "trt_tactic_sources",
        "trt_extra_plugin_lib_paths", "trt_profile_min_shapes", "trt_profile_max_shapes",
        "trt_profile_opt_shapes", "trt_cuda_graph_enable", "trt_dump_ep_context_model",
        "trt_ep_context_file_path", "trt_ep_context_embed_mode",
        "trt_weight_stripped_engine_enable", "trt_onnx_model_folder_path",
        "trt_engine_hw_compatible", "trt_op_types_to_exclude"),
    "XnnpackExecutionProvider": ("intra_op_num_threads",),
}


class ProfileWarning(UserWarning):
    """Something in a device profile that will not do what it says."""


def check(name: str, options: dict, where: str) -> None:
    """Warn, naming them, about options ``name`` does not take."""
    known = OPTIONS.get(name)
    if known is None:
        return
    import difflib

    for option in sorted(set(options) - set(known)):
        near = difflib.get_close_matches(option, known, n=1)
        hint = (f"did you mean {near[0]!r}?" if near else
                f"it takes {', '.join(known)}" if 0 < len(known) <= 6 else
                "it takes none" if not known else "see ONNX Runtime's provider options")
        warnings.warn(f"profile {where}: {name} has no option {option!r} ({hint}); ONNX Runtime "
                      f"would ignore it", ProfileWarning, stacklevel=4)
