"""Three languages: every message has a Czech and a Slovenian translation that keeps its
placeholders, the compiled catalogs are those of the .po files, the language is chosen as README
says, and what a person reads in Czech or Slovenian is pinned whole (status, an error line, --help)."""

from __future__ import annotations

import ast
import io
import re
import shutil
import tokenize
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from click.testing import CliRunner, Result

from connector import i18n
from connector.babel_extract import extract
from connector.cli import main
from connector.mapping import load_mappings
from tests.helpers import MAPPINGS, REPO, synced_demo_ledger

PACKAGE = REPO / "connector"


def _code_messages() -> dict[str, str]:
    """msgid -> where, as `pybabel extract -F babel.cfg` finds them (same extractor, same keywords)."""
    found: dict[str, str] = {}
    method_map = [
        ("**.py", "connector.babel_extract:extract"),
        ("**/templates/**.j2", "jinja2.ext:babel_extract"),
    ]
    template_options = {"trim_blocks": "true", "lstrip_blocks": "true", "silent": "false"}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(PACKAGE), method_map, {"**.py": {}, "**/templates/**.j2": template_options}, keywords=_keywords()
    ):
        msgid = message[0] if isinstance(message, tuple) else message
        found.setdefault(msgid, f"{filename}:{lineno}")
    return found


def _keywords() -> dict[str, object]:
    from babel.messages.extract import DEFAULT_KEYWORDS

    return dict(DEFAULT_KEYWORDS)


def test_babel_cfg_names_this_extractor() -> None:
    text = (REPO / "babel.cfg").read_text(encoding="utf-8")
    assert "connector = connector.babel_extract:extract" in text
    assert "jinja2 = jinja2.ext:babel_extract" in text and "[jinja2: **/templates/**.j2]" in text
    assert extract.__module__ == "connector.babel_extract"


@pytest.mark.parametrize("language", ["cs", "sl"])
def test_every_message_in_the_code_is_translated(language: str) -> None:
    """Fails listing each msgid the code uses that the .po lacks, leaves empty or marks fuzzy."""
    po = PACKAGE / "locale" / language / "LC_MESSAGES" / "connector.po"
    catalog = read_po(po.open("rb"), locale=language)
    done = {
        (m.id[0] if isinstance(m.id, tuple) else m.id)
        for m in catalog
        if m.id and "fuzzy" not in m.flags and (all(m.string) if isinstance(m.string, tuple) else m.string)
    }
    missing = sorted(f"{where}: {msgid!r}" for msgid, where in _code_messages().items() if msgid not in done)
    assert not missing, f"untranslated in {language} (see CONTRIBUTING.md, Translations):\n" + "\n".join(
        missing
    )


def _package_sources() -> Iterator[tuple[Path, str]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, path.read_text(encoding="utf-8")


def test_no_message_is_marked_inside_an_f_string() -> None:
    """The extractor reads an f-string as one string token: a ``_()`` inside it never reaches the
    catalogs, and shows in English whatever the language."""
    found = []
    for path, source in _package_sources():
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type != tokenize.STRING:
                continue
            prefix = re.match(r"[rRbBuUfF]*", token.string)
            if prefix and "f" in prefix[0].lower() and re.search(r"\b_\(", token.string):
                found.append(f"{path.relative_to(REPO)}:{token.start[0]}")
    assert not found, "mark the message outside the f-string: " + ", ".join(found)


def _error_classes() -> set[str]:
    from connector import errors

    return {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, errors.ConnectorError)
    } | {"Problem"}


