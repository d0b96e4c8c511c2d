"""The rules engine alone: N synthetic people x 10 requirements, evaluated and rolled up.

    python tests/benchmarks/bench_rules.py [--people 100000] [--seed 7] [--keep]

People are generated one at a time (seeded) and streamed through ``RuleSet.evaluate`` and
``RollupBuilder.add`` as a sync does; ``--keep`` holds every PersonStatus in memory instead (the
``evaluate()`` convenience path) to show what streaming saves. Prints wall time, throughput and
the peak RSS of this process (resource.getrusage).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from connector.durations import Duration  # noqa: E402
from connector.mapping import (  # noqa: E402
    AppliesTo,
    CourseRef,
    Department,
    Exemption,
    Mappings,
    Requirement,
    Target,
)
from connector.moodle.records import Completion, Subject  # noqa: E402
from connector.rules import PersonStatus, RollupBuilder, RuleSet  # noqa: E402
from tests.benchmarks.memory import peak_rss_mb  # noqa: E402

AS_OF = date(2026, 6, 15)
ORGANISATIONS, DEPARTMENTS_PER_ORG, REQUIREMENTS = 5, 20, 10
POSITIONS = ("úředník", "starosta", "digitální poradce", "referent")


def synthetic_mappings() -> Mappings:
    departments = [
        Department(f"org{o}", f"Organisation {o}", timezone="Europe/Ljubljana" if o == 4 else None)
        for o in range(ORGANISATIONS)
    ]
    departments += [
        Department(f"org{o}.d{d}", f"Department {d}", f"org{o}")
        for o in range(ORGANISATIONS)
        for d in range(DEPARTMENTS_PER_ORG)
    ]
    requirements = []
    for r in range(REQUIREMENTS):
        courses = (
            (CourseRef("idnumber", f"C{r}"),)
            if r % 4
            else (CourseRef("idnumber", f"C{r}"), CourseRef("idnumber", f"C{(r + 1) % REQUIREMENTS}"))
        )
        requirements.append(
            Requirement(
                f"r{r}",
                f"Requirement {r}",
                courses,
                "all" if r == 4 else "any",
                Duration(24, "months") if r % 2 == 0 else (Duration(3, "years") if r % 3 == 0 else None),
                Duration(60, "days") if r % 2 == 0 else None,
                Duration(90, "days") if r < 3 else None,
                AppliesTo(
                    departments=(f"org{r % ORGANISATIONS}",) if r >= 6 else (),
                    positions=("úředník", "starosta") if r == 5 else (),
                ),
                (Exemption("leave", username="u42"),) if r == 0 else (),
                (Target("share", 0.5, Duration(2, "years")),)
                if r % 3 == 0
                else (Target("holders", 1, None, "leaves"),),
            )
        )
    return Mappings(tuple(departments), tuple(requirements), timezone="Europe/Prague")


def synthetic_people(count: int, seed: int) -> Iterator[tuple[Subject, list[Completion]]]:
    rng = random.Random(seed)
    start = int(datetime(2021, 1, 1, tzinfo=UTC).timestamp())
    span = int(datetime(2026, 9, 1, tzinfo=UTC).timestamp()) - start  # a few in the future
    for uid in range(1, count + 1):
        org, dept = rng.randrange(ORGANISATIONS), rng.randrange(DEPARTMENTS_PER_ORG)
        department = None if uid % 211 == 0 else f"org{org}.d{dept}"
        subject = Subject(
            uid,
            f"u{uid}",
            department,
            POSITIONS[uid % len(POSITIONS)],
            active=uid % 97 != 0,
            start_date=AS_OF - timedelta(days=rng.randrange(2000)) if uid % 5 == 0 else None,
            idnumber=f"E{uid}",
        )
        evidence = [
            Completion(uid, 100 + r, start + rng.randrange(span))
            for r in range(REQUIREMENTS)
            for _ in range(rng.choice((0, 0, 1, 1, 2)))
        ]
        yield subject, evidence


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep every status in memory (evaluate() path)")
    args = parser.parse_args()
    mappings = synthetic_mappings()
    course_ids = {CourseRef("idnumber", f"C{r}"): 100 + r for r in range(REQUIREMENTS)}
    rss_before = peak_rss_mb()
    t_gen = time.perf_counter()
    for _ in synthetic_people(args.people, args.seed):  # the cost of making the input, measured apart
        pass
    generation = time.perf_counter() - t_gen
    t0 = time.perf_counter()
    rules = RuleSet(mappings, course_ids, AS_OF)
    builder = RollupBuilder(mappings, AS_OF)
    counts: Counter[str] = Counter()
    kept: list[PersonStatus] = []
    evidence_rows = 0
    for subject, evidence in synthetic_people(args.people, args.seed):
        evidence_rows += len(evidence)
        statuses = rules.evaluate(subject, evidence)
        builder.add(subject, statuses)
        counts.update(s.status.value for s in statuses)
        if args.keep:
            kept.extend(statuses)
    rollups = builder.build()
    wall = time.perf_counter() - t0
    evaluated = args.people * REQUIREMENTS
    figures = {
        "people": args.people,
        "requirements": REQUIREMENTS,
        "evidence_rows": evidence_rows,
        "statuses": sum(counts.values()),
        "rollups": len(rollups),
        "wall_s (incl. generating people)": round(wall, 2),
        "generating_people_alone_s": round(generation, 2),
        "engine_s (wall - generating)": round(wall - generation, 2),
        "person_requirements_per_s (engine)": round(evaluated / max(wall - generation, 1e-9)),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_before_mb": round(rss_before, 1),
        "mode": "keep all statuses" if args.keep else "streaming",
    }
    for key, value in figures.items():
        print(f"{key:>34}: {value}")
    print(f"{'statuses by kind':>34}: {dict(sorted(counts.items()))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
