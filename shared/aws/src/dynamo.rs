//! DynamoDB stores: correlation state, the processed-object ledger (both in
//! the state table), and findings.
//!
//! Every expression uses `#name` aliases: DynamoDB rejects reserved words
//! (`count`, `status`, `level`, …) that a local server may accept.
//!
//! State table: `pk` = rule id + `#` + shard, `sk` = `g#` + the group's
//! digest (32 hexadecimal characters: no record value is ever part of a
//! key, so none can pass DynamoDB's key size limits), attributes `version`,
//! `expires_at` (TTL), `body` (our JSON, at most
//! [`ITEM_BUDGET_BYTES`](trailwarden_engine::state::ITEM_BUDGET_BYTES)).
//! The shard is the digest's first hexadecimal digit, so one rule's groups
//! spread over [`STATE_SHARDS`] partition keys instead of one hot partition
//! (one partition serves at most 1,000 write units a second:
//! <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html>);
//! a rule's bookkeeping item is `pk` = rule id + `#meta`, `sk` = `g#`.
//! A rule id longer than [`MAX_RULE_KEY`] bytes is replaced by its digest.
//! Ledger items:
//! `pk` = `ledger#` + bucket, `sk` = key, attributes `etag`, `records`,
//! `done_at`, `expires_at`.
//! Source health items ([`SourceHealth`], [`DynamoStore::source_health`]): `pk` = `health#` + the UTC
//! hour the objects were read (`2026-12-01T07`), and `pk` = `health#last`
//! for the last object of each source; `sk` = account + `#` + region.
//!
//! Findings table: `id`; `rule_id`, `level`, `event_time`, `day`, `account`,
//! `principal` (each also a GSI key: `by_day`, `by_rule`, `by_level`,
//! `by_account`, `by_principal`, sorted by `event_time`), `count`,
//! `first_seen`, `last_seen`, `status`, `sources`, `body` (the finding as
//! JSON, cut to fit by [`fit_body`]; index key values cut to
//! [`MAX_INDEX_KEY_BYTES`], an empty one left out). A finding is put with a condition on its id; a repeat increments
//! `count` and `last_seen` instead of writing a second item. `sources` is the
//! set of deliveries that made it (`s3://bucket/key`, `eventbridge`,
//! `sweep:<day>`): the same delivery again (a retried message) changes
//! nothing, so `count` is the number of distinct deliveries.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use aws_sdk_dynamodb::Client;
use chrono::DurationRound;
use trailwarden_engine::digest::SourceHealth;
use trailwarden_engine::state::{PutOutcome, StateItem, StateKey, StateWrite};
use trailwarden_engine::{Finding, StoreError};

/// State writes in flight at once.
pub const PUT_CONCURRENCY: usize = 16;

/// How many partition keys one rule's groups spread over.
pub const STATE_SHARDS: usize = 16;

/// Longest rule id (bytes) used in a key as it is.
pub const MAX_RULE_KEY: usize = 256;

/// How long a ledger entry is kept (CloudTrail redelivers within days).
const LEDGER_DAYS: i64 = 30;

/// How long an hour's delivery health counters are kept (days).
pub const HEALTH_DAYS: i64 = 35;

/// How long a source's last object time is kept after it (days): a source
/// silent for longer is no longer reported as silent.
pub const SILENT_DAYS: i64 = 90;

/// Whether `r` is shaped as an AWS region name.
fn is_region(r: &str) -> bool {
    let words: Vec<&str> = r.split('-').collect();
    r.len() <= 32
        && words.len() >= 3
        && words[0].len() == 2
        && words[..words.len() - 1]
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        && words[words.len() - 1].len() <= 2
        && !words[words.len() - 1].is_empty()
        && words[words.len() - 1].bytes().all(|b| b.is_ascii_digit())
}

/// A source's health item from its `account#region` sort key.
fn source_health(source: &str) -> SourceHealth {
    let (account, region) = source.split_once('#').unwrap_or((source, "other"));
    SourceHealth {
        account: account.to_owned(),
        region: region.to_owned(),
        ..SourceHealth::default()
    }
}

