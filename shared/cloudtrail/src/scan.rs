//! One-pass framing and top-level parsing of a record.
//!
//! Reading a record used to take two passes: one to find where it ends in
//! the buffer, one to parse it. [`parse_object`] does both at once: it walks
//! the top-level object key by key, notes where each value the model names
//! lies (a byte range), and skips nested objects and arrays with
//! [`scan_value`] (strings skipped with a SIMD search, brackets counted, no
//! recursion). `userIdentity`, which the rules read on nearly every record,
//! is walked member by member instead, with the objects in it down to
//! [`WALK_LEVELS`] levels (recursion bounded by that). Nested values are
//! parsed later, by `serde_json`, only if a rule reads them; string values
//! with escapes are unescaped by `serde_json`.
//!
//! The top level is checked strictly (keys, colons, commas, literals,
//! numbers); inside nested values only strings and bracket balance are
//! checked here, the rest when `serde_json` parses them.

use memchr::memchr2;

/// The result of framing one JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scan {
    /// The value is complete and this many bytes long.
    Complete(usize),
    /// The data ends inside the value.
    Incomplete,
    /// The value nests deeper than allowed.
    TooDeep,
    /// The value is malformed at this offset (relative).
    Invalid(usize),
}

/// Find the end of the JSON value at the start of `b` without parsing it.
pub(crate) fn scan_value(b: &[u8], max_depth: usize) -> Scan {
    match b.first() {
        None => Scan::Incomplete,
        Some(b'{' | b'[') => scan_brackets(b, max_depth),
        Some(b'"') => match skip_string(b, 0) {
            Some((end, _)) => Scan::Complete(end),
            None => Scan::Incomplete,
        },
        Some(_) => match b.iter().position(|c| is_delimiter(*c)) {
            Some(0) => Scan::Invalid(0),
            Some(n) => Scan::Complete(n),
            None => Scan::Incomplete,
        },
    }
}

#[inline]
fn is_delimiter(c: u8) -> bool {
    matches!(c, b',' | b']' | b'}' | b' ' | b'\n' | b'\r' | b'\t' | b':')
}

#[inline]
fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\n' | b'\r' | b'\t')
}

/// Skip the string whose opening quote is at `at`. Returns the offset just
/// past the closing quote and whether the string has escapes.
#[inline]
fn skip_string(b: &[u8], at: usize) -> Option<(usize, bool)> {
    let mut i = at + 1;
    let mut escaped = false;
    loop {
        let p = memchr2(b'"', b'\\', b.get(i..)?)?;
        if b[i + p] == b'\\' {
            escaped = true;
            i += p + 2;
        } else {
            return Some((i + p + 1, escaped));
        }
    }
}

fn scan_brackets(b: &[u8], max_depth: usize) -> Scan {
    let mut depth = 0usize;
    let mut i = 0usize;
    while i < b.len() {
        match b[i] {
            b'"' => match skip_string(b, i) {
                Some((end, _)) => i = end,
                None => return Scan::Incomplete,
            },
            b'{' | b'[' => {
                depth += 1;
                if depth > max_depth {
                    return Scan::TooDeep;
                }
                i += 1;
            }
            b'}' | b']' => {
                if depth == 0 {
                    return Scan::Invalid(i);
                }
                depth -= 1;
                i += 1;
                if depth == 0 {
                    return Scan::Complete(i);
                }
            }
            _ => i += 1,
        }
    }
    Scan::Incomplete
}

/// A byte range of a value in the record text. Strings include their quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    pub start: u32,
    pub end: u32,
    /// A string with backslash escapes (needs unescaping).
    pub escaped: bool,
}

/// The kind of JSON value a span holds, from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    String,
    Object,
    Array,
    Bool(bool),
    Null,
    Number,
}

impl Kind {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Kind::String => "a string",
            Kind::Object => "an object",
            Kind::Array => "an array",
            Kind::Bool(_) => "a boolean",
            Kind::Null => "null",
            Kind::Number => "a number",
        }
    }
}

