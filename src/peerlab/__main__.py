"""`python -m peerlab` runs the CLI."""

from peerlab.cli import main

main()
