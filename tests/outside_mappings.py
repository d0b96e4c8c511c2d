"""Mappings of our own for the due, forecast and imported-evidence tests: the Ljubljana
digital-security rule written as training + competence check, and a two-yearly IT-security course."""

from __future__ import annotations

from pathlib import Path

MAPPINGS = {
    "settings.toml": '[settings]\ntimezone = "Europe/Ljubljana"\n',
    "departments.toml": """\
[[department]]
id = "mol"
name = "Mestna občina Ljubljana"
institution = "Mestna občina Ljubljana"

[[department]]
id = "mol.fin"
parent = "mol"
name = "Oddelek za finance"
department = "Oddelek za finance"

[[department]]
id = "mol.kul"
parent = "mol"
name = "Oddelek za kulturo"
department = "Oddelek za kulturo"
""",
    "courses.toml": """\
[course.digvar]
idnumber = "DIGVAR"
title = "Digitalna varnost"

[course.digvar-check]
idnumber = "DIGVAR-CHECK"
title = "Preverjanje kompetentnosti: digitalna varnost"

[course.itsec]
idnumber = "ITSEC"
""",
    "requirements.toml": """\
# "Redno izobraževanje o digitalni varnosti in preverjanje kompetentnosti zaposlenih, vsaj vsaki
# dve leti." The training and the check are both needed, at least every two years.
[[requirement]]
id = "digvar"
title = "Digitalna varnost s preverjanjem kompetentnosti"
courses = ["digvar", "digvar-check"]
require = "all"
valid_for = "24 months"
warn_before = "60 days"

[[requirement.target]]
kind = "share"
min = "50 %"

[[requirement]]
id = "itsec"
title = "IT security"
courses = ["itsec"]
valid_for = "24 months"
warn_before = "60 days"
""",
}


def write_mappings(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in MAPPINGS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder
