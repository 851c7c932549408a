//! QuickBooks' `Fault`, which can come back inside any status, an HTTP 200 included:
//! `{"Fault":{"Error":[{"Message","Detail","code"}],"type":…}}`. Its 401 spells the keys in
//! lowercase (`{"fault":{"error":[{"message","detail","code"}],"type":"AUTHENTICATION"}}`), so keys
//! are matched whatever their case.

use serde_json::Value;

/// A fault read from an answer's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fault {
    /// Its `type` (`ValidationFault`, `SystemFault`, `AUTHENTICATION`…), `Fault` when absent.
    pub kind: String,
    /// Its errors, each as `code Message: Detail`, joined by `; `.
    pub detail: String,
}

/// The fault `body` carries, if it is JSON with a `Fault` object.
pub(crate) fn read(body: &str) -> Option<Fault> {
    in_value(&serde_json::from_str::<Value>(body).ok()?)
}

/// The fault of an answer already parsed, if it has a `Fault` object.
pub(crate) fn in_value(value: &Value) -> Option<Fault> {
    let fault = field(value, "Fault")?;
    if !fault.is_object() {
        return None;
    }
    let kind = field(fault, "type").and_then(Value::as_str).unwrap_or("Fault").to_owned();
    let errors: Vec<String> = field(fault, "Error")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| {
            let text = |k: &str| field(e, k).and_then(Value::as_str).unwrap_or_default().to_owned();
            format!("{} {}: {}", text("code"), text("Message"), text("Detail")).trim().to_owned()
        })
        .collect();
    Some(Fault { kind, detail: errors.join("; ") })
}

/// `object[key]`, the key matched whatever its case (an exact match first).
fn field<'a>(object: &'a Value, key: &str) -> Option<&'a Value> {
    let map = object.as_object()?;
    map.get(key).or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_fault_with_every_error() {
        let body = r#"{"Fault":{"Error":[{"Message":"Stale Object Error","Detail":"SyncToken 3","code":"5010"},{"Message":"Other","code":"1"}],"type":"ValidationFault"},"time":"2026-11-25T09:00:00.000-08:00"}"#;
        assert_eq!(
            read(body),
            Some(Fault {
                kind: "ValidationFault".into(),
                detail: "5010 Stale Object Error: SyncToken 3; 1 Other:".into()
            })
        );
    }

    #[test]
    fn reads_the_lowercase_fault_of_a_401() {
        let body = r#"{"fault":{"error":[{"message":"message=AuthenticationFailed; errorCode=003200; statusCode=401","detail":"Token expired","code":"3200"}],"type":"AUTHENTICATION"}}"#;
        let fault = read(body).expect("a fault");
        assert_eq!(fault.kind, "AUTHENTICATION");
        assert!(
            fault.detail.starts_with("3200 message=AuthenticationFailed") && fault.detail.ends_with("Token expired")
        );
    }

    #[test]
    fn answers_without_a_fault_have_none() {
        for body in [r#"{"Invoice":{"Id":"1"}}"#, "not json", "", r#"{"Fault":"text"}"#, "[1]"] {
            assert_eq!(read(body), None, "{body}");
        }
    }
}
