"""`python -m rnnlab ...`: the `rnnlab` command (also under launchers such as torchrun)."""

from .cli import main

main()
