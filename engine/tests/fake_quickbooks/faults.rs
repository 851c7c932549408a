//! How QuickBooks writes instants and errors: the `Fault` bodies the fake answers with, and the
//! failures a test can inject.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone as _, Utc};
use serde_json::{Value, json};

/// QuickBooks answers in the company's zone; every company of the fake keeps Pacific Standard
/// Time (no daylight saving), so a client that ignores offsets is off by eight hours.
const COMPANY_OFFSET_SECONDS: i32 = -8 * 3600;

fn company_zone() -> FixedOffset {
    FixedOffset::east_opt(COMPANY_OFFSET_SECONDS).expect("-08:00 is within a day")
}

/// An instant as `MetaData` writes it: `2015-07-24T10:35:08-08:00`.
pub(crate) fn qbo_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&company_zone()).format("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// An instant as an answer's `time` writes it: `2015-07-24T10:35:08.123-08:00`.
pub(crate) fn answer_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&company_zone()).format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string()
}

/// An instant as a client may name it in a query or `changedSince`: RFC 3339, or a date or a
/// date-time without offset, read in the company's zone as QuickBooks does.
pub(crate) fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.to_utc());
    }
    let local = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .or_else(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)))?;
    company_zone().from_local_datetime(&local).single().map(|t| t.to_utc())
}

/// A failure the fake answers with instead of serving a request (see `fail_next`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// HTTP 429 with QuickBooks' throttling fault, and `Retry-After` (seconds) when given.
    TooManyRequests {
        /// The `Retry-After` header's seconds; QuickBooks itself sends none.
        retry_after: Option<u32>,
    },
    /// HTTP 401 with QuickBooks' authentication fault (`invalid_client` on the token endpoint),
    /// whatever the token.
    Unauthorized,
    /// HTTP 500 with a `SystemFault`.
    ServerError,
    /// HTTP 200 whose body is a `SystemFault`: QuickBooks' error inside a success.
    FaultIn200,
}

/// `{"Fault":{"Error":[…],"type":…},"time":…}`, the shape of QuickBooks' API errors.
pub(crate) fn fault(kind: &str, code: &str, message: &str, detail: &str, now: DateTime<Utc>) -> Value {
    json!({
        "Fault": {"Error": [{"Message": message, "Detail": detail, "code": code}], "type": kind},
        "time": answer_time(now),
    })
}

/// The body of a 401: this one fault is written in lowercase by QuickBooks' gateway.
pub(crate) fn authentication_failed(detail: &str, now: DateTime<Utc>) -> Value {
    json!({
        "fault": {
            "error": [{
                "message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                "detail": detail,
                "code": "3200",
            }],
            "type": "AUTHENTICATION",
        },
        "time": answer_time(now),
    })
}

/// The body of a 429.
pub(crate) fn throttled(now: DateTime<Utc>) -> Value {
    fault(
        "SERVICE",
        "3001",
        "message=ThrottleExceeded; errorCode=003001; statusCode=429",
        "The request limit was reached.",
        now,
    )
}

/// The body of a 500, or of a 200 that failed anyway.
pub(crate) fn system_fault(now: DateTime<Utc>) -> Value {
    fault(
        "SystemFault",
        "10000",
        "An application error has occurred while processing your request",
        "System Failure Error: the fake was told to fail",
        now,
    )
}

/// A statement the query endpoint does not understand. QuickBooks files these as a
/// `ValidationFault` whose detail starts with `QueryParserError`.
pub(crate) fn query_parser_error(detail: &str, now: DateTime<Utc>) -> Value {
    fault("ValidationFault", "4000", "Error parsing query", &format!("QueryParserError: {detail}"), now)
}

/// A missing or invalid request parameter (QuickBooks' code 2010).
pub(crate) fn invalid_request(detail: &str, now: DateTime<Utc>) -> Value {
    fault("ValidationFault", "2010", "Request has invalid or unsupported property", detail, now)
}

/// An entity that does not exist (or was deleted).
pub(crate) fn object_not_found(entity: &str, id: &str, now: DateTime<Utc>) -> Value {
    fault(
        "ValidationFault",
        "610",
        "Object Not Found",
        &format!("Object Not Found : Something you're trying to use has been made inactive. ({entity} {id})"),
        now,
    )
}

/// `changedSince` older than CDC's 30-day look-back.
pub(crate) fn look_back_exceeded(now: DateTime<Utc>) -> Value {
    fault(
        "ValidationFault",
        "6000",
        "A business validation error has occurred while processing your request",
        "Business Validation Error: changedSince can look back at most 30 days",
        now,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_reads_instants_in_the_company_zone() {
        let t = parse_instant("2026-11-25T09:00:00Z").unwrap();
        assert_eq!(qbo_time(t), "2026-11-25T01:00:00-08:00");
        assert_eq!(answer_time(t), "2026-11-25T01:00:00.000-08:00");
        assert_eq!(parse_instant("2026-11-25T01:00:00"), Some(t));
        assert_eq!(parse_instant("2026-11-25"), parse_instant("2026-11-25T08:00:00Z"));
        assert_eq!(parse_instant("yesterday"), None);
    }
}
