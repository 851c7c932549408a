//! The store's SQL. One text per query for both backends (`$N` placeholders work in both); only
//! the expansion of a JSON array of rows differs: SQLite's `jsonb_each($1)`, PostgreSQL's
//! `jsonb_array_elements(CAST($1 AS jsonb))`. Batches bind one JSON array instead of thousands of
//! parameters, so every statement text is fixed and prepared once.

/// One query in both dialects.
pub(crate) struct Sql {
    pub(crate) sqlite: &'static str,
    pub(crate) postgres: &'static str,
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
pub(crate) const SQLITE_UPSERT: &str = "INSERT INTO records (kind, account, id, status, due_date, updated_at, currency, body) \
    SELECT k.value->>'kind', k.value->>'account', k.value->>'id', k.value->>'status', k.value->>'due_date', \
    CAST(k.value->>'updated_at' AS BIGINT), k.value->>'currency', k.value->>'body' FROM jsonb_each($1) k WHERE true \
    ON CONFLICT (kind, account, id) DO UPDATE SET status = excluded.status, due_date = excluded.due_date, \
    updated_at = excluded.updated_at, currency = excluded.currency, body = excluded.body";

/// PostgreSQL's record upsert of `rows` records, bound as multi-row `VALUES` (8 parameters a row).
pub(crate) fn postgres_upsert(rows: usize) -> String {
    let mut sql =
        String::from("INSERT INTO records (kind, account, id, status, due_date, updated_at, currency, body) VALUES ");
    for r in 0..rows {
        let p = r * 8;
        if r > 0 {
            sql.push(',');
        }
        sql.push_str(&format!(
            "(${},${},${},${},${},${},${},${})",
            p + 1,
            p + 2,
            p + 3,
            p + 4,
            p + 5,
            p + 6,
            p + 7,
            p + 8
        ));
    }
    sql.push_str(
        " ON CONFLICT (kind, account, id) DO UPDATE SET status = excluded.status, due_date = excluded.due_date, \
        updated_at = excluded.updated_at, currency = excluded.currency, body = excluded.body",
    );
    sql
}

rows_sql!(
    /// Inserts `[kind, account, id, property, old, new, source_time]` events at ingest time `$2`.
    INSERT_EVENTS = "INSERT INTO events (kind, account, record_id, property, old_value, new_value, source_time, ingest_time) \
    SELECT k.value->>0, k.value->>1, k.value->>2, k.value->>3, k.value->>4, k.value->>5, CAST(k.value->>6 AS BIGINT), $2 FROM "
    ROWS " k"
);
rows_sql!(
    /// Adds `[holder_kind, holder_id, account, invoice_id]` links with origin `record`.
    ADD_LINKS = "INSERT INTO links (holder_kind, holder_id, account, invoice_id, origin) \
    SELECT k.value->>0, k.value->>1, k.value->>2, k.value->>3, 'record' FROM "
    ROWS " k WHERE true ON CONFLICT DO NOTHING"
);
dual_sql!(
    /// Removes `record`-origin `[holder_kind, holder_id, account, invoice_id]` links.
    REMOVE_LINKS = sqlite: "DELETE FROM links WHERE origin = 'record' AND (holder_kind, holder_id, account, invoice_id) IN \
    (SELECT k.value->>0, k.value->>1, k.value->>2, k.value->>3 FROM jsonb_each($1) k)",
    postgres: "DELETE FROM links WHERE ctid IN (SELECT l.ctid FROM jsonb_array_elements(CAST($1 AS jsonb)) k CROSS JOIN LATERAL \
    (SELECT ctid FROM links WHERE origin = 'record' AND holder_kind = k.value->>0 AND holder_id = k.value->>1 \
    AND account = k.value->>2 AND invoice_id = k.value->>3) l)"
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
    AND ($1 IS NULL OR r.account = $1) AND (r.account > $2 OR (r.account = $2 AND r.id > $3)) \
    ORDER BY r.account, r.id LIMIT $4"
);
plain_sql!(
    /// Like `INVOICES`, only those linked to holder `($5, $6)`.
    HOLDER_INVOICES = "SELECT r.kind, r.status, r.body FROM records r JOIN links l \
    ON l.account = r.account AND l.invoice_id = r.id AND l.holder_kind = $5 AND l.holder_id = $6 WHERE r.kind = 'invoice' \
    AND ($1 IS NULL OR r.account = $1) AND (r.account > $2 OR (r.account = $2 AND r.id > $3)) \
    ORDER BY r.account, r.id LIMIT $4"
);
plain_sql!(
    /// Records of kind `$1` with id `$2`, optionally in company `$3`.
    FIND = "SELECT kind, status, body FROM records WHERE kind = $1 AND id = $2 \
    AND ($3 IS NULL OR account = $3) ORDER BY account"
);
dual_sql!(
    /// The holders of `[account, invoice_id]` invoices.
    HOLDERS_OF = sqlite: "SELECT l.account, l.invoice_id, l.holder_kind, l.holder_id FROM jsonb_each($1) k JOIN links l \
    ON l.account = k.value->>0 AND l.invoice_id = k.value->>1 ORDER BY l.account, l.invoice_id, l.holder_kind, l.holder_id",
    postgres: "SELECT l.account, l.invoice_id, l.holder_kind, l.holder_id FROM jsonb_array_elements(CAST($1 AS jsonb)) k \
    CROSS JOIN LATERAL (SELECT account, invoice_id, holder_kind, holder_id FROM links \
    WHERE account = k.value->>0 AND invoice_id = k.value->>1) l ORDER BY 1, 2, 3, 4"
);
plain_sql!(
    /// A manual link.
    LINK = "INSERT INTO links (holder_kind, holder_id, account, invoice_id, origin) VALUES ($1, $2, $3, $4, 'manual') \
    ON CONFLICT DO NOTHING"
);
plain_sql!(
    /// Removes a link of any origin.
    UNLINK = "DELETE FROM links WHERE holder_kind = $1 AND holder_id = $2 AND account = $3 AND invoice_id = $4"
);
plain_sql!(
    /// Events after `$4`, optionally of record `($1, $2, $3)`, at most `$5`.
    EVENTS = "SELECT seq, kind, account, record_id, property, old_value, new_value, source_time, ingest_time FROM events \
    WHERE ($1 IS NULL OR (kind = $1 AND account = $2 AND record_id = $3)) AND seq > $4 ORDER BY seq LIMIT $5"
);
