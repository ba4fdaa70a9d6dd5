"""Where nodes run. `local` (processes on this machine, no root) is the default."""
