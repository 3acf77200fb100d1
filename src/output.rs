//! Writing findings: a table for people, JSON or JSON lines for programs,
//! OCSF Detection Findings for security data lakes and SIEMs.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
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

/// When table levels are coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    /// On a terminal, unless `NO_COLOR` is set, `CLICOLOR=0` or
    /// `TERM=dumb` (`CLICOLOR_FORCE=1` colours a pipe too).
    Auto,
    /// Always, even into a pipe or a file.
    Always,
    /// Never.
    Never,
}

/// Where findings go, and how a table looks there.
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Write the findings to FILE instead of standard output, in any
    /// format (the default format is then jsonl; a table there is not cut
    /// to a width and not coloured unless --color always).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Colour the levels of a table.
    #[arg(long, value_enum, value_name = "WHEN", default_value = "auto")]
    pub color: ColorWhen,
}

impl OutputArgs {
    /// The format to write: `format` if given, else a table on a terminal
    /// and JSON lines into a pipe or a file.
    pub fn format(&self, format: Option<Format>) -> Format {
        format.unwrap_or(if self.output.is_none() && io::stdout().is_terminal() {
            Format::Table
        } else {
            Format::Jsonl
        })
    }

    /// The table layout for this destination: the terminal's width and
    /// colours there (by `--color`); no width limit in a file or a pipe.
    pub fn table_style(&self) -> TableStyle {
        let terminal = self.output.is_none() && io::stdout().is_terminal();
        TableStyle {
            width: terminal
                .then(|| console::Term::stdout().size_checked())
                .flatten()
                .map(|(_, columns)| usize::from(columns)),
            color: match self.color {
                ColorWhen::Always => true,
                ColorWhen::Never => false,
                // `console` reads NO_COLOR, CLICOLOR, CLICOLOR_FORCE and
                // TERM for standard output.
                ColorWhen::Auto => self.output.is_none() && console::colors_enabled(),
            },
        }
    }

    /// The destination, opened: the file (created or truncated), or
    /// standard output (a closed pipe ends the output quietly).
    pub fn open(&self) -> anyhow::Result<Box<dyn Write + Send>> {
        Ok(match &self.output {
            Some(path) => Box::new(io::BufWriter::new(
                std::fs::File::create(path)
                    .with_context(|| format!("cannot write {}", path.display()))?,
            )),
            None => Box::new(io::BufWriter::new(crate::terminal::stdout())),
        })
    }
}

/// How a table is laid out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStyle {
    /// Fit rows within this many columns (a terminal's width): the
    /// principal, rule, event, account and address cells are cut (with
    /// `…`) down to a floor each; the id, time and level never are.
    /// `None`: as wide as the content.
    pub width: Option<usize>,
    /// Colour the level (ANSI SGR): critical bold red, high red, medium
    /// yellow, low cyan, informational dim.
    pub color: bool,
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
    /// Table: its layout.
    style: TableStyle,
}

