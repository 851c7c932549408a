//! What the engine's integration tests share: canonical records written through the store as an
//! import would, at the clock's instant.

use invoiceflow::clock::Clock;
use invoiceflow::store::{Moment, Store};
use invoiceflow_rules::parse::{Incoming, Item, ParseContext, parse_value};
use invoiceflow_rules::{AccountName, Currency};
use serde_json::Value;

/// Parses canonical JSON records of company `account` (home currency USD), as received at the
/// clock's instant, and applies them with the clock's calendar. A refused record fails the test.
pub async fn import<S: Store>(store: &S, clock: &Clock, account: &str, values: &[Value]) {
    let now = clock.now.instant();
    let account = AccountName::new(account).unwrap();
    let usd = |_: &AccountName| Currency::USD;
    let ctx = ParseContext { account: &account, home_currency: &usd, received_at: now };
    let records: Vec<Incoming> = values
        .iter()
        .flat_map(|v| parse_value(v.clone(), &ctx))
        .map(|i| match i {
            Item::Record(r) => r,
            other => panic!("refused: {other:?}"),
        })
        .collect();
    store.apply(records, &Moment { now, calendar: clock }).await.unwrap();
}