def _english_in(node: ast.expr) -> bool:
    """Whether an argument is text written in the code rather than a marked message: a string
    literal with words, an f-string, or text joined onto something with +."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and bool(re.search(r"[A-Za-z]{2,} [A-Za-z]{2,}", node.value))
    if isinstance(node, ast.JoinedStr):
        return any(_english_in(part) for part in node.values if isinstance(part, ast.Constant))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _english_in(node.left) or _english_in(node.right)
    return False


def test_errors_are_raised_with_marked_messages() -> None:
    """An error's message and hint reach a person in their language only through the catalogs:
    text written straight into the call (or joined onto a marked one) stays English."""
    classes = _error_classes()
    found = []
    for path, source in _package_sources():
        if "emulator" in path.parts:  # the emulator speaks as Moodle does: English
            continue
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name not in classes:
                continue
            texts = node.args[2:] if name == "Problem" else node.args[:1]  # Problem: file, key first
            texts = [*texts, *(k.value for k in node.keywords if k.arg in ("message", "hint"))]
            if any(_english_in(text) for text in texts):
                found.append(f"{path.relative_to(REPO)}:{node.lineno} {name}")
    assert not found, "mark the text with _() and format it afterwards:\n" + "\n".join(found)


def test_the_extraction_finds_gettext_calls_command_help_and_option_help() -> None:
    messages = _code_messages()
    assert "Compliance as of {date}" in messages  # _()
    assert "expiring" in messages  # N_() in the status words
    assert "Recent sync runs with their outcome, counts and errors." in messages  # a command docstring
    assert "How many recent runs to show." in messages  # help="..."
    assert "Summary per organisation" in messages  # the report's template


@pytest.mark.parametrize("language", ["cs", "sl"])
def test_compiled_catalog_is_the_po_file(language: str) -> None:
    """The .mo shipped in the package says what the .po says (run pybabel compile after editing)."""
    folder = PACKAGE / "locale" / language / "LC_MESSAGES"
    po = read_po((folder / "connector.po").open("rb"), locale=language)
    mo = read_mo(io.BytesIO((folder / "connector.mo").read_bytes()))
    strings = {_key(m.id): _key(m.string) for m in po if m.id and "fuzzy" not in m.flags}
    compiled = {_key(m.id): _key(m.string) for m in mo if m.id}
    assert compiled == strings


def _key(text: object) -> object:
    return tuple(text) if isinstance(text, (list, tuple)) else text


_NAMED = re.compile(r"%\((\w+)\)[sdifr]")
_BRACED = re.compile(r"(?<!\{)\{(\w*)[^{}]*\}(?!\})")


def _fields(text: str) -> set[str]:
    """The named placeholders a message is formatted with: ``{name}`` (str.format; ``{{`` is a
    brace) and ``%(name)s`` (the report's templates, click's own lines)."""
    return set(_NAMED.findall(text)) | {name for name in _BRACED.findall(text.replace("{{", ""))}


@pytest.mark.parametrize("language", ["cs", "sl"])
def test_every_translation_keeps_the_placeholders_of_its_message(language: str) -> None:
    """A placeholder the English lacks fails with a traceback in that language only; one left out
    drops a number or a name from the sentence. Each plural form may use only the English forms'
    placeholders and must keep those both English forms use."""
    po = read_po((PACKAGE / "locale" / language / "LC_MESSAGES" / "connector.po").open("rb"), locale=language)
    wrong = []
    for message in po:
        if not message.id or not message.string:
            continue
        if isinstance(message.id, str):
            expected, found = _fields(message.id), _fields(str(message.string))
            if found != expected:
                wrong.append(f"{message.id!r}: {sorted(found)} instead of {sorted(expected)}")
            continue
        singular, plural = (_fields(text) for text in message.id)
        for index, form in enumerate(message.string):
            found = _fields(form)
            if not (singular & plural) <= found <= (singular | plural):
                wrong.append(
                    f"{message.id[0]!r} [{index}]: {sorted(found)}, English {sorted(singular | plural)}"
                )
    assert not wrong, f"placeholders changed in {language}:\n" + "\n".join(wrong)


# -- choosing the language -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"LANG": "cs_CZ.UTF-8"}, "cs"),
        ({"LANG": "sl_SI.UTF-8"}, "sl"),
        ({"LANG": "cs_CZ.UTF-8", "LC_MESSAGES": "sl_SI.UTF-8"}, "sl"),
        ({"LANG": "cs_CZ.UTF-8", "LC_MESSAGES": "sl_SI", "LC_ALL": "en_GB.UTF-8"}, "en"),
        ({"LANG": "de_DE.UTF-8"}, None),
        ({"LANG": "C.UTF-8"}, None),
        ({}, None),
    ],
)
def test_language_of_the_locale(environ: dict[str, str], expected: str | None) -> None:
    assert i18n.from_environment(environ) == expected


def test_dates_and_shares_are_written_as_each_language_writes_them() -> None:
    written = {}
    for language in ("cs", "sl", "en"):
        i18n.set_language(language)
        written[language] = (
            i18n.format_day(date(2026, 11, 26)),
            i18n.format_day("2027-03-01"),
            i18n.format_percent(0.4167, decimals=1),
            i18n.format_percent(0.4167),
        )
    assert written == {
        "cs": ("26. 11. 2026", "1. 3. 2027", "41,7 %", "42 %"),
        "sl": ("26. 11. 2026", "1. 3. 2027", "41,7 %", "42 %"),
        "en": ("26 Nov 2026", "1 Mar 2027", "41.7%", "42%"),
    }


def test_instants_are_shown_in_the_connectors_time_zone_as_each_language_writes_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(i18n._Active, "zone", "UTC")
    i18n.set_zone("Europe/Ljubljana")
    shown = {}
    for language in ("cs", "sl", "en"):
        i18n.set_language(language)
        shown[language] = (
            i18n.format_moment("2026-11-26T23:30:00+00:00"),  # already the next day in Ljubljana
            i18n.format_moment("2026-06-15T10:00:00Z"),  # summer time
            i18n.format_moment(1_780_000_000),
            i18n.format_moment("2026-05-04"),  # a bare day stays a day
            i18n.format_moment("not a moment"),
        )
    assert shown == {
        "cs": ("27. 11. 2026 00:30", "15. 6. 2026 12:00", "28. 5. 2026 22:26", "4. 5. 2026", "not a moment"),
        "sl": ("27. 11. 2026 00:30", "15. 6. 2026 12:00", "28. 5. 2026 22:26", "4. 5. 2026", "not a moment"),
        "en": ("27 Nov 2026 00:30", "15 Jun 2026 12:00", "28 May 2026 22:26", "4 May 2026", "not a moment"),
    }


def test_tables_show_days_and_instants_for_people_while_csv_keeps_iso(ledger: Path) -> None:
    czech = run(ledger, "--lang", "cs", "runs")
    started = czech.stdout.splitlines()[2].split("  ")[2]
    assert re.fullmatch(r"\d{1,2}\. \d{1,2}\. \d{4} \d{2}:\d{2}", started), czech.stdout
    plain = run(ledger, "runs", "--format", "csv")
    assert re.fullmatch(
        r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00", plain.stdout.splitlines()[1].split(",")[1]
    )


# -- what a person reads ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synced_demo_ledger(tmp_path_factory.mktemp("i18n"))


def run(ledger: Path, *args: str, mappings: Path = MAPPINGS, env: dict[str, str] | None = None) -> Result:
    runner = CliRunner(env={"LANG": "C.UTF-8", **(env or {})})
    return runner.invoke(
        main, ["--ledger", str(ledger), "--mappings", str(mappings), *args], prog_name="connector"
    )


SL_STATUS = """\
Stanje na dan 15. 6. 2026
oddelek             zahteva               naziv                             zavezani  veljavno  kmalu poteče  poteklo  manjka  uvajalno obdobje  izjema  delež  cilji doseženi  cilji
------------------  --------------------  --------------------------------  --------  --------  ------------  -------  ------  ----------------  ------  -----  --------------  -------------------------------------------------------------
Oddelek za kulturo  advisor-appointed-si  Imenovan digitalni svetovalec            0         0             0        0       0                 0       0                         imenovanih 0 od 1, rok 31. 12. 2026
Oddelek za kulturo  digital-advisor       Digitalni svetovalec                     0         0             0        0       0                 0       0                     ne  imetniki med zavezanimi: 0 od 1
Oddelek za kulturo  digvar-si             Digitalna varnost (vsaki 2 leti)         8         4             0        4       0                 0       0   50 %                  ne presoja se, 2026: za leto 2026 ni shranjene analize potreb

1 aktivna oseba ne spada v noben oddelek in ni šteta v nobeni vrstici zgoraj: `connector unplaced` izpiše zapise in vrstice vzdevkov, ki osebe razvrstijo
"""

CS_STATUS = """\
Stav plnění k 15. 6. 2026
útvar          požadavek        název                                povinní  platné  brzy vyprší  propadlé  chybí  nástupní lhůta  výjimka  podíl  cíle splněny  cíle
-------------  ---------------  -----------------------------------  -------  ------  -----------  --------  -----  --------------  -------  -----  ------------  ---------------------
Odbor financí  ai-ured          AI v práci úředníka                        8       4            0         0      4               0        0   50 %
Odbor financí  digital-advisor  Digitální poradce                          0       0            0         0      0               0        0
Odbor financí  itsec-cz         Digitální bezpečnost (každé 2 roky)        8       1            1         4      2               0        0   25 %            ne  0 % z 50 %, 2026-2027

1 aktivní osoba nepatří do žádného útvaru a nezapočítává se do žádného řádku výše: `connector unplaced` vypíše její variantu zápisu a řádek aliasu, který ji zařadí
"""


def test_status_in_slovenian(ledger: Path) -> None:
    result = run(ledger, "--lang", "sl", "status", "--department", "ljubljana.kultura")
    assert (result.exit_code, result.stdout, result.stderr) == (0, SL_STATUS, "")


def test_status_in_czech(ledger: Path) -> None:
    result = run(ledger, "--lang", "cs", "status", "--department", "jablonec.financi")
    assert (result.exit_code, result.stdout, result.stderr) == (0, CS_STATUS, "")


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "cs",
            "chyba: požadavek „nope“ v mapování není\n"
            "  rada: známé: itsec-cz, digvar-si, advisor-appointed-si, digital-advisor, ai-ured\n",
        ),
        (
            "sl",
            "napaka: zahteve »nope« v preslikavah ni\n  namig: znane: itsec-cz, digvar-si, advisor-appointed-si, digital-advisor, ai-ured\n",
        ),
        (
            "en",
            "error: no requirement 'nope' in the mappings\n  hint: known: itsec-cz, digvar-si, advisor-appointed-si, digital-advisor, ai-ured\n",
        ),
    ],
)
def test_an_error_line_in_each_language(ledger: Path, language: str, expected: str) -> None:
    result = run(ledger, "--lang", language, "status", "--requirement", "nope")
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", expected)


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "cs",
            "chyba: nalezen 1 problém:\n  - {config}: moodle: nastavení připojení k Moodlu je neplatné: url "
            "'ftp://moodle.example.org' musí být kořen webu, např. https://moodle.example.org\n",
        ),
        (
            "sl",
            "napaka: najdena 1 težava:\n  - {config}: moodle: nastavitve povezave z Moodlom niso veljavne: url "
            "'ftp://moodle.example.org' mora biti koren spletišča, npr. https://moodle.example.org\n",
        ),
    ],
)
def test_a_connection_setting_refused_in_each_language(tmp_path: Path, language: str, expected: str) -> None:
    config = tmp_path / "connector.toml"
    config.write_text(
        f'[moodle]\nurl = "ftp://moodle.example.org"\n[ledger]\npath = "{tmp_path / "l.sqlite"}"\n'
        f'[mappings]\ndir = "{MAPPINGS}"\n',
        encoding="utf-8",
    )
    result = CliRunner(env={"LANG": "C.UTF-8", "MOODLE_TOKEN": "abc"}).invoke(
        main, ["--lang", language, "--config", str(config), "sync"]
    )
    assert (result.exit_code, result.stderr) == (2, expected.format(config=config))


def test_the_locale_chooses_the_language_and_lang_overrides_it(ledger: Path) -> None:
    from_locale = run(ledger, "status", "--requirement", "nope", env={"LANG": "sl_SI.UTF-8"})
    overridden = run(ledger, "--lang", "en", "status", "--requirement", "nope", env={"LANG": "sl_SI.UTF-8"})
    assert from_locale.stderr.splitlines()[0] == "napaka: zahteve »nope« v preslikavah ni"
    assert overridden.stderr.splitlines()[0] == "error: no requirement 'nope' in the mappings"


def test_the_mappings_language_applies_unless_lang_is_given(ledger: Path, tmp_path: Path) -> None:
    mappings = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, mappings)
    settings = mappings / "settings.toml"
    settings.write_text(
        settings.read_text(encoding="utf-8").replace("[settings]\n", '[settings]\nlanguage = "cs"\n'),
        encoding="utf-8",
    )
    assert load_mappings(mappings).language == "cs"
    by_mappings = run(
        ledger, "status", "--department", "jablonec.financi", mappings=mappings, env={"LANG": "sl_SI"}
    )
    by_option = run(ledger, "--lang", "sl", "status", "--department", "ljubljana.kultura", mappings=mappings)
    assert (by_mappings.stdout, by_option.stdout) == (CS_STATUS, SL_STATUS)


def test_a_language_the_mappings_cannot_name_is_a_mapping_problem(tmp_path: Path) -> None:
    mappings = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, mappings)
    settings = mappings / "settings.toml"
    settings.write_text(
        settings.read_text(encoding="utf-8").replace("[settings]\n", '[settings]\nlanguage = "de"\n'),
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["mappings", "check", "--mappings", str(mappings)])
    assert result.exit_code == 2
    assert "settings.language: 'de' is not a language (use cs, sl or en)" in result.output


STATUS_HELP_SL = """\
Uporaba: connector status [OPTIONS]

  Po oddelkih in zahtevah: zavezani, veljavno, kmalu poteče, poteklo, manjka,
  delež, cilji.

  Brez --as-of prikaže zadnjo uspešno sinhronizacijo; z njim stanje preračuna iz
  dokazil.

Možnosti:
  --department TEXT           Oznaka ali ime oddelka; prikaže oddelek z vsemi
                              podrejenimi.
  --requirement TEXT          Oznaka zahteve.
  --as-of DATE                Preračunaj na ta dan (LLLL-MM-DD) iz dokazil v
                              evidenci.
  --format [table|csv|json]   Oblika izpisa.  [privzeto: table]
  --dialect [plain|excel-cs]  Različica CSV: excel-cs je UTF-8 z BOM, podpičjem
                              in decimalno vejico za češke in slovenske
                              preglednice.  [privzeto: plain]
  -h, --help                  Prikaži to pomoč in končaj.
"""


def test_help_in_slovenian() -> None:
    result = CliRunner(env={"LANG": "C.UTF-8"}).invoke(
        main, ["--lang", "sl", "status", "--help"], prog_name="connector"
    )
    assert (result.exit_code, result.stdout) == (0, STATUS_HELP_SL)


def test_help_follows_the_locale() -> None:
    result = CliRunner(env={"LANG": "cs_CZ.UTF-8"}).invoke(main, ["--help"], prog_name="connector")
    assert result.stdout.startswith("Použití: connector [OPTIONS] COMMAND [ARGS]...\n\n  Konektor plnění")
    assert "\nPříkazy:\n" in result.stdout


def test_every_detail_the_rules_wrote_reads_in_czech_and_slovenian(ledger: Path) -> None:
    """The ledger keeps details in English; `person` shows each part translated (a changed wording in
    rules.py would otherwise leave English on a Czech screen)."""
    import sqlite3

    from connector.reports.words import _detail_part

    with sqlite3.connect(ledger) as db:
        details = {row[0] for row in db.execute("SELECT DISTINCT detail FROM statuses") if row[0]}
    parts = {part for detail in details for part in detail.split("; ")}
    assert len(parts) >= 4  # the demo has several kinds
    for language in ("cs", "sl"):
        i18n.set_language(language)
        assert sorted(p for p in parts if _detail_part(p) == p) == [], language


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "newcomer since 5 Jan 2026; latest of 3 completions; 1 completion dated after as_of ignored"),
        (
            "cs",
            "nově nastoupivší od 5. 1. 2026; poslední z 3 absolvování; nezapočteno 1 absolvování s datem po rozhodném dni",
        ),
        (
            "sl",
            "novozaposlen od 5. 1. 2026; zadnji od zaključkov: 3; prezrt 1 zaključek z datumom po presečnem dnevu",
        ),
    ],
)
def test_a_status_detail_in_each_language(language: str, expected: str) -> None:
    from connector.reports.words import detail_words

    i18n.set_language(language)
    detail = "newcomer since 2026-01-05; latest of 3 completions; 1 completion dated after as_of ignored"
    assert detail_words(detail) == expected


def test_person_in_czech(ledger: Path) -> None:
    result = run(ledger, "--lang", "cs", "person", "u001")
    lines = result.stdout.splitlines()
    assert (result.exit_code, lines[:2]) == (
        0,
        [
            "Jan Novák (u001, EMP1001), aktivní",
            "útvar: Odbor informatiky (Magistrát města Jablonec nad Nisou); pracovní pozice: digitální poradce",
        ],
    )
    assert lines[3:10] == [
        "Požadavky",
        "požadavek             název                                stav       platí do      od  termín  rozhodující kurz  podrobnosti",
        "--------------------  -----------------------------------  ---------  ------------  --  ------  ----------------  ----------------------------------------------------",
        "advisor-appointed-si  Imenovan digitalni svetovalec        netýká se                                              jmenování: nikdo nemusí absolvovat kurz",
        "ai-ured               AI v práci úředníka                  netýká se                            AI-URED           mimo okruh povinných (applies_to); jedno absolvování",
        "digital-advisor       Digitální poradce                    platné                               DIGSVET           jedno absolvování",
        "digvar-si             Digitalna varnost (vsaki 2 leti)     netýká se                                              mimo okruh povinných (applies_to); žádné absolvování",
    ]


# -- the HTML report -------------------------------------------------------------------------------
@pytest.mark.parametrize("language", ["cs", "sl"])
def test_the_report_leaves_no_english_word_on_screen(ledger: Path, tmp_path: Path, language: str) -> None:
    """`connector --lang cs report`: every word of the page is a translation or data (names, titles,
    ids); no word of an English message is left (words a language shares with English, such as
    "Legenda", are not English words here)."""
    from html.parser import HTMLParser

    target = tmp_path / "r.html"
    result = run(ledger, "--lang", language, "report", "-o", str(target))
    assert result.exit_code == 0, result.stderr

    class Text(HTMLParser):
        words: list[str] = []

        def handle_data(self, data: str) -> None:
            self.words += re.findall(r"[^\W\d_]+", data)

    page = Text()
    page.feed(re.sub(r"<style>.*?</style>", "", target.read_text(encoding="utf-8"), flags=re.S))
    mappings = load_mappings(MAPPINGS)
    data_words = {
        word
        for text in [d.name for d in mappings.departments]
        + [r.title_in(language) for r in mappings.requirements]
        + [r.id for r in mappings.requirements]
        + [c.title or c.name for c in mappings.courses]  # the course to take, in the due and needs tables
        for word in re.findall(r"[^\W\d_]+", text)
    }
    catalog = read_po(
        (PACKAGE / "locale" / language / "LC_MESSAGES" / "connector.po").open("rb"), locale=language
    )
    translated = {w.casefold() for m in catalog if m.id for w in re.findall(r"[^\W\d_]+", str(m.string))}
    english = {
        w.casefold()
        for m in catalog
        if m.id and isinstance(m.id, str)
        for w in re.findall(r"[^\W\d_]+", re.sub(r"%\(\w+\)s|\{\w+\}", "", m.id))
    }
    left = sorted({w for w in page.words if w not in data_words and w.casefold() in english - translated})
    assert left == []
    assert f'<html lang="{language}">' in target.read_text(encoding="utf-8")


def test_report_command_line_in_czech(ledger: Path, tmp_path: Path) -> None:
    target = tmp_path / "r.html"
    result = run(ledger, "--lang", "cs", "report", "-o", str(target))
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", f"zpráva zapsána do {target}\n")
    assert "<h1>Plnění povinných školení</h1>" in target.read_text(encoding="utf-8")


# -- spreadsheets for people -----------------------------------------------------------------------
def test_an_xlsx_export_in_slovenian_has_slovenian_sheets_headings_and_status_words(
    ledger: Path, tmp_path: Path
) -> None:
    import openpyxl

    target = tmp_path / "e.xlsx"
    result = run(ledger, "--lang", "sl", "export", "--format", "xlsx", "-o", str(target))
    assert result.exit_code == 0, result.stderr
    book = openpyxl.load_workbook(target)
    assert book.sheetnames == ["stanja", "oddelki"]
    header = [c.value for c in book["stanja"][1]]
    assert header == [
        "uporabniško ime",
        "idnumber",
        "oznaka oddelka",
        "oddelek",
        "zahteva",
        "stanje",
        "velja do",
        "odločilni tečaj",
        "zaključeno (UTC)",
        "oznaka organizacije",
        "organizacija",
        "vir dokazila",
        "ime in priimek",
        "e-pošta",
    ]
    words = {row[5] for row in book["stanja"].iter_rows(min_row=2, values_only=True)}
    assert (
        words
        == {"veljavno", "kmalu poteče", "poteklo", "manjka", "uvajalno obdobje", "izjema", "ne velja"} & words
    )
    assert "ne velja" in words and "poteklo" in words


def test_excel_cs_csv_in_czech_has_czech_headings_and_words_while_plain_csv_keeps_keys(ledger: Path) -> None:
    args = ("status", "--format", "csv", "--department", "jablonec.informatika")
    people = run(ledger, "--lang", "cs", *args, "--dialect", "excel-cs")
    scripts = run(ledger, "--lang", "cs", *args)
    assert people.stdout.splitlines() == [
        "\ufeffidentifikátor útvaru;požadavek;povinní;platné;brzy vyprší;propadlé;chybí;podíl;cíle splněny;identifikátor organizace",
        "jablonec.informatika;ai-ured;10;8;0;0;2;0,8;;jablonec",
        "jablonec.informatika;digital-advisor;1;1;0;0;0;1,0;;jablonec",
        "jablonec.informatika;itsec-cz;11;5;1;2;3;0,5455;ne;jablonec",
    ]
    assert scripts.stdout.splitlines()[0] == (
        "department,requirement,in_scope,compliant,expiring,expired,missing,share,targets_met,organisation"
    )


def test_click_usage_errors_in_czech_and_slovenian() -> None:
    runner = CliRunner(env={"LANG": "C.UTF-8"})
    bad_format = runner.invoke(main, ["--lang", "cs", "status", "--format", "xyz"], prog_name="connector")
    typo = runner.invoke(main, ["--lang", "sl", "statuss"], prog_name="connector")
    assert (bad_format.exit_code, bad_format.stderr) == (
        2,
        "Použití: connector status [OPTIONS]\n"
        "Nápovědu zobrazí 'connector status --help'.\n\n"
        "Chyba: Neplatná hodnota pro '--format': 'xyz' není žádná z možností 'table', 'csv', 'json'.\n",
    )
    assert typo.stderr.splitlines()[-1] == "Napaka: Ukaz 'statuss' ne obstaja. Ste mislili 'status'?"


# -- requirement titles per language ---------------------------------------------------------------
def _mappings_with(tmp_path: Path, requirement: str) -> Path:
    folder = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, folder)
    (folder / "zz-extra.toml").write_text(requirement, encoding="utf-8")
    return folder


def test_titles_per_language_from_a_table_or_suffixed_keys(tmp_path: Path) -> None:
    folder = _mappings_with(
        tmp_path,
        '[[requirement]]\nid = "gdpr"\ncourses = ["itsec-cz"]\n'
        '[requirement.title]\ncs = "Ochrana osobních údajů"\nsl = "Varstvo osebnih podatkov"\nen = "Data protection"\n'
        '\n[[requirement]]\nid = "gdpr-si"\ntitle = "Varstvo podatkov"\ntitle_cs = "Ochrana údajů"\ncourses = ["itsec-cz"]\n',
    )
    requirements = {r.id: r for r in load_mappings(folder).requirements}
    table, suffixed = requirements["gdpr"], requirements["gdpr-si"]
    assert [table.title_in(lang) for lang in ("cs", "sl", "en")] == [
        "Ochrana osobních údajů",
        "Varstvo osebnih podatkov",
        "Data protection",
    ]
    assert table.title == "Data protection"  # `title` keeps working: the English one, else the first
    assert [suffixed.title_in(lang) for lang in ("cs", "sl", "en")] == [
        "Ochrana údajů",
        "Varstvo podatkov",
        "Varstvo podatkov",
    ]


def test_a_title_in_an_unknown_language_is_a_mapping_problem(tmp_path: Path) -> None:
    folder = _mappings_with(
        tmp_path,
        '[[requirement]]\nid = "gdpr"\ncourses = ["itsec-cz"]\n[requirement.title]\nde = "Datenschutz"\n',
    )
    result = CliRunner().invoke(main, ["mappings", "check", "--mappings", str(folder)])
    assert result.exit_code == 2
    assert "requirement[gdpr].title.de: is not a language (use cs, sl or en)" in result.output


def test_status_shows_the_title_in_the_chosen_language(ledger: Path) -> None:
    czech = run(
        ledger,
        "--lang",
        "cs",
        "status",
        "--department",
        "jablonec.financi",
        "--requirement",
        "digital-advisor",
    )
    slovene = run(
        ledger,
        "--lang",
        "sl",
        "status",
        "--department",
        "jablonec.financi",
        "--requirement",
        "digital-advisor",
    )
    assert czech.stdout.splitlines()[3].split("  ")[2] == "Digitální poradce"
    assert "Digitalni svetovalec" in slovene.stdout.splitlines()[3]


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "en",
            [
                "31 % of 50 %, 2026",
                "1 of 1 appointed, due by 2026-12-31",
                "not judged in 2027 (even years only)",
            ],
        ),
        (
            "cs",
            [
                "31 % z 50 %, 2026",
                "jmenováno 1 z 1, termín 31. 12. 2026",
                "v roce 2027 se neposuzuje (jen sudé roky)",
            ],
        ),
        (
            "sl",
            [
                "31 % od 50 %, 2026",
                "imenovanih 1 od 1, rok 31. 12. 2026",
                "leta 2027 se ne presoja (samo soda leta)",
            ],
        ),
    ],
)
def test_a_target_judged_in_words_reads_in_each_language(language: str, expected: list[str]) -> None:
    """The rules store a target's figure in English words; readers see it in their language."""
    from connector.reports.words import target_words

    i18n.set_language(language)
    stored = [
        "31 % of 50 %, 2026",
        "1 of 1 appointed, due by 2026-12-31",
        "not judged in 2027 (even years only)",
    ]
    assert [target_words(words) for words in stored] == expected
