//! The reader against every layout CloudTrail data comes in, and against bad
//! input: each bad input gives a clear error or reject, and the records
//! around it are still read.

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;
use trailwarden_cloudtrail::{
    read_object, read_object_pipelined, Format, ObjectError, ObjectSummary, ReadFailure,
    ReaderOptions, Record, RecordReject, RecordSink,
};

#[derive(Default, Debug)]
struct Collect {
    names: Vec<String>,
    indexes: Vec<u64>,
    rejects: Vec<RecordReject>,
}

impl RecordSink for Collect {
    fn record(&mut self, index: u64, record: &Record<'_>) {
        self.names
            .push(record.event_name().unwrap_or("?").to_owned());
        self.indexes.push(index);
    }
    fn reject(&mut self, reject: RecordReject) {
        self.rejects.push(reject);
    }
}

fn record(name: &str) -> String {
    format!(
        r#"{{"eventVersion":"1.08","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/alice","accountId":"111122223333","accessKeyId":"AKIAEXAMPLE"}},"eventTime":"2026-11-02T08:00:00Z","eventSource":"bedrock.amazonaws.com","eventName":"{name}","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.7","userAgent":"aws-cli/2.15.0","requestParameters":{{"modelId":"anthropic.claude-3-5-sonnet-20240620-v1:0"}},"responseElements":null,"requestID":"r-{name}","eventID":"e-{name}","readOnly":true,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"111122223333"}}"#
    )
}

