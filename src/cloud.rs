//! The command's AWS side: findings in a deployment's DynamoDB table, and
//! replaying history from S3 through the deployment's engine and stores.
//! Credentials and region come from the standard AWS chain.

use aws_sdk_dynamodb::types::AttributeValue;
use trailwarden_aws::dynamo::error_chain;

pub use trailwarden_aws::findings::{query, row, TableFinding, TableQuery, MAX_DAYS};

/// One finding by id.
pub async fn get(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    id: &str,
) -> Result<Option<TableFinding>, String> {
    let out = client
        .get_item()
        .table_name(table)
        .key("id", AttributeValue::S(id.to_owned()))
        .send()
        .await
        .map_err(|e| format!("DynamoDB GetItem on {table}: {}", error_chain(&e)))?;
    Ok(out.item.as_ref().and_then(row))
}

/// Set a finding's status and note (only if it exists).
pub async fn set_status(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    id: &str,
    status: &str,
    note: Option<&str>,
) -> Result<bool, String> {
    let mut update = client
        .update_item()
        .table_name(table)
        .key("id", AttributeValue::S(id.to_owned()))
        .condition_expression("attribute_exists(#id)")
        .expression_attribute_names("#id", "id")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":status", AttributeValue::S(status.to_owned()));
    update = match note {
        Some(n) => update
            .update_expression("SET #status = :status, #note = :note")
            .expression_attribute_names("#note", "note")
            .expression_attribute_values(":note", AttributeValue::S(n.to_owned())),
        None => update.update_expression("SET #status = :status"),
    };
    match update.send().await {
        Ok(_) => Ok(true),
        Err(e) if trailwarden_aws::dynamo::condition_failed(&e) => Ok(false),
        Err(e) => Err(format!(
            "DynamoDB UpdateItem on {table}: {}",
            error_chain(&e)
        )),
    }
}

/// The CloudTrail log objects under `s3://bucket/prefix` (digest and other
/// files left out), each with its ETag (unquoted, as notifications carry
/// it). With `since` (YYYY-MM-DD), only objects whose key's delivery date is
/// from `since` to `until` (today when `None`): the trail's
/// `…/AWSLogs/[o-…/]ACCOUNT/CloudTrail/REGION/` folders are found by
/// listing folder by folder (`Delimiter` `/`; a prefix inside a region
/// folder is cut back to it), then each region folder is listed from the
/// first day (`StartAfter`) until a key passes the last: one request per
/// 1,000 objects of the window and one per folder, never the whole bucket.
/// A prefix with no region folder under it is an error. Without `since`,
/// every object under the prefix is listed.
pub async fn list_objects(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    since: Option<&str>,
    until: Option<&str>,
) -> Result<Vec<trailwarden_aws::ObjectNotice>, String> {
    ObjectLister::new(s3, bucket, prefix, since, until)
        .await?
        .next_chunk(usize::MAX)
        .await
}

/// [`list_objects`] a chunk at a time, so that a year of a large
/// organisation's logs (tens of millions of keys) is never held at once:
/// each [`ObjectLister::next_chunk`] lists on from where the last stopped,
/// by key (`StartAfter`, never a continuation token, which could go stale
/// while an execution runs), and the chunks in turn are exactly what
/// [`list_objects`] returns.
pub struct ObjectLister {
    s3: aws_sdk_s3::Client,
    bucket: String,
    /// The folders still to list, in order, each with the key to list
    /// after; the first is being listed.
    folders: std::collections::VecDeque<(String, Option<String>)>,
    /// The last delivery day (`YYYY/MM/DD`), with `since`; `None`: every
    /// object under the prefix.
    last: Option<String>,
    /// Listed, not yet handed out.
    listed: std::collections::VecDeque<trailwarden_aws::ObjectNotice>,
}

