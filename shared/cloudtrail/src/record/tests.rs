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

/// The paths the identity tests look up.
const IDENTITY_PATHS: [&str; 28] = [
    "type",
    "arn",
    "accessKeyId",
    "principalId",
    "accountId",
    "invokedBy",
    "userName",
    "sessionContext",
    "sessionContext.sessionIssuer.arn",
    "sessionContext.sessionIssuer.userName",
    "sessionContext.attributes.mfaAuthenticated",
    "sessionContext.ec2RoleDelivery",
    "sessionContext.webIdFederationData",
    "sessionContext.a.b.c.d.e.f.g",
    "sessionContext.o6.x",
    "sessionContext.attributes.n",
    "n",
    "t",
    "f",
    "z",
    "l",
    "l.a",
    "k3",
    "k39",
    "bad",
    "deep",
    "deep.a.a.a",
    r"acc\u0065ssKeyId",
];

/// `raw` parsed (under `max_depth`) with `userIdentity` walked by the
/// reader and with it passed over (`WALKING` off): the same record or
/// the same error, and every lookup of `paths` the same, in the record
/// and laid over a copy of its text (which reads nothing ahead). How
/// many objects the reader walked (`None`: no record).
fn same_as_passed_over(raw: &str, max_depth: usize, paths: &[&str]) -> Option<usize> {
    let read = Record::parse_within(raw, max_depth);
    crate::scan::WALKING.with(|w| w.set(false));
    let passed = Record::parse_within(raw, max_depth);
    crate::scan::WALKING.with(|w| w.set(true));
    let (read, passed) = match (read, passed) {
        (Ok(read), Ok(passed)) => (read, passed),
        (Err(a), Err(b)) => {
            assert_eq!(a, b, "{raw}");
            return None;
        }
        (a, b) => panic!("{raw}: read {:?}, passed over {:?}", a.err(), b.err()),
    };
    assert!(passed.members.borrow().objects.is_empty());
    assert_eq!(read.user_agent(), passed.user_agent(), "{raw}");
    assert_eq!(
        read.nested_raw("userIdentity"),
        passed.nested_raw("userIdentity"),
        "{raw}"
    );
    let copy = raw.to_owned();
    let later = read.layout().record(&copy).expect("same text");
    assert!(later.members.borrow().objects.is_empty());
    let walked = read.members.borrow().objects.len();
    for path in paths {
        let found = read.lookup("userIdentity", path);
        assert_eq!(
            found,
            passed.lookup("userIdentity", path),
            "{path} in {raw}"
        );
        assert_eq!(found, later.lookup("userIdentity", path), "{path} in {raw}");
    }
    Some(walked)
}

fn with_identity(identity: &str, first: &str) -> String {
    format!(
        r#"{{"eventVersion":"1.09",{first}"eventTime":"2026-11-02T08:00:00Z","eventName":"X","userIdentity":{identity},"userAgent":"u"}}"#
    )
}

