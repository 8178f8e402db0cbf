"""The ``edgernn`` command line.

Exit codes: 0 success, 1 an operational failure (bad file, failed check), 2 a usage error (a
bad option, or data the command needs and was not given). Every failure is one message on
stderr saying what was wrong and what to do; a traceback only with ``--debug`` (or
``EDGERNN_DEBUG=1``). Results go to stdout (``--json`` for one machine-readable document),
progress and warnings to stderr. Commands import torch only when they run, and say which extra
to install when it is missing.
"""

from __future__ import annotations

import atexit
import errno
import os
import sys
import threading
import warnings

import click

from edgernn import __version__
from edgernn.cli.streams import results_only
from edgernn.errors import ConfigError, EdgeRNNError
from edgernn.progress import show_stages

DEBUG_ENV = "EDGERNN_DEBUG"


class _Failure(click.ClickException):
    """One clean message, with the exit code the failure deserves."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.exit_code = code


def _os_message(exc: OSError) -> str:
    what = exc.filename or "a file"
    if exc.errno == errno.ENOSPC:
        return f"the disk is full while writing {what}; free some space and run again"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (f"no permission to use {what} ({exc.strerror}); choose a location you can "
                f"write to, or fix its permissions")
    if exc.errno == errno.ENOTDIR:
        return f"{what}: a part of the path is a file, not a folder; choose another path"
    if exc.errno == errno.EISDIR:
        return f"{what} is a directory; pass a file"
    if exc.errno == errno.ENOENT:
        return f"{what} does not exist"
    return f"{what}: {exc.strerror or exc}"


def _show_warning(message, category, filename, lineno, file=None, line=None):
    click.echo(f"warning: {message}", err=True)


class _Group(click.Group):
    """Turns every failure into one message and an exit code; a trace only when debugging."""

    def invoke(self, ctx):
        debug = ctx.params.get("debug") or os.environ.get(DEBUG_ENV) not in (None, "", "0")
        warnings.showwarning = _show_warning
        show_stages()
        try:
            with results_only():
                return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except EdgeRNNError as exc:
            if debug:
                raise
            raise _Failure(str(exc), 2 if isinstance(exc, ConfigError) else 1) from None
        except OSError as exc:
            if debug:
                raise
            raise _Failure(_os_message(exc)) from None
        except KeyboardInterrupt:
            raise _Failure("interrupted", 130) from None
        except Exception as exc:
            if debug:
                raise
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise _Failure(f"internal error ({type(exc).__name__}: {first}). This is a bug in "
                           f"edgernn: rerun with --debug (or {DEBUG_ENV}=1) to see the full "
                           f"trace, and report it") from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgernn")
@click.option("--debug", is_flag=True, help="Show the full Python trace of a failure.")
def main(debug):
    """edgernn: recurrent networks from PyTorch to ONNX to a device.

    \b
    Start with the whole pipeline on a built-in task:
      edgernn demo
    """


def _register():
    from edgernn.cli import (bench, demo, devices, export, info, quantize, run, serve, train,
                             validate, web)

    for module in (train, export, quantize, validate, run, bench, info, demo, web):
        main.add_command(module.command)
    main.add_command(devices.devices_command)
    main.add_command(devices.doctor_command)
    main.add_command(serve.triton_command)
    main.add_command(serve.serve_command)


_register()


def entry() -> None:
    """The ``edgernn`` command: :func:`main`, then, once torch is loaded, a quick exit.

    Python's own shutdown tears down every module it imported, and after ``import torch`` that
    takes about a second (measured here: ``python -c "import torch"`` 3.5 s, 2.5 s with
    ``os._exit``), a second every ``train``, ``export`` or ``quantize`` would make its user wait
    after the work is done. So when the command has finished and no other thread is running,
    this runs what Python's exit runs that a user can see (the ``atexit`` functions: temporary
    folders, locks, logging), flushes stdout and stderr, and ends the process with the same
    exit code. Without torch, or with threads still running, it exits as Python does."""
    try:
        main()
    except SystemExit as done:
        code = 0 if done.code is None else done.code
        if "torch" not in sys.modules or threading.active_count() > 1 or \
                not isinstance(code, int):
            raise
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):                 # a closed pipe: nothing to keep
                pass
        os._exit(code)
