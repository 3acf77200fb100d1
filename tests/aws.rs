//! End to end on AWS APIs served locally (moto server, started by `.ci/run`
//! and named by `AWS_ENDPOINT_URL`): a gzip log object in a bucket → an SQS
//! message in each of the three body shapes → the ingest handler → findings
//! and state in DynamoDB → the findings' stream records → the alert handler
//! → the message read back from an SQS queue subscribed to the topic.
//!
//! Every test makes its own bucket, tables, topic and queue, so tests share
//! the server without sharing state. Without `AWS_ENDPOINT_URL` the tests
//! say they were skipped.

use std::collections::HashMap;
use std::io::Write;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
};
use serde_json::{json, Value};
use trailwarden_aws::{Config, Needs, Service};

fn endpoint() -> Option<String> {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if url.starts_with("http://127.0.0.1") => Some(url),
        _ => {
            eprintln!("SKIPPED: AWS_ENDPOINT_URL does not name a local AWS API server (run .ci/run, which starts one)");
            None
        }
    }
}

fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

struct World {
    sdk: aws_config::SdkConfig,
    s3: aws_sdk_s3::Client,
    ddb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    bucket: String,
    state_table: String,
    findings_table: String,
    topic_arn: String,
    alerts_queue: String,
}

const KEY: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/02/111122223333_CloudTrail_us-east-1_20261102T0805Z_test file.json.gz";

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .unwrap()
}

fn attr(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .unwrap()
}

impl World {
    async fn new() -> World {
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let s3 = trailwarden_aws::s3_client(&sdk);
        let ddb = aws_sdk_dynamodb::Client::new(&sdk);
        let sns = aws_sdk_sns::Client::new(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let bucket = unique("trail").to_lowercase();
        s3.create_bucket().bucket(&bucket).send().await.unwrap();
        let state_table = unique("state");
        ddb.create_table()
            .table_name(&state_table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("pk", KeyType::Hash))
            .key_schema(key("sk", KeyType::Range))
            .attribute_definitions(attr("pk"))
            .attribute_definitions(attr("sk"))
            .send()
            .await
            .unwrap();
        let findings_table = unique("findings");
        let mut create = ddb
            .create_table()
            .table_name(&findings_table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("id", KeyType::Hash))
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build()
                    .unwrap(),
            );
        for a in [
            "id",
            "day",
            "rule_id",
            "principal",
            "account",
            "level",
            "event_time",
        ] {
            create = create.attribute_definitions(attr(a));
        }
        for (index, pk) in [
            ("by_day", "day"),
            ("by_rule", "rule_id"),
            ("by_principal", "principal"),
            ("by_account", "account"),
            ("by_level", "level"),
        ] {
            create = create.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(index)
                    .key_schema(key(pk, KeyType::Hash))
                    .key_schema(key("event_time", KeyType::Range))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()
                    .unwrap(),
            );
        }
        create.send().await.unwrap();
        let topic_arn = sns
            .create_topic()
            .name(unique("alerts"))
            .send()
            .await
            .unwrap()
            .topic_arn
            .unwrap();
        let alerts_queue = sqs
            .create_queue()
            .queue_name(unique("alerts-read"))
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let queue_arn = sqs
            .get_queue_attributes()
            .queue_url(&alerts_queue)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
            .clone();
        sns.subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .send()
            .await
            .unwrap();
        World {
            sdk,
            s3,
            ddb,
            sqs,
            bucket,
            state_table,
            findings_table,
            topic_arn,
            alerts_queue,
        }
    }

    fn config(&self) -> Config {
        let env: HashMap<String, String> = [
            ("TRAILWARDEN_FINDINGS_TABLE", self.findings_table.as_str()),
            ("TRAILWARDEN_STATE_TABLE", self.state_table.as_str()),
            ("TRAILWARDEN_ALERT_TOPIC_ARN", self.topic_arn.as_str()),
            ("TRAILWARDEN_MIN_ALERT_LEVEL", "high"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        Config::from_map(&env, Needs::Alerts).unwrap()
    }

    async fn service(&self) -> Service {
        Service::start(self.config(), &self.sdk).await.unwrap()
    }

    async fn put(&self, key: &str, body: Vec<u8>) {
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(body.into())
            .send()
            .await
            .unwrap();
    }

    /// Every item of the findings table (all pages).
    async fn findings(&self) -> Vec<HashMap<String, AttributeValue>> {
        self.items(&self.findings_table).await
    }

    /// Every item of `table` (all pages).
    async fn items(&self, table: &str) -> Vec<HashMap<String, AttributeValue>> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .ddb
                .scan()
                .table_name(table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            out.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return out,
            }
        }
    }
}

fn s3_notification(bucket: &str, key: &str, etag: &str) -> Value {
    let encoded = key.replace(' ', "+");
    json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-02T08:05:30.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
               "object": {"key": encoded, "size": 1000, "eTag": etag, "sequencer": "0055AED6DCD90281E5"}}}]})
}