/// One table row: what it is sorted and kept by, and its cells.
struct Row {
    level: trailwarden_engine::Level,
    event_time: String,
    id: String,
    cells: [String; COLUMNS],
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
            style: TableStyle::default(),
        }
    }

    /// Lay a table out as `style` says.
    pub fn with_style(mut self, style: TableStyle) -> Self {
        self.style = style;
        self
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
                write_table(&mut self.out, &self.rows, self.style)?;
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

/// The table's columns.
const COLUMNS: usize = 8;

/// The table's headers.
const HEADERS: [&str; COLUMNS] = [
    "ID",
    "TIME",
    "LEVEL",
    "RULE",
    "EVENT",
    "PRINCIPAL",
    "SOURCE IP",
    "ACCOUNT/REGION",
];

/// The column of the level.
const LEVEL: usize = 2;

/// The column of the principal, cut at its start (an ARN's end names the
/// role, user or session).
const PRINCIPAL: usize = 5;

/// The columns cut to fit a width, each with the width it keeps at least.
const SHRINK: [(usize, usize); 5] = [(5, 22), (3, 26), (4, 16), (7, 14), (6, 15)];

/// The columns left out, in this order, when a row cut to the floors of
/// [`SHRINK`] is still wider than the width: account and region, source
/// address, event.
const HIDE: [usize; 3] = [7, 6, 4];

/// A finding's table cells, cleaned and cut.
fn cells(f: &Finding) -> [String; COLUMNS] {
    [
        clean(&f.id, 64),
        clean(&f.event_time, 24),
        f.level.to_string(),
        clean(&f.rule_title, 48),
        // A finding of several events (a correlation, or repeats folded)
        // says how many.
        clean(
            &match f.count {
                0 | 1 => format!("{}:{}", short_source(&f.event_source), f.event_name),
                n => format!("{}:{} ×{n}", short_source(&f.event_source), f.event_name),
            },
            40,
        ),
        clean(f.principal.as_deref().unwrap_or("-"), 256),
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

/// Column widths (display columns) for `rows` within `limit`, `None` for
/// a column left out: each column as wide as its widest cell, then the
/// [`SHRINK`] columns narrowed, the one with the most room above its floor
/// first, until the row fits; where the floors do not fit, the [`HIDE`]
/// columns are left out one by one and the rest laid out again. A row
/// wider than `limit` with all of them out is left to wrap.
fn column_widths(rows: &[Row], limit: Option<usize>) -> [Option<usize>; COLUMNS] {
    let mut natural = HEADERS.map(console::measure_text_width);
    for row in rows {
        for (w, cell) in natural.iter_mut().zip(&row.cells) {
            *w = (*w).max(console::measure_text_width(cell));
        }
    }
    let Some(limit) = limit else {
        return natural.map(Some);
    };
    let mut widths = natural.map(Some);
    for hidden in 0..=HIDE.len() {
        widths = natural.map(Some);
        for &column in &HIDE[..hidden] {
            widths[column] = None;
        }
        let shown = widths.iter().flatten().count();
        let total = widths.iter().flatten().sum::<usize>() + 2 * (shown - 1);
        let mut excess = total.saturating_sub(limit);
        while excess > 0 {
            let Some((column, room)) = SHRINK
                .iter()
                .filter_map(|&(c, floor)| Some((c, widths[c]?.checked_sub(floor)?)))
                .filter(|(_, room)| *room > 0)
                .max_by_key(|(_, room)| *room)
            else {
                break;
            };
            let cut = excess.min(room.div_ceil(2));
            widths[column] = widths[column].map(|w| w - cut);
            excess -= cut;
        }
        if excess == 0 {
            break;
        }
    }
    widths
}

fn write_table<W: Write>(out: &mut W, rows: &[Row], style: TableStyle) -> io::Result<()> {
    if rows.is_empty() {
        return writeln!(out, "No findings.");
    }
    let widths = column_widths(rows, style.width);
    let last_shown = widths.iter().rposition(Option::is_some).unwrap_or(0);
    let line = |cells: &[String], level: Option<trailwarden_engine::Level>| -> String {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            let Some(w) = w else { continue };
            let cell = if i == PRINCIPAL {
                fit_tail(cell, w)
            } else {
                fit(cell, w)
            };
            let last = i == last_shown;
            let padded = if last {
                cell
            } else {
                console::pad_str(&cell, w + 2, console::Alignment::Left, None)
                    .into_owned()
                    .into()
            };
            match level.filter(|_| i == LEVEL && style.color) {
                Some(level) => {
                    s.push_str(&level_style(level).apply_to(padded.trim_end()).to_string());
                    s.extend(std::iter::repeat_n(
                        ' ',
                        padded.len() - padded.trim_end().len(),
                    ));
                }
                None => s.push_str(&padded),
            }
        }
        s
    };
    writeln!(out, "{}", line(&HEADERS.map(String::from), None))?;
    for row in rows {
        writeln!(out, "{}", line(&row.cells, Some(row.level)))?;
    }
    let hidden: Vec<&str> = HIDE
        .iter()
        .filter(|c| widths[**c].is_none())
        .map(|c| HEADERS[*c])
        .collect();
    if !hidden.is_empty() {
        writeln!(
            out,
            "(left out to fit the terminal: {}; a wider terminal, --format jsonl or `findings show ID` gives them)",
            hidden.join(", ")
        )?;
    }
    Ok(())
}

/// `text` cut to `width` display columns, ending in `…` where it is cut.
fn fit(text: &str, width: usize) -> std::borrow::Cow<'_, str> {
    cut(text, width, false)
}

/// `text` cut to `width` display columns at its start, beginning with `…`
/// where it is cut.
fn fit_tail(text: &str, width: usize) -> std::borrow::Cow<'_, str> {
    cut(text, width, true)
}

