//! The CloudTrail record model.
//!
//! A [`Record`] borrows from the buffer it was parsed from. The fields every
//! detection or finding needs (`eventSource`, `eventName`, `eventTime`, who and
//! where) are parsed eagerly into borrowed strings; nested objects
//! (`userIdentity`, `requestParameters`, …) are kept as unparsed JSON text and
//! turned into values only when a rule asks for a field inside them. Fields the
//! model does not name are still reachable through [`Record::raw`], so a rule
//! can read any field CloudTrail writes.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use sonic_rs::LazyValue;

/// A string that borrows from the input when it can (no escapes) and owns its
/// text otherwise.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Str<'a>(pub Cow<'a, str>);

impl<'a> Str<'a> {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Str<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor;
        impl<'de> Visitor<'de> for StrVisitor {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(StrVisitor)
    }
}

/// Nested objects of a record that are kept as raw JSON and parsed on demand.
///
/// The order is the index into [`Record`]'s cache of parsed values.
pub const NESTED_FIELDS: [&str; 7] = [
    "userIdentity",
    "requestParameters",
    "responseElements",
    "additionalEventData",
    "resources",
    "tlsDetails",
    "serviceEventDetails",
];

/// The wire shape of a record: what serde reads in one pass.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct Wire<'a> {
    #[serde(borrow, rename = "eventVersion")]
    event_version: Option<Str<'a>>,
    #[serde(borrow, rename = "eventTime")]
    event_time: Option<Str<'a>>,
    #[serde(borrow, rename = "eventSource")]
    event_source: Option<Str<'a>>,
    #[serde(borrow, rename = "eventName")]
    event_name: Option<Str<'a>>,
    #[serde(borrow, rename = "awsRegion")]
    aws_region: Option<Str<'a>>,
    #[serde(borrow, rename = "sourceIPAddress")]
    source_ip_address: Option<Str<'a>>,
    #[serde(borrow, rename = "userAgent")]
    user_agent: Option<Str<'a>>,
    #[serde(borrow, rename = "errorCode")]
    error_code: Option<Str<'a>>,
    #[serde(borrow, rename = "errorMessage")]
    error_message: Option<Str<'a>>,
    #[serde(borrow, rename = "requestID")]
    request_id: Option<Str<'a>>,
    #[serde(borrow, rename = "eventID")]
    event_id: Option<Str<'a>>,
    #[serde(borrow, rename = "eventType")]
    event_type: Option<Str<'a>>,
    #[serde(borrow, rename = "recipientAccountId")]
    recipient_account_id: Option<Str<'a>>,
    #[serde(borrow, rename = "eventCategory")]
    event_category: Option<Str<'a>>,
    #[serde(rename = "readOnly")]
    read_only: Option<bool>,
    #[serde(rename = "managementEvent")]
    management_event: Option<bool>,
    #[serde(borrow, rename = "userIdentity")]
    user_identity: Option<LazyValue<'a>>,
    #[serde(borrow, rename = "requestParameters")]
    request_parameters: Option<LazyValue<'a>>,
    #[serde(borrow, rename = "responseElements")]
    response_elements: Option<LazyValue<'a>>,
    #[serde(borrow, rename = "additionalEventData")]
    additional_event_data: Option<LazyValue<'a>>,
    #[serde(borrow)]
    resources: Option<LazyValue<'a>>,
    #[serde(borrow, rename = "tlsDetails")]
    tls_details: Option<LazyValue<'a>>,
    #[serde(borrow, rename = "serviceEventDetails")]
    service_event_details: Option<LazyValue<'a>>,
    // EventBridge envelope ("AWS API Call via CloudTrail"): the record is `detail`.
    #[serde(borrow)]
    pub(crate) detail: Option<LazyValue<'a>>,
    #[serde(borrow, rename = "detail-type")]
    pub(crate) detail_type: Option<Str<'a>>,
    // CloudTrail digest files.
    #[serde(borrow, rename = "digestStartTime")]
    pub(crate) digest_start_time: Option<Str<'a>>,
}

