//! S3: which objects a queue message names, and streaming an object's body
//! into the reader with bounded memory.
//!
//! A message body is one of: an S3 event notification (`{"Records":[{"s3":
//! …}]}`), the same wrapped by SNS, CloudTrail's own SNS notification
//! (`{"s3Bucket":…,"s3ObjectKey":[…]}`, several keys, not URL-encoded), or an
//! EventBridge "Object Created" event. `s3:TestEvent` messages and other
//! notifications sharing the trail's topic (AWS Config's) name nothing. S3
//! notification keys arrive URL-encoded (`+` is a space).

use percent_encoding::percent_decode_str;
use serde_json::Value;
use tokio_util::io::SyncIoBridge;
use trailwarden_cloudtrail::{read_object, ObjectSummary, ReadFailure, ReaderOptions, RecordSink};

/// One S3 object a message names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectNotice {
    /// Bucket.
    pub bucket: String,
    /// Key, decoded.
    pub key: String,
    /// ETag (or the sequencer when the notice gives no ETag), for the ledger.
    pub version: String,
}

/// An ETag as the ledger keeps it: without the double quotes S3 puts around
/// it in `ListObjectsV2`, `HeadObject` and `GetObject` answers (RFC 7232's
/// entity-tag syntax) and without a weak `W/` prefix, as S3 event
/// notifications and EventBridge's Object Created events give it. So a
/// `replay` listing and a notification of the same object agree.
pub fn normalize_etag(etag: &str) -> &str {
    let etag = etag.trim();
    let etag = etag.strip_prefix("W/").unwrap_or(etag);
    etag.strip_prefix('"')
        .and_then(|e| e.strip_suffix('"'))
        .unwrap_or(etag)
}

/// A message that is not a notification this function understands.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unrecognised message: {0}; expected an S3 event notification, an SNS-wrapped one, or an EventBridge Object Created event")]
pub struct NoticeError(pub String);

fn decode_key(raw: &str) -> String {
    let plus = raw.replace('+', " ");
    percent_decode_str(&plus).decode_utf8_lossy().into_owned()
}

/// The objects a queue message body names (empty for test events).
pub fn parse_notice(body: &str) -> Result<Vec<ObjectNotice>, NoticeError> {
    let value: Value = serde_json::from_str(body)
        .map_err(|e| NoticeError(format!("the body is not JSON ({e})")))?;
    parse_value(&value, 0)
}

