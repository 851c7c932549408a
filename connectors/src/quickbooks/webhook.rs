//! QuickBooks' webhooks (DOMAIN.md §5): the `intuit-signature` check, made on the raw body in
//! constant time before anything reads it, and the two shapes a notification arrives in — the
//! `eventNotifications` object and the newer CloudEvents array — read into one list of
//! [`Notification`]s. Notifications carry ids only: the entities are fetched afterwards.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{KeyInit as _, Mac as _};
use serde::Deserialize;

use crate::secret::SecretString;

/// The header QuickBooks signs its webhooks in.
pub const SIGNATURE_HEADER: &str = "intuit-signature";

/// The `intuit-signature` QuickBooks puts on `body` under `verifier`: base64 of HMAC-SHA256 (for
/// test servers and benchmarks that play QuickBooks).
pub fn sign(verifier: &SecretString, body: &[u8]) -> String {
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(verifier.expose().as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// True when `signature` (the header's value: base64 of HMAC-SHA256 of `body` under the verifier
/// token) is `body`'s under `verifier`. Compared in constant time.
pub fn verify(verifier: &SecretString, body: &[u8], signature: &str) -> bool {
    let Ok(claimed) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else { return false };
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(verifier.expose().as_bytes()) else {
        return false;
    };
    mac.update(body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&claimed).is_ok()
}

/// What happened to an entity, as QuickBooks names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    /// Created.
    Create,
    /// Changed.
    Update,
    /// Deleted: it cannot be fetched any more.
    Delete,
    /// Merged into another (names, customers): fetched like an update.
    Merge,
    /// Voided (a transaction kept with its amounts at zero).
    Void,
    /// Emailed to its recipient.
    Emailed,
}

impl Operation {
    /// QuickBooks' spelling in the `eventNotifications` shape.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "Create",
            Self::Update => "Update",
            Self::Delete => "Delete",
            Self::Merge => "Merge",
            Self::Void => "Void",
            Self::Emailed => "Emailed",
        }
    }

    /// Reads either shape's spelling (`Update`, `updated`, …), in any case.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.to_ascii_lowercase().as_str() {
            "create" | "created" => Self::Create,
            "update" | "updated" => Self::Update,
            "delete" | "deleted" => Self::Delete,
            "merge" | "merged" => Self::Merge,
            "void" | "voided" => Self::Void,
            "emailed" | "email" => Self::Emailed,
            _ => return None,
        })
    }
}

/// One entity changed in one company.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The company (realm id).
    pub realm_id: String,
    /// The entity's kind as QuickBooks names it (`Invoice`, `Customer`, …).
    pub entity: String,
    /// The entity's id.
    pub id: String,
    /// What happened.
    pub operation: Operation,
    /// When, by QuickBooks' clock (`lastUpdated`, or the CloudEvent's `time`).
    pub last_updated: Option<DateTime<Utc>>,
}

/// A webhook body that cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    /// Not JSON, or neither shape.
    #[error("not a QuickBooks webhook: {0}")]
    Shape(String),
    /// One notification is missing what it needs, or names an unknown operation.
    #[error("notification {index}: {reason}")]
    Entry {
        /// Its place in the body, from 0.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notifications {
    event_notifications: Vec<RealmEvents>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RealmEvents {
    realm_id: String,
    data_change_event: Option<DataChange>,
}

#[derive(Deserialize)]
struct DataChange {
    #[serde(default)]
    entities: Vec<EntityChange>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EntityChange {
    name: String,
    id: String,
    operation: String,
    last_updated: Option<String>,
}

#[derive(Deserialize)]
struct CloudEvent {
    #[serde(rename = "type")]
    kind: String,
    time: Option<String>,
    intuitentityid: Option<String>,
    intuitaccountid: Option<String>,
}

/// Reads a webhook body (verified first: see [`verify`]) in either shape. Every entry must be
/// readable: a body is taken whole or refused.
///
/// # Errors
/// [`WebhookError`] naming the shape or the entry at fault.
pub fn parse(body: &[u8]) -> Result<Vec<Notification>, WebhookError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| WebhookError::Shape(e.to_string()))?;
    if value.is_array() {
        let events: Vec<CloudEvent> =
            serde_json::from_value(value).map_err(|e| WebhookError::Shape(format!("CloudEvents array: {e}")))?;
        return events.into_iter().enumerate().map(|(index, e)| cloud_event(index, e)).collect();
    }
    let notes: Notifications = serde_json::from_value(value)
        .map_err(|e| WebhookError::Shape(format!("expected eventNotifications or a CloudEvents array: {e}")))?;
    let mut out = Vec::new();
    for realm in notes.event_notifications {
        for change in realm.data_change_event.map(|d| d.entities).unwrap_or_default() {
            let index = out.len();
            let entry = |reason: String| WebhookError::Entry { index, reason };
            let operation = Operation::parse(&change.operation)
                .ok_or_else(|| entry(format!("unknown operation {:?}", change.operation)))?;
            out.push(Notification {
                realm_id: realm.realm_id.clone(),
                entity: change.name,
                id: change.id,
                operation,
                last_updated: change.last_updated.as_deref().map(time).transpose().map_err(entry)?,
            });
        }
    }
    Ok(out)
}

