"""syncpeer's plugin: its CLI verbs (`friend`, `file`, `dht`) and pytest helpers."""

from peerlab.systems.plugins import SystemPlugin

PLUGIN = SystemPlugin(
    name="syncpeer",
    cli="peerlab.systems.syncpeer_cli:register",
    commands={
        "friend": "Friendships between peers (syncpeer).",
        "file": "Publish and read files (syncpeer).",
        "dht": "The DHT: lookups and routing tables (syncpeer).",
    },
    pytest="peerlab.systems.syncpeer_pytest",
)
