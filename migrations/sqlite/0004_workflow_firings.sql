-- The reminder workflows: which records fall due on a day is found from their anchor dates (due
-- date, or invoice/payment date), and every firing decided is written once to a ledger, sent or
-- skipped with the reason: its audit row.
ALTER TABLE records ADD COLUMN txn_date TEXT;   -- YYYY-MM-DD
UPDATE records SET txn_date = body->>'txn_date';
-- One status and one date at a time, the index gives the records in key order: pages need no sort.
DROP INDEX IF EXISTS records_by_status_due;   -- IF EXISTS: a killed bulk import may have set it aside
CREATE INDEX records_by_status_due ON records (status, due_date, account, id);
CREATE INDEX records_by_status_txn ON records (status, txn_date, account, id);

CREATE TABLE firings (
    key        TEXT    PRIMARY KEY,         -- idempotency: workflow, record, step, nominal local date
    workflow   TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    account    TEXT    NOT NULL,
    record_id  TEXT    NOT NULL,
    step       TEXT    NOT NULL,            -- stage-1, repeat-2…
    nominal    TEXT    NOT NULL,            -- the local date it is keyed by
    due_at     BIGINT  NOT NULL,            -- when it fell due (in the send window), microseconds
    expires_at BIGINT,                      -- sent: not worth delivering after this
    sent       BOOLEAN NOT NULL,            -- false: skipped
    reason     TEXT,                        -- skipped: why
    decided_at BIGINT  NOT NULL
);
-- A step is sent once per record, whatever its date becomes: a due date moved later re-plans the
-- steps still ahead and never sends one again. (A step skipped on one date may be decided again
-- on another: its key differs.)
CREATE UNIQUE INDEX firings_once_per_step ON firings (workflow, kind, account, record_id, step) WHERE sent;
CREATE INDEX firings_by_decision ON firings (decided_at);
