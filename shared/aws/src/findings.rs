//! Reading a deployment's findings table: findings of a window through the
//! table's indexes (never a scan), as `trailwarden findings --table`,
//! `trailwarden digest --table` and the daily audit function read them.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use trailwarden_engine::{Finding, Level};

use crate::dynamo::error_chain;

/// Which findings to read from the table.
#[derive(Debug, Default, Clone)]
pub struct TableQuery {
    /// Event time at or after (RFC 3339).
    pub since: String,
    /// At or above this level.
    pub min_level: Option<Level>,
    /// Rule id.
    pub rule: Option<String>,
    /// Principal ARN.
    pub principal: Option<String>,
    /// Account id.
    pub account: Option<String>,
}

/// A finding row from the table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableFinding {
    /// The finding.
    #[serde(flatten)]
    pub finding: Finding,
    /// How many times it was produced.
    pub times_seen: u64,
    /// open, acknowledged or resolved.
    pub status: String,
    /// The note given with the status.
    pub status_note: Option<String>,
}

/// The finding an item of the findings table holds, with its count and
/// status (`None`: no readable body).
pub fn row(item: &HashMap<String, AttributeValue>) -> Option<TableFinding> {
    let body = item.get("body")?.as_s().ok()?;
    Some(TableFinding {
        finding: serde_json::from_str(body).ok()?,
        // Items written before the counter was named `times_seen` have
        // `count`, and their later repeats `times_seen` as well: the sum.
        times_seen: ["count", "times_seen"]
            .iter()
            .filter_map(|k| item.get(*k)?.as_n().ok()?.parse::<u64>().ok())
            .sum::<u64>()
            .max(1),
        status: item
            .get("status")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_else(|| "open".into()),
        status_note: item.get("note").and_then(|v| v.as_s().ok()).cloned(),
    })
}

/// What a digest of a findings table lists, as
/// [`digest_window`] reads it.
#[derive(Debug, Default)]
pub struct DigestWindow {
    /// The findings whose event time is in the window, less the sweeper's
    /// own and the canary's.
    pub findings: Vec<TableFinding>,
    /// Those (less the same) dated after the window's end, or with an event
    /// time that is not one: forged or mistimed records, which a report
    /// lists apart.
    pub later: Vec<TableFinding>,
    /// Every idle principal the sweeper stored (each once, at its last
    /// activity's time, so all of them whenever that was).
    pub idle: Vec<TableFinding>,
}

/// The findings of a digest from `since` (RFC 3339) to `until` (event
/// times), and the idle principals: two queries through the table's
/// indexes. The deployment's daily digest and `trailwarden digest --table`
/// both read the table this way.
pub async fn digest_window(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    since: &str,
    until: chrono::DateTime<chrono::Utc>,
) -> Result<DigestWindow, String> {
    use trailwarden_engine::sweep::SWEEP_RULE_ID;
    let until_text = until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let window = |since: &str, rule: Option<&str>| TableQuery {
        since: since.to_owned(),
        rule: rule.map(str::to_owned),
        ..TableQuery::default()
    };
    let (findings, later) = query(client, table, &window(since, None), until)
        .await?
        .into_iter()
        .filter(|r| r.finding.rule_id != SWEEP_RULE_ID && !crate::canary::is_canary(&r.finding))
        .partition(|r| r.finding.event_time <= until_text);
    let idle = query(
        client,
        table,
        &window("0001-01-01T00:00:00Z", Some(SWEEP_RULE_ID)),
        until,
    )
    .await?;
    Ok(DigestWindow {
        findings,
        later,
        idle,
    })
}

/// Longest range (days) read day by day; a longer one reads the level index.
pub const MAX_DAYS: i64 = 31;

/// Query findings through the table's indexes (never a scan): by rule,
/// principal or account when given, else by level, else day by day for up
/// to [`MAX_DAYS`] days back, and by every level for a longer range (all
/// stored findings, by default).
pub async fn query(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    q: &TableQuery,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<TableFinding>, String> {
    // Index key values are stored cut (`index_key_text`): so are the
    // values asked for, on the index and in the filter below.
    let key = |v: &str| crate::dynamo::index_key_text(v).to_owned();
    let mut partitions: Vec<(&str, &str, String)> = Vec::new();
    if let Some(r) = &q.rule {
        partitions.push(("by_rule", "rule_id", key(r)));
    } else if let Some(p) = &q.principal {
        partitions.push(("by_principal", "principal", key(p)));
    } else if let Some(a) = &q.account {
        partitions.push(("by_account", "account", key(a)));
    } else if let Some(l) = q.min_level {
        for level in Level::ALL.into_iter().filter(|x| *x >= l) {
            partitions.push(("by_level", "level", level.as_str().to_owned()));
        }
    } else {
        let since = chrono::DateTime::parse_from_rfc3339(&q.since)
            .map_err(|e| format!("--since {}: {e}", q.since))?
            .with_timezone(&chrono::Utc);
        let first = since.date_naive();
        if (now.date_naive() - first).num_days() >= MAX_DAYS {
            // A long range: one partition per level, whatever its length.
            for level in Level::ALL {
                partitions.push(("by_level", "level", level.as_str().to_owned()));
            }
        } else {
            let mut day = first;
            while day <= now.date_naive() {
                partitions.push(("by_day", "day", day.format("%Y-%m-%d").to_string()));
                day = day.succ_opt().ok_or("date out of range")?;
            }
        }
    }
    let mut out = Vec::new();
    for (index, key, value) in partitions {
        let mut start = None;
        loop {
            let page = client
                .query()
                .table_name(table)
                .index_name(index)
                .key_condition_expression("#k = :v AND #t >= :since")
                .expression_attribute_names("#k", key)
                .expression_attribute_names("#t", "event_time")
                .expression_attribute_values(":v", AttributeValue::S(value.clone()))
                .expression_attribute_values(":since", AttributeValue::S(q.since.clone()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "DynamoDB Query on {table} index {index}: {}",
                        error_chain(&e)
                    )
                })?;
            out.extend(page.items().iter().filter_map(row));
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
    }
    let same = |asked: &Option<String>, value: Option<&str>| {
        asked
            .as_deref()
            .is_none_or(|x| value.is_some_and(|v| key(v) == key(x)))
    };
    out.retain(|r| {
        let f = &r.finding;
        q.min_level.is_none_or(|l| f.level >= l)
            && same(&q.rule, Some(&f.rule_id))
            && same(&q.principal, f.principal.as_deref())
            && same(&q.account, f.account.as_deref())
    });
    out.sort_by(|a, b| b.finding.event_time.cmp(&a.finding.event_time));
    out.dedup_by(|a, b| a.finding.id == b.finding.id);
    Ok(out)
}