/// The top-level fields the record model names, in slot order.
pub(crate) const FIELDS: [&str; 32] = [
    // Strings.
    "eventVersion",
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "errorCode",
    "errorMessage",
    "requestID",
    "eventID",
    "eventType",
    "recipientAccountId",
    "eventCategory",
    "detail-type",
    "sessionCredentialFromConsole",
    "sharedEventID",
    "vpcEndpointId",
    "vpcEndpointAccountId",
    // Booleans.
    "readOnly",
    "managementEvent",
    // Nested values kept raw.
    "userIdentity",
    "requestParameters",
    "responseElements",
    "additionalEventData",
    "resources",
    "tlsDetails",
    "serviceEventDetails",
    // EventBridge envelope body.
    "detail",
    // Digest and S3 delivery files.
    "digestStartTime",
    "Records",
    "logFiles",
];

/// Number of string slots (the first fields of [`FIELDS`]).
pub(crate) const STRINGS: usize = 19;
/// Slot of the first boolean.
pub(crate) const BOOLS: usize = 19;
/// Slot of the first nested value.
pub(crate) const NESTED: usize = 21;
/// Slot of `detail`.
pub(crate) const DETAIL: usize = 28;
/// Slot of `digestStartTime`.
pub(crate) const DIGEST: usize = 29;
/// Slot of `Records`.
pub(crate) const RECORDS: usize = 30;
/// Slot of `eventName`.
pub(crate) const EVENT_NAME: usize = 3;

#[inline]
fn slot(key: &[u8]) -> Option<usize> {
    Some(match key {
        b"eventVersion" => 0,
        b"eventTime" => 1,
        b"eventSource" => 2,
        b"eventName" => 3,
        b"awsRegion" => 4,
        b"sourceIPAddress" => 5,
        b"userAgent" => 6,
        b"errorCode" => 7,
        b"errorMessage" => 8,
        b"requestID" => 9,
        b"eventID" => 10,
        b"eventType" => 11,
        b"recipientAccountId" => 12,
        b"eventCategory" => 13,
        b"detail-type" => 14,
        b"sessionCredentialFromConsole" => 15,
        b"sharedEventID" => 16,
        b"vpcEndpointId" => 17,
        b"vpcEndpointAccountId" => 18,
        b"readOnly" => 19,
        b"managementEvent" => 20,
        b"userIdentity" => 21,
        b"requestParameters" => 22,
        b"responseElements" => 23,
        b"additionalEventData" => 24,
        b"resources" => 25,
        b"tlsDetails" => 26,
        b"serviceEventDetails" => 27,
        b"detail" => 28,
        b"digestStartTime" => 29,
        b"Records" => 30,
        b"logFiles" => 31,
        _ => return None,
    })
}

/// Where the named fields of one object lie, and their kinds.
#[derive(Debug, Clone)]
pub(crate) struct Fields {
    pub spans: [Option<(Span, Kind)>; FIELDS.len()],
    /// Top-level keys seen (the first 8), for messages about unknown shapes.
    keys: [Span; 8],
    key_count: usize,
    /// The members of `userIdentity` and of the objects in it, read in
    /// place of passing over the object (the engine looks inside it for
    /// nearly every record; a walk that succeeds costs about what passing
    /// over does); `None` when it is not an object, is not well formed
    /// throughout, or its own members do not fit (it is then passed over,
    /// and walked on first lookup).
    pub identity: Option<Walk>,
}

