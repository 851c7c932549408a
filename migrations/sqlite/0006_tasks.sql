-- The task manager (QuickBooks has no public API for its own): tasks made by rules and workflows
-- (one per delivery, by its key) or by hand; open until done, or, for approval tasks, approved or
-- rejected.
CREATE TABLE tasks (
    id          INTEGER PRIMARY KEY,
    key         TEXT    UNIQUE,             -- the delivery that made it; NULL when made by hand
    title       TEXT    NOT NULL,
    notes       TEXT,
    assignee    TEXT,
    due         TEXT,                       -- YYYY-MM-DD
    approval    BOOLEAN NOT NULL,           -- approve / reject rather than done
    status      TEXT    NOT NULL,           -- open | done | approved | rejected
    kind        TEXT,                       -- the record it is about, when there is one
    account     TEXT,
    record_id   TEXT,
    source      TEXT    NOT NULL,           -- rule:ID, workflow:NAME, or manual
    created_at  BIGINT  NOT NULL,
    closed_at   BIGINT,
    closed_by   TEXT,
    comment     TEXT                        -- why it was rejected, or a note on closing
);
CREATE INDEX tasks_by_status ON tasks (status, due, id);
CREATE INDEX tasks_by_record ON tasks (kind, account, record_id);
