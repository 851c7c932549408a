-- Scheduled rules' slots that were not run (the engine was down; catch-up policy), each with why:
-- the audit row of a skipped slot.
CREATE TABLE slot_skips (
    seq        INTEGER PRIMARY KEY,
    rule       TEXT    NOT NULL,
    slot       BIGINT  NOT NULL,            -- microseconds
    zone       TEXT,                        -- the companies' zone it was for; NULL: every company
    reason     TEXT    NOT NULL,
    decided_at BIGINT  NOT NULL
);
CREATE INDEX slot_skips_by_rule ON slot_skips (rule, slot);
