//! Writing findings: a table for people, JSON or JSON lines for programs.

use std::io::{self, Write};

use clap::ValueEnum;
use trailwarden_engine::Finding;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns, one finding per row.
    Table,
    /// One JSON array of findings.
    Json,
    /// One JSON object per line.
    Jsonl,
}

/// Writes findings as they come (JSON lines) or at the end (table, JSON).
pub struct FindingWriter<W: Write> {
    out: W,
    format: Format,
    held: Vec<Finding>,
}

impl<W: Write> FindingWriter<W> {
    /// A writer in `format` to `out`.
    pub fn new(out: W, format: Format) -> Self {
        FindingWriter {
            out,
            format,
            held: Vec::new(),
        }
    }

    /// Add one finding.
    pub fn push(&mut self, finding: Finding) -> io::Result<()> {
        match self.format {
            Format::Jsonl => {
                serde_json::to_writer(&mut self.out, &finding)?;
                self.out.write_all(b"\n")
            }
            Format::Json | Format::Table => {
                self.held.push(finding);
                Ok(())
            }
        }
    }

    /// Write what is held and flush.
    pub fn finish(mut self) -> io::Result<()> {
        match self.format {
            Format::Jsonl => {}
            Format::Json => {
                serde_json::to_writer_pretty(&mut self.out, &self.held)?;
                self.out.write_all(b"\n")?;
            }
            Format::Table => {
                self.held
                    .sort_by(|a, b| (&a.event_time, &a.id).cmp(&(&b.event_time, &b.id)));
                write_table(&mut self.out, &self.held)?;
            }
        }
        self.out.flush()
    }
}

/// Characters that could move the cursor or fake output are shown escaped.
pub fn clean(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (n, c) in s.chars().enumerate() {
        if n >= max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn write_table<W: Write>(out: &mut W, findings: &[Finding]) -> io::Result<()> {
    if findings.is_empty() {
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
    let rows: Vec<[String; 7]> = findings
        .iter()
        .map(|f| {
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
        })
        .collect();
    let mut widths = headers.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
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
    for row in &rows {
        writeln!(out, "{}", line(row))?;
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
        assert_eq!(clean("abcdef", 3), "abc…");
    }
}
