//! The audit digest: what a security engineer reads once a day.
//!
//! [`Digest::build`] sums up the findings of a window (by level, rule and
//! account, with the most severe items), the AI principals and models seen
//! for the first time (findings of the first-seen baseline rules), the AI
//! principals idle past the sweeper's threshold, and the pipeline's own
//! health where the store records it (log objects read, records, the last
//! object's time). `trailwarden digest` renders it as text or JSON, and the
//! deployment's daily audit function sends it by email and Slack.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::render::escape;
use crate::rules::BaselineKind;
use crate::{Engine, Finding, Level};
use serde::Serialize;

/// Most items a list of the digest shows (the counts cover every finding).
pub const TOP: usize = 10;

/// One rule's findings in the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleCount {
    /// Rule id.
    pub rule_id: String,
    /// Rule title.
    pub title: String,
    /// The level of its findings (the highest, if levels were overridden).
    pub level: Level,
    /// Findings.
    pub count: u64,
}

/// One finding worth a look, with the command that shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    /// Finding id.
    pub id: String,
    /// Level.
    pub level: Level,
    /// Rule title.
    pub title: String,
    /// Who.
    pub principal: Option<String>,
    /// Where.
    pub account: Option<String>,
    /// When (`eventTime`).
    pub event_time: String,
    /// What the engine adds (the new value, the idle time).
    pub note: Option<String>,
    /// The stored status (`open`, `acknowledged`, `resolved`); `None`: not
    /// stored (idle principals found by this run's sweep).
    pub status: Option<String>,
    /// The command that shows it (`trailwarden findings … show <id>`), when
    /// it is stored.
    pub show: Option<String>,
}

/// A finding with its stored status (`None`: not stored).
pub type Row = (Finding, Option<String>);

impl Item {
    /// The item of a stored finding (`show`: the command that shows one,
    /// without the id).
    pub fn of((f, status): &Row, show: &str) -> Item {
        Item {
            id: f.id.clone(),
            level: f.level,
            title: f.rule_title.clone(),
            principal: f.principal.clone(),
            account: f.account.clone(),
            event_time: f.event_time.clone(),
            note: f.note.clone(),
            status: status.clone(),
            show: status.as_ref().map(|_| format!("{show} {}", f.id)),
        }
    }
}

/// What the store says of the pipeline: the log objects read since the
/// window's start, by the time they were read (not their events' times).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Health {
    /// Log objects read to their end.
    pub objects: u64,
    /// Records in them.
    pub records: u64,
    /// When the last object was done (RFC 3339), if any.
    pub last_object_at: Option<String>,
    /// Records refused (`None`: the store does not count them; the
    /// command reports each when it scans).
    pub rejected: Option<u64>,
    /// What each source (account and region) delivered in the window,
    /// where the store keeps it (the deployment's tables), most objects
    /// first.
    pub sources: Vec<SourceHealth>,
    /// Sources that delivered before the window and not in it: a trail
    /// that stopped, an account that left, logs that no longer arrive.
    pub silent: Vec<SourceHealth>,
    /// Log objects waiting in the dead-letter queues (read five times and
    /// failed each time; `None`: not known here).
    pub dead_letters: Option<u64>,
    /// The last canary run (`None`: no canary here, or none ran yet).
    pub canary: Option<CanaryResult>,
}

/// What the deployment's last canary run found (see the AWS crate's
/// `canary` module): its log object written, and whether the findings the
/// rules expect of it were stored in time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CanaryResult {
    /// When the object was written (RFC 3339).
    pub at: String,
    /// Its key in the canary bucket.
    pub key: String,
    /// Every expected finding was stored in time.
    pub passed: bool,
    /// Findings expected.
    pub expected: u64,
    /// Of them, stored.
    pub found: u64,
    /// Seconds from writing the object to the last expected finding (or
    /// to giving up).
    pub seconds: u64,
}

