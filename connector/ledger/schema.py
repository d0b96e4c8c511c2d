"""The ledger's tables, as the DDL each schema version adds (``migrations.py`` applies them in order).

A version's text never changes once released: a ledger written by it must upgrade the same way.
"""

from __future__ import annotations

V1 = """
CREATE TABLE sync_runs (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    outcome TEXT NOT NULL,              -- running | ok | failed
    mode TEXT NOT NULL,                 -- full | incremental | recompute
    completion_path TEXT,
    as_of TEXT,
    counts TEXT,                        -- JSON
    error TEXT
);
CREATE TABLE courses (
    course_id INTEGER PRIMARY KEY,
    idnumber TEXT, shortname TEXT, fullname TEXT,
    visible INTEGER, completion_enabled INTEGER,
    first_seen_run INTEGER, last_seen_run INTEGER
);
CREATE TABLE people (
    user_id INTEGER PRIMARY KEY,
    username TEXT NOT NULL, idnumber TEXT, fullname TEXT,
    institution TEXT, department_text TEXT, position TEXT,
    cohorts TEXT,                       -- JSON list of cohort idnumbers
    department_id TEXT,                 -- NULL: unplaced
    placement_conflicts TEXT,           -- JSON list when two departments matched
    start_date TEXT,
    lastaccess INTEGER,
    active INTEGER NOT NULL DEFAULT 1,
    suspended INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0,
    first_seen_run INTEGER, last_seen_run INTEGER, first_seen_on TEXT
);
CREATE INDEX people_username ON people(username);
CREATE TABLE enrolments (
    course_id INTEGER NOT NULL, user_id INTEGER NOT NULL,
    lastcourseaccess INTEGER,
    completed INTEGER,                  -- as last read from Moodle; NULL unknown
    checked_run INTEGER,                -- last run that read its completion
    checked_access INTEGER,             -- lastcourseaccess at that read
    first_seen_run INTEGER, last_seen_run INTEGER,
    present INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (course_id, user_id)
);
CREATE TABLE evidence (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL, course_id INTEGER NOT NULL,
    completed_at INTEGER NOT NULL,      -- UTC epoch seconds
    completed_minute INTEGER NOT NULL,  -- identity: the same completion read by two paths
    source TEXT NOT NULL, precision_s INTEGER NOT NULL,
    first_seen_run INTEGER NOT NULL, last_seen_run INTEGER NOT NULL,
    first_seen_at TEXT NOT NULL, last_seen_at TEXT NOT NULL,
    gone_since_run INTEGER,             -- set when a full sync no longer finds it
    UNIQUE (user_id, course_id, completed_minute)
);
CREATE INDEX evidence_user ON evidence(user_id);
CREATE TABLE statuses (
    user_id INTEGER NOT NULL, requirement_id TEXT NOT NULL,
    status TEXT NOT NULL, valid_until TEXT, since TEXT, due TEXT,
    evidence_id INTEGER, completed_on TEXT, detail TEXT,
    as_of TEXT NOT NULL, run_id INTEGER NOT NULL,
    PRIMARY KEY (user_id, requirement_id)
);
CREATE TABLE status_history (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL, requirement_id TEXT NOT NULL,
    from_status TEXT, to_status TEXT NOT NULL,
    changed_on TEXT NOT NULL, run_id INTEGER NOT NULL
);
CREATE INDEX status_history_user ON status_history(user_id);
CREATE TABLE rollups (
    run_id INTEGER NOT NULL, department_id TEXT NOT NULL, requirement_id TEXT NOT NULL,
    in_scope INTEGER, compliant INTEGER, expiring INTEGER, expired INTEGER,
    missing INTEGER, grace INTEGER, exempt INTEGER, holders INTEGER,
    share REAL, targets_met INTEGER, targets TEXT,
    PRIMARY KEY (run_id, department_id, requirement_id)
);
"""

# Per-stream bookmarks (Singer-style) and the audit trail of explicit erasures.
V2 = """
CREATE TABLE bookmarks (stream TEXT PRIMARY KEY, value TEXT NOT NULL, run_id INTEGER);
CREATE TABLE erasures (
    id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, erased_at TEXT NOT NULL,
    reason TEXT NOT NULL, rows_removed INTEGER NOT NULL
);
"""

# Erasure that sticks: a per-ledger salt and the suppression list of erased people, keyed by an
# HMAC of the Moodle user id so neither list names anyone; the erasure audit is re-keyed the same
# way (in migrations.py, which moves the rows). History rows gain the reason a status ended
# without a successor ("dropped").
V3 = """
CREATE TABLE ledger_keys (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE suppressions (subject_key TEXT PRIMARY KEY, since TEXT NOT NULL, erasure_id INTEGER);
ALTER TABLE status_history ADD COLUMN reason TEXT;
CREATE TABLE erasures_v3 (
    id INTEGER PRIMARY KEY, subject_key TEXT NOT NULL, erased_at TEXT NOT NULL,
    reason TEXT NOT NULL, rows_removed INTEGER NOT NULL
);
"""
V3_SWAP = "DROP TABLE erasures; ALTER TABLE erasures_v3 RENAME TO erasures;"