/// Object levels a [`Walk`] goes down (`userIdentity`, `sessionContext`,
/// `sessionIssuer`); deeper objects are passed over, and walked on first
/// lookup. A walk that fails passes over the object again at each walked
/// level above it, so this also bounds that repeat (and the recursion).
pub(crate) const WALK_LEVELS: usize = 3;
/// Most objects a [`Walk`] holds (`userIdentity`, `sessionContext`,
/// `sessionIssuer`, `attributes`, `webIdFederationData`, ...).
pub(crate) const WALK_OBJECTS: usize = 6;
/// Most members a [`Walk`] holds, all its objects together (an assumed
/// role's identity objects hold about eighteen).
pub(crate) const WALK_MEMBERS: usize = 24;
/// Most members of one object a [`Walk`] holds.
const WALK_OWN: usize = 16;

/// One member of an object: where its raw key (escapes left as they are,
/// without the quotes) and its value lie, in bytes from the start of the
/// text it was found in (the record's, in a [`Walk`]; the object's own, in
/// a record's lookup cache), and the value's kind.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Member {
    pub key: (u32, u32),
    pub value: Span,
    pub kind: Kind,
}

/// Objects read member by member by [`parse_object`]: each object's
/// members are contiguous in `members`, in order.
#[derive(Debug, Clone)]
pub(crate) struct Walk {
    /// (where the object's `{` is, first member, member count)
    objects: [(u32, u8, u8); WALK_OBJECTS],
    object_count: u8,
    members: [Member; WALK_MEMBERS],
    member_count: u8,
}

impl Walk {
    const NONE: Member = Member {
        key: (0, 0),
        value: Span {
            start: 0,
            end: 0,
            escaped: false,
        },
        kind: Kind::Null,
    };

    fn new() -> Walk {
        Walk {
            objects: [(0, 0, 0); WALK_OBJECTS],
            object_count: 0,
            members: [Walk::NONE; WALK_MEMBERS],
            member_count: 0,
        }
    }

    /// Each object walked: where its `{` is, and its members in order.
    pub fn objects(&self) -> impl Iterator<Item = (u32, &[Member])> {
        self.objects[..self.object_count as usize]
            .iter()
            .map(|&(at, first, n)| (at, &self.members[first as usize..(first + n) as usize]))
    }
}

impl Fields {
    /// The first top-level keys (up to 8).
    pub fn first_keys(&self) -> &[Span] {
        &self.keys[..self.key_count]
    }
}

/// Why an object could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// The data ends inside the object.
    Incomplete,
    /// Nested deeper than allowed.
    TooDeep,
    /// Malformed at this offset.
    Invalid(usize, &'static str),
}

