//! Writing findings: a table for people, JSON or JSON lines for programs,
//! OCSF Detection Findings for security data lakes and SIEMs.

use std::io::{self, Write};

use clap::ValueEnum;
use trailwarden_engine::ocsf::detection_finding;
use trailwarden_engine::Finding;

use crate::scan::Encoded;

use crate::terminal::{json_escape, push_escaped};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns, one finding per row.
    Table,
    /// One JSON array of findings.
    Json,
    /// One JSON object per line.
    Jsonl,
    /// One OCSF Detection Finding (class 2004, schema
    /// `trailwarden_engine::ocsf::OCSF_VERSION`) per line.
    Ocsf,
}

/// Rows a table holds. Past this, the most severe findings are kept (then
/// the earliest) and the table says how many were left out.
pub const TABLE_ROWS: usize = 10_000;

/// Writes findings as they come (JSON lines, JSON), or, for a table, holds
/// at most [`TABLE_ROWS`] rows and writes them at the end.
pub struct FindingWriter<W: Write> {
    out: W,
    format: Format,
    /// JSON: findings written so far.
    written: u64,
    /// Table: the rows held.
    rows: Vec<Row>,
    /// Table: findings left out.
    left_out: u64,
}

/// One table row: what it is sorted and kept by, and its cells.
struct Row {
    level: trailwarden_engine::Level,
    event_time: String,
    id: String,
    cells: [String; 7],
}

impl<W: Write> FindingWriter<W> {
    /// A writer in `format` to `out`.
    pub fn new(out: W, format: Format) -> Self {
        FindingWriter {
            out,
            format,
            written: 0,
            rows: Vec::new(),
            left_out: 0,
        }
    }

    /// Add one finding.
    pub fn push(&mut self, finding: Finding) -> io::Result<()> {
        self.push_with(finding, None)
    }

    /// Add one finding whose JSON text (`serde_json::to_string`) is
    /// already made: `jsonl` output writes that text.
    pub fn push_encoded(&mut self, encoded: Encoded) -> io::Result<()> {
        self.push_with(encoded.finding, Some(encoded.json))
    }

    fn push_with(&mut self, finding: Finding, json: Option<String>) -> io::Result<()> {
        match self.format {
            Format::Jsonl => {
                let text = match json {
                    Some(text) => text,
                    None => serde_json::to_string(&finding)?,
                };
                self.write_line(&text)
            }
            Format::Ocsf => {
                let text = serde_json::to_string(&detection_finding(&finding))?;
                self.write_line(&text)
            }
            Format::Json => {
                // The same text as the whole array written pretty at once.
                self.out
                    .write_all(if self.written == 0 { b"[\n" } else { b",\n" })?;
                self.written += 1;
                let text = serde_json::to_string_pretty(&finding)?;
                for (i, line) in json_escape(&text).lines().enumerate() {
                    if i > 0 {
                        self.out.write_all(b"\n")?;
                    }
                    self.out.write_all(b"  ")?;
                    self.out.write_all(line.as_bytes())?;
                }
                Ok(())
            }
            Format::Table => {
                self.rows.push(Row {
                    level: finding.level,
                    cells: cells(&finding),
                    event_time: finding.event_time,
                    id: finding.id,
                });
                if self.rows.len() >= 2 * TABLE_ROWS {
                    self.keep_most_severe();
                }
                Ok(())
            }
        }
    }

    /// One JSON line, terminal-safe.
    fn write_line(&mut self, text: &str) -> io::Result<()> {
        self.out.write_all(json_escape(text).as_bytes())?;
        self.out.write_all(b"\n")
    }

    fn keep_most_severe(&mut self) {
        if self.rows.len() <= TABLE_ROWS {
            return;
        }
        self.rows
            .sort_by(|a, b| (b.level, &a.event_time, &a.id).cmp(&(a.level, &b.event_time, &b.id)));
        self.left_out += (self.rows.len() - TABLE_ROWS) as u64;
        self.rows.truncate(TABLE_ROWS);
    }

    /// Write what is held and flush.
    pub fn finish(mut self) -> io::Result<()> {
        match self.format {
            Format::Jsonl | Format::Ocsf => {}
            Format::Json => {
                let end: &[u8] = if self.written == 0 { b"[]\n" } else { b"\n]\n" };
                self.out.write_all(end)?;
            }
            Format::Table => {
                self.keep_most_severe();
                self.rows
                    .sort_by(|a, b| (&a.event_time, &a.id).cmp(&(&b.event_time, &b.id)));
                write_table(&mut self.out, &self.rows)?;
                if self.left_out > 0 {
                    writeln!(
                        self.out,
                        "… {} more finding(s) not shown: the table keeps the {TABLE_ROWS} most severe (--format jsonl writes them all)",
                        self.left_out
                    )?;
                }
            }
        }
        self.out.flush()
    }
}

/// Characters that could move the cursor, fake output or reorder text
/// (controls, bidirectional overrides: [`crate::terminal::is_unsafe`]) are
/// shown escaped; text past `max` characters is cut.
pub fn clean(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (n, c) in s.chars().enumerate() {
        if n >= max {
            out.push('…');
            break;
        }
        push_escaped(&mut out, c);
    }
    out
}

/// A finding's table cells, cleaned and cut.
fn cells(f: &Finding) -> [String; 7] {
    [
        clean(&f.event_time, 24),
        f.level.to_string(),
        clean(&f.rule_title, 48),
        clean(
            &format!("{}:{}", short_source(&f.event_source), f.event_name),
            40,
        ),
        clean(f.principal.as_deref().unwrap_or("-"), 60),
        clean(f.source_ip.as_deref().unwrap_or("-"), 40),
        clean(
            &format!(
                "{}/{}",
                f.account.as_deref().unwrap_or("-"),
                f.region.as_deref().unwrap_or("-")
            ),
            32,
        ),
    ]
}

