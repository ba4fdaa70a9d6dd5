"""The netns backend's plumbing as text (no root needed): what it names, and that its rules
match only its own environment's block of addresses, never the machine's other traffic."""

from __future__ import annotations

import ipaddress
import re

import pytest

from peerlab.addresses import NetworkBlock, dedicated_range
from peerlab.backends.plumbing import Hub
from peerlab.errors import UsageError

BLOCK = ipaddress.IPv4Network("198.18.8.0/21")


def test_names_carry_the_tag_and_fit_the_kernels_limits() -> None:
    hub = Hub("a1b2c3", BLOCK)
    assert hub.table == "peerlab_a1b2c3"
    assert hub.netns(7) == "peerlab-a1b2c3-7"
    assert hub.link(7) == "pla1b2c37"
    assert len(hub.link(BLOCK.num_addresses)) <= 15  # IFNAMSIZ - 1
    assert hub.host == "198.18.8.1"


def test_every_rule_matches_only_the_environments_block() -> None:
    rules = [
        line.strip()
        for line in Hub("a1b2c3", BLOCK).ruleset(4000, 4001).splitlines()
        if re.match(r"\s+(ip|meta) ", line)
    ]
    assert len(rules) == 6
    for rule in rules:
        assert f"saddr {BLOCK}" in rule or f"daddr {BLOCK}" in rule, rule
    diverted = [rule for rule in rules if "tproxy" in rule]
    assert [rule.split(" tproxy ")[1] for rule in diverted] == [
        "ip to 198.18.8.1:4000 meta mark set 0x38c24100 accept",
        "ip to 198.18.8.1:4001 meta mark set 0x38c24100 accept",
    ]
    # What the harness on the host receives from a node is never diverted.
    assert all("ip daddr != 198.18.8.1" in rule for rule in diverted)


def test_marks_and_route_tables_differ_between_blocks() -> None:
    blocks = list(ipaddress.IPv4Network("198.18.0.0/15").subnets(new_prefix=21))
    marks = {Hub("a1b2c3", block).mark for block in blocks}
    assert len(marks) == len(blocks)
    assert all(mark not in (0, 253, 254, 255) for mark in marks)  # reserved route tables


def test_blocks_leased_side_by_side_differ() -> None:
    first, second = NetworkBlock.lease(), NetworkBlock.lease()
    try:
        assert first.network != second.network
        assert not first.network.overlaps(second.network)
        assert first.node(0) == str(first.network[2]) and first.host == str(first.network[1])
        with pytest.raises(Exception, match="beyond"):
            first.node(first.network.num_addresses)
    finally:
        first.release()
        second.release()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PEERLAB_NETNS_RANGE", "198.18.0.1/15"),
        ("PEERLAB_NETNS_RANGE", "many"),
        ("PEERLAB_NETNS_BLOCK", "/8"),
        ("PEERLAB_NETNS_BLOCK", "30"),
    ],
)
def test_a_bad_range_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(UsageError) as info:
        dedicated_range()
    assert info.value.field == variable and info.value.hint


def test_the_range_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEERLAB_NETNS_RANGE", "198.19.128.0/20")
    monkeypatch.delenv("PEERLAB_NETNS_BLOCK", raising=False)
    assert dedicated_range() == (ipaddress.IPv4Network("198.19.128.0/20"), 21)
    block = NetworkBlock.lease()
    try:
        assert block.network.subnet_of(ipaddress.IPv4Network("198.19.128.0/20"))
    finally:
        block.release()
