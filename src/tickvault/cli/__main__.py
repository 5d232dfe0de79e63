"""``python -m tickvault.cli``: the same as the ``tickvault`` console script."""

from tickvault.cli import app

app(prog_name="tickvault")