/// What one source of the trail (an account and region) delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SourceHealth {
    /// The account the logs are for (12 digits), or `other`.
    pub account: String,
    /// The region (`us-east-1`), or `other`.
    pub region: String,
    /// Log objects read to their end.
    pub objects: u64,
    /// Records evaluated.
    pub records: u64,
    /// Records refused (each logged by the ingest function with its reason).
    pub rejected: u64,
    /// When its last object was read (RFC 3339).
    pub last_object_at: Option<String>,
}

/// The digest of one window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Digest {
    /// Start of the window (RFC 3339, event time).
    pub since: String,
    /// End of the window (RFC 3339).
    pub until: String,
    /// Findings in the window.
    pub total: u64,
    /// Findings by level, most severe first.
    pub by_level: Vec<(Level, u64)>,
    /// Findings by rule, most first.
    pub by_rule: Vec<RuleCount>,
    /// Findings by account, most first (`-`: none recorded).
    pub by_account: Vec<(String, u64)>,
    /// The [`TOP`] most severe findings not yet resolved, latest first
    /// within a level.
    pub top: Vec<Item>,
    /// AI principals seen for the first time (first-seen rules whose tuple
    /// is the principal itself), all of them.
    pub new_principals: Vec<Item>,
    /// Models a principal used for the first time (first-seen rules over
    /// `modelId`), all of them.
    pub new_models: Vec<Item>,
    /// AI principals idle past the threshold, with their last activity,
    /// all of them (not acknowledged or resolved).
    pub idle_principals: Vec<Item>,
    /// The idle threshold, in days (`None`: the deployment's own).
    pub idle_days: Option<u32>,
    /// The pipeline's health (`None`: the store does not record it).
    pub health: Option<Health>,
}

/// What a first-seen rule reports.
enum FirstSeen {
    Principal,
    Model,
}

/// The first-seen rules of `engine` by id: over a model id, or over the
/// principal (no tuple fields: the group is the principal).
fn first_seen_rules(engine: &Engine) -> BTreeMap<&str, FirstSeen> {
    engine
        .rules()
        .iter()
        .filter_map(|r| {
            let b = r.baseline.as_ref()?;
            if b.kind != BaselineKind::FirstSeen {
                return None;
            }
            let kind = if b.fields.iter().any(|f| f.ends_with("modelId")) {
                FirstSeen::Model
            } else if b.fields.is_empty() {
                FirstSeen::Principal
            } else {
                return None;
            };
            Some((r.meta.id.as_str(), kind))
        })
        .collect()
}

