"""The recurrent network: embedding (lm only) → stacked RNN/LSTM/GRU → head.

Convention, shared with every model edgernn exports: ``forward(x, state=None) -> (y, state)``,
batch-first inputs, state in torch's layout: ``h`` of shape (layers*directions, B, H), and for
LSTM the tuple ``(h, c)``.
"""

from __future__ import annotations

from edgernn.config import ModelConfig
from edgernn.deps import require

torch = require("torch", "building a model")
nn = torch.nn


class RecurrentNet(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        c = config
        self.embedding = nn.Embedding(c.input_size, c.embedding_dim) if c.tokens else None
        rnn_cls = getattr(nn, c.family.torch_module)
        self.rnn = rnn_cls(c.rnn_input_size, c.hidden_size, c.num_layers, batch_first=True,
                           dropout=c.dropout if c.num_layers > 1 else 0.0,
                           bidirectional=c.bidirectional,
                           **c.family.torch_kwargs(c.nonlinearity))
        self.head = nn.Linear(c.hidden_size * c.directions, c.output_size)
        # training only (identity in eval, so exports are unchanged): on the embedded tokens,
        # between stacked layers (the RNN's own) and on the recurrent outputs before the head
        self.drop = nn.Dropout(c.dropout) if c.dropout > 0 else nn.Identity()
        if c.family.forget_gate is not None:
            self._open_forget_gates()

    def _open_forget_gates(self):
        # Forget-gate bias of 1 (Jozefowicz et al., 2015): the cell remembers from the start,
        # which shortens the plateau on tasks that need long memory.
        h = self.config.hidden_size
        with torch.no_grad():
            for name, p in self.rnn.named_parameters():
                if name.startswith("bias_ih"):
                    gate = self.family.forget_gate               # torch gate order i f g o
                    p[gate * h:(gate + 1) * h].fill_(1.0)

    @property
    def family(self):
        return self.config.family

    def initial_state(self, batch: int):
        """Zero state in torch's layout for ``batch`` streams."""
        c = self.config
        shape = (c.num_layers * c.directions, batch, c.hidden_size)
        return self.family.pack_state(tuple(torch.zeros(shape) for _ in self.family.states))

    def features(self, x, state=None):
        """Recurrent outputs for every step: (B, T, H*D), and the final state."""
        if self.embedding is not None:
            x = self.drop(self.embedding(x))                   # (B, T) ids -> (B, T, E)
        out, state = self.rnn(x, state)
        return self.drop(out), state                           # (B, T, H*D), state

    def forward_steps(self, x, state=None):
        """Head applied at every step: (B, T, O). This is what a streamed step returns."""
        out, state = self.features(x, state)
        return self.head(out), state

    @property
    def reads_whole(self) -> bool:
        """One label from the whole sequence, read both ways: its output is (B, O), never per
        step, and a sequence padded to a longer one must be run at its own length."""
        return self.config.bidirectional and self.config.head == "classify_last"

    def forward(self, x, state=None, lengths=None):
        """``lengths`` (B,): sequences of different lengths padded at the end. A classifier
        then reads each one's last real step; a bidirectional one runs packed, so that its
        backward direction starts at the last real step, not in the padding. The result equals
        running each sequence alone at its own length (what the exported graph is given)."""
        if lengths is not None and self.config.head == "classify_last":
            return self._forward_packed(x, state, lengths)
        out, state = self.features(x, state)                   # (B, T, H*D)
        if self.config.head != "classify_last":
            return self.head(out), state                       # (B, T, O)
        if self.config.bidirectional:
            h = self.config.hidden_size                        # forward dir at T, backward at 0
            last = torch.cat([out[:, -1, :h], out[:, 0, h:]], dim=-1)
        else:
            last = out[:, -1]
        return self.head(last), state                          # (B, O)

    def _forward_packed(self, x, state, lengths):
        pack = nn.utils.rnn
        lengths = torch.as_tensor(lengths, dtype=torch.int64).cpu()
        if self.embedding is not None:
            x = self.drop(self.embedding(x))
        packed = pack.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, state = self.rnn(packed, state)
        out, _ = pack.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        out = self.drop(out)
        rows, h = torch.arange(out.shape[0]), self.config.hidden_size
        last = out[rows, lengths - 1]                          # (B, H*D) at each last real step
        if self.config.bidirectional:
            last = torch.cat([last[:, :h], out[:, 0, h:]], dim=-1)
        return self.head(last), state                          # (B, O)


def build(config: ModelConfig, seed: int | None = None) -> RecurrentNet:
    """A freshly initialised network; ``seed`` makes the weights reproducible."""
    if seed is None:
        return RecurrentNet(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return RecurrentNet(config)
