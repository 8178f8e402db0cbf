"""edgernn web"""

from __future__ import annotations

from pathlib import Path

import click

from edgernn.cli.common import echo_json, json_option


@click.command("web")
@click.argument("model_path", metavar="MODEL.onnx", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="The folder to write the page into.")
@click.option("--data", "data_path", type=click.Path(path_type=Path),
              help="Data to stream (default: what the model was trained on, or the built-in "
                   "stream of its task).")
@click.option("--steps", type=click.IntRange(1, 100_000), default=600, show_default=True,
              help="Frames in the streamed signal (the page loops over them).")
@click.option("--ort", "ort_dir", type=click.Path(file_okay=False, path_type=Path),
              help="onnxruntime-web's dist folder to copy (default: EDGERNN_ORT_WEB, or the one "
                   "'npm ci' installed in devices/web; else the page loads it from a CDN).")
@click.option("--force", is_flag=True,
              help="Replace the folder whole when it already holds files (an earlier page).")
@click.option("--serve", "port", type=click.IntRange(0, 65535), default=None,
              help="Then serve the folder on 127.0.0.1:PORT (0: a free port) until Ctrl-C.")
@json_option
def command(model_path, output, data_path, steps, ort_dir, force, port, as_json):
    """Write a web page that streams MODEL.onnx in the browser (onnxruntime-web).

    \b
    Examples:
      edgernn web keyword.onnx -o page --serve 8000     # then open http://127.0.0.1:8000/
      edgernn web forecast.int8.onnx -o page --data readings.csv
    """
    from edgernn.cli.checks import folder_writable, not_inside, readable
    from edgernn.devices.web_page import write_page

    readable(model_path, "model")
    readable(data_path, "data")
    folder_writable(output, "--output")
    not_inside(output, {"the model": model_path, "the data": data_path})
    server = None if port is None else _bind(output, port)      # a busy port fails first
    written = write_page(model_path, output, data_path=data_path, steps=steps, ort=ort_dir,
                         force=force)
    doc = {"folder": str(written.folder), "view": written.kind, "steps": written.steps,
           "signal": written.description, "onnxruntime_web": written.ort}
    if as_json:
        echo_json(doc)
    else:
        what = {"seq2seq": f"decoding what you type ({written.steps} examples: "
                           f"{written.description})",
                "text": f"classifying what you type, read whole ({written.steps} examples: "
                        f"{written.description})"}.get(
            written.kind, f"streaming {written.steps} frames of {written.description}")
        click.echo(f"wrote {written.folder}: a {written.kind} page {what}")
        click.echo(f"  onnxruntime-web: {written.ort}")
    if port is None:
        if not as_json:
            click.echo(f"  serve it: edgernn web {model_path} -o {output} --serve 8000, or any "
                       f"static server (python -m http.server -d {output} -b 127.0.0.1)")
        return
    click.echo(f"serving http://127.0.0.1:{server.server_address[1]}/  (Ctrl-C stops)", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _bind(folder: Path, port: int):
    from edgernn.devices.web_page import serve_folder
    from edgernn.errors import ConfigError

    try:
        return serve_folder(folder, port=port)
    except OSError as exc:
        raise ConfigError(f"cannot serve on 127.0.0.1:{port}: {exc.strerror}; choose another "
                          f"--serve port (0 picks a free one)") from None
