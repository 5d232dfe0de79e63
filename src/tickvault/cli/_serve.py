"""``tickvault serve`` (the HTTP/WebSocket API) and ``tickvault keys`` (its API keys).

The web framework loads only when ``serve`` runs, so the rest of the CLI works without the
``service`` extra; ``keys`` needs nothing beyond the core. Configuration is read here, at the
edge: ``TICKVAULT_SERVICE_*`` and ``TICKVAULT_API_KEYS`` for the service, and every provider
key, secret and password in the environment is handed to the service as a value to mask.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import pydantic
import typer

import tickvault
from tickvault.cli._app import HomeOption, app
from tickvault.cli._context import State, get_state

__all__ = ["env_secrets", "keys_app", "serve_cmd"]

_SECRET_SUFFIXES = ("_API_KEY", "_API_SECRET", "_SECRET", "_TOKEN", "_PASSWORD")


def env_secrets(environ: Mapping[str, str]) -> list[str]:
    """Values of ``TICKVAULT_*`` variables that hold credentials (to mask in answers and logs)."""
    out = []
    for name, value in environ.items():
        upper = name.upper()
        if not upper.startswith("TICKVAULT_") or not value:
            continue
        if upper.endswith(_SECRET_SUFFIXES) or upper in ("TICKVAULT_DATABASE_URL", "TICKVAULT_REDIS_URL"):
            out.append(value)
    return out


def _service_settings(**overrides: object) -> object:
    """``ServiceSettings`` from the environment, a bad value as one ``ConfigError`` line."""
    from tickvault.service import ServiceSettings

    try:
        return ServiceSettings(**overrides)  # type: ignore[arg-type]
    except pydantic.ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise tickvault.errors.ConfigError(f"invalid service configuration (TICKVAULT_SERVICE_* or "
                                           f"TICKVAULT_API_KEYS): {problems}") from None


@app.command(
    "serve",
    epilog="Example: `tickvault serve --port 8001`, then open http://127.0.0.1:8001/docs\n\n"
           "Keys: `tickvault keys add ci --role write`; limits and roles in docs/service.md.",
)
def serve_cmd(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8001,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning or error.")] = "info",
    home: HomeOption = None,
) -> None:
    """Serve the vault over HTTP and WebSocket (REST API under /v1, stream at /v1/stream).

    Reads are open unless TICKVAULT_SERVICE_READ_REQUIRES_KEY=1; writes, fetches and admin
    calls need an API key. Logs are JSON lines on stderr.
    """
    if log_level.lower() not in ("debug", "info", "warning", "error"):
        raise tickvault.InvalidInput(f"--log-level must be debug, info, warning or error, got {log_level!r}")
    try:
        import uvicorn

        from tickvault.service import configure_logging, create_app
    except ImportError as exc:
        raise tickvault.errors.ConfigError(
            f"tickvault serve needs the service extra ({exc.name} is missing): pip install 'tickvault[service]'"
        ) from None
    state = get_state(ctx, home)
    secrets = env_secrets(os.environ)
    settings = _service_settings(redact=tuple(pydantic.SecretStr(s) for s in secrets))
    with state.open(create=True) as vault:
        application = create_app(vault, settings)  # type: ignore[arg-type]
        configure_logging(log_level, secrets)
        state.note(f"serving {state.resolved_home()} on http://{host}:{port} (API docs at /docs)")
        uvicorn.run(application, host=host, port=port, log_config=None, access_log=False,
                    log_level=log_level.lower())


keys_app = typer.Typer(name="keys", help="Create, list and remove the API keys of `tickvault serve`.",
                       no_args_is_help=True, add_completion=False)
app.add_typer(keys_app)


def _keys_file(state: State) -> Path:
    from tickvault.service import default_keys_file

    configured = getattr(_service_settings(), "keys_file", None)
    return Path(configured) if configured is not None else default_keys_file(state.resolved_home())


@keys_app.command("add", epilog="Example: `tickvault keys add ci-writer --role write`")
def keys_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name for the key (letters, digits, . _ -).", show_default=False)],
    role: Annotated[str, typer.Option("--role", help="read, write or admin.")] = "read",
    home: HomeOption = None,
) -> None:
    """Create a key, store only its hash (mode 0600) and print the key once."""
    from tickvault.service import add_key

    state = get_state(ctx, home)
    path = _keys_file(state)
    key = add_key(path, name, role)
    typer.echo(key)
    state.note(f"key {name!r} ({role}) created; its hash is in {path}. The key is shown only now: keep it.")


@keys_app.command("list", epilog="Example: `tickvault keys list`")
def keys_list(ctx: typer.Context, home: HomeOption = None) -> None:
    """Names, roles and creation times of the keys in the keys file (never keys or hashes)."""
    from tickvault.service import load_keys_file

    state = get_state(ctx, home)
    entries = load_keys_file(_keys_file(state))
    if not entries:
        state.note("no keys; create one with `tickvault keys add NAME --role write`")
    for e in entries:
        typer.echo(f"{e.name}\t{e.role}\t{e.created or '-'}")


@keys_app.command("remove", epilog="Example: `tickvault keys remove ci-writer --yes`")
def keys_remove(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The key's name.", show_default=False)],
    yes: Annotated[bool, typer.Option("--yes", help="Confirm the removal.")] = False,
    home: HomeOption = None,
) -> None:
    """Remove a key (a running server refuses it within a second)."""
    from tickvault.service import remove_key

    if not yes:
        raise tickvault.InvalidInput("removing a key needs --yes")
    state = get_state(ctx, home)
    if not remove_key(_keys_file(state), name):
        raise tickvault.InvalidInput(f"no key named {name!r}")
    state.note(f"key {name!r} removed")