# Indexes for the paths that read one course or one person: a full sync marks gone evidence per
# course, `courses` counts completions per course, erasure and `person` find one person's rows.
# evidence(user_id, completed_at) also serves the evaluation's stream in (user, time) order, so
# the older evidence(user_id) index it makes redundant goes.
V4 = """
CREATE INDEX evidence_course ON evidence(course_id);
CREATE INDEX evidence_user_time ON evidence(user_id, completed_at);
DROP INDEX evidence_user;
CREATE INDEX enrolments_user ON enrolments(user_id);
"""

# Evidence from outside Moodle (attendance lists, outside certificates): each imported file with
# its provenance (source, file name, sha256, the OS user who imported it, when), and its rows. A
# file is removed only by `connector evidence remove`, which deletes its rows and keeps the header
# with who removed it, when and why: the audit of the removal. People gain an e-mail address
# for the `due` mail merge, stored only when [privacy] personal_fields allows it.
V5 = """
CREATE TABLE evidence_imports (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL, file_name TEXT NOT NULL, sha256 TEXT NOT NULL,
    imported_by TEXT NOT NULL, imported_at TEXT NOT NULL, rows INTEGER NOT NULL,
    removed_at TEXT, removed_by TEXT, removed_reason TEXT, rows_removed INTEGER
);
CREATE INDEX evidence_imports_sha256 ON evidence_imports(sha256);
CREATE TABLE imported_evidence (
    id INTEGER PRIMARY KEY,
    import_id INTEGER NOT NULL REFERENCES evidence_imports(id),
    line INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    course TEXT,                        -- a course key of the mappings, or NULL
    requirement_id TEXT,                -- a requirement id, or NULL (exactly one of the two is set)
    completed_on TEXT NOT NULL,         -- local date
    provider TEXT NOT NULL,
    expires_on TEXT                     -- the certificate's own expiry, if any
);
CREATE INDEX imported_evidence_user ON imported_evidence(user_id);
ALTER TABLE people ADD COLUMN email TEXT;   -- kept only when [privacy] personal_fields lists it
"""

# The needs register: needs people declared (a Feedback survey or an imported CSV file, one row
# per person x year x requirement x source) and the saved yearly needs analyses, kept as versions
# (a new save of a year never overwrites one: it supersedes it). The analysis' people rows are keyed
# by Moodle user id so erasure removes them like every other personal row. An imported file may name
# people by idnumber: indexed.
V6 = """
CREATE TABLE declared_needs (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL, year INTEGER NOT NULL, requirement_id TEXT NOT NULL,
    area TEXT NOT NULL,                 -- as declared (the survey's option, the CSV's area)
    source TEXT NOT NULL,               -- "feedback cmid 11", "import interviews.csv", ...
    recorded_at TEXT NOT NULL,
    UNIQUE (user_id, year, requirement_id, source)
);
CREATE INDEX declared_needs_year ON declared_needs(year);
CREATE INDEX declared_needs_user ON declared_needs(user_id);
CREATE TABLE needs_analyses (
    id INTEGER PRIMARY KEY,
    year INTEGER NOT NULL, version INTEGER NOT NULL,
    saved_at TEXT NOT NULL,
    supersedes INTEGER,                 -- the id of the version it replaced as current
    as_of TEXT NOT NULL,                -- the statuses it was computed from
    UNIQUE (year, version)
);
CREATE TABLE needs_analysis_rows (
    analysis_id INTEGER NOT NULL, user_id INTEGER NOT NULL, requirement_id TEXT NOT NULL,
    department_id TEXT, reasons TEXT NOT NULL,  -- "missing", "declared", "expiring, declared", ...
    PRIMARY KEY (analysis_id, user_id, requirement_id)
);
CREATE INDEX needs_analysis_rows_user ON needs_analysis_rows(user_id);
CREATE INDEX people_idnumber ON people(idnumber);
"""

