"""The registry's htpasswd file: reading it (again whenever it changes), checking a password against it with
bcrypt as the registry does, and adding an entry as `htpasswd -B` does."""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from pathlib import Path

import bcrypt
from django.utils.crypto import salted_hmac

logger = logging.getLogger(__name__)

BCRYPT_PREFIXES = ("$2y$", "$2b$", "$2a$")


class Htpasswd:
    """An htpasswd file, parsed again only when its size, modification time or inode changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._entries: dict[str, bytes] = {}
        self._dummy = b""

    def entries(self, path: str) -> dict[str, bytes]:
        try:
            stat = os.stat(path)
        except OSError:
            logger.error("REGISTRY_HTPASSWD_PATH %s cannot be read", path)
            return {}
        key = (path, stat.st_mtime_ns, stat.st_size, stat.st_ino)
        with self._lock:
            if key != self._key:
                with open(path, encoding="utf-8", errors="replace") as file:
                    self._entries = parse(file.read())
                self._key, self._dummy = key, b""
            return self._entries

    def dummy(self, path: str) -> bytes:
        """A hash of nothing, at the cost most of the file's users have: checking a name the file does not list
        takes as long as checking one it does, so sign-in time does not tell which names exist."""
        entries = self.entries(path)
        with self._lock:
            if not self._dummy:
                costs = Counter(hashed.split(b"$")[2] for hashed in entries.values() if hashed.count(b"$") >= 3)
                cost = int(costs.most_common(1)[0][0]) if costs else 10
                self._dummy = bcrypt.hashpw(os.urandom(16), bcrypt.gensalt(rounds=min(max(cost, 4), 16)))
            return self._dummy


def parse(text: str) -> dict[str, bytes]:
    """user -> bcrypt hash. Other hash kinds are left out: the registry accepts only bcrypt."""
    entries = {}
    for line in text.splitlines():
        user, _, hashed = line.strip().partition(":")
        if user and hashed.startswith(BCRYPT_PREFIXES):
            entries[user] = hashed.encode()
    return entries


_file = Htpasswd()


def users(path: str) -> dict[str, bytes]:
    """The users of the htpasswd file at `path`, with their bcrypt hashes."""
    return _file.entries(path)


def check(path: str, username: str, password: str) -> bool:
    """Whether the file at `path` lists the user with this password (an unknown name costs a bcrypt check too)."""
    hashed = users(path).get(username)
    if hashed is None:
        bcrypt.checkpw(password.encode()[:72], _file.dummy(path))
        return False
    try:
        # The registry's bcrypt looks at the first 72 bytes only; so does this check, to agree with it.
        return bcrypt.checkpw(password.encode()[:72], hashed)
    except ValueError:  # a damaged hash
        return False


def fingerprint(path: str, username: str) -> str:
    """A keyed digest of the user's entry ("" when the file does not list the user): it changes with the password,
    and tells nothing of it."""
    hashed = users(path).get(username)
    if hashed is None:
        return ""
    return salted_hmac("registry-ui.htpasswd-entry", hashed, algorithm="sha256").hexdigest()


def add_user(path: Path, username: str, password: str, cost: int = 10) -> None:
    """Add (or replace) a bcrypt entry, as `htpasswd -B` does."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=cost)).decode()
    lines = path.read_text().splitlines() if path.exists() else []
    lines = [line for line in lines if not line.startswith(f"{username}:")] + [f"{username}:{hashed}"]
    path.write_text("\n".join(lines) + "\n")
