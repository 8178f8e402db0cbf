import json

import pytest

from edgernn.contract import (CONTRACT_KEY, FORMAT_VERSION, Contract, Normalization, Parity,
                              Provenance, Quantization, StateSpec, TensorSpec)
from edgernn.errors import ContractError


def make_contract(**changes) -> Contract:
    base = dict(
        graph="step",
        inputs=[TensorSpec("x", ["batch", 1, 40], "float32", "frames")],
        outputs=[TensorSpec("y", ["batch", 1, 10], "float32", "logits")],
        states=[StateSpec("h", "h_in", "h_out", ["batch", 2, 128],
                          ["batch", "layers", "hidden"]),
                StateSpec("c", "c_in", "c_out", ["batch", 2, 128],
                          ["batch", "layers", "hidden"])],
        provenance=Provenance("0.1.0", "2.13.0", 17, "torchscript", "ab" * 32),
        task="keyword", head="classify_last", model={"cell": "lstm"},
        preprocessing=Normalization([0.0] * 40, [1.0] * 40),
        labels=[f"kw{i}" for i in range(10)],
        parity=[Parity("torch", "max_abs", 1e-5, 2e-7, "random", {"y": 1e-7})],
        quantization=Quantization("dynamic", 6, 6, 0.98, "", {"reduce_range": True}),
    )
    base.update(changes)
    return Contract(**base)


def test_round_trip_is_exact_and_deterministic():
    c = make_contract()
    text = c.to_json()
    assert Contract.from_json(text) == c
    assert Contract.from_json(text).to_json() == text
    assert c.version == FORMAT_VERSION and CONTRACT_KEY == "edgernn.contract"


def test_minimal_contract_round_trips_with_defaults():
    c = Contract(graph="sequence", inputs=[TensorSpec("x", ["batch", "time", 3])],
                 outputs=[TensorSpec("y", ["batch", "time", 3])], states=[],
                 provenance=Provenance("0.1.0"))
    back = Contract.from_json(c.to_json())
    assert back == c and back.preprocessing is None and back.parity == []
    assert not back.streamable


def test_state_lookup_by_any_name():
    c = make_contract()
    assert c.state("c_in").name == "c" and c.state("h_out").name == "h"
    with pytest.raises(ContractError, match="no state named 'z'.*h, c"):
        c.state("z")


def _mutated(mutate) -> str:
    data = make_contract().to_dict()
    mutate(data)
    return json.dumps(data)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.pop("graph"), r"contract field contract.graph is missing"),
    (lambda d: d.pop("provenance"), r"contract.provenance is missing"),
    (lambda d: d["provenance"].pop("edgernn_version"), r"provenance.edgernn_version is missing"),
    (lambda d: d.update(graph="frame"), r"graph is 'frame', expected one of step, chunk"),
    (lambda d: d.update(version=99), r"format version 99, newer than the 1 .*upgrade edgernn"),
    (lambda d: d.update(version=0), r"format version 0 is not valid"),
    (lambda d: d.update(version="1"), r"version is str .* expected int"),
    (lambda d: d["inputs"][0].update(shape="batch"), r"inputs\[0\].shape is str"),
    (lambda d: d["inputs"][0].update(shape=[-1, 3]), r"inputs\[0\].shape\[0\] is -1"),
    (lambda d: d["inputs"][0].update(dtype="bfloat16"), r"inputs\[0\].dtype is 'bfloat16'"),
    (lambda d: d["outputs"][0].pop("name"), r"outputs\[0\].name is missing"),
    (lambda d: d["states"][1].update(layout=["batch"]), r"states\[1\].layout has 1 axes"),
    (lambda d: d["states"][0].update(initial=True), r"states\[0\].initial is a bool"),
    (lambda d: d.update(states=[1]), r"states\[0\] is int, expected an object"),
    (lambda d: d.update(labels=[1, 2]), r"labels must be a list of strings"),
    (lambda d: d.update(labels=["a", "b"]), r"labels has 2 names but output .* has 10 classes"),
    (lambda d: d["preprocessing"].update(std=[0.0] * 40), r"std holds a value <= 0"),
    (lambda d: d["preprocessing"].update(mean=[0.0]), r"mean has 1 values, std has 40"),
    (lambda d: d["parity"][0].update(tolerance="small"), r"parity\[0\].tolerance is str"),
    (lambda d: d.update(graph="sequence"), r"'sequence' graph carries no state"),
    (lambda d: d.update(inputs=[]), r"at least one input and one output"),
])
def test_rejections_name_the_field(mutate, message):
    with pytest.raises(ContractError, match=message):
        Contract.from_json(_mutated(mutate))


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "a contract is a JSON object, got list"),
    (b"\xff\xfe", "not valid JSON"),
])
def test_rejects_non_contract_text(text, message):
    with pytest.raises(ContractError, match=message):
        Contract.from_json(text)
