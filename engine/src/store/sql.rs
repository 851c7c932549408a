//! The store's SQL. One text per query for both backends (`$N` placeholders work in both); only
//! the expansion of a JSON array of rows differs: SQLite's `jsonb_each($1)`, PostgreSQL's
//! `jsonb_array_elements(CAST($1 AS jsonb))`. Batches bind one JSON array instead of thousands of
//! parameters, so every statement text is fixed and prepared once.

/// One query in both dialects.
pub(crate) struct Sql {
    pub(crate) sqlite: &'static str,
    pub(crate) postgres: &'static str,
}

impl Sql {
    /// The same text for both backends.
    const fn both(text: &'static str) -> Self {
        Self { sqlite: text, postgres: text }
    }
}

macro_rules! rows_sql {
    ($(#[$doc:meta])* $name:ident = $before:literal ROWS $after:literal) => {
        $(#[$doc])*
        pub(crate) const $name: Sql = Sql {
            sqlite: concat!($before, "jsonb_each($1)", $after),
            postgres: concat!($before, "jsonb_array_elements(CAST($1 AS jsonb))", $after),
        };
    };
}

macro_rules! dual_sql {
    ($(#[$doc:meta])* $name:ident = sqlite: $sqlite:literal, postgres: $postgres:literal) => {
        $(#[$doc])*
        pub(crate) const $name: Sql = Sql { sqlite: $sqlite, postgres: $postgres };
    };
}

macro_rules! plain_sql {
    ($(#[$doc:meta])* $name:ident = $text:literal) => {
        $(#[$doc])*
        pub(crate) const $name: Sql = Sql { sqlite: $text, postgres: $text };
    };
}

// PostgreSQL looks keys up with `CROSS JOIN LATERAL`: one index probe per key by construction.
// A plain join lets the planner pick a scan of the whole table per key while statistics are still
// missing (a bulk import into a fresh table), which costs seconds per batch.
dual_sql!(
    /// Stored records for `[kind, account, id]` keys.
    LOAD = sqlite: "SELECT r.kind, r.status, r.body FROM jsonb_each($1) k JOIN records r \
    ON r.kind = k.value->>0 AND r.account = k.value->>1 AND r.id = k.value->>2",
    postgres: "SELECT r.kind, r.status, r.body FROM jsonb_array_elements(CAST($1 AS jsonb)) k CROSS JOIN LATERAL \
    (SELECT kind, status, body FROM records WHERE kind = k.value->>0 AND account = k.value->>1 AND id = k.value->>2) r"
);
dual_sql!(
    /// Which of the `[account, payment_id]` payments a stored deposit deposits.
    LOAD_DEPOSITED = sqlite: "SELECT d.account, d.payment_id FROM jsonb_each($1) k JOIN deposit_payments d \
    ON d.account = k.value->>0 AND d.payment_id = k.value->>1",
    postgres: "SELECT d.account, d.payment_id FROM jsonb_array_elements(CAST($1 AS jsonb)) k CROSS JOIN LATERAL \
    (SELECT account, payment_id FROM deposit_payments WHERE account = k.value->>0 AND payment_id = k.value->>1) d"
);
/// SQLite's record upsert: one JSON array of `Row` objects. (Binding thousands of `$N`
/// parameters is quadratic in SQLite, so it is not done there.)
pub(crate) const SQLITE_UPSERT: &str = "INSERT INTO records (kind, account, id, status, due_date, txn_date, \
    updated_at, currency, body, deal_id, contact_id, company_id) \
    SELECT k.value->>'kind', k.value->>'account', k.value->>'id', k.value->>'status', k.value->>'due_date', \
    k.value->>'txn_date', CAST(k.value->>'updated_at' AS BIGINT), k.value->>'currency', k.value->>'body', k.value->>'deal_id', \
    k.value->>'contact_id', k.value->>'company_id' FROM jsonb_each($1) k WHERE true \
    ON CONFLICT (kind, account, id) DO UPDATE SET status = excluded.status, due_date = excluded.due_date, \
    txn_date = excluded.txn_date, updated_at = excluded.updated_at, currency = excluded.currency, body = excluded.body, deal_id = excluded.deal_id, \
    contact_id = excluded.contact_id, company_id = excluded.company_id";

/// Parameters per row of [`postgres_upsert`].
pub(crate) const POSTGRES_ROW_PARAMS: usize = 12;

/// PostgreSQL's record upsert of `rows` records, bound as multi-row `VALUES`
/// ([`POSTGRES_ROW_PARAMS`] parameters a row).
pub(crate) fn postgres_upsert(rows: usize) -> String {
    use std::fmt::Write as _;
    let mut sql = String::from(
        "INSERT INTO records (kind, account, id, status, due_date, txn_date, updated_at, currency, body, deal_id, \
        contact_id, company_id) VALUES ",
    );
    for r in 0..rows {
        sql.push_str(if r > 0 { ",(" } else { "(" });
        for c in 1..=POSTGRES_ROW_PARAMS {
            let sep = if c < POSTGRES_ROW_PARAMS { "," } else { ")" };
            let _ = write!(sql, "${}{sep}", r * POSTGRES_ROW_PARAMS + c);
        }
    }
    sql.push_str(
        " ON CONFLICT (kind, account, id) DO UPDATE SET status = excluded.status, due_date = excluded.due_date, \
        txn_date = excluded.txn_date, updated_at = excluded.updated_at, currency = excluded.currency, body = excluded.body, \
        deal_id = excluded.deal_id, contact_id = excluded.contact_id, company_id = excluded.company_id",
    );
    sql
}

rows_sql!(
    /// Inserts `[kind, account, id, property, old, new, source_time]` events at ingest time `$2`.
    INSERT_EVENTS = "INSERT INTO events (kind, account, record_id, property, old_value, new_value, source_time, ingest_time) \
    SELECT k.value->>0, k.value->>1, k.value->>2, k.value->>3, k.value->>4, k.value->>5, CAST(k.value->>6 AS BIGINT), $2 FROM "
    ROWS " k"
);
dual_sql!(
    /// Forgets the hand-made unlinks of `[holder_kind, account, invoice_id]`: the invoice's own field
    /// for that kind of holder changed, and the new value links again.
    CLEAR_UNLINKS = sqlite: "DELETE FROM manual_links WHERE NOT linked AND (holder_kind, account, invoice_id) IN \
    (SELECT k.value->>0, k.value->>1, k.value->>2 FROM jsonb_each($1) k)",
    postgres: "DELETE FROM manual_links WHERE ctid IN (SELECT m.ctid FROM jsonb_array_elements(CAST($1 AS jsonb)) k \
    CROSS JOIN LATERAL (SELECT ctid FROM manual_links WHERE NOT linked AND holder_kind = k.value->>0 \
    AND account = k.value->>1 AND invoice_id = k.value->>2) m)"
);
dual_sql!(
    /// Forgets what the `[account, deposit_id]` deposits deposited.
    CLEAR_DEPOSITS = sqlite: "DELETE FROM deposit_payments WHERE (account, deposit_id) IN \
    (SELECT k.value->>0, k.value->>1 FROM jsonb_each($1) k)",
    postgres: "DELETE FROM deposit_payments WHERE ctid IN (SELECT d.ctid FROM jsonb_array_elements(CAST($1 AS jsonb)) k \
    CROSS JOIN LATERAL (SELECT ctid FROM deposit_payments WHERE account = k.value->>0 AND deposit_id = k.value->>1) d)"
);
rows_sql!(
    /// Records `[account, deposit_id, payment_id]`.
    ADD_DEPOSITS = "INSERT INTO deposit_payments (account, deposit_id, payment_id) \
    SELECT k.value->>0, k.value->>1, k.value->>2 FROM "
    ROWS " k WHERE true ON CONFLICT DO NOTHING"
);
plain_sql!(
    /// Every company with stored records.
    ACCOUNTS = "SELECT DISTINCT account FROM records ORDER BY account"
);
plain_sql!(
    /// Invoices and bills of company `$1` whose status may have changed with time on day `$2`.
    REFRESH_CANDIDATES = "SELECT kind, status, body FROM records WHERE account = $1 \
    AND kind IN ('invoice', 'bill') AND ((status IN ('awaiting_send', 'sent', 'partially_paid', 'open') AND due_date < $2) \
    OR (status = 'overdue' AND due_date >= $2))"
);
plain_sql!(
    /// A page of invoices, optionally of company `$1`, after `($2, $3)`, at most `$4`.
    INVOICES = "SELECT r.kind, r.status, r.body FROM records r WHERE r.kind = 'invoice' \
    AND ($1 IS NULL OR r.account = $1) AND (r.account, r.id) > ($2, $3) \
    ORDER BY r.account, r.id LIMIT $4"
);
macro_rules! holder_invoices_sql {
    ($(#[$doc:meta])* $name:ident = $kind:literal, $column:literal) => {
        $(#[$doc])*
        pub(crate) const $name: Sql = Sql::both(concat!(
                "SELECT r.account, r.id, r.kind, r.status, r.body FROM records r WHERE r.kind = 'invoice' AND r.",
                $column,
                " = $5 AND ($1 IS NULL OR r.account = $1) AND (r.account, r.id) > ($2, $3) \
                AND NOT EXISTS (SELECT 1 FROM manual_links m WHERE m.holder_kind = '",
                $kind,
                "' AND m.holder_id = $5 AND m.account = r.account AND m.invoice_id = r.id AND NOT m.linked) \
                UNION SELECT r.account, r.id, r.kind, r.status, r.body FROM manual_links m JOIN records r \
                ON r.kind = 'invoice' AND r.account = m.account AND r.id = m.invoice_id \
                WHERE m.holder_kind = '",
                $kind,
                "' AND m.holder_id = $5 AND m.linked AND ($1 IS NULL OR r.account = $1) \
                AND (r.account, r.id) > ($2, $3) ORDER BY 1, 2 LIMIT $4"
        ));
    };
}
holder_invoices_sql!(
    /// Like `INVOICES`, only those deal `$5` holds: by their own field (unless unlinked by hand) or
    /// linked by hand.
    DEAL_INVOICES = "deal", "deal_id"
);
holder_invoices_sql!(
    /// Like `DEAL_INVOICES`, for contact `$5`.
    CONTACT_INVOICES = "contact", "contact_id"
);
holder_invoices_sql!(
    /// Like `DEAL_INVOICES`, for CRM company `$5`.
    COMPANY_INVOICES = "company", "company_id"
);
plain_sql!(
    /// Records of kind `$1` with id `$2`, optionally in company `$3`.
    FIND = "SELECT kind, status, body FROM records WHERE kind = $1 AND id = $2 \
    AND ($3 IS NULL OR account = $3) ORDER BY account"
);
dual_sql!(
    /// The own holder fields of `[account, invoice_id]` invoices.
    FIELD_HOLDERS = sqlite: "SELECT r.account, r.id, r.deal_id, r.contact_id, r.company_id FROM jsonb_each($1) k \
    JOIN records r ON r.kind = 'invoice' AND r.account = k.value->>0 AND r.id = k.value->>1",
    postgres: "SELECT r.account, r.id, r.deal_id, r.contact_id, r.company_id FROM jsonb_array_elements(CAST($1 AS jsonb)) k \
    CROSS JOIN LATERAL (SELECT account, id, deal_id, contact_id, company_id FROM records WHERE kind = 'invoice' \
    AND account = k.value->>0 AND id = k.value->>1) r"
);
dual_sql!(
    /// The hand-made links and unlinks of `[account, invoice_id]` invoices.
    MANUAL_LINKS = sqlite: "SELECT m.account, m.invoice_id, m.holder_kind, m.holder_id, m.linked FROM jsonb_each($1) k \
    JOIN manual_links m ON m.account = k.value->>0 AND m.invoice_id = k.value->>1",
    postgres: "SELECT m.account, m.invoice_id, m.holder_kind, m.holder_id, m.linked \
    FROM jsonb_array_elements(CAST($1 AS jsonb)) k CROSS JOIN LATERAL (SELECT account, invoice_id, holder_kind, \
    holder_id, linked FROM manual_links WHERE account = k.value->>0 AND invoice_id = k.value->>1) m"
);
plain_sql!(
    /// Records a hand-made link (`$5` true) or unlink (`$5` false) of holder `($1, $2)` and invoice `($3, $4)`.
    SET_MANUAL_LINK = "INSERT INTO manual_links (holder_kind, holder_id, account, invoice_id, linked) \
    VALUES ($1, $2, $3, $4, $5) ON CONFLICT (holder_kind, holder_id, account, invoice_id) DO UPDATE SET linked = excluded.linked"
);
plain_sql!(
    /// Forgets the hand-made link or unlink of holder `($1, $2)` and invoice `($3, $4)`.
    CLEAR_MANUAL_LINK = "DELETE FROM manual_links WHERE holder_kind = $1 AND holder_id = $2 AND account = $3 AND invoice_id = $4"
);
plain_sql!(
    /// Events after `$4`, optionally of record `($1, $2, $3)`, at most `$5`.
    EVENTS = "SELECT seq, kind, account, record_id, property, old_value, new_value, source_time, ingest_time FROM events \
    WHERE ($1 IS NULL OR (kind = $1 AND account = $2 AND record_id = $3)) AND seq > $4 ORDER BY seq LIMIT $5"
);

plain_sql!(
    /// Where cursor `$1` stands.
    CURSOR = "SELECT seq FROM cursors WHERE name = $1"
);
plain_sql!(
    /// Moves cursor `$1` forward to `$2` (never back).
    SET_CURSOR = "INSERT INTO cursors (name, seq) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE \
    SET seq = CASE WHEN excluded.seq > cursors.seq THEN excluded.seq ELSE cursors.seq END"
);
plain_sql!(
    /// The newest event's sequence number (0 when there is none).
    LAST_EVENT = "SELECT coalesce(max(seq), 0) FROM events"
);
rows_sql!(
    /// Stores `[key, rule, version, kind, account, record_id, action, body, created_at]` intents; a
    /// key already stored is skipped, so an evaluation repeated after a crash adds nothing.
    INSERT_INTENTS = "INSERT INTO intents (key, rule, version, kind, account, record_id, action, body, created_at) \
    SELECT k.value->>0, k.value->>1, k.value->>2, k.value->>3, k.value->>4, k.value->>5, k.value->>6, k.value->>7, \
    CAST(k.value->>8 AS BIGINT) FROM "
    ROWS " k WHERE true ON CONFLICT (key) DO NOTHING"
);
rows_sql!(
    /// Stores `[rule, version, kind, account, record_id, cause, message, is_limit, created_at]` failures.
    INSERT_FAILURES = "INSERT INTO rule_failures (rule, version, kind, account, record_id, cause, message, is_limit, \
    created_at) SELECT k.value->>0, k.value->>1, k.value->>2, k.value->>3, k.value->>4, k.value->>5, k.value->>6, \
    CAST(k.value->>7 AS BOOLEAN), CAST(k.value->>8 AS BIGINT) FROM "
    ROWS " k"
);
plain_sql!(
    /// Intents after `$5`, optionally of rule `$1` and of record `($2, $3, $4)`, at most `$6`.
    INTENTS = "SELECT seq, key, body, created_at FROM intents WHERE ($1 IS NULL OR rule = $1) \
    AND ($2 IS NULL OR (kind = $2 AND account = $3 AND record_id = $4)) AND seq > $5 ORDER BY seq LIMIT $6"
);
plain_sql!(
    /// Failures after `$5`, optionally of rule `$1` and of record `($2, $3, $4)`, at most `$6`.
    FAILURES = "SELECT seq, rule, version, kind, account, record_id, cause, message, is_limit, created_at \
    FROM rule_failures WHERE ($1 IS NULL OR rule = $1) AND ($2 IS NULL OR (kind = $2 AND account = $3 \
    AND record_id = $4)) AND seq > $5 ORDER BY seq LIMIT $6"
);

plain_sql!(
    /// A page of records of kind `$1` after `($2, $3)`, at most `$4`, in key order.
    RECORDS_OF_KIND = "SELECT kind, status, body FROM records WHERE kind = $1 \
    AND (account, id) > ($2, $3) ORDER BY account, id LIMIT $4"
);
dual_sql!(
    /// Which of the `[kind, account, record_id]` records rule `$2` is enrolled. SQLite: `CROSS
    /// JOIN` for the reason [`DECIDED`] gives.
    ENROLLED = sqlite: "SELECT e.kind, e.account, e.record_id FROM jsonb_each($1) k CROSS JOIN enrollments e \
    ON e.rule = $2 AND e.kind = k.value->>0 AND e.account = k.value->>1 AND e.record_id = k.value->>2",
    postgres: "SELECT e.kind, e.account, e.record_id FROM jsonb_array_elements(CAST($1 AS jsonb)) k CROSS JOIN LATERAL \
    (SELECT kind, account, record_id FROM enrollments WHERE rule = $2 AND kind = k.value->>0 \
    AND account = k.value->>1 AND record_id = k.value->>2) e"
);
rows_sql!(
    /// Enrolls `[kind, account, record_id]` records in rule `$2` since `$3`.
    ENROLL = "INSERT INTO enrollments (rule, kind, account, record_id, since) \
    SELECT $2, k.value->>0, k.value->>1, k.value->>2, $3 FROM "
    ROWS " k WHERE true ON CONFLICT DO NOTHING"
);
dual_sql!(
    /// Ends the enrollment of `[kind, account, record_id]` records in rule `$2`.
    LEAVE = sqlite: "DELETE FROM enrollments WHERE rule = $2 AND (kind, account, record_id) IN \
    (SELECT k.value->>0, k.value->>1, k.value->>2 FROM jsonb_each($1) k)",
    postgres: "DELETE FROM enrollments WHERE rule = $2 AND (kind, account, record_id) IN \
    (SELECT k.value->>0, k.value->>1, k.value->>2 FROM jsonb_array_elements(CAST($1 AS jsonb)) k)"
);
plain_sql!(
    /// A page of records of kind `$1` in status `$2` whose due date is `$3`, after `($4, $5)`, at
    /// most `$6`: one range of `records_by_status_due`, already in key order.
    ANCHORED_DUE = "SELECT kind, status, body FROM records WHERE kind = $1 AND status = $2 AND due_date = $3 \
    AND (account, id) > ($4, $5) ORDER BY account, id LIMIT $6"
);
plain_sql!(
    /// [`ANCHORED_DUE`] by the invoice, bill or payment date (`records_by_status_txn`).
    ANCHORED_TXN = "SELECT kind, status, body FROM records WHERE kind = $1 AND status = $2 AND txn_date = $3 \
    AND (account, id) > ($4, $5) ORDER BY account, id LIMIT $6"
);
dual_sql!(
    /// A page of records of kind `$1` after scan position `($2, $3)`, at most `$7`, in one of the
    /// `$4` statuses with their due date in `$5` or their txn date in `$6` (JSON arrays), as one
    /// text (NULL for none): a record per `char(31)`-separated part, each `kind, account, id,
    /// status, body, position, position` separated by `char(30)` (JSON escapes both, and keys
    /// hold neither). One value a page, not a row a record: a page crosses from the database
    /// thread in one message. SQLite reads the table in rowid order (the position; `$3` unused),
    /// a sequential read, the `+` keeping its planner there; PostgreSQL reads in key order.
    SCAN_DUE = sqlite: "SELECT group_concat(kind || char(30) || account || char(30) || id || char(30) || status \
    || char(30) || body || char(30) || pos || char(30), char(31) ORDER BY pos) FROM (SELECT rowid AS pos, kind, account, id, status, \
    body FROM records WHERE rowid > CAST($2 AS INTEGER) AND +kind = $1 \
    AND +status IN (SELECT value FROM json_each($4)) AND (+due_date IN (SELECT value FROM json_each($5)) \
    OR +txn_date IN (SELECT value FROM json_each($6))) ORDER BY rowid LIMIT $7)",
    postgres: "SELECT string_agg(kind || chr(30) || account || chr(30) || id || chr(30) || status || chr(30) \
    || body || chr(30) || account || chr(30) || id, chr(31) ORDER BY account, id) FROM (SELECT kind, account, id, \
    status, body FROM records WHERE kind = $1 AND (account, id) > ($2, $3) \
    AND status IN (SELECT jsonb_array_elements_text(CAST($4 AS jsonb))) \
    AND (due_date IN (SELECT jsonb_array_elements_text(CAST($5 AS jsonb))) \
    OR txn_date IN (SELECT jsonb_array_elements_text(CAST($6 AS jsonb)))) ORDER BY account, id LIMIT $7) page"
);
dual_sql!(
    /// The steps of workflow `$2` already sent for the `[kind, account, record_id]` records.
    /// SQLite: `CROSS JOIN` keeps the keys outside, one index probe each; with a plain join its
    /// planner prefers the index prefix `workflow = $2` outside, then scans the keys for every
    /// firing of the workflow — seconds per page once the ledger holds thousands.
    DECIDED = sqlite: "SELECT f.kind, f.account, f.record_id, f.step FROM jsonb_each($1) k CROSS JOIN firings f \
    ON f.workflow = $2 AND f.kind = k.value->>0 AND f.account = k.value->>1 AND f.record_id = k.value->>2 \
    AND f.sent",
    postgres: "SELECT f.kind, f.account, f.record_id, f.step FROM jsonb_array_elements(CAST($1 AS jsonb)) k \
    CROSS JOIN LATERAL (SELECT kind, account, record_id, step FROM firings WHERE workflow = $2 \
    AND kind = k.value->>0 AND account = k.value->>1 AND record_id = k.value->>2 AND sent) f"
);
rows_sql!(
    /// Writes `[key, workflow, kind, account, record_id, step, nominal, due_at, expires_at, sent,
    /// reason]` firings decided at `$2`, each once (by key, and by workflow, record and step);
    /// returns the keys written.
    INSERT_FIRINGS = "INSERT INTO firings (key, workflow, kind, account, record_id, step, nominal, due_at, \
    expires_at, sent, reason, decided_at) SELECT k.value->>0, k.value->>1, k.value->>2, k.value->>3, k.value->>4, \
    k.value->>5, k.value->>6, CAST(k.value->>7 AS BIGINT), CAST(k.value->>8 AS BIGINT), \
    CAST(k.value->>9 AS BOOLEAN), k.value->>10, $2 FROM "
    ROWS " k WHERE true ON CONFLICT DO NOTHING RETURNING key"
);
plain_sql!(
    /// Decided firings, optionally of workflow `$1` and of record `($2, $3, $4)`, in the order
    /// they were decided, at most `$5`.
    FIRINGS = "SELECT key, workflow, kind, account, record_id, step, nominal, due_at, expires_at, sent, reason, \
    decided_at FROM firings WHERE ($1 IS NULL OR workflow = $1) \
    AND ($2 IS NULL OR (kind = $2 AND account = $3 AND record_id = $4)) \
    ORDER BY decided_at, due_at, key LIMIT $5"
);
plain_sql!(
    /// Forgets cursor `$1`.
    RESET_CURSOR = "DELETE FROM cursors WHERE name = $1"
);
dual_sql!(
    /// The deliveries of the intents just written (the rows of `INSERT_INTENTS`, with the
    /// destination at 9 and the expiry at 10), pending from `$2`; one per intent.
    INSERT_DELIVERIES = sqlite: "INSERT INTO deliveries (intent_seq, channel, destination, status, next_at, \
    expires_at, updated_at) SELECT i.seq, k.value->>6, k.value->>9, 'pending', $2, CAST(k.value->>10 AS BIGINT), $2 \
    FROM jsonb_each($1) k JOIN intents i ON i.key = k.value->>0 WHERE true ON CONFLICT DO NOTHING",
    postgres: "INSERT INTO deliveries (intent_seq, channel, destination, status, next_at, expires_at, updated_at) \
    SELECT i.seq, k.value->>6, k.value->>9, 'pending', $2, CAST(k.value->>10 AS BIGINT), $2 \
    FROM jsonb_array_elements(CAST($1 AS jsonb)) k CROSS JOIN LATERAL (SELECT seq FROM intents WHERE key = k.value->>0) i \
    ON CONFLICT DO NOTHING"
);
plain_sql!(
    /// Pending deliveries past their expiry at `$1` become expired.
    EXPIRE_DELIVERIES = "UPDATE deliveries SET status = 'expired', reason = 'not delivered before its expiry', \
    lease_owner = NULL, lease_until = NULL, updated_at = $1 WHERE status = 'pending' AND expires_at < $1"
);
dual_sql!(
    /// Node `$1` leases until `$2` at most `$4` pending deliveries due at `$3` whose lease, if any,
    /// has run out (a dead node's work is taken over). PostgreSQL skips the rows another node is
    /// claiming; SQLite has one writer at a time.
    CLAIM = sqlite: "UPDATE deliveries SET lease_owner = $1, lease_until = $2, updated_at = $3 WHERE intent_seq IN \
    (SELECT intent_seq FROM deliveries WHERE status = 'pending' AND next_at <= $3 \
    AND (lease_until IS NULL OR lease_until < $3) ORDER BY next_at, intent_seq LIMIT $4) RETURNING intent_seq",
    postgres: "UPDATE deliveries d SET lease_owner = $1, lease_until = $2, updated_at = $3 FROM \
    (SELECT intent_seq FROM deliveries WHERE status = 'pending' AND next_at <= $3 \
    AND (lease_until IS NULL OR lease_until < $3) ORDER BY next_at, intent_seq LIMIT $4 FOR UPDATE SKIP LOCKED) due \
    WHERE d.intent_seq = due.intent_seq RETURNING d.intent_seq"
);
dual_sql!(
    /// The deliveries `$1` (a JSON array of intent numbers) just leased, with their intents.
    CLAIMED = sqlite: "SELECT d.intent_seq, d.attempts, d.expires_at, i.key, i.body FROM deliveries d \
    JOIN intents i ON i.seq = d.intent_seq WHERE d.intent_seq IN (SELECT value FROM json_each($1)) \
    ORDER BY d.intent_seq",
    postgres: "SELECT d.intent_seq, d.attempts, d.expires_at, i.key, i.body FROM deliveries d \
    JOIN intents i ON i.seq = d.intent_seq \
    WHERE d.intent_seq IN (SELECT CAST(jsonb_array_elements_text(CAST($1 AS jsonb)) AS BIGINT)) ORDER BY d.intent_seq"
);
plain_sql!(
    /// Deliveries of the intents filtered as [`INTENTS`] filters them (`$1`-`$6`), optionally
    /// in status `$7`, with their intents.
    DELIVERIES = "SELECT d.intent_seq, d.channel, d.destination, d.status, d.attempts, d.next_at, d.expires_at, \
    d.reason, d.lease_owner, d.updated_at, i.key, i.body, i.created_at FROM deliveries d \
    JOIN intents i ON i.seq = d.intent_seq WHERE ($1 IS NULL OR i.rule = $1) \
    AND ($2 IS NULL OR (i.kind = $2 AND i.account = $3 AND i.record_id = $4)) AND d.intent_seq > $5 \
    AND ($7 IS NULL OR d.status = $7) ORDER BY d.intent_seq LIMIT $6"
);

plain_sql!(
    /// Delivery `$1` tried again from `$2`, whatever became of it, unless delivered or being tried
    /// right now (its lease still runs: clearing it would let a second node send it too).
    RETRY_DELIVERY = "UPDATE deliveries SET status = 'pending', next_at = $2, reason = NULL, lease_owner = NULL, \
    lease_until = NULL, updated_at = $2 WHERE intent_seq = $1 AND status <> 'delivered' \
    AND NOT (status = 'pending' AND lease_until IS NOT NULL AND lease_until >= $2)"
);
plain_sql!(
    /// Pending delivery `$1` cancelled at `$2` for reason `$3`.
    CANCEL_DELIVERY = "UPDATE deliveries SET status = 'cancelled', reason = $3, lease_owner = NULL, \
    lease_until = NULL, updated_at = $2 WHERE intent_seq = $1 AND status = 'pending'"
);
plain_sql!(
    /// A task: `$1` key, `$2` title, `$3` notes, `$4` assignee, `$5` due, `$6` approval, `$7`-`$9`
    /// record, `$10` source, `$11` created at; nothing when a task with that key exists.
    INSERT_TASK = "INSERT INTO tasks (key, title, notes, assignee, due, approval, status, kind, account, record_id, \
    source, created_at) VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING RETURNING id"
);
plain_sql!(
    /// The task made by delivery `$1`.
    TASK_BY_KEY = "SELECT id FROM tasks WHERE key = $1"
);
plain_sql!(
    /// Tasks, optionally in status `$1`, assigned to `$2`, about record `($3, $4, $5)`, or task `$6`,
    /// oldest first, at most `$7`.
    TASKS = "SELECT id, key, title, notes, assignee, due, approval, status, kind, account, record_id, source, \
    created_at, closed_at, closed_by, comment FROM tasks WHERE ($1 IS NULL OR status = $1) \
    AND ($2 IS NULL OR assignee = $2) AND ($3 IS NULL OR (kind = $3 AND account = $4 AND record_id = $5)) \
    AND ($6 IS NULL OR id = $6) ORDER BY id LIMIT $7"
);
plain_sql!(
    /// Open task `$1` closed as `$2` at `$3` by `$4`, with comment `$5`, when its kind allows it
    /// (`$6`: it must be an approval task, or must not).
    CLOSE_TASK = "UPDATE tasks SET status = $2, closed_at = $3, closed_by = $4, comment = $5 \
    WHERE id = $1 AND status = 'open' AND approval = $6"
);
plain_sql!(
    /// A skipped slot: rule `$1`, slot `$2`, zone `$3`, reason `$4`, at `$5`.
    INSERT_SLOT_SKIP = "INSERT INTO slot_skips (rule, slot, zone, reason, decided_at) VALUES ($1, $2, $3, $4, $5)"
);
plain_sql!(
    /// Skipped slots of rule `$1` (or all), oldest first, at most `$2`.
    SLOT_SKIPS = "SELECT rule, slot, zone, reason FROM slot_skips WHERE ($1 IS NULL OR rule = $1) ORDER BY seq LIMIT $2"
);

plain_sql!(
    /// Delivery `$1`, leased by `$2`, put off until `$3` without an attempt (a peer's pace).
    DEFER_DELIVERY = "UPDATE deliveries SET next_at = $3, lease_owner = NULL, lease_until = NULL, updated_at = $4 \
    WHERE intent_seq = $1 AND lease_owner = $2 AND status = 'pending'"
);
plain_sql!(
    /// Destination `$1` disabled for reason `$2` at `$3` (the first reason stays).
    DISABLE_DESTINATION = "INSERT INTO disabled_destinations (name, reason, disabled_at) VALUES ($1, $2, $3) \
    ON CONFLICT (name) DO NOTHING"
);
plain_sql!(
    /// Destination `$1` enabled again.
    ENABLE_DESTINATION = "DELETE FROM disabled_destinations WHERE name = $1"
);
plain_sql!(
    /// The disabled destinations, by name.
    DISABLED_DESTINATIONS = "SELECT name, reason, disabled_at FROM disabled_destinations ORDER BY name"
);
plain_sql!(
    /// Deliveries counted by channel and status.
    DELIVERY_COUNTS = "SELECT channel, status, count(*) FROM deliveries GROUP BY channel, status ORDER BY channel, status"
);
plain_sql!(
    /// Pending deliveries; the oldest due time at `$1` among those nobody holds; failed
    /// evaluations; change events after the `rules` cursor.
    WORK_GAUGES = "SELECT (SELECT count(*) FROM deliveries WHERE status = 'pending'), \
    (SELECT min(next_at) FROM deliveries WHERE status = 'pending' AND next_at <= $1 \
    AND (lease_until IS NULL OR lease_until < $1)), (SELECT count(*) FROM rule_failures), \
    (SELECT count(*) FROM events WHERE seq > coalesce((SELECT seq FROM cursors WHERE name = 'rules'), 0))"
);
plain_sql!(
    /// The pending deliveries node `$1` holds, released for any node to claim.
    RELEASE_LEASES = "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1 \
    AND status = 'pending'"
);
rows_sql!(
    /// Deliveries finished by node `$2`, from `[seq, status, next_at, reason, at]` rows: moved to
    /// their next state when the node still holds them; returns those moved.
    FINISH_DELIVERIES = "UPDATE deliveries SET status = j.status, attempts = attempts + 1, next_at = j.next_at, \
    reason = j.reason, lease_owner = NULL, lease_until = NULL, updated_at = j.at FROM (SELECT \
    CAST(k.value->>0 AS BIGINT) AS seq, k.value->>1 AS status, CAST(k.value->>2 AS BIGINT) AS next_at, \
    k.value->>3 AS reason, CAST(k.value->>4 AS BIGINT) AS at FROM "
    ROWS " k) j WHERE deliveries.intent_seq = j.seq AND deliveries.lease_owner = $2 RETURNING deliveries.intent_seq"
);
rows_sql!(
    /// Attempts of node `$2`, from `[seq, started_at, finished_at, outcome, detail]` rows, each
    /// numbered after the ones recorded.
    INSERT_ATTEMPTS = "INSERT INTO delivery_attempts (intent_seq, attempt, node, started_at, finished_at, outcome, detail) \
    SELECT j.seq, (SELECT count(*) FROM delivery_attempts a WHERE a.intent_seq = j.seq) + 1, $2, j.started, j.finished, \
    j.outcome, j.detail FROM (SELECT CAST(k.value->>0 AS BIGINT) AS seq, CAST(k.value->>1 AS BIGINT) AS started, \
    CAST(k.value->>2 AS BIGINT) AS finished, k.value->>3 AS outcome, k.value->>4 AS detail FROM "
    ROWS " k) j"
);
