"""`python -m connector.cli`: the CLI in its own process (tests and tools use it like the script)."""

from connector.cli import main

main()
