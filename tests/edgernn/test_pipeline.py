"""The pipeline as a library (edgernn/pipeline.py): what `edgernn train` and `demo` call."""

import pytest

pytest.importorskip("torch")

from edgernn import pipeline  # noqa: E402
from edgernn.errors import ConfigError  # noqa: E402


def test_train_from_a_program_takes_the_cli_s_options():
    result = pipeline.train("forecast", size=0.05, epochs=1, hidden=8, layers=1, cell="rnn",
                            nonlinearity="relu", verbose=False)
    c = result.config
    assert (c.cell, c.nonlinearity, c.hidden_size, c.num_layers) == ("rnn", "relu", 8, 1)
    assert len(result.history) == 1 and result.task.name == "forecast"


def test_train_refuses_an_option_it_does_not_know():
    with pytest.raises(ConfigError, match="unknown training option.*hiden"):
        pipeline.train("forecast", hiden=8)


def test_form_for_prefers_explicit_choices_then_the_profile():
    assert pipeline.form_for(None, None, None) == ("step", None)
    assert pipeline.form_for("x86-cpu", None, None) == ("step", "lean")
    assert pipeline.form_for("x86-cpu", "chunk", None) == ("chunk", "fused")
