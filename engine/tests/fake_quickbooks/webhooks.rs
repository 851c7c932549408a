//! What QuickBooks posts to a webhook endpoint, for tests to post themselves: both body shapes
//! (the classic `eventNotifications` and the newer CloudEvents array) and the signature header.

use serde_json::Value;

/// The header that carries [`sign`]'s result.
pub const SIGNATURE_HEADER: &str = "intuit-signature";

/// `base64(HMAC-SHA256(verifier_token, body))`, the value of `intuit-signature` (the
/// connectors' own signing, which the engine's check mirrors).
pub fn sign(verifier_token: &str, body: &[u8]) -> String {
    use invoiceflow_connectors::{quickbooks::webhook, secret::SecretString};
    webhook::sign(&SecretString::new(verifier_token), body)
}

/// One change a notification announces: `(entity name, id, operation, last updated)`, in the
/// order of the JSON's fields, e.g. `("Invoice", "239", "Update", "2026-11-25T09:00:00.000Z")`.
pub type Change<'a> = (&'a str, &'a str, &'a str, &'a str);

/// A JSON string literal.
fn text(s: &str) -> String {
    Value::from(s).to_string()
}

/// The classic body, fields in Intuit's order (so a signature computed elsewhere matches):
/// `{"eventNotifications":[{"realmId":…,"dataChangeEvent":{"entities":[{"name","id","operation","lastUpdated"}]}}]}`.
pub fn notification_body(realm: &str, changes: &[Change<'_>]) -> String {
    let entities: Vec<String> = changes
        .iter()
        .map(|(name, id, operation, last_updated)| {
            format!(
                r#"{{"name":{},"id":{},"operation":{},"lastUpdated":{}}}"#,
                text(name),
                text(id),
                text(operation),
                text(last_updated)
            )
        })
        .collect();
    format!(
        r#"{{"eventNotifications":[{{"realmId":{},"dataChangeEvent":{{"entities":[{}]}}}}]}}"#,
        text(realm),
        entities.join(",")
    )
}

/// The CloudEvents body, fields in Intuit's order: one event per change, typed
/// `qbo.<entity>.<operation in the past tense>.v1` (`qbo.invoice.updated.v1`), with the change's
/// instant as `time` and an empty `data`.
pub fn cloud_events_body(realm: &str, changes: &[Change<'_>]) -> String {
    let events: Vec<String> = changes
        .iter()
        .enumerate()
        .map(|(n, (name, id, operation, time))| {
            let entity = name.to_ascii_lowercase();
            format!(
                r#"{{"specversion":"1.0","id":{},"source":"intuit.fake-quickbooks","type":{},"datacontenttype":"application/json","time":{},"intuitentityid":{},"intuitaccountid":{},"data":{{}}}}"#,
                text(&format!("fake-{realm}-{entity}-{id}-{n}")),
                text(&format!("qbo.{entity}.{}.v1", past(operation))),
                text(time),
                text(id),
                text(realm)
            )
        })
        .collect();
    format!("[{}]", events.join(","))
}

/// `Update` → `updated`, `Create` → `created`, `Void` → `voided`, `Emailed` → `emailed`.
fn past(operation: &str) -> String {
    let lower = operation.to_ascii_lowercase();
    if lower.ends_with("ed") {
        lower
    } else if lower.ends_with('e') {
        lower + "d"
    } else {
        lower + "ed"
    }
}
