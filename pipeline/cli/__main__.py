"""`python -m pipeline.cli` is `finsent`."""

from pipeline.cli import main

main()
