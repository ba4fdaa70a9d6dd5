"""File names in the shared namespace: what is allowed, so no name can escape the store."""

from __future__ import annotations

from syncpeer.core.errors import InvalidName

MAX_NAME_BYTES = 200  # leaves room for the ".v<version>.<author>.<sha>.spe" history suffix


def validate_name(name: object) -> str:
    """Return `name` if it is a safe flat file name, else raise InvalidName saying why."""
    if not isinstance(name, str) or not name:
        raise InvalidName("file name must be a non-empty string")
    if ".." in name:
        raise InvalidName(f"file name {name!r} contains '..' (path traversal)")
    if "\x00" in name:
        raise InvalidName(f"file name {name!r} contains a NUL byte")
    if "/" in name or "\\" in name:
        raise InvalidName(f"file name {name!r} contains a path separator; use a flat name")
    # Leading dots are reserved for the store's own directories (.versions, .partial).
    if name.startswith("."):
        raise InvalidName(f"file name {name!r} starts with '.', which is reserved")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in name):
        raise InvalidName(f"file name {name!r} contains a control character")
    try:
        encoded = name.encode()
    except UnicodeEncodeError:
        raise InvalidName(f"file name {name!r} is not valid Unicode") from None
    if len(encoded) > MAX_NAME_BYTES:
        raise InvalidName(f"file name is longer than {MAX_NAME_BYTES} bytes")
    return name
