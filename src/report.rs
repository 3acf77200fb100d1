//! The HTML report: one self-contained page a security engineer can open,
//! keep and send on (`trailwarden report -o report.html`).
//!
//! [`render`] turns a [`Digest`] and the window's findings into one HTML
//! document with its style inline and nothing fetched at view time: a
//! timeline of findings by level (inline SVG, a tooltip per bar), the most
//! severe findings, findings by rule and account, AI activity by principal
//! (the services, models and buckets its findings name, first and last
//! seen), the evidence of every correlation and baseline finding (group,
//! note, event ids), principals and models seen for the first time, idle
//! principals and the pipeline's health.
//!
//! Every value from a record is attacker-chosen text. It is cut to
//! [`MAX_TEXT`] characters and HTML-escaped; controls, bidirectional and
//! invisible format characters are shown as highlighted `\u{…}` escapes
//! (a backslash as `\\`, so an escape cannot be faked), and in
//! identifiers (ARNs, accounts, addresses, ids, names), which AWS keeps
//! ASCII, every other character too, so look-alike principals stay apart.
//! Lists in a cell are cut to [`MAX_LIST`] items and tables to
//! [`MAX_ROWS`] rows: the page's size is bounded whatever the findings.
//! The page's Content Security Policy allows no script, no fetch and no
//! frame, so a value that slipped through could still not run or call out.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use trailwarden_engine::{Finding, Level};

use crate::digest::{severe_first, Digest, Item, Row};
use crate::terminal::is_unsafe;

/// Most rows a table of the report lists (its heading gives the total).
pub const MAX_ROWS: usize = 200;

/// Most characters of one value the page shows.
pub const MAX_TEXT: usize = 200;

/// Most values one cell lists (models, buckets, accounts, group values;
/// a finding's event ids are at most `MAX_EVENT_IDS`, all listed).
pub const MAX_LIST: usize = 10;

/// What the page says about itself.
#[derive(Debug, Clone)]
pub struct Meta {
    /// When the page was made (RFC 3339).
    pub generated: String,
    /// Where the findings came from, in words ("the local store PATH").
    pub source: String,
    /// trailwarden's version.
    pub version: String,
    /// No `--since`: the window is every stored finding.
    pub whole_store: bool,
    /// Rules not run because the policy does not give their facts.
    pub not_run: usize,
    /// The policy file the page was made with (`None`: none).
    pub policy: Option<String>,
    /// Findings dated after `generated` (not in the window's counts).
    pub future: Vec<Row>,
    /// The command that shows a stored finding, without its id.
    pub show: String,
}

/// Most bars of the timeline: the bucket grows (an hour, a day, a week…)
/// until the window fits.
pub const MAX_BARS: i64 = 120;

/// The colour of each level, least severe first (also the legend's).
const COLOURS: [&str; 5] = ["#9e9e9e", "#1e88e5", "#f9a825", "#e53935", "#6a1b9a"];

/// Whether a character is shown as an escape wherever it comes from:
/// [`is_unsafe`] (controls, bidirectional controls, separators) and the
/// invisible format and filler characters that make two names look alike
/// (soft hyphen, zero-width characters, joiners, variation selectors,
/// tags, the byte order mark, Hangul fillers).
fn invisible(c: char) -> bool {
    is_unsafe(c)
        || matches!(
            c,
            '\u{00ad}'
                | '\u{034f}'
                | '\u{115f}'
                | '\u{1160}'
                | '\u{17b4}'
                | '\u{17b5}'
                | '\u{180b}'..='\u{180f}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2060}'..='\u{206f}'
                | '\u{3164}'
                | '\u{fe00}'..='\u{fe0f}'
                | '\u{feff}'
                | '\u{ffa0}'
                | '\u{fff0}'..='\u{fffb}'
                | '\u{1d173}'..='\u{1d17a}'
                | '\u{e0000}'..='\u{e0fff}'
        )
}