fn write_table<W: Write>(out: &mut W, rows: &[Row]) -> io::Result<()> {
    if rows.is_empty() {
        return writeln!(out, "No findings.");
    }
    let headers = [
        "TIME",
        "LEVEL",
        "RULE",
        "EVENT",
        "PRINCIPAL",
        "SOURCE IP",
        "ACCOUNT/REGION",
    ];
    let mut widths = headers.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(&row.cells) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(cell);
                s.extend(std::iter::repeat_n(' ', w - cell.chars().count() + 2));
            }
        }
        s
    };
    writeln!(out, "{}", line(&headers.map(String::from)))?;
    for row in rows {
        writeln!(out, "{}", line(&row.cells))?;
    }
    Ok(())
}

fn short_source(source: &str) -> &str {
    source.strip_suffix(".amazonaws.com").unwrap_or(source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_escapes_control_characters_and_truncates() {
        assert_eq!(clean("a\u{1b}[31mb", 100), "a\\u{1b}[31mb");
        assert_eq!(clean("x\u{202e}y\u{9b}", 100), "x\\u{202e}y\\u{9b}");
        assert_eq!(clean("abcdef", 3), "abc…");
    }

    fn finding(id: &str, level: &str, time: &str) -> Finding {
        serde_json::from_value(serde_json::json!({
            "id": id, "rule_id": "r", "rule_title": "t", "level": level, "tags": [],
            "description": "", "event_time": time, "account": "1", "region": null,
            "principal": "p", "principal_type": null, "access_key_id": null, "source_ip": null,
            "user_agent": null, "event_source": "s", "event_name": "n", "error_code": null,
            "event_ids": ["e"], "count": 1
        }))
        .unwrap()
    }

    #[test]
    fn json_is_streamed_as_the_same_text_as_the_array() {
        for n in [0, 1, 3] {
            let all: Vec<Finding> = (0..n)
                .map(|i| finding(&format!("tw-{i}"), "high", "2026-11-02T08:00:00Z"))
                .collect();
            let mut out = Vec::new();
            let mut w = FindingWriter::new(&mut out, Format::Json);
            for f in all.clone() {
                w.push(f).unwrap();
            }
            w.finish().unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string_pretty(&all).unwrap() + "\n"
            );
        }
    }

    #[test]
    fn a_finding_encoded_once_is_written_as_pushed_and_stored() {
        // jsonl writes `Encoded::json` (the store cuts its body from the
        // same text), made safe for a terminal like any other line.
        let mut f = finding("tw-1", "high", "2026-11-02T08:00:00Z");
        f.principal = Some("p\u{202e}x".into());
        for format in [Format::Jsonl, Format::Json] {
            let (mut pushed, mut encoded) = (Vec::new(), Vec::new());
            let mut w = FindingWriter::new(&mut pushed, format);
            w.push(f.clone()).unwrap();
            w.finish().unwrap();
            let mut w = FindingWriter::new(&mut encoded, format);
            w.push_encoded(Encoded::new(f.clone())).unwrap();
            w.finish().unwrap();
            assert_eq!(pushed, encoded, "{format:?}");
        }
        let line = {
            let mut out = Vec::new();
            let mut w = FindingWriter::new(&mut out, Format::Jsonl);
            w.push_encoded(Encoded::new(f.clone())).unwrap();
            w.finish().unwrap();
            String::from_utf8(out).unwrap()
        };
        assert!(line.contains("p\\u202ex"), "{line}");
        let back: Finding = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(back.principal, f.principal);
    }

    #[test]
    fn ocsf_is_one_detection_finding_per_line_and_terminal_safe() {
        let mut f = finding("tw-1", "medium", "2026-11-02T08:00:00Z");
        f.principal = Some("p\u{202e}x\u{1b}[2J".into());
        let mut out = Vec::new();
        let mut w = FindingWriter::new(&mut out, Format::Ocsf);
        w.push(f.clone()).unwrap();
        w.push_encoded(Encoded::new(finding(
            "tw-2",
            "high",
            "2026-11-02T08:00:01Z",
        )))
        .unwrap();
        w.finish().unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            !text.contains('\u{202e}') && !text.contains('\u{1b}'),
            "{text}"
        );
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["class_uid"], 2004);
        assert_eq!(lines[0]["finding_info"]["uid"], "tw-1");
        assert_eq!(
            lines[0]["evidences"][0]["actor"]["user"]["uid"],
            "p\u{202e}x\u{1b}[2J"
        );
        assert_eq!(lines[0]["severity_id"], 3);
        assert_eq!(lines[1]["finding_info"]["uid"], "tw-2");
        assert_eq!(lines[1]["severity_id"], 4);
    }

    #[test]
    fn a_table_keeps_the_most_severe_rows() {
        let mut out = Vec::new();
        let mut w = FindingWriter::new(&mut out, Format::Table);
        for i in 0..(2 * TABLE_ROWS + 5) {
            w.push(finding(
                &format!("tw-{i:06}"),
                "low",
                "2026-11-02T08:00:00Z",
            ))
            .unwrap();
        }
        w.push(finding("tw-crit", "critical", "2026-11-03T08:00:00Z"))
            .unwrap();
        w.finish().unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text.lines().count(),
            1 + TABLE_ROWS + 1,
            "header, rows, note"
        );
        assert!(text.contains("critical"));
        assert!(text.ends_with(&format!(
            "… {} more finding(s) not shown: the table keeps the {TABLE_ROWS} most severe (--format jsonl writes them all)\n",
            TABLE_ROWS + 6
        )));
    }
}