/// Most first, then by name.
fn ranked<K: Ord + Clone>(counts: BTreeMap<K, u64>) -> Vec<(K, u64)> {
    let mut v: Vec<(K, u64)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

/// Most severe first, then latest.
pub fn severe_first(items: &mut [&Row]) {
    items.sort_by(|(a, _), (b, _)| {
        (b.level, &b.event_time, &b.id).cmp(&(a.level, &a.event_time, &a.id))
    });
}

impl Digest {
    /// The digest of `findings` (those whose event time is in the window
    /// `since..until`, with their stored status), with the first-seen
    /// rules of `engine`, the `idle` principals (from the sweep) and the
    /// store's `health`; `show` is the command that shows a stored finding
    /// given its id (`trailwarden findings --table NAME show`).
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        findings: &[Row],
        engine: &Engine,
        idle: &[Row],
        idle_days: Option<u32>,
        health: Option<Health>,
        since: String,
        until: String,
        show: &str,
    ) -> Digest {
        let mut by_level: BTreeMap<Level, u64> = BTreeMap::new();
        let mut by_rule: BTreeMap<&str, RuleCount> = BTreeMap::new();
        let mut by_account: BTreeMap<String, u64> = BTreeMap::new();
        for (f, _) in findings {
            *by_level.entry(f.level).or_default() += 1;
            let rule = by_rule.entry(&f.rule_id).or_insert_with(|| RuleCount {
                rule_id: f.rule_id.clone(),
                title: f.rule_title.clone(),
                level: f.level,
                count: 0,
            });
            rule.count += 1;
            rule.level = rule.level.max(f.level);
            *by_account
                .entry(f.account.clone().unwrap_or_else(|| "-".into()))
                .or_default() += 1;
        }
        let mut by_rule: Vec<RuleCount> = by_rule.into_values().collect();
        by_rule.sort_by(|a, b| (b.count, b.level, &a.rule_id).cmp(&(a.count, a.level, &b.rule_id)));
        let mut all: Vec<&Row> = findings.iter().collect();
        severe_first(&mut all);
        let first = first_seen_rules(engine);
        let pick = |kind: fn(&FirstSeen) -> bool| -> Vec<Item> {
            all.iter()
                .filter(|(f, _)| first.get(f.rule_id.as_str()).is_some_and(kind))
                .map(|r| Item::of(r, show))
                .collect()
        };
        let new_principals = pick(|k| matches!(k, FirstSeen::Principal));
        let new_models = pick(|k| matches!(k, FirstSeen::Model));
        let open = |(_, status): &&Row| {
            !matches!(status.as_deref(), Some("resolved") | Some("acknowledged"))
        };
        let mut idle: Vec<&Row> = idle.iter().filter(open).collect();
        severe_first(&mut idle);
        Digest {
            since,
            until,
            total: findings.len() as u64,
            by_level: by_level.into_iter().rev().collect(),
            by_rule,
            by_account: ranked(by_account),
            top: all
                .iter()
                .filter(|(_, status)| status.as_deref() != Some("resolved"))
                .take(TOP)
                .map(|r| Item::of(r, show))
                .collect(),
            new_principals,
            new_models,
            idle_principals: idle.iter().map(|r| Item::of(r, show)).collect(),
            idle_days,
            health,
        }
    }

    /// The digest as text for a terminal or an email: every value from a
    /// record escaped ([`escape`]), lists cut to [`TOP`] items.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let e = |s: &str| escape(&cut(s, MAX_FIELD)).into_owned();
        let opt = |s: &Option<String>| s.as_deref().map(e).unwrap_or_else(|| "-".into());
        let _ = writeln!(out, "trailwarden digest, {} to {}", self.since, self.until);
        let _ = writeln!(out);
        let levels: Vec<String> = self
            .by_level
            .iter()
            .map(|(l, n)| format!("{n} {l}"))
            .collect();
        let _ = writeln!(
            out,
            "Findings: {}{}",
            self.total,
            if levels.is_empty() {
                String::new()
            } else {
                format!(" ({})", levels.join(", "))
            }
        );
        if !self.by_rule.is_empty() {
            let _ = writeln!(out, "\nBy rule:");
            for r in self.by_rule.iter().take(TOP) {
                let _ = writeln!(
                    out,
                    "  {:>6}  {:<13} {}",
                    r.count,
                    r.level.as_str(),
                    e(&r.title)
                );
            }
            if self.by_rule.len() > TOP {
                let _ = writeln!(out, "  … {} more rule(s)", self.by_rule.len() - TOP);
            }
            let _ = writeln!(out, "\nBy account:");
            for (account, n) in self.by_account.iter().take(TOP) {
                let _ = writeln!(out, "  {n:>6}  {}", e(account));
            }
            if self.by_account.len() > TOP {
                let _ = writeln!(out, "  … {} more account(s)", self.by_account.len() - TOP);
            }
        }
        let list = |out: &mut String, heading: &str, items: &[Item], empty: &str| {
            let _ = writeln!(out, "\n{heading}:");
            if items.is_empty() {
                let _ = writeln!(out, "  {empty}");
            }
            for i in items.iter().take(TOP) {
                let _ = writeln!(
                    out,
                    "  {} {} {} in {} at {}",
                    i.level.as_str(),
                    e(&i.title),
                    opt(&i.principal),
                    opt(&i.account),
                    e(&i.event_time)
                );
                if let Some(note) = &i.note {
                    let _ = writeln!(out, "      {}", e(note));
                }
                if let Some(status) = i.status.as_deref().filter(|s| *s != "open") {
                    let _ = writeln!(out, "      ({})", e(status));
                }
                if let Some(show) = &i.show {
                    let _ = writeln!(out, "      {}", e(show));
                }
            }
            if items.len() > TOP {
                let _ = writeln!(out, "  … {} more", items.len() - TOP);
            }
        };
        list(&mut out, "Most severe (not resolved)", &self.top, "none");
        list(
            &mut out,
            "AI principals seen for the first time",
            &self.new_principals,
            "none",
        );
        list(
            &mut out,
            "Models used for the first time by a principal",
            &self.new_models,
            "none",
        );
        let idle = match self.idle_days {
            Some(days) => format!("AI principals idle {days} days or more"),
            None => "AI principals idle past the deployment's IdleDays".to_owned(),
        };
        list(
            &mut out,
            &format!("{idle} (review, then remove their access or the principal)"),
            &self.idle_principals,
            "none",
        );
        let _ = writeln!(out, "\nPipeline:");
        match &self.health {
            Some(h) => {
                let _ = writeln!(
                    out,
                    "  {} log object(s), {} record(s) read since {}; the last at {}",
                    h.objects,
                    h.records,
                    self.since,
                    h.last_object_at.as_deref().unwrap_or("-")
                );
                if h.objects == 0 {
                    let _ = writeln!(
                        out,
                        "  no log object read since {}: is anything delivering to this store?",
                        self.since
                    );
                }
                if let Some(n) = h.rejected.filter(|n| *n > 0) {
                    let _ = writeln!(
                        out,
                        "  {n} record(s) refused: each is in the ingest function's log with its object, index and reason"
                    );
                }
                if let Some(c) = &h.canary {
                    // A weekly canary's result is at most a week old.
                    let stale = match (
                        chrono::DateTime::parse_from_rfc3339(&c.at),
                        chrono::DateTime::parse_from_rfc3339(&self.until),
                    ) {
                        (Ok(at), Ok(until)) => until - at > chrono::TimeDelta::days(8),
                        _ => false,
                    };
                    if stale {
                        let _ = writeln!(
                            out,
                            "  canary: no run since {} (is Canary off, or its schedule or function broken?)",
                            e(&c.at)
                        );
                    }
                    let _ = writeln!(
                        out,
                        "  canary: {} at {} ({} of {} expected finding(s) in {} s){}",
                        if c.passed { "passed" } else { "MISSED" },
                        e(&c.at),
                        c.found,
                        c.expected,
                        c.seconds,
                        if c.passed {
                            ""
                        } else {
                            ": detection is broken somewhere between the bucket and the findings table; check the ingest queue, its dead-letter queue and the ingest log"
                        }
                    );
                }
                match h.dead_letters {
                    Some(0) => {
                        let _ = writeln!(out, "  dead-letter queues: empty");
                    }
                    Some(n) => {
                        let _ = writeln!(
                            out,
                            "  {n} message(s) in the dead-letter queues: read their errors in the functions' log groups, then redrive"
                        );
                    }
                    None => {}
                }
                if !h.sources.is_empty() {
                    let _ = writeln!(out, "  By source (account, region), most objects first:");
                    for src in h.sources.iter().take(TOP) {
                        let _ = writeln!(out, "    {}", source_line(src, e));
                    }
                    if h.sources.len() > TOP {
                        let _ = writeln!(out, "    … {} more source(s)", h.sources.len() - TOP);
                    }
                }
                if !h.silent.is_empty() {
                    let _ = writeln!(
                        out,
                        "  Silent: delivered before {} and nothing since (check the trail, the bucket policy, the account):",
                        self.since
                    );
                    for src in h.silent.iter().take(TOP) {
                        let _ = writeln!(
                            out,
                            "    {} {}: last object read at {}",
                            e(&src.account),
                            e(&src.region),
                            e(src.last_object_at.as_deref().unwrap_or("-"))
                        );
                    }
                    if h.silent.len() > TOP {
                        let _ =
                            writeln!(out, "    … {} more silent source(s)", h.silent.len() - TOP);
                    }
                }
            }
            None => {
                let _ = writeln!(
                    out,
                    "  not recorded in a findings table: see the stack's CloudWatch metrics"
                );
            }
        }
        out
    }
}

