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
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(format!(
            "DynamoDB UpdateItem on {table}: {}",
            error_chain(&e)
        )),
    }
}

/// Objects under `s3://bucket/prefix` whose CloudTrail key date (or, for
/// other keys, last-modified time) is on or after `since` (YYYY-MM-DD).
pub async fn list_objects(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    since: Option<&str>,
) -> Result<Vec<trailwarden_aws::ObjectNotice>, String> {
    let since = since.map(|s| s.replace('-', "/"));
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| format!("ListObjectsV2 s3://{bucket}/{prefix}: {}", error_chain(&e)))?;
        for object in page.contents() {
            let Some(key) = object.key() else { continue };
            let parsed = trailwarden_cloudtrail::key::parse_key(key);
            if !parsed.kind.has_records() {
                continue;
            }
            if let (Some(since), Some(date)) = (&since, parsed.date) {
                if date < since.as_str() {
                    continue;
                }
            }
            out.push(trailwarden_aws::ObjectNotice {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                version: trailwarden_aws::s3::normalize_etag(object.e_tag().unwrap_or_default())
                    .to_owned(),
            });
        }
        match page.next_continuation_token {
            Some(t) => token = Some(t),
            None => return Ok(out),
        }
    }
}