/// The source (`account#region`) of a CloudTrail object key
/// (`…/AWSLogs/[o-…/]ACCOUNT/CloudTrail/REGION/…`): an account is 12
/// digits, a region is shaped as AWS's are (`us-east-1`, `us-gov-west-1`,
/// `ap-southeast-2`: at most 32 characters, lower-case words joined by
/// hyphens, a two-letter first word, a number last); anything else (keys
/// are chosen by whoever writes to the bucket) is `other`, so no key can
/// make a long or odd health item.
pub fn source_of(key: &str) -> String {
    let parsed = trailwarden_cloudtrail::key::parse_key(key);
    let account = parsed
        .account
        .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or("other");
    let region = parsed.region.filter(|r| is_region(r)).unwrap_or("other");
    format!("{account}#{region}")
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_s<'a>(item: &'a HashMap<String, AttributeValue>, k: &str) -> Option<&'a str> {
    item.get(k).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn get_n(item: &HashMap<String, AttributeValue>, k: &str) -> Option<i64> {
    item.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

/// An SDK error with its sources (the top level alone says "service error").
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// A failed DynamoDB call: the operation, the table and the SDK error with
/// its sources.
fn call_failed(op: &str, table: &str, e: &(dyn std::error::Error + 'static)) -> StoreError {
    StoreError(format!(
        "DynamoDB {op} on table {table}: {}",
        error_chain(e)
    ))
}

/// The DynamoDB-backed stores.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    state_table: String,
    findings_table: String,
}

impl DynamoStore {
    /// Stores over these tables.
    pub fn new(client: Client, state_table: &str, findings_table: &str) -> Self {
        DynamoStore {
            client,
            state_table: state_table.to_owned(),
            findings_table: findings_table.to_owned(),
        }
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The findings table's name.
    pub fn findings_table(&self) -> &str {
        &self.findings_table
    }

    /// The state table's name.
    pub fn state_table(&self) -> &str {
        &self.state_table
    }

    /// The partition key of a rule's shard (`None`: its bookkeeping item).
    fn partition(rule: &str, shard: Option<char>) -> String {
        let rule = if rule.len() > MAX_RULE_KEY {
            std::borrow::Cow::Owned(format!(
                "h:{}",
                trailwarden_engine::state::group_digest(rule)
            ))
        } else {
            std::borrow::Cow::Borrowed(rule)
        };
        match shard {
            Some(c) => format!("{rule}#{c}"),
            None => format!("{rule}#meta"),
        }
    }

    /// The item key of a state key: `(pk, sk)`.
    fn key_parts(k: &StateKey) -> (String, String) {
        (
            Self::partition(&k.rule, k.group.chars().next()),
            format!("g#{}", k.group),
        )
    }

    fn key(k: &StateKey) -> HashMap<String, AttributeValue> {
        let (pk, sk) = Self::key_parts(k);
        HashMap::from([("pk".into(), s(&pk)), ("sk".into(), s(&sk))])
    }

    fn item_from(
        k: StateKey,
        item: &HashMap<String, AttributeValue>,
        table: &str,
    ) -> Result<StateItem, StoreError> {
        let body = get_s(item, "body").unwrap_or("null");
        let body = serde_json::from_str(body)
            .map_err(|e| StoreError(format!("table {table}: unreadable state item {k:?}: {e}")))?;
        Ok(StateItem {
            key: k,
            version: get_n(item, "version").unwrap_or(0) as u64,
            expires_at: get_n(item, "expires_at").unwrap_or(0),
            body,
        })
    }

    /// Read state items, in the order of `keys`. Keys DynamoDB leaves
    /// unprocessed (throttling) are asked for again after
    /// [`unprocessed_backoff`], up to [`BATCH_GET_ROUNDS`] requests in all.
    pub async fn get_many(&self, keys: &[StateKey]) -> Result<Vec<Option<StateItem>>, StoreError> {
        let mut found: HashMap<(String, String), HashMap<String, AttributeValue>> = HashMap::new();
        for chunk in keys.chunks(100) {
            let mut request = KeysAndAttributes::builder().consistent_read(true);
            for k in chunk {
                request = request.keys(Self::key(k));
            }
            let mut pending = Some(HashMap::from([(
                self.state_table.clone(),
                request.build().map_err(|e| StoreError(e.to_string()))?,
            )]));
            let mut rounds = 0;
            while let Some(items) = pending.take().filter(|m| !m.is_empty()) {
                rounds += 1;
                if rounds > BATCH_GET_ROUNDS {
                    return Err(StoreError(format!(
                        "DynamoDB BatchGetItem on table {} kept returning unprocessed keys \
                         (throttled) after {BATCH_GET_ROUNDS} rounds; the batch will be retried",
                        self.state_table
                    )));
                }
                if rounds > 1 {
                    // Unprocessed keys mean the table is throttling: wait
                    // before asking again, as AWS's guide says.
                    tokio::time::sleep(unprocessed_backoff(rounds - 1)).await;
                }
                let out = self
                    .client
                    .batch_get_item()
                    .set_request_items(Some(items))
                    .send()
                    .await
                    .map_err(|e| call_failed("BatchGetItem", &self.state_table, &e))?;
                for item in out
                    .responses
                    .unwrap_or_default()
                    .remove(&self.state_table)
                    .unwrap_or_default()
                {
                    let pk = get_s(&item, "pk").unwrap_or_default().to_owned();
                    let sk = get_s(&item, "sk").unwrap_or_default().to_owned();
                    found.insert((pk, sk), item);
                }
                pending = out.unprocessed_keys;
            }
        }
        keys.iter()
            .map(|k| {
                found
                    .remove(&Self::key_parts(k))
                    .map(|item| Self::item_from(k.clone(), &item, &self.state_table))
                    .transpose()
            })
            .collect()
    }

    /// Conditional writes; per write, what became of it. Up to
    /// [`PUT_CONCURRENCY`] writes are in flight at once (each is one
    /// PutItem: conditional writes cannot be batched). A write DynamoDB
    /// refuses as invalid (`ValidationException`: an item or key over its
    /// limits) is [`PutOutcome::Refused`] for that write alone; any other
    /// failure fails the call.
    pub async fn put_many(&self, writes: &[StateWrite]) -> Result<Vec<PutOutcome>, StoreError> {
        let mut out = vec![PutOutcome::Conflict; writes.len()];
        let mut tasks = tokio::task::JoinSet::new();
        let mut error = None;
        let mut next = 0;
        while next < writes.len() || !tasks.is_empty() {
            while next < writes.len() && tasks.len() < PUT_CONCURRENCY && error.is_none() {
                let put = self.state_put(&writes[next]);
                let i = next;
                tasks.spawn(async move { (i, put.send().await) });
                next += 1;
            }
            let Some(done) = tasks.join_next().await else {
                break;
            };
            let (i, result) = done.map_err(|e| StoreError(format!("a state write task: {e}")))?;
            match result {
                Ok(_) => out[i] = PutOutcome::Stored,
                Err(e) if condition_failed(&e) => {}
                Err(e) if refused_as_invalid(&e) => {
                    out[i] = PutOutcome::Refused(error_chain(&e));
                }
                Err(e) => {
                    error.get_or_insert(call_failed("PutItem", &self.state_table, &e));
                }
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    fn state_put(
        &self,
        w: &StateWrite,
    ) -> aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder {
        let mut item = Self::key(&w.item.key);
        item.insert("version".into(), n(w.item.version as i64));
        item.insert("expires_at".into(), n(w.item.expires_at));
        item.insert(
            "body".into(),
            s(&serde_json::to_string(&w.item.body).expect("state serialises")),
        );
        let put = self
            .client
            .put_item()
            .table_name(&self.state_table)
            .set_item(Some(item));
        // Every name given must be used: DynamoDB rejects unused ones.
        match w.expected {
            None => put
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", "pk"),
            Some(v) => put
                .condition_expression("#version = :expected")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":expected", n(v as i64)),
        }
    }

    /// Every state item of one rule: a query per shard.
    pub async fn scan_rule(&self, rule: &str) -> Result<Vec<StateItem>, StoreError> {
        let mut items = Vec::new();
        for shard in "0123456789abcdef".chars().take(STATE_SHARDS) {
            self.scan_shard(rule, shard, &mut items).await?;
        }
        items.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(items)
    }

    async fn scan_shard(
        &self,
        rule: &str,
        shard: char,
        items: &mut Vec<StateItem>,
    ) -> Result<(), StoreError> {
        let pk = Self::partition(rule, Some(shard));
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.state_table)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :g)")
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_names("#sk", "sk")
                .expression_attribute_values(":pk", s(&pk))
                .expression_attribute_values(":g", s("g#"))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| call_failed("Query", &self.state_table, &e))?;
            for item in out.items.unwrap_or_default() {
                let group = get_s(&item, "sk")
                    .unwrap_or("g#")
                    .trim_start_matches("g#")
                    .to_owned();
                let key = StateKey {
                    rule: rule.to_owned(),
                    group,
                };
                items.push(Self::item_from(key, &item, &self.state_table)?);
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(()),
            }
        }
    }

    fn ledger_key(bucket: &str, key: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".into(), s(&format!("ledger#{bucket}"))),
            ("sk".into(), s(key)),
        ])
    }

    /// Whether this object (at this ETag) was processed to the end.
    pub async fn is_done(&self, bucket: &str, key: &str, etag: &str) -> Result<bool, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.state_table)
            .set_key(Some(Self::ledger_key(bucket, key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| call_failed("GetItem", &self.state_table, &e))?;
        Ok(out
            .item
            .as_ref()
            .and_then(|i| get_s(i, "etag"))
            .is_some_and(|e| crate::s3::normalize_etag(e) == crate::s3::normalize_etag(etag)))
    }

    /// Record that this object was processed.
    pub async fn mark_done(
        &self,
        bucket: &str,
        key: &str,
        etag: &str,
        records: u64,
    ) -> Result<(), StoreError> {
        let now = chrono::Utc::now();
        let mut item = Self::ledger_key(bucket, key);
        item.insert("etag".into(), s(crate::s3::normalize_etag(etag)));
        item.insert("records".into(), n(records as i64));
        item.insert(
            "done_at".into(),
            s(&now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        );
        item.insert(
            "expires_at".into(),
            n(now.timestamp() + LEDGER_DAYS * 86_400),
        );
        self.client
            .put_item()
            .table_name(&self.state_table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| call_failed("PutItem", &self.state_table, &e))?;
        Ok(())
    }

    /// Count one log object read to its end in its source's delivery
    /// health: `records` read and `rejected` refused, now. Two writes: the
    /// hour's counters of the source (`ADD`, so concurrent objects all
    /// count) and the source's last object time. The account and region
    /// come from the object's key ([`source_of`]); anything else in them is
    /// one source, `other`.
    pub async fn record_source_health(
        &self,
        key: &str,
        records: u64,
        rejected: u64,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        let source = source_of(key);
        let at = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let hour = now.format("%Y-%m-%dT%H").to_string();
        let expires = |days: i64| n(now.timestamp() + days * 86_400);
        self.client
            .update_item()
            .table_name(&self.state_table)
            .key("pk", s(&format!("health#{hour}")))
            .key("sk", s(&source))
            .update_expression(
                "ADD #objects :one, #records :records, #rejected :rejected \
                 SET #last = :at, #expires = :expires",
            )
            .expression_attribute_names("#objects", "objects")
            .expression_attribute_names("#records", "records")
            .expression_attribute_names("#rejected", "rejected")
            .expression_attribute_names("#last", "last_object_at")
            .expression_attribute_names("#expires", "expires_at")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":records", n(records as i64))
            .expression_attribute_values(":rejected", n(rejected as i64))
            .expression_attribute_values(":at", s(&at))
            .expression_attribute_values(":expires", expires(HEALTH_DAYS))
            .send()
            .await
            .map_err(|e| call_failed("UpdateItem", &self.state_table, &e))?;
        self.client
            .update_item()
            .table_name(&self.state_table)
            .key("pk", s("health#last"))
            .key("sk", s(&source))
            .update_expression("SET #last = :at, #expires = :expires")
            .expression_attribute_names("#last", "last_object_at")
            .expression_attribute_names("#expires", "expires_at")
            .expression_attribute_values(":at", s(&at))
            .expression_attribute_values(":expires", expires(SILENT_DAYS))
            .send()
            .await
            .map_err(|e| call_failed("UpdateItem", &self.state_table, &e))?;
        Ok(())
    }

    /// The delivery health of every source from `since` to `until` (read
    /// times, RFC 3339): the sum of the hours in between, the hour of
    /// `since` whole (so a window is at most an hour wider than asked, and
    /// starts at most [`HEALTH_DAYS`] back, as long as hours are kept);
    /// and every source whose last object is older than `since` (read in
    /// the last [`SILENT_DAYS`] days): sources that went silent. Both
    /// sorted by source.
    pub async fn source_health(
        &self,
        since: chrono::DateTime<chrono::Utc>,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<(Vec<SourceHealth>, Vec<SourceHealth>), StoreError> {
        let mut by_source: std::collections::BTreeMap<String, SourceHealth> = Default::default();
        // Hours are kept HEALTH_DAYS: an older start reads nothing more.
        let since = since.max(until - chrono::TimeDelta::days(HEALTH_DAYS));
        let mut hour = since
            .duration_trunc(chrono::TimeDelta::hours(1))
            .unwrap_or(since);
        while hour <= until {
            let pk = format!("health#{}", hour.format("%Y-%m-%dT%H"));
            for item in self.query_partition(&pk).await? {
                let source = get_s(&item, "sk").unwrap_or("other").to_owned();
                let count = |k: &str| get_n(&item, k).unwrap_or(0).max(0) as u64;
                let entry = by_source
                    .entry(source.clone())
                    .or_insert_with(|| source_health(&source));
                entry.objects += count("objects");
                entry.records += count("records");
                entry.rejected += count("rejected");
                let at = get_s(&item, "last_object_at").map(str::to_owned);
                entry.last_object_at = entry.last_object_at.clone().max(at);
            }
            hour += chrono::TimeDelta::hours(1);
        }
        let since_text = since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut silent = Vec::new();
        for item in self.query_partition("health#last").await? {
            let source = get_s(&item, "sk").unwrap_or("other");
            let last = get_s(&item, "last_object_at").unwrap_or("");
            if last < since_text.as_str() && !by_source.contains_key(source) {
                let mut h = source_health(source);
                h.last_object_at = Some(last.to_owned());
                silent.push(h);
            }
        }
        silent.sort_by(|a, b| (&a.account, &a.region).cmp(&(&b.account, &b.region)));
        Ok((by_source.into_values().collect(), silent))
    }

    /// Every item of one partition of the state table.
    async fn query_partition(
        &self,
        pk: &str,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.state_table)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_values(":pk", s(pk))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| call_failed("Query", &self.state_table, &e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }

    /// Store a finding made by `source` (the delivery: an object, the
    /// event bus, a sweep). A repeat from another source increments its
    /// count; a repeat from the same source (a retried message) changes
    /// nothing, except that a finding folding repeats made from more events
    /// than the stored one replaces its body (`grow_finding`). Attacker-chosen text cannot make the item too large or an
    /// index key too long: index key values are cut to
    /// [`MAX_INDEX_KEY_BYTES`] ([`index_key_text`]), empty ones left out,
    /// and a body over [`MAX_BODY_BYTES`] has its long texts cut
    /// ([`fit_body`]). A finding DynamoDB still refuses as invalid
    /// (`ValidationException`) is stored again as a bare item (id, body and
    /// bookkeeping, no index key: the alert function still gets it, the
    /// indexes do not) and is [`FindingPut::Bare`]; one refused even so is
    /// [`FindingPut::Refused`]. Either concerns that finding alone; any
    /// other error is an `Err` (the delivery is retried).
    pub async fn put_finding(&self, f: &Finding, source: &str) -> Result<FindingPut, StoreError> {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let body = fit_body(f);
        let bare = HashMap::from([
            ("id".to_owned(), s(&f.id)),
            ("times_seen".to_owned(), n(1)),
            ("first_seen".to_owned(), s(&now)),
            ("last_seen".to_owned(), s(&now)),
            ("status".to_owned(), s("open")),
            (
                "sources".to_owned(),
                AttributeValue::Ss(vec![source.to_owned()]),
            ),
            ("body".to_owned(), s(&body)),
            // The events the body counts (see `grow_finding`).
            (
                "events".to_owned(),
                n(i64::try_from(f.count).unwrap_or(i64::MAX)),
            ),
        ]);
        let mut item = bare.clone();
        item.insert("level".into(), s(f.level.as_str()));
        // Index keys: at most their length, never empty (left out).
        let day = f.event_time.get(..10).unwrap_or_default();
        for (k, v) in [
            ("rule_id", f.rule_id.as_str()),
            // An index sort key holds at most 1,024 bytes; ours are RFC
            // 3339 times.
            (
                "event_time",
                trailwarden_engine::state::truncate_text(&f.event_time, 64),
            ),
            ("day", day),
            ("account", f.account.as_deref().unwrap_or_default()),
            ("principal", f.principal.as_deref().unwrap_or_default()),
        ] {
            if !v.is_empty() {
                item.insert(k.into(), s(index_key_text(v)));
            }
        }
        let mut refusal = None;
        for item in [item, bare] {
            let put = self
                .client
                .put_item()
                .table_name(&self.findings_table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#id)")
                .expression_attribute_names("#id", "id")
                .send()
                .await;
            match put {
                Ok(_) => {
                    return Ok(match refusal {
                        None => FindingPut::New,
                        Some(reason) => FindingPut::Bare(reason),
                    })
                }
                Err(e) if condition_failed(&e) => break,
                Err(e) if refused_as_invalid(&e) => {
                    if let Some(first) = refusal {
                        return Ok(FindingPut::Refused(format!(
                            "{first}; then, as a bare item: {}",
                            error_chain(&e)
                        )));
                    }
                    refusal = Some(error_chain(&e));
                }
                Err(e) => return Err(call_failed("PutItem", &self.findings_table, &e)),
            }
        }
        let update = self
            .client
            .update_item()
            .table_name(&self.findings_table)
            .key("id", s(&f.id))
            // ADD: an item written before the counter was named
            // `times_seen` has `count` instead, and this one starts at 0
            // there; readers add the two (`cloud::row`).
            .update_expression("SET #last_seen = :now ADD #times_seen :one, #sources :source")
            .condition_expression("attribute_exists(#id) AND NOT contains(#sources, :s)")
            .expression_attribute_names("#id", "id")
            .expression_attribute_names("#times_seen", "times_seen")
            .expression_attribute_names("#last_seen", "last_seen")
            .expression_attribute_names("#sources", "sources")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", s(&now))
            .expression_attribute_values(":source", AttributeValue::Ss(vec![source.to_owned()]))
            .expression_attribute_values(":s", s(source))
            .send()
            .await;
        if f.folds_repeats() {
            self.grow_finding(f, &body).await?;
        }
        match update {
            Ok(_) => Ok(FindingPut::Repeat),
            // Already counted for this source.
            Err(e) if condition_failed(&e) => Ok(FindingPut::Repeat),
            Err(e) if refused_as_invalid(&e) => Ok(FindingPut::RepeatNotCounted(error_chain(&e))),
            Err(e) => Err(call_failed("UpdateItem", &self.findings_table, &e)),
        }
    }
}

impl DynamoStore {
    /// A stored finding that folds repeats (it has `last_event_time`),
    /// made again from more of its events: an object read whole after a
    /// read that failed part way (the same source, so not counted again),
    /// or a finding the real-time function stored for the first event of
    /// what the S3 path folds. Its body is replaced when it counts more
    /// events than the stored one (`events`). An item without `events` was
    /// written before findings folded, when a single-event finding's id
    /// made a finding of one event. Never fewer: a delivery that read less
    /// changes nothing.
    async fn grow_finding(&self, f: &Finding, body: &str) -> Result<(), StoreError> {
        let grow = self
            .client
            .update_item()
            .table_name(&self.findings_table)
            .key("id", s(&f.id))
            .update_expression("SET #body = :body, #events = :events")
            .condition_expression(
                "attribute_exists(#id) AND (attribute_not_exists(#events) OR #events < :events)",
            )
            .expression_attribute_names("#id", "id")
            .expression_attribute_names("#body", "body")
            .expression_attribute_names("#events", "events")
            .expression_attribute_values(":body", s(body))
            .expression_attribute_values(":events", n(i64::try_from(f.count).unwrap_or(i64::MAX)))
            .send()
            .await;
        match grow {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Ok(()),
            // The stored finding stays as it was; the rest goes on.
            Err(e) if refused_as_invalid(&e) => {
                tracing::warn!(finding = %f.id, error = %error_chain(&e), "a folded finding's fuller body was refused; the stored one stays");
                Ok(())
            }
            Err(e) => Err(call_failed("UpdateItem", &self.findings_table, &e)),
        }
    }
}

/// A write DynamoDB did not make because its condition did not hold
/// (`ConditionalCheckFailedException`).
pub fn condition_failed<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.as_service_error().and_then(|se| se.code()) == Some("ConditionalCheckFailedException")
}

/// A request DynamoDB refuses as invalid (`ValidationException`: an item or
/// key too large, a value it does not take), which no retry changes.
pub fn refused_as_invalid<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.as_service_error().and_then(|se| se.code()) == Some("ValidationException")
}

