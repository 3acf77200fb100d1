//! The bridge between a CloudTrail [`Record`] and rsigma's [`Event`] trait.
//!
//! Fields the record model parses eagerly are answered without touching JSON;
//! a nested object is parsed once, the first time a rule looks inside it, and
//! the whole record only when a rule asks for a field the model does not name.
//! Path semantics follow rsigma's `JsonEvent`: dotted paths, and a path that
//! crosses an array fans out over its elements (any element may match).

use std::borrow::Cow;

use rsigma_eval::{Event, EventValue};
use serde_json::Value;
use trailwarden_cloudtrail::record::NESTED_FIELDS;
use trailwarden_cloudtrail::{Lookup, Record};

/// Deepest nesting walked when collecting strings for keyword rules.
const MAX_WALK_DEPTH: usize = 64;

/// A record seen as a Sigma event.
pub struct RecordEvent<'r, 'a>(pub &'r Record<'a>);

fn text(s: Option<&str>) -> Option<EventValue<'_>> {
    s.map(|s| EventValue::Str(Cow::Borrowed(s)))
}

/// Where the value of a field path comes from: decided from the path alone,
/// so a caller that reads the same path for many records decides it once.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Place {
    /// A top-level field the record model parses eagerly (a position in
    /// [`SCALARS`]).
    Scalar(u8),
    /// Inside (or, without `dot`, the whole of) a nested object of
    /// [`NESTED_FIELDS`].
    Nested {
        /// Position of the first `.` in the path.
        dot: Option<usize>,
    },
    /// Anything else, followed over the raw record (a name without `dot`
    /// may first be a string the model knows).
    Other {
        /// Position of the first `.` in the path.
        dot: Option<usize>,
    },
    /// A derived policy field (a position in [`crate::derived::FIELDS`]).
    Derived(u8),
}

/// The top-level fields the record model answers directly.
const SCALARS: [&str; 16] = [
    "eventName",
    "eventSource",
    "eventTime",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "errorCode",
    "errorMessage",
    "eventID",
    "eventType",
    "recipientAccountId",
    "requestID",
    "eventVersion",
    "eventCategory",
    "readOnly",
    "managementEvent",
];

fn scalar<'r>(r: &'r Record<'_>, i: u8) -> Option<EventValue<'r>> {
    match i {
        0 => text(r.event_name()),
        1 => text(r.event_source()),
        2 => text(r.event_time()),
        3 => text(r.aws_region()),
        4 => text(r.source_ip_address()),
        5 => text(r.user_agent()),
        6 => text(r.error_code()),
        7 => text(r.error_message()),
        8 => text(r.event_id()),
        9 => text(r.event_type()),
        10 => text(r.recipient_account_id()),
        11 => text(r.request_id()),
        12 => text(r.event_version()),
        13 => text(r.event_category()),
        14 => r.read_only().map(EventValue::Bool),
        _ => r.management_event().map(EventValue::Bool),
    }
}

/// Where `path`'s value comes from.
pub(crate) fn place(path: &str) -> Place {
    if let Some(i) = crate::derived::index(path) {
        return Place::Derived(i);
    }
    let dot = path.find('.');
    let top = &path[..dot.unwrap_or(path.len())];
    if dot.is_none() {
        if let Some(i) = SCALARS.iter().position(|s| *s == top) {
            return Place::Scalar(i as u8);
        }
    }
    if NESTED_FIELDS.contains(&top) {
        Place::Nested { dot }
    } else {
        Place::Other { dot }
    }
}

/// The value of the dotted field `path` in `record`, as
/// [`RecordEvent`]'s `get_field` answers it; borrows from the record.
pub(crate) fn field_of<'r>(r: &'r Record<'_>, path: &str) -> Option<EventValue<'r>> {
    field_at(r, path, place(path))
}

/// The value of `path`, whose [`Place`] is `place`.
pub(crate) fn field_at<'r>(r: &'r Record<'_>, path: &str, place: Place) -> Option<EventValue<'r>> {
    let (nested, dot) = match place {
        Place::Scalar(i) => return scalar(r, i),
        // Without the organisation's trusted accounts (see `Fields`).
        Place::Derived(i) => return crate::derived::value(r, i, None),
        Place::Nested { dot } => (true, dot),
        Place::Other { dot } => (false, dot),
    };
    let (top, rest) = match dot {
        Some(i) => (&path[..i], Some(&path[i + 1..])),
        None => (path, None),
    };
    if rest.is_none() {
        if let Some(value) = r.known_str(top) {
            return text(value);
        }
    }
    // Fast path: follow the path over the raw text, without parsing.
    let found = match (nested, rest) {
        (true, Some(rest)) => Some(r.lookup(top, rest)),
        (true, None) => None,
        (false, _) => Some(r.lookup_path(path)),
    };
    if let Some(found) = found {
        match found {
            Lookup::Missing => return None,
            Lookup::Null => return Some(EventValue::Null),
            Lookup::Str(s) => return Some(EventValue::Str(s)),
            Lookup::Bool(b) => return Some(EventValue::Bool(b)),
            Lookup::Number(n) => {
                return Some(match n.parse::<i64>() {
                    Ok(i) => EventValue::Int(i),
                    Err(_) => EventValue::Float(n.parse().unwrap_or(f64::NAN)),
                })
            }
            // Objects, and paths through arrays: parse and fan out below.
            Lookup::Compound(_) => {}
        }
    }
    let root = if nested {
        r.nested(top)?
    } else {
        r.whole()?.get(top)?
    };
    match rest {
        None => Some(EventValue::from(root)),
        Some(rest) => {
            let mut found = Vec::new();
            collect(root, rest, &mut found);
            match found.len() {
                0 => None,
                1 => found.pop(),
                _ => Some(EventValue::Array(found)),
            }
        }
    }
}