/// `qbo.invoice.updated.v1` for entity 239 of account 9341 ⇒ an Invoice update.
fn cloud_event(index: usize, e: CloudEvent) -> Result<Notification, WebhookError> {
    let entry = |reason: String| WebhookError::Entry { index, reason };
    let mut parts = e.kind.split('.');
    let (Some("qbo"), Some(entity), Some(operation)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(entry(format!("type {:?} is not qbo.<entity>.<operation>.v<n>", e.kind)));
    };
    let operation = Operation::parse(operation).ok_or_else(|| entry(format!("unknown operation in {:?}", e.kind)))?;
    let mut name = entity.to_owned();
    if let Some(first) = name.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    Ok(Notification {
        realm_id: e.intuitaccountid.ok_or_else(|| entry("no intuitaccountid".into()))?,
        entity: name,
        id: e.intuitentityid.ok_or_else(|| entry("no intuitentityid".into()))?,
        operation,
        last_updated: e.time.as_deref().map(time).transpose().map_err(entry)?,
    })
}

fn time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text).map(|t| t.to_utc()).map_err(|e| format!("time {text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR_TOKEN: &str = "00faeec4-08d0-4996-bb37-698ae19f0149";
    const VECTOR_BODY: &str = r#"{"eventNotifications":[{"realmId":"1269959970","dataChangeEvent":{"entities":[{"name":"Vendor","id":"40","operation":"Update","lastUpdated":"2016-10-05T03:09:04.000Z"},{"name":"Customer","id":"43","operation":"Create","lastUpdated":"2016-10-05T03:07:04.000Z"}]}}]}"#;
    const VECTOR_SIGNATURE: &str = "6q+xGyMirJupwKTh2/WBl2NcdxzxqdIbk3sneKTxLWM=";

    #[test]
    fn intuits_test_vector_verifies_and_any_change_does_not() {
        let token = SecretString::new(VECTOR_TOKEN);
        assert!(verify(&token, VECTOR_BODY.as_bytes(), VECTOR_SIGNATURE));
        assert_eq!(sign(&token, VECTOR_BODY.as_bytes()), VECTOR_SIGNATURE);
        assert!(!verify(&token, VECTOR_BODY.replace("40", "41").as_bytes(), VECTOR_SIGNATURE), "body changed");
        assert!(!verify(&SecretString::new("another-token"), VECTOR_BODY.as_bytes(), VECTOR_SIGNATURE));
        assert!(!verify(&token, VECTOR_BODY.as_bytes(), "not base64!"));
        assert!(!verify(&token, VECTOR_BODY.as_bytes(), ""));
    }

    #[test]
    fn the_event_notifications_shape_is_read_entry_by_entry() {
        let notes = parse(VECTOR_BODY.as_bytes()).expect("parsed");
        assert_eq!(notes.len(), 2);
        assert_eq!(
            notes[0],
            Notification {
                realm_id: "1269959970".into(),
                entity: "Vendor".into(),
                id: "40".into(),
                operation: Operation::Update,
                last_updated: Some(time("2016-10-05T03:09:04Z").expect("time")),
            }
        );
        assert_eq!((notes[1].entity.as_str(), notes[1].operation), ("Customer", Operation::Create));
    }

    #[test]
    fn the_cloud_events_shape_is_read_too() {
        let body = r#"[{"specversion":"1.0","id":"88cd52b6-1b68-4e5b-9d51-9c1e1a6ac7f5","source":"intuit.dsnBgbseACLLRZNxo2dfc4evmEJdxde58xeeYcZliOU=","type":"qbo.invoice.voided.v1","datacontenttype":"application/json","time":"2026-11-25T09:00:00Z","intuitentityid":"239","intuitaccountid":"9341","data":{}},
            {"specversion":"1.0","id":"2","type":"qbo.payment.deleted.v1","time":"2026-11-25T09:00:01Z","intuitentityid":"12","intuitaccountid":"9341"}]"#;
        let notes = parse(body.as_bytes()).expect("parsed");
        assert_eq!(
            notes.iter().map(|n| (n.entity.as_str(), n.id.as_str(), n.operation)).collect::<Vec<_>>(),
            [("Invoice", "239", Operation::Void), ("Payment", "12", Operation::Delete)]
        );
        assert_eq!(notes[0].realm_id, "9341");
    }

    #[test]
    fn unreadable_bodies_say_where() {
        assert!(matches!(parse(b"{"), Err(WebhookError::Shape(_))));
        assert!(matches!(parse(br#"{"something":"else"}"#), Err(WebhookError::Shape(_))));
        let bad_op = r#"{"eventNotifications":[{"realmId":"1","dataChangeEvent":{"entities":[{"name":"Invoice","id":"1","operation":"Update"},{"name":"Invoice","id":"2","operation":"Teleport"}]}}]}"#;
        assert_eq!(
            parse(bad_op.as_bytes()),
            Err(WebhookError::Entry { index: 1, reason: "unknown operation \"Teleport\"".into() })
        );
        let bad_type = r#"[{"type":"com.example.thing","intuitentityid":"1","intuitaccountid":"2"}]"#;
        assert!(matches!(parse(bad_type.as_bytes()), Err(WebhookError::Entry { index: 0, .. })));
        // A realm with no data change event holds no notification.
        assert_eq!(parse(br#"{"eventNotifications":[{"realmId":"1"}]}"#), Ok(Vec::new()));
    }
}