/// `BatchGetItem` requests per chunk of keys, the first included, before
/// the read fails (and the batch is retried by its queue).
pub const BATCH_GET_ROUNDS: u32 = 10;

/// The wait before asking again for unprocessed keys, after `retry`
/// (1, 2, …) rounds that left some: exponential backoff with full jitter,
/// a random time up to 25 ms × 2^(retry − 1), capped at 1 s. See
/// <https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html>
/// ("we strongly recommend that you use an exponential backoff algorithm")
/// and <https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/>.
pub fn unprocessed_backoff(retry: u32) -> std::time::Duration {
    let ceiling_ms = (25u64 << retry.saturating_sub(1).min(16)).min(1000);
    std::time::Duration::from_millis(fastrand::u64(0..=ceiling_ms))
}

/// Alert delivery records, on the finding's own item (attribute
/// `delivered`, a string set of channel names): the alert function sends a
/// finding only to the channels not yet recorded, so a retried stream record
/// (one channel failed) sends nothing twice.
impl DynamoStore {
    /// The channels already recorded as delivered for finding `id` (a
    /// strongly consistent read; none when the item is gone).
    ///
    /// # Errors
    /// DynamoDB's error, with the table named.
    pub async fn delivered_channels(
        &self,
        id: &str,
    ) -> Result<std::collections::BTreeSet<String>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.findings_table)
            .key("id", s(id))
            .projection_expression("#d")
            .expression_attribute_names("#d", DELIVERED)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| call_failed("GetItem", &self.findings_table, &e))?;
        Ok(match out.item.as_ref().and_then(|i| i.get(DELIVERED)) {
            Some(AttributeValue::Ss(channels)) => channels.iter().cloned().collect(),
            _ => Default::default(),
        })
    }

    /// Whether finding `id` is in the findings table (a strongly consistent
    /// read of its key alone).
    pub async fn has_finding(&self, id: &str) -> Result<bool, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.findings_table)
            .key("id", s(id))
            .projection_expression("#id")
            .expression_attribute_names("#id", "id")
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| call_failed("GetItem", &self.findings_table, &e))?;
        Ok(out.item.is_some_and(|i| !i.is_empty()))
    }

    /// Record that finding `id` was delivered to `channel` (added to the
    /// item's `delivered` set; nothing when the item is gone, so no item is
    /// made of a delivery record alone).
    ///
    /// # Errors
    /// DynamoDB's error, with the table named.
    pub async fn record_delivery(&self, id: &str, channel: &str) -> Result<(), StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.findings_table)
            .key("id", s(id))
            .update_expression("ADD #d :c")
            .condition_expression("attribute_exists(#id)")
            .expression_attribute_names("#d", DELIVERED)
            .expression_attribute_names("#id", "id")
            .expression_attribute_values(":c", AttributeValue::Ss(vec![channel.to_owned()]))
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Ok(()),
            Err(e) => Err(call_failed("UpdateItem", &self.findings_table, &e)),
        }
    }
}