impl<'a> Wire<'a> {
    pub(crate) fn has_event_name(&self) -> bool {
        self.event_name.is_some()
    }
}

/// Identity fields of `userIdentity` that findings report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// `userIdentity.type` (IAMUser, AssumedRole, Root, AWSService, …).
    pub kind: Option<String>,
    /// `userIdentity.arn`, or for a service, `userIdentity.invokedBy`.
    pub arn: Option<String>,
    /// `userIdentity.accountId`.
    pub account_id: Option<String>,
    /// `userIdentity.accessKeyId`.
    pub access_key_id: Option<String>,
    /// `userIdentity.userName`, or the session issuer's user name for roles.
    pub user_name: Option<String>,
    /// The role ARN behind an assumed-role session (`sessionContext.sessionIssuer.arn`).
    pub session_issuer_arn: Option<String>,
}

/// One CloudTrail record.
pub struct Record<'a> {
    raw: &'a str,
    wire: Wire<'a>,
    nested: [OnceCell<Option<serde_json::Value>>; NESTED_FIELDS.len()],
    whole: OnceCell<Option<serde_json::Value>>,
}

/// Why a JSON object could not be read as a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// The text is not valid JSON of the expected shape.
    Parse(String),
    /// The object has no `eventName`, so it is not a CloudTrail record.
    NotARecord,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Parse(e) => write!(f, "{e}"),
            RecordError::NotARecord => {
                f.write_str("not a CloudTrail record: the object has no eventName")
            }
        }
    }
}

impl<'a> Record<'a> {
    /// Parse one record (or one EventBridge envelope whose `detail` is a
    /// record) from its JSON text.
    pub fn parse(raw: &'a str) -> Result<Self, RecordError> {
        let wire = parse_wire(raw)?;
        Self::from_wire(raw, wire)
    }

    pub(crate) fn from_wire(raw: &'a str, wire: Wire<'a>) -> Result<Self, RecordError> {
        if wire.event_name.is_none() {
            if let Some(std::borrow::Cow::Borrowed(inner)) =
                wire.detail.as_ref().map(LazyValue::as_raw_cow)
            {
                let inner_wire = parse_wire(inner)?;
                if inner_wire.event_name.is_some() {
                    return Ok(Self::new(inner, inner_wire));
                }
            }
            return Err(RecordError::NotARecord);
        }
        Ok(Self::new(raw, wire))
    }

    fn new(raw: &'a str, wire: Wire<'a>) -> Self {
        Record {
            raw,
            wire,
            nested: Default::default(),
            whole: OnceCell::new(),
        }
    }