/// `text` as is if it fits `width` display columns, else the part of it
/// that fits beside `…`: its start, or its end (`keep_end`).
fn cut(text: &str, width: usize, keep_end: bool) -> std::borrow::Cow<'_, str> {
    use unicode_width::UnicodeWidthChar;
    if console::measure_text_width(text) <= width {
        return text.into();
    }
    let Some(room) = width.checked_sub(1) else {
        return "…".into();
    };
    // Character by character from the kept side while they fit, then, as
    // the text as a whole may be wider than its characters (emoji
    // presentation, joined sequences), one less until it measures so too.
    let mut used = 0;
    let mut fits = |c: &char| {
        used += c.width().unwrap_or(0);
        used <= room
    };
    let mut kept = if keep_end {
        let start = text
            .char_indices()
            .rev()
            .take_while(|(_, c)| fits(c))
            .last()
            .map_or(text.len(), |(i, _)| i);
        &text[start..]
    } else {
        let end = text
            .char_indices()
            .take_while(|(_, c)| fits(c))
            .last()
            .map_or(0, |(i, c)| i + c.len_utf8());
        &text[..end]
    };
    while console::measure_text_width(kept) > room {
        kept = if keep_end {
            let mut chars = kept.chars();
            chars.next();
            chars.as_str()
        } else {
            let mut chars = kept.chars();
            chars.next_back();
            chars.as_str()
        };
    }
    if keep_end {
        format!("…{kept}").into()
    } else {
        format!("{kept}…").into()
    }
}

