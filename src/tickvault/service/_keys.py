"""API keys: generated once, stored only as hashes, checked in constant time.

A key is ``tvk_`` followed by 43 URL-safe characters (256 random bits). What is kept is its
SHA-256, in ``TICKVAULT_API_KEYS`` or in a JSON keys file (mode 0600) that ``tickvault keys
add`` writes; the key itself is printed once and never stored, logged or returned.

Because the keys are long random tokens (not passwords), a plain SHA-256 is enough: there is
nothing to brute-force that is cheaper than guessing the token. The presented key is hashed
and compared against *every* configured hash with :func:`hmac.compare_digest`, so neither the
comparison nor the number of comparisons depends on which key matched.

This module does not import the web framework, so the command line can manage keys without
the ``service`` extra installed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from tickvault.errors import ConfigError, InvalidInput
from tickvault.service._settings import ApiKeyEntry, Role

__all__ = [
    "KEY_PREFIX",
    "KeyRing",
    "Principal",
    "add_key",
    "default_keys_file",
    "generate_key",
    "hash_key",
    "load_keys_file",
    "remove_key",
]

KEY_PREFIX = "tvk_"
_log = logging.getLogger("tickvault.service")
_MAX_KEY_LENGTH = 256


def generate_key() -> str:
    """A new random API key (``tvk_`` + 256 random bits, URL-safe)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The lower-case hex SHA-256 of ``key`` (what is stored and compared)."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def default_keys_file(home: Path) -> Path:
    """Where ``tickvault keys add`` keeps the hashes of a vault at ``home``."""
    return home.expanduser() / "service" / "api_keys.json"


def load_keys_file(path: Path) -> list[ApiKeyEntry]:
    """Read a keys file; a missing file has no keys.

    Raises
    ------
    ConfigError
        If the file is not a JSON list of valid entries (the message never shows hashes).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ConfigError(f"cannot read the API keys file: {exc.strerror}", path=str(path)) from None
    try:
        raw = json.loads(text)
        if not isinstance(raw, list):
            raise ValueError("not a list")
        return [ApiKeyEntry.model_validate(item) for item in raw]
    except (ValueError, ValidationError, TypeError):
        raise ConfigError("the API keys file is not a JSON list of {name, role, sha256} entries",
                          path=str(path)) from None


def _write_keys_file(path: Path, entries: Iterable[ApiKeyEntry]) -> None:
    """Replace the file atomically, readable by its owner only (0600 from creation)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = json.dumps([e.model_dump(mode="json") for e in entries], indent=2) + "\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)  # O_CREAT's mode is masked by the umask; make sure
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def add_key(path: Path, name: str, role: Role | str) -> str:
    """Create a key called ``name`` with ``role``, store its hash in ``path`` and return the key.

    The returned key is the only copy: show it once and forget it.

    Raises
    ------
    InvalidInput
        If the name is malformed, the role unknown, or a key with that name exists.
    """
    try:
        role = Role(role)
    except ValueError:
        raise InvalidInput(f"unknown role {role!r}; use read, write or admin") from None
    entries = load_keys_file(path)
    if any(e.name == name for e in entries):
        raise InvalidInput(f"a key named {name!r} exists; remove it first or choose another name")
    key = generate_key()
    try:
        entry = ApiKeyEntry(name=name, role=role, sha256=hash_key(key),
                            created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    except ValidationError:
        raise InvalidInput(f"invalid key name {name!r}: use 1-64 letters, digits, '.', '_' or '-'") from None
    _write_keys_file(path, [*entries, entry])
    return key


def remove_key(path: Path, name: str) -> bool:
    """Remove the key called ``name``; returns whether it existed."""
    entries = load_keys_file(path)
    kept = [e for e in entries if e.name != name]
    if len(kept) == len(entries):
        return False
    _write_keys_file(path, kept)
    return True


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key's name and role, or anonymous (``name=None``)."""

    name: str | None
    role: Role | None

    @property
    def anonymous(self) -> bool:
        """Whether no valid key was presented."""
        return self.name is None


ANONYMOUS = Principal(None, None)


class KeyRing:
    """The configured keys, checked in constant time; the keys file is re-read when it changes.

    Parameters
    ----------
    static
        Entries from the settings (``TICKVAULT_API_KEYS``).
    path
        Keys file (may not exist yet).
    recheck_seconds
        How often the file's modification time is looked at, at most.
    """

    def __init__(self, static: Iterable[ApiKeyEntry], path: Path | None, *, recheck_seconds: float = 1.0) -> None:
        self._static = list(static)
        self._path = path
        self._recheck = recheck_seconds
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._checked = float("-inf")
        self._entries: list[tuple[bytes, ApiKeyEntry]] = []
        self._reload(force=True)

    def __repr__(self) -> str:
        return f"KeyRing({len(self._entries)} keys)"

    def _reload(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < self._recheck:
            return
        with self._lock:
            self._checked = now
            stamp: tuple[int, int] | None = None
            if self._path is not None:
                try:
                    st = self._path.stat()
                    stamp = (st.st_mtime_ns, st.st_size)
                except OSError:
                    stamp = None
            if not force and stamp == self._stamp:
                return
            try:
                from_file = load_keys_file(self._path) if self._path is not None and stamp is not None else []
            except ConfigError:
                if force:
                    raise
                # A damaged file while serving: deny its keys (never keep stale, maybe revoked ones).
                _log.error("API keys file is unreadable; its keys are refused until it is fixed")
                from_file = []
            self._stamp = stamp
            self._entries = [(bytes.fromhex(e.sha256), e) for e in [*self._static, *from_file]]

    def entries(self) -> list[ApiKeyEntry]:
        """The configured entries (names, roles, hashes)."""
        self._reload()
        return [e for _, e in self._entries]

    def authenticate(self, key: str) -> Principal | None:
        """The principal for ``key``, or ``None`` if it matches no configured key.

        Every configured hash is compared, with :func:`hmac.compare_digest`, whatever matches.
        """
        self._reload()
        if not key or len(key) > _MAX_KEY_LENGTH:
            return None
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
        found: ApiKeyEntry | None = None
        for stored, entry in self._entries:
            if hmac.compare_digest(stored, digest) and found is None:
                found = entry
        return Principal(found.name, found.role) if found is not None else None