    /// The record's JSON text, as it was read.
    pub fn raw(&self) -> &'a str {
        self.raw
    }
    /// `eventVersion`.
    pub fn event_version(&self) -> Option<&str> {
        self.wire.event_version.as_ref().map(Str::as_str)
    }
    /// `eventTime`, as written (ISO 8601, UTC).
    pub fn event_time(&self) -> Option<&str> {
        self.wire.event_time.as_ref().map(Str::as_str)
    }
    /// `eventTime` as milliseconds since the Unix epoch, if it parses.
    pub fn event_time_millis(&self) -> Option<i64> {
        self.event_time().and_then(parse_event_time)
    }
    /// `eventSource`, for example `bedrock.amazonaws.com`.
    pub fn event_source(&self) -> Option<&str> {
        self.wire.event_source.as_ref().map(Str::as_str)
    }
    /// `eventName`, for example `InvokeModel`.
    pub fn event_name(&self) -> Option<&str> {
        self.wire.event_name.as_ref().map(Str::as_str)
    }
    /// `awsRegion`.
    pub fn aws_region(&self) -> Option<&str> {
        self.wire.aws_region.as_ref().map(Str::as_str)
    }
    /// `sourceIPAddress` (an address, or a service name such as `bedrock.amazonaws.com`).
    pub fn source_ip_address(&self) -> Option<&str> {
        self.wire.source_ip_address.as_ref().map(Str::as_str)
    }
    /// `userAgent`. Attacker-controlled text.
    pub fn user_agent(&self) -> Option<&str> {
        self.wire.user_agent.as_ref().map(Str::as_str)
    }
    /// `errorCode`, present when the call failed.
    pub fn error_code(&self) -> Option<&str> {
        self.wire.error_code.as_ref().map(Str::as_str)
    }
    /// `errorMessage`.
    pub fn error_message(&self) -> Option<&str> {
        self.wire.error_message.as_ref().map(Str::as_str)
    }
    /// `requestID`; absent on console sign-in events.
    pub fn request_id(&self) -> Option<&str> {
        self.wire.request_id.as_ref().map(Str::as_str)
    }
    /// `eventID`, CloudTrail's unique id for the event.
    pub fn event_id(&self) -> Option<&str> {
        self.wire.event_id.as_ref().map(Str::as_str)
    }
    /// `eventType` (AwsApiCall, AwsServiceEvent, AwsConsoleSignIn, …).
    pub fn event_type(&self) -> Option<&str> {
        self.wire.event_type.as_ref().map(Str::as_str)
    }
    /// `recipientAccountId`: the account the event was delivered for.
    pub fn recipient_account_id(&self) -> Option<&str> {
        self.wire.recipient_account_id.as_ref().map(Str::as_str)
    }
    /// `eventCategory` (Management, Data, Insight).
    pub fn event_category(&self) -> Option<&str> {
        self.wire.event_category.as_ref().map(Str::as_str)
    }
    /// `readOnly`.
    pub fn read_only(&self) -> Option<bool> {
        self.wire.read_only
    }
    /// `managementEvent`.
    pub fn management_event(&self) -> Option<bool> {
        self.wire.management_event
    }

    fn lazy(&self, index: usize) -> Option<&LazyValue<'a>> {
        let w = &self.wire;
        match index {
            0 => w.user_identity.as_ref(),
            1 => w.request_parameters.as_ref(),
            2 => w.response_elements.as_ref(),
            3 => w.additional_event_data.as_ref(),
            4 => w.resources.as_ref(),
            5 => w.tls_details.as_ref(),
            6 => w.service_event_details.as_ref(),
            _ => None,
        }
    }

    /// A nested object named in [`NESTED_FIELDS`], parsed on first use and
    /// cached. `None` when the field is absent, null, or not in that list.
    pub fn nested(&self, name: &str) -> Option<&serde_json::Value> {
        let index = NESTED_FIELDS.iter().position(|n| *n == name)?;
        self.nested[index]
            .get_or_init(|| {
                let lazy = self.lazy(index)?;
                serde_json::from_str(lazy.as_raw_str()).ok()
            })
            .as_ref()
    }

    /// The whole record as a JSON value, parsed on first use and cached.
    /// Used for fields the model does not name.
    pub fn whole(&self) -> Option<&serde_json::Value> {
        self.whole
            .get_or_init(|| serde_json::from_str(self.raw).ok())
            .as_ref()
    }

    /// Identity fields from `userIdentity`.
    pub fn identity(&self) -> Identity {
        let Some(ui) = self.nested("userIdentity") else {
            return Identity::default();
        };
        let s = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_owned);
        let issuer = ui.pointer("/sessionContext/sessionIssuer");
        let arn = s(ui.get("arn")).or_else(|| s(ui.get("invokedBy")));
        Identity {
            kind: s(ui.get("type")),
            arn,
            account_id: s(ui.get("accountId")),
            access_key_id: s(ui.get("accessKeyId")).filter(|k| !k.is_empty()),
            user_name: s(ui.get("userName")).or_else(|| s(issuer.and_then(|i| i.get("userName")))),
            session_issuer_arn: s(issuer.and_then(|i| i.get("arn"))),
        }
    }
}

impl fmt::Debug for Record<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("eventTime", &self.event_time())
            .field("eventSource", &self.event_source())
            .field("eventName", &self.event_name())
            .field("eventID", &self.event_id())
            .finish_non_exhaustive()
    }
}

pub(crate) fn parse_wire(raw: &str) -> Result<Wire<'_>, RecordError> {
    sonic_rs::from_str::<Wire<'_>>(raw).map_err(|e| RecordError::Parse(describe_json_error(&e)))
}