/// Parse the object at the start of `b` (which starts with `{`): its length
/// and where its named fields are.
pub(crate) fn parse_object(b: &[u8], max_depth: usize) -> Result<(usize, Fields), ParseError> {
    use ParseError::{Incomplete, Invalid};
    let mut fields = Fields {
        spans: [None; FIELDS.len()],
        keys: [Span::default(); 8],
        key_count: 0,
        identity: None,
    };
    let ws = |i: &mut usize| {
        while *i < b.len() && is_ws(b[*i]) {
            *i += 1;
        }
    };
    let mut i = 1;
    ws(&mut i);
    if b.get(i) == Some(&b'}') {
        return Ok((i + 1, fields));
    }
    loop {
        ws(&mut i);
        match b.get(i) {
            None => return Err(Incomplete),
            Some(b'"') => {}
            Some(_) => return Err(Invalid(i, "expected a quoted key")),
        }
        let (key_end, key_escaped) = skip_string(b, i).ok_or(Incomplete)?;
        let key = &b[i + 1..key_end - 1];
        if fields.key_count < fields.keys.len() {
            fields.keys[fields.key_count] = span(i + 1, key_end - 1, key_escaped);
            fields.key_count += 1;
        }
        i = key_end;
        ws(&mut i);
        match b.get(i) {
            None => return Err(Incomplete),
            Some(b':') => i += 1,
            Some(_) => return Err(Invalid(i, "expected ':' after a key")),
        }
        ws(&mut i);
        let start = i;
        let (end, kind, escaped) = match b.get(i) {
            None => return Err(Incomplete),
            Some(b'"') => {
                let (end, escaped) = skip_string(b, i).ok_or(Incomplete)?;
                (end, Kind::String, escaped)
            }
            Some(c @ (b'{' | b'[')) => {
                let kind = if *c == b'{' {
                    Kind::Object
                } else {
                    Kind::Array
                };
                let identity = !key_escaped && key == b"userIdentity";
                if identity {
                    // The last of duplicate keys counts, as for `spans`.
                    fields.identity = None;
                }
                let walked = if identity && kind == Kind::Object && max_depth >= 3 && walking() {
                    let mut walk = Walk::new();
                    let end = walk_object(b, i, max_depth - 2, WALK_LEVELS, &mut walk);
                    if end.is_some() {
                        fields.identity = Some(walk);
                    }
                    end
                } else {
                    None
                };
                match walked {
                    Some(end) => (end, kind, false),
                    None => match scan_brackets(&b[i..], max_depth.saturating_sub(1)) {
                        Scan::Complete(n) => (i + n, kind, false),
                        Scan::Incomplete => return Err(Incomplete),
                        Scan::TooDeep => return Err(ParseError::TooDeep),
                        Scan::Invalid(at) => return Err(Invalid(i + at, "unbalanced brackets")),
                    },
                }
            }
            Some(b't') => (literal(b, i, b"true")?, Kind::Bool(true), false),
            Some(b'f') => (literal(b, i, b"false")?, Kind::Bool(false), false),
            Some(b'n') => (literal(b, i, b"null")?, Kind::Null, false),
            Some(b'-' | b'0'..=b'9') => (number(b, i)?, Kind::Number, false),
            Some(_) => return Err(Invalid(i, "expected a JSON value")),
        };
        if !key_escaped && key == b"userIdentity" && kind != Kind::Object {
            fields.identity = None;
        }
        if !key_escaped {
            if let Some(s) = slot(key) {
                fields.spans[s] = Some((span(start, end, escaped), kind));
            }
        }
        i = end;
        ws(&mut i);
        match b.get(i) {
            None => return Err(Incomplete),
            Some(b',') => i += 1,
            Some(b'}') => return Ok((i + 1, fields)),
            Some(_) => return Err(Invalid(i, "expected ',' or '}' after a value")),
        }
    }
}

/// Whether [`parse_object`] walks `userIdentity` (always, but in the tests
/// that compare it with passing over the object).
#[cfg(not(test))]
#[inline(always)]
fn walking() -> bool {
    true
}

#[cfg(test)]
thread_local! {
    pub(crate) static WALKING: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
}

#[cfg(test)]
fn walking() -> bool {
    WALKING.with(|w| w.get())
}

/// Walk the object at `b[at]` (a `{`) member by member, reading each as
/// [`members_from`] does but checking every value (strings closed, literals
/// and numbers valid, nested values balanced within `depth` levels by
/// [`scan_brackets`]), and the objects in it the same way down to `levels`
/// object levels (this one included) while `out` has room (an object
/// deeper, that fails or does not fit is passed over with
/// [`scan_brackets`]): where it ends (just after its `}`), its members and
/// theirs recorded in `out`; `None` (and `out` as it was) when any of that
/// fails, it has more than `WALK_OWN` members or `out` has no room left for
/// them. The end is then where [`scan_brackets`] finds it, and the members
/// are those [`members_from`] finds.
fn walk_object(b: &[u8], at: usize, depth: usize, levels: usize, out: &mut Walk) -> Option<usize> {
    let mark = (out.object_count, out.member_count);
    let end = walk_members(b, at, depth, levels, out);
    if end.is_none() {
        (out.object_count, out.member_count) = mark;
    }
    end
}

