//! A record laid over a copy of its text (`Record::layout`, then
//! `Layout::record`) is the record the reader delivered: every field the
//! model keeps, nested text, identity and time agree. Checked on shapes the
//! reader treats specially (escaped strings, an EventBridge envelope, a lone
//! surrogate repaired, booleans as text, nulls, JSON lines, an export's
//! embedded strings) and on the public logs in `../shared/corpus` where
//! present.

use trailwarden_cloudtrail::{
    read_object, ReaderOptions, Record, RecordReject, RecordSink, NESTED_FIELDS,
};

/// Every top-level string field CloudTrail writes that the model keeps
/// (`Record::known_str`), and two it does not.
const NAMES: [&str; 20] = [
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
    "apiVersion",
    "sharedEventID",
    "vpcEndpointId",
    "vpcEndpointAccountId",
    "notAField",
    "readOnly",
];

/// What a rule or a finding can see of a record.
fn view(r: &Record<'_>) -> String {
    format!(
        "{:?}",
        (
            r.raw(),
            NAMES.map(|n| r.known_str(n)),
            (r.read_only(), r.management_event(), r.event_time_millis()),
            NESTED_FIELDS.map(|n| r.nested_raw(n)),
            r.identity(),
            r.whole(),
        )
    )
}

#[derive(Default)]
struct Compare {
    records: u64,
    differ: Vec<String>,
}

impl RecordSink for Compare {
    fn record(&mut self, index: u64, r: &Record<'_>) {
        self.records += 1;
        let copy = r.raw().to_owned();
        match r.layout().record(&copy) {
            Some(again) if view(&again) == view(r) => {}
            Some(again) => {
                self.differ
                    .push(format!("record {index}: {} vs {}", view(r), view(&again)))
            }
            None => self.differ.push(format!("record {index}: not placed")),
        }
        // A text of another length is refused, not misread.
        let longer = format!("{copy} ");
        if r.layout().record(&longer).is_some() {
            self.differ
                .push(format!("record {index}: placed on other text"));
        }
    }
    fn reject(&mut self, _: RecordReject) {}
}

fn compare(data: &[u8]) -> Compare {
    let mut compare = Compare::default();
    let _ = read_object(data, &ReaderOptions::default(), &mut compare);
    compare
}

const PLAIN: &str = r#"{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/app/s","accessKeyId":"ASIAEXAMPLE"},"eventTime":"2026-11-02T08:00:00Z","eventSource":"bedrock.amazonaws.com","eventName":"InvokeModel","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.7","userAgent":"Boto3/1.35","requestParameters":{"modelId":"anthropic.claude-3-haiku"},"responseElements":null,"eventID":"e1","readOnly":true,"managementEvent":false,"eventCategory":"Management","resources":[{"ARN":"arn:aws:bedrock:us-east-1::foundation-model/x"}]}"#;

#[test]
fn a_record_laid_over_its_text_is_the_record() {
    let shapes = [
        PLAIN.to_owned(),
        // Escapes in the fields the model keeps, and in nested text.
        r#"{"eventVersion":"1.08","eventTime":"2026-11-02T08:00:00Z","eventSource":"s3.amazonaws.com","eventName":"Get\u004fbject","userAgent":"a\"b\\c\u00e9\n","sourceIPAddress":"\u0031.2.3.4","requestParameters":{"key":"\ud83d\ude00\"}"},"eventID":"e\u0032"}"#.to_owned(),
        // Booleans as text, nulls, white space, a non-ASCII value.
        "{ \"eventVersion\" : \"1.08\" ,\n \"eventTime\":\"2026-11-02T08:00:00Z\",\"eventSource\":\"iam.amazonaws.com\",\"eventName\":\"CreateUser\",\"readOnly\":\"false\",\"managementEvent\":\"true\",\"errorCode\":null,\"userAgent\":\"日本語\",\"additionalEventData\":{},\"tlsDetails\":{\"tlsVersion\":\"TLSv1.3\"}}".to_owned(),
        // An EventBridge envelope: the record is the detail.
        format!(r#"{{"version":"0","id":"x","detail-type":"AWS API Call via CloudTrail","source":"aws.bedrock","detail":{PLAIN}}}"#),
        // A lone surrogate escape, repaired by the reader (U+FFFD).
        r#"{"eventVersion":"1.08","eventTime":"2026-11-02T08:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","userAgent":"x\ud800y","eventID":"e3"}"#.to_owned(),
    ];
    for shape in &shapes {
        // As a log file, and as JSON lines.
        for data in [
            format!(r#"{{"Records":[{shape}]}}"#),
            shape.replace('\n', " "),
        ] {
            let c = compare(data.as_bytes());
            assert_eq!(c.records, 1, "{data}");
            assert!(c.differ.is_empty(), "{:?}", c.differ);
        }
    }
    // An export's embedded strings (a record given as JSON text).
    let embedded = serde_json::to_string(&serde_json::json!({"Records": [PLAIN]})).unwrap();
    let c = compare(embedded.as_bytes());
    assert!(c.differ.is_empty(), "{:?}", c.differ);
    // Parsed directly, too.
    let r = Record::parse(PLAIN).unwrap();
    let copy = PLAIN.to_owned();
    assert_eq!(view(&r.layout().record(&copy).unwrap()), view(&r));
}

#[test]
fn a_record_laid_over_its_text_is_the_record_on_the_public_logs() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    let mut all = Compare::default();
    for dir in ["stratus-detonation-logs", "invictus-aws-dataset"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            eprintln!("SKIPPED: {} is absent", root.join(dir).display());
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "json" && e != "gz") {
                continue;
            }
            let data = std::fs::read(&path).unwrap();
            let c = compare(&data);
            all.records += c.records;
            all.differ.extend(
                c.differ
                    .into_iter()
                    .map(|d| format!("{}: {d}", path.display())),
            );
        }
    }
    assert!(
        all.differ.is_empty(),
        "{:#?}",
        &all.differ[..all.differ.len().min(5)]
    );
    eprintln!("{} records compared", all.records);
}