/// Longest text from a record shown in the digest (characters).
pub const MAX_FIELD: usize = crate::render::MAX_FIELD;

/// `s` cut to `max` characters (with `…` when cut).
fn cut(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match s.char_indices().nth(max) {
        None => std::borrow::Cow::Borrowed(s),
        Some((at, _)) => std::borrow::Cow::Owned(format!("{}…", &s[..at])),
    }
}

/// One source's line: account and region (through `e`), its counts, and
/// when its last object was read.
fn source_line(src: &SourceHealth, e: impl Fn(&str) -> String) -> String {
    let refused = if src.rejected > 0 {
        format!(", {} refused", src.rejected)
    } else {
        String::new()
    };
    format!(
        "{} {}: {} object(s), {} record(s){refused}, last at {}",
        e(&src.account),
        e(&src.region),
        src.objects,
        src.records,
        e(src.last_object_at.as_deref().unwrap_or("-"))
    )
}

/// Longest text of one Slack section block (Slack's limit is 3,000
/// characters: <https://api.slack.com/reference/block-kit/blocks#section>).
const SLACK_SECTION: usize = 2900;

impl Digest {
    /// The email subject: counts by level and the window's end date, in
    /// ASCII without line breaks and under SNS's 100 characters (99 at most)
    /// (<https://docs.aws.amazon.com/sns/latest/api/API_Publish.html>): no
    /// text from a record is part of it.
    pub fn subject(&self) -> String {
        let levels: Vec<String> = self
            .by_level
            .iter()
            .take(3)
            .map(|(l, n)| format!("{n} {l}"))
            .collect();
        let day: String = self
            .until
            .chars()
            .take(10)
            .filter(|c| c.is_ascii_digit() || *c == '-')
            .collect();
        let mut subject = format!("trailwarden digest {day}: {} finding(s)", self.total);
        if !levels.is_empty() {
            subject.push_str(&format!(" ({})", levels.join(", ")));
        }
        subject.truncate(99);
        subject
    }

