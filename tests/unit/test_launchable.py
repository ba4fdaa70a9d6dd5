"""Which backend can run which system: refused before anything starts, with the field and
the fix (an image-only system on a backend of processes, a process on a backend of
containers, a healthcheck without a container, capabilities without a namespace)."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from peerlab.backends.base import Capabilities
from peerlab.errors import UsageError
from peerlab.launching import check_launchable
from peerlab.manifest import parse_manifest

PROCESSES = Capabilities()
NAMESPACES = Capabilities(own_ports=True, exact_source=True, node_capabilities=True)
CONTAINERS = Capabilities(own_ports=True, exact_source=True, node_capabilities=True, images=True)


def spec(text: str) -> Any:
    return parse_manifest(tomllib.loads('[system]\nname = "kvd"\n' + text), "kvd.toml")


def refusal(text: str, capabilities: Capabilities) -> UsageError:
    with pytest.raises(UsageError) as info:
        check_launchable(spec(text), capabilities, "somewhere")
    return info.value


def test_an_image_only_system_is_refused_on_processes() -> None:
    error = refusal('[launch]\nimage = "kvd:1"', PROCESSES)
    assert error.field == "launch.command"
    assert "--backend docker" in str(error.hint)


def test_a_role_without_an_image_is_refused_on_containers_as_mixing() -> None:
    error = refusal('[launch]\ncommand = ["kvd"]\n[roles.r]\nimage = "kvd-r:1"', CONTAINERS)
    assert error.field == "launch.image"
    assert "mixing processes and containers" in error.message


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('backend = "docker"\n[launch]\ncommand = ["true"]', "system.backend"),
        ('[launch]\ncommand = ["true"]\nbackend = "docker"', "launch.backend"),
        ('[launch]\ncommand = ["true"]\n[roles.r]\nbackend = "docker"', "roles.r.backend"),
    ],
)
def test_a_manifest_that_asks_for_a_backend_is_told_mixing_is_not_supported(
    text: str, field: str
) -> None:
    with pytest.raises(UsageError) as info:
        spec(text)
    assert info.value.field == field
    assert "mixing backends" in info.value.message
    assert "--backend" in str(info.value.hint)


def test_on_containers_only_what_runs_here_must_be_installed_here() -> None:
    image = '[launch]\ncommand = ["kvd-not-here"]\nimage = "kvd:1"\n'
    check_launchable(spec(image), CONTAINERS, "docker")  # the image holds kvd-not-here
    assert refusal(image, PROCESSES).field == "launch.command"
    init = image + '[init]\ncommand = ["kvd-keygen-not-here"]\n'
    error = refusal(init, CONTAINERS)
    assert error.field == "init.command" and "kvd-keygen-not-here" in error.message
    probe = image + '[readiness]\ntype = "command"\ncommand = ["kvd-cli-not-here"]\n'
    assert refusal(probe, CONTAINERS).field == "readiness.command"
    healthcheck = image + '[readiness]\ntype = "healthcheck"\ncommand = ["kvd-cli-not-here"]\n'
    check_launchable(spec(healthcheck), CONTAINERS, "docker")  # run inside the container


def test_a_healthcheck_needs_a_container() -> None:
    text = '[launch]\ncommand = ["true"]\nimage = "kvd:1"\n[readiness]\ntype = "healthcheck"'
    assert refusal(text, NAMESPACES).field == "readiness.type"
    check_launchable(spec(text), CONTAINERS, "docker")


def test_capabilities_need_a_namespace_of_the_node() -> None:
    text = '[launch]\ncommand = ["true"]\ncapabilities = ["NET_ADMIN"]'
    assert refusal(text, PROCESSES).field == "launch.capabilities"
    check_launchable(spec(text), NAMESPACES, "netns")


def test_a_system_with_a_command_and_an_image_runs_on_both() -> None:
    text = '[launch]\ncommand = ["true"]\nimage = "kvd:1"'
    check_launchable(spec(text), PROCESSES, "local")
    check_launchable(spec(text), CONTAINERS, "docker")


def test_a_role_image_and_a_build_context_resolve_per_role(tmp_path: Any) -> None:
    manifest = tmp_path / "kvd.toml"
    manifest.write_text(
        '[system]\nname = "kvd"\n[launch]\nbuild = "img"\n[roles.r]\nimage = "kvd-r:1"\n'
    )
    from peerlab.manifest import load_manifest

    images = load_manifest(manifest).images()
    assert images[None] == (None, tmp_path / "img")
    assert images["r"] == ("kvd-r:1", None)