/// A short, single-line description of a JSON error.
pub(crate) fn describe_json_error(e: &sonic_rs::Error) -> String {
    let text = e.to_string();
    // sonic-rs appends a multi-line excerpt of the input; the first line is the reason.
    let first = text.lines().next().unwrap_or("invalid JSON");
    let mut out = first.trim().to_owned();
    if out.len() > 200 {
        let mut cut = 200;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// Parse CloudTrail's `eventTime` (`2023-07-10T11:45:12Z`, optionally with
/// fractional seconds or a numeric offset) into epoch milliseconds.
pub fn parse_event_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || (b[10] != b'T' && b[10] != b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut rest = &b[19..];
    let mut millis = 0i64;
    if rest.first() == Some(&b'.') {
        let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        let frac = &rest[1..1 + digits];
        for i in 0..3 {
            millis = millis * 10 + frac.get(i).map_or(0, |c| i64::from(c - b'0'));
        }
        rest = &rest[1 + digits..];
    }
    let offset_secs = match rest {
        b"" | b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digit = |c: u8| c.is_ascii_digit().then(|| i64::from(c - b'0'));
            let v = (digit(*h1)? * 10 + digit(*h2)?) * 3600 + (digit(*m1)? * 10 + digit(*m2)?) * 60;
            if *sign == b'+' {
                v
            } else {
                -v
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    Some((days * 86_400 + hour * 3600 + min * 60 + sec - offset_secs) * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_time_parses() {
        assert_eq!(parse_event_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_event_time("2023-07-10T11:45:12Z"),
            Some(1_688_989_512_000)
        );
        assert_eq!(
            parse_event_time("2023-07-10T11:45:12.345Z"),
            Some(1_688_989_512_345)
        );
        assert_eq!(
            parse_event_time("2023-07-10T13:45:12+02:00"),
            Some(1_688_989_512_000)
        );
        assert_eq!(parse_event_time("2023-13-10T11:45:12Z"), None);
        assert_eq!(parse_event_time("yesterday"), None);
    }

    #[test]
    fn record_borrows_and_keeps_unknown_fields() {
        let raw = r#"{"eventVersion":"1.08","eventTime":"2023-07-10T11:45:12Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","userAgent":"a\"b","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/x","accessKeyId":"AKIAX"},"requestParameters":null,"somethingNew":{"deep":[1,2]}}"#;
        let r = Record::parse(raw).unwrap();
        assert_eq!(r.event_name(), Some("GetObject"));
        assert!(matches!(
            r.wire.event_name.as_ref().unwrap().0,
            Cow::Borrowed(_)
        ));
        assert_eq!(r.user_agent(), Some("a\"b"));
        // A null nested object reads as absent (Sigma's `null` matches both).
        assert_eq!(r.nested("requestParameters"), None);
        assert_eq!(
            r.whole().unwrap().pointer("/somethingNew/deep/1"),
            Some(&serde_json::json!(2))
        );
        let id = r.identity();
        assert_eq!(id.arn.as_deref(), Some("arn:aws:iam::1:user/x"));
        assert_eq!(id.access_key_id.as_deref(), Some("AKIAX"));
    }

    #[test]
    fn eventbridge_envelope_yields_detail() {
        let raw = r#"{"version":"0","id":"e","detail-type":"AWS API Call via CloudTrail","source":"aws.bedrock","detail":{"eventTime":"2024-01-01T00:00:00Z","eventSource":"bedrock.amazonaws.com","eventName":"DeleteGuardrail","eventID":"x"}}"#;
        let r = Record::parse(raw).unwrap();
        assert_eq!(r.event_name(), Some("DeleteGuardrail"));
        assert!(r.raw().starts_with("{\"eventTime\""));
    }

    #[test]
    fn object_without_event_name_is_not_a_record() {
        assert_eq!(
            Record::parse(r#"{"a":1}"#).unwrap_err(),
            RecordError::NotARecord
        );
        assert!(matches!(
            Record::parse(r#"{"eventName": 5}"#).unwrap_err(),
            RecordError::Parse(_)
        ));
    }
}
