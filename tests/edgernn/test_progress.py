"""Progress lines go through the `edgernn` logger: stderr by default, the app's handler if set."""

import io
import logging

from edgernn.progress import Progress, log


def test_lines_reach_stderr_without_any_logging_setup(capsys):
    log("hello")
    bar = Progress(3, "epoch 1")
    bar.update(note="loss 1")
    bar.close("loss 0.5")
    err = capsys.readouterr().err
    assert "hello\n" in err and "epoch 1" in err and err.rstrip().endswith("loss 0.5")


def test_an_app_s_own_handler_takes_them_instead(capsys):
    logger = logging.getLogger("edgernn")
    saved = list(logger.handlers)
    buf = io.StringIO()
    for h in saved:
        logger.removeHandler(h)
    mine = logging.StreamHandler(buf)
    logger.addHandler(mine)
    try:
        log("to the app")
        log("not asked for", enabled=False)
    finally:
        logger.removeHandler(mine)
        for h in saved:
            logger.addHandler(h)
    assert buf.getvalue() == "to the app\n"
    assert "to the app" not in capsys.readouterr().err
