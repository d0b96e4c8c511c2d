"""The `connector` command line: the only place that prints, formats and picks exit codes.

``main`` (the console entry point ``connector.cli:main``) is the root group in :mod:`.app`, which
also holds the one error path; each other module adds the commands of one concern to it.
"""

from __future__ import annotations

from connector.cli import admin, demo, evidence, needs, people, planning, reports, setup, sync  # noqa: F401  (they register commands)
from connector.cli.app import main

__all__ = ["main"]
