import json

import pytest

from edgernn.devices import all_profiles, builtin_names, get_profile
from edgernn.errors import ConfigError
from tests.conftest import run_cli


def test_builtin_profiles_cover_the_device_families():
    assert {"x86-cpu", "arm64-cpu", "nvidia-gpu", "mobile"} <= set(builtin_names())
    for p in all_profiles():
        assert p.why and p.description and p.providers
        assert p.ops in ("fused", "decomposed", "compact", "lean")
        assert p.precision in ("fp32", "fp16", "int8")


def test_profiles_load_from_the_installed_package():
    import edgernn.devices

    # resources come from the package (a wheel install has no checkout beside it)
    assert get_profile("x86-cpu").source == "x86-cpu"
    assert edgernn.devices.__file__


@pytest.mark.parametrize("content, message", [
    ({"name": "x"}, "field 'providers' is missing"),
    ({"name": "x", "providers": "CPU"}, "field 'providers' is 'CPU'"),
    ({"name": "x", "providers": [1]}, r"field 'providers\[0\]' is 1"),
    ({"name": "x", "providers": ["CPUExecutionProvider"], "threads": 0}, "'threads' must be"),
    ({"name": "x", "providers": ["CPUExecutionProvider"], "precision": "int4"},
     "field 'precision' is 'int4'"),
    ({"name": "x", "providers": ["CPUExecutionProvider"], "colour": "red"},
     r"unknown field\(s\) colour"),
])
def test_malformed_user_profile_names_the_field(tmp_path, content, message):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ConfigError, match=message):
        get_profile(str(path))


def test_user_profile_file(tmp_path):
    path = tmp_path / "board.json"
    path.write_text(json.dumps({"name": "board", "providers": ["CPUExecutionProvider"],
                                "threads": 2, "precision": "int8", "ops": "decomposed"}))
    p = get_profile(str(path))
    assert p.threads == 2 and p.quantize_mode() == "dynamic"
    assert p.session_options().intra_op_num_threads == 2


def test_devices_and_doctor_cli():
    out = run_cli("devices", "--json")
    rows = json.loads(out.stdout)
    assert {r["name"] for r in rows} >= {"x86-cpu", "nvidia-gpu"}
    assert next(r for r in rows if r["name"] == "x86-cpu")["usable"]
    doc = json.loads(run_cli("doctor", "--json").stdout)
    assert doc["recommended_profile"] in builtin_names()
    assert "CPUExecutionProvider" in doc["providers"] and doc["onnxruntime"]
    assert "recommended profile" in run_cli("doctor").stdout


def test_doctor_says_whether_int8_runs_the_kernels():
    """A user who installed without a compiler gets int8 at half speed with no error: doctor is
    where that shows, and says what to do."""
    from edgernn.runtime import kernels

    doc = json.loads(run_cli("doctor", "--json").stdout)
    built = kernels.library() is not None
    assert doc["int8_kernels"].startswith("registered" if built else "not built")
    off = json.loads(run_cli("doctor", "--json", env={"EDGERNN_KERNELS": "0"}).stdout)
    assert off["int8_kernels"].startswith("turned off" if built else "not built")
    assert "int8 kernels" in run_cli("doctor").stdout


def test_export_and_quantize_follow_a_profile(forecast_checkpoint, tmp_path):
    pytest.importorskip("torch")
    out = run_cli("export", forecast_checkpoint, "--profile", "arm64-cpu", "-o",
                  tmp_path / "a.onnx", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["ops"] == "lean"
    q = run_cli("quantize", tmp_path / "a.onnx", "--profile", "arm64-cpu", "--horizon", "300",
                "--json")
    assert q.returncode == 0, q.stderr
    assert json.loads(q.stdout)["mode"] == "dynamic"
    fp32 = run_cli("quantize", tmp_path / "a.onnx", "--profile", "x86-cpu")
    assert fp32.returncode == 2 and "prefers fp32 artifacts" in fp32.stderr


@pytest.mark.parametrize("name", builtin_names())
def test_every_profile_runs_the_demo_end_to_end(name, tmp_path):
    """train, export in the profile's form, validate, stream and quantize to the profile's
    precision; GPU profiles run on the CPU where no GPU is present (providers fall back)."""
    pytest.importorskip("torch")
    profile = get_profile(name)
    # the default profile runs the default task (spoken keywords); the others the classifier's
    # frames, a third of the time
    task = [] if name == "x86-cpu" else ["--task", "classify"]
    done = run_cli("demo", "--profile", name, *task, "--size", "0.03", "--epochs", "1",
                   "--hidden", "16", "--layers", "1", "--horizon", "100", "--out", tmp_path,
                   "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads(done.stdout)
    assert doc["export"]["graph"] == profile.graph and doc["validate"]["passed"]
    mode = profile.quantize_mode() or "dynamic"
    assert doc["quantize"]["mode"] == mode and doc["quantize"]["passed"]
    suffix = "fp16" if mode == "fp16" else "int8"
    assert (tmp_path / f"model.{suffix}.onnx").is_file() and (tmp_path / "model.onnx").is_file()


def test_a_provider_option_no_provider_takes_is_named(tmp_path):
    """Issue 27: a profile with a misspelt option was accepted without a word (ONNX Runtime
    drops unknown CPU options, and never sees those of a provider this machine lacks)."""
    from edgernn.devices.provider_options import ProfileWarning

    path = tmp_path / "p.json"
    path.write_text(json.dumps({"name": "p", "providers": [
        ["CUDAExecutionProvider", {"arena_extend_stratgy": "kSameAsRequested", "device_id": 0}],
        ["CPUExecutionProvider", {"thread_count": 2}]]}))
    with pytest.warns(ProfileWarning) as seen:
        get_profile(str(path))
    said = [str(w.message) for w in seen]
    assert any("no option 'arena_extend_stratgy' (did you mean 'arena_extend_strategy'?)" in s
               for s in said), said
    assert any("CPUExecutionProvider has no option 'thread_count'" in s for s in said), said
    assert not any("device_id" in s for s in said)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")                  # the built-in profiles are clean
        for name in builtin_names():
            get_profile(name)