fn walk_members(b: &[u8], at: usize, depth: usize, levels: usize, out: &mut Walk) -> Option<usize> {
    // The object's own members wait here while the objects in it are
    // recorded, so that each object's members are contiguous.
    let mut own = [Walk::NONE; WALK_OWN];
    let mut count = 0usize;
    let mut i = at + 1;
    skip_ws(b, &mut i);
    let end = if b.get(i) == Some(&b'}') {
        i + 1
    } else {
        loop {
            let (key_start, key_end, start) = member_head(b, i)?;
            let key = (key_start as u32, key_end as u32);
            i = start;
            let (end, kind, escaped) = match *b.get(i)? {
                b'"' => {
                    let (end, escaped) = skip_string(b, i)?;
                    (end, Kind::String, escaped)
                }
                b'{' if depth >= 1 && levels > 1 => {
                    match walk_object(b, i, depth - 1, levels - 1, out) {
                        Some(end) => (end, Kind::Object, false),
                        // Not walked (no room, or not well formed): passed
                        // over as before.
                        None => match scan_brackets(&b[i..], depth) {
                            Scan::Complete(n) => (i + n, Kind::Object, false),
                            _ => return None,
                        },
                    }
                }
                c @ (b'{' | b'[') => match scan_brackets(&b[i..], depth) {
                    Scan::Complete(n) => {
                        let kind = if c == b'{' { Kind::Object } else { Kind::Array };
                        (i + n, kind, false)
                    }
                    _ => return None,
                },
                b't' => (literal(b, i, b"true").ok()?, Kind::Bool(true), false),
                b'f' => (literal(b, i, b"false").ok()?, Kind::Bool(false), false),
                b'n' => (literal(b, i, b"null").ok()?, Kind::Null, false),
                b'-' | b'0'..=b'9' => (number(b, i).ok()?, Kind::Number, false),
                _ => return None,
            };
            *own.get_mut(count)? = Member {
                key,
                value: span(start, end, escaped),
                kind,
            };
            count += 1;
            i = end;
            skip_ws(b, &mut i);
            match b.get(i) {
                Some(b',') => i += 1,
                Some(b'}') => break i + 1,
                _ => return None,
            }
        }
    };
    let first = out.member_count as usize;
    if out.object_count as usize == WALK_OBJECTS || first + count > WALK_MEMBERS {
        return None;
    }
    out.members[first..first + count].copy_from_slice(&own[..count]);
    out.member_count += count as u8;
    out.objects[out.object_count as usize] = (at as u32, first as u8, count as u8);
    out.object_count += 1;
    Some(end)
}

/// The member whose text starts at `i` (white space first): where its raw
/// key lies (without the quotes), and where its value starts (after the
/// colon and white space); `None` where the text there is not `"key":`.
fn member_head(b: &[u8], mut i: usize) -> Option<(usize, usize, usize)> {
    skip_ws(b, &mut i);
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let (key_end, _) = skip_string(b, i)?;
    let key = (i + 1, key_end - 1);
    i = key_end;
    skip_ws(b, &mut i);
    if b.get(i) != Some(&b':') {
        return None;
    }
    i += 1;
    skip_ws(b, &mut i);
    Some((key.0, key.1, i))
}

/// Move `i` past white space.
#[inline]
fn skip_ws(b: &[u8], i: &mut usize) {
    while *i < b.len() && is_ws(b[*i]) {
        *i += 1;
    }
}

/// Find the value of `key` among the top-level keys of the object at the
/// start of `b` (which starts with `{`), without building anything.
/// `None` when the key is absent or the object is malformed.
pub(crate) fn find_key(b: &[u8], key: &[u8]) -> Option<(Span, Kind)> {
    let mut found = None;
    members(b, |this, span, kind| {
        if this == key {
            found = Some((span, kind));
            return false;
        }
        true
    });
    found
}

/// Call `f` with each top-level member of the object at the start of `b`
/// (which starts with `{`): its raw key (escapes left as they are), the
/// span of its value and the value's kind, in order, until `f` answers
/// false. Stops quietly where the object is malformed.
pub(crate) fn members(b: &[u8], f: impl FnMut(&[u8], Span, Kind) -> bool) {
    if b.first() == Some(&b'{') {
        members_from(b, 1, f);
    }
}