/// What [`DynamoStore::claim_alert_window`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertWindow {
    /// The finding alerts: it opened the pair's window (or already held
    /// it: a retry). `suppressed` findings of the pair were not alerted in
    /// the window before, which began at `since` (epoch seconds).
    Open {
        /// Findings not alerted in the previous window.
        suppressed: i64,
        /// When the previous window began, if there was one.
        since: Option<i64>,
    },
    /// Another finding of the pair alerted less than the window ago: this
    /// one is counted, not alerted. The window ends at `until` (epoch s).
    Held {
        /// When the window ends.
        until: i64,
    },
}

/// Alert deduplication windows, in the state table: one item per (rule,
/// principal) pair, keyed by a fixed-length digest of the pair
/// (`pk` = `alert#<digest>`, `sk` = `window`), kept one window past its end
/// (`expires_at`) so the next alert can report what was held back.
impl DynamoStore {
    /// Open the alert window of `(rule_id, principal)` for finding
    /// `finding_id` at `now` (epoch seconds) for `window_secs`, or count the
    /// finding against the window another finding holds.
    ///
    /// # Errors
    /// DynamoDB's error, with the table named.
    pub async fn claim_alert_window(
        &self,
        rule_id: &str,
        principal: &str,
        finding_id: &str,
        now: i64,
        window_secs: i64,
    ) -> Result<AlertWindow, StoreError> {
        let pk = format!(
            "alert#{}",
            trailwarden_engine::state::group_digest(&format!("{rule_id}\n{principal}"))
        );
        let key = HashMap::from([("pk".to_owned(), s(&pk)), ("sk".to_owned(), s("window"))]);
        let until = now + window_secs;
        let opened = self
            .client
            .update_item()
            .table_name(&self.state_table)
            .set_key(Some(key.clone()))
            .update_expression(
                "SET #until = :until, #since = :now, #finding = :id, #held = :zero, #exp = :exp",
            )
            .condition_expression("attribute_not_exists(#pk) OR #until <= :now")
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_names("#until", "until")
            .expression_attribute_names("#since", "since")
            .expression_attribute_names("#finding", "finding")
            .expression_attribute_names("#held", "held")
            .expression_attribute_names("#exp", "expires_at")
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":id", s(finding_id))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":exp", n(until + window_secs))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await;
        match opened {
            Ok(out) => {
                let old = out.attributes.unwrap_or_default();
                return Ok(AlertWindow::Open {
                    suppressed: get_n(&old, "held").unwrap_or(0),
                    since: get_n(&old, "since"),
                });
            }
            Err(e) if condition_failed(&e) => {}
            Err(e) => return Err(call_failed("UpdateItem", &self.state_table, &e)),
        }
        // Held: by this finding (a retry: it alerts), or by another (count).
        let counted = self
            .client
            .update_item()
            .table_name(&self.state_table)
            .set_key(Some(key))
            .update_expression("ADD #held :one")
            .condition_expression("attribute_exists(#pk) AND #finding <> :id")
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_names("#held", "held")
            .expression_attribute_names("#finding", "finding")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":id", s(finding_id))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match counted {
            Ok(out) => Ok(AlertWindow::Held {
                until: get_n(&out.attributes.unwrap_or_default(), "until").unwrap_or(until),
            }),
            Err(e) if condition_failed(&e) => Ok(AlertWindow::Open {
                suppressed: 0,
                since: None,
            }),
            Err(e) => Err(call_failed("UpdateItem", &self.state_table, &e)),
        }
    }
}

