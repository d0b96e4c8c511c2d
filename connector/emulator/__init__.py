"""A Moodle-compatible web-service server for the demo, tests and benchmarks.

Same protocol and payload shapes as the fixtures captured from a real Moodle 4.1 and 4.5
(``Emulator(..., moodle="4.5")``); seeded scenarios; per-call and per-row cost, a worker limit
and fault injection. It never imports the client: the two must be free to disagree.
"""

from connector.emulator.scenario import Scenario
from connector.emulator.scenarios import (
    SCENARIO_NAMES,
    demo_scenario,
    generated_scenario,
    scenario_by_name,
)
from connector.emulator.server import FAULT_KINDS, Emulator

__all__ = [
    "FAULT_KINDS",
    "SCENARIO_NAMES",
    "Emulator",
    "Scenario",
    "demo_scenario",
    "generated_scenario",
    "scenario_by_name",
]