/// The colour of a level in a table.
fn level_style(level: trailwarden_engine::Level) -> console::Style {
    use trailwarden_engine::Level;
    let style = console::Style::new().force_styling(true);
    match level {
        Level::Critical => style.red().bold(),
        Level::High => style.red(),
        Level::Medium => style.yellow(),
        Level::Low => style.cyan(),
        Level::Informational => style.dim(),
    }
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

    fn long_rows() -> Vec<Finding> {
        let mut rows = Vec::new();
        for (i, level) in ["critical", "high", "medium", "low", "informational"]
            .into_iter()
            .enumerate()
        {
            let mut f = finding(&format!("tw-{i:032}"), level, "2026-11-02T08:00:00Z");
            f.rule_title = "A rule whose title is long enough to need cutting ".repeat(2);
            f.principal = Some(format!(
                "arn:aws:sts::111122223333:assumed-role/{}/session-{i}",
                "VeryLongRoleName".repeat(3)
            ));
            f.event_name = "CreateModelInvocationJobWithAVeryLongName".into();
            f.region = Some("ap-southeast-2".into());
            f.source_ip = Some("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff".into());
            rows.push(f);
        }
        rows
    }

    fn table(rows: Vec<Finding>, style: TableStyle) -> String {
        let mut out = Vec::new();
        let mut w = FindingWriter::new(&mut out, Format::Table).with_style(style);
        for f in rows {
            w.push(f).unwrap();
        }
        w.finish().unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_table_fits_the_width_and_keeps_ids_whole() {
        let style = |width| TableStyle {
            width: Some(width),
            color: false,
        };
        let wide = table(long_rows(), TableStyle::default());
        let natural = wide.lines().map(console::measure_text_width).max().unwrap();
        assert!(natural > 200, "{wide}");
        // Cut to fit, every column kept, ids whole.
        for width in [200, 185, 176] {
            let text = table(long_rows(), style(width));
            assert_eq!(text.lines().count(), 6, "{text}");
            for line in text.lines() {
                assert!(
                    console::measure_text_width(line) <= width,
                    "{width}: {line}"
                );
            }
            assert!(text.lines().next().unwrap().ends_with("ACCOUNT/REGION"));
            for i in 0..5 {
                let id = format!("tw-{i:032}");
                assert!(
                    text.lines().any(|l| l.starts_with(&id)),
                    "{id} cut in:\n{text}"
                );
            }
            assert!(text.contains('…'), "{text}");
        }
        // Where the floors do not fit, columns are left out, and said so.
        for (width, out) in [
            (170, "ACCOUNT/REGION"),
            (150, "ACCOUNT/REGION, SOURCE IP"),
            (130, "ACCOUNT/REGION, SOURCE IP, EVENT"),
        ] {
            let text = table(long_rows(), style(width));
            let (rows, note) = text.trim_end().rsplit_once('\n').unwrap();
            for line in rows.lines() {
                assert!(
                    console::measure_text_width(line) <= width,
                    "{width}: {line}"
                );
            }
            assert!(
                note.starts_with(&format!("(left out to fit the terminal: {out};")),
                "{width}: {text}"
            );
            for column in out.split(", ") {
                assert!(!rows.contains(column), "{width}: {text}");
            }
        }
        // A principal keeps its end (the role, user or session).
        let text = table(long_rows(), style(130));
        assert!(
            text.lines().nth(1).unwrap().ends_with("RoleName/session-0"),
            "{text}"
        );
        // Narrower than anything fits: cut to the floors, no further.
        let text = table(long_rows(), style(40));
        assert!(
            text.lines().skip(1).take(5).all(|l| l.starts_with("tw-")),
            "{text}"
        );
        assert!(text.contains("2026-11-02T08:00:00Z"), "{text}");
    }

    #[test]
    fn cells_cut_to_a_width_never_exceed_it() {
        let texts = [
            "\u{26a0}\u{fe0f} Root login \u{26a0}\u{fe0f} without MFA \u{26a0}\u{fe0f} again and again",
            "\u{1f469}\u{200d}\u{1f4bb} \u{1f469}\u{200d}\u{1f4bb} \u{1f469}\u{200d}\u{1f4bb} joined emoji",
            "数据泄露检测规则名称很长很长很长很长",
            "plain ascii text that is long enough",
        ];
        for text in texts {
            for width in 2..40 {
                for cut in [fit(text, width), fit_tail(text, width)] {
                    assert!(
                        console::measure_text_width(&cut) <= width,
                        "{text:?} at {width}: {cut:?}"
                    );
                }
            }
        }
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit_tail("abcdef", 4), "…def");
        assert_eq!(fit("abcdef", 6), "abcdef");
    }

    #[test]
    fn levels_are_coloured_only_when_asked_and_columns_still_align() {
        let plain = table(
            long_rows(),
            TableStyle {
                width: Some(150),
                color: false,
            },
        );
        assert!(!plain.contains('\u{1b}'), "{plain}");
        let coloured = table(
            long_rows(),
            TableStyle {
                width: Some(150),
                color: true,
            },
        );
        assert_eq!(console::strip_ansi_codes(&coloured), plain);
        for (line, level) in coloured.lines().skip(1).zip([
            "\u{1b}[31m\u{1b}[1mcritical",
            "\u{1b}[31mhigh",
            "\u{1b}[33mmedium",
            "\u{1b}[36mlow",
            "\u{1b}[2minformational",
        ]) {
            assert!(line.contains(level), "{level:?} in {line:?}");
        }
        // Only the level is coloured: the header is plain.
        assert!(!coloured.lines().next().unwrap().contains('\u{1b}'));
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
