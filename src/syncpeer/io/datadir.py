"""The data directory: where identity.json, friends.json and the files/ tree live.

    <data>/identity.json        private keys and name, mode 0600
    <data>/friends.json         the keyring
    <data>/files/<name>.spe     the current envelope of each name
    <data>/files/.versions/     replaced and older envelopes (history)
    <data>/files/.partial/      downloads in progress, by envelope sha256

JSON files are written to a temporary file and renamed, so a crash leaves the old or the new
content, never half of one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from syncpeer.core.identity import Identity, RandomSource
from syncpeer.core.keyring import Keyring
from syncpeer.core.store import HISTORY_DIR, PARTIAL_DIR


class DataDir:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.identity_path = root / "identity.json"
        self.friends_path = root / "friends.json"
        self.files = root / "files"
        self.history = self.files / HISTORY_DIR
        self.partial = self.files / PARTIAL_DIR

    def prepare(self) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        for directory in (self.files, self.history, self.partial):
            directory.mkdir(exist_ok=True)

    def load_identity(self) -> Identity | None:
        if not self.identity_path.exists():
            return None
        try:
            return Identity.from_json(json.loads(self.identity_path.read_text()))
        except ValueError as error:
            raise ValueError(f"{self.identity_path} is not a valid identity: {error}") from None

    def identity(self, name: str, random: RandomSource) -> tuple[Identity, bool]:
        """The stored identity under `name` (created on first use); True when it was created."""
        identity = self.load_identity()
        if identity is None:
            identity = Identity.generate(name, random)
            self.save_identity(identity)
            return identity, True
        if identity.name != name:
            identity = identity.renamed(name)
            self.save_identity(identity)
        return identity, False

    def save_identity(self, identity: Identity) -> None:
        self._write_json(self.identity_path, identity.to_json(), mode=0o600)

    def load_keyring(self, own_fingerprint: str) -> Keyring:
        if not self.friends_path.exists():
            return Keyring(own_fingerprint)
        try:
            return Keyring.from_json(own_fingerprint, json.loads(self.friends_path.read_text()))
        except ValueError as error:
            raise ValueError(f"{self.friends_path} is not a valid keyring: {error}") from None

    def save_keyring(self, keyring: Keyring) -> None:
        self._write_json(self.friends_path, keyring.to_json(), mode=0o600)

    @staticmethod
    def _write_json(path: Path, value: Any, *, mode: int) -> None:
        temporary = path.with_name(path.name + ".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(descriptor, "w") as out:
            json.dump(value, out, indent=2)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)  # O_CREAT does not change the mode of an existing file
        os.replace(temporary, path)