/// [`members`] from byte `i` of `b` (just after the `{`, or a position an
/// earlier call returned). Returns where the next member starts when `f`
/// answered false and the object goes on, `None` when the object ended or
/// is malformed there.
pub(crate) fn members_from(
    b: &[u8],
    mut i: usize,
    mut f: impl FnMut(&[u8], Span, Kind) -> bool,
) -> Option<usize> {
    loop {
        let (key_start, key_end, start) = member_head(b, i)?;
        let this = &b[key_start..key_end];
        i = start;
        let first = *b.get(i)?;
        let (end, kind, escaped) = match first {
            b'"' => {
                let (end, escaped) = skip_string(b, i)?;
                (end, Kind::String, escaped)
            }
            b'{' | b'[' => {
                let kind = if first == b'{' {
                    Kind::Object
                } else {
                    Kind::Array
                };
                match scan_brackets(&b[i..], usize::MAX) {
                    Scan::Complete(n) => (i + n, kind, false),
                    _ => return None,
                }
            }
            b't' => (i + 4, Kind::Bool(true), false),
            b'f' => (i + 5, Kind::Bool(false), false),
            b'n' => (i + 4, Kind::Null, false),
            _ => {
                let n = b[i..].iter().position(|c| is_delimiter(*c))?;
                (i + n, Kind::Number, false)
            }
        };
        let go_on = f(this, span(start, end, escaped), kind);
        i = end;
        skip_ws(b, &mut i);
        if b.get(i) != Some(&b',') {
            return None;
        }
        i += 1;
        if !go_on {
            return Some(i);
        }
    }
}

fn span(start: usize, end: usize, escaped: bool) -> Span {
    Span {
        start: start as u32,
        end: end as u32,
        escaped,
    }
}

fn literal(b: &[u8], i: usize, word: &'static [u8]) -> Result<usize, ParseError> {
    let have = &b[i..b.len().min(i + word.len())];
    if have.len() < word.len() {
        return if word.starts_with(have) {
            Err(ParseError::Incomplete)
        } else {
            Err(ParseError::Invalid(i, "invalid literal"))
        };
    }
    if have != word {
        return Err(ParseError::Invalid(i, "invalid literal"));
    }
    match b.get(i + word.len()) {
        None => Err(ParseError::Incomplete),
        Some(&c) if is_delimiter(c) => Ok(i + word.len()),
        Some(_) => Err(ParseError::Invalid(i, "invalid literal")),
    }
}

