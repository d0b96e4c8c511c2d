"""Mapping files (``mappings/*.toml``) -> departments, courses and requirements, validated.

The one public entry is ``load_mappings``; the models are re-exported here. The file format is
documented in ``connector.mapping.models`` and taught by the commented files in ``connector/demo_mappings/``.
"""

from __future__ import annotations

from pathlib import Path

from connector.mapping.loader import load
from connector.mapping.models import (
    AppliesTo,
    CourseRef,
    Department,
    Exemption,
    MappedCourse,
    Mappings,
    Placement,
    Requirement,
    Target,
    normalise,
    parse_start_date,
)

DEMO_MAPPINGS = Path(__file__).resolve().parents[1] / "demo_mappings"
"""The demo organisations' mapping files, shipped inside the package (commented to teach the format)."""


def load_mappings(directory: Path | str) -> Mappings:
    """Read and validate every ``*.toml`` in ``directory``.

    Raises ``MappingError`` whose ``problems`` lists every problem of every file at once.
    """
    return load(Path(directory))


__all__ = [
    "DEMO_MAPPINGS",
    "AppliesTo",
    "CourseRef",
    "Department",
    "Exemption",
    "MappedCourse",
    "Mappings",
    "Placement",
    "Requirement",
    "Target",
    "load_mappings",
    "normalise",
    "parse_start_date",
]