/// The finding item's attribute that lists the alert channels delivered.
pub const DELIVERED: &str = "delivered";

/// What became of a finding given to [`DynamoStore::put_finding`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FindingPut {
    /// Stored for the first time.
    New,
    /// Stored before: counted (or already counted for this source).
    Repeat,
    /// Stored before; DynamoDB refused to count the repeat (the reason):
    /// the stored finding stands, its `count` and `last_seen` unchanged.
    RepeatNotCounted(String),
    /// DynamoDB refused the item as invalid (the reason), and took it
    /// without index keys: stored and alerted on, not found by the
    /// indexes (`findings --table` with a filter).
    Bare(String),
    /// DynamoDB refused it as invalid, bare too (the reasons); nothing
    /// stored.
    Refused(String),
}

/// Longest value written to an index partition key attribute (`rule_id`,
/// `principal`, `account`), in bytes: a global secondary index's
/// partition key holds at most 2,048 bytes
/// (<https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html>,
/// "Attributes"). The engine keeps principal and account to that length
/// already ([`trailwarden_engine::state::MAX_FINDING_TEXT`]); a longer
/// rule id is cut, and a query cuts its value the same way.
pub const MAX_INDEX_KEY_BYTES: usize = 2048;

/// `value` as an index key attribute holds it: at most
/// [`MAX_INDEX_KEY_BYTES`], cut at a character boundary. Queries on an
/// index use the same cut.
pub fn index_key_text(value: &str) -> &str {
    trailwarden_engine::state::truncate_text(value, MAX_INDEX_KEY_BYTES)
}