fn number(b: &[u8], i: usize) -> Result<usize, ParseError> {
    let mut j = i;
    if b[j] == b'-' {
        j += 1;
    }
    let digits = |j: &mut usize| {
        let s = *j;
        while *j < b.len() && b[*j].is_ascii_digit() {
            *j += 1;
        }
        *j - s
    };
    if digits(&mut j) == 0 {
        return if j >= b.len() {
            Err(ParseError::Incomplete)
        } else {
            Err(ParseError::Invalid(i, "invalid number"))
        };
    }
    if b.get(j) == Some(&b'.') {
        j += 1;
        if digits(&mut j) == 0 && j < b.len() {
            return Err(ParseError::Invalid(i, "invalid number"));
        }
    }
    if matches!(b.get(j), Some(b'e' | b'E')) {
        j += 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if digits(&mut j) == 0 && j < b.len() {
            return Err(ParseError::Invalid(i, "invalid number"));
        }
    }
    match b.get(j) {
        None => Err(ParseError::Incomplete),
        Some(&c) if is_delimiter(c) => Ok(j),
        Some(_) => Err(ParseError::Invalid(i, "invalid number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_frames_values() {
        assert_eq!(scan_value(br#"{"a":"}"}, "#, 8), Scan::Complete(9));
        assert_eq!(scan_value(br#"{"a":"\"}"}"#, 8), Scan::Complete(11));
        assert_eq!(scan_value(br#"{"a":[1,{"b":2}]}x"#, 8), Scan::Complete(17));
        assert_eq!(scan_value(br#"{"a":"#, 8), Scan::Incomplete);
        assert_eq!(scan_value(br#"[[[[1]]]]"#, 3), Scan::TooDeep);
        assert_eq!(scan_value(b"123,", 3), Scan::Complete(3));
        assert_eq!(scan_value(b"\"x\\\"\",", 3), Scan::Complete(5));
        assert_eq!(scan_value(b"{\"a\":\"\\", 3), Scan::Incomplete);
    }

    fn text(b: &[u8], f: &Fields, slot: usize) -> Option<String> {
        f.spans[slot].map(|(s, _)| {
            String::from_utf8_lossy(&b[s.start as usize..s.end as usize]).into_owned()
        })
    }

    #[test]
    fn every_named_field_has_its_own_slot() {
        for (i, name) in FIELDS.iter().enumerate() {
            assert_eq!(slot(name.as_bytes()), Some(i), "{name}");
        }
        assert_eq!(FIELDS[STRINGS - 1], "vpcEndpointAccountId");
        assert_eq!(FIELDS[BOOLS], "readOnly");
        assert_eq!(FIELDS[NESTED], "userIdentity");
        assert_eq!(FIELDS[DETAIL], "detail");
        assert_eq!(FIELDS[DIGEST], "digestStartTime");
        assert_eq!(FIELDS[RECORDS], "Records");
        assert_eq!(FIELDS[EVENT_NAME], "eventName");
        assert_eq!(slot(b"userName"), None);
    }

    #[test]
    fn parses_the_top_level_in_one_pass() {
        let b = br#"{ "eventName" : "A\"b", "x": [1, {"eventName": "no"}], "readOnly":true, "n": -1.5e3, "requestParameters": null, "userIdentity": {"a": "}"} } tail"#;
        let (len, f) = parse_object(b, 64).unwrap();
        assert_eq!(&b[len..], b" tail");
        assert_eq!(text(b, &f, EVENT_NAME).as_deref(), Some(r#""A\"b""#));
        assert!(f.spans[EVENT_NAME].unwrap().0.escaped);
        assert_eq!(f.spans[BOOLS].unwrap().1, Kind::Bool(true));
        assert_eq!(f.spans[NESTED + 1].unwrap().1, Kind::Null);
        assert_eq!(text(b, &f, NESTED).as_deref(), Some(r#"{"a": "}"}"#));
        assert_eq!(f.first_keys().len(), 6);
    }

    #[test]
    fn reports_incomplete_and_invalid() {
        for cut in [1, 5, 14, 16, 20, 27, 30] {
            let b = br#"{"eventName":"A","readOnly":true}"#;
            assert_eq!(
                parse_object(&b[..cut], 64).unwrap_err(),
                ParseError::Incomplete,
                "cut {cut}"
            );
        }
        assert!(matches!(
            parse_object(br#"{"a" 1}"#, 64),
            Err(ParseError::Invalid(5, _))
        ));
        assert!(matches!(
            parse_object(br#"{"a":tru}"#, 64),
            Err(ParseError::Invalid(5, _))
        ));
        assert!(matches!(
            parse_object(br#"{"a":1.2.3}"#, 64),
            Err(ParseError::Invalid(5, _))
        ));
        assert!(matches!(
            parse_object(br#"{"a":1 "b":2}"#, 64),
            Err(ParseError::Invalid(7, _))
        ));
        assert!(matches!(
            parse_object(br#"{a:1}"#, 64),
            Err(ParseError::Invalid(1, _))
        ));
        assert_eq!(
            parse_object(br#"{"a":[[[1]]]}"#, 3).unwrap_err(),
            ParseError::TooDeep
        );
        assert_eq!(parse_object(br#"{}"#, 3).unwrap().0, 2);
    }
}
