-- Records, their history and their links (SQLite).
CREATE TABLE records (
    kind       TEXT    NOT NULL,            -- invoice | bill | payment | deposit
    account    TEXT    NOT NULL,            -- the QuickBooks company
    id         TEXT    NOT NULL,            -- its id there
    status     TEXT    NOT NULL,            -- as last recorded (import or refresh)
    due_date   TEXT,                        -- YYYY-MM-DD
    updated_at INTEGER NOT NULL,            -- source time, microseconds since the epoch
    currency   TEXT    NOT NULL,
    body       TEXT    NOT NULL,            -- the whole record, JSON
    PRIMARY KEY (kind, account, id)
);
CREATE INDEX records_by_status_due ON records (status, due_date);

CREATE TABLE events (
    seq         INTEGER PRIMARY KEY,
    kind        TEXT    NOT NULL,
    account     TEXT    NOT NULL,
    record_id   TEXT    NOT NULL,
    property    TEXT    NOT NULL,
    old_value   TEXT,
    new_value   TEXT,
    source_time INTEGER NOT NULL,
    ingest_time INTEGER NOT NULL
);
CREATE INDEX events_by_record ON events (kind, account, record_id, seq);

CREATE TABLE links (
    holder_kind TEXT NOT NULL,              -- deal | contact | company
    holder_id   TEXT NOT NULL,
    account     TEXT NOT NULL,
    invoice_id  TEXT NOT NULL,
    origin      TEXT NOT NULL CHECK (origin IN ('record', 'manual')),
    PRIMARY KEY (holder_kind, holder_id, account, invoice_id)
) WITHOUT ROWID;
CREATE INDEX links_by_invoice ON links (account, invoice_id);

CREATE TABLE deposit_payments (
    account    TEXT NOT NULL,
    deposit_id TEXT NOT NULL,
    payment_id TEXT NOT NULL,
    PRIMARY KEY (account, deposit_id, payment_id)
) WITHOUT ROWID;
CREATE INDEX deposit_payments_by_payment ON deposit_payments (account, payment_id);
