"""syncpeer's plugin: its CLI verbs (`friend`, `file`, `dht`) and pytest helpers."""

from peerlab.systems.plugins import SystemPlugin

PLUGIN = SystemPlugin(
    name="syncpeer",
    cli="peerlab.systems.syncpeer_cli:register",
    pytest="peerlab.systems.syncpeer_pytest",
)
