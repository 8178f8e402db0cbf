"""The ``edgernn`` command line.

Exit codes: 0 success, 1 an operational failure (bad file, failed check), 2 a usage error.
Results go to stdout (``--json`` for one machine-readable document), progress to stderr.
Commands import torch only when they run, and say which extra to install when it is missing.
"""

from __future__ import annotations

import click

from edgernn import __version__
from edgernn.errors import EdgeRNNError


class _Group(click.Group):
    """Turns edgernn's own errors into one clean message and exit code 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except EdgeRNNError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgernn")
def main():
    """edgernn: recurrent networks from PyTorch to ONNX to a device.

    \b
    Start with the whole pipeline on a built-in task:
      edgernn demo
    """


def _register():
    from edgernn.cli import (bench, demo, devices, export, info, quantize, run, train,
                             validate)

    for module in (train, export, quantize, validate, run, bench, info, demo):
        main.add_command(module.command)
    main.add_command(devices.devices_command)
    main.add_command(devices.doctor_command)


_register()