fn delivery(records: &[String]) -> String {
    format!("{{\"Records\":[{}]}}", records.join(","))
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn read_with(
    data: &[u8],
    options: &ReaderOptions,
) -> (Result<ObjectSummary, ReadFailure>, Collect) {
    let mut sink = Collect::default();
    let result = read_object(data, options, &mut sink);
    (result, sink)
}

fn read(data: &[u8]) -> (Result<ObjectSummary, ReadFailure>, Collect) {
    read_with(data, &ReaderOptions::default())
}

fn small_buffers() -> ReaderOptions {
    ReaderOptions {
        chunk_bytes: 4096,
        ..ReaderOptions::default()
    }
}

#[test]
fn s3_delivery_plain_and_gzip_detected_by_content() {
    let text = delivery(&[record("A"), record("B"), record("C")]);
    for data in [text.clone().into_bytes(), gzip(text.as_bytes())] {
        let (result, sink) = read(&data);
        let summary = result.unwrap();
        assert_eq!(summary.format, Format::S3Delivery);
        assert_eq!(summary.records, 3);
        assert_eq!(sink.names, ["A", "B", "C"]);
        assert_eq!(sink.indexes, [0, 1, 2]);
    }
}

#[test]
fn many_records_through_small_buffers() {
    let records: Vec<String> = (0..3000).map(|i| record(&format!("N{i}"))).collect();
    let data = gzip(delivery(&records).as_bytes());
    let (result, sink) = read_with(&data, &small_buffers());
    assert_eq!(result.unwrap().records, 3000);
    assert_eq!(sink.names.len(), 3000);
    assert_eq!(sink.names[2999], "N2999");
}

#[test]
fn concatenated_gzip_members_are_read() {
    let mut data = gzip(b"{\"Records\":[");
    data.extend(gzip(
        format!("{},{}]}}", record("A"), record("B")).as_bytes(),
    ));
    let (result, sink) = read(&data);
    assert_eq!(result.unwrap().records, 2);
    assert_eq!(sink.names, ["A", "B"]);
}

#[test]
fn json_lines_json_array_and_pretty_printed_records() {
    let lines = format!("{}\n{}\r\n\n{}\n", record("A"), record("B"), record("C"));
    let (result, sink) = read(lines.as_bytes());
    assert_eq!(result.unwrap().format, Format::JsonLines);
    assert_eq!(sink.names, ["A", "B", "C"]);

    let array = format!("[{}, {}]", record("A"), record("B"));
    let (result, sink) = read(array.as_bytes());
    assert_eq!(result.unwrap().format, Format::JsonArray);
    assert_eq!(sink.names, ["A", "B"]);

    let pretty = "{\n  \"eventName\": \"A\",\n  \"eventSource\": \"s3.amazonaws.com\"\n}\n{\n  \"eventName\": \"B\"\n}\n";
    let (result, sink) = read(pretty.as_bytes());
    assert_eq!(result.unwrap().format, Format::Concatenated);
    assert_eq!(sink.names, ["A", "B"]);
}

fn envelope(name: &str) -> String {
    format!(
        r#"{{"version":"0","id":"11111111-2222-3333-4444-555555555555","detail-type":"AWS API Call via CloudTrail","source":"aws.bedrock","account":"111122223333","time":"2026-11-02T08:00:00Z","region":"us-east-1","resources":[],"detail":{}}}"#,
        record(name)
    )
}

#[test]
fn eventbridge_envelopes_one_per_file_per_line_and_in_arrays() {
    let (result, sink) = read(envelope("A").as_bytes());
    result.unwrap();
    assert_eq!(sink.names, ["A"]);

    let lines = format!("{}\n{}\n", envelope("A"), envelope("B"));
    let (result, sink) = read(lines.as_bytes());
    assert_eq!(result.unwrap().format, Format::JsonLines);
    assert_eq!(sink.names, ["A", "B"]);

    let array = format!("[{},{}]", envelope("A"), envelope("B"));
    let (_, sink) = read(array.as_bytes());
    assert_eq!(sink.names, ["A", "B"]);
}

#[test]
fn digest_files_are_skipped_with_a_note() {
    let digest = r#"{"awsAccountId":"111122223333","digestStartTime":"2026-11-02T07:00:00Z","digestEndTime":"2026-11-02T08:00:00Z","digestS3Bucket":"b","digestS3Object":"k","digestPublicKeyFingerprint":"f","digestSignatureAlgorithm":"SHA256withRSA","newestEventTime":null,"oldestEventTime":null,"previousDigestS3Bucket":null,"previousDigestS3Object":null,"previousDigestHashValue":null,"previousDigestHashAlgorithm":null,"previousDigestSignature":null,"logFiles":[]}"#;
    let (result, sink) = read(&gzip(digest.as_bytes()));
    let summary = result.unwrap();
    assert_eq!(summary.format, Format::Digest);
    assert!(summary.skipped.unwrap().contains("digest"));
    assert!(sink.names.is_empty());
}

#[test]
fn records_key_not_first_is_still_found() {
    let text = format!("{{\"note\":\"x\",\"Records\":[{}]}}", record("A"));
    let (result, sink) = read(text.as_bytes());
    assert_eq!(result.unwrap().records, 1);
    assert_eq!(sink.names, ["A"]);
}

#[test]
fn empty_input_is_a_clear_error() {
    for data in [&b""[..], b"  \n\t ", &gzip(b"")] {
        let (result, _) = read(data);
        let err = result.unwrap_err();
        assert!(matches!(err.error, ObjectError::Empty), "{err}");
        assert!(err.to_string().contains("empty"));
    }
}

#[test]
fn not_json_is_a_clear_error() {
    let (result, _) = read(b"Hello, this is a PDF or a README\n");
    let err = result.unwrap_err();
    assert!(matches!(err.error, ObjectError::NotJson { offset: 0, .. }));
    assert!(err.to_string().contains("not JSON"), "{err}");
}

#[test]
fn wrong_shape_is_a_clear_error() {
    let (result, _) = read(br#"{"Records": 5}"#);
    let err = result.unwrap_err().to_string();
    assert!(err.contains("\"Records\" holds a number"), "{err}");

    let (result, _) = read(br#"{"foo": 1, "bar": [2]}"#);
    let err = result.unwrap_err().to_string();
    assert!(err.contains("keys: foo, bar"), "{err}");
}

#[test]
fn truncated_gzip_keeps_the_records_before_the_cut() {
    let records: Vec<String> = (0..2000).map(|i| record(&format!("N{i}"))).collect();
    let data = gzip(delivery(&records).as_bytes());
    let cut = &data[..data.len() * 2 / 3];
    let (result, sink) = read_with(cut, &small_buffers());
    let failure = result.unwrap_err();
    assert!(
        matches!(failure.error, ObjectError::Decompress { .. }),
        "{failure}"
    );
    assert!(failure.to_string().contains("corrupt or truncated"));
    assert!(sink.names.len() > 100, "records before the cut are read");
    assert_eq!(failure.summary.records, sink.names.len() as u64);
}

#[test]
fn truncated_json_keeps_the_records_before_the_cut() {
    let text = delivery(&[record("A"), record("B")]);
    let cut = &text.as_bytes()[..text.len() - 40];
    let (result, sink) = read(cut);
    let failure = result.unwrap_err();
    assert!(
        matches!(failure.error, ObjectError::Truncated { .. }),
        "{failure}"
    );
    assert_eq!(sink.names, ["A"]);
}

#[test]
fn gzip_bomb_is_rejected_by_the_size_cap() {
    // 16 MiB of white space inside the Records array compresses to ~16 KiB.
    let mut enc = GzEncoder::new(Vec::new(), Compression::best());
    enc.write_all(b"{\"Records\":[").unwrap();
    enc.write_all(record("A").as_bytes()).unwrap();
    enc.write_all(b",").unwrap();
    let spaces = vec![b' '; 1 << 20];
    for _ in 0..16 {
        enc.write_all(&spaces).unwrap();
    }
    let data = enc.finish().unwrap();
    assert!(data.len() < 1 << 20);
    let options = ReaderOptions {
        max_object_bytes: 4 << 20,
        ..ReaderOptions::default()
    };
    let (result, sink) = read_with(&data, &options);
    let failure = result.unwrap_err();
    assert!(matches!(failure.error, ObjectError::TooLarge { cap } if cap == 4 << 20));
    assert!(failure.to_string().contains("gzip bomb"));
    assert_eq!(sink.names, ["A"]);
}

#[test]
fn a_record_that_is_not_an_object_is_rejected_alone() {
    let text = format!(
        "{{\"Records\":[{}, 5, \"text\", [1,2], null, {}]}}",
        record("A"),
        record("B")
    );
    let (result, sink) = read(text.as_bytes());
    let summary = result.unwrap();
    assert_eq!((summary.records, summary.rejected), (2, 4));
    assert_eq!(sink.names, ["A", "B"]);
    assert_eq!(sink.indexes, [0, 5]);
    let reasons: Vec<(u64, &str)> = sink
        .rejects
        .iter()
        .map(|r| (r.index, r.reason.as_str()))
        .collect();
    assert_eq!(
        reasons[0],
        (1, "record is not a JSON object (found a number)")
    );
    assert_eq!(
        reasons[1],
        (2, "record is not a JSON object (found a string)")
    );
    assert_eq!(
        reasons[2],
        (3, "record is not a JSON object (found an array)")
    );
    assert_eq!(reasons[3], (4, "record is not a JSON object (found null)"));
}

#[test]
fn a_record_with_wrong_field_types_or_no_event_name_is_rejected_alone() {
    let text = delivery(&[
        record("A"),
        r#"{"eventName": 42, "eventSource": "x"}"#.into(),
        r#"{"hello": "world"}"#.into(),
        record("B"),
    ]);
    let (result, sink) = read(text.as_bytes());
    assert_eq!(result.unwrap().rejected, 2);
    assert_eq!(sink.names, ["A", "B"]);
    assert_eq!(sink.rejects[0].index, 1);
    assert!(
        sink.rejects[0].reason.starts_with("invalid record:"),
        "{:?}",
        sink.rejects[0]
    );
    assert_eq!(sink.rejects[1].index, 2);
    assert!(sink.rejects[1].reason.contains("no eventName"));
}

fn deep(levels: usize) -> String {
    let mut s = String::from(r#"{"eventName":"Deep","requestParameters":"#);
    s.push_str(&"{\"a\":".repeat(levels));
    s.push('1');
    s.push_str(&"}".repeat(levels));
    s.push('}');
    s
}

#[test]
fn deeply_nested_json_is_rejected_without_overflowing_the_stack() {
    let text = delivery(&[
        record("A"),
        deep(200_000),
        format!("[{}]", "[".repeat(100_000) + &"]".repeat(100_000)),
        record("B"),
    ]);
    let (result, sink) = read_with(text.as_bytes(), &small_buffers());
    let summary = result.unwrap();
    assert_eq!(sink.names, ["A", "B"]);
    assert_eq!(summary.rejected, 2);
    assert_eq!(sink.rejects[0].index, 1);
    assert!(sink.rejects[0]
        .reason
        .contains("nested deeper than 64 levels"));
    assert_eq!(sink.rejects[1].index, 2);

    let lines = format!("{}\n{}\n{}\n", record("A"), deep(10_000), record("B"));
    let (result, sink) = read(lines.as_bytes());
    assert_eq!(result.unwrap().rejected, 1);
    assert_eq!(sink.names, ["A", "B"]);
    assert_eq!(sink.rejects[0].index, 1);
}

#[test]
fn non_utf8_bytes_reject_only_their_record() {
    let mut data = b"{\"Records\":[".to_vec();
    data.extend(record("A").as_bytes());
    data.extend(b",{\"eventName\":\"Bad\",\"userAgent\":\"\xff\xfe\"},");
    data.extend(record("B").as_bytes());
    data.extend(b"]}");
    let (result, sink) = read(&data);
    assert_eq!(result.unwrap().rejected, 1);
    assert_eq!(sink.names, ["A", "B"]);
    assert_eq!(sink.rejects[0].index, 1);
    assert!(sink.rejects[0].reason.contains("not valid UTF-8"));
}

#[test]
fn a_malformed_json_line_rejects_only_that_line() {
    let lines = format!(
        "{}\n{{\"eventName\": \"Broken\", \n{}\nnot json\n",
        record("A"),
        record("B")
    );
    let (result, sink) = read(lines.as_bytes());
    let summary = result.unwrap();
    assert_eq!(summary.format, Format::JsonLines);
    assert_eq!(sink.names, ["A", "B"]);
    assert_eq!(summary.rejected, 2);
    assert_eq!(sink.rejects[0].index, 1);
    assert_eq!(sink.rejects[1].index, 3);
    assert!(sink.rejects[1].reason.contains("not a JSON object"));
}

#[test]
fn garbage_between_records_stops_the_object_with_its_offset() {
    let text = format!("{{\"Records\":[{} {}]}}", record("A"), record("B"));
    let (result, sink) = read(text.as_bytes());
    let failure = result.unwrap_err();
    assert!(matches!(failure.error, ObjectError::Malformed { .. }));
    assert!(failure
        .to_string()
        .contains("expected ',' or ']' after record 0"));
    assert_eq!(sink.names, ["A"]);
}

#[test]
fn a_record_larger_than_the_cap_rejects_the_object() {
    let big = format!(
        r#"{{"eventName":"Big","requestParameters":{{"blob":"{}"}}}}"#,
        "x".repeat(100_000)
    );
    let text = delivery(&[record("A"), big]);
    let options = ReaderOptions {
        chunk_bytes: 4096,
        max_record_bytes: 32 << 10,
        ..ReaderOptions::default()
    };
    let (result, sink) = read_with(text.as_bytes(), &options);
    let failure = result.unwrap_err();
    assert!(
        matches!(failure.error, ObjectError::RecordTooLarge { .. }),
        "{failure}"
    );
    assert_eq!(sink.names, ["A"]);
}

#[test]
fn byte_order_mark_is_ignored() {
    let mut data = vec![0xEF, 0xBB, 0xBF];
    data.extend(delivery(&[record("A")]).as_bytes());
    let (result, sink) = read(&data);
    result.unwrap();
    assert_eq!(sink.names, ["A"]);
}

#[test]
fn documents_back_to_back_are_all_read_and_trailing_junk_is_named() {
    let a = delivery(&[record("A"), record("B")]);
    let b = delivery(&[record("C")]);
    // `cat a.json b.json`, the same gzip-compressed as one member and as
    // two members (`cat a.json.gz b.json.gz`), and a document with a key
    // after its Records list.
    let plain = format!("{a}\n{b}\n");
    let mut members = gzip(a.as_bytes());
    members.extend(gzip(b.as_bytes()));
    let extra_key = format!(
        "{{\"Records\":[{}], \"note\": {{\"x\": [1, \"]}}\"]}} }}{b}",
        record("A")
    );
    for (data, names) in [
        (plain.clone().into_bytes(), vec!["A", "B", "C"]),
        (gzip(plain.as_bytes()), vec!["A", "B", "C"]),
        (members, vec!["A", "B", "C"]),
        (extra_key.into_bytes(), vec!["A", "C"]),
    ] {
        let (result, sink) = read_with(&data, &small_buffers());
        let summary = result.unwrap();
        assert_eq!(summary.format, Format::S3Delivery);
        assert_eq!(sink.names, names);
        let expected: Vec<u64> = (0..names.len() as u64).collect();
        assert_eq!(sink.indexes, expected, "indexes run on across documents");
    }
    // Arrays back to back too.
    let arrays = format!("[{}]\n[{}]", record("A"), record("B"));
    let (result, sink) = read(arrays.as_bytes());
    assert_eq!(result.unwrap().records, 2);
    assert_eq!(sink.names, ["A", "B"]);
    // Junk after the last document: its records are read, the junk is an
    // error with its byte offset.
    let junk = format!("{a}{b}\nGARBAGE");
    let (result, sink) = read(junk.as_bytes());
    let failure = result.unwrap_err();
    assert_eq!(sink.names, ["A", "B", "C"]);
    assert_eq!(failure.summary.records, 3);
    match &failure.error {
        ObjectError::Malformed { offset, reason } => {
            assert_eq!(*offset, (a.len() + b.len() + 1) as u64);
            assert!(
                reason.contains("after the end of JSON document 2"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    let said = failure.to_string();
    assert_eq!(
        said.matches("the records before it were read").count(),
        1,
        "{said}"
    );
}

#[test]
fn records_before_a_gzip_fault_in_the_first_chunk_are_read() {
    // `head -c N x.json.gz`: the cut falls inside the first 1 MiB chunk.
    let records: Vec<String> = (0..400).map(|i| record(&format!("N{i}"))).collect();
    let data = gzip(delivery(&records).as_bytes());
    let cut = &data[..data.len() / 2];
    let (result, sink) = read(cut);
    let failure = result.unwrap_err();
    assert!(
        matches!(failure.error, ObjectError::Decompress { .. }),
        "{failure}"
    );
    assert!(
        sink.names.len() > 50,
        "only {} records read",
        sink.names.len()
    );
    assert_eq!(sink.names[0], "N0");
    assert_eq!(failure.summary.records, sink.names.len() as u64);
}

fn insight(state: &str) -> String {
    format!(
        r#"{{"eventVersion":"1.08","eventTime":"2026-11-02T08:55:00Z","awsRegion":"us-east-1","eventID":"i-{state}","eventType":"AwsCloudTrailInsight","recipientAccountId":"111122223333","sharedEventID":"s1","insightDetails":{{"state":"{state}","eventSource":"bedrock.amazonaws.com","eventName":"InvokeModel","insightType":"ApiCallRateInsight"}},"eventCategory":"Insight"}}"#
    )
}

#[test]
fn insights_events_are_counted_and_skipped_with_a_note_never_rejected() {
    let data = gzip(delivery(&[insight("Start"), insight("End")]).as_bytes());
    let (result, sink) = read(&data);
    let summary = result.unwrap();
    assert_eq!(
        (summary.records, summary.rejected, summary.insights),
        (0, 0, 2)
    );
    assert!(sink.rejects.is_empty());
    assert!(summary.skipped.unwrap().contains("Insights"));
    // Among ordinary records, an insight is counted, not rejected.
    let mixed = delivery(&[record("A"), insight("Start")]);
    let summary = read(mixed.as_bytes()).0.unwrap();
    assert_eq!(
        (summary.records, summary.rejected, summary.insights),
        (1, 0, 1)
    );
    assert_eq!(summary.skipped, None);
}

#[test]
fn lookup_events_output_and_cloudwatch_logs_payloads_are_read() {
    let embed = |r: String| serde_json::Value::String(r);
    let lookup = serde_json::json!({
        "Events": [
            {"EventId": "e-A", "EventName": "A", "CloudTrailEvent": embed(record("A"))},
            {"EventId": "e-B", "EventName": "B", "CloudTrailEvent": embed(record("B"))},
            {"EventId": "x"},
        ],
        "NextToken": "t"
    });
    let (result, sink) = read(lookup.to_string().as_bytes());
    let summary = result.unwrap();
    assert_eq!(summary.format, Format::LookupEvents);
    assert_eq!(sink.names, ["A", "B"]);
    assert_eq!(summary.rejected, 1);
    assert!(
        sink.rejects[0].reason.contains("CloudTrailEvent"),
        "{:?}",
        sink.rejects
    );
    assert_eq!(sink.rejects[0].index, 2);

    let logs = serde_json::json!({
        "messageType": "DATA_MESSAGE", "owner": "111122223333",
        "logGroup": "aws-cloudtrail-logs", "logStream": "111122223333_CloudTrail_us-east-1",
        "subscriptionFilters": ["all"],
        "logEvents": [
            {"id": "1", "timestamp": 1793606400000i64, "message": record("C")},
            {"id": "2", "timestamp": 1793606400000i64, "message": "not json"},
            {"id": "3", "timestamp": 1793606400000i64, "message": record("D")},
        ]
    });
    let (result, sink) = read(&gzip(logs.to_string().as_bytes()));
    let summary = result.unwrap();
    assert_eq!(summary.format, Format::CloudWatchLogs);
    assert_eq!(sink.names, ["C", "D"]);
    assert_eq!(sink.indexes, [0, 2]);
    assert_eq!(summary.rejected, 1);
}

#[test]
fn a_lone_surrogate_escape_keeps_its_record() {
    let bad = record("A").replace("aws-cli/2.15.0", "aws-cli\\ud800/2");
    let nested = record("B").replace(
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "x\\udc00y\\ud83d\\ude00",
    );
    let (result, sink) = read(delivery(&[bad, nested, record("C")]).as_bytes());
    let summary = result.unwrap();
    assert_eq!(sink.names, ["A", "B", "C"]);
    assert_eq!(summary.rejected, 0);
    assert_eq!(summary.repaired, 1);
    let text = record("A").replace("aws-cli/2.15.0", "aws-cli\\ud800/2");
    let record = Record::parse(&text);
    assert!(record.is_err(), "the strict parse refuses it");
}

#[test]
fn event_times_in_other_layouts_are_read_and_unparseable_ones_rejected() {
    let space = record("A").replace("2026-11-02T08:00:00Z", "2026-11-02 08:00:00.000000000");
    let bad = record("B").replace("2026-11-02T08:00:00Z", "yesterday\u{1b}[31m");
    let (result, sink) = read(delivery(&[space, bad, record("C")]).as_bytes());
    let summary = result.unwrap();
    assert_eq!(sink.names, ["A", "C"]);
    assert_eq!(summary.rejected, 1);
    assert!(
        sink.rejects[0].reason.contains("eventTime"),
        "{:?}",
        sink.rejects
    );
    assert!(
        !sink.rejects[0].reason.contains('\u{1b}'),
        "control characters escaped"
    );
}

/// The field cases built from public bug reports (`../shared/field-cases`),
/// where present.
#[test]
fn field_cases_read_every_record() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/field-cases");
    if !dir.is_dir() {
        eprintln!("SKIPPED: {} is absent", dir.display());
        return;
    }
    let cases = [
        ("01-concatenated-records-objects/111122223333_CloudTrail_us-east-1_20261102T0805Z_multimember.json.gz", true),
        ("01-concatenated-records-objects/concatenated-plain.json", true),
        ("01-concatenated-records-objects/trailing-junk.json", false),
        ("02-insights-events/111122223333_CloudTrail-Insight_us-east-1_20261102T0900Z_insight.json.gz", true),
        ("04-stratus-detonation-log-format/detonation-datadog-format.json", true),
        ("04-stratus-detonation-log-format/stateful-datadog-format.json", true),
    ];
    for (name, clean) in cases {
        let data = std::fs::read(dir.join(name)).unwrap();
        let (result, sink) = read(&data);
        assert!(sink.rejects.is_empty(), "{name}: {:?}", sink.rejects);
        let summary = match result {
            Ok(s) => {
                assert!(clean, "{name}: the junk was not reported");
                s
            }
            Err(f) => {
                assert!(!clean, "{name}: {f}");
                assert!(
                    matches!(f.error, ObjectError::Malformed { .. }),
                    "{name}: {f}"
                );
                f.summary
            }
        };
        if name.starts_with("01") && clean {
            assert!(
                sink.names
                    .iter()
                    .any(|n| n == "DeleteModelInvocationLoggingConfiguration"),
                "{name}: the second document was not read: {:?}",
                sink.names
            );
        }
        if name.starts_with("02") {
            assert_eq!(summary.insights, 2, "{name}");
        }
    }
}

/// The published attack-simulation logs (`../shared/corpus`), where
/// present: every record of every log reads.
#[test]
fn stratus_detonation_logs_read_with_no_reject() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpus/stratus-detonation-logs");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("SKIPPED: {} is absent", dir.display());
        return;
    };
    let mut files = 0;
    let mut records = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        let (result, sink) = read(&data);
        let summary = result.unwrap_or_else(|f| panic!("{}: {f}", path.display()));
        assert_eq!(
            summary.rejected,
            0,
            "{}: {:?}",
            path.display(),
            sink.rejects
        );
        files += 1;
        records += summary.records;
    }
    assert!(files >= 30, "{files} logs");
    eprintln!("{files} logs, {records} records, 0 rejected");
}

/// Inflating on a thread of its own changes nothing: the same records,
/// rejects, summary and failure as reading on one thread, for whole,
/// multi-member, truncated, corrupt, oversized (gzip bomb) and plain input.
#[test]
fn pipelined_inflation_reads_exactly_what_one_thread_reads() {
    let records: Vec<String> = (0..3000).map(|i| record(&format!("N{i}"))).collect();
    let whole = gzip(delivery(&records).as_bytes());
    let mut members = gzip(delivery(&records[..1000]).as_bytes());
    members.extend(gzip(delivery(&records[1000..]).as_bytes()));
    let truncated = whole[..whole.len() * 2 / 3].to_vec();
    let mut corrupt = whole.clone();
    let middle = corrupt.len() / 2;
    for b in &mut corrupt[middle..middle + 64] {
        *b ^= 0x5a;
    }
    let mut bomb = GzEncoder::new(Vec::new(), Compression::best());
    bomb.write_all(b"{\"Records\":[").unwrap();
    bomb.write_all(record("A").as_bytes()).unwrap();
    bomb.write_all(&vec![b' '; 3 << 20]).unwrap();
    let bomb = bomb.finish().unwrap();
    let mut junk = delivery(&records[..10]).into_bytes();
    junk.extend_from_slice(b" not json");
    let with_junk = gzip(&junk);
    let plain = delivery(&records[..50]).into_bytes();
    let options = [
        ReaderOptions::default(),
        small_buffers(),
        ReaderOptions {
            max_object_bytes: 1 << 20,
            ..ReaderOptions::default()
        },
    ];
    for (name, data) in [
        ("whole", &whole),
        ("members", &members),
        ("truncated", &truncated),
        ("corrupt", &corrupt),
        ("bomb", &bomb),
        ("junk", &with_junk),
        ("plain", &plain),
    ] {
        for (i, options) in options.iter().enumerate() {
            let mut one = Collect::default();
            let a = read_object(&data[..], options, &mut one);
            let mut two = Collect::default();
            let b = read_object_pipelined(&data[..], options, &mut two);
            let show = |r: &Result<ObjectSummary, ReadFailure>| match r {
                Ok(s) => format!("ok {s:?}"),
                Err(f) => format!("failed {f} {:?}", f.summary),
            };
            assert_eq!(show(&a), show(&b), "{name}, options {i}");
            assert_eq!(one.names, two.names, "{name}, options {i}");
            assert_eq!(one.indexes, two.indexes, "{name}, options {i}");
            assert_eq!(
                format!("{:?}", one.rejects),
                format!("{:?}", two.rejects),
                "{name}, options {i}"
            );
        }
    }
}

/// An input whose first read fails: the pipelined reader fails as the
/// plain one does.
#[test]
fn pipelined_reading_fails_on_a_first_read_error_as_one_thread_does() {
    struct FailsOnce(bool, Vec<u8>, usize);
    impl std::io::Read for FailsOnce {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            if !self.0 {
                self.0 = true;
                return Err(std::io::Error::other("injected"));
            }
            let n = out.len().min(self.1.len() - self.2);
            out[..n].copy_from_slice(&self.1[self.2..self.2 + n]);
            self.2 += n;
            Ok(n)
        }
    }
    let data = gzip(delivery(&[record("A")]).as_bytes());
    let show = |r: Result<ObjectSummary, ReadFailure>| match r {
        Ok(s) => format!("ok {s:?}"),
        Err(f) => format!("failed {f} {:?}", f.summary),
    };
    let a = show(read_object(
        FailsOnce(false, data.clone(), 0),
        &ReaderOptions::default(),
        &mut Collect::default(),
    ));
    let b = show(read_object_pipelined(
        FailsOnce(false, data, 0),
        &ReaderOptions::default(),
        &mut Collect::default(),
    ));
    assert!(a.starts_with("failed"), "{a}");
    assert_eq!(a, b);
}