# Incremental evaluation. A status row names the department it counts in (NULL: in no roll-up,
# the person being unplaced or inactive), so roll-ups are one GROUP BY over one covering index.
# Per person, the days over which their stored statuses stay what the rules would say
# (evaluated_people: stable_from..stable_until, ISO dates, both inclusive); the people whose
# evidence or profile changed since (evaluation_dirty), marked by triggers so that every writer
# (a sync, `evidence import`, `erase`) marks without knowing; and what the stored statuses were
# computed with (evaluation_state: the fingerprint of mappings, courses and rules).
V7 = """
ALTER TABLE statuses ADD COLUMN department_id TEXT;
CREATE INDEX statuses_rollup
    ON statuses(department_id, requirement_id, status, evidence_id, valid_until, completed_on, user_id);
CREATE TABLE evaluated_people (
    user_id INTEGER PRIMARY KEY,
    stable_from TEXT NOT NULL, stable_until TEXT NOT NULL
);
CREATE INDEX evaluated_people_from ON evaluated_people(stable_from);
CREATE INDEX evaluated_people_until ON evaluated_people(stable_until);
CREATE TABLE evaluation_dirty (user_id INTEGER PRIMARY KEY);
-- (triggers say NOT EXISTS, not OR IGNORE: the statement that fires them decides their conflict policy;
-- before the first evaluation (no state) the next one evaluates everyone: the bulk inserts of a
-- first sync need not mark anyone)
CREATE TABLE evaluation_state (name TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TRIGGER people_evaluation_insert AFTER INSERT ON people
WHEN EXISTS (SELECT 1 FROM evaluation_state) BEGIN
    INSERT INTO evaluation_dirty (user_id) SELECT new.user_id
        WHERE NOT EXISTS (SELECT 1 FROM evaluation_dirty WHERE user_id = new.user_id);
END;
CREATE TRIGGER people_evaluation_update AFTER UPDATE ON people
WHEN old.user_id IS NOT new.user_id OR old.username IS NOT new.username
    OR old.idnumber IS NOT new.idnumber OR old.department_id IS NOT new.department_id
    OR old.position IS NOT new.position OR old.cohorts IS NOT new.cohorts
    OR old.active IS NOT new.active OR old.start_date IS NOT new.start_date
    OR old.first_seen_on IS NOT new.first_seen_on
BEGIN
    INSERT INTO evaluation_dirty (user_id) SELECT old.user_id
        WHERE NOT EXISTS (SELECT 1 FROM evaluation_dirty WHERE user_id = old.user_id);
    INSERT INTO evaluation_dirty (user_id) SELECT new.user_id
        WHERE NOT EXISTS (SELECT 1 FROM evaluation_dirty WHERE user_id = new.user_id);
END;
-- erase removes the statuses before the person: nothing is left behind that names them; a person
-- removed any other way keeps a mark until the next evaluation drops their statuses
CREATE TRIGGER people_evaluation_delete AFTER DELETE ON people BEGIN
    DELETE FROM evaluated_people WHERE user_id = old.user_id;
    DELETE FROM evaluation_dirty WHERE user_id = old.user_id;
    INSERT INTO evaluation_dirty (user_id)
        SELECT old.user_id WHERE EXISTS (SELECT 1 FROM statuses WHERE user_id = old.user_id);
END;
CREATE TRIGGER evidence_evaluation_insert AFTER INSERT ON evidence
WHEN EXISTS (SELECT 1 FROM evaluation_state) BEGIN
    INSERT INTO evaluation_dirty (user_id) SELECT new.user_id
        WHERE NOT EXISTS (SELECT 1 FROM evaluation_dirty WHERE user_id = new.user_id);
END;
CREATE TRIGGER evidence_evaluation_update AFTER UPDATE ON evidence
WHEN old.user_id IS NOT new.user_id OR old.course_id IS NOT new.course_id
    OR old.completed_at IS NOT new.completed_at OR old.source IS NOT new.source
    OR old.precision_s IS NOT new.precision_s
BEGIN
    INSERT INTO evaluation_dirty (user_id) SELECT old.user_id
        WHERE NOT EXISTS (SELECT 1 FROM evaluation_dirty WHERE user_id = old.user_id);
    INSERT INTO evaluation_dirty (user_id) SELECT new.user_id
        WHERE NOT EXISTS (SELECT 1 FROM evaluation_dirty WHERE user_id = new.user_id);
END;
CREATE TRIGGER evidence_evaluation_delete AFTER DELETE ON evidence BEGIN
    INSERT INTO evaluation_dirty (user_id) SELECT old.user_id
        WHERE NOT EXISTS (SELECT 1 FROM evaluation_dirty WHERE user_id = old.user_id);
END;
CREATE TRIGGER imported_evaluation_insert AFTER INSERT ON imported_evidence BEGIN
    INSERT INTO evaluation_dirty (user_id) SELECT new.user_id
        WHERE NOT EXISTS (SELECT 1 FROM evaluation_dirty WHERE user_id = new.user_id);
END;
CREATE TRIGGER imported_evaluation_update AFTER UPDATE ON imported_evidence BEGIN
    INSERT INTO evaluation_dirty (user_id) SELECT old.user_id
        WHERE NOT EXISTS (SELECT 1 FROM evaluation_dirty WHERE user_id = old.user_id);
    INSERT INTO evaluation_dirty (user_id) SELECT new.user_id
        WHERE NOT EXISTS (SELECT 1 FROM evaluation_dirty WHERE user_id = new.user_id);
END;
CREATE TRIGGER imported_evaluation_delete AFTER DELETE ON imported_evidence BEGIN
    INSERT INTO evaluation_dirty (user_id) SELECT old.user_id
        WHERE NOT EXISTS (SELECT 1 FROM evaluation_dirty WHERE user_id = old.user_id);
END;
"""