/// Largest finding body written, in bytes: an item holds at most 400 KB,
/// attribute names included, and the finding's other attributes are small.
pub const MAX_BODY_BYTES: usize = 300 * 1024;

/// The finding's JSON text, at most [`MAX_BODY_BYTES`]: when longer,
/// each text an event can make long (user agent, note, principal, group
/// keys and values, event ids, error code, tags, description, …) is cut,
/// to 4 KB, then 1 KB, then 256 bytes, each cut ending in `…[cut]`, until
/// the text fits (escapes count: a control character is six bytes of
/// JSON); as a last resort the note, the group and the user agent go.
pub fn fit_body(f: &Finding) -> String {
    let text = serde_json::to_string(f).expect("a finding serialises");
    if text.len() <= MAX_BODY_BYTES {
        return text;
    }
    for limit in [4096, 1024, 256] {
        let text = serde_json::to_string(&cut_texts(f, limit)).expect("a finding serialises");
        if text.len() <= MAX_BODY_BYTES {
            return text;
        }
    }
    let mut f = cut_texts(f, 256);
    f.note = None;
    f.group.clear();
    f.user_agent = None;
    f.event_ids.truncate(1);
    f.tags.clear();
    serde_json::to_string(&f).expect("a finding serialises")
}

/// `f` with every text longer than `limit` bytes cut to it (then
/// `…[cut]`).
fn cut_texts(f: &Finding, limit: usize) -> Finding {
    let cut = |v: &mut String| {
        if v.len() > limit {
            let kept = trailwarden_engine::state::truncate_text(v, limit).len();
            v.truncate(kept);
            v.push_str("…[cut]");
        }
    };
    let mut f = f.clone();
    for v in [
        &mut f.user_agent,
        &mut f.note,
        &mut f.principal,
        &mut f.principal_type,
        &mut f.access_key_id,
        &mut f.source_ip,
        &mut f.error_code,
        &mut f.account,
        &mut f.region,
    ]
    .into_iter()
    .flatten()
    {
        cut(v);
    }
    for v in [
        &mut f.rule_title,
        &mut f.description,
        &mut f.event_source,
        &mut f.event_name,
        &mut f.event_time,
    ] {
        cut(v);
    }
    f.event_ids
        .iter_mut()
        .chain(f.tags.iter_mut())
        .for_each(cut);
    f.group = std::mem::take(&mut f.group)
        .into_iter()
        .map(|(mut k, mut v)| {
            cut(&mut k);
            cut(&mut v);
            (k, v)
        })
        .collect();
    f
}

#[cfg(test)]
mod backoff_tests {
    use super::unprocessed_backoff;

    #[test]
    fn unprocessed_keys_wait_longer_each_round_up_to_a_second() {
        for retry in 1..=12u32 {
            let ceiling = (25u64 << (retry - 1)).min(1000);
            let waits: Vec<u64> = (0..200)
                .map(|_| unprocessed_backoff(retry).as_millis() as u64)
                .collect();
            assert!(waits.iter().all(|w| *w <= ceiling), "{retry}: {waits:?}");
            // Jittered: not always the same wait.
            assert!(waits.iter().any(|w| *w != waits[0]), "{retry}");
        }
    }
}
