//! The reader against every layout CloudTrail data comes in, and against bad
//! input: each bad input gives a clear error or reject, and the records
//! around it are still read.

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;
use trailwarden_cloudtrail::{
    read_object, Format, ObjectError, ObjectSummary, ReadFailure, ReaderOptions, Record,
    RecordReject, RecordSink,
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
