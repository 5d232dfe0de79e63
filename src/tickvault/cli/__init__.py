"""The ``tickvault`` command line: import, read, inspect and check a vault from a shell.

Built with typer and rich on top of the public facade (``import tickvault``) only. Every
command has ``--help`` with an example; expected errors end as one line on stderr with a
documented exit code (:class:`ExitCode`, docs/cli.md).
"""

from tickvault.cli import _admin_cmds, _analytics_cmds, _commands, _demo, _fetch_cmds, _quality_cmds, _serve  # noqa: F401  (they register the commands)
from tickvault.cli._app import app, main
from tickvault.cli._errors import ExitCode

__all__ = ["ExitCode", "app", "main"]

# --help lists commands in this order: where to start first, maintenance last.
_ORDER = ("demo", "import", "fetch", "bars", "indicators", "screen", "fundamentals", "search", "status",
          "providers", "validate", "quarantine", "verify", "copy", "migrate")
app.registered_commands.sort(key=lambda c: _ORDER.index(c.name) if c.name in _ORDER else len(_ORDER))
