-- The outbox: a delivery per intent, written in the same transaction as the intent; claimed by one
-- node at a time under a lease (a node that dies leaves its lease to expire, and another takes the
-- delivery over); each attempt a row.
CREATE TABLE deliveries (
    intent_seq  BIGINT  PRIMARY KEY,        -- intents.seq
    channel     TEXT    NOT NULL,           -- email | slack | webhook | task | send_invoice
    destination TEXT,                       -- the named destination, when the action has one
    status      TEXT    NOT NULL,           -- pending | delivered | dead | expired | cancelled
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     BIGINT  NOT NULL,           -- not tried before this, microseconds
    expires_at  BIGINT,                     -- not delivered after this
    lease_owner TEXT,                       -- the node trying it …
    lease_until BIGINT,                     -- … until this
    reason      TEXT,                       -- why it is dead, expired or cancelled; the last error
    updated_at  BIGINT  NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (next_at) WHERE status = 'pending';
CREATE INDEX deliveries_by_status ON deliveries (status, intent_seq);

CREATE TABLE delivery_attempts (
    seq         INTEGER PRIMARY KEY,
    intent_seq  BIGINT  NOT NULL,
    attempt     INTEGER NOT NULL,           -- from 1
    node        TEXT    NOT NULL,
    started_at  BIGINT  NOT NULL,
    finished_at BIGINT  NOT NULL,
    outcome     TEXT    NOT NULL,           -- delivered | transient | permanent
    detail      TEXT
);
CREATE INDEX delivery_attempts_by_intent ON delivery_attempts (intent_seq, seq);

-- Intents decided before the outbox existed: pending, with the default expiry (48 hours after they
-- were decided), so that an old one is not sent late.
INSERT INTO deliveries (intent_seq, channel, destination, status, next_at, expires_at, updated_at)
SELECT seq, action, json_extract(body, '$.action.destination'), 'pending', created_at, created_at + 172800000000, created_at FROM intents;