fn parse_value(value: &Value, depth: u8) -> Result<Vec<ObjectNotice>, NoticeError> {
    if value.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Vec::new());
    }
    // SNS envelope: the S3 notification is the Message string.
    if value.get("Type").and_then(Value::as_str) == Some("Notification") && depth == 0 {
        let message = value
            .get("Message")
            .and_then(Value::as_str)
            .ok_or_else(|| NoticeError("an SNS envelope without a Message".into()))?;
        let inner: Value = serde_json::from_str(message)
            .map_err(|e| NoticeError(format!("the SNS Message is not JSON ({e})")))?;
        // CloudTrail's own topic: {"s3Bucket": "...", "s3ObjectKey": ["...", ...]}
        // (several objects a message, keys not URL-encoded, no ETag).
        if let (Some(bucket), Some(keys)) = (
            inner.get("s3Bucket").and_then(Value::as_str),
            inner.get("s3ObjectKey").and_then(Value::as_array),
        ) {
            return Ok(keys
                .iter()
                .filter_map(Value::as_str)
                .map(|key| ObjectNotice {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                    version: String::new(),
                })
                .collect());
        }
        // Other notifications on a shared topic (AWS Config's, on Control
        // Tower's) are not ours: nothing to do, and not a failure.
        if inner.get("Records").is_none() && inner.get("Event").is_none() {
            return Ok(Vec::new());
        }
        return parse_value(&inner, depth + 1);
    }
    // EventBridge "Object Created".
    if let Some(detail) = value
        .get("detail")
        .filter(|_| value.get("detail-type").is_some())
    {
        let dt = value["detail-type"].as_str().unwrap_or("");
        if dt != "Object Created" {
            return Err(NoticeError(format!("EventBridge detail-type {dt:?}")));
        }
        let bucket = detail.pointer("/bucket/name").and_then(Value::as_str);
        let key = detail.pointer("/object/key").and_then(Value::as_str);
        let (Some(bucket), Some(key)) = (bucket, key) else {
            return Err(NoticeError(
                "an Object Created event without bucket.name and object.key".into(),
            ));
        };
        let version = detail
            .pointer("/object/etag")
            .or_else(|| detail.get("sequencer"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        return Ok(vec![ObjectNotice {
            bucket: bucket.to_owned(),
            key: decode_key(key),
            version: normalize_etag(version).to_owned(),
        }]);
    }
    let Some(records) = value.get("Records").and_then(Value::as_array) else {
        return Err(NoticeError("no Records, detail or SNS Message".into()));
    };
    let mut out = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let event = r.get("eventName").and_then(Value::as_str).unwrap_or("");
        if !event.starts_with("ObjectCreated") {
            continue;
        }
        let bucket = r.pointer("/s3/bucket/name").and_then(Value::as_str);
        let key = r.pointer("/s3/object/key").and_then(Value::as_str);
        let (Some(bucket), Some(key)) = (bucket, key) else {
            return Err(NoticeError(format!(
                "Records[{i}] has no s3.bucket.name or s3.object.key"
            )));
        };
        let version = r
            .pointer("/s3/object/eTag")
            .or_else(|| r.pointer("/s3/object/sequencer"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        out.push(ObjectNotice {
            bucket: bucket.to_owned(),
            key: decode_key(key),
            version: normalize_etag(version).to_owned(),
        });
    }
    Ok(out)
}

/// Why an S3 object could not be processed.
#[derive(Debug, thiserror::Error)]
pub enum ObjectFetchError {
    /// The object is gone (GetObject answered `NoSuchKey`): deleted, or
    /// expired by a lifecycle rule, between its notification and its
    /// reading. Reading again cannot succeed.
    #[error(
        "GetObject s3://{bucket}/{key}: NoSuchKey (the object was deleted before it was read)"
    )]
    Missing {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
    },
    /// GetObject failed.
    #[error("GetObject s3://{bucket}/{key}: {reason}")]
    Get {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The body could not be read as CloudTrail.
    #[error("s3://{bucket}/{key}: {failure}")]
    Read {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// The reader's failure (with the counts before it).
        failure: ReadFailure,
    },
}

/// Stream an object's body through the reader. Must run on a multi-thread
/// tokio runtime: the reader is synchronous and runs in `block_in_place`,
/// pulling the body through a bridge, so memory stays at the reader's
/// buffer whatever the object's size.
pub async fn read_s3_object<S: RecordSink + Send + ?Sized>(
    client: &aws_sdk_s3::Client,
    notice: &ObjectNotice,
    expected_owner: Option<&str>,
    options: &ReaderOptions,
    sink: &mut S,
) -> Result<ObjectSummary, ObjectFetchError> {
    let mut get = client.get_object().bucket(&notice.bucket).key(&notice.key);
    if let Some(owner) = expected_owner {
        get = get.expected_bucket_owner(owner);
    }
    let out = get.send().await.map_err(|e| {
        if e.as_service_error().is_some_and(|e| e.is_no_such_key()) {
            ObjectFetchError::Missing {
                bucket: notice.bucket.clone(),
                key: notice.key.clone(),
            }
        } else {
            ObjectFetchError::Get {
                bucket: notice.bucket.clone(),
                key: notice.key.clone(),
                reason: crate::dynamo::error_chain(&e),
            }
        }
    })?;
    let body = out.body.into_async_read();
    let handle = tokio::runtime::Handle::current();
    let result = tokio::task::block_in_place(|| {
        let reader = SyncIoBridge::new_with_handle(body, handle);
        read_object(reader, options, sink)
    });
    result.map_err(|failure| ObjectFetchError::Read {
        bucket: notice.bucket.clone(),
        key: notice.key.clone(),
        failure,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S3_EVENT: &str = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":"2026-11-02T08:05:00.000Z","eventName":"ObjectCreated:Put","s3":{"s3SchemaVersion":"1.0","bucket":{"name":"org-trail","arn":"arn:aws:s3:::org-trail"},"object":{"key":"AWSLogs/o-abc/111122223333/CloudTrail/us-east-1/2026/11/02/file+name%3A1.json.gz","size":1024,"eTag":"abc123","sequencer":"0055AED6DCD90281E5"}}}]}"#;

    #[test]
    fn etags_from_listings_and_notifications_agree() {
        // ListObjectsV2 and GetObject quote the ETag; notifications do not.
        for (given, kept) in [
            ("\"abc123\"", "abc123"),
            ("abc123", "abc123"),
            (" \"abc123\" ", "abc123"),
            ("W/\"abc123\"", "abc123"),
            (
                "\"d41d8cd98f00b204e9800998ecf8427e-3\"",
                "d41d8cd98f00b204e9800998ecf8427e-3",
            ),
            ("\"", "\""),
            ("", ""),
        ] {
            assert_eq!(normalize_etag(given), kept, "{given:?}");
        }
        let notice = &parse_notice(S3_EVENT).unwrap()[0];
        assert_eq!(notice.version, normalize_etag("\"abc123\""));
        let quoted = S3_EVENT.replace(r#""eTag":"abc123""#, r#""eTag":"\"abc123\"""#);
        assert_eq!(parse_notice(&quoted).unwrap()[0].version, "abc123");
    }

    #[test]
    fn s3_notification_with_encoded_key() {
        let n = parse_notice(S3_EVENT).unwrap();
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].bucket, "org-trail");
        assert_eq!(
            n[0].key,
            "AWSLogs/o-abc/111122223333/CloudTrail/us-east-1/2026/11/02/file name:1.json.gz"
        );
        assert_eq!(n[0].version, "abc123");
    }

    #[test]
    fn sns_wrapped_and_eventbridge_and_test_events() {
        let sns = serde_json::json!({"Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": S3_EVENT}).to_string();
        assert_eq!(parse_notice(&sns).unwrap(), parse_notice(S3_EVENT).unwrap());
        let eb = r#"{"version":"0","id":"x","detail-type":"Object Created","source":"aws.s3","account":"1","time":"2026-11-02T08:05:00Z","region":"us-east-1","resources":["arn:aws:s3:::org-trail"],"detail":{"version":"0","bucket":{"name":"org-trail"},"object":{"key":"AWSLogs/a+b.json.gz","size":5,"etag":"e1","sequencer":"s"},"request-id":"r","requester":"cloudtrail.amazonaws.com","reason":"PutObject"}}"#;
        let n = parse_notice(eb).unwrap();
        assert_eq!(
            (n[0].key.as_str(), n[0].version.as_str()),
            ("AWSLogs/a b.json.gz", "e1")
        );
        let cloudtrail = serde_json::json!({"Type": "Notification", "Message": r#"{"s3Bucket":"org-trail","s3ObjectKey":["AWSLogs/1/CloudTrail/us-east-1/2026/11/02/a b.json.gz","AWSLogs/1/CloudTrail/us-east-1/2026/11/02/c.json.gz"]}"#}).to_string();
        let n = parse_notice(&cloudtrail).unwrap();
        assert_eq!(n.len(), 2);
        assert_eq!(
            n[0].key, "AWSLogs/1/CloudTrail/us-east-1/2026/11/02/a b.json.gz",
            "not URL-decoded"
        );
        let config = serde_json::json!({"Type": "Notification", "Message": r#"{"configurationItemDiff":null,"messageType":"ConfigurationItemChangeNotification"}"#}).to_string();
        assert!(parse_notice(&config).unwrap().is_empty());
        let test = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-02T08:00:00Z","Bucket":"org-trail","RequestId":"r","HostId":"h"}"#;
        assert!(parse_notice(test).unwrap().is_empty());
        let sns_test = serde_json::json!({"Type": "Notification", "Message": test}).to_string();
        assert!(parse_notice(&sns_test).unwrap().is_empty());
        assert!(parse_notice("not json")
            .unwrap_err()
            .to_string()
            .contains("not JSON"));
        assert!(parse_notice(r#"{"hello":1}"#).is_err());
    }
}
