-- QuickBooks companies connected by `invoiceflow quickbooks connect` (OAuth 2): their tokens, their
-- state, and how far their changes are synced. Shared by every node. Times in microseconds.
CREATE TABLE quickbooks_connections (
    company            TEXT   PRIMARY KEY,           -- the [quickbooks.NAME] it is
    realm_id           TEXT   NOT NULL UNIQUE,
    state              TEXT   NOT NULL,              -- connected | needs_reconnect
    reason             TEXT,                         -- why it needs reconnecting
    access_token       TEXT,
    access_expires_at  BIGINT,
    refresh_token      TEXT,
    refresh_expires_at BIGINT,
    token_version      BIGINT NOT NULL DEFAULT 0,    -- bumped by every new pair of tokens
    refresh_owner      TEXT,                         -- the node refreshing them, until refresh_until:
    refresh_until      BIGINT,                       -- one refresh in flight per company
    connected_at       BIGINT NOT NULL,
    synced_through     BIGINT,                       -- change data capture: applied up to here
    last_sync_at       BIGINT,
    last_webhook_at    BIGINT,
    last_error         TEXT,
    last_error_at      BIGINT,
    errors             BIGINT NOT NULL DEFAULT 0,
    updated_at         BIGINT NOT NULL
);

-- Webhook notifications, written before QuickBooks is answered: the entities to fetch. A
-- notification received twice (the same entity, operation and time) is kept once.
CREATE TABLE quickbooks_inbox (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    realm_id     TEXT    NOT NULL,
    entity       TEXT    NOT NULL,                   -- Invoice, Bill, Payment, Deposit
    entity_id    TEXT    NOT NULL,
    operation    TEXT    NOT NULL,                   -- Create, Update, Delete, Merge, Void, Emailed
    last_updated BIGINT  NOT NULL,                   -- QuickBooks' time; 0 when not given
    received_at  BIGINT  NOT NULL,
    status       TEXT    NOT NULL DEFAULT 'pending', -- pending | done
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      BIGINT  NOT NULL,
    lease_owner  TEXT,
    lease_until  BIGINT,
    last_error   TEXT,
    done_at      BIGINT,
    UNIQUE (realm_id, entity, entity_id, operation, last_updated)
);
CREATE INDEX quickbooks_inbox_due ON quickbooks_inbox (next_at) WHERE status = 'pending';
