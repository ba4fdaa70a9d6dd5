"""Strict parsing of durations, rates, percentages and sizes."""

from __future__ import annotations

import pytest

from peerlab.errors import UsageError
from peerlab.units import parse_duration, parse_percent, parse_rate, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("1.5s", 1.5),
        ("100us", 1e-4),
        ("250µs", 2.5e-4),
        ("2m", 120),
        ("1h", 3600),
        (" 10 ms ", 0.01),
        (".5s", 0.5),
        ("0s", 0),
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "per_second"),
    [
        ("500B/s", 500),
        ("10KB/s", 10_000),
        ("10kB/s", 10_000),
        ("1MB/s", 1_000_000),
        ("1GB/s", 1e9),
        ("64KiB/s", 65536),
        ("1MiB/s", 1 << 20),
        ("10kbit/s", 1250),
        ("1Mbit/s", 125_000),
        ("8bit/s", 1),
        ("1.5MB/s", 1_500_000),
    ],
)
def test_rates_in_bytes_per_second(text, per_second):
    assert parse_rate(text) == pytest.approx(per_second)


@pytest.mark.parametrize(("text", "percent"), [("10%", 10), ("0.5%", 0.5), ("100%", 100)])
def test_percentages(text, percent):
    assert parse_percent(text) == percent


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512B", 512),
        ("64KB", 64_000),
        ("1MB", 1_000_000),
        ("64KiB", 65536),
        ("1.5KB", 1500),
    ],
)
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("parse", "text", "forms"),
    [
        (parse_duration, "500", "500ms"),
        (parse_duration, "-1s", "500ms"),
        (parse_duration, "5 parsecs", "1.5s"),
        (parse_duration, "", "100us"),
        (parse_rate, "10KB", "10KB/s"),
        (parse_rate, "10kb/s", "10KB/s"),
        (parse_rate, "fast", "1MB/s"),
        (parse_percent, "10", "10%"),
        (parse_percent, "ten%", "0.5%"),
        (parse_size, "64", "64KB"),
        (parse_size, "1e3B", "512B"),
    ],
)
def test_bad_values_name_the_value_and_the_accepted_forms(parse, text, forms):
    with pytest.raises(UsageError) as info:
        parse(text)
    assert repr(text) in info.value.message and forms in str(info.value.hint)


def test_out_of_range_values():
    with pytest.raises(UsageError, match="above 100%"):
        parse_percent("150%")
    with pytest.raises(UsageError, match="zero"):
        parse_rate("0KB/s")
    with pytest.raises(UsageError, match="whole number of bytes") as info:
        parse_size("1.0001KB")
    assert info.value.hint == "use 1001B"


def test_the_field_is_named():
    with pytest.raises(UsageError, match="--jitter '1'") as info:
        parse_duration("1", "--jitter")
    assert info.value.field == "--jitter"