    /// The digest as a Slack Block Kit message: a header, the counts, the
    /// most severe findings one block each, the first-seen and idle lists,
    /// and the pipeline. Every value from a record is cut and escaped
    /// ([`crate::render::slack_escape`]); at most 25 blocks (Slack allows
    /// 50) of at most [`SLACK_SECTION`] characters.
    pub fn to_slack(&self) -> serde_json::Value {
        use crate::render::slack_escape;
        use serde_json::json;
        let s = |v: &str| slack_escape(v, 120);
        let opt = |v: &Option<String>| v.as_deref().map(s).unwrap_or_else(|| "-".into());
        let section = |text: String| json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&text, SLACK_SECTION)}});
        let levels: Vec<String> = self
            .by_level
            .iter()
            .map(|(l, n)| format!("{n} {l}"))
            .collect();
        let mut blocks = vec![
            json!({"type": "header", "text": {"type": "plain_text", "text": "trailwarden daily digest"}}),
            section(format!(
                "*{} finding(s)*{} from {} to {}",
                self.total,
                if levels.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", levels.join(", "))
                },
                s(&self.since),
                s(&self.until)
            )),
        ];
        if !self.by_rule.is_empty() {
            let mut text = String::from("*By rule*");
            for r in self.by_rule.iter().take(TOP) {
                text.push_str(&format!("\n{} · {} · {}", r.count, r.level, s(&r.title)));
            }
            if self.by_rule.len() > TOP {
                text.push_str(&format!("\n… {} more rule(s)", self.by_rule.len() - TOP));
            }
            blocks.push(section(text));
        }
        if !self.top.is_empty() {
            blocks.push(json!({"type": "divider"}));
            blocks.push(section("*Most severe (not resolved)*".into()));
        }
        let item_text = |i: &Item| {
            let mut text = format!(
                "*{}* {} · {} in {} at {}",
                i.level,
                s(&i.title),
                opt(&i.principal),
                opt(&i.account),
                s(&i.event_time)
            );
            if let Some(note) = &i.note {
                text.push_str(&format!("\n{}", s(note)));
            }
            if let Some(show) = &i.show {
                text.push_str(&format!("\n`{}`", slack_escape(show, 300).replace('`', "")));
            }
            text
        };
        for i in self.top.iter().take(TOP) {
            blocks.push(section(item_text(i)));
        }
        let list = |heading: &str, items: &[Item]| {
            let mut text = format!("*{heading}*");
            if items.is_empty() {
                text.push_str("\nnone");
            }
            for i in items.iter().take(TOP) {
                text.push_str(&format!(
                    "\n• {} in {} at {}{}",
                    opt(&i.principal),
                    opt(&i.account),
                    s(&i.event_time),
                    i.note
                        .as_deref()
                        .map(|n| format!(": {}", s(n)))
                        .unwrap_or_default()
                ));
            }
            if items.len() > TOP {
                text.push_str(&format!("\n… {} more", items.len() - TOP));
            }
            section(text)
        };
        blocks.push(json!({"type": "divider"}));
        blocks.push(list(
            "AI principals seen for the first time",
            &self.new_principals,
        ));
        blocks.push(list(
            "Models used for the first time by a principal",
            &self.new_models,
        ));
        let idle = match self.idle_days {
            Some(days) => format!("AI principals idle {days} days or more"),
            None => "AI principals idle past the deployment's IdleDays".to_owned(),
        };
        blocks.push(list(
            &format!("{idle}: review, then remove their access or the principal"),
            &self.idle_principals,
        ));
        if let Some(h) = &self.health {
            let mut text = format!(
                "*Pipeline*\n{} log object(s), {} record(s) read; the last at {}",
                h.objects,
                h.records,
                s(h.last_object_at.as_deref().unwrap_or("-"))
            );
            if let Some(n) = h.rejected.filter(|n| *n > 0) {
                text.push_str(&format!("\n{n} record(s) refused (in the ingest log)"));
            }
            if let Some(c) = &h.canary {
                text.push_str(&format!(
                    "\nCanary {} at {} ({} of {} finding(s))",
                    if c.passed { "passed" } else { "*MISSED*" },
                    s(&c.at),
                    c.found,
                    c.expected
                ));
            }
            if let Some(n) = h.dead_letters.filter(|n| *n > 0) {
                text.push_str(&format!(
                    "\n*{n} message(s) in the dead-letter queues*: read their errors, then redrive"
                ));
            }
            for src in h.silent.iter().take(TOP) {
                text.push_str(&format!(
                    "\n*Silent:* {} {} (last object read at {})",
                    s(&src.account),
                    s(&src.region),
                    s(src.last_object_at.as_deref().unwrap_or("-"))
                ));
            }
            if h.silent.len() > TOP {
                text.push_str(&format!(
                    "\n… {} more silent source(s)",
                    h.silent.len() - TOP
                ));
            }
            blocks.push(section(text));
        }
        json!({
            "text": self.subject(),
            "blocks": blocks,
            "unfurl_links": false,
            "unfurl_media": false,
        })
    }
}