impl ObjectLister {
    /// A lister of what [`list_objects`] lists. Errors as
    /// [`list_objects`]'s: a date that is not one, `until` before `since`,
    /// no region folder under the prefix, a failed listing.
    pub async fn new(
        s3: &aws_sdk_s3::Client,
        bucket: &str,
        prefix: &str,
        since: Option<&str>,
        until: Option<&str>,
    ) -> Result<Self, String> {
        let day = |d: &str| {
            chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|e| format!("{d:?} is not a date (YYYY-MM-DD): {e}"))
        };
        let mut lister = ObjectLister {
            s3: s3.clone(),
            bucket: bucket.to_owned(),
            folders: Default::default(),
            last: None,
            listed: Default::default(),
        };
        let Some(since) = since else {
            lister.folders.push_back((prefix.to_owned(), None));
            return Ok(lister);
        };
        let first = day(since)?;
        let last = match until {
            Some(u) => day(u)?,
            None => chrono::Utc::now().date_naive(),
        };
        if last < first {
            return Err(format!("--until {last} is before --since {first}"));
        }
        let regions = region_folders(s3, bucket, prefix).await?;
        if regions.is_empty() {
            return Err(format!(
                "no CloudTrail region folder (…/AWSLogs/[o-ORG/]ACCOUNT/CloudTrail/REGION/) under s3://{bucket}/{prefix}: name the trail's bucket and prefix"
            ));
        }
        lister.last = Some(last.format("%Y/%m/%d").to_string());
        // Keys of the first day sort after `…/REGION/YYYY/MM/DD`.
        lister.folders = regions
            .into_iter()
            .map(|region| {
                let start = format!("{region}{}", first.format("%Y/%m/%d"));
                (region, Some(start))
            })
            .collect();
        Ok(lister)
    }

    /// The next at most `max` objects (at least one, unless none is left:
    /// an empty chunk ends the listing).
    pub async fn next_chunk(
        &mut self,
        max: usize,
    ) -> Result<Vec<trailwarden_aws::ObjectNotice>, String> {
        while self.listed.len() < max && !self.folders.is_empty() {
            self.list_page().await?;
        }
        let n = self.listed.len().min(max);
        Ok(self.listed.drain(..n).collect())
    }

    /// One `ListObjectsV2` page of the first folder left.
    async fn list_page(&mut self) -> Result<(), String> {
        let Some((folder, after)) = self.folders.front_mut() else {
            return Ok(());
        };
        let bucket = &self.bucket;
        let page = self
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(folder.as_str())
            .set_start_after(after.clone())
            .send()
            .await
            .map_err(|e| format!("ListObjectsV2 s3://{bucket}/{folder}: {}", error_chain(&e)))?;
        let mut past_last = false;
        for object in page.contents() {
            let Some(key) = object.key() else { continue };
            *after = Some(key.to_owned());
            let parsed = trailwarden_cloudtrail::key::parse_key(key);
            match &self.last {
                Some(last) => {
                    if parsed.date.is_some_and(|d| d > last.as_str()) {
                        past_last = true;
                        break;
                    }
                    if !(parsed.kind.has_records() && parsed.date.is_some()) {
                        continue;
                    }
                }
                None if !parsed.kind.has_records() => continue,
                None => {}
            }
            self.listed.push_back(notice(bucket, key, object.e_tag()));
        }
        if past_last || page.is_truncated() != Some(true) {
            self.folders.pop_front();
        }
        Ok(())
    }
}

/// The object `key` of `bucket` as a notification names it (ETag
/// unquoted).
fn notice(bucket: &str, key: &str, etag: Option<&str>) -> trailwarden_aws::ObjectNotice {
    trailwarden_aws::ObjectNotice {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        version: trailwarden_aws::s3::normalize_etag(etag.unwrap_or_default()).to_owned(),
    }
}

/// Most folders [`region_folders`] looks into, so a bucket of something
/// else cannot keep it listing.
const MAX_FOLDERS: usize = 100_000;

/// The `…/AWSLogs/[o-…/]ACCOUNT/CloudTrail/REGION/` folders under `prefix`,
/// found folder by folder: above `AWSLogs/` any folder, below it only the
/// layout CloudTrail writes (an organisation id, an account, `CloudTrail`,
/// a region).
async fn region_folders(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<String>, String> {
    let mut regions = Vec::new();
    let mut todo = vec![prefix.to_owned()];
    let mut seen = 0usize;
    while let Some(folder) = todo.pop() {
        let parts: Vec<&str> = folder.trim_end_matches('/').split('/').collect();
        if let Some(at) = parts.iter().position(|p| *p == "AWSLogs") {
            let below = &parts[at + 1..];
            let org = usize::from(below.first().is_some_and(|p| p.starts_with("o-")));
            if below.len() >= org + 3 && below[org + 1] == "CloudTrail" {
                // A region folder, or a prefix inside one: the folder.
                regions.push(format!("{}/", parts[..at + 1 + org + 3].join("/")));
                continue;
            }
        }
        seen += 1;
        if seen > MAX_FOLDERS {
            return Err(format!(
                "s3://{bucket}/{prefix} has more than {MAX_FOLDERS} folders to look through: name a narrower prefix (…/AWSLogs/[o-ORG/]ACCOUNT/CloudTrail/)"
            ));
        }
        let mut token = None;
        loop {
            let page = s3
                .list_objects_v2()
                .bucket(bucket)
                .prefix(&folder)
                .delimiter("/")
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| {
                    format!("ListObjectsV2 s3://{bucket}/{folder}: {}", error_chain(&e))
                })?;
            for sub in page.common_prefixes() {
                let Some(sub) = sub.prefix() else { continue };
                if layout_allows(sub) {
                    todo.push(sub.to_owned());
                }
            }
            match page.next_continuation_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
    }
    regions.sort();
    regions.dedup();
    Ok(regions)
}

/// Whether `folder` (ending in `/`) can lead to a trail's region folder:
/// anything above `AWSLogs/`; below it an organisation id (`o-…`), a
/// 12-digit account, `CloudTrail`, then the region.
fn layout_allows(folder: &str) -> bool {
    let parts: Vec<&str> = folder.trim_end_matches('/').split('/').collect();
    let Some(at) = parts.iter().position(|p| *p == "AWSLogs") else {
        return true;
    };
    let below = &parts[at + 1..];
    let account = |p: &str| p.len() == 12 && p.bytes().all(|b| b.is_ascii_digit());
    let org = usize::from(below.first().is_some_and(|p| p.starts_with("o-")));
    match below.len().checked_sub(org) {
        None => true,
        Some(0) => true,
        Some(1) => account(below[org]),
        Some(2) => account(below[org]) && below[org + 1] == "CloudTrail",
        Some(3) => account(below[org]) && below[org + 1] == "CloudTrail",
        Some(_) => false,
    }
}
