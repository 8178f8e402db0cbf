"""edgernn devices, edgernn doctor"""

from __future__ import annotations

import click

from edgernn.cli.common import echo_json, json_option, table


@click.command("devices")
@json_option
def devices_command(as_json):
    """List the device profiles and whether each is usable on this machine.

    \b
    Examples:
      edgernn devices
      edgernn devices --json
    """
    from edgernn.devices.doctor import profiles_table

    rows = profiles_table()
    if as_json:
        echo_json(rows)
        return
    click.echo(table([[r["name"], "yes" if r["usable"] else "no", r["precision"], r["ops"],
                       r["graph"], " > ".join(r["providers"]), r["description"]] for r in rows],
                     ["profile", "usable", "precision", "ops", "graph", "providers", "for"]))


@click.command("doctor")
@json_option
def doctor_command(as_json):
    """Report this machine (architecture, int8 CPU features and kernels, providers); recommend
    a profile.

    \b
    Examples:
      edgernn doctor
      edgernn doctor --json
    """
    from edgernn.devices.doctor import report

    doc = report()
    if as_json:
        echo_json(doc)
        return
    click.echo(table([["architecture", doc["arch"]], ["system", doc["system"]],
                      ["python", doc["python"]], ["onnxruntime", doc["onnxruntime"]],
                      ["providers", ", ".join(doc["providers"])],
                      ["CPU int8 features", ", ".join(doc["cpu_int8_features"]) or "none"],
                      ["int8", doc["int8_note"]], ["int8 kernels", doc["int8_kernels"]],
                      ["recommended profile", doc["recommended_profile"]]], ["fact", "value"]))