/// `text` as HTML: cut to [`MAX_TEXT`] characters; `&`, `<`, `>`, `"`
/// and `'` escaped (safe in text and in quoted attributes alike); a
/// backslash doubled; [`invisible`] characters, and with `strict` every
/// character outside ASCII, as a highlighted `\u{…}` escape.
fn text_html(text: &str, strict: bool) -> String {
    let mut out = String::with_capacity(text.len().min(4 * MAX_TEXT) + 8);
    for (n, c) in text.chars().enumerate() {
        if n == MAX_TEXT {
            let rest = text.chars().count() - n;
            let _ = write!(out, "<span class=\"cut\">… {rest} more characters</span>");
            break;
        }
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\\' => out.push_str("\\\\"),
            c if invisible(c) || (strict && !c.is_ascii()) => {
                let _ = write!(out, "<span class=\"esc\">\\u{{{:x}}}</span>", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Prose for HTML (rule titles and ids, field names, words): see
/// [`text_html`]; letters of any script are kept.
pub fn html(text: &str) -> String {
    text_html(text, false)
}

/// An identifier from a record (ARN, account, address, id, model or
/// bucket name, a value of a group) for HTML: see [`text_html`]; anything
/// outside ASCII is shown escaped, since AWS keeps these ASCII and a
/// look-alike letter is how one principal poses as another.
pub fn ident(text: &str) -> String {
    text_html(text, true)
}

fn opt(text: &Option<String>) -> String {
    text.as_deref().map_or_else(|| "-".to_owned(), ident)
}

fn level_cell(level: Level) -> String {
    format!(
        r#"<td><span class="lv l{}">{}</span></td>"#,
        level as usize,
        level.as_str()
    )
}

/// The report page for `digest` and the `findings` it was built from
/// (with their stored status), described by `meta`.
pub fn render(digest: &Digest, findings: &[Row], meta: &Meta) -> String {
    let mut out = String::with_capacity(64 * 1024 + findings.len().min(MAX_ROWS) * 600);
    let window = if meta.whole_store {
        "every stored finding".to_owned()
    } else {
        format!("findings since {}", ident(&digest.since))
    };
    let _ = write!(
        out,
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>trailwarden report, {since} to {until}</title>
<style>{STYLE}</style>
</head>
<body>
<header>
<h1>trailwarden report</h1>
<p>{window} in {source}: events from <b>{since}</b> to <b>{until}</b>. Made {generated} by trailwarden {version}.</p>
"#,
        since = ident(&digest.since),
        until = ident(&digest.until),
        source = html(&meta.source),
        generated = ident(&meta.generated),
        version = html(&meta.version),
    );
    let _ = write!(out, r#"<p class="totals"><b>{}</b> findings"#, digest.total);
    for (level, n) in &digest.by_level {
        let _ = write!(
            out,
            r#" <span class="lv l{}">{n} {}</span>"#,
            *level as usize,
            level.as_str()
        );
    }
    out.push_str("</p>\n");
    if meta.not_run > 0 {
        let _ = match &meta.policy {
            None => writeln!(
                out,
                "<p class=\"warn\">Without a policy, {} rule(s) do not run: they need organisation facts \
                 (<code>--policy FILE</code>). If the scans that stored these findings ran without one too, what \
                 those rules look for is not in this report; <code>trailwarden scan -v</code> names them.</p>",
                meta.not_run
            ),
            Some(path) => writeln!(
                out,
                "<p class=\"warn\">With the policy {}, {} rule(s) do not run: it does not give the organisation \
                 facts they need, so scans run with it did not look for what those rules find; \
                 <code>trailwarden scan -v</code> names them.</p>",
                html(path),
                meta.not_run
            ),
        };
    }
    if !meta.future.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"warn\">{} finding(s) are dated after this page was made: no real event is. They are \
             listed under “Dated in the future” and not counted above.</p>",
            meta.future.len()
        );
    }
    out.push_str("</header>\n");
    if findings.is_empty() {
        out.push_str(
            "<section id=\"empty\"><p>No findings in this window. Scan CloudTrail files first \
             (<code>trailwarden scan FILES</code>), or widen it with <code>--since</code>.</p></section>\n",
        );
    }
    timeline(&mut out, digest, findings, meta.whole_store);
    let mut open: Vec<&Row> = findings
        .iter()
        .filter(|(_, status)| status.as_deref() != Some("resolved"))
        .collect();
    severe_first(&mut open);
    let top: Vec<Item> = open
        .iter()
        .take(MAX_ROWS)
        .map(|r| Item::of(r, &meta.show))
        .collect();
    items(
        &mut out,
        "top",
        "Most severe findings not yet resolved",
        &top,
        open.len(),
    );
    by_rule(&mut out, digest);
    by_account(&mut out, digest);
    principals(&mut out, findings);
    evidence(&mut out, findings);
    items(
        &mut out,
        "new-principals",
        "AI principals seen for the first time",
        &digest.new_principals,
        digest.new_principals.len(),
    );
    items(
        &mut out,
        "new-models",
        "Models used for the first time by a principal",
        &digest.new_models,
        digest.new_models.len(),
    );
    let idle = match digest.idle_days {
        Some(days) => format!("AI principals idle {days} days or more"),
        None => "AI principals idle past the deployment's IdleDays".to_owned(),
    };
    items(
        &mut out,
        "idle",
        &idle,
        &digest.idle_principals,
        digest.idle_principals.len(),
    );
    if !meta.future.is_empty() {
        let mut future: Vec<&Row> = meta.future.iter().collect();
        severe_first(&mut future);
        let future: Vec<Item> = future
            .iter()
            .take(MAX_ROWS)
            .map(|r| Item::of(r, &meta.show))
            .collect();
        items(
            &mut out,
            "future",
            "Dated in the future (forged or mistimed records)",
            &future,
            meta.future.len(),
        );
    }
    if let Some(health) = &digest.health {
        let since = if meta.whole_store {
            "in all".to_owned()
        } else {
            format!(
                "since {} (by the time they were read)",
                ident(&digest.since)
            )
        };
        let _ = writeln!(
            out,
            "<section id=\"health\"><h2>Pipeline</h2><p>{} log object(s) read to their end {since}, \
             {} record(s); the last done at {}.</p></section>",
            health.objects,
            health.records,
            opt(&health.last_object_at)
        );
        if let Some(c) = &health.canary {
            let _ = writeln!(
                out,
                "<p class=\"{}\">Canary: {} at {} ({} of {} expected finding(s) in {} s).</p>",
                if c.passed { "more" } else { "warn" },
                if c.passed { "passed" } else { "MISSED" },
                ident(&c.at),
                c.found,
                c.expected,
                c.seconds
            );
        }
        for (id, heading, sources) in [
            (
                "silent",
                "Silent sources: delivered before, nothing since",
                &health.silent,
            ),
            ("sources", "By source", &health.sources),
        ] {
            if sources.is_empty() {
                continue;
            }
            let heading = format!("<h2>{heading} ({})</h2>", sources.len());
            let columns = [
                "Account",
                "Region",
                "Objects",
                "Records",
                "Refused",
                "Last object read",
            ];
            start_table(&mut out, id, &heading, sources.len(), &columns);
            for src in sources.iter().take(MAX_ROWS) {
                let _ = writeln!(
                    out,
                    "<tr><td class=\"mono acct\">{}</td><td class=\"mono\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"nw\">{}</td></tr>",
                    ident(&src.account),
                    ident(&src.region),
                    src.objects,
                    src.records,
                    src.rejected,
                    opt(&src.last_object_at)
                );
            }
            end_table(&mut out, sources.len());
        }
    }
    out.push_str("<footer>Made by trailwarden. Every value from a log record is shown as text; nothing on this page runs or loads anything.</footer>\n</body>\n</html>\n");
    out
}

const STYLE: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1200px;padding:16px 24px;color:#212121;background:#fff}
h1{font-size:22px;margin:8px 0}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e0e0e0;padding-bottom:4px}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eee;vertical-align:top}
th{background:#fafafa;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;word-break:break-all}
.nw{white-space:nowrap;word-break:normal}.acct{min-width:13ch}
.esc{background:#fff3e0;color:#bf360c;border-radius:2px}.cut{color:#757575;font-style:italic}
.warn{background:#fff8e1;border-left:4px solid #f9a825;padding:6px 10px}
.lv{display:inline-block;padding:0 6px;border-radius:3px;color:#fff;font-size:12px;font-weight:600}
.l0{background:#9e9e9e}.l1{background:#1e88e5}.l2{background:#f9a825;color:#212121}.l3{background:#e53935}.l4{background:#6a1b9a}
.bar{display:inline-block;height:10px;background:#90a4ae;vertical-align:middle}
.more{color:#757575;font-size:12px}footer{margin:32px 0 8px;color:#757575;font-size:12px}
svg text{font-size:11px;fill:#616161}
details summary{cursor:pointer}
";

/// The bucket of the timeline: the smallest of a minute, five and fifteen
/// minutes, an hour, six hours, a day, a week and thirty days that fits
/// the window in [`MAX_BARS`].
/// Past thirty days, whole days enough to fit (event times an attacker
/// chose can span millennia).
fn bucket_ms(span_ms: i64) -> i64 {
    [
        MINUTE,
        5 * MINUTE,
        15 * MINUTE,
        HOUR,
        6 * HOUR,
        DAY,
        7 * DAY,
        30 * DAY,
    ]
    .into_iter()
    .find(|b| span_ms / b < MAX_BARS)
    .unwrap_or_else(|| (span_ms / (MAX_BARS - 1) / DAY + 1) * DAY)
}

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// A bucket's length in words.
fn bucket_words(bucket: i64) -> String {
    match bucket {
        MINUTE => "minute".to_owned(),
        HOUR => "hour".to_owned(),
        DAY => "day".to_owned(),
        b if b == 7 * DAY => "week".to_owned(),
        b if b < HOUR => format!("{} minutes", b / MINUTE),
        b if b < DAY => format!("{} hours", b / HOUR),
        b => format!("{} days", b / DAY),
    }
}

fn millis(time: &str) -> Option<i64> {
    trailwarden_cloudtrail::parse_event_time(time)
}

fn label(ms: i64, bucket: i64) -> String {
    let Some(t) = chrono::DateTime::from_timestamp_millis(ms) else {
        return String::new();
    };
    if bucket < DAY {
        t.format("%m-%d %H:%M").to_string()
    } else {
        t.format("%Y-%m-%d").to_string()
    }
}

/// Findings per bucket and level as stacked bars, least severe at the
/// bottom, each with a tooltip (`<title>`) of its counts.
/// Without `--since`, the timeline draws at most this long before the
/// latest finding (a record dated centuries back would squeeze the rest
/// into one bar); earlier findings are counted under it.
const WHOLE_STORE_SPAN: i64 = 366 * DAY;

fn timeline(out: &mut String, digest: &Digest, findings: &[Row], whole_store: bool) {
    let times: Vec<(i64, Level)> = findings
        .iter()
        .filter_map(|(f, _)| Some((millis(&f.event_time)?, f.level)))
        .collect();
    let _ = writeln!(out, "<section id=\"timeline\"><h2>Findings over time</h2>");
    let (Some(first), Some(last)) = (
        times.iter().map(|t| t.0).min(),
        times.iter().map(|t| t.0).max(),
    ) else {
        out.push_str("<p class=\"more\">Nothing to draw.</p></section>\n");
        return;
    };
    let (start, end) = if whole_store {
        // From the earliest finding within the span.
        let recent = times
            .iter()
            .map(|t| t.0)
            .filter(|t| *t >= last - WHOLE_STORE_SPAN);
        (recent.min().unwrap_or(last), last)
    } else {
        (
            millis(&digest.since).map_or(first, |s| s.min(first)),
            millis(&digest.until).map_or(last, |u| u.max(last)),
        )
    };
    let bucket = bucket_ms(end - start);
    let start = start - start.rem_euclid(bucket);
    let bars = ((end - start) / bucket + 1) as usize;
    let mut counts = vec![[0u64; 5]; bars];
    let mut earlier = 0u64;
    for (t, level) in &times {
        if *t < start {
            earlier += 1;
            continue;
        }
        let i = ((t - start) / bucket) as usize;
        counts[i.min(bars - 1)][*level as usize] += 1;
    }
    let peak = counts
        .iter()
        .map(|c| c.iter().sum::<u64>())
        .max()
        .unwrap_or(1)
        .max(1);
    let (width, height, left, bottom, top) = (1100.0_f64, 240.0_f64, 44.0, 36.0, 10.0);
    let plot_h = height - bottom - top;
    let step = (width - left - 8.0) / bars as f64;
    let bar_w = (step * 0.8).clamp(1.0, 28.0);
    let _ = write!(
        out,
        r#"<svg role="img" aria-label="Findings over time, by level" viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">"#
    );
    // Axis and the peak's label.
    let _ = write!(
        out,
        r##"<line x1="{left}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#bdbdbd"/><text x="{tx}" y="{ty}" text-anchor="end">{peak}</text><text x="{tx}" y="{y0}" text-anchor="end">0</text>"##,
        y0 = height - bottom,
        x1 = width - 4.0,
        tx = left - 6.0,
        ty = top + 8.0,
    );
    let label_every = bars.div_ceil(8).max(1);
    for (i, c) in counts.iter().enumerate() {
        let x = left + i as f64 * step + (step - bar_w) / 2.0;
        let total: u64 = c.iter().sum();
        if total > 0 {
            let at = start + i as i64 * bucket;
            let tip: Vec<String> = Level::ALL
                .iter()
                .rev()
                .filter(|l| c[**l as usize] > 0)
                .map(|l| format!("{} {}", c[*l as usize], l.as_str()))
                .collect();
            let _ = write!(
                out,
                "<g><title>{}: {}</title>",
                label(at, bucket),
                tip.join(", ")
            );
            let mut y = height - bottom;
            for level in Level::ALL {
                let n = c[level as usize];
                if n == 0 {
                    continue;
                }
                let h = (n as f64 / peak as f64 * plot_h).max(1.5);
                y -= h;
                let _ = write!(
                    out,
                    r#"<rect class="b{}" x="{x:.1}" y="{y:.1}" width="{bar_w:.1}" height="{h:.1}" fill="{}"/>"#,
                    level as usize, COLOURS[level as usize]
                );
            }
            out.push_str("</g>");
        }
        // Every few bars, while a label still fits before the edge.
        if i % label_every == 0 && left + i as f64 * step + 70.0 < width {
            let _ = write!(
                out,
                r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
                left + i as f64 * step,
                height - bottom + 16.0,
                label(start + i as i64 * bucket, bucket)
            );
        }
    }
    out.push_str("</svg>\n<p class=\"more\">");
    for level in Level::ALL {
        let _ = write!(
            out,
            r#"<span class="lv l{}">{}</span> "#,
            level as usize,
            level.as_str()
        );
    }
    let _ = write!(
        out,
        "· one bar per {}, labelled with its start (UTC); hover a bar for its counts.",
        bucket_words(bucket)
    );
    if earlier > 0 {
        let _ = write!(
            out,
            " {earlier} earlier finding(s), from {}, are not drawn: the timeline shows the year before the latest.",
            ident(&label(first, DAY))
        );
    }
    out.push_str("</p></section>\n");
}

/// Up to [`MAX_LIST`] identifiers, one per line, and how many more there
/// are (`total`); `-` for none.
fn cell_list<'v>(values: impl Iterator<Item = &'v str>, total: usize) -> String {
    if total == 0 {
        return "-".to_owned();
    }
    let mut shown: Vec<String> = values.take(MAX_LIST).map(ident).collect();
    if total > shown.len() {
        shown.push(format!(
            "<span class=\"cut\">+{} more</span>",
            total - shown.len()
        ));
    }
    shown.join("<br>")
}

/// End a section's table of at most [`MAX_ROWS`] of `total` rows, saying
/// how many were left out, and the section.
fn end_table(out: &mut String, total: usize) {
    out.push_str("</table>\n");
    if total > MAX_ROWS {
        let _ = writeln!(
            out,
            "<p class=\"more\">… and {} more (use <code>trailwarden findings</code> to list every one).</p>",
            total - MAX_ROWS
        );
    }
    out.push_str("</section>\n");
}

/// Start section `id` with its heading (HTML: the title and what follows
/// it) and, when it has `rows`, its table's `columns`; with none, say so
/// and end the section: false.
fn start_table(out: &mut String, id: &str, heading: &str, rows: usize, columns: &[&str]) -> bool {
    let _ = writeln!(out, "<section id=\"{id}\">{heading}");
    if rows == 0 {
        out.push_str("<p class=\"more\">None.</p></section>\n");
        return false;
    }
    out.push_str("<table><tr>");
    for column in columns {
        let _ = write!(out, "<th>{column}</th>");
    }
    out.push_str("</tr>\n");
    true
}

fn items(out: &mut String, id: &str, heading: &str, items: &[Item], total: usize) {
    let heading = format!("<h2>{} ({total})</h2>", html(heading));
    let columns = [
        "Level",
        "Rule",
        "Principal",
        "Account",
        "Event time",
        "Note",
        "Finding",
    ];
    if !start_table(out, id, &heading, items.len(), &columns) {
        return;
    }
    for i in items.iter().take(MAX_ROWS) {
        let status = match i.status.as_deref() {
            Some("open") | None => String::new(),
            Some(s) => format!(" <span class=\"more\">({})</span>", html(s)),
        };
        let _ = writeln!(
            out,
            "<tr>{}<td>{}</td><td class=\"mono\">{}</td><td class=\"mono acct\">{}</td><td class=\"mono nw\">{}</td><td>{}</td><td class=\"mono\">{}{status}</td></tr>",
            level_cell(i.level),
            html(&i.title),
            opt(&i.principal),
            opt(&i.account),
            ident(&i.event_time),
            opt(&i.note),
            ident(&i.id),
        );
    }
    end_table(out, total);
}

fn by_rule(out: &mut String, digest: &Digest) {
    let n = digest.by_rule.len();
    let heading = format!("<h2>Findings by rule ({n} rules)</h2>");
    let columns = ["Findings", "", "Level", "Rule", "Rule id"];
    if !start_table(out, "rules", &heading, n, &columns) {
        return;
    }
    let peak = digest.by_rule.first().map_or(1, |r| r.count.max(1));
    for r in digest.by_rule.iter().take(MAX_ROWS) {
        let _ = writeln!(
            out,
            "<tr><td class=\"n\">{}</td><td><span class=\"bar\" style=\"width:{}px\"></span></td>{}<td>{}</td><td class=\"mono\">{}</td></tr>",
            r.count,
            (r.count * 200 / peak).max(1),
            level_cell(r.level),
            html(&r.title),
            html(&r.rule_id)
        );
    }
    end_table(out, digest.by_rule.len());
}

fn by_account(out: &mut String, digest: &Digest) {
    let n = digest.by_account.len();
    let heading = format!("<h2>Findings by account ({n} accounts)</h2>");
    if !start_table(out, "accounts", &heading, n, &["Findings", "Account"]) {
        return;
    }
    for (account, n) in digest.by_account.iter().take(MAX_ROWS) {
        let _ = writeln!(
            out,
            "<tr><td class=\"n\">{n}</td><td class=\"mono\">{}</td></tr>",
            ident(account)
        );
    }
    end_table(out, digest.by_account.len());
}

/// What the findings say of one principal.
#[derive(Default)]
struct Principal<'f> {
    findings: u64,
    highest: Option<Level>,
    accounts: BTreeSet<&'f str>,
    services: BTreeSet<&'f str>,
    models: BTreeSet<&'f str>,
    buckets: BTreeSet<&'f str>,
    first: Option<&'f str>,
    last: Option<&'f str>,
}

/// The AI services of the pack's rules, by `eventSource`.
fn is_ai_service(source: &str) -> bool {
    source.starts_with("bedrock") || source.starts_with("sagemaker")
}

/// The values of the group-by fields whose path ends in `suffix`.
fn group_values<'f>(f: &'f Finding, suffix: &'static str) -> impl Iterator<Item = &'f str> {
    f.group
        .iter()
        .filter(move |(k, _)| k.ends_with(suffix))
        .map(|(_, v)| v.as_str())
}

fn principals(out: &mut String, findings: &[Row]) {
    let mut by: BTreeMap<&str, Principal<'_>> = BTreeMap::new();
    for (f, _) in findings {
        // Anonymous callers (public bucket reads) and some service events
        // have no principal: one row for them all.
        let who = f.principal.as_deref().unwrap_or("");
        let p = by.entry(who).or_default();
        p.findings += 1;
        p.highest = p.highest.max(Some(f.level));
        if let Some(a) = f.account.as_deref() {
            p.accounts.insert(a);
        }
        if is_ai_service(&f.event_source) {
            p.services
                .insert(f.event_source.trim_end_matches(".amazonaws.com"));
        }
        p.models.extend(group_values(f, "modelId"));
        p.buckets.extend(group_values(f, "bucketName"));
        let t = f.event_time.as_str();
        let latest = f.latest_event_time();
        p.first = Some(p.first.map_or(t, |x| x.min(t)));
        p.last = Some(p.last.map_or(latest, |x| x.max(latest)));
    }
    let mut rows: Vec<(&str, Principal<'_>)> = by.into_iter().collect();
    // AI activity first, then the most severe, then the busiest.
    rows.sort_by(|a, b| {
        (!b.1.services.is_empty(), b.1.highest, b.1.findings, a.0).cmp(&(
            !a.1.services.is_empty(),
            a.1.highest,
            a.1.findings,
            b.0,
        ))
    });
    let heading = format!(
        "<h2>Findings by principal, AI activity first ({} principals)</h2>\
         <p class=\"more\">What the findings of each caller name: the AI services (Bedrock, SageMaker) of the calls they are about, the models and buckets their correlations and baselines are grouped by, and the times of its first and last finding (not of all its activity, which is in CloudTrail).</p>",
        rows.len()
    );
    let columns = [
        "Principal",
        "Highest",
        "Findings",
        "Accounts",
        "AI services",
        "Models",
        "Buckets",
        "First finding",
        "Last finding",
    ];
    if !start_table(out, "principals", &heading, rows.len(), &columns) {
        return;
    }
    let list = |set: &BTreeSet<&str>| cell_list(set.iter().copied(), set.len());
    for (who, p) in rows.iter().take(MAX_ROWS) {
        let _ = writeln!(
            out,
            "<tr><td class=\"mono\">{}</td>{}<td class=\"n\">{}</td><td class=\"mono acct\">{}</td><td>{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td class=\"mono nw\">{}</td><td class=\"mono nw\">{}</td></tr>",
            if who.is_empty() {
                "<i>(none: anonymous or service)</i>".to_owned()
            } else {
                ident(who)
            },
            p.highest.map_or_else(|| "<td>-</td>".to_owned(), level_cell),
            p.findings,
            list(&p.accounts),
            list(&p.services),
            list(&p.models),
            list(&p.buckets),
            ident(p.first.unwrap_or("-")),
            ident(p.last.unwrap_or("-")),
        );
    }
    end_table(out, rows.len());
}

/// Correlation and baseline findings with what made them: the group, the
/// engine's note, how many events and which.
fn evidence(out: &mut String, findings: &[Row]) {
    let mut made: Vec<&Finding> = findings
        .iter()
        .map(|(f, _)| f)
        .filter(|f| !f.group.is_empty() || f.count > 1)
        .collect();
    made.sort_by(|a, b| (b.level, &b.event_time, &b.id).cmp(&(a.level, &a.event_time, &a.id)));
    let heading = format!(
        "<h2>Correlation and baseline evidence ({})</h2>\
         <p class=\"more\">Each event is named by its CloudTrail eventID (look it up with CloudTrail Lake or \
         <code>aws cloudtrail lookup-events</code>); an id longer than 64 bytes is kept as <code>h:</code> and a digest \
         of it, and an event without one as <code>sha256:</code> and a digest of its record.</p>",
        made.len()
    );
    let columns = ["Level", "Rule", "Event time", "Group", "Note", "Events"];
    if !start_table(out, "evidence", &heading, made.len(), &columns) {
        return;
    }
    for f in made.iter().take(MAX_ROWS) {
        let mut group: Vec<String> = f
            .group
            .iter()
            .take(MAX_LIST)
            .map(|(k, v)| format!("{}: <b>{}</b>", html(k), ident(v)))
            .collect();
        if f.group.len() > MAX_LIST {
            group.push(format!(
                "<span class=\"cut\">+{} more</span>",
                f.group.len() - MAX_LIST
            ));
        }
        let ids: Vec<String> = f
            .event_ids
            .iter()
            .take(MAX_ROWS)
            .map(|id| ident(id))
            .collect();
        let listed = if (f.count as usize) > ids.len() {
            format!(" (the first {} listed)", ids.len())
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "<tr>{}<td>{}<br><span class=\"more mono\">{}</span></td><td class=\"mono nw\">{}</td><td class=\"mono\">{}</td><td>{}</td>\
             <td><details><summary>{} event(s){listed}</summary><div class=\"mono\">{}</div></details></td></tr>",
            level_cell(f.level),
            html(&f.rule_title),
            ident(&f.id),
            ident(&f.event_time),
            if group.is_empty() { "-".to_owned() } else { group.join("<br>") },
            opt(&f.note),
            f.count,
            ids.join("<br>"),
        );
    }
    end_table(out, made.len());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_html_and_the_terminal_alike() {
        assert_eq!(
            html("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        // Bidirectional overrides, controls and invisible characters are
        // shown as highlighted escapes, a backslash doubled so that the
        // text of an escape cannot pose as one.
        let esc = |hex: &str| format!("<span class=\"esc\">\\u{{{hex}}}</span>");
        assert_eq!(
            html("a\u{202e}b\u{1b}[31m"),
            format!("a{}b{}[31m", esc("202e"), esc("1b"))
        );
        assert_eq!(html("ad\u{200b}min"), format!("ad{}min", esc("200b")));
        assert_eq!(html("adm\u{ad}in"), format!("adm{}in", esc("ad")));
        assert_eq!(html(r"admin\u{202e}"), r"admin\\u{202e}");
        // Identifiers: every letter outside ASCII, so a Cyrillic о is not
        // an o; prose keeps its letters.
        assert_eq!(ident("b\u{43e}b"), format!("b{}b", esc("43e")));
        assert_eq!(html("Connexion refusée"), "Connexion refusée");
        // Cut to MAX_TEXT characters, saying how much is left out.
        let long = ident(&"a".repeat(MAX_TEXT + 300));
        assert!(long.starts_with(&"a".repeat(MAX_TEXT)));
        assert!(long.ends_with("… 300 more characters</span>"), "{long}");
        assert_eq!(
            cell_list(["x"; 25].into_iter(), 25).matches("x").count(),
            MAX_LIST
        );
        assert!(cell_list(["x"; 25].into_iter(), 25).ends_with("+15 more</span>"));
    }

    #[test]
    fn buckets_fit_the_window() {
        assert_eq!(bucket_ms(0), MINUTE);
        assert_eq!(bucket_ms(50 * MINUTE), MINUTE);
        assert_eq!(bucket_ms(5 * HOUR), 5 * MINUTE);
        assert_eq!(bucket_ms(DAY), 15 * MINUTE);
        assert_eq!(bucket_ms(4 * DAY), HOUR);
        assert_eq!(bucket_words(5 * MINUTE), "5 minutes");
        assert_eq!(bucket_ms(7 * DAY), 6 * HOUR);
        assert_eq!(bucket_ms(90 * DAY), DAY);
        assert_eq!(bucket_ms(400 * DAY), 7 * DAY);
        assert_eq!(bucket_ms(3000 * DAY), 30 * DAY);
        assert_eq!(bucket_words(6 * HOUR), "6 hours");
        assert_eq!(bucket_words(30 * DAY), "30 days");
        // Year 1 to year 9999: still one page of bars.
        let span = 9999 * 366 * DAY;
        for span in [0, HOUR, 30 * DAY, 5 * 365 * DAY, span] {
            assert!(span / bucket_ms(span) < MAX_BARS, "{span}");
        }
    }
}
