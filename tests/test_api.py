"""The public API, pinned: adding or removing a public name is a deliberate change, made here
and in the code together. Every pinned name imports, and the package says it is typed."""

import importlib
import inspect
from importlib import resources

import pytest

PUBLIC = {
    "edgernn": [
        "CONTRACT_KEY", "CheckpointError", "ConfigError", "Contract", "ContractError",
        "DataError", "EdgeRNNError", "ExportError", "MissingDependencyError", "ModelError",
        "NonFiniteError", "ParityError", "SnapshotError", "StreamingError", "__version__"],
    "edgernn.runtime": [
        "ConfigError", "ContractError", "DataError", "Durable", "EdgeRNNError",
        "InferredContractWarning", "Model", "ModelError", "NonFiniteError", "Pool",
        "ProviderFallbackWarning", "RowsInteractWarning", "SnapshotError", "Stream",
        "StreamingError", "contract_of", "load", "open_session", "signature",
        "state_file_lock", "step_record"],
    "edgernn.exporters": [
        "DEFAULT_EXPORTER", "EXPORTERS", "ExportResult", "Gate", "QuantizeReport", "Tolerances",
        "ValidationReport", "export", "quantize", "validate"],
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_all_is_pinned_and_every_name_imports(module):
    if module == "edgernn.exporters":
        pytest.importorskip("torch")                # the host side; the device venv has none
    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == sorted(PUBLIC[module])
    for name in mod.__all__:
        assert getattr(mod, name) is not None


def test_the_runtime_raises_the_same_error_classes_it_exports():
    import edgernn
    import edgernn.runtime as rt

    for name in ("DataError", "ModelError", "SnapshotError", "StreamingError"):
        assert getattr(rt, name) is getattr(edgernn, name)
    with pytest.raises(rt.ModelError, match="does not exist"):
        rt.load("no-such-model.onnx")


def test_public_runtime_callables_declare_their_return_types():
    import edgernn.runtime as rt

    methods = [rt.load, rt.Model.run, rt.Model.stream, rt.Model.pool, rt.Model.step_streams,
               rt.Stream.step, rt.Stream.feed, rt.Stream.snapshot, rt.Pool.open,
               rt.Pool.step, rt.Pool.step_many, rt.Pool.gather, rt.Pool.reorder]
    missing = [m.__qualname__ for m in methods
               if inspect.signature(m).return_annotation is inspect.Signature.empty]
    assert not missing


def test_the_package_is_marked_typed():
    assert resources.files("edgernn").joinpath("py.typed").is_file()