/// `userIdentity` read member by member with the record reads and
/// answers every lookup as passing over it and walking it on first
/// lookup does, whatever its shape: duplicate and escaped keys, many
/// members or objects, deep or malformed values, a second
/// `userIdentity`.
#[test]
fn identity_read_with_the_record_answers_as_a_later_walk() {
    let many: String = (0..40).map(|i| format!(r#""k{i}":{i},"#)).collect();
    let deep = format!("{}1{}", r#"{"a":"#.repeat(70), "}".repeat(70));
    let objects: String = (0..8).map(|i| format!(r#""o{i}":{{"x":{i}}},"#)).collect();
    let members: String = (0..4)
        .map(|i| {
            let inner: String = (0..7).map(|j| format!(r#""m{j}":{j},"#)).collect();
            format!(r#""s{i}":{{{inner}"x":1}},"#)
        })
        .collect();
    let identities = [
        r#"{"type":"AssumedRole","principalId":"AROA:s","arn":"arn:aws:sts::1:assumed-role/r/s","accountId":"1","accessKeyId":"ASIA","sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::1:role/r","userName":"r"},"webIdFederationData":{},"attributes":{"creationDate":"2026-11-02T08:00:00Z","mfaAuthenticated":"false"},"ec2RoleDelivery":"2.0"},"invokedBy":"ec2.amazonaws.com"}"#.to_owned(),
        r#"{"type":"IAMUser","type":"Root","arn":"a\"b","acc\u0065ssKeyId":"x","accessKeyId":"AKIA","n":-1.5e3,"t":true,"f":false,"z":null,"l":[1,{"a":2}]}"#.to_owned(),
        format!(r#"{{{many}"type":"IAMUser","sessionContext":{{"attributes":{{"mfaAuthenticated":"true"}}}}}}"#),
        r#"{"type":"x","sessionContext":{"a":{"b":{"c":{"d":{"e":{"f":{"g":"h"}}}}}}}}"#.to_owned(),
        format!(r#"{{"type":"x","deep":{deep}}}"#),
        format!(r#"{{"type":"x","sessionContext":{{{objects}"y":1}}}}"#),
        format!(r#"{{"type":"x","sessionContext":{{{members}"y":1}}}}"#),
        r#"{ "type" : "x" , "sessionContext" : { "attributes" : { "mfaAuthenticated" : "true" } } }"#.to_owned(),
        r#"{"type":"x","bad":tru}"#.to_owned(),
        r#"{"type":"x","n":12ab}"#.to_owned(),
        r#"{"type":"x","sessionContext":{"attributes":{"m":tru}},"arn":"y"}"#.to_owned(),
        r#"{"type":"x",}"#.to_owned(),
        r#"{}"#.to_owned(),
        r#""not an object""#.to_owned(),
    ];
    let mut walked = Vec::new();
    for identity in &identities {
        for first in ["", r#""userIdentity":{"type":"first"},"#] {
            let raw = with_identity(identity, first);
            walked.push(same_as_passed_over(&raw, PARSE_MAX_DEPTH, &IDENTITY_PATHS));
        }
    }
    // Objects read with the record, per identity (twice each): all
    // five of the AssumedRole one; three levels of the deep chain;
    // none of one nested too deep for a record, of one whose own
    // members do not fit, or of a malformed one (walked on first
    // lookup); a malformed object in it is passed over; an object
    // whose members (its own, or with those in it) pass six objects or
    // 24 members is passed over, with everything in it.
    let expected = [
        Some(5),
        Some(1),
        Some(0),
        Some(3),
        None,
        Some(1),
        Some(1),
        Some(3),
        Some(0),
        Some(0),
        Some(2),
        Some(0),
        Some(1),
        Some(0),
    ];
    let once: Vec<Option<usize>> = walked.iter().step_by(2).copied().collect();
    assert_eq!(once, expected);
    assert_eq!(
        walked
            .iter()
            .skip(1)
            .step_by(2)
            .copied()
            .collect::<Vec<_>>(),
        expected
    );
}

/// At every nesting limit, from the smallest that holds a record, the
/// reader reads `userIdentity` (or fails) exactly as passing over it
/// does, limits on either side of the identity's own depth included.
#[test]
fn identity_read_at_every_nesting_limit() {
    let chain = |n: usize| format!("{}1{}", r#"{"a":"#.repeat(n), "}".repeat(n));
    let paths = [
        "a",
        "a.a",
        "a.a.a",
        "type",
        "sessionContext.attributes.mfaAuthenticated",
    ];
    for levels in 0..7 {
        let identity = format!(
            r#"{{"type":"x","a":{},"sessionContext":{{"attributes":{{"mfaAuthenticated":"true"}}}}}}"#,
            chain(levels)
        );
        let raw = with_identity(&identity, "");
        for max_depth in 1..12 {
            same_as_passed_over(&raw, max_depth, &paths);
        }
    }
}

/// Thousands of damaged identities (bytes replaced, dropped or
/// repeated, from a fixed seed): the record reads exactly as it does
/// when `userIdentity` is passed over and walked on first lookup (the
/// same record or the same error), and every lookup answers the same.
#[test]
fn a_damaged_identity_reads_as_when_it_is_passed_over() {
    let identity = r#"{"type":"AssumedRole","principalId":"AROA:s","arn":"arn:aws:sts::1:assumed-role/r/s","accountId":"1","accessKeyId":"ASIA","sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::1:role/r","userName":"r"},"webIdFederationData":{},"attributes":{"creationDate":"2026-11-02T08:00:00Z","mfaAuthenticated":false,"n":-1.5e3},"ec2RoleDelivery":"2.0"},"l":[1,{"a":null}],"invokedBy":"ec2.amazonaws.com"}"#;
    let alphabet = br#"{}[]":,\ tfnrue0-9.eaE"#;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let (mut parsed, mut walked) = (0, 0);
    for _ in 0..20_000 {
        let mut text = identity.as_bytes().to_vec();
        for _ in 0..1 + next(3) {
            let at = next(text.len());
            match next(3) {
                0 => text[at] = alphabet[next(alphabet.len())],
                1 => {
                    text.remove(at);
                }
                _ => text.insert(at, text[at]),
            }
        }
        let Ok(text) = String::from_utf8(text) else {
            continue;
        };
        if let Some(objects) =
            same_as_passed_over(&with_identity(&text, ""), PARSE_MAX_DEPTH, &IDENTITY_PATHS)
        {
            parsed += 1;
            walked += usize::from(objects > 0);
        }
    }
    // Both kinds were met often.
    assert!(
        parsed > 5_000 && walked > 1_000 && walked < parsed,
        "{parsed} {walked}"
    );
}

#[test]
fn record_borrows_and_keeps_unknown_fields() {
    let raw = r#"{"eventVersion":"1.08","eventTime":"2023-07-10T11:45:12Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","userAgent":"a\"b","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/x","accessKeyId":"AKIAX"},"requestParameters":null,"somethingNew":{"deep":[1,2]}}"#;
    let r = Record::parse(raw).unwrap();
    assert_eq!(r.event_name(), Some("GetObject"));
    assert!(matches!(
        r.strs[EVENT_NAME].as_ref().unwrap().0,
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
fn lookup_follows_paths_over_raw_text() {
    let raw = r#"{"eventName":"X","userIdentity":{"type":"AssumedRole","arn":"a\"b","sessionContext":{"sessionIssuer":{"arn":"role"},"n":5,"ok":true}},"requestParameters":{"list":[{"a":1}],"empty":null}}"#;
    let r = Record::parse(raw).unwrap();
    assert_eq!(
        r.lookup("userIdentity", "type"),
        Lookup::Str("AssumedRole".into())
    );
    assert_eq!(r.lookup("userIdentity", "arn"), Lookup::Str("a\"b".into()));
    assert_eq!(
        r.lookup("userIdentity", "sessionContext.sessionIssuer.arn"),
        Lookup::Str("role".into())
    );
    assert_eq!(
        r.lookup("userIdentity", "sessionContext.n"),
        Lookup::Number("5")
    );
    assert_eq!(
        r.lookup("userIdentity", "sessionContext.ok"),
        Lookup::Bool(true)
    );
    assert_eq!(r.lookup("userIdentity", "missing"), Lookup::Missing);
    assert_eq!(r.lookup("userIdentity", "type.deeper"), Lookup::Missing);
    assert_eq!(
        r.lookup("requestParameters", "list.a"),
        Lookup::Compound(r#"[{"a":1}]"#)
    );
    assert_eq!(r.lookup("requestParameters", "empty"), Lookup::Null);
    assert_eq!(r.lookup("responseElements", "x"), Lookup::Missing);
}

/// The member index of a nested object answers exactly as walking its
/// text for each path: first of duplicate keys, raw (escaped) keys,
/// arrays, non-objects, and paths asked in any order on one record.
#[test]
fn indexed_lookup_answers_as_the_walk() {
    let records = [
        r#"{"eventName":"X","userIdentity":{"type":"A","type":"B","k\"q":"x","sessionContext":{"sessionIssuer":{"arn":"r","arn":"s"},"attributes":{"m":"false"}},"n":-1.5e3,"e":"\u00e9","z":[1,{"y":2}]}}"#,
        r#"{"eventName":"X","userIdentity":{},"requestParameters":[{"a":1}],"responseElements":"text","additionalEventData":null}"#,
        r#"{"eventName":"X","userIdentity":{"a":1, "b" : { "c" : true } ,"d":null}}"#,
    ];
    let paths = [
        "type",
        "k\\\"q",
        "k\"q",
        "sessionContext",
        "sessionContext.sessionIssuer.arn",
        "sessionContext.attributes.m",
        "sessionContext.missing",
        "n",
        "e",
        "z",
        "z.y",
        "a",
        "b.c",
        "b",
        "d",
        "d.x",
        "",
        "a.",
        ".a",
        "type.x",
    ];
    for raw in records {
        for order in [false, true] {
            let r = Record::parse(raw).unwrap();
            let mut asked: Vec<&str> = paths.to_vec();
            if order {
                asked.reverse();
            }
            for name in NESTED_FIELDS {
                for path in &asked {
                    let walked = match r.nested_raw(name) {
                        Some(text) => follow(text, path),
                        None => Lookup::Missing,
                    };
                    assert_eq!(r.lookup(name, path), walked, "{raw} {name} {path}");
                }
            }
        }
    }
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