impl Event for RecordEvent<'_, '_> {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        field_of(self.0, path)
    }

    fn any_string_value(&self, pred: &dyn Fn(&str) -> bool) -> bool {
        let mut hit = false;
        if let Some(whole) = self.0.whole() {
            walk_strings(whole, MAX_WALK_DEPTH, &mut |s| hit = hit || pred(s));
        }
        hit
    }

    fn all_string_values(&self) -> Vec<Cow<'_, str>> {
        let mut out = Vec::new();
        if let Some(whole) = self.0.whole() {
            walk_strings(whole, MAX_WALK_DEPTH, &mut |s| {
                out.push(Cow::Owned(s.to_owned()))
            });
        }
        out
    }

    fn to_json(&self) -> Value {
        self.0.whole().cloned().unwrap_or(Value::Null)
    }
}

/// A record seen as a Sigma event by an engine: [`RecordEvent`], plus the
/// fields that need the engine's policy facts
/// ([`crate::derived::UNTRUSTED_ACCOUNTS`], from `trusted_accounts`). What
/// [`crate::Engine::evaluate_fields`] answers for every path, without a
/// cache (from [`crate::Engine::event`]).
pub struct EngineEvent<'t, 'r, 'a> {
    /// The record.
    pub record: RecordEvent<'r, 'a>,
    /// The policy fact `trusted_accounts` (`None`: not known here; a rule
    /// set's engine always knows it, empty when the policy does not give it).
    pub trusted_accounts: Option<&'t [String]>,
}

impl Event for EngineEvent<'_, '_, '_> {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        match crate::derived::index(path) {
            Some(i) => crate::derived::value(self.record.0, i, self.trusted_accounts),
            None => self.record.get_field(path),
        }
    }

    fn any_string_value(&self, pred: &dyn Fn(&str) -> bool) -> bool {
        self.record.any_string_value(pred)
    }

    fn all_string_values(&self) -> Vec<Cow<'_, str>> {
        self.record.all_string_values()
    }

    fn to_json(&self) -> Value {
        self.record.to_json()
    }
}

/// Follow a dotted path from `value`, fanning out across arrays.
fn collect<'v>(value: &'v Value, path: &str, out: &mut Vec<EventValue<'v>>) {
    match value {
        Value::Array(items) => {
            for item in items {
                collect(item, path, out);
            }
        }
        Value::Object(map) => {
            // A key that itself contains dots wins over nested traversal.
            if let Some(v) = map.get(path) {
                out.push(EventValue::from(v));
                return;
            }
            let (head, rest) = match path.split_once('.') {
                Some((h, r)) => (h, Some(r)),
                None => (path, None),
            };
            let Some(next) = map.get(head) else {
                return;
            };
            match rest {
                None => out.push(EventValue::from(next)),
                Some(rest) => collect(next, rest, out),
            }
        }
        _ => {}
    }
}

fn walk_strings(value: &Value, depth: usize, f: &mut dyn FnMut(&str)) {
    if depth == 0 {
        return;
    }
    match value {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter().for_each(|v| walk_strings(v, depth - 1, f)),
        Value::Object(map) => map.values().for_each(|v| walk_strings(v, depth - 1, f)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_resolve_like_json_events() {
        let raw = r#"{"eventName":"PutBucketPolicy","eventSource":"s3.amazonaws.com","readOnly":false,
            "requestParameters":{"bucketName":"b","policy":{"Statement":[{"Effect":"Allow"},{"Effect":"Deny"}]}},
            "resources":[{"ARN":"arn:1"},{"ARN":"arn:2"}],"custom":{"x":{"y":"z"}}}"#;
        let record = Record::parse(raw).unwrap();
        let e = RecordEvent(&record);
        assert_eq!(
            e.get_field("eventName"),
            Some(EventValue::Str("PutBucketPolicy".into()))
        );
        assert_eq!(e.get_field("readOnly"), Some(EventValue::Bool(false)));
        assert_eq!(e.get_field("errorCode"), None);
        assert_eq!(
            e.get_field("requestParameters.bucketName"),
            Some(EventValue::Str("b".into()))
        );
        assert_eq!(
            e.get_field("requestParameters.policy.Statement.Effect"),
            Some(EventValue::Array(vec![
                EventValue::Str("Allow".into()),
                EventValue::Str("Deny".into())
            ]))
        );
        assert_eq!(
            e.get_field("resources.ARN"),
            Some(EventValue::Array(vec![
                EventValue::Str("arn:1".into()),
                EventValue::Str("arn:2".into())
            ]))
        );
        assert_eq!(e.get_field("custom.x.y"), Some(EventValue::Str("z".into())));
        assert_eq!(e.get_field("custom.missing"), None);
        assert!(e.any_string_value(&|s| s == "arn:2"));
    }
}
