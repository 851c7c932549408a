//! QuickBooks' `POST /v3/company/{realm}/invoice/{id}/send` (DOMAIN.md §4–5): the URL, always with
//! `minorversion`, `sendTo` when the action overrides `BillEmail`; and what QuickBooks' answer
//! means — including a `Fault` inside an HTTP 200.

use crate::Attempted;

/// The minor version every request names.
pub const MINOR_VERSION: u32 = 75;

/// The URL that makes QuickBooks send invoice `invoice` of company `realm` with its own template,
/// to `to` instead of the invoice's `BillEmail` when given.
pub fn send_invoice_url(base: &reqwest::Url, realm: &str, invoice: &str, to: Option<&str>) -> reqwest::Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(["v3", "company", realm, "invoice", invoice, "send"]);
    }
    url.query_pairs_mut().append_pair("minorversion", &MINOR_VERSION.to_string());
    if let Some(to) = to {
        url.query_pairs_mut().append_pair("sendTo", to);
    }
    url
}

/// What QuickBooks' answer (status, body, `Retry-After`) means. A `Fault` is an error whatever
/// the status: a `ValidationFault` (a bad address, a voided invoice) is permanent, others
/// (authentication, system) are tried again; 429 waits 60 s unless told otherwise.
pub fn classify(status: u16, body: &str, retry_after: Option<&str>) -> Attempted {
    if let Some(fault) = super::fault::read(body) {
        let detail = format!("QuickBooks {} (HTTP {status}): {}", fault.kind, fault.detail);
        return if fault.kind.eq_ignore_ascii_case("ValidationFault") {
            Attempted::Permanent { detail, disable_destination: false }
        } else {
            Attempted::Transient { retry_after: None, detail }
        };
    }
    let excerpt: String = body.chars().take(200).collect();
    match status {
        200..=299 => Attempted::Delivered,
        429 => Attempted::Transient {
            retry_after: Some(
                retry_after.and_then(crate::http::retry_after_seconds).unwrap_or_else(|| chrono::Duration::seconds(60)),
            ),
            detail: "QuickBooks: too many requests (HTTP 429)".into(),
        },
        401 => {
            Attempted::Transient { retry_after: None, detail: "QuickBooks refused the access token (HTTP 401)".into() }
        }
        408 | 500..=599 => {
            Attempted::Transient { retry_after: None, detail: format!("QuickBooks HTTP {status}: {excerpt}") }
        }
        _ => {
            Attempted::Permanent { detail: format!("QuickBooks HTTP {status}: {excerpt}"), disable_destination: false }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_names_the_company_the_invoice_and_the_minor_version() {
        let base = reqwest::Url::parse("https://sandbox-quickbooks.api.intuit.com/").expect("url");
        assert_eq!(
            send_invoice_url(&base, "9341", "239", None).as_str(),
            "https://sandbox-quickbooks.api.intuit.com/v3/company/9341/invoice/239/send?minorversion=75"
        );
        let base = reqwest::Url::parse("http://127.0.0.1:9000/qbo").expect("url");
        assert_eq!(
            send_invoice_url(&base, "1", "7", Some("ap+1@acme.example")).as_str(),
            "http://127.0.0.1:9000/qbo/v3/company/1/invoice/7/send?minorversion=75&sendTo=ap%2B1%40acme.example"
        );
    }

    #[test]
    fn a_fault_is_an_error_even_inside_a_200() {
        let validation = r#"{"Fault":{"Error":[{"Message":"Invalid email","Detail":"sendTo is not valid","code":"6140"}],"type":"ValidationFault"},"time":"2026-11-25T09:00:00.000-08:00"}"#;
        match classify(200, validation, None) {
            Attempted::Permanent { detail, .. } => assert!(detail.contains("6140 Invalid email"), "{detail}"),
            other => panic!("{other:?}"),
        }
        let system = r#"{"Fault":{"Error":[{"Message":"Internal","code":"10000"}],"type":"SystemFault"}}"#;
        assert!(matches!(classify(200, system, None), Attempted::Transient { .. }));
        assert_eq!(classify(200, r#"{"Invoice":{"Id":"239","EmailStatus":"EmailSent"}}"#, None), Attempted::Delivered);
    }

    #[test]
    fn quickbooks_limits_and_errors_are_read_as_documented() {
        assert_eq!(
            classify(429, "", None),
            Attempted::Transient {
                retry_after: Some(chrono::Duration::seconds(60)),
                detail: "QuickBooks: too many requests (HTTP 429)".into()
            }
        );
        assert!(matches!(classify(503, "busy", None), Attempted::Transient { retry_after: None, .. }));
        assert!(matches!(classify(401, "", None), Attempted::Transient { .. }));
        assert!(matches!(classify(404, "no such invoice", None), Attempted::Permanent { .. }));
    }
}
