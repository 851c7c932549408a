-- What rules decided: action intents with their provenance (the outbox delivers them), the
-- failures of rule evaluations, and how far the change events have been evaluated.
CREATE TABLE intents (
    seq        INTEGER PRIMARY KEY,
    key        TEXT    NOT NULL UNIQUE,     -- idempotency: rule, change event (or slot) and action
    rule       TEXT    NOT NULL,
    version    TEXT    NOT NULL,            -- hash of the rule file that decided it
    kind       TEXT    NOT NULL,
    account    TEXT    NOT NULL,
    record_id  TEXT    NOT NULL,
    action     TEXT    NOT NULL,            -- email | slack | webhook | task | send_invoice
    body       TEXT    NOT NULL,            -- the intent, JSON: cause, values seen, action
    created_at BIGINT  NOT NULL             -- microseconds since the epoch
);
CREATE INDEX intents_by_record ON intents (kind, account, record_id, seq);
CREATE INDEX intents_by_rule ON intents (rule, seq);

CREATE TABLE rule_failures (
    seq        INTEGER PRIMARY KEY,
    rule       TEXT    NOT NULL,
    version    TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    account    TEXT    NOT NULL,
    record_id  TEXT    NOT NULL,
    cause      TEXT    NOT NULL,            -- JSON
    message    TEXT    NOT NULL,
    is_limit   BOOLEAN NOT NULL,                 -- a sandbox limit rather than a script mistake
    created_at BIGINT  NOT NULL
);
CREATE INDEX rule_failures_by_rule ON rule_failures (rule, seq);

CREATE TABLE cursors (
    name TEXT   PRIMARY KEY,                -- rules: the last change event evaluated
    seq  BIGINT NOT NULL
);

-- Scheduled rules: the records a rule matched at its last slot. A record fires again only on a
-- not-matching → matching transition (HubSpot's re-enrollment): a row appears when it starts
-- matching and goes when it stops.
CREATE TABLE enrollments (
    rule      TEXT   NOT NULL,
    kind      TEXT   NOT NULL,
    account   TEXT   NOT NULL,
    record_id TEXT   NOT NULL,
    since     BIGINT NOT NULL,                -- the slot it started matching at, microseconds
    PRIMARY KEY (rule, kind, account, record_id)
);