fn sqs_event(bodies: &[(&str, String)]) -> aws_lambda_events::sqs::SqsEvent {
    let records: Vec<Value> = bodies
        .iter()
        .map(|(id, body)| {
            json!({"messageId": id, "receiptHandle": "r", "body": body, "attributes": {}, "messageAttributes": {},
                   "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:111122223333:ingest", "awsRegion": "us-east-1"})
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

fn log_object() -> Vec<u8> {
    let text = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/tampering.json"
    ))
    .unwrap();
    gzip(&text)
}

/// An attribute value as DynamoDB's JSON (the shape Lambda delivers).
fn attribute_json(v: &aws_sdk_dynamodbstreams::types::AttributeValue) -> Value {
    use aws_sdk_dynamodbstreams::types::AttributeValue as A;
    match v {
        A::S(s) => json!({ "S": s }),
        A::N(n) => json!({ "N": n }),
        A::Ss(v) => json!({ "SS": v }),
        A::Ns(v) => json!({ "NS": v }),
        A::Bool(b) => json!({ "BOOL": b }),
        A::Null(b) => json!({ "NULL": b }),
        A::M(m) => json!({ "M": image_json(m) }),
        A::L(l) => json!({ "L": l.iter().map(attribute_json).collect::<Vec<_>>() }),
        other => panic!("unexpected attribute {other:?}"),
    }
}

fn image_json(
    image: &HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>,
) -> serde_json::Map<String, Value> {
    image
        .iter()
        .map(|(k, v)| (k.clone(), attribute_json(v)))
        .collect()
}

/// Every record of a table's DynamoDB stream so far, in the JSON shape the
/// stream event source hands to Lambda.
async fn stream_records(world: &World) -> Vec<Value> {
    let streams = aws_sdk_dynamodbstreams::Client::new(&world.sdk);
    let arn = world
        .ddb
        .describe_table()
        .table_name(&world.findings_table)
        .send()
        .await
        .unwrap()
        .table
        .unwrap()
        .latest_stream_arn
        .expect("the findings table has a stream");
    let shards = streams
        .describe_stream()
        .stream_arn(&arn)
        .send()
        .await
        .unwrap()
        .stream_description
        .unwrap()
        .shards
        .unwrap_or_default();
    let mut out = Vec::new();
    for shard in shards {
        let mut iterator = streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard.shard_id.unwrap())
            .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator;
        while let Some(it) = iterator.take() {
            let page = streams
                .get_records()
                .shard_iterator(it)
                .send()
                .await
                .unwrap();
            let records = page.records.unwrap_or_default();
            if records.is_empty() {
                break;
            }
            for r in records {
                let d = r.dynamodb.unwrap();
                let mut dynamodb = serde_json::Map::new();
                dynamodb.insert(
                    "Keys".into(),
                    image_json(&d.keys.unwrap_or_default()).into(),
                );
                for (name, image) in [("NewImage", d.new_image), ("OldImage", d.old_image)] {
                    if let Some(image) = image {
                        dynamodb.insert(name.into(), image_json(&image).into());
                    }
                }
                dynamodb.insert("SequenceNumber".into(), json!(d.sequence_number.unwrap()));
                dynamodb.insert("SizeBytes".into(), json!(d.size_bytes.unwrap_or(0)));
                dynamodb.insert(
                    "StreamViewType".into(),
                    json!(d.stream_view_type.map(|v| v.as_str().to_owned())),
                );
                out.push(json!({
                    "eventID": r.event_id, "eventName": r.event_name.map(|n| n.as_str().to_owned()),
                    "eventVersion": r.event_version, "eventSource": "aws:dynamodb", "awsRegion": r.aws_region,
                    "eventSourceARN": arn, "dynamodb": dynamodb,
                }));
            }
            iterator = page.next_shard_iterator;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn object_to_findings_to_alert_for_each_notification_shape() {
    let Some(_) = endpoint() else { return };
    let world = World::new().await;
    let service = world.service().await;
    let key = KEY.to_owned();
    world.put(&key, log_object()).await;

    let direct = s3_notification(&world.bucket, &key, "etag-1").to_string();
    let sns = json!({"Type": "Notification", "MessageId": "m1", "TopicArn": "arn:aws:sns:us-east-1:111122223333:trail", "Message": direct, "Timestamp": "2026-11-02T08:05:31Z"}).to_string();
    let eventbridge = json!({"version": "0", "id": "e1", "detail-type": "Object Created", "source": "aws.s3", "account": "111122223333",
        "time": "2026-11-02T08:05:30Z", "region": "us-east-1", "resources": [format!("arn:aws:s3:::{}", world.bucket)],
        "detail": {"version": "0", "bucket": {"name": world.bucket}, "object": {"key": key.replace(' ', "+"), "size": 1000, "etag": "etag-1", "sequencer": "s"},
                   "request-id": "r", "requester": "cloudtrail.amazonaws.com", "reason": "PutObject"}}).to_string();

    // Each shape alone, on fresh tables: the same findings.
    let mut shapes_findings = Vec::new();
    for body in [direct.clone(), sns, eventbridge] {
        let w = World::new().await;
        w.put(&key, log_object()).await;
        let body = body.replace(&world.bucket, &w.bucket);
        let svc = w.service().await;
        let response = trailwarden_ingest::handle(&svc, sqs_event(&[("m1", body)])).await;
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
        let mut ids: Vec<String> = w
            .findings()
            .await
            .iter()
            .map(|i| i["id"].as_s().unwrap().clone())
            .collect();
        ids.sort();
        shapes_findings.push(ids);
    }
    assert!(!shapes_findings[0].is_empty());
    assert!(
        shapes_findings.windows(2).all(|w| w[0] == w[1]),
        "{shapes_findings:?}"
    );

    // Delivered twice: one finding each, one alert each.
    for _ in 0..2 {
        let response =
            trailwarden_ingest::handle(&service, sqs_event(&[("m1", direct.clone())])).await;
        assert!(response.batch_item_failures.is_empty());
    }
    let items = world.findings().await;
    assert_eq!(items.len(), shapes_findings[0].len());
    assert!(
        items.iter().all(|i| i["times_seen"].as_n().unwrap() == "1"),
        "the ledger made the redelivery a no-op"
    );

    // The table's stream → the alert handler → SNS → the subscribed queue.
    let notifier = trailwarden_alert::notifier(&service, &world.sdk)
        .await
        .unwrap();
    let records = stream_records(&world).await;
    let inserts: Vec<&Value> = records
        .iter()
        .filter(|r| r["eventName"] == "INSERT")
        .collect();
    assert_eq!(inserts.len(), items.len(), "one INSERT per finding");
    let response =
        trailwarden_alert::handle(&service, &notifier, json!({ "Records": records })).await;
    assert!(response.batch_item_failures.is_empty());
    let high = items
        .iter()
        .filter(|i| ["high", "critical"].contains(&i["level"].as_s().unwrap().as_str()))
        .count();
    assert!(high > 0);
    let mut messages = Vec::new();
    for _ in 0..10 {
        let out = world
            .sqs
            .receive_message()
            .queue_url(&world.alerts_queue)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        messages.extend(out.messages.unwrap_or_default());
        if messages.len() >= high {
            break;
        }
    }
    assert_eq!(
        messages.len(),
        high,
        "one alert per high or critical finding"
    );
    let envelope: Value = serde_json::from_str(messages[0].body().unwrap()).unwrap();
    let subject = envelope["Subject"].as_str().unwrap();
    assert!(
        subject.starts_with("[trailwarden ")
            && subject.contains("(111122223333)")
            && subject.len() < 100,
        "{subject}"
    );
    let body = envelope["Message"].as_str().unwrap();
    for part in [
        "WHAT HAPPENED",
        "WHO",
        "arn:aws:sts::111122223333:assumed-role/ops/mallory",
        "203.0.113.50",
        "WHAT TO DO",
        "EVENTS",
    ] {
        assert!(body.contains(part), "{part} not in {body}");
    }
    let attrs = &envelope["MessageAttributes"];
    assert_eq!(attrs["account"]["Value"], "111122223333");
    assert!(["high", "critical"].contains(&attrs["level"]["Value"].as_str().unwrap()));
    assert!(attrs["rule_id"]["Value"].is_string());

    // A repeat of a finding from another delivery (a MODIFY on the stream:
    // its count went up) does not alert again.
    let again = KEY.replace("test file", "same events again");
    world.put(&again, log_object()).await;
    let response = trailwarden_ingest::handle(
        &service,
        sqs_event(&[(
            "m2",
            s3_notification(&world.bucket, &again, "etag-2").to_string(),
        )]),
    )
    .await;
    assert!(response.batch_item_failures.is_empty());
    // The alerts' delivery records are MODIFYs too (the deployed stream
    // filter passes INSERTs only); the repeats are those that counted.
    let (modified, delivery_records): (Vec<Value>, Vec<Value>) = stream_records(&world)
        .await
        .into_iter()
        .filter(|r| r["eventName"] == "MODIFY")
        .partition(|r| {
            r["dynamodb"]["NewImage"]["times_seen"] != r["dynamodb"]["OldImage"]["times_seen"]
        });
    assert_eq!(delivery_records.len(), high, "{delivery_records:?}");
    assert!(delivery_records
        .iter()
        .all(|r| r["dynamodb"]["NewImage"]["delivered"]["SS"] == json!(["sns"])));
    assert_eq!(modified.len(), items.len(), "{modified:?}");
    assert!(modified
        .iter()
        .all(|r| r["dynamodb"]["NewImage"]["times_seen"]["N"] == "2"));
    trailwarden_alert::handle(&service, &notifier, json!({ "Records": modified })).await;
    let out = world
        .sqs
        .receive_message()
        .queue_url(&world.alerts_queue)
        .send()
        .await
        .unwrap();
    assert!(out.messages.unwrap_or_default().is_empty());
}

/// The `StopLogging` record of `tests/data/tampering.json`.
fn stop_logging_record() -> Value {
    let file: Value = serde_json::from_slice(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/tampering.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let stop = file["Records"][1].clone();
    assert_eq!(stop["eventName"], "StopLogging");
    stop
}

/// `record` as EventBridge delivers a CloudTrail event from `source` in
/// `account`.
fn eventbridge_event(source: &str, account: &str, record: &Value) -> Value {
    json!({"version": "0", "id": "x", "detail-type": "AWS API Call via CloudTrail", "source": source,
        "account": account, "time": "2026-11-02T08:02:13Z", "region": "us-east-1", "resources": [], "detail": record})
}

/// A custom event shaped like CloudTrail's (PutEvents by anyone with access
/// to the bus) or one whose account is not the record's makes no finding;
/// the same record as AWS delivers it does.
#[tokio::test(flavor = "multi_thread")]
async fn a_forged_eventbridge_event_makes_no_finding() {
    let Some(_) = endpoint() else { return };
    let world = World::new().await;
    let service = world.service().await;
    let stop = stop_logging_record();
    let envelope = |source: &str, account: &str| eventbridge_event(source, account, &stop);
    for forged in [
        envelope("acme.cloudtrail", "111122223333"),
        envelope("aws.cloudtrail", "444455556666"),
    ] {
        trailwarden_realtime::handle(&service, forged)
            .await
            .unwrap();
    }
    assert!(world.findings().await.is_empty());
    trailwarden_realtime::handle(&service, envelope("aws.cloudtrail", "111122223333"))
        .await
        .unwrap();
    assert!(!world.findings().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_event_by_eventbridge_and_s3_is_one_finding() {
    let Some(_) = endpoint() else { return };
    let world = World::new().await;
    let service = world.service().await;
    let event = eventbridge_event("aws.cloudtrail", "111122223333", &stop_logging_record());
    trailwarden_realtime::handle(&service, event).await.unwrap();
    let after_realtime = world.findings().await.len();
    assert!(after_realtime >= 1);
    world.put(KEY, log_object()).await;
    let response = trailwarden_ingest::handle(
        &service,
        sqs_event(&[("m1", s3_notification(&world.bucket, KEY, "e").to_string())]),
    )
    .await;
    assert!(response.batch_item_failures.is_empty());
    let items = world.findings().await;
    let stop_items: Vec<_> = items
        .iter()
        .filter(|i| {
            i["body"]
                .as_s()
                .unwrap()
                .contains("\"event_name\":\"StopLogging\"")
        })
        .collect();
    assert_eq!(
        stop_items.len(),
        1,
        "one finding for the event seen both ways"
    );
    assert_eq!(stop_items[0]["times_seen"].as_n().unwrap(), "2");
}

/// Records of a log object as the real-time queue delivers them: each the
/// body of an SQS message, the EventBridge event AWS emits for it (source
/// `aws.<service>`, the recording account), `per_batch` messages a batch.
fn real_time_batches(records: &[Value], per_batch: usize) -> Vec<aws_lambda_events::sqs::SqsEvent> {
    records
        .chunks(per_batch)
        .enumerate()
        .map(|(b, chunk)| {
            let bodies: Vec<(String, String)> = chunk
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let service = r["eventSource"]
                        .as_str()
                        .unwrap()
                        .trim_end_matches(".amazonaws.com");
                    let account = r["recipientAccountId"].as_str().unwrap();
                    let event = eventbridge_event(&format!("aws.{service}"), account, r);
                    (format!("rt-{b}-{i}"), event.to_string())
                })
                .collect();
            let refs: Vec<(&str, String)> = bodies
                .iter()
                .map(|(id, body)| (id.as_str(), body.clone()))
                .collect();
            sqs_event(&refs)
        })
        .collect()
}

/// The findings table's items as id → (rule title, whether it has group-by
/// values (a correlation's or a baseline's), times seen).
async fn findings_by_id(
    world: &World,
) -> std::collections::BTreeMap<String, (String, bool, String)> {
    world
        .findings()
        .await
        .iter()
        .map(|i| {
            let body: Value = serde_json::from_str(i["body"].as_s().unwrap()).unwrap();
            (
                i["id"].as_s().unwrap().clone(),
                (
                    body["rule_title"].as_str().unwrap().to_owned(),
                    body["group"].as_object().is_some_and(|g| !g.is_empty()),
                    i["times_seen"].as_n().unwrap().clone(),
                ),
            )
        })
        .collect()
}

/// LLMjacking (a correlation) found from the real-time queue before the log
/// file comes; the log file then adds no finding and counts no event twice:
/// every finding the log file alone would make is there, with the same id,
/// each correlation made once, and no state item keeps an early event.
/// A forged event and a message that is not JSON in the same batch are
/// rejected and failed alone.
#[tokio::test(flavor = "multi_thread")]
async fn correlations_fire_from_the_real_time_queue_and_the_log_file_adds_nothing() {
    let Some(_) = endpoint() else { return };
    // A fixed seed: the same records (and so the same findings) every run.
    let simulated = simulated_llmjacking_with(100, &["--seed", "7"]);
    let records = records_of(&simulated);
    let title =
        "LLMjacking - Bedrock Reconnaissance Then Model Invocation with a Long-Term Access Key";

    // The log file alone.
    let file_only = World::new().await;
    {
        let service = file_only.service().await;
        file_only.put(KEY, simulated.clone()).await;
        let response = trailwarden_ingest::handle(
            &service,
            sqs_event(&[(
                "m1",
                s3_notification(&file_only.bucket, KEY, "e").to_string(),
            )]),
        )
        .await;
        assert!(response.batch_item_failures.is_empty());
    }
    let late = findings_by_id(&file_only).await;
    assert_eq!(late.values().filter(|(t, _, _)| t == title).count(), 1);

    // The real-time queue first, in batches of 25, then the log file.
    let world = World::new().await;
    let service = world.service().await;
    let mut batches = real_time_batches(&records, 25);
    // A forged event (a custom source) and a body that is not JSON ride
    // along in the first batch.
    let mut forged = eventbridge_event("acme.bedrock", "111122223333", &records[0]);
    forged["detail"]["eventID"] = json!("forged");
    let extra = sqs_event(&[
        ("forged", forged.to_string()),
        ("garbled", "{not json".to_owned()),
    ]);
    batches[0].records.extend(extra.records);
    for (b, batch) in batches.into_iter().enumerate() {
        let response = trailwarden_realtime::handle_queue(&service, batch).await;
        let failed: Vec<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, if b == 0 { vec!["garbled"] } else { vec![] });
    }
    let early = findings_by_id(&world).await;
    let fired: Vec<&String> = early
        .iter()
        .filter(|(_, (t, _, _))| t == title)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(fired.len(), 1, "LLMjacking before the log file: {early:#?}");
    assert!(early.values().all(|(_, _, seen)| seen == "1"), "{early:#?}");

    world.put(KEY, simulated).await;
    let response = trailwarden_ingest::handle(
        &service,
        sqs_event(&[("m1", s3_notification(&world.bucket, KEY, "e").to_string())]),
    )
    .await;
    assert!(response.batch_item_failures.is_empty());
    let both = findings_by_id(&world).await;
    for (id, (rule, _, _)) in &late {
        assert!(
            both.contains_key(id),
            "{rule}: the log file alone makes {id}; both ways must too"
        );
    }
    let correlations: Vec<&String> = late
        .iter()
        .filter(|(_, (_, grouped, _))| *grouped)
        .map(|(id, _)| id)
        .collect();
    assert!(correlations.len() >= 2, "{late:#?}");
    let ahead = correlations
        .iter()
        .filter(|id| early.contains_key(**id))
        .count();
    eprintln!("{} correlation and baseline findings from the log file alone; {ahead} of them made ahead of it", correlations.len());
    for id in correlations {
        let (rule, _, seen) = &both[id];
        if early.contains_key(id) {
            // Made once, in real time: the log file's merge fires nothing.
            assert_eq!(seen, &early[id].2, "{rule} fired again");
        }
    }
    assert_eq!(both[fired[0]].2, "1", "LLMjacking made once");
    for item in world.items(&world.state_table).await {
        let body = item
            .get("body")
            .and_then(|b| b.as_s().ok())
            .cloned()
            .unwrap_or_default();
        assert!(
            !body.contains("\"early\""),
            "an early event outlived its log file: {body}"
        );
    }
}

/// Three `StopLogging` calls alike but for their time and id, in one log
/// object: the deployment stores one finding (the first call's id) with a
/// count of 3, and a redelivered object (a new ETag too) changes nothing.
/// The real-time function stored the first call's finding before the
/// object came: the object's fuller finding takes its place, counted as
/// seen twice.
#[tokio::test(flavor = "multi_thread")]
async fn repeats_in_one_object_are_one_finding_with_their_count() {
    let Some(_) = endpoint() else { return };
    let world = World::new().await;
    let service = world.service().await;
    let records: Vec<Value> = (0..3)
        .map(|i| {
            let mut r = stop_logging_record();
            r["eventID"] = json!(format!("stop-{i}"));
            r["eventTime"] = json!(format!("2026-11-02T08:0{i}:00Z"));
            r
        })
        .collect();
    trailwarden_realtime::handle(
        &service,
        eventbridge_event("aws.cloudtrail", "111122223333", &records[0]),
    )
    .await
    .unwrap();
    world
        .put(
            KEY,
            gzip(json!({ "Records": records }).to_string().as_bytes()),
        )
        .await;
    for etag in ["e", "e", "e2"] {
        let response = trailwarden_ingest::handle(
            &service,
            sqs_event(&[("m1", s3_notification(&world.bucket, KEY, etag).to_string())]),
        )
        .await;
        assert!(response.batch_item_failures.is_empty());
        let items = world.findings().await;
        let stops: Vec<Value> = items
            .iter()
            .map(|i| serde_json::from_str::<Value>(i["body"].as_s().unwrap()).unwrap())
            .filter(|b| b["event_name"] == "StopLogging")
            .collect();
        assert_eq!(stops.len(), 1, "{stops:#?}");
        assert_eq!(stops[0]["count"], 3);
        assert_eq!(stops[0]["event_ids"], json!(["stop-0", "stop-1", "stop-2"]));
        assert_eq!(
            stops[0]["id"],
            trailwarden_engine::finding_id(
                stops[0]["rule_id"].as_str().unwrap(),
                &["stop-0".to_owned()]
            )
        );
        let seen = items
            .iter()
            .find(|i| i["body"].as_s().unwrap().contains("StopLogging"))
            .unwrap()["times_seen"]
            .as_n()
            .unwrap()
            .clone();
        assert_eq!(seen, "2");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_object_fails_only_its_own_message() {
    let Some(_) = endpoint() else { return };
    let world = World::new().await;
    let service = world.service().await;
    world.put(KEY, log_object()).await;
    let bad_key = KEY.replace("test file", "broken");
    world
        .put(&bad_key, gzip(b"{\"Records\": [ this is not json"))
        .await;
    let digest = "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/11/02/x.json.gz";
    let event = sqs_event(&[
        (
            "good",
            s3_notification(&world.bucket, KEY, "e1").to_string(),
        ),
        (
            "bad",
            s3_notification(&world.bucket, &bad_key, "e2").to_string(),
        ),
        (
            "digest",
            s3_notification(&world.bucket, digest, "e3").to_string(),
        ),
        ("garbage", "hello".to_owned()),
        (
            // Notified, then deleted (a lifecycle rule, an operator) before
            // it was read: skipped, since no retry can read it.
            "deleted",
            s3_notification(&world.bucket, &KEY.replace("test file", "deleted"), "e4").to_string(),
        ),
        (
            "test",
            json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": world.bucket})
                .to_string(),
        ),
    ]);
    let response = trailwarden_ingest::handle(&service, event).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["bad", "garbage"]);
    assert!(
        !world.findings().await.is_empty(),
        "the good object's findings are stored"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_store_fails_the_messages_so_they_are_retried() {
    let Some(_) = endpoint() else { return };
    let world = World::new().await;
    world.put(KEY, log_object()).await;
    let mut config = world.config();
    config.state_table = "no-such-table".into();
    config.findings_table = "no-such-table-either".into();
    let service = Service::start(config, &world.sdk).await.unwrap();
    let response = trailwarden_ingest::handle(
        &service,
        sqs_event(&[("m1", s3_notification(&world.bucket, KEY, "e1").to_string())]),
    )
    .await;
    assert_eq!(
        response.batch_item_failures.len(),
        1,
        "the message comes back"
    );
    // Once the store is there, the retry processes the object in full.
    let service = world.service().await;
    let response = trailwarden_ingest::handle(
        &service,
        sqs_event(&[("m1", s3_notification(&world.bucket, KEY, "e1").to_string())]),
    )
    .await;
    assert!(response.batch_item_failures.is_empty());
    assert!(!world.findings().await.is_empty());
}

fn cli(args: &[&str]) -> (std::process::ExitStatus, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trailwarden"))
        .args(args)
        .env("TRAILWARDEN_STORE", "memory")
        .output()
        .unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_backfills_and_findings_query_the_table_by_index() {
    let Some(_) = endpoint() else { return };
    let world = World::new().await;
    world.put(KEY, log_object()).await;
    world
        .put("other/prefix/readme.txt", b"not a log".to_vec())
        .await;
    let source = format!("s3://{}/AWSLogs/", world.bucket);
    let (status, _, stderr) = cli(&[
        "replay",
        &source,
        "--since",
        "2026-11-01",
        "--table",
        &world.findings_table,
        "--state-table",
        &world.state_table,
    ]);
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("replayed 1 object(s)"), "{stderr}");
    // Replaying again is a no-op (the ledger).
    let (_, _, stderr) = cli(&[
        "replay",
        &source,
        "--table",
        &world.findings_table,
        "--state-table",
        &world.state_table,
    ]);
    assert!(
        stderr.contains("replayed 0 object(s)") && stderr.contains("1 already processed"),
        "{stderr}"
    );
    // A notification of the same object (its ETag without the quotes S3's
    // listing puts around it) finds it processed: nothing is counted twice.
    let head = world
        .s3
        .head_object()
        .bucket(&world.bucket)
        .key(KEY)
        .send()
        .await
        .unwrap();
    let quoted = head.e_tag().unwrap();
    let state = || async {
        let out = world
            .ddb
            .scan()
            .table_name(&world.state_table)
            .send()
            .await
            .unwrap();
        let mut items: Vec<String> = out
            .items()
            .iter()
            .map(|i| {
                let mut attributes: Vec<String> =
                    i.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                attributes.sort();
                attributes.join(" ")
            })
            .collect();
        items.sort();
        items
    };
    let before = state().await;
    assert!(quoted.starts_with('"'), "{quoted}");
    let service = world.service().await;
    let response = trailwarden_ingest::handle(
        &service,
        sqs_event(&[(
            "m1",
            s3_notification(&world.bucket, KEY, quoted.trim_matches('"')).to_string(),
        )]),
    )
    .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(
        state().await,
        before,
        "the notified object was read again after replay (its state counted twice)"
    );

    let query = |extra: &[&str]| {
        let mut args = vec![
            "findings",
            "--table",
            world.findings_table.as_str(),
            "--format",
            "jsonl",
        ];
        args.extend_from_slice(extra);
        let (status, stdout, stderr) = cli(&args);
        assert!(status.success(), "{stderr}");
        stdout
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    let all = query(&["--since", "2026-11-01"]);
    assert_eq!(all.len(), world.findings().await.len());
    // Without --since: every stored finding (through the level index), as
    // from the local store.
    let ids = |rows: &[Value]| {
        let mut ids: Vec<String> = rows
            .iter()
            .map(|f| f["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&query(&[])), ids(&all));
    let stop = all
        .iter()
        .find(|f| f["event_name"] == "StopLogging")
        .unwrap();
    let rule = stop["rule_id"].as_str().unwrap();
    assert_eq!(query(&["--since", "2026-11-01", "--rule", rule]).len(), 1);
    assert_eq!(
        query(&["--since", "2026-11-01", "--account", "111122223333"]).len(),
        all.len()
    );
    assert!(query(&["--since", "2026-11-01", "--level", "critical"])
        .iter()
        .all(|f| f["level"] == "critical"));
    assert!(query(&["--since", "2026-11-03"]).is_empty());
    let id = stop["id"].as_str().unwrap();
    let (status, _, _) = cli(&[
        "findings",
        "--table",
        &world.findings_table,
        "ack",
        id,
        "--note",
        "restarted",
    ]);
    assert!(status.success());
    let (_, shown, _) = cli(&["findings", "--table", &world.findings_table, "show", id]);
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["status"], "acknowledged");
    assert_eq!(shown["status_note"], "restarted");
}

/// An HTTP server on loopback that answers one request per connection with
/// each of `answers` in turn (a status line's code and reason, then any
/// header lines), and hands back the request bodies.
fn scripted_webhook(answers: Vec<&'static str>) -> (String, std::thread::JoinHandle<Vec<String>>) {
    use std::io::{BufRead, BufReader, Read};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/services/T000/B000/XXXX",
        listener.local_addr().unwrap()
    );
    let handle = std::thread::spawn(move || {
        let mut bodies = Vec::new();
        for answer in answers {
            let (stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let mut stream = stream;
            write!(
                stream,
                "HTTP/1.1 {answer}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
            )
            .unwrap();
            bodies.push(String::from_utf8(body).unwrap());
        }
        bodies
    });
    (url, handle)
}

/// Store `findings` in the world's findings table and return the INSERT
/// records the table's stream gives for them, in the shape Lambda hands
/// to the alert function.
async fn stored_inserts(
    world: &World,
    service: &Service,
    findings: &[&trailwarden_engine::Finding],
) -> Vec<Value> {
    for f in findings {
        service
            .store
            .put_finding(f, "s3://bucket/key")
            .await
            .unwrap();
    }
    let inserts: Vec<Value> = stream_records(world)
        .await
        .into_iter()
        .filter(|r| r["eventName"] == "INSERT")
        .collect();
    assert_eq!(inserts.len(), findings.len());
    inserts
}

/// The channels recorded as delivered for finding `id`, in order.
async fn delivered(service: &Service, id: &str) -> Vec<String> {
    service
        .store
        .delivered_channels(id)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

/// A notifier for email (the world's topic) and the Slack webhook `url`.
fn email_and_slack(world: &World, url: String) -> trailwarden_aws::notify::Notifier {
    trailwarden_aws::notify::Notifier::new(
        aws_sdk_sns::Client::new(&world.sdk),
        world.topic_arn.clone(),
        None,
        Some(url),
    )
    .unwrap()
}

/// The emails (SNS messages) the world's subscribed queue holds, waiting
/// up to three seconds.
async fn emails(world: &World) -> Vec<aws_sdk_sqs::types::Message> {
    let mut out = Vec::new();
    for _ in 0..3 {
        let got = world
            .sqs
            .receive_message()
            .queue_url(&world.alerts_queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        out.extend(got.messages.unwrap_or_default());
    }
    out
}

/// Alerts go to each channel once: a Slack outage fails the stream record,
/// and its retries send only to Slack, never the email again; Slack's 429
/// with a short `Retry-After` is waited out within the invocation; a record
/// delivered everywhere sends nothing when it comes again.
#[tokio::test(flavor = "multi_thread")]
async fn a_slack_outage_sends_the_email_once_and_slack_when_it_is_back() {
    let Some(_) = endpoint() else { return };
    let world = World::new().await;
    let service = world.service().await;
    let finding = finding_with(
        "tw-slack-outage",
        "r-outage",
        "arn:aws:sts::111122223333:assumed-role/r/s",
        "ua",
    );
    let inserts = stored_inserts(&world, &service, &[&finding]).await;
    let (url, server) = scripted_webhook(vec![
        "500 Internal Server Error",
        "500 Internal Server Error",
        "429 Too Many Requests\r\nretry-after: 1",
        "200 OK",
    ]);
    let notifier = email_and_slack(&world, url);
    assert_eq!(notifier.channels(), ["sns", "slack"]);
    let event = json!({ "Records": inserts });
    // Two invocations during the outage: the record fails both times.
    for _ in 0..2 {
        let response = trailwarden_alert::handle(&service, &notifier, event.clone()).await;
        assert_eq!(response.batch_item_failures.len(), 1, "{response:?}");
    }
    // Slack is back, first asking to wait a second: delivered.
    let started = std::time::Instant::now();
    let response = trailwarden_alert::handle(&service, &notifier, event.clone()).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    let bodies = server.join().unwrap();
    assert_eq!(
        bodies.len(),
        4,
        "two failed sends, a 429, the one that took"
    );
    // Delivered everywhere: a fourth delivery sends nothing (the webhook
    // is gone, so a send would fail the record).
    let response = trailwarden_alert::handle(&service, &notifier, event).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(delivered(&service, &finding.id).await, ["slack", "sns"]);
    let emails = emails(&world).await;
    assert_eq!(emails.len(), 1, "one email in all: {emails:?}");
}

/// Each channel alerts from its own minimum level: with Slack at critical,
/// a high finding goes by email only (the webhook is never called).
#[tokio::test(flavor = "multi_thread")]
async fn each_channel_alerts_from_its_own_minimum_level() {
    let Some(_) = endpoint() else { return };
    let world = World::new().await;
    let mut config = world.config();
    config.channel_min_levels = vec![("slack", trailwarden_engine::Level::Critical)];
    let service = Service::start(config, &world.sdk).await.unwrap();
    let finding = finding_with(
        "tw-levels",
        "r-levels",
        "arn:aws:iam::111122223333:user/u",
        "ua",
    );
    assert_eq!(finding.level, trailwarden_engine::Level::High);
    let inserts = stored_inserts(&world, &service, &[&finding]).await;
    // A webhook nobody answers: calling it would fail the record.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/services/T/B/X", closed.local_addr().unwrap());
    drop(closed);
    let notifier = email_and_slack(&world, url);
    let response =
        trailwarden_alert::handle(&service, &notifier, json!({ "Records": inserts })).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(delivered(&service, &finding.id).await, ["sns"]);
}

/// A rule firing many times for one principal alerts once per window: the
/// others are stored, not alerted, and counted; the pair's next window
/// reports how many were held back; a retried record of the finding that
/// alerted alerts again (its window), one held back stays held back.
#[tokio::test(flavor = "multi_thread")]
async fn one_alert_per_rule_and_principal_per_window() {
    let Some(_) = endpoint() else { return };
    let world = World::new().await;
    let mut config = world.config();
    config.alert_dedup_minutes = 60;
    let service = Service::start(config, &world.sdk).await.unwrap();
    let principal = "arn:aws:sts::111122223333:assumed-role/app/i-0abc";
    let findings: Vec<_> = (0..3)
        .map(|i| finding_with(&format!("tw-dedup-{i}"), "r-dedup", principal, "ua"))
        .collect();
    let other = finding_with(
        "tw-dedup-other",
        "r-dedup",
        "arn:aws:iam::111122223333:user/bob",
        "ua",
    );
    let all: Vec<_> = findings.iter().chain([&other]).collect();
    let inserts = stored_inserts(&world, &service, &all).await;
    let notifier = trailwarden_alert::notifier(&service, &world.sdk)
        .await
        .unwrap();
    let event = json!({ "Records": inserts });
    for _ in 0..2 {
        let response = trailwarden_alert::handle(&service, &notifier, event.clone()).await;
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
    }
    let mut alerted = 0;
    for f in &findings {
        match delivered(&service, &f.id).await.as_slice() {
            [c] if c == "sns" => alerted += 1,
            [c] if c == "deduplicated" => {}
            other => panic!("{}: {other:?}", f.id),
        }
    }
    assert_eq!(alerted, 1, "one alert for the pair");
    assert_eq!(
        delivered(&service, &other.id).await,
        ["sns"],
        "another principal alerts"
    );
    let emails = emails(&world).await;
    assert_eq!(emails.len(), 2, "{emails:?}");
    // An hour later the pair's next finding opens a window and hears of the
    // two held back.
    let later = chrono::Utc::now().timestamp() + 3601;
    let window = service
        .store
        .claim_alert_window("r-dedup", principal, "tw-dedup-next", later, 3600)
        .await
        .unwrap();
    assert!(
        matches!(
            window,
            trailwarden_aws::dynamo::AlertWindow::Open {
                suppressed: 2,
                since: Some(_)
            }
        ),
        "{window:?}"
    );
}

/// A webhook Slack has revoked (404 `no_service`) refuses for good: the
/// record is not retried (later findings do not wait behind it), the email
/// goes once, and the refusal is not recorded as a delivery.
#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_slack_webhook_is_refused_for_good_and_blocks_nothing() {
    let Some(_) = endpoint() else { return };
    let world = World::new().await;
    let service = world.service().await;
    let finding = finding_with(
        "tw-revoked",
        "r-revoked",
        "arn:aws:iam::111122223333:user/u",
        "ua",
    );
    let inserts = stored_inserts(&world, &service, &[&finding]).await;
    let (url, server) = scripted_webhook(vec!["404 Not Found"]);
    let notifier = email_and_slack(&world, url);
    let response =
        trailwarden_alert::handle(&service, &notifier, json!({ "Records": inserts })).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(server.join().unwrap().len(), 1);
    assert_eq!(delivered(&service, &finding.id).await, ["sns"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn slack_gets_an_escaped_message_from_a_hostile_user_agent() {
    let Some(_) = endpoint() else { return };
    let world = World::new().await;
    let (url, server) = scripted_webhook(vec!["200 OK"]);
    let notifier = email_and_slack(&world, url);
    let mut finding: trailwarden_engine::Finding = serde_json::from_value(json!({
        "id": "tw-slack", "rule_id": "r", "rule_title": "Bedrock Guardrail Deleted", "level": "high", "tags": [],
        "description": "A guardrail was deleted.", "event_time": "2026-11-02T08:00:00Z", "account": "111122223333",
        "region": "us-east-1", "principal": "arn:aws:iam::111122223333:user/mallory", "principal_type": "IAMUser",
        "access_key_id": "AKIA1", "source_ip": "192.0.2.1", "user_agent": "", "event_source": "bedrock.amazonaws.com",
        "event_name": "DeleteGuardrail", "error_code": null, "event_ids": ["e1"], "count": 1
    }))
    .unwrap();
    finding.user_agent =
        Some("x <!channel> <https://evil.example|Reset your password> @here".into());
    notifier
        .send(&finding, Some("Recreate the guardrail."))
        .await
        .unwrap();
    let body = server.join().unwrap().remove(0);
    let message: Value = serde_json::from_str(&body).unwrap();
    let text = message.to_string();
    assert!(
        text.contains("&lt;!channel&gt;") && !text.contains("<!channel>"),
        "{text}"
    );
    assert!(!text.contains("<https://evil.example"), "{text}");
    assert!(message["blocks"].as_array().unwrap().len() >= 4);
    assert_eq!(message["unfurl_links"], false);
}

/// `tests/data/ai-activity.json` (Bedrock use by carol and others, last in
/// October) as the object at [`KEY`], read by the ingest handler.
async fn ingest_ai_activity(world: &World, service: &Service) {
    let text = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/ai-activity.json"
    ))
    .unwrap();
    world.put(KEY, gzip(&text)).await;
    let response = trailwarden_ingest::handle(
        service,
        sqs_event(&[("m", s3_notification(&world.bucket, KEY, "e").to_string())]),
    )
    .await;
    assert!(response.batch_item_failures.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sweeper_stores_stale_ai_principals_as_findings() {
    let Some(_) = endpoint() else { return };
    let world = World::new().await;
    let service = world.service().await;
    ingest_ai_activity(&world, &service).await;
    let as_of = trailwarden_cloudtrail::parse_event_time("2026-11-20T00:00:00Z").unwrap();
    let stale = trailwarden_sweeper::handle(&service, as_of).await.unwrap();
    assert!(stale >= 1, "carol has been idle since May");
    let items = world.findings().await;
    assert!(items
        .iter()
        .any(|i| i["body"].as_s().unwrap().contains("Stale AI Principal")
            && i["body"].as_s().unwrap().contains("user/carol")));
    // A second sweep finds the same principals and adds no finding.
    let before = items.len();
    trailwarden_sweeper::handle(&service, as_of).await.unwrap();
    assert_eq!(world.findings().await.len(), before);
}

/// An HTTP proxy on loopback in front of the AWS API server: it forwards
/// requests while its budget lasts, then closes every connection without an
/// answer, as a store that becomes unreachable. It logs what it forwarded
/// (`X-Amz-Target` and whether the findings table was named).
struct Outage {
    url: String,
    budget: std::sync::Arc<std::sync::atomic::AtomicI64>,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Outage {
    fn start(upstream: &str, findings_table: &str) -> Outage {
        use std::io::{BufRead, BufReader, Read};
        use std::sync::atomic::Ordering;
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let budget = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(i64::MAX));
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (b, l, table) = (budget.clone(), log.clone(), findings_table.to_owned());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let (budget, log, upstream, table) =
                    (b.clone(), l.clone(), upstream.clone(), table.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(client.try_clone().unwrap());
                    let mut head = Vec::new();
                    let (mut length, mut target) = (0usize, String::new());
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let lower = line.to_ascii_lowercase();
                        if let Some(v) = lower.strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap();
                        }
                        if let Some(v) = lower.strip_prefix("x-amz-target:") {
                            target = v.trim().to_owned();
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if !lower.starts_with("connection:") {
                            head.push(line);
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    if budget.fetch_sub(1, Ordering::SeqCst) <= 0 {
                        return; // unreachable: closed without an answer
                    }
                    let findings = String::from_utf8_lossy(&body).contains(&table);
                    log.lock().unwrap().push(format!(
                        "{target} {}",
                        if findings { "findings" } else { "state" }
                    ));
                    let mut server = std::net::TcpStream::connect(&upstream).unwrap();
                    let mut request = head.concat().into_bytes();
                    request.extend_from_slice(b"connection: close\r\n\r\n");
                    request.extend_from_slice(&body);
                    server.write_all(&request).unwrap();
                    let mut response = Vec::new();
                    server.read_to_end(&mut response).unwrap();
                    // One request per connection: say so, then close.
                    let text = String::from_utf8_lossy(&response);
                    if !text.to_ascii_lowercase().contains("\r\nconnection: close") {
                        let end = response.windows(2).position(|w| w == b"\r\n").unwrap();
                        response.splice(end + 2..end + 2, b"connection: close\r\n".iter().copied());
                    }
                    let mut client = client;
                    let _ = client.write_all(&response);
                });
            }
        });
        Outage { url, budget, log }
    }

    fn allow(&self, requests: i64) {
        self.budget
            .store(requests, std::sync::atomic::Ordering::SeqCst);
    }

    fn forwarded(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

/// A service whose DynamoDB requests go through the proxy (few, quick
/// retries: the outage lasts).
async fn service_behind(world: &World, outage: &Outage) -> Service {
    let mut service = world.service().await;
    let config = aws_sdk_dynamodb::config::Builder::from(&world.sdk)
        .endpoint_url(&outage.url)
        .retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(2)
                .with_initial_backoff(std::time::Duration::from_millis(1)),
        )
        .build();
    service.store = trailwarden_aws::DynamoStore::new(
        aws_sdk_dynamodb::Client::from_conf(config),
        &world.state_table,
        &world.findings_table,
    );
    service
}

/// A `trailwarden simulate llmjacking` log object (gzip) with `background`
/// benign records woven in.
fn simulated_llmjacking(background: usize) -> Vec<u8> {
    simulated_llmjacking_with(background, &[])
}

/// [`simulated_llmjacking`] with more `simulate` arguments (`--seed`).
fn simulated_llmjacking_with(background: usize, more: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("llmjacking.json.gz");
    let background = background.to_string();
    let mut args = vec![
        "simulate",
        "llmjacking",
        "--background",
        &background,
        "-o",
        file.to_str().unwrap(),
    ];
    args.extend_from_slice(more);
    let (status, _, stderr) = cli(&args);
    assert!(status.success(), "{stderr}");
    std::fs::read(&file).unwrap()
}

/// The records of a gzip log file (`{"Records": [...]}`).
fn records_of(gzip: &[u8]) -> Vec<Value> {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(gzip), &mut text).unwrap();
    serde_json::from_str::<Value>(&text).unwrap()["Records"]
        .as_array()
        .unwrap()
        .clone()
}

/// The findings table as id → times made.
async fn finding_counts(world: &World) -> std::collections::BTreeMap<String, String> {
    world
        .findings()
        .await
        .iter()
        .map(|i| {
            (
                i["id"].as_s().unwrap().clone(),
                i["times_seen"].as_n().unwrap().clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_lost_mid_batch_fails_the_rest_and_the_retry_loses_nothing() {
    let Some(endpoint) = endpoint() else { return };
    // Three objects: single-event findings, first-use baselines, and an
    // LLMjacking run whose correlations span many state items.
    let objects = [
        (KEY.replace("test file", "a"), log_object()),
        (
            KEY.replace("test file", "b"),
            gzip(
                &std::fs::read(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/data/ai-activity.json"
                ))
                .unwrap(),
            ),
        ),
        (KEY.replace("test file", "c"), simulated_llmjacking(150)),
    ];
    let batch = |bucket: &str, only: &[String]| {
        let bodies: Vec<(&str, String)> = ["m1", "m2", "m3"]
            .into_iter()
            .zip(&objects)
            .filter(|(id, _)| only.is_empty() || only.iter().any(|o| o == id))
            .map(|(id, (key, _))| {
                (
                    id,
                    s3_notification(bucket, key, &format!("etag-{id}")).to_string(),
                )
            })
            .collect();
        sqs_event(&bodies)
    };

    // The reference: no outage.
    let world = World::new().await;
    for (key, body) in &objects {
        world.put(key, body.clone()).await;
    }
    let outage = Outage::start(&endpoint, &world.findings_table);
    let service = service_behind(&world, &outage).await;
    let response = trailwarden_ingest::handle(&service, batch(&world.bucket, &[])).await;
    assert!(response.batch_item_failures.is_empty());
    let expected = finding_counts(&world).await;
    let rules: std::collections::BTreeSet<String> = world
        .findings()
        .await
        .iter()
        .map(|i| i["rule_id"].as_s().unwrap().clone())
        .collect();
    assert!(expected.len() >= 8 && rules.len() >= 6, "{expected:?}");
    assert!(expected.values().all(|c| c == "1"));
    let log = outage.forwarded();
    // The sources' health counters (the only UpdateItem ingest makes on
    // the state table) are written after an object is done: a lost one
    // loses a count for the digest, not a finding, and fails no message.
    assert!(log.iter().any(|l| l.contains("updateitem state")));
    let essential: Vec<usize> = (0..log.len())
        .filter(|i| !log[*i].contains("updateitem state"))
        .collect();
    // Cut just before writes: finding puts, state writes, the ledger.
    let writes: Vec<usize> = essential
        .iter()
        .copied()
        .filter(|i| log[*i].contains("putitem") || log[*i].contains("updateitem"))
        .collect();
    assert!(log.iter().any(|l| l.contains("putitem findings")));
    assert!(log.iter().any(|l| l.contains("putitem state")));
    let step = (writes.len() / 10).max(1);
    let mut cuts: Vec<usize> = writes.iter().copied().step_by(step).collect();
    cuts.push(1);
    cuts.push(*essential.last().unwrap());

    for cut in cuts {
        let world = World::new().await;
        for (key, body) in &objects {
            world.put(key, body.clone()).await;
        }
        let outage = Outage::start(&endpoint, &world.findings_table);
        let service = service_behind(&world, &outage).await;
        outage.allow(cut as i64);
        let response = trailwarden_ingest::handle(&service, batch(&world.bucket, &[])).await;
        let failed: Vec<String> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        assert!(
            !failed.is_empty(),
            "cut at request {cut}: no message failed"
        );
        // The queue delivers the failed messages again, the store is back.
        outage.allow(i64::MAX);
        let retry = trailwarden_ingest::handle(&service, batch(&world.bucket, &failed)).await;
        assert!(
            retry.batch_item_failures.is_empty(),
            "cut at request {cut}: the retry failed"
        );
        assert_eq!(
            finding_counts(&world).await,
            expected,
            "cut at request {cut} of {} ({}): findings differ from the run without an outage",
            log.len(),
            log[cut]
        );
    }
}

/// A Sigma rule with its own title, on StopLogging.
fn custom_rule(title: &str, id: &str) -> String {
    format!(
        "title: {title}\nid: {id}\nstatus: experimental\nlogsource: {{product: aws, service: cloudtrail}}\ndetection:\n  selection:\n    eventSource: cloudtrail.amazonaws.com\n    eventName: StopLogging\n  condition: selection\nlevel: critical\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn extra_rules_load_from_an_s3_prefix_an_ssm_parameter_or_an_ssm_path() {
    let Some(_) = endpoint() else { return };
    let world = World::new().await;
    world.put(KEY, log_object()).await;
    let ssm = aws_sdk_ssm::Client::new(&world.sdk);
    let root = format!("/{}", unique("tw"));
    let put = |name: String, value: String| {
        let ssm = ssm.clone();
        async move {
            ssm.put_parameter()
                .name(name)
                .value(value)
                .r#type(aws_sdk_ssm::types::ParameterType::String)
                .send()
                .await
                .unwrap();
        }
    };
    put(
        format!("{root}/rules/one"),
        custom_rule("Custom One", "6c1f3a52-0000-4000-8000-000000000001"),
    )
    .await;
    // Two documents in one parameter, one level down.
    put(
        format!("{root}/rules/team/two"),
        format!(
            "{}---\n{}",
            custom_rule("Custom Two", "6c1f3a52-0000-4000-8000-000000000002"),
            custom_rule("Custom Three", "6c1f3a52-0000-4000-8000-000000000003")
        ),
    )
    .await;
    put(format!("{root}/rules/broken"), "title: [unclosed".into()).await;
    put(
        format!("{root}/single"),
        custom_rule("Custom Single", "6c1f3a52-0000-4000-8000-000000000004"),
    )
    .await;

    let titles = |service: &Service| -> Vec<String> {
        service
            .engine
            .rules()
            .iter()
            .filter(|r| r.meta.title.starts_with("Custom "))
            .map(|r| r.meta.title.clone())
            .collect()
    };
    // A path: every parameter under it; the broken one is a rule problem,
    // the others load.
    let mut config = world.config();
    config.extra_rules = Some(trailwarden_aws::Location::Ssm(format!("{root}/rules/*")));
    let service = Service::start(config, &world.sdk).await.unwrap();
    let mut loaded = titles(&service);
    loaded.sort();
    assert_eq!(loaded, ["Custom One", "Custom Three", "Custom Two"]);
    let response = trailwarden_ingest::handle(
        &service,
        sqs_event(&[("m", s3_notification(&world.bucket, KEY, "e").to_string())]),
    )
    .await;
    assert!(response.batch_item_failures.is_empty());
    let custom = world
        .findings()
        .await
        .iter()
        .filter(|i| {
            i["body"]
                .as_s()
                .unwrap()
                .contains("\"rule_title\":\"Custom ")
        })
        .count();
    assert_eq!(custom, 3, "each custom rule finds the StopLogging event");

    // An S3 prefix: every .yml/.yaml under it, nothing else.
    world
        .put(
            "rules/custom/s3.yml",
            custom_rule("Custom S3", "6c1f3a52-0000-4000-8000-000000000005").into_bytes(),
        )
        .await;
    world
        .put("rules/README.txt", b"title: not a rule".to_vec())
        .await;
    world.put("other/x.yml", b"title: elsewhere".to_vec()).await;
    let mut config = world.config();
    config.extra_rules = Some(trailwarden_aws::Location::S3 {
        bucket: world.bucket.clone(),
        key: "rules/".into(),
    });
    let service = Service::start(config, &world.sdk).await.unwrap();
    assert_eq!(titles(&service), ["Custom S3"]);

    // One parameter.
    let mut config = world.config();
    config.extra_rules = Some(trailwarden_aws::Location::Ssm(format!("{root}/single")));
    let service = Service::start(config, &world.sdk).await.unwrap();
    assert_eq!(titles(&service), ["Custom Single"]);

    // A parameter that is not there stops the cold start, naming it.
    let mut config = world.config();
    config.extra_rules = Some(trailwarden_aws::Location::Ssm(format!("{root}/missing")));
    let Err(e) = Service::start(config, &world.sdk).await else {
        panic!("a missing rules parameter must fail the cold start")
    };
    assert!(e.0.contains(&format!("{root}/missing")), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_correlation_spans_objects_delivered_separately_and_out_of_order() {
    let Some(_) = endpoint() else { return };
    let simulated = simulated_llmjacking(100);
    let records = records_of(&simulated);
    let title =
        "LLMjacking - Bedrock Reconnaissance Then Model Invocation with a Long-Term Access Key";
    let half = records.len() / 2;
    let parts = [&records[..half], &records[half..]];
    let mut ids = Vec::new();
    for order in [[0, 1], [1, 0]] {
        let world = World::new().await;
        let service = world.service().await;
        for (n, i) in order.into_iter().enumerate() {
            let key = KEY.replace("test file", &format!("part{i}"));
            world
                .put(
                    &key,
                    gzip(json!({ "Records": parts[i] }).to_string().as_bytes()),
                )
                .await;
            // One invocation per object, as separate queue messages arrive.
            let response = trailwarden_ingest::handle(
                &service,
                sqs_event(&[(
                    &format!("m{n}"),
                    s3_notification(&world.bucket, &key, "e").to_string(),
                )]),
            )
            .await;
            assert!(response.batch_item_failures.is_empty());
        }
        let found: Vec<String> = world
            .findings()
            .await
            .iter()
            .filter(|i| {
                i["body"]
                    .as_s()
                    .unwrap()
                    .contains(&format!("\"rule_title\":\"{title}\""))
            })
            .map(|i| i["id"].as_s().unwrap().clone())
            .collect();
        assert_eq!(found.len(), 1, "order {order:?}: {found:?}");
        ids.push(found[0].clone());
    }
    assert_eq!(ids[0], ids[1], "the same window, whatever the order");
}

/// The state table as (pk, sk) → (version, approximate item size in bytes:
/// attribute names plus values, as DynamoDB counts them).
async fn state_items(world: &World) -> HashMap<(String, String), (i64, usize)> {
    let mut out = HashMap::new();
    let mut start = None;
    loop {
        let page = world
            .ddb
            .scan()
            .table_name(&world.state_table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        for item in page.items.unwrap_or_default() {
            let size: usize = item
                .iter()
                .map(|(k, v)| {
                    k.len()
                        + match v {
                            AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
                            _ => 8,
                        }
                })
                .sum();
            let pk = item["pk"].as_s().unwrap().clone();
            let sk = item["sk"].as_s().unwrap().clone();
            let version = item
                .get("version")
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            out.insert((pk, sk), (version, size));
        }
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return out,
        }
    }
}

/// A benign busy key (a role session calling KMS `Decrypt` twice a second
/// from one address with one long SDK user agent), delivered as twelve
/// 5-minute objects, then an object of `InvokeModel` calls with an
/// 1,100-character model id: every object is done, no state item passes
/// the budget, and the writes per object stay small. Prints the largest
/// item and the write units per object.
#[tokio::test(flavor = "multi_thread")]
async fn a_busy_key_and_a_huge_model_id_keep_every_object_flowing() {
    let Some(_) = endpoint() else { return };
    let world = World::new().await;
    let service = world.service().await;
    let ua = format!(
        "aws-sdk-java/2.25.11 Linux/6.1 OpenJDK_64-Bit_Server_VM/21 Java/21 vendor/Amazon.com_Inc. exec-env/AWS_ECS_FARGATE {}",
        "md/internal ".repeat(60)
    );
    let start = chrono::DateTime::parse_from_rfc3339("2026-11-02T08:00:00Z")
        .unwrap()
        .timestamp_millis();
    let record = |ms: i64, name: &str, source: &str, params: Value, n: usize| {
        json!({
            "eventVersion": "1.09",
            "eventTime": chrono::DateTime::from_timestamp_millis(ms).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "eventSource": source, "eventName": name, "awsRegion": "us-east-1",
            "sourceIPAddress": "10.20.30.40", "userAgent": ua,
            "eventID": format!("00000000-0000-4000-8000-{n:012}"),
            "recipientAccountId": "111122223333",
            "userIdentity": {"type": "AssumedRole", "principalId": "AROAEXAMPLE:task",
                "arn": "arn:aws:sts::111122223333:assumed-role/app-task/task",
                "accountId": "111122223333", "accessKeyId": "ASIABUSYKEY000000001",
                "sessionContext": {"sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::111122223333:role/app-task"}}},
            "requestParameters": params,
        })
    };
    let mut objects = Vec::new();
    let mut n = 0;
    for object in 0..12i64 {
        let records: Vec<Value> = (0..600)
            .map(|i| {
                n += 1;
                record(
                    start + object * 300_000 + i * 500,
                    "Decrypt",
                    "kms.amazonaws.com",
                    json!({"encryptionAlgorithm": "SYMMETRIC_DEFAULT"}),
                    n,
                )
            })
            .collect();
        objects.push(records);
    }
    let model = format!("anthropic.{}", "x".repeat(1_090));
    objects.push(
        (0..20)
            .map(|i| {
                n += 1;
                record(
                    start + 12 * 300_000 + i * 1_000,
                    "InvokeModel",
                    "bedrock.amazonaws.com",
                    json!({"modelId": model}),
                    n,
                )
            })
            .collect(),
    );
    let mut before = state_items(&world).await;
    let mut largest = 0usize;
    let mut units = Vec::new();
    for (i, records) in objects.iter().enumerate() {
        let key = KEY.replace("test file", &format!("busy{i:02}"));
        world
            .put(
                &key,
                gzip(json!({ "Records": records }).to_string().as_bytes()),
            )
            .await;
        let response = trailwarden_ingest::handle(
            &service,
            sqs_event(&[(
                &format!("m{i}"),
                s3_notification(&world.bucket, &key, &format!("etag{i}")).to_string(),
            )]),
        )
        .await;
        assert!(
            response.batch_item_failures.is_empty(),
            "object {i} failed: {response:?}"
        );
        let ledger = world
            .ddb
            .get_item()
            .table_name(&world.state_table)
            .key("pk", AttributeValue::S(format!("ledger#{}", world.bucket)))
            .key("sk", AttributeValue::S(key.clone()))
            .send()
            .await
            .unwrap();
        assert_eq!(
            ledger.item.and_then(|i| i.get("etag").cloned()),
            Some(AttributeValue::S(format!("etag{i}"))),
            "object {i} not marked done"
        );
        let after = state_items(&world).await;
        let mut wcu = 0;
        for (k, (version, size)) in &after {
            largest = largest.max(*size);
            if before.get(k).map(|(v, _)| v) != Some(version) {
                wcu += size.div_ceil(1024);
            }
            assert!(
                k.0.len() <= 2048 && k.1.len() <= 1024,
                "key too long: {k:?}"
            );
        }
        units.push(wcu);
        before = after;
    }
    eprintln!("largest state item: {largest} bytes; state write units per object: {units:?}");
    assert!(
        largest <= trailwarden_engine::state::ITEM_BUDGET_BYTES + 512,
        "largest state item {largest} bytes"
    );
    assert!(
        units.iter().all(|u| *u <= 40),
        "write units per object: {units:?}"
    );
}

/// One object large enough that ingestion writes its state mid-object
/// (past `FLUSH_AFTER` stateful matches): a key busy from one address,
/// then a second address just before the mid-object write and a third
/// just after it, all within the hour. The state is written in two
/// batches, the credential-sharing correlation fires once across them,
/// and the same message again changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_large_object_writes_its_state_mid_object_and_correlates_across() {
    let Some(_) = endpoint() else { return };
    let world = World::new().await;
    let service = world.service().await;
    let start = chrono::DateTime::parse_from_rfc3339("2026-11-02T08:00:00Z")
        .unwrap()
        .timestamp_millis();
    let n = trailwarden_engine::session::FLUSH_AFTER + 2_000;
    let mut text = String::from("{\"Records\":[");
    for i in 0..n {
        let ip = match i {
            _ if i == n - 3_000 => "198.51.100.7",
            _ if i == n - 1_000 => "203.0.113.9",
            _ => "10.20.30.40",
        };
        let t = chrono::DateTime::from_timestamp_millis(start + i as i64 * 30)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        if i > 0 {
            text.push(',');
        }
        text.push_str(&format!(
            r#"{{"eventVersion":"1.09","eventTime":"{t}","eventSource":"kms.amazonaws.com","eventName":"Decrypt","awsRegion":"us-east-1","sourceIPAddress":"{ip}","userAgent":"aws-sdk-java/2.25.11","eventID":"00000000-0000-4000-8000-{i:012}","recipientAccountId":"111122223333","userIdentity":{{"type":"AssumedRole","principalId":"AROAEXAMPLE:task","arn":"arn:aws:sts::111122223333:assumed-role/app/task","accountId":"111122223333","accessKeyId":"ASIABUSY"}}}}"#
        ));
    }
    text.push_str("]}");
    world.put(KEY, gzip(text.as_bytes())).await;
    let title = "Access Key Used from Several Source IP Addresses Within an Hour";
    let count = |found: &[HashMap<String, AttributeValue>]| {
        found
            .iter()
            .filter(|i| {
                i["body"]
                    .as_s()
                    .unwrap()
                    .contains(&format!("\"rule_title\":\"{title}\""))
            })
            .count()
    };
    let mut first = Vec::new();
    for m in ["m1", "m2"] {
        let response = trailwarden_ingest::handle(
            &service,
            sqs_event(&[(m, s3_notification(&world.bucket, KEY, "e").to_string())]),
        )
        .await;
        assert!(response.batch_item_failures.is_empty(), "{m}");
        assert_eq!(
            count(&world.findings().await),
            1,
            "{m}: once, across the mid-object write"
        );
        // The key's source-IP window: one item, written once per batch
        // (at least twice: mid-object and at the end), not again.
        let versions: Vec<i64> = state_items(&world)
            .await
            .into_iter()
            .filter(|((pk, _), _)| pk.starts_with("c1762c75-f93b-45dc-ac19-f4058a318c57#"))
            .map(|(_, (version, _))| version)
            .collect();
        assert!(versions.len() == 1 && versions[0] >= 2, "{m}: {versions:?}");
        if first.is_empty() {
            first = versions;
        } else {
            assert_eq!(versions, first, "{m}: the same object again writes nothing");
        }
    }
}

/// The process's peak resident memory so far, in KiB (`VmHWM`).
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A measurement, not a check of behaviour (run it alone, so that the
/// process's peak memory is its own):
///
/// ```text
/// cargo test --release --features aws --test aws -- --ignored --exact lambda_path_memory_on_a_250k_record_object --nocapture
/// ```
///
/// The ingest handler reads one 250,000-record object (`trailwarden
/// simulate benign --background 250000`, written by the command so that
/// generating it costs this process nothing) with the built-in pack and the
/// example policy, against the local server. The peak is reset just before
/// the handler runs (`/proc/self/clear_refs`), so it is the Lambda path's:
/// findings stored in batches and state written by size mean it does not
/// grow with the object.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement: run alone with --ignored --exact"]
async fn lambda_path_memory_on_a_250k_record_object() {
    let Some(_) = endpoint() else { return };
    let records = 250_000;
    let dir = std::env::temp_dir().join(unique("lambda-memory"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("benign.json.gz");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_trailwarden"))
        .args([
            "simulate",
            "benign",
            "--background",
            &records.to_string(),
            "-o",
        ])
        .arg(&file)
        .status()
        .unwrap();
    assert!(status.success());
    let world = World::new().await;
    world.put(KEY, std::fs::read(&file).unwrap()).await;
    world
        .put(
            "config/policy.yaml",
            trailwarden::simulate::example_policy_yaml()
                .as_bytes()
                .to_vec(),
        )
        .await;
    std::fs::remove_dir_all(&dir).unwrap();
    let env: HashMap<String, String> = [
        ("TRAILWARDEN_FINDINGS_TABLE", world.findings_table.clone()),
        ("TRAILWARDEN_STATE_TABLE", world.state_table.clone()),
        ("TRAILWARDEN_ALERT_TOPIC_ARN", world.topic_arn.clone()),
        ("TRAILWARDEN_MIN_ALERT_LEVEL", "high".into()),
        (
            "TRAILWARDEN_POLICY",
            format!("s3://{}/config/policy.yaml", world.bucket),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = Config::from_map(&env, Needs::Alerts).unwrap();
    let service = Service::start(config, &world.sdk).await.unwrap();
    let before = peak_rss_kib();
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let reset = peak_rss_kib();
    let started = std::time::Instant::now();
    let response = trailwarden_ingest::handle(
        &service,
        sqs_event(&[("m1", s3_notification(&world.bucket, KEY, "e").to_string())]),
    )
    .await;
    let secs = started.elapsed().as_secs_f64();
    let peak = peak_rss_kib();
    assert!(response.batch_item_failures.is_empty());
    let findings = world.findings().await.len();
    let state_items = state_items(&world).await.len();
    println!(
        "lambda path, {records} records: {:.1} MiB peak (the process before the handler: {:.1} MiB; peak before the reset {:.1} MiB), {secs:.1} s, {findings} findings, {state_items} state items",
        peak as f64 / 1024.0,
        reset as f64 / 1024.0,
        before as f64 / 1024.0,
    );
    assert!(
        findings > 0,
        "the example policy makes findings on benign traffic"
    );
}

/// A finding as the engine makes one, with `rule_id`, `principal` and
/// `user_agent` given.
/// The bucket and key the sample Lambda events under `functions/*/events/`
/// name (a test puts the object in its own bucket under the same key).
const SAMPLE_BUCKET: &str = "trailwarden-demo-trail-111122223333";
const SAMPLE_KEY: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/02/111122223333_CloudTrail_us-east-1_20261102T0805Z_6Nf0lC8dWzG1Jq3x.json.gz";

/// A sample Lambda event (`functions/<path>`), its bucket name replaced by
/// `bucket`.
fn sample_event(path: &str, bucket: &str) -> Value {
    let file = format!("{}/functions/{path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&file).unwrap();
    serde_json::from_str(&text.replace(SAMPLE_BUCKET, bucket)).unwrap()
}

/// The sample events the README's `cargo lambda invoke --data-file` and
/// `sam local invoke -e` lines use drive each handler as documented.
#[tokio::test(flavor = "multi_thread")]
async fn the_sample_lambda_events_drive_each_handler() {
    let Some(_) = endpoint() else { return };
    let world = World::new().await;
    let service = world.service().await;
    world.put(SAMPLE_KEY, log_object()).await;
    // The same object announced three ways: read once, then done.
    let mut stored = 0;
    for (i, name) in [
        "ingest/events/sqs-s3-notification.json",
        "ingest/events/sqs-sns-s3-notification.json",
        "ingest/events/sqs-eventbridge-object-created.json",
    ]
    .into_iter()
    .enumerate()
    {
        let event: aws_lambda_events::sqs::SqsEvent =
            serde_json::from_value(sample_event(name, &world.bucket)).unwrap();
        let response = trailwarden_ingest::handle(&service, event).await;
        assert!(
            response.batch_item_failures.is_empty(),
            "{name}: {response:?}"
        );
        let found = world.findings().await.len();
        if i == 0 {
            assert!(found > 0, "{name}: the object's findings");
            stored = found;
        } else {
            assert_eq!(found, stored, "{name}: the object was already read");
        }
    }
    // The same StopLogging from EventBridge: the same finding.
    trailwarden_realtime::handle(
        &service,
        sample_event(
            "realtime/events/eventbridge-cloudtrail-api-call.json",
            &world.bucket,
        ),
    )
    .await
    .unwrap();
    assert_eq!(world.findings().await.len(), stored);
    // And from the real-time queue (every rule): the same finding again.
    let batch = sample_event(
        "realtime/events/sqs-eventbridge-cloudtrail-api-call.json",
        &world.bucket,
    );
    assert!(trailwarden_realtime::is_sqs_batch(&batch));
    let response =
        trailwarden_realtime::handle_queue(&service, serde_json::from_value(batch).unwrap()).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(world.findings().await.len(), stored);
    // A stream INSERT of a high finding: one email.
    let notifier = trailwarden_alert::notifier(&service, &world.sdk)
        .await
        .unwrap();
    let response = trailwarden_alert::handle(
        &service,
        &notifier,
        sample_event("alert/events/dynamodb-stream-insert.json", &world.bucket),
    )
    .await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(emails(&world).await.len(), 1);
    // The scheduled event's time is the sweep's "as of" (as main.rs reads it).
    let scheduled = sample_event("sweeper/events/scheduled.json", &world.bucket);
    let as_of = scheduled["time"]
        .as_str()
        .and_then(trailwarden_cloudtrail::parse_event_time)
        .unwrap();
    trailwarden_sweeper::handle(&service, as_of).await.unwrap();
}

/// A queue that gets every `trailwarden Finding` event on `bus` (created),
/// through an EventBridge rule: its URL.
async fn finding_events_queue(world: &World, bus: &str) -> String {
    let events = aws_sdk_eventbridge::Client::new(&world.sdk);
    events.create_event_bus().name(bus).send().await.unwrap();
    let queue = world
        .sqs
        .create_queue()
        .queue_name(unique("finding-events"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let queue_arn = world
        .sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    let rule = unique("findings");
    events
        .put_rule()
        .name(&rule)
        .event_bus_name(bus)
        .event_pattern(r#"{"source": ["trailwarden"], "detail-type": ["trailwarden Finding"]}"#)
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule(&rule)
        .event_bus_name(bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(queue_arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    queue
}

/// The events a queue holds (message bodies as JSON), waiting up to three
/// seconds.
async fn queued_events(world: &World, queue: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for _ in 0..3 {
        let got = world
            .sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for m in got.messages.unwrap_or_default() {
            out.push(serde_json::from_str(m.body().unwrap()).unwrap());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn every_new_finding_is_one_eventbridge_event_whatever_its_level() {
    let Some(_) = endpoint() else { return };
    let world = World::new().await;
    let bus = unique("security");
    let queue = finding_events_queue(&world, &bus).await;
    let mut config = world.config();
    config.event_bus = Some(bus.clone());
    let service = Service::start(config, &world.sdk).await.unwrap();
    let high = finding_with(
        "tw-event-high",
        "r-event",
        "arn:aws:iam::111122223333:user/a",
        "ua",
    );
    let mut low = finding_with(
        "tw-event-low",
        "r-event",
        "arn:aws:iam::111122223333:user/b",
        "ua",
    );
    low.level = trailwarden_engine::Level::Low;
    let inserts = stored_inserts(&world, &service, &[&high, &low]).await;
    let notifier = trailwarden_alert::notifier(&service, &world.sdk)
        .await
        .unwrap();
    let event = json!({ "Records": inserts });
    // Delivered twice (a retry): still one event per finding.
    for _ in 0..2 {
        let response = trailwarden_alert::handle(&service, &notifier, event.clone()).await;
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
    }
    let mut got = queued_events(&world, &queue).await;
    got.sort_by_key(|e| e["detail"]["id"].as_str().unwrap_or_default().to_owned());
    assert_eq!(got.len(), 2, "{got:?}");
    for (event, finding) in got.iter().zip([&high, &low]) {
        assert_eq!(event["source"], "trailwarden");
        assert_eq!(event["detail-type"], "trailwarden Finding");
        let detail: trailwarden_engine::Finding =
            serde_json::from_value(event["detail"].clone()).unwrap();
        assert_eq!(&detail, finding);
    }
    // The high finding alerted by email too; the low one only as an event.
    assert_eq!(delivered(&service, &high.id).await, ["eventbridge", "sns"]);
    assert_eq!(delivered(&service, &low.id).await, ["eventbridge"]);
    assert_eq!(emails(&world).await.len(), 1);

    // The OCSF form (another deployment's tables, the same bus).
    let format = trailwarden_aws::events::EventFormat::Ocsf;
    alert_one_finding_with_events(&bus, format, "tw-event-ocsf").await;
    let got = queued_events(&world, &queue).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["detail"]["class_uid"], 2004);
    assert_eq!(got[0]["detail"]["finding_info"]["uid"], "tw-event-ocsf");

    // A bus that does not exist: refused for good, logged and counted; the
    // email still goes and the stream is not held.
    let format = trailwarden_aws::events::EventFormat::Finding;
    let (world, service) =
        alert_one_finding_with_events(&unique("no-such-bus"), format, "tw-event-lost").await;
    assert_eq!(delivered(&service, "tw-event-lost").await, ["sns"]);
    assert_eq!(emails(&world).await.len(), 1);
}

/// A fresh deployment whose alert function puts finding events on `bus` in
/// `format`: one high finding `id` stored and its INSERT handled (no
/// record failed). Returns the deployment.
async fn alert_one_finding_with_events(
    bus: &str,
    format: trailwarden_aws::events::EventFormat,
    id: &str,
) -> (World, Service) {
    let world = World::new().await;
    let mut config = world.config();
    config.event_bus = Some(bus.to_owned());
    config.event_format = format;
    let service = Service::start(config, &world.sdk).await.unwrap();
    let finding = finding_with(id, "r-event", "arn:aws:iam::111122223333:user/c", "ua");
    let inserts = stored_inserts(&world, &service, &[&finding]).await;
    let notifier = trailwarden_alert::notifier(&service, &world.sdk)
        .await
        .unwrap();
    let response =
        trailwarden_alert::handle(&service, &notifier, json!({ "Records": inserts })).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    (world, service)
}

fn finding_with(
    id: &str,
    rule_id: &str,
    principal: &str,
    user_agent: &str,
) -> trailwarden_engine::Finding {
    serde_json::from_value(json!({
        "id": id, "rule_id": rule_id, "rule_title": "t", "level": "high", "tags": [],
        "description": "", "event_time": "2026-11-02T08:00:00Z", "account": "111122223333",
        "region": "us-east-1", "principal": principal, "principal_type": "AssumedRole",
        "access_key_id": null, "source_ip": null, "user_agent": user_agent,
        "event_source": "bedrock.amazonaws.com", "event_name": "InvokeModel", "error_code": null,
        "event_ids": ["e"], "count": 1
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn findings_with_empty_or_huge_values_are_stored_and_cut_to_fit() {
    let Some(_) = endpoint() else { return };
    let world = World::new().await;
    let service = world.service().await;
    let long_principal = format!(
        "arn:aws:sts::111122223333:assumed-role/r/{}",
        "p".repeat(3000)
    );
    let huge_agent = "A".repeat(500 * 1024);
    let mut no_time = finding_with("tw-5", "rule-a", "arn:aws:iam::111122223333:user/d", "ua");
    no_time.event_time = String::new();
    let findings = vec![
        finding_with("tw-1", "rule-a", "arn:aws:iam::111122223333:user/a", "ua"),
        // Index keys DynamoDB cannot take as they are (empty values: a rule
        // file's `id: ""`, a record without `eventTime`) are left out.
        finding_with("tw-2", "", "arn:aws:iam::111122223333:user/b", "ua"),
        no_time,
        // Attacker-sized text: an item over 400 KB, an index key over 2 KB.
        finding_with("tw-3", "rule-a", &long_principal, &huge_agent),
        finding_with("tw-4", "rule-b", "arn:aws:iam::111122223333:user/c", "ua"),
        // Refused whole (its id, the table's key, is over 2,048 bytes):
        // given up alone, logged and counted; the others are stored.
        finding_with(
            &"x".repeat(3000),
            "rule-b",
            "arn:aws:iam::111122223333:user/e",
            "ua",
        ),
    ];
    let mut counts = trailwarden_aws::Counts::default();
    service
        .store_findings(findings, "s3://b/k#1", &mut counts)
        .await
        .unwrap();
    assert_eq!((counts.findings_new, counts.findings_refused), (5, 1));
    let items = world.findings().await;
    let mut ids: Vec<&str> = items
        .iter()
        .map(|i| i["id"].as_s().unwrap().as_str())
        .collect();
    ids.sort();
    assert_eq!(ids, ["tw-1", "tw-2", "tw-3", "tw-4", "tw-5"]);
    let item = |id: &str| {
        items
            .iter()
            .find(|i| i["id"].as_s().unwrap() == id)
            .unwrap()
    };
    assert!(!item("tw-2").contains_key("rule_id"));
    assert!(!item("tw-5").contains_key("event_time") && !item("tw-5").contains_key("day"));
    let huge = items
        .iter()
        .find(|i| i["id"].as_s().unwrap() == "tw-3")
        .unwrap();
    let body = huge["body"].as_s().unwrap();
    assert!(
        body.len() <= trailwarden_aws::dynamo::MAX_BODY_BYTES,
        "{}",
        body.len()
    );
    let stored: trailwarden_engine::Finding = serde_json::from_str(body).unwrap();
    assert!(stored.user_agent.unwrap().ends_with("…[cut]"));
    assert_eq!(
        huge["principal"].as_s().unwrap().len(),
        trailwarden_aws::dynamo::MAX_INDEX_KEY_BYTES
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_finding_refused_with_its_index_keys_is_stored_bare_and_still_counted_once() {
    let Some(_) = endpoint() else { return };
    let world = World::new().await;
    // A table with an index sorted by principal: an index sort key holds
    // at most 1,024 bytes, so a 1,500-byte principal (within the 2,048 the
    // deployment's tables take) is a value DynamoDB refuses here, as it
    // would one over a limit the code did not foresee.
    let table = unique("strict");
    world
        .ddb
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("id", KeyType::Hash))
        .attribute_definitions(attr("id"))
        .attribute_definitions(attr("level"))
        .attribute_definitions(attr("principal"))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("by_level")
                .key_schema(key("level", KeyType::Hash))
                .key_schema(key("principal", KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let store = trailwarden_aws::DynamoStore::new(world.ddb.clone(), &world.state_table, &table);
    let principal = format!("arn:aws:iam::111122223333:user/{}", "a".repeat(1500));
    let f = finding_with("tw-9", "rule-a", &principal, "ua");
    let first = store.put_finding(&f, "s3://b/k#1").await.unwrap();
    assert!(
        matches!(&first, trailwarden_aws::FindingPut::Bare(reason) if reason.contains("ValidationException")),
        "{first:?}"
    );
    assert_eq!(
        store.put_finding(&f, "s3://b/k#2").await.unwrap(),
        trailwarden_aws::FindingPut::Repeat
    );
    let item = world
        .ddb
        .get_item()
        .table_name(&table)
        .key("id", AttributeValue::S("tw-9".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert!(!item.contains_key("principal") && !item.contains_key("level"));
    assert_eq!(item["times_seen"].as_n().unwrap(), "2");
    let body: trailwarden_engine::Finding =
        serde_json::from_str(item["body"].as_s().unwrap()).unwrap();
    assert_eq!(body, f, "the body, which alerts read, is whole");
}

/// A finding stored by a version that named its counter `count` keeps
/// counting: a repeat adds to `times_seen`, and readers add the two.
#[tokio::test(flavor = "multi_thread")]
async fn a_finding_stored_when_the_counter_was_count_keeps_counting() {
    let Some(_) = endpoint() else { return };
    let world = World::new().await;
    let store = trailwarden_aws::DynamoStore::new(
        world.ddb.clone(),
        &world.state_table,
        &world.findings_table,
    );
    let f = finding_with(
        "tw-legacy",
        "rule-a",
        "arn:aws:iam::111122223333:user/a",
        "ua",
    );
    store.put_finding(&f, "s3://b/k#1").await.unwrap();
    // As the earlier version left it: made three times, counted in `count`.
    world
        .ddb
        .update_item()
        .table_name(&world.findings_table)
        .key("id", AttributeValue::S("tw-legacy".into()))
        .update_expression("REMOVE times_seen SET #c = :three")
        .expression_attribute_names("#c", "count")
        .expression_attribute_values(":three", AttributeValue::N("3".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        store.put_finding(&f, "s3://b/k#2").await.unwrap(),
        trailwarden_aws::FindingPut::Repeat
    );
    let row = trailwarden::cloud::get(&world.ddb, &world.findings_table, "tw-legacy")
        .await
        .unwrap()
        .expect("the finding");
    assert_eq!(row.times_seen, 4);
    // A finding stored now is counted in `times_seen` alone.
    let g = finding_with("tw-new", "rule-a", "arn:aws:iam::111122223333:user/a", "ua");
    store.put_finding(&g, "s3://b/k#1").await.unwrap();
    store.put_finding(&g, "s3://b/k#2").await.unwrap();
    let row = trailwarden::cloud::get(&world.ddb, &world.findings_table, "tw-new")
        .await
        .unwrap()
        .expect("the finding");
    assert_eq!(row.times_seen, 2);
}

/// The daily digest, as the sweeper's entry point sends it after a sweep:
/// the window's findings (not older ones), the idle principals the sweep
/// just stored, each source's delivery (counted by the ingest function
/// from the object's key, a hostile key as `other`), a source gone silent
/// (also stored as a finding, once however many digests report it), and
/// the dead-letter queue's depth; sent by email (read back from the
/// queue subscribed to the topic) and Slack within their limits.
#[tokio::test(flavor = "multi_thread")]
async fn the_daily_digest_reports_findings_idle_principals_silent_sources_and_dead_letters() {
    let Some(_) = endpoint() else { return };
    let world = World::new().await;
    let dead_letters = world
        .sqs
        .create_queue()
        .queue_name(unique("ingest-dlq"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    for body in ["one", "two"] {
        world
            .sqs
            .send_message()
            .queue_url(&dead_letters)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    let mut config = world.config();
    config.digest_hours = 24;
    config.dead_letter_queues = vec![dead_letters];
    let service = Service::start(config, &world.sdk).await.unwrap();
    // One object read now from 111122223333 in us-east-1.
    ingest_ai_activity(&world, &service).await;
    let now = chrono::Utc::now();
    // A source that delivered three days ago and not since, and a key no
    // trail writes (its account and region are not taken as they are).
    service
        .store
        .record_source_health(
            "AWSLogs/o-abc/444455556666/CloudTrail/eu-west-1/2026/11/28/x.json.gz",
            40,
            0,
            now - chrono::TimeDelta::days(3),
        )
        .await
        .unwrap();
    let hostile = format!(
        "AWSLogs/{}/CloudTrail/<!channel>\u{202e}/2026/12/01/x.json.gz",
        "9".repeat(3000)
    );
    // A region not shaped as AWS's is `other` too.
    assert_eq!(
        trailwarden_aws::dynamo::source_of(
            "AWSLogs/111122223333/CloudTrail/x1/2026/12/01/a.json.gz"
        ),
        "111122223333#other"
    );
    for region in [
        "us-east-1",
        "us-gov-west-1",
        "ap-southeast-2",
        "us-isob-east-1",
    ] {
        let key = format!("AWSLogs/o-1/111122223333/CloudTrail/{region}/2026/12/01/a.json.gz");
        assert_eq!(
            trailwarden_aws::dynamo::source_of(&key),
            format!("111122223333#{region}")
        );
    }
    service
        .store
        .record_source_health(&hostile, 5, 2, now)
        .await
        .unwrap();
    // A finding two hours ago (in the window, which ends an hour before the
    // run), one three days ago and one half an hour ago (not yet: its
    // window is tomorrow's).
    let at =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for (id, time) in [
        ("tw-recent", at(now - chrono::TimeDelta::hours(2))),
        ("tw-older", at(now - chrono::TimeDelta::days(3))),
        ("tw-later", at(now - chrono::TimeDelta::minutes(30))),
    ] {
        let mut f = finding_with(id, "r-digest", "arn:aws:iam::111122223333:role/app", "ua");
        f.event_time = time;
        service.store.put_finding(&f, "test").await.unwrap();
    }
    // carol last used Bedrock in May: idle past 90 days.
    let stale = trailwarden_sweeper::handle(&service, now.timestamp_millis())
        .await
        .unwrap();
    assert!(stale >= 1);
    let (url, webhook) = scripted_webhook(vec!["200 OK", "200 OK"]);
    let sender = trailwarden_aws::audit::DigestSender {
        notifier: email_and_slack(&world, url),
        sqs: world.sqs.clone(),
    };
    let digest = sender.send(&service, now).await.unwrap();
    assert_eq!(digest.total, 1, "only the finding of the window");
    assert_eq!(digest.top[0].id, "tw-recent");
    assert!(digest
        .idle_principals
        .iter()
        .any(|i| i.principal.as_deref() == Some("arn:aws:iam::111122223333:user/carol")));
    let health = digest.health.clone().unwrap();
    assert_eq!(health.dead_letters, Some(2));
    let source = |account: &str, region: &str| {
        health
            .sources
            .iter()
            .find(|s| s.account == account && s.region == region)
            .cloned()
    };
    let ours = source("111122223333", "us-east-1").expect("the object read now");
    assert_eq!(ours.objects, 1);
    assert!(ours.records > 0);
    let other = source("other", "other").expect("the hostile key's source");
    assert_eq!((other.objects, other.records, other.rejected), (1, 5, 2));
    assert_eq!(health.rejected, Some(2));
    assert_eq!(health.silent.len(), 1);
    assert_eq!(
        (
            health.silent[0].account.as_str(),
            health.silent[0].region.as_str()
        ),
        ("444455556666", "eu-west-1")
    );
    // The email: the digest's subject and text.
    let mail = emails(&world).await;
    assert_eq!(mail.len(), 1, "one email");
    let envelope: Value = serde_json::from_str(mail[0].body().unwrap()).unwrap();
    let subject = envelope["Subject"].as_str().unwrap();
    assert!(subject.starts_with("trailwarden digest "), "{subject}");
    assert!(subject.len() <= 100 && subject.is_ascii());
    let body = envelope["Message"].as_str().unwrap();
    assert!(body.contains("Silent: delivered before"), "{body}");
    assert!(body.contains("444455556666 eu-west-1"), "{body}");
    assert!(
        body.contains("2 message(s) in the dead-letter queues"),
        "{body}"
    );
    assert!(body.contains("user/carol"), "{body}");
    assert!(!body.contains("tw-older"), "{body}");
    // The silent source is a finding of its own, once.
    let silent_items = |items: Vec<HashMap<String, AttributeValue>>| {
        items
            .into_iter()
            .filter(|i| {
                i["rule_id"].as_s().unwrap() == trailwarden_aws::audit::SILENT_SOURCE_RULE_ID
            })
            .count()
    };
    assert_eq!(silent_items(world.findings().await), 1);
    sender.send(&service, now).await.unwrap();
    assert_eq!(silent_items(world.findings().await), 1, "the same silence");
    // Slack: within Block Kit's limits, record text escaped.
    let bodies = webhook.join().unwrap();
    assert_eq!(bodies.len(), 2);
    let message: Value = serde_json::from_str(&bodies[0]).unwrap();
    let blocks = message["blocks"].as_array().unwrap();
    assert!(blocks.len() <= 50);
    for b in blocks {
        if let Some(t) = b["text"]["text"].as_str() {
            assert!(t.chars().count() <= 3000, "{t}");
            assert!(!t.contains("<!channel>") && !t.contains('\u{202e}'), "{t}");
        }
    }
    assert!(bodies[0].contains("444455556666"));
    // The command reads the same health with the state table.
    let (status, stdout, stderr) = cli(&[
        "digest",
        "--table",
        &world.findings_table,
        "--state-table",
        &world.state_table,
        "--since",
        "24h",
    ]);
    assert!(status.success(), "{stderr}");
    assert!(
        stdout.contains("111122223333 us-east-1: 1 object(s)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("444455556666 eu-west-1: last object read at"),
        "{stdout}"
    );
    let (status, page, stderr) = cli(&[
        "report",
        "--table",
        &world.findings_table,
        "--state-table",
        &world.state_table,
        "--since",
        "24h",
    ]);
    assert!(status.success(), "{stderr}");
    assert!(
        page.contains("Silent sources") && page.contains("444455556666"),
        "{page}"
    );
    assert!(
        !page.contains("<!channel>"),
        "hostile key text never reaches the page raw"
    );
}

/// The canary end to end: its object written to the canary bucket (with
/// fresh event ids: a second run expects new findings), read by the ingest
/// function as the bucket's notification would have it read, its findings
/// tagged and kept from the alert channels, the run passed and kept for
/// the digest; then a run whose object nobody reads (detection broken)
/// misses, and the digest says so.
#[tokio::test(flavor = "multi_thread")]
async fn the_canary_passes_end_to_end_and_misses_when_detection_is_broken() {
    let Some(_) = endpoint() else { return };
    let world = World::new().await;
    let canary_bucket = unique("canary").to_lowercase();
    world
        .s3
        .create_bucket()
        .bucket(&canary_bucket)
        .send()
        .await
        .unwrap();
    let mut config = world.config();
    config.canary_bucket = Some(canary_bucket.clone());
    config.digest_hours = 24;
    let service = Service::start(config, &world.sdk).await.unwrap();
    let event = sample_event("canary/events/scheduled.json", &world.bucket);
    // The delivery path: wait for the canary's object, then hand its
    // notification to the ingest function.
    let deliver = async {
        for _ in 0..100 {
            let listed = world
                .s3
                .list_objects_v2()
                .bucket(&canary_bucket)
                .prefix("canary/AWSLogs/111122223333/CloudTrail/us-east-1/")
                .send()
                .await
                .unwrap();
            if let Some(object) = listed.contents().first() {
                let key = object.key().unwrap().to_owned();
                let notice = s3_notification(&canary_bucket, &key, object.e_tag().unwrap());
                let response =
                    trailwarden_ingest::handle(&service, sqs_event(&[("m", notice.to_string())]))
                        .await;
                assert!(response.batch_item_failures.is_empty());
                return key;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("no canary object was written");
    };
    let (result, key) = tokio::join!(
        trailwarden_canary::handle(&service, &event, std::time::Duration::from_secs(60)),
        deliver
    );
    let result = result.unwrap();
    assert!(result.passed, "{result:?}");
    assert_eq!(result.key, key);
    assert!(result.expected >= 2, "{result:?}");
    assert_eq!(result.found, result.expected);
    // It wrote no correlation or baseline state and no source's health:
    // the state table holds the ledger and the canary's result alone.
    for item in world.items(&world.state_table).await {
        let pk = item["pk"].as_s().unwrap();
        assert!(
            pk.starts_with("ledger#") || pk.starts_with("canary#"),
            "{pk}"
        );
    }
    // Its findings are the canary's, and reach no one.
    let items = world.findings().await;
    assert!(items.len() >= 2);
    for item in &items {
        let body = item["body"].as_s().unwrap();
        assert!(body.contains(trailwarden_aws::canary::CANARY_TAG), "{body}");
    }
    let notifier = trailwarden_alert::notifier(&service, &world.sdk)
        .await
        .unwrap();
    let inserts: Vec<Value> = stream_records(&world)
        .await
        .into_iter()
        .filter(|r| r["eventName"] == "INSERT")
        .collect();
    assert!(!inserts.is_empty());
    let response =
        trailwarden_alert::handle(&service, &notifier, json!({ "Records": inserts })).await;
    assert!(response.batch_item_failures.is_empty());
    assert!(
        emails(&world).await.is_empty(),
        "canary findings alert no one"
    );
    let digest = trailwarden_aws::audit::build_digest(&service, &world.sqs, chrono::Utc::now(), 24)
        .await
        .unwrap();
    assert_eq!(digest.total, 0, "canary findings are not counted");
    assert_eq!(digest.health.as_ref().unwrap().canary, Some(result.clone()));
    assert!(
        digest.to_text().contains("canary: passed"),
        "{}",
        digest.to_text()
    );
    // Nobody reads the next object: the canary misses, with fresh ids.
    let missed = trailwarden_canary::handle(&service, &event, std::time::Duration::from_secs(1))
        .await
        .unwrap();
    assert!(!missed.passed);
    assert_eq!(
        missed.found, 0,
        "fresh event ids: none of its findings exist"
    );
    assert_ne!(missed.key, result.key);
    let digest = trailwarden_aws::audit::build_digest(&service, &world.sqs, chrono::Utc::now(), 24)
        .await
        .unwrap();
    let text = digest.to_text();
    assert!(text.contains("canary: MISSED"), "{text}");
    // The tag is not a rule's to give: a finding of any other object that
    // carries it loses it, and alerts as any other.
    let mut tagged = finding_with("tw-tagged", "r-tag", "p", "ua");
    tagged.tags = vec![trailwarden_aws::canary::CANARY_TAG.to_owned()];
    let mut counts = trailwarden_aws::Counts::default();
    service
        .store_findings(vec![tagged], "s3://trail/AWSLogs/x.json.gz", &mut counts)
        .await
        .unwrap();
    let stored = world
        .findings()
        .await
        .into_iter()
        .find(|i| i["id"].as_s().unwrap() == "tw-tagged")
        .unwrap();
    assert!(!stored["body"]
        .as_s()
        .unwrap()
        .contains(trailwarden_aws::canary::CANARY_TAG));
    // No canary bucket configured: an error, not a quiet pass.
    let plain = world.service().await;
    assert!(
        trailwarden_canary::handle(&plain, &event, std::time::Duration::from_secs(1))
            .await
            .unwrap_err()
            .contains("TRAILWARDEN_CANARY_BUCKET")
    );
}

/// Security Hub: new findings at or above `TRAILWARDEN_SECURITY_HUB_MIN_LEVEL`
/// are imported by the alert function as ASFF findings of the deployment's
/// account (read back with `GetFindings`), within the API's limits whatever
/// their text; one below the level is not; the import is recorded on the
/// finding, so a redelivered stream record does not import it again.
#[tokio::test(flavor = "multi_thread")]
async fn findings_at_or_above_the_security_hub_level_are_imported_as_asff() {
    let Some(_) = endpoint() else { return };
    let world = World::new().await;
    let mut config = world.config();
    config.security_hub_min_level = Some(trailwarden_engine::Level::High);
    config.account_id = Some("123456789012".into());
    let service = Service::start(config, &world.sdk).await.unwrap();
    let huge = format!("<!channel>\u{202e}{}", "a".repeat(5000));
    let mut high = finding_with("tw-hub-high", "r-hub", &huge, &huge);
    high.rule_title = huge.clone();
    high.description = huge.clone();
    high.tags = vec!["attack.defense-evasion".into()];
    let mut medium = finding_with("tw-hub-medium", "r-hub", "p", "ua");
    medium.level = trailwarden_engine::Level::Medium;
    let inserts = stored_inserts(&world, &service, &[&high, &medium]).await;
    let notifier = trailwarden_alert::notifier(&service, &world.sdk)
        .await
        .unwrap();
    assert!(notifier.security_hub().is_some());
    let event = json!({ "Records": inserts });
    let response = trailwarden_alert::handle(&service, &notifier, event.clone()).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let hub = aws_sdk_securityhub::Client::new(&world.sdk);
    let found = hub.get_findings().send().await.unwrap();
    let ours: Vec<_> = found
        .findings()
        .iter()
        .filter(|f| f.id().is_some_and(|id| id.starts_with("tw-hub-")))
        .collect();
    assert_eq!(ours.len(), 1, "only the high finding");
    let f = ours[0];
    assert_eq!(f.id(), Some("tw-hub-high"));
    assert_eq!(f.aws_account_id(), Some("123456789012"));
    assert_eq!(
        f.product_arn(),
        Some("arn:aws:securityhub:us-east-1:123456789012:product/123456789012/default")
    );
    assert_eq!(f.schema_version(), Some("2018-10-08"));
    assert_eq!(
        f.severity().and_then(|s| s.label()),
        Some(&aws_sdk_securityhub::types::SeverityLabel::High)
    );
    assert!(f.title().unwrap().chars().count() <= 256);
    assert!(f.description().unwrap().chars().count() <= 1024);
    assert!(!f.title().unwrap().contains('\u{202e}'));
    assert_eq!(f.types(), ["TTPs/Defense Evasion"]);
    assert!(f
        .resources()
        .iter()
        .any(|r| r.id() == Some("AWS::::Account:111122223333")));
    assert!(delivered(&service, "tw-hub-high")
        .await
        .contains(&"securityhub".to_string()));
    assert!(!delivered(&service, "tw-hub-medium")
        .await
        .contains(&"securityhub".to_string()));
    // Without the setting: no importer.
    let plain = trailwarden_alert::notifier(&world.service().await, &world.sdk)
        .await
        .unwrap();
    assert!(plain.security_hub().is_none());
}

/// `replay` lists a trail's region folders day by day between `--since`
/// and `--until` (an organisation trail's and an account trail's alike;
/// digest files and other keys left out), says loudly when it runs without
/// the deployment's policy, loads the policy from where the functions read
/// it (`--policy-uri`), and with `--rescan` reads processed objects again
/// without counting their stored findings twice.
#[tokio::test(flavor = "multi_thread")]
async fn replay_lists_by_day_rescans_and_loads_the_deployments_policy() {
    let Some(_) = endpoint() else { return };
    let world = World::new().await;
    let ai = || {
        gzip(
            &std::fs::read(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/data/ai-activity.json"
            ))
            .unwrap(),
        )
    };
    let org_key = "AWSLogs/o-abc123defg/444455556666/CloudTrail/us-west-2/2026/11/03/444455556666_CloudTrail_us-west-2_20261103T0000Z_a.json.gz";
    let later_key = "AWSLogs/111122223333/CloudTrail/eu-west-1/2026/11/05/111122223333_CloudTrail_eu-west-1_20261105T0000Z_b.json.gz";
    world.put(KEY, ai()).await;
    world.put(org_key, log_object()).await;
    world.put(later_key, log_object()).await;
    world
        .put(
            "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/11/02/d.json.gz",
            b"{}".to_vec(),
        )
        .await;
    world.put("other/readme.txt", b"not a log".to_vec()).await;
    world
        .put(
            "config/policy.yaml",
            b"allowed_regions:\n  - eu-west-1\n".to_vec(),
        )
        .await;
    let run = |prefix: &str, extra: &[&str]| {
        let source = format!("s3://{}/{prefix}", world.bucket);
        let mut args = vec![
            "replay",
            source.as_str(),
            "--table",
            world.findings_table.as_str(),
            "--state-table",
            world.state_table.as_str(),
        ];
        args.extend_from_slice(extra);
        let (status, _, stderr) = cli(&args);
        (status, stderr)
    };
    let replay = |extra: &[&str]| {
        let (status, stderr) = run("", extra);
        assert!(status.success(), "{stderr}");
        stderr
    };
    let stderr = replay(&["--since", "2026-11-02", "--until", "2026-11-03"]);
    assert!(stderr.contains("replayed 2 object(s)"), "{stderr}");
    assert!(
        stderr.contains("runs without the deployment's policy"),
        "{stderr}"
    );
    let outside = |items: &[HashMap<String, AttributeValue>]| {
        items
            .iter()
            .filter(|i| {
                i["body"]
                    .as_s()
                    .unwrap()
                    .contains("Outside the Allowed Regions")
            })
            .count()
    };
    assert_eq!(outside(&world.findings().await), 0, "no policy: not run");
    // The rest of the window; the two read already are not read again.
    let stderr = replay(&["--since", "2026-11-01"]);
    assert!(
        stderr.contains("replayed 1 object(s)") && stderr.contains("2 already processed"),
        "{stderr}"
    );
    // A new policy over old logs: --rescan with the deployment's policy.
    let times_seen = |items: &[HashMap<String, AttributeValue>]| {
        items
            .iter()
            .map(|i| {
                (
                    i["id"].as_s().unwrap().clone(),
                    i["times_seen"].as_n().unwrap().clone(),
                )
            })
            .collect::<std::collections::BTreeMap<String, String>>()
    };
    let before = times_seen(&world.findings().await);
    let policy = format!("s3://{}/config/policy.yaml", world.bucket);
    let stderr = replay(&[
        "--since",
        "2026-11-02",
        "--until",
        "2026-11-02",
        "--rescan",
        "--policy-uri",
        &policy,
    ]);
    assert!(stderr.contains("replayed 1 object(s)"), "{stderr}");
    assert!(
        !stderr.contains("runs without the deployment's policy"),
        "{stderr}"
    );
    let after = world.findings().await;
    assert!(
        outside(&after) >= 1,
        "the policy's rule ran on the old object"
    );
    // Findings stored before are not counted again (the same delivery).
    let mut now_seen = times_seen(&after);
    now_seen.retain(|id, _| before.contains_key(id));
    assert_eq!(now_seen, before);
    // History is not delivery: replay counts in no source's health.
    let health = world
        .ddb
        .query()
        .table_name(&world.state_table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S("health#last".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.count(), 0);
    // A region folder named without its slash, a prefix inside one, and a
    // prefix with no region folder under it.
    let region = |prefix: &str, extra: &[&str]| {
        let mut args = vec!["--since", "2026-11-01", "--rescan"];
        args.extend_from_slice(extra);
        run(prefix, &args)
    };
    let (status, stderr) = region("AWSLogs/111122223333/CloudTrail/eu-west-1", &[]);
    assert!(
        status.success() && stderr.contains("replayed 1 object(s)"),
        "{stderr}"
    );
    let (status, stderr) = region(
        "AWSLogs/o-abc123defg/444455556666/CloudTrail/us-west-2/2026/",
        &[],
    );
    assert!(
        status.success() && stderr.contains("replayed 1 object(s)"),
        "{stderr}"
    );
    let (status, stderr) = region("other/", &[]);
    assert!(
        !status.success() && stderr.contains("no CloudTrail region folder"),
        "{stderr}"
    );
    // Rules given here cannot be mixed with the deployment's extra rules.
    let (status, stderr) = region(
        "AWSLogs/",
        &["--rules", "rules", "--extra-rules-uri", "ssm:/x"],
    );
    assert!(!status.success(), "{stderr}");
    // --until without --since, or before it: refused.
    for dates in [
        &["--until", "2026-11-02"][..],
        &["--since", "2026-11-05", "--until", "2026-11-02"][..],
    ] {
        let (status, stderr) = run("", dates);
        assert!(!status.success(), "{stderr}");
        if dates.len() == 4 {
            assert!(stderr.contains("before --since"), "{stderr}");
        }
    }
}

/// The backfill's batch handler (what the state machine's Distributed Map
/// hands the ingest function): each key of the batch read as a
/// notification of it would be, the ledger honoured unless the batch says
/// `rescan`, no source health counted, and a key that cannot be read
/// failing the batch with its name after the others were read. And
/// `replay --distributed` lists the keys, writes the manifest and starts
/// the state machine with the input it reads.
#[tokio::test(flavor = "multi_thread")]
async fn the_backfill_reads_batches_of_keys_and_replay_starts_it_on_a_manifest() {
    let Some(_) = endpoint() else { return };
    let world = World::new().await;
    let service = world.service().await;
    let second = KEY.replace("test file", "second");
    world.put(KEY, log_object()).await;
    world.put(&second, log_object()).await;
    let batch = |keys: &[&str], rescan: bool| {
        json!({
            "Items": keys.iter().map(|k| json!({"Key": k, "ETag": "\"e\""})).collect::<Vec<_>>(),
            "BatchInput": {"bucket": world.bucket, "rescan": rescan},
        })
    };
    let out = trailwarden_ingest::handle_batch(&service, &batch(&[KEY, &second], false))
        .await
        .unwrap();
    assert_eq!(out["objects"], 2, "{out}");
    assert!(out["findings"].as_u64().unwrap() > 0, "{out}");
    let again = trailwarden_ingest::handle_batch(&service, &batch(&[KEY, &second], false))
        .await
        .unwrap();
    assert_eq!(
        (again["objects"].as_u64(), again["skipped"].as_u64()),
        (Some(0), Some(2))
    );
    let rescanned = trailwarden_ingest::handle_batch(&service, &batch(&[KEY], true))
        .await
        .unwrap();
    assert_eq!(rescanned["objects"], 1);
    assert_eq!(
        rescanned["findings"], 0,
        "stored findings are not new again"
    );
    // History is not delivery.
    assert!(world
        .items(&world.state_table)
        .await
        .iter()
        .all(|i| !i["pk"].as_s().unwrap().starts_with("health#")));
    // An item without a key fails the batch, named, after the others were
    // read (here the first, read already: skipped); a batch without its
    // bucket is refused.
    let error = trailwarden_ingest::handle_batch(
        &service,
        &json!({"Items": [{"Key": KEY, "ETag": "x"}, {"ETag": "no key"}],
                "BatchInput": {"bucket": world.bucket}}),
    )
    .await
    .unwrap_err();
    assert!(error.contains("item 1: no Key"), "{error}");
    assert!(
        trailwarden_ingest::handle_batch(&service, &json!({"Items": []}))
            .await
            .unwrap_err()
            .contains("BatchInput.bucket")
    );

    // replay --distributed: the state machine made from the repository's
    // definition, the manifest written, the execution started with it.
    let sfn = aws_sdk_sfn::Client::new(&world.sdk);
    let definition = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/statemachine/backfill.asl.json"
    ))
    .unwrap()
    .replace(
        "${IngestFunctionArn}",
        "arn:aws:lambda:us-east-1:123456789012:function:ingest",
    )
    .replace("${BackfillBucket}", &world.bucket);
    let machine = sfn
        .create_state_machine()
        .name(unique("backfill"))
        .definition(definition)
        .role_arn("arn:aws:iam::123456789012:role/backfill")
        .send()
        .await
        .unwrap()
        .state_machine_arn;
    let source = format!("s3://{}/AWSLogs/", world.bucket);
    let (status, _, stderr) = cli(&[
        "replay",
        &source,
        "--since",
        "2026-11-01",
        "--until",
        "2026-11-30",
        "--rescan",
        "--distributed",
        &machine,
        "--manifest-bucket",
        &world.bucket,
        "--concurrency",
        "4",
        "--no-wait",
        "--table",
        &world.findings_table,
        "--state-table",
        &world.state_table,
    ]);
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("2 object(s) listed"), "{stderr}");
    let executions = sfn
        .list_executions()
        .state_machine_arn(&machine)
        .send()
        .await
        .unwrap();
    let execution = executions.executions()[0].execution_arn().to_owned();
    let described = sfn
        .describe_execution()
        .execution_arn(&execution)
        .send()
        .await
        .unwrap();
    let input: Value = serde_json::from_str(described.input().unwrap()).unwrap();
    assert_eq!(input["bucket"], world.bucket.as_str());
    assert_eq!(input["rescan"], true);
    assert_eq!(input["max_concurrency"], 4);
    let manifest = world
        .s3
        .get_object()
        .bucket(input["manifest_bucket"].as_str().unwrap())
        .key(input["manifest_key"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    let manifest: Vec<Value> = serde_json::from_slice(&manifest).unwrap();
    let keys: Vec<&str> = manifest
        .iter()
        .map(|m| m["Key"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), 2);
    assert!(keys.contains(&KEY) && keys.contains(&second.as_str()));
    assert!(manifest
        .iter()
        .all(|m| !m["ETag"].as_str().unwrap().contains('"')));
    // The manifest is the batch handler's input, as the map hands it over
    // (with the objects' own ETags, which the ledger then records).
    let handed =
        json!({"Items": manifest, "BatchInput": {"bucket": world.bucket, "rescan": false}});
    let out = trailwarden_ingest::handle_batch(&service, &handed)
        .await
        .unwrap();
    assert_eq!(out["objects"], 2, "{out}");
    let out = trailwarden_ingest::handle_batch(&service, &handed)
        .await
        .unwrap();
    assert_eq!(out["skipped"], 2, "both read already: {out}");
}

/// A backfill lists a manifest at a time: the chunks of `ObjectLister`
/// are, in order, exactly what the whole listing is, whatever the chunk
/// size, across region folders and days, with listing pages (1,000 keys
/// at most) cut by chunks and chunks cut by pages.
#[tokio::test]
async fn the_backfill_lists_chunk_by_chunk_what_a_whole_listing_lists() {
    let Some(_) = endpoint() else { return };
    let world = World::new().await;
    let mut keys = Vec::new();
    for (region, day, n) in [
        ("us-east-1", "2026/11/01", 3),
        ("us-east-1", "2026/11/02", 1_205),
        ("us-east-1", "2026/11/04", 2),
        ("eu-west-1", "2026/11/02", 4),
        ("eu-west-1", "2026/11/03", 2),
    ] {
        for i in 0..n {
            let stamp = day.replace('/', "");
            keys.push(format!(
                "AWSLogs/111122223333/CloudTrail/{region}/{day}/111122223333_CloudTrail_{region}_{stamp}T0000Z_{i:05}.json.gz"
            ));
        }
    }
    // A digest file in the window is not a log object.
    keys.push("AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/11/02/d.json.gz".into());
    for batch in keys.chunks(64) {
        let mut puts = tokio::task::JoinSet::new();
        for k in batch {
            let put = world
                .s3
                .put_object()
                .bucket(&world.bucket)
                .key(k)
                .body(b"x".to_vec().into());
            puts.spawn(put.send());
        }
        while let Some(put) = puts.join_next().await {
            put.unwrap().unwrap();
        }
    }
    let (since, until) = (Some("2026-11-02"), Some("2026-11-03"));
    let whole = trailwarden::cloud::list_objects(&world.s3, &world.bucket, "", since, until)
        .await
        .unwrap();
    assert_eq!(whole.len(), 1_205 + 4 + 2);
    for size in [1, 7, 1_000, 1_211, 5_000] {
        let mut lister =
            trailwarden::cloud::ObjectLister::new(&world.s3, &world.bucket, "", since, until)
                .await
                .unwrap();
        let mut chunks = Vec::new();
        loop {
            let chunk = lister.next_chunk(size).await.unwrap();
            if chunk.is_empty() {
                break;
            }
            assert!(chunk.len() <= size);
            chunks.push(chunk);
        }
        let last = chunks.pop().unwrap();
        assert!(
            chunks.iter().all(|c| c.len() == size),
            "only the last chunk is short"
        );
        chunks.push(last);
        let keys: Vec<_> = chunks.concat().into_iter().map(|o| o.key).collect();
        let expected: Vec<_> = whole.iter().map(|o| o.key.clone()).collect();
        assert_eq!(keys, expected, "chunks of {size}");
    }
    // Without --since: everything under the prefix, digest left out.
    let all = trailwarden::cloud::list_objects(&world.s3, &world.bucket, "AWSLogs/", None, None)
        .await
        .unwrap();
    assert_eq!(all.len(), keys.len() - 1);
}
