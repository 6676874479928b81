"""The lab's schema on PostgreSQL: the same tables, versions and refusals as on SQLite.

Each version here makes what the SQLite migration of the same number makes (runtime.schema),
in PostgreSQL's words: identity columns for row ids, double precision for times, a JSON
check by cast, and the append-only refusals as triggers on one shared function. The
event log also refuses TRUNCATE, which SQLite does not have.

`fmlab_meta` stands for SQLite's `application_id` and `user_version` pragmas, and holds the
event log's head, the last seq handed out, and the last id of each table keyed by `id`. A
writer takes the next number by updating that row, so it holds the row until it commits:
numbers are gap-free (a rolled-back transaction gives its numbers back, where a sequence
would burn them) and seqs commit in order (a reader that sees seq n has seen every seq
before it), as on SQLite, where one writer at a time is the rule. So a seed's run takes
the same ids and seqs on both backends, and prints the same timeline.
"""

APPLICATION = "failure-mode-lab"

META = """
CREATE TABLE fmlab_meta (
    one            BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    application    TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    last_seq       BIGINT  NOT NULL DEFAULT 0,
    last_jobs      BIGINT  NOT NULL DEFAULT 0,
    last_executions BIGINT NOT NULL DEFAULT 0,
    last_effects   BIGINT  NOT NULL DEFAULT 0,
    last_intents   BIGINT  NOT NULL DEFAULT 0,
    last_tickets   BIGINT  NOT NULL DEFAULT 0
);
CREATE FUNCTION fmlab_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'integrity_constraint_violation';
END
$$;
"""
"""Made once, before migration 1, with the row that says whose database this is."""

MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE jobs (
        id              BIGINT  PRIMARY KEY,
        kind            TEXT    NOT NULL,
        payload         TEXT    NOT NULL CHECK (payload::jsonb IS NOT NULL),
        idempotency_key TEXT    UNIQUE,
        state           TEXT    NOT NULL
                        CHECK (state IN ('PENDING', 'RUNNING', 'SUCCEEDED', 'DEAD')),
        attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        max_attempts    INTEGER NOT NULL CHECK (max_attempts >= 1),
        run_at          DOUBLE PRECISION NOT NULL,
        fencing_token   BIGINT  NOT NULL DEFAULT 0,
        last_error      TEXT,
        created_at      DOUBLE PRECISION NOT NULL,
        updated_at      DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX jobs_ready ON jobs (state, run_at, id);

    CREATE TABLE executions (
        id               BIGINT  PRIMARY KEY,
        job_id           BIGINT  NOT NULL REFERENCES jobs (id),
        attempt          INTEGER NOT NULL,
        worker           TEXT    NOT NULL,
        fencing_token    BIGINT  NOT NULL,
        lease_expires_at DOUBLE PRECISION NOT NULL,
        status           TEXT    NOT NULL CHECK (status IN
                         ('LEASED', 'IN_PROGRESS', 'COMMITTED', 'DONE', 'ABORTED', 'FAILED')),
        error            TEXT,
        started_at       DOUBLE PRECISION NOT NULL,
        finished_at      DOUBLE PRECISION,
        UNIQUE (job_id, fencing_token)
    );
    CREATE INDEX executions_open ON executions (status, lease_expires_at);

    CREATE TABLE effects (
        id           BIGINT  PRIMARY KEY,
        sink         TEXT   NOT NULL,
        key          TEXT   NOT NULL,
        job_id       BIGINT NOT NULL REFERENCES jobs (id),
        execution_id BIGINT NOT NULL REFERENCES executions (id),
        detail       TEXT   NOT NULL CHECK (detail::jsonb IS NOT NULL),
        at           DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX effects_by_key ON effects (sink, key);

    CREATE TABLE events (
        seq          BIGINT PRIMARY KEY,
        at           DOUBLE PRECISION NOT NULL,
        type         TEXT   NOT NULL,
        job_id       BIGINT,
        execution_id BIGINT,
        worker       TEXT,
        detail       TEXT   NOT NULL CHECK (detail::jsonb IS NOT NULL)
    );
    CREATE TRIGGER events_are_append_only_update BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION fmlab_refuse('events are append-only: UPDATE refused');
    CREATE TRIGGER events_are_append_only_delete BEFORE DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION fmlab_refuse('events are append-only: DELETE refused');
    CREATE TRIGGER events_are_append_only_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION fmlab_refuse('events are append-only: TRUNCATE refused');
    """,
    2: """
    CREATE TABLE accounts (
        name           TEXT   PRIMARY KEY,
        balance        BIGINT NOT NULL,
        version        BIGINT NOT NULL DEFAULT 0 CHECK (version >= 0),
        opened_balance BIGINT NOT NULL
    );
    """,
    3: """
    CREATE TABLE intents (
        id          BIGINT  PRIMARY KEY,
        type        TEXT   NOT NULL CHECK (length(trim(type)) > 0),
        payload     TEXT   NOT NULL CHECK (payload::jsonb IS NOT NULL),
        recorded_at DOUBLE PRECISION NOT NULL
    );
    CREATE TRIGGER intents_are_append_only_update BEFORE UPDATE ON intents
    FOR EACH ROW EXECUTE FUNCTION fmlab_refuse('intents are append-only: UPDATE refused');
    CREATE TRIGGER intents_are_append_only_delete BEFORE DELETE ON intents
    FOR EACH ROW EXECUTE FUNCTION fmlab_refuse('intents are append-only: DELETE refused');
    """,
    4: """
    CREATE TABLE failure_clusters (
        type         TEXT   NOT NULL,
        window_start DOUBLE PRECISION NOT NULL,
        window_end   DOUBLE PRECISION NOT NULL,
        failures     BIGINT NOT NULL CHECK (failures > 0),
        first_seq    BIGINT NOT NULL,
        last_seq     BIGINT NOT NULL,
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
        id         BIGINT  PRIMARY KEY,
        subject    TEXT    NOT NULL CHECK (length(trim(subject)) > 0),
        message    TEXT    NOT NULL CHECK (length(trim(message)) > 0),
        status     TEXT    NOT NULL CHECK (status IN ('open', 'in_progress', 'closed')),
        note       TEXT,
        version    BIGINT  NOT NULL CHECK (version >= 1),
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL
    );
    CREATE TRIGGER tickets_version_grows BEFORE UPDATE ON tickets
    FOR EACH ROW WHEN (NEW.version <= OLD.version)
    EXECUTE FUNCTION fmlab_refuse('a ticket''s version only grows');
    CREATE TRIGGER tickets_stay_closed BEFORE UPDATE ON tickets
    FOR EACH ROW WHEN (OLD.status = 'closed')
    EXECUTE FUNCTION fmlab_refuse('a closed ticket is never changed again');

    CREATE TABLE ticket_changes (
        ticket_id BIGINT NOT NULL REFERENCES tickets (id),
        version   BIGINT NOT NULL,
        command   TEXT   NOT NULL,
        at        DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (ticket_id, version)
    );
    CREATE TRIGGER ticket_changes_are_append_only_update BEFORE UPDATE ON ticket_changes
    FOR EACH ROW EXECUTE FUNCTION fmlab_refuse('ticket changes are append-only: UPDATE refused');
    CREATE TRIGGER ticket_changes_are_append_only_delete BEFORE DELETE ON ticket_changes
    FOR EACH ROW EXECUTE FUNCTION fmlab_refuse('ticket changes are append-only: DELETE refused');

    CREATE TABLE ticket_views (
        id             BIGINT  PRIMARY KEY,
        subject        TEXT    NOT NULL,
        status         TEXT    NOT NULL,
        preview        TEXT    NOT NULL,
        has_note       INTEGER NOT NULL CHECK (has_note IN (0, 1)),
        version        BIGINT  NOT NULL,
        schema_version INTEGER NOT NULL,
        updated_at     DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE ticket_status_counts (
        status  TEXT   PRIMARY KEY,
        tickets BIGINT NOT NULL
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
    # As on SQLite, the open executions alone: this index held every execution ever made.
    8: """
    DROP INDEX executions_open;
    CREATE INDEX executions_open ON executions (lease_expires_at) WHERE finished_at IS NULL;
    """,
}

NUMBERED = ("jobs", "executions", "effects", "intents", "tickets")
"""The tables whose ids come from `fmlab_meta` (column `last_<table>`)."""

TABLES = (
    "jobs",
    "executions",
    "effects",
    "events",
    "accounts",
    "intents",
    "failure_clusters",
    "severities",
    "tickets",
    "ticket_changes",
    "ticket_views",
    "ticket_status_counts",
)
"""Every table the migrations make, for `PgStore.wipe`."""
