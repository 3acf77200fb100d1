//! The CloudTrail record model.
//!
//! A [`Record`] borrows from the buffer it was parsed from. The fields every
//! detection or finding needs (`eventSource`, `eventName`, `eventTime`, who and
//! where) are found in one pass (see `scan.rs`) and kept as borrowed strings;
//! nested objects (`userIdentity`, `requestParameters`, …) are kept as
//! unparsed JSON text and turned into values by `serde_json` only when a rule
//! asks for a field inside them. Fields the
//! model does not name are still reachable through [`Record::raw`], so a rule
//! can read any field CloudTrail writes.

use std::borrow::Cow;
use std::cell::{OnceCell, RefCell};
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use smallvec::SmallVec;

use crate::scan::{
    find_key, members, parse_object, Fields, Kind, Member, ParseError, Span, Walk, BOOLS, DETAIL,
    EVENT_NAME, FIELDS, NESTED, STRINGS, WALK_MEMBERS, WALK_OBJECTS,
};

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

/// A value found by [`Record::lookup`] without parsing the record.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup<'a> {
    /// Nothing at that path.
    Missing,
    /// `null`.
    Null,
    /// A string (borrowed when it has no escapes).
    Str(Cow<'a, str>),
    /// `true` or `false`.
    Bool(bool),
    /// A number, as written.
    Number(&'a str),
    /// An object or an array (its JSON text): the caller parses it, or the
    /// path went through an array, which needs the caller's fan-out rules.
    Compound(&'a str),
}

/// Identity fields of `userIdentity` that findings report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// `userIdentity.type` (IAMUser, AssumedRole, Root, AWSService, …).
    pub kind: Option<String>,
    /// `userIdentity.arn`.
    pub arn: Option<String>,
    /// `userIdentity.accountId`.
    pub account_id: Option<String>,
    /// `userIdentity.accessKeyId`.
    pub access_key_id: Option<String>,
    /// `userIdentity.userName`, or the session issuer's user name for roles.
    pub user_name: Option<String>,
    /// The role ARN behind an assumed-role session (`sessionContext.sessionIssuer.arn`).
    pub session_issuer_arn: Option<String>,
    /// `userIdentity.principalId` (for a role session, `ROLEID:session-name`).
    pub principal_id: Option<String>,
    /// `userIdentity.invokedBy`: the service that made the call.
    pub invoked_by: Option<String>,
}

impl Identity {
    /// Who made the call, always with a value, in this order: `arn`; the
    /// session issuer's ARN with the session name (the part of
    /// `principalId` after `:`); `userName` (a web-identity or SAML user);
    /// `principalId`; `invokedBy` (a service); `anonymous` (no identity,
    /// as for unauthenticated S3 calls). See
    /// <https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-user-identity.html>.
    pub fn principal(&self) -> String {
        if let Some(arn) = &self.arn {
            return arn.clone();
        }
        if let Some(issuer) = &self.session_issuer_arn {
            return match self.principal_id.as_deref().and_then(|p| p.split_once(':')) {
                Some((_, session)) if !session.is_empty() => format!("{issuer}/{session}"),
                _ => issuer.clone(),
            };
        }
        self.user_name
            .clone()
            .or_else(|| self.principal_id.clone())
            .or_else(|| self.invoked_by.clone())
            .unwrap_or_else(|| "anonymous".to_owned())
    }
}

/// One CloudTrail record.
pub struct Record<'a> {
    raw: &'a str,
    strs: [Option<Str<'a>>; STRINGS],
    bools: [Option<bool>; 2],
    nested_raw: [Option<&'a str>; NESTED_FIELDS.len()],
    nested: [OnceCell<Option<serde_json::Value>>; NESTED_FIELDS.len()],
    /// The members of the objects [`Record::lookup`] has gone into, and
    /// of `userIdentity` and the objects in it (read with the record).
    members: RefCell<Members>,
    whole: OnceCell<Option<serde_json::Value>>,
}

/// The members of the objects walked so far, each object walked once,
/// whole, the first time a lookup goes into it (so each byte of its text is
/// walked at most once per record, however many paths are looked up in
/// it). Kept inline, without allocation, for the few objects a rule set
/// looks into.
#[derive(Debug, Default)]
struct Members {
    /// (address of the object's text, its first member in `found`, how
    /// many): each object's members are contiguous in `found`, in order.
    objects: SmallVec<[(usize, u32, u32); WALK_OBJECTS]>,
    found: SmallVec<[Member; WALK_MEMBERS]>,
}

impl Members {
    /// The first member of `text` (an object) whose raw key is `key`, as
    /// [`find_key`] finds it.
    fn find(&mut self, text: &str, key: &str) -> Option<Member> {
        let b = text.as_bytes();
        let at = b.as_ptr() as usize;
        let (first, n) = match self.objects.iter().find(|o| o.0 == at) {
            Some(&(_, first, n)) => (first as usize, n as usize),
            None => {
                let first = self.found.len();
                let found = &mut self.found;
                members(b, |this, value, kind| {
                    let start = (this.as_ptr() as usize - at) as u32;
                    found.push(Member {
                        key: (start, start + this.len() as u32),
                        value,
                        kind,
                    });
                    true
                });
                let n = self.found.len() - first;
                self.objects.push((at, first as u32, n as u32));
                (first, n)
            }
        };
        self.found[first..first + n]
            .iter()
            .find(|m| &b[m.key.0 as usize..m.key.1 as usize] == key.as_bytes())
            .copied()
    }

    /// The objects of `walk` (read by `parse_object` from `raw`).
    fn read(raw: &str, walk: &Walk) -> Members {
        let mut out = Members::default();
        let base = raw.as_ptr() as usize;
        for (at, members) in walk.objects() {
            let first = out.found.len();
            out.found.extend(members.iter().map(|w| Member {
                key: (w.key.0 - at, w.key.1 - at),
                value: Span {
                    start: w.value.start - at,
                    end: w.value.end - at,
                    escaped: w.value.escaped,
                },
                kind: w.kind,
            }));
            out.objects
                .push((base + at as usize, first as u32, members.len() as u32));
        }
        out
    }
}

/// Where a record's fields lie in its text, without the text: taken from
/// a record by [`Record::layout`] and laid over a copy of its text by
/// [`Layout::record`], which gives the same record without parsing it again
/// (a record evaluated on one thread and gathered on another).
#[derive(Debug, Clone)]
pub struct Layout {
    /// The text's length in bytes.
    len: usize,
    strs: [Option<Placed>; STRINGS],
    bools: [Option<bool>; 2],
    /// Byte ranges of the nested objects' text.
    nested: [Option<(usize, usize)>; NESTED_FIELDS.len()],
    /// A nested object's text was not a slice of the record's (never so
    /// for a parsed record): the layout cannot place it.
    unplaced: bool,
}

/// One string field of a [`Layout`].
#[derive(Debug, Clone)]
enum Placed {
    /// Unescaped: this byte range of the text.
    At(usize, usize),
    /// Escaped: its decoded text.
    Owned(Box<str>),
}

impl Layout {
    /// The record over `raw`, which must be a copy of the [`Record::raw`]
    /// text the layout was taken from; `None` when its length differs (so
    /// it cannot be that text) or the layout could not place a field (parse
    /// the text instead).
    pub fn record<'b>(&self, raw: &'b str) -> Option<Record<'b>> {
        if raw.len() != self.len || self.unplaced {
            return None;
        }
        let at = |(start, end): (usize, usize)| raw.get(start..end);
        let mut strs: [Option<Str<'b>>; STRINGS] = Default::default();
        for (slot, placed) in strs.iter_mut().zip(&self.strs) {
            *slot = match placed {
                None => None,
                Some(Placed::At(start, end)) => Some(Str(Cow::Borrowed(at((*start, *end))?))),
                Some(Placed::Owned(text)) => Some(Str(Cow::Owned(text.to_string()))),
            };
        }
        let mut nested_raw = [None; NESTED_FIELDS.len()];
        for (slot, range) in nested_raw.iter_mut().zip(&self.nested) {
            *slot = match range {
                None => None,
                Some(range) => Some(at(*range)?),
            };
        }
        Some(Record {
            raw,
            strs,
            bools: self.bools,
            nested_raw,
            nested: Default::default(),
            members: RefCell::default(),
            whole: OnceCell::new(),
        })
    }
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

/// Deepest nesting [`Record::parse`] accepts.
pub const PARSE_MAX_DEPTH: usize = 64;

impl<'a> Record<'a> {
    /// Parse one record (or one EventBridge envelope whose `detail` is a
    /// record) from its JSON text.
    pub fn parse(raw: &'a str) -> Result<Self, RecordError> {
        Self::parse_within(raw, PARSE_MAX_DEPTH)
    }

    /// [`Record::parse`] with another nesting limit: a record the reader
    /// delivered under [`crate::ReaderOptions::max_depth`] parses again from
    /// its [`Record::raw`] text under the same limit, to the same record.
    pub fn parse_within(raw: &'a str, max_depth: usize) -> Result<Self, RecordError> {
        let text = raw.trim_ascii();
        if !text.starts_with('{') {
            return Err(RecordError::Parse("a record must be a JSON object".into()));
        }
        let (len, fields) = parse_object(text.as_bytes(), max_depth).map_err(|e| {
            RecordError::Parse(match e {
                ParseError::Incomplete => "the JSON object is not closed".into(),
                ParseError::TooDeep => format!("JSON nested deeper than {max_depth} levels"),
                ParseError::Invalid(at, reason) => format!("{reason} at byte {at}"),
            })
        })?;
        if len != text.len() {
            return Err(RecordError::Parse(format!(
                "unexpected text after the record at byte {len}"
            )));
        }
        Self::from_fields(text, &fields)
    }

    /// Build a record from the text of one object and the spans found in it.
    pub(crate) fn from_fields(raw: &'a str, fields: &Fields) -> Result<Self, RecordError> {
        if fields.spans[EVENT_NAME].is_none() {
            if let Some((span, Kind::Object)) = fields.spans[DETAIL] {
                let inner = &raw[span.start as usize..span.end as usize];
                let (_, inner_fields) =
                    parse_object(inner.as_bytes(), PARSE_MAX_DEPTH).map_err(|_| {
                        RecordError::Parse("the EventBridge detail is malformed".into())
                    })?;
                if inner_fields.spans[EVENT_NAME].is_some() {
                    return Self::from_fields(inner, &inner_fields);
                }
            }
            return Err(RecordError::NotARecord);
        }
        let text = |span: Span| &raw[span.start as usize..span.end as usize];
        let mut strs: [Option<Str<'a>>; STRINGS] = Default::default();
        for (i, slot) in strs.iter_mut().enumerate() {
            *slot = match fields.spans[i] {
                None | Some((_, Kind::Null)) => None,
                Some((span, Kind::String)) if !span.escaped => Some(Str(Cow::Borrowed(
                    &raw[span.start as usize + 1..span.end as usize - 1],
                ))),
                Some((span, Kind::String)) => {
                    let owned: String = serde_json::from_str(text(span)).map_err(|e| {
                        RecordError::Parse(format!("{} is not a valid JSON string: {e}", FIELDS[i]))
                    })?;
                    Some(Str(Cow::Owned(owned)))
                }
                Some((_, kind)) => {
                    return Err(RecordError::Parse(format!(
                        "{} is {}, expected a string",
                        FIELDS[i],
                        kind.describe()
                    )))
                }
            };
        }
        if let Some(t) = &strs[1] {
            if parse_event_time(t.as_str()).is_none() {
                let shown: String = t.as_str().chars().take(64).collect();
                return Err(RecordError::Parse(format!(
                    "eventTime {shown:?} is not a time (CloudTrail writes 2026-11-02T08:06:41Z; 2026-11-02 08:06:41.000000000 is read too)"
                )));
            }
        }
        let mut bools = [None; 2];
        for (i, slot) in bools.iter_mut().enumerate() {
            *slot = match fields.spans[BOOLS + i] {
                Some((_, Kind::Bool(b))) => Some(b),
                // Lenient: CloudTrail writes booleans, but accept their text.
                Some((span, Kind::String)) => match text(span) {
                    "\"true\"" => Some(true),
                    "\"false\"" => Some(false),
                    _ => None,
                },
                _ => None,
            };
        }
        let mut nested_raw = [None; NESTED_FIELDS.len()];
        for (i, slot) in nested_raw.iter_mut().enumerate() {
            *slot = match fields.spans[NESTED + i] {
                None | Some((_, Kind::Null)) => None,
                Some((span, _)) => Some(text(span)),
            };
        }
        // `userIdentity`'s members and those of the objects in it, read as
        // the object was passed over (when it is the object kept: the last
        // of duplicate keys).
        let members = match (&fields.identity, nested_raw[0]) {
            (Some(walk), Some(text))
                if walk.objects().last().map(|(at, _)| at as usize)
                    == Some(text.as_ptr() as usize - raw.as_ptr() as usize) =>
            {
                Members::read(raw, walk)
            }
            _ => Members::default(),
        };
        Ok(Record {
            raw,
            strs,
            bools,
            nested_raw,
            nested: Default::default(),
            members: RefCell::new(members),
            whole: OnceCell::new(),
        })
    }

    fn str_field(&self, slot: usize) -> Option<&str> {
        self.strs[slot].as_ref().map(Str::as_str)
    }

    /// A top-level string field the model parses eagerly: `Some(value)` when
    /// `name` is one of them (the value itself may be absent), `None` when
    /// the model does not hold `name`.
    pub fn known_str(&self, name: &str) -> Option<Option<&str>> {
        let slot = FIELDS[..STRINGS].iter().position(|f| *f == name)?;
        Some(self.str_field(slot))
    }

    /// The record's JSON text, as it was read.
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// Where this record's fields lie in its [`Record::raw`] text (see
    /// [`Layout`]).
    pub fn layout(&self) -> Layout {
        let base = self.raw.as_ptr() as usize;
        // A slice of `raw`, as a byte range; `None` if it is not one.
        let range = |s: &str| {
            let start = (s.as_ptr() as usize).checked_sub(base)?;
            let end = start + s.len();
            (end <= self.raw.len()).then_some((start, end))
        };
        let mut strs: [Option<Placed>; STRINGS] = Default::default();
        for (slot, s) in strs.iter_mut().zip(&self.strs) {
            *slot = s.as_ref().map(|s| match &s.0 {
                Cow::Borrowed(b) => match range(b) {
                    Some((start, end)) => Placed::At(start, end),
                    None => Placed::Owned((*b).into()),
                },
                Cow::Owned(o) => Placed::Owned(o.as_str().into()),
            });
        }
        let mut nested = [None; NESTED_FIELDS.len()];
        let mut unplaced = false;
        for (slot, text) in nested.iter_mut().zip(&self.nested_raw) {
            // Nested text is always a slice of `raw` (see `from_fields`).
            if let Some(text) = text {
                *slot = range(text);
                unplaced |= slot.is_none();
            }
        }
        Layout {
            len: self.raw.len(),
            strs,
            bools: self.bools,
            nested,
            unplaced,
        }
    }
    /// `eventVersion`.
    pub fn event_version(&self) -> Option<&str> {
        self.str_field(0)
    }
    /// `eventTime`, as written (ISO 8601, UTC).
    pub fn event_time(&self) -> Option<&str> {
        self.str_field(1)
    }
    /// `eventTime` as milliseconds since the Unix epoch, if it parses.
    pub fn event_time_millis(&self) -> Option<i64> {
        self.event_time().and_then(parse_event_time)
    }
    /// `eventSource`, for example `bedrock.amazonaws.com`.
    pub fn event_source(&self) -> Option<&str> {
        self.str_field(2)
    }
    /// `eventName`, for example `InvokeModel`.
    pub fn event_name(&self) -> Option<&str> {
        self.str_field(3)
    }
    /// `awsRegion`.
    pub fn aws_region(&self) -> Option<&str> {
        self.str_field(4)
    }
    /// `sourceIPAddress` (an address, or a service name such as `bedrock.amazonaws.com`).
    pub fn source_ip_address(&self) -> Option<&str> {
        self.str_field(5)
    }
    /// `userAgent`. Attacker-controlled text.
    pub fn user_agent(&self) -> Option<&str> {
        self.str_field(6)
    }
    /// `errorCode`, present when the call failed.
    pub fn error_code(&self) -> Option<&str> {
        self.str_field(7)
    }
    /// `errorMessage`.
    pub fn error_message(&self) -> Option<&str> {
        self.str_field(8)
    }
    /// `requestID`; absent on console sign-in events.
    pub fn request_id(&self) -> Option<&str> {
        self.str_field(9)
    }
    /// `eventID`, CloudTrail's unique id for the event.
    pub fn event_id(&self) -> Option<&str> {
        self.str_field(10)
    }
    /// `eventType` (AwsApiCall, AwsServiceEvent, AwsConsoleSignIn, …).
    pub fn event_type(&self) -> Option<&str> {
        self.str_field(11)
    }
    /// `recipientAccountId`: the account the event was delivered for.
    pub fn recipient_account_id(&self) -> Option<&str> {
        self.str_field(12)
    }
    /// `eventCategory` (Management, Data, Insight).
    pub fn event_category(&self) -> Option<&str> {
        self.str_field(13)
    }
    /// `readOnly`.
    pub fn read_only(&self) -> Option<bool> {
        self.bools[0]
    }
    /// `managementEvent`.
    pub fn management_event(&self) -> Option<bool> {
        self.bools[1]
    }

    /// A nested object named in [`NESTED_FIELDS`], parsed on first use and
    /// cached. `None` when the field is absent, null, or not in that list.
    pub fn nested(&self, name: &str) -> Option<&serde_json::Value> {
        let index = NESTED_FIELDS.iter().position(|n| *n == name)?;
        self.nested[index]
            .get_or_init(|| serde_json::from_str(self.nested_raw[index]?).ok())
            .as_ref()
    }

    /// The raw JSON text of a nested object named in [`NESTED_FIELDS`].
    pub fn nested_raw(&self, name: &str) -> Option<&'a str> {
        let index = NESTED_FIELDS.iter().position(|n| *n == name)?;
        self.nested_raw[index]
    }

    /// Follow a dotted `path` inside the nested object `name` (one of
    /// [`NESTED_FIELDS`]) over its raw text, without parsing it. Stops with
    /// [`Lookup::Compound`] at an array (or when the path ends at an object),
    /// so the caller can apply its own rules there.
    ///
    /// The members of each object on the way are found once per record and
    /// kept, so many paths into the same object (`userIdentity.type`,
    /// `userIdentity.accessKeyId`, `userIdentity.sessionContext.…`) cost one
    /// pass over its text, not one each.
    pub fn lookup(&self, name: &str, path: &str) -> Lookup<'a> {
        let Some(mut text) = self.nested_raw(name) else {
            return Lookup::Missing;
        };
        let mut path = path;
        let mut cache = self.members.borrow_mut();
        loop {
            if !text.starts_with('{') {
                return follow(text, path);
            }
            let (first, rest) = match path.split_once('.') {
                Some((first, rest)) => (first, Some(rest)),
                None => (path, None),
            };
            let Some(m) = cache.find(text, first) else {
                return Lookup::Missing;
            };
            match (m.kind, rest) {
                (Kind::Object, Some(rest)) => {
                    text = &text[m.value.start as usize..m.value.end as usize];
                    path = rest;
                }
                _ => return step(text, m.value, m.kind, rest),
            }
        }
    }

    /// Follow a dotted `path` from the top of the record over its raw text
    /// (for fields the model does not name), without parsing it.
    pub fn lookup_path(&self, path: &str) -> Lookup<'a> {
        follow(self.raw, path)
    }

    /// The whole record as a JSON value, parsed on first use and cached.
    /// Used for fields the model does not name.
    pub fn whole(&self) -> Option<&serde_json::Value> {
        self.whole
            .get_or_init(|| {
                serde_json::from_str(self.raw).ok().or_else(|| {
                    // A lone surrogate escape somewhere: read it as U+FFFD.
                    serde_json::from_str(&repair_surrogates(self.raw)?).ok()
                })
            })
            .as_ref()
    }

    /// Identity fields from `userIdentity`, read in one pass over its text
    /// (and one over `sessionContext.sessionIssuer`).
    pub fn identity(&self) -> Identity {
        let mut id = Identity::default();
        let Some(text) = self.nested_raw("userIdentity") else {
            return id;
        };
        let mut context = None;
        // The first of duplicate keys counts, as for `lookup`.
        let mut seen = 0u8;
        members(text.as_bytes(), |key, span, kind| {
            let (bit, slot) = match key {
                b"type" => (0, &mut id.kind),
                b"arn" => (1, &mut id.arn),
                b"accountId" => (2, &mut id.account_id),
                b"accessKeyId" => (3, &mut id.access_key_id),
                b"userName" => (4, &mut id.user_name),
                b"principalId" => (5, &mut id.principal_id),
                b"invokedBy" => (6, &mut id.invoked_by),
                b"sessionContext" => {
                    if seen & 0x80 == 0 {
                        seen |= 0x80;
                        context = (kind == Kind::Object).then_some(span);
                    }
                    return true;
                }
                _ => return true,
            };
            if seen & (1 << bit) == 0 {
                seen |= 1 << bit;
                *slot = nonempty_string(text, span, kind);
            }
            true
        });
        let issuer = context.and_then(|span| {
            let context = &text[span.start as usize..span.end as usize];
            match find_key(context.as_bytes(), b"sessionIssuer") {
                Some((span, Kind::Object)) => {
                    Some(&context[span.start as usize..span.end as usize])
                }
                _ => None,
            }
        });
        if let Some(issuer) = issuer {
            let (mut issuer_name, mut seen) = (None, 0u8);
            members(issuer.as_bytes(), |key, span, kind| {
                let (bit, slot) = match key {
                    b"arn" => (0, &mut id.session_issuer_arn),
                    b"userName" => (1, &mut issuer_name),
                    _ => return true,
                };
                if seen & (1 << bit) == 0 {
                    seen |= 1 << bit;
                    *slot = nonempty_string(issuer, span, kind);
                }
                true
            });
            if id.user_name.is_none() {
                id.user_name = issuer_name;
            }
        }
        id
    }
}

