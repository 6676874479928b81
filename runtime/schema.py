"""The lab's schema on SQLite: its tables, in numbered migrations, and how a database is
brought up to the newest.

A migration is a script of statements, applied in one transaction with the version it
makes (`PRAGMA user_version`) and the mark that the file is this lab's (`PRAGMA
application_id`), so a database is at one version or the next, never between. runtime.pg_schema
makes the same versions on PostgreSQL.
"""

import sqlite3

APPLICATION_ID = 0x464D4C42  # "FMLB": marks a database as this lab's.

MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE jobs (
        id              INTEGER PRIMARY KEY,
        kind            TEXT    NOT NULL,
        payload         TEXT    NOT NULL CHECK (json_valid(payload)),
        idempotency_key TEXT    UNIQUE,
        state           TEXT    NOT NULL
                        CHECK (state IN ('PENDING', 'RUNNING', 'SUCCEEDED', 'DEAD')),
        attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        max_attempts    INTEGER NOT NULL CHECK (max_attempts >= 1),
        run_at          REAL    NOT NULL,
        fencing_token   INTEGER NOT NULL DEFAULT 0,
        last_error      TEXT,
        created_at      REAL    NOT NULL,
        updated_at      REAL    NOT NULL
    );
    CREATE INDEX jobs_ready ON jobs (state, run_at, id);

    CREATE TABLE executions (
        id               INTEGER PRIMARY KEY,
        job_id           INTEGER NOT NULL REFERENCES jobs (id),
        attempt          INTEGER NOT NULL,
        worker           TEXT    NOT NULL,
        fencing_token    INTEGER NOT NULL,
        lease_expires_at REAL    NOT NULL,
        status           TEXT    NOT NULL CHECK (status IN
                         ('LEASED', 'IN_PROGRESS', 'COMMITTED', 'DONE', 'ABORTED', 'FAILED')),
        error            TEXT,
        started_at       REAL    NOT NULL,
        finished_at      REAL,
        UNIQUE (job_id, fencing_token)
    );

    CREATE TABLE effects (
        id           INTEGER PRIMARY KEY,
        sink         TEXT    NOT NULL,
        key          TEXT    NOT NULL,
        job_id       INTEGER NOT NULL REFERENCES jobs (id),
        execution_id INTEGER NOT NULL REFERENCES executions (id),
        detail       TEXT    NOT NULL CHECK (json_valid(detail)),
        at           REAL    NOT NULL
    );
    CREATE INDEX effects_by_key ON effects (sink, key);

    CREATE TABLE events (
        seq          INTEGER PRIMARY KEY,
        at           REAL    NOT NULL,
        type         TEXT    NOT NULL,
        job_id       INTEGER,
        execution_id INTEGER,
        worker       TEXT,
        detail       TEXT    NOT NULL CHECK (json_valid(detail))
    );
    CREATE TRIGGER events_are_append_only_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only: UPDATE refused'); END;
    CREATE TRIGGER events_are_append_only_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only: DELETE refused'); END;
    """,
    2: """
    CREATE TABLE accounts (
        name           TEXT    PRIMARY KEY,
        balance        INTEGER NOT NULL,
        version        INTEGER NOT NULL DEFAULT 0 CHECK (version >= 0),
        opened_balance INTEGER NOT NULL
    );
    """,
    3: """
    CREATE TABLE intents (
        id          INTEGER PRIMARY KEY,
        type        TEXT    NOT NULL CHECK (length(trim(type)) > 0),
        payload     TEXT    NOT NULL CHECK (json_valid(payload)),
        recorded_at REAL    NOT NULL
    );
    CREATE TRIGGER intents_are_append_only_update BEFORE UPDATE ON intents
    BEGIN SELECT RAISE(ABORT, 'intents are append-only: UPDATE refused'); END;
    CREATE TRIGGER intents_are_append_only_delete BEFORE DELETE ON intents
    BEGIN SELECT RAISE(ABORT, 'intents are append-only: DELETE refused'); END;
    """,
    4: """
    CREATE TABLE failure_clusters (
        type         TEXT    NOT NULL,
        window_start REAL    NOT NULL,
        window_end   REAL    NOT NULL,
        failures     INTEGER NOT NULL CHECK (failures > 0),
        first_seq    INTEGER NOT NULL,
        last_seq     INTEGER NOT NULL,
        PRIMARY KEY (type, window_start)
    );
    CREATE TABLE severities (
        subject TEXT NOT NULL CHECK (subject IN ('event', 'cluster', 'type')),
        ref     TEXT NOT NULL,
        level   TEXT NOT NULL CHECK (level IN ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL')),
        reason  TEXT NOT NULL,
        PRIMARY KEY (subject, ref)
    );
    """,
    5: """
    CREATE TABLE tickets (
        id         INTEGER PRIMARY KEY,
        subject    TEXT    NOT NULL CHECK (length(trim(subject)) > 0),
        message    TEXT    NOT NULL CHECK (length(trim(message)) > 0),
        status     TEXT    NOT NULL CHECK (status IN ('open', 'in_progress', 'closed')),
        note       TEXT,
        version    INTEGER NOT NULL CHECK (version >= 1),
        created_at REAL    NOT NULL,
        updated_at REAL    NOT NULL
    );
    CREATE TRIGGER tickets_version_grows BEFORE UPDATE ON tickets
    WHEN NEW.version <= OLD.version
    BEGIN SELECT RAISE(ABORT, 'a ticket''s version only grows'); END;
    CREATE TRIGGER tickets_stay_closed BEFORE UPDATE ON tickets
    WHEN OLD.status = 'closed'
    BEGIN SELECT RAISE(ABORT, 'a closed ticket is never changed again'); END;

    CREATE TABLE ticket_changes (
        ticket_id  INTEGER NOT NULL REFERENCES tickets (id),
        version    INTEGER NOT NULL,
        command    TEXT    NOT NULL,
        at         REAL    NOT NULL,
        PRIMARY KEY (ticket_id, version)
    ) WITHOUT ROWID;
    CREATE TRIGGER ticket_changes_are_append_only_update BEFORE UPDATE ON ticket_changes
    BEGIN SELECT RAISE(ABORT, 'ticket changes are append-only: UPDATE refused'); END;
    CREATE TRIGGER ticket_changes_are_append_only_delete BEFORE DELETE ON ticket_changes
    BEGIN SELECT RAISE(ABORT, 'ticket changes are append-only: DELETE refused'); END;

    CREATE TABLE ticket_views (
        id             INTEGER PRIMARY KEY,
        subject        TEXT    NOT NULL,
        status         TEXT    NOT NULL,
        preview        TEXT    NOT NULL,
        has_note       INTEGER NOT NULL CHECK (has_note IN (0, 1)),
        version        INTEGER NOT NULL,
        schema_version INTEGER NOT NULL,
        updated_at     REAL    NOT NULL
    );
    CREATE TABLE ticket_status_counts (
        status  TEXT    PRIMARY KEY,
        tickets INTEGER NOT NULL
    );
    """,
    6: """
    ALTER TABLE tickets ADD COLUMN idempotency_key TEXT;
    CREATE UNIQUE INDEX tickets_by_idempotency_key ON tickets (idempotency_key);
    """,
    # Only ready work is looked up by its time: an index of the PENDING jobs alone is
    # written when a job is submitted and when it is leased, not at every move.
    7: """
    DROP INDEX jobs_ready;
    CREATE INDEX jobs_ready ON jobs (run_at, id) WHERE state = 'PENDING';
    """,
    # The reaper and the scheduler look for open leases by their deadline. With no index
    # on it, finding the next deadline read every execution ever made (3 ms at 50,000),
    # and so did each worker's look for an expired lease once the ready-jobs index (7)
    # no longer led to the RUNNING jobs. This one holds the open executions alone: those
    # not finished, the one column that changes only when an execution closes, so the
    # moves between open states (leased, in progress, committed) leave the index alone.
    8: """
    CREATE INDEX executions_open ON executions (lease_expires_at) WHERE finished_at IS NULL;
    """,
}
SCHEMA_VERSION = max(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema up to SCHEMA_VERSION, one migration per transaction."""
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    for version in range(current + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in statements(MIGRATIONS[version]):
                conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {version}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def statements(script: str) -> list[str]:
    """Split a migration into statements, keeping trigger bodies whole."""
    found, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            found.append(buffer.strip())
            buffer = ""
    assert not buffer.strip(), f"incomplete statement in migration: {buffer!r}"
    return found
