"""Strict parsing of the units people type: durations, rates, percentages and sizes.

Every value needs its unit (`500` alone is refused: milliseconds or seconds?). Decimal
prefixes are powers of 1000 and binary ones powers of 1024, as in Toxiproxy, where a
bandwidth of `rate` KB/s is `rate * 1000` bytes per second:

    duration    100us  250µs  500ms  1.5s  2m  1h          -> seconds
    rate        500B/s  10KB/s (= 10kB/s)  1MB/s  1GB/s  64KiB/s  1MiB/s
                10kbit/s  1Mbit/s  1Gbit/s (bits: 1kbit = 1000 bits)   -> bytes per second
    percentage  10%  0.5%                                   -> percent (0 to 100)
    size        512B  64KB  1MB  1GB  64KiB  1MiB  1GiB     -> bytes
"""

from __future__ import annotations

import math
import re

from peerlab.errors import UsageError

_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"

_DURATION = re.compile(_NUMBER + r"\s*(us|µs|ms|s|m|h)")
_SECONDS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}

_BYTE_UNITS = {
    "B": 1,
    "kB": 1000,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
}
_BIT_UNITS = {"bit": 1 / 8, "kbit": 1000 / 8, "Mbit": 1000**2 / 8, "Gbit": 1000**3 / 8}
_SIZE = re.compile(_NUMBER + r"\s*(" + "|".join(_BYTE_UNITS) + ")")
_RATE = re.compile(_NUMBER + r"\s*(" + "|".join([*_BYTE_UNITS, *_BIT_UNITS]) + ")/s")
_PERCENT = re.compile(_NUMBER + r"\s*%")


def _match(pattern: re.Pattern[str], text: str, what: str, forms: str) -> re.Match[str]:
    if text.strip().startswith("-"):
        raise UsageError(
            f"{what} {text!r} is negative",
            field=what,
            hint=f"use 0 or more, such as {forms}",
        )
    found = pattern.fullmatch(text.strip())
    if found is None:
        raise UsageError(
            f"{what} {text!r} is not understood",
            field=what,
            hint=f"write a number and a unit, such as {forms}",
        )
    return found


def parse_duration(text: str, what: str = "duration") -> float:
    """`500ms` -> 0.5: a duration in seconds."""
    found = _match(_DURATION, text, what, "100us, 500ms, 1.5s, 2m or 1h")
    return float(found[1]) * _SECONDS[found[2]]


def parse_rate(text: str, what: str = "rate") -> float:
    """`10KB/s` -> 10000.0: a rate in bytes per second (must be above zero)."""
    found = _match(_RATE, text, what, "500B/s, 10KB/s, 1MB/s, 1MiB/s or 10Mbit/s")
    unit = found[2]
    rate = float(found[1]) * _BYTE_UNITS.get(unit, _BIT_UNITS.get(unit, 0.0))
    if rate <= 0:
        raise UsageError(
            f"{what} {text!r} is zero",
            field=what,
            hint="to stop all traffic use `net partition`, not a zero rate",
        )
    return rate


def parse_percent(text: str, what: str = "percentage") -> float:
    """`0.5%` -> 0.5: a percentage between 0 and 100."""
    found = _match(_PERCENT, text, what, "10% or 0.5%")
    percent = float(found[1])
    if not 0 <= percent <= 100:
        raise UsageError(
            f"{what} {text!r} is above 100%", field=what, hint="a percentage is between 0% and 100%"
        )
    return percent


def parse_size(text: str, what: str = "size") -> int:
    """`64KB` -> 64000: a size in whole bytes."""
    found = _match(_SIZE, text, what, "512B, 64KB, 1MB or 1MiB")
    size = float(found[1]) * _BYTE_UNITS[found[2]]
    if not size.is_integer():
        raise UsageError(
            f"{what} {text!r} is not a whole number of bytes",
            field=what,
            hint=f"use {math.ceil(size)}B",
        )
    return int(size)