/// The string at `span` of `text` (a member's value), unescaped; `None`
/// for another kind of value, an empty string or a bad escape.
fn nonempty_string(text: &str, span: Span, kind: Kind) -> Option<String> {
    if kind != Kind::String {
        return None;
    }
    let value = &text[span.start as usize..span.end as usize];
    let s = if span.escaped {
        serde_json::from_str::<String>(value).ok()?
    } else {
        value[1..value.len() - 1].to_owned()
    };
    (!s.is_empty()).then_some(s)
}

/// Follow a dotted path through the JSON object `text` without parsing it.
fn follow<'a>(text: &'a str, path: &str) -> Lookup<'a> {
    let (first, rest) = match path.split_once('.') {
        Some((first, rest)) => (first, Some(rest)),
        None => (path, None),
    };
    if text.starts_with('[') {
        return Lookup::Compound(text);
    }
    match find_key(text.as_bytes(), first.as_bytes()) {
        Some((span, kind)) => step(text, span, kind, rest),
        None => Lookup::Missing,
    }
}

/// Go on from the value `span` (of `kind`) of `text`, found for one
/// segment of a path, with the path's `rest` (`None`: it ends here).
fn step<'a>(text: &'a str, span: Span, kind: Kind, rest: Option<&str>) -> Lookup<'a> {
    let value = &text[span.start as usize..span.end as usize];
    match (kind, rest) {
        (Kind::Object, Some(rest)) => follow(value, rest),
        (Kind::Object | Kind::Array, _) => Lookup::Compound(value),
        (_, Some(_)) => Lookup::Missing,
        (Kind::String, None) if !span.escaped => {
            Lookup::Str(Cow::Borrowed(&value[1..value.len() - 1]))
        }
        (Kind::String, None) => match serde_json::from_str::<String>(value) {
            Ok(s) => Lookup::Str(Cow::Owned(s)),
            Err(_) => Lookup::Missing,
        },
        (Kind::Bool(b), None) => Lookup::Bool(b),
        (Kind::Null, None) => Lookup::Null,
        (Kind::Number, None) => Lookup::Number(value),
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

/// Whether `s` is `eventTime` exactly as CloudTrail writes it
/// (`2023-07-10T11:45:12Z`: UTC, whole seconds) and names a real instant:
/// a day that exists in its month, no leap second. Such a text is already
/// in the form findings store (RFC 3339, `Z`), so it need not be parsed
/// and formatted again. ("CloudTrail record contents", `eventTime`:
/// <https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html>.)
pub fn is_canonical_event_time(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return false;
    }
    let num = |i: usize, n: usize| -> Option<i64> {
        b[i..i + n].iter().try_fold(0i64, |v, &c| {
            c.is_ascii_digit().then(|| v * 10 + i64::from(c - b'0'))
        })
    };
    let (Some(year), Some(month), Some(day), Some(hour), Some(min), Some(sec)) = (
        num(0, 4),
        num(5, 2),
        num(8, 2),
        num(11, 2),
        num(14, 2),
        num(17, 2),
    ) else {
        return false;
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day) && hour <= 23 && min <= 59 && sec <= 59
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

/// `text` (JSON) with every lone UTF-16 surrogate escape (`\ud800` without
/// its pair, or a stray `\udc00`) replaced by `\ufffd`, the replacement
/// character; `None` when there is none. JSON allows such escapes
/// (RFC 8259, section 8.2) but they name no character, so a strict parser
/// refuses the whole text.
pub(crate) fn repair_surrogates(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let hex = |i: usize| -> Option<u16> {
        if b.get(i) == Some(&b'\\') && b.get(i + 1) == Some(&b'u') {
            u16::from_str_radix(text.get(i + 2..i + 6)?, 16).ok()
        } else {
            None
        }
    };
    let mut out = String::new();
    let (mut i, mut last) = (0usize, 0usize);
    while let Some(at) = memchr::memchr(b'\\', &b[i..]) {
        i += at;
        match hex(i) {
            Some(0xD800..=0xDBFF) if matches!(hex(i + 6), Some(0xDC00..=0xDFFF)) => i += 12,
            Some(0xD800..=0xDFFF) => {
                out.push_str(&text[last..i]);
                out.push_str("\\ufffd");
                i += 6;
                last = i;
            }
            Some(_) => i += 6,
            None => i += 2,
        }
        if i >= b.len() {
            break;
        }
    }
    if last == 0 {
        return None;
    }
    out.push_str(&text[last..]);
    Some(out)
}

#[cfg(test)]
mod tests;
