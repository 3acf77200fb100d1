//! Streaming readers for CloudTrail objects.
//!
//! [`read_object`] takes any byte stream (a file, standard input, an S3 object
//! body) and hands each record to a [`RecordSink`]. The format is detected from
//! the content, never from a name:
//!
//! - gzip or plain (gzip magic bytes);
//! - S3 delivery files, `{"Records":[…]}`;
//! - a JSON array of records or of EventBridge envelopes;
//! - JSON lines, or concatenated JSON objects, each a record or an EventBridge
//!   "AWS API Call via CloudTrail" envelope (the record is its `detail`);
//! - CloudTrail digest files, which are recognised and skipped;
//! - CloudTrail Insights files (`eventType: AwsCloudTrailInsight` records,
//!   call-rate and error-rate insights rather than API calls), counted in
//!   [`ObjectSummary::insights`] and not evaluated;
//! - `aws cloudtrail lookup-events` output, `{"Events":[{"CloudTrailEvent":
//!   "<record as a JSON string>"}, …]}`, and CloudWatch Logs subscription
//!   payloads, `{"logEvents":[{"message":"<record>"}, …]}` (gzip as
//!   delivered): the embedded records are read;
//! - several of these documents back to back (`cat a.json b.json`, `zcat
//!   *.json.gz`, a multi-member gzip): every document is read; anything after
//!   the last one that is not a document is an [`ObjectError::Malformed`]
//!   with its byte offset.
//!
//! Memory is bounded: bytes are decompressed into a chunk buffer (1 MiB by
//! default) that only grows to hold one record, up to
//! [`ReaderOptions::max_record_bytes`]. The decompressed size of one object is
//! capped by [`ReaderOptions::max_object_bytes`], so a gzip bomb is a rejected
//! object, not an out-of-memory kill.
//!
//! A record that cannot be read (not an object, wrong field types, invalid
//! UTF-8, nested too deep) is reported to the sink with its index and reason
//! and the records around it go on. An object that cannot be read further
//! (corrupt gzip, not JSON, truncated) ends with an [`ObjectError`]; the
//! records before the fault have already been delivered.

use std::io::{self, BufRead, BufReader, Read};

use flate2::bufread::MultiGzDecoder;
use memchr::memchr;
use thiserror::Error;

use crate::record::{Record, RecordError};
use crate::scan::{
    parse_object, scan_value, Fields, Kind, ParseError, Scan, DIGEST, EVENT_NAME, RECORDS,
};

/// Limits and sizes for reading one object.
#[derive(Debug, Clone)]
pub struct ReaderOptions {
    /// Most decompressed bytes read from one object before it is rejected.
    pub max_object_bytes: u64,
    /// Largest single record, in bytes. A larger record rejects the object.
    pub max_record_bytes: usize,
    /// Deepest JSON nesting accepted inside a record.
    pub max_depth: usize,
    /// Size of the decompression buffer.
    pub chunk_bytes: usize,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions {
            max_object_bytes: 2 << 30,
            max_record_bytes: 16 << 20,
            max_depth: 64,
            chunk_bytes: 1 << 20,
        }
    }
}

/// The layout an object turned out to have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `{"Records":[…]}`, as CloudTrail delivers to S3.
    S3Delivery,
    /// A JSON array of records or EventBridge envelopes.
    JsonArray,
    /// One JSON object per line.
    JsonLines,
    /// JSON objects one after another, not one per line (for example one
    /// pretty-printed EventBridge event).
    Concatenated,
    /// A CloudTrail digest file (skipped).
    Digest,
    /// `aws cloudtrail lookup-events` output: `{"Events":[{"CloudTrailEvent":"…"}]}`.
    LookupEvents,
    /// A CloudWatch Logs subscription payload: `{"logEvents":[{"message":"…"}]}`.
    CloudWatchLogs,
}

impl Format {
    /// A short name for summaries.
    pub fn name(self) -> &'static str {
        match self {
            Format::S3Delivery => "cloudtrail-s3",
            Format::JsonArray => "json-array",
            Format::JsonLines => "json-lines",
            Format::Concatenated => "json-objects",
            Format::Digest => "cloudtrail-digest",
            Format::LookupEvents => "lookup-events",
            Format::CloudWatchLogs => "cloudwatch-logs",
        }
    }
}

/// What reading one object produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectSummary {
    /// The detected layout.
    pub format: Format,
    /// Whether the object was gzip-compressed.
    pub compressed: bool,
    /// Records handed to [`RecordSink::record`].
    pub records: u64,
    /// Records handed to [`RecordSink::reject`].
    pub rejected: u64,
    /// Decompressed bytes read.
    pub bytes: u64,
    /// Why the object was skipped without reading records, if it was.
    pub skipped: Option<String>,
    /// CloudTrail Insights events read and not evaluated (they describe API
    /// call rates, not API calls).
    pub insights: u64,
    /// Records kept although a string in them was not valid (a lone UTF-16
    /// surrogate escape such as `"\ud800"`): the string was read with the
    /// replacement character U+FFFD instead.
    pub repaired: u64,
}

impl ObjectSummary {
    /// The counts of an object nothing was read from yet.
    fn empty() -> Self {
        ObjectSummary {
            format: Format::S3Delivery,
            compressed: false,
            records: 0,
            rejected: 0,
            bytes: 0,
            skipped: None,
            insights: 0,
            repaired: 0,
        }
    }
}

/// A record that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordReject {
    /// Position of the record in its object (0-based; line number minus one
    /// for JSON lines).
    pub index: u64,
    /// Byte offset of the record in the decompressed object.
    pub offset: u64,
    /// Why it was rejected.
    pub reason: String,
}

/// Receives what a reader finds.
pub trait RecordSink {
    /// One record, in file order. The record borrows the reader's buffer.
    fn record(&mut self, index: u64, record: &Record<'_>);
    /// One record that could not be read.
    fn reject(&mut self, reject: RecordReject);
}

/// Why an object could not be read (further).
#[derive(Debug, Error)]
pub enum ObjectError {
    /// Zero bytes, or only white space.
    #[error("the object is empty: there is nothing to read (a CloudTrail log file always holds a JSON document)")]
    Empty,
    /// The gzip stream is corrupt or ends early.
    #[error("gzip data is corrupt or truncated after {bytes} decompressed bytes ({source}); re-fetch the object or check how it was written")]
    Decompress {
        /// Decompressed bytes read before the fault.
        bytes: u64,
        /// The decoder's error.
        source: io::Error,
    },
    /// Reading the underlying stream failed.
    #[error("reading failed after {bytes} bytes: {source}")]
    Io {
        /// Bytes read before the fault.
        bytes: u64,
        /// The I/O error.
        source: io::Error,
    },
    /// The decompressed size passed the cap.
    #[error("decompressed size passed the cap of {cap} bytes, so reading stopped (a gzip bomb, or an unusually large file: raise the cap if the file is genuine)")]
    TooLarge {
        /// The cap in bytes.
        cap: u64,
    },
    /// The content is not JSON.
    #[error("not JSON: expected '{{' or '[' at byte {offset} but found {found}; CloudTrail files are JSON (optionally gzip-compressed)")]
    NotJson {
        /// Offset of the offending byte.
        offset: u64,
        /// What was found there.
        found: String,
    },
    /// Valid JSON that is not a CloudTrail layout.
    #[error("not CloudTrail data: {0}")]
    Shape(String),
    /// Invalid JSON between records, where the reader cannot find the next record.
    #[error("malformed JSON at byte {offset}: {reason}; the records before it were read, the rest of the object was not")]
    Malformed {
        /// Offset of the fault.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The data ends inside a value.
    #[error("truncated: the data ends inside a JSON value that starts at byte {offset}; the records before it were read")]
    Truncated {
        /// Offset where the unfinished value starts.
        offset: u64,
    },
    /// One record is larger than the record cap.
    #[error("a record starting at byte {offset} is larger than {max} bytes; raise the record size cap if this is genuine")]
    RecordTooLarge {
        /// Offset where the record starts.
        offset: u64,
        /// The cap.
        max: usize,
    },
}

/// An object that could not be read to the end: the error, and what was
/// read before it (those records were delivered to the sink).
#[derive(Debug, Error)]
#[error("{error}")]
pub struct ReadFailure {
    /// What went wrong.
    #[source]
    pub error: ObjectError,
    /// The counts up to the fault.
    pub summary: ObjectSummary,
}

/// Read one object from `input`, handing records to `sink`.
pub fn read_object<R: Read, S: RecordSink + ?Sized>(
    input: R,
    options: &ReaderOptions,
    sink: &mut S,
) -> Result<ObjectSummary, ReadFailure> {
    let mut raw = BufReader::with_capacity(64 << 10, input);
    let empty = ObjectSummary::empty();
    let head = match raw.fill_buf() {
        Ok(head) => head,
        Err(source) => {
            return Err(ReadFailure {
                error: ObjectError::Io { bytes: 0, source },
                summary: empty,
            })
        }
    };
    let compressed = is_gzip(head);
    let source: Box<dyn Read + '_> = if compressed {
        Box::new(MultiGzDecoder::new(raw))
    } else {
        Box::new(raw)
    };
    read_source(source, compressed, options, sink)
}

/// Whether `head`, an object's first bytes, starts a gzip member: its
/// magic bytes `1f 8b` (RFC 1952, section 2.3.1). The reader inflates such
/// an object whatever its name; a file scan takes it for a log.
pub fn is_gzip(head: &[u8]) -> bool {
    head.starts_with(&[0x1f, 0x8b])
}

/// Decompressed bytes the inflating thread of [`read_object_pipelined`]
/// hands on at a time.
const INFLATED_CHUNK: usize = 256 << 10;
/// Chunks queued between the inflating thread and the reader (so about
/// 1.5 MiB inflated ahead with the chunk being filled and the one being
/// read; a reader that stops early stops it).
const INFLATED_QUEUE: usize = 4;

/// [`read_object`] with gzip inflation on a thread of its own, so that a
/// single large object keeps two cores busy: one inflating, one framing,
/// parsing and handing records to `sink`. The same records, rejects,
/// summary and failure as [`read_object`], in the same order (a read error
/// arrives after the bytes inflated before it). Plain (uncompressed)
/// input is read on the calling thread.
pub fn read_object_pipelined<R: Read + Send, S: RecordSink + ?Sized>(
    input: R,
    options: &ReaderOptions,
    sink: &mut S,
) -> Result<ObjectSummary, ReadFailure> {
    let mut raw = BufReader::with_capacity(64 << 10, input);
    let compressed = match raw.fill_buf() {
        Ok(head) => is_gzip(head),
        // As `read_object` answers it.
        Err(source) => {
            return Err(ReadFailure {
                error: ObjectError::Io { bytes: 0, source },
                summary: ObjectSummary::empty(),
            })
        }
    };
    if !compressed {
        return read_object(raw, options, sink);
    }
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(INFLATED_QUEUE);
        // Chunks read to their end come back to be filled again (no
        // allocation and zeroing per chunk).
        let (recycle, recycled) = std::sync::mpsc::sync_channel::<Vec<u8>>(INFLATED_QUEUE + 2);
        scope.spawn(move || {
            let mut inflate = MultiGzDecoder::new(raw);
            loop {
                let mut chunk = recycled.try_recv().unwrap_or_default();
                chunk.resize(INFLATED_CHUNK, 0);
                let mut filled = 0;
                let error = loop {
                    if filled == chunk.len() {
                        break None;
                    }
                    match inflate.read(&mut chunk[filled..]) {
                        Ok(0) => break None,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => break Some(e),
                    }
                };
                let end = filled < chunk.len() || error.is_some();
                chunk.truncate(filled);
                // The reader gone (it stopped early): stop inflating.
                if filled > 0 && tx.send(Ok(chunk)).is_err() {
                    return;
                }
                if let Some(e) = error {
                    let _ = tx.send(Err(e));
                    return;
                }
                if end {
                    return;
                }
            }
        });
        let source = Inflated {
            rx,
            recycle,
            chunk: Vec::new(),
            pos: 0,
        };
        read_source(Box::new(source), true, options, sink)
    })
}

/// The reader's side of [`read_object_pipelined`]'s channel.
struct Inflated {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    /// Where chunks read to their end go back to.
    recycle: std::sync::mpsc::SyncSender<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl Read for Inflated {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    let used = std::mem::replace(&mut self.chunk, chunk);
                    // Full (or the inflating thread gone): let it drop.
                    let _ = self.recycle.try_send(used);
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                // The inflating thread ended: the end of the stream.
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.chunk.len() - self.pos);
        out[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Read the decompressed stream `source` of one object.
fn read_source<S: RecordSink + ?Sized>(
    source: Box<dyn Read + '_>,
    compressed: bool,
    options: &ReaderOptions,
    sink: &mut S,
) -> Result<ObjectSummary, ReadFailure> {
    let empty = ObjectSummary::empty();
    let mut reader = Reader {
        buf: Buffer::new(source, options, compressed),
        options,
        summary: ObjectSummary {
            compressed,
            ..empty
        },
        next_index: 0,
    };
    let result = reader.run(sink);
    reader.summary.bytes = reader.buf.total;
    let s = &mut reader.summary;
    if s.records == 0 && s.rejected == 0 && s.insights > 0 && s.skipped.is_none() {
        s.skipped = Some(format!(
            "CloudTrail Insights file ({} insight events: API call-rate and error-rate insights, not API calls; not evaluated)",
            s.insights
        ));
    }
    match result {
        Ok(()) => Ok(reader.summary),
        Err(error) => Err(ReadFailure {
            error,
            summary: reader.summary,
        }),
    }
}

/// The chunk buffer over the decompressed stream.
struct Buffer<'r> {
    source: Box<dyn Read + 'r>,
    data: Vec<u8>,
    /// Next unread byte.
    pos: usize,
    /// End of valid data.
    end: usize,
    /// Bytes dropped from the front of `data` so far (for offsets).
    dropped: u64,
    /// Decompressed bytes read in all.
    total: u64,
    eof: bool,
    cap: u64,
    max_record: usize,
    chunk: usize,
    compressed: bool,
    /// A read error met after some bytes of a fill: returned by the next
    /// fill, so the complete records before it are delivered first.
    failed: Option<ObjectError>,
}

impl<'r> Buffer<'r> {
    fn new(source: Box<dyn Read + 'r>, options: &ReaderOptions, compressed: bool) -> Self {
        Buffer {
            source,
            data: Vec::new(),
            pos: 0,
            end: 0,
            dropped: 0,
            total: 0,
            eof: false,
            cap: options.max_object_bytes,
            max_record: options.max_record_bytes.max(1024),
            chunk: options.chunk_bytes.max(4096),
            compressed,
            failed: None,
        }
    }

    fn offset(&self, at: usize) -> u64 {
        self.dropped + at as u64
    }

    fn rest(&self) -> &[u8] {
        &self.data[self.pos..self.end]
    }

    /// Read more data, keeping `data[pos..end]`. Returns false at end of input.
    fn fill(&mut self) -> Result<bool, ObjectError> {
        if let Some(e) = self.failed.take() {
            self.eof = true;
            return Err(e);
        }
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 {
            self.data.copy_within(self.pos..self.end, 0);
            self.dropped += self.pos as u64;
            self.end -= self.pos;
            self.pos = 0;
        }
        if self.data.len() < self.chunk {
            self.data.resize(self.chunk, 0);
        }
        if self.end == self.data.len() {
            // One value fills the buffer: grow, up to the record cap.
            if self.data.len() > self.max_record {
                return Err(ObjectError::RecordTooLarge {
                    offset: self.dropped,
                    max: self.max_record,
                });
            }
            let grown = (self.data.len() * 2).min(self.max_record + 1);
            self.data.resize(grown, 0);
        }
        let start_end = self.end;
        while self.end < self.data.len() {
            let want = (self.data.len() - self.end).min(((self.cap - self.total) + 1) as usize);
            let n = match self.source.read(&mut self.data[self.end..self.end + want]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    let error = if self.compressed {
                        ObjectError::Decompress {
                            bytes: self.total,
                            source,
                        }
                    } else {
                        ObjectError::Io {
                            bytes: self.total,
                            source,
                        }
                    };
                    if self.end > start_end {
                        // Hand out what was read; the error comes next.
                        self.failed = Some(error);
                        break;
                    }
                    return Err(error);
                }
            };
            if n == 0 {
                self.eof = true;
                break;
            }
            self.end += n;
            self.total += n as u64;
            if self.total > self.cap {
                return Err(ObjectError::TooLarge { cap: self.cap });
            }
        }
        Ok(self.end > start_end)
    }

    /// Skip white space (and a UTF-8 byte order mark at the very start).
    /// Returns the next byte, or None at end of input.
    fn peek_non_ws(&mut self) -> Result<Option<u8>, ObjectError> {
        loop {
            while self.pos < self.end {
                let c = self.data[self.pos];
                if matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                    self.pos += 1;
                } else if c == 0xEF && self.dropped == 0 && self.pos == 0 {
                    if self.end < 3 && self.fill()? {
                        continue;
                    }
                    if self.data[..self.end].starts_with(&[0xEF, 0xBB, 0xBF]) {
                        self.pos = 3;
                    } else {
                        return Ok(Some(c));
                    }
                } else {
                    return Ok(Some(c));
                }
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// Frame the JSON value starting at `pos`, reading more as needed.
    /// Returns its length, or the scan error.
    fn frame(&mut self, max_depth: usize) -> Result<Scan, ObjectError> {
        loop {
            match scan_value(self.rest(), max_depth) {
                Scan::Incomplete => {
                    if !self.fill()? {
                        return Ok(Scan::Incomplete);
                    }
                }
                other => return Ok(other),
            }
        }
    }

    /// Parse the object starting at `pos` (a `{`), reading more as needed.
    fn parse(
        &mut self,
        max_depth: usize,
    ) -> Result<Result<(usize, Fields), ParseError>, ObjectError> {
        loop {
            match parse_object(self.rest(), max_depth) {
                Err(ParseError::Incomplete) => {
                    if !self.fill()? {
                        return Ok(Err(ParseError::Incomplete));
                    }
                }
                other => return Ok(other),
            }
        }
    }

    /// Frame one line starting at `pos`; returns its length without the newline.
    fn line(&mut self) -> Result<usize, ObjectError> {
        let mut searched = 0;
        loop {
            if let Some(i) = memchr(b'\n', &self.rest()[searched..]) {
                return Ok(searched + i);
            }
            searched = self.end - self.pos;
            if !self.fill()? {
                return Ok(self.end - self.pos);
            }
        }
    }
}

fn describe_start(c: u8) -> &'static str {
    match c {
        b'[' => "an array",
        b'"' => "a string",
        b't' | b'f' => "a boolean",
        b'n' => "null",
        b'-' | b'0'..=b'9' => "a number",
        _ => "invalid JSON",
    }
}

fn describe_byte(c: u8) -> String {
    if c.is_ascii_graphic() {
        format!("'{}'", c as char)
    } else {
        format!("byte 0x{c:02x}")
    }
}

struct Reader<'o, 'r> {
    buf: Buffer<'r>,
    options: &'o ReaderOptions,
    summary: ObjectSummary,
    /// The index the next record gets (positions run on across documents).
    next_index: u64,
}

/// What to do with a framed value.
// Moved once per record; boxing the fields would allocate per record.
#[allow(clippy::large_enum_variant)]
enum Item {
    /// An object (`len` bytes at `pos`) and its fields.
    Object(usize, Fields),
    /// A value rejected before parsing, with its length and reason.
    Reject(usize, String),
}

impl Reader<'_, '_> {
    fn run<S: RecordSink + ?Sized>(&mut self, sink: &mut S) -> Result<(), ObjectError> {
        if self.buf.peek_non_ws()?.is_none() {
            return Err(ObjectError::Empty);
        }
        // Documents back to back: each one read in turn.
        let mut documents = 0u64;
        loop {
            let Some(c) = self.buf.peek_non_ws()? else {
                return Ok(());
            };
            let offset = self.buf.offset(self.buf.pos);
            match c {
                b'[' => {
                    if documents == 0 {
                        self.summary.format = Format::JsonArray;
                    }
                    self.buf.pos += 1;
                    self.array(sink)?;
                }
                b'{' => {
                    if self.first_key_is_records()? {
                        self.summary.format = Format::S3Delivery;
                        self.array(sink)?;
                        self.close_object()?;
                    } else if !self.stream(sink, documents == 0)? {
                        return Ok(());
                    }
                }
                c if documents == 0 => {
                    return Err(ObjectError::NotJson {
                        offset,
                        found: describe_byte(c),
                    })
                }
                c => {
                    return Err(ObjectError::Malformed {
                        offset,
                        reason: format!(
                            "{} after the end of JSON document {documents}, where another document or the end of the data was expected",
                            describe_byte(c)
                        ),
                    })
                }
            }
            documents += 1;
        }
    }

    /// After the `]` of a `{"Records":[…]` document: skip any other keys
    /// and the closing `}`.
    fn close_object(&mut self) -> Result<(), ObjectError> {
        loop {
            let Some(c) = self.buf.peek_non_ws()? else {
                return Err(ObjectError::Truncated {
                    offset: self.buf.offset(self.buf.pos),
                });
            };
            match c {
                b'}' => {
                    self.buf.pos += 1;
                    return Ok(());
                }
                b',' => {
                    self.buf.pos += 1;
                    // A key, `:`, and its value.
                    for part in 0..3 {
                        let Some(c) = self.buf.peek_non_ws()? else {
                            return Err(ObjectError::Truncated {
                                offset: self.buf.offset(self.buf.pos),
                            });
                        };
                        if part == 1 {
                            if c != b':' {
                                return Err(self.malformed_here("':' after a key"));
                            }
                            self.buf.pos += 1;
                            continue;
                        }
                        if part == 0 && c != b'"' {
                            return Err(self.malformed_here("a key after ','"));
                        }
                        match self.buf.frame(usize::MAX)? {
                            Scan::Complete(len) => self.buf.pos += len,
                            Scan::Incomplete => {
                                return Err(ObjectError::Truncated {
                                    offset: self.buf.offset(self.buf.pos),
                                })
                            }
                            _ => return Err(self.malformed_here("a JSON value")),
                        }
                    }
                }
                _ => return Err(self.malformed_here("',' or '}' after the Records list")),
            }
        }
    }

    fn malformed_here(&self, expected: &str) -> ObjectError {
        let c = self.buf.rest().first().copied().unwrap_or(b' ');
        ObjectError::Malformed {
            offset: self.buf.offset(self.buf.pos),
            reason: format!("expected {expected}, found {}", describe_byte(c)),
        }
    }

    /// At `{`: if the first key is "Records" and its value an array, move past
    /// the `[` and return true; otherwise leave `pos` at the `{`.
    fn first_key_is_records(&mut self) -> Result<bool, ObjectError> {
        const PREFIX: &[u8] = b"\"Records\"";
        // Enough bytes for `{`, white space, the key, `:` and `[`.
        while self.buf.rest().len() < 256 && self.buf.fill()? {}
        let rest = self.buf.rest();
        let mut i = 1;
        let skip_ws = |i: &mut usize| {
            while rest
                .get(*i)
                .is_some_and(|c| matches!(c, b' ' | b'\n' | b'\r' | b'\t'))
            {
                *i += 1;
            }
        };
        skip_ws(&mut i);
        if !rest[i..].starts_with(PREFIX) {
            return Ok(false);
        }
        i += PREFIX.len();
        skip_ws(&mut i);
        if rest.get(i) != Some(&b':') {
            return Ok(false);
        }
        i += 1;
        skip_ws(&mut i);
        match rest.get(i) {
            Some(b'[') => {
                self.buf.pos += i + 1;
                Ok(true)
            }
            Some(&c) => Err(ObjectError::Shape(format!(
                "\"Records\" holds {} where a list of records was expected",
                describe_start(c)
            ))),
            None => Err(ObjectError::Truncated {
                offset: self.buf.offset(self.buf.pos),
            }),
        }
    }

    /// Elements of an array, after its `[`.
    fn array<S: RecordSink + ?Sized>(&mut self, sink: &mut S) -> Result<(), ObjectError> {
        let mut index = 0u64;
        let base = self.next_index;
        loop {
            let Some(c) = self.buf.peek_non_ws()? else {
                return Err(ObjectError::Truncated {
                    offset: self.buf.offset(self.buf.pos),
                });
            };
            if c == b']' {
                self.buf.pos += 1;
                self.next_index = base + index;
                return Ok(());
            }
            if index > 0 {
                if c != b',' {
                    return Err(ObjectError::Malformed {
                        offset: self.buf.offset(self.buf.pos),
                        reason: format!(
                            "expected ',' or ']' after record {}, found {}",
                            index - 1,
                            describe_byte(c)
                        ),
                    });
                }
                self.buf.pos += 1;
                if self.buf.peek_non_ws()?.is_none() {
                    return Err(ObjectError::Truncated {
                        offset: self.buf.offset(self.buf.pos),
                    });
                }
            }
            let item = self.frame_value()?;
            self.deliver(item, base + index, sink);
            index += 1;
            self.next_index = base + index;
        }
    }

    /// Frame the value at `pos` (which is not white space): parse it if it
    /// is an object, otherwise find its end to reject it.
    /// Filling the buffer may move data, but `pos` stays at the value's start.
    fn frame_value(&mut self) -> Result<Item, ObjectError> {
        let max_depth = self.options.max_depth;
        if self.buf.rest().first() == Some(&b'{') {
            let reason = match self.buf.parse(max_depth)? {
                Ok((len, fields)) => return Ok(Item::Object(len, fields)),
                Err(ParseError::Incomplete) => {
                    return Err(ObjectError::Truncated {
                        offset: self.buf.offset(self.buf.pos),
                    })
                }
                Err(ParseError::TooDeep) => format!(
                    "JSON nested deeper than {max_depth} levels; CloudTrail records are far shallower"
                ),
                Err(ParseError::Invalid(at, what)) => {
                    format!("malformed JSON: {what} at byte {at} of the record")
                }
            };
            // Find the end regardless of depth (the scan does not recurse) to
            // reject this record alone.
            return match self.buf.frame(usize::MAX)? {
                Scan::Complete(len) => Ok(Item::Reject(len, reason)),
                Scan::Invalid(at) => Err(ObjectError::Malformed {
                    offset: self.buf.offset(self.buf.pos + at),
                    reason: format!("{reason}; the end of the record cannot be found"),
                }),
                _ => Err(ObjectError::Truncated {
                    offset: self.buf.offset(self.buf.pos),
                }),
            };
        }
        match self.buf.frame(usize::MAX)? {
            Scan::Complete(len) => {
                let found = describe_start(self.buf.rest()[0]);
                Ok(Item::Reject(
                    len,
                    format!("record is not a JSON object (found {found})"),
                ))
            }
            Scan::Incomplete => Err(ObjectError::Truncated {
                offset: self.buf.offset(self.buf.pos),
            }),
            _ => Err(ObjectError::Malformed {
                offset: self.buf.offset(self.buf.pos),
                reason: format!(
                    "unexpected {} where a record was expected",
                    describe_byte(self.buf.rest()[0])
                ),
            }),
        }
    }

    /// Hand over (or reject) the framed item at `pos`, then move past it.
    fn deliver<S: RecordSink + ?Sized>(&mut self, item: Item, index: u64, sink: &mut S) {
        let offset = self.buf.offset(self.buf.pos);
        let (len, outcome) = match item {
            Item::Reject(len, reason) => (len, Err(reason)),
            Item::Object(len, fields) => {
                let bytes = &self.buf.data[self.buf.pos..self.buf.pos + len];
                (len, deliver_object(bytes, &fields, sink, index))
            }
        };
        self.buf.pos += len;
        self.count(outcome, index, offset, sink);
    }

    /// Count what became of one record (and hand a reject to the sink).
    fn count<S: RecordSink + ?Sized>(
        &mut self,
        outcome: Result<Delivered, String>,
        index: u64,
        offset: u64,
        sink: &mut S,
    ) {
        match outcome {
            Ok(Delivered::Record) => self.summary.records += 1,
            Ok(Delivered::Repaired) => {
                self.summary.records += 1;
                self.summary.repaired += 1;
            }
            Ok(Delivered::Insight) => self.summary.insights += 1,
            Err(reason) => {
                self.summary.rejected += 1;
                sink.reject(RecordReject {
                    index,
                    offset,
                    reason,
                });
            }
        }
    }

    /// JSON lines or concatenated objects, starting at a `{`. Returns true
    /// when it read one document and the caller goes on with the next
    /// (a `{"Records":…}` whose key is not first, an export with embedded
    /// records); false when it read to the end.
    fn stream<S: RecordSink + ?Sized>(
        &mut self,
        sink: &mut S,
        first_document: bool,
    ) -> Result<bool, ObjectError> {
        // The first value decides: a digest file, an object holding Records
        // somewhere other than first, or records (one per line or not).
        let (first_len, fields) = match self.frame_value()? {
            Item::Object(len, fields) => (len, fields),
            Item::Reject(_, reason) => return Err(ObjectError::Shape(reason)),
        };
        let start = self.buf.pos;
        let first = &self.buf.data[start..start + first_len];
        if fields.spans[EVENT_NAME].is_none() {
            if fields.spans[DIGEST].is_some() && first_document {
                self.summary.format = Format::Digest;
                self.summary.skipped =
                    Some("CloudTrail digest file (integrity hashes, no events)".into());
                return Ok(false);
            }
            if let Some((span, Kind::Array)) = fields.spans[RECORDS] {
                self.summary.format = Format::S3Delivery;
                let array = &first[span.start as usize + 1..span.end as usize];
                let base = self.buf.offset(start) + u64::from(span.start) + 1;
                let mut inner = Reader {
                    buf: Buffer::new(Box::new(array), self.options, false),
                    options: self.options,
                    summary: self.summary.clone(),
                    next_index: self.next_index,
                };
                inner.buf.dropped = base;
                let result = inner.array(sink);
                self.summary = inner.summary;
                self.next_index = inner.next_index;
                self.buf.pos += first_len;
                return result.map(|()| true);
            }
            let keys: Vec<String> = fields
                .first_keys()
                .iter()
                .map(|k| {
                    String::from_utf8_lossy(&first[k.start as usize..k.end as usize]).into_owned()
                })
                .collect();
            let has = |name: &str| keys.iter().any(|k| k.trim_matches('"') == name);
            for (key, inner, format) in [
                ("Events", "CloudTrailEvent", Format::LookupEvents),
                ("logEvents", "message", Format::CloudWatchLogs),
            ] {
                if has(key) {
                    let value: serde_json::Value = serde_json::from_slice(first).map_err(|e| {
                        ObjectError::Shape(format!(
                            "an object with {key:?} that is not valid JSON: {e}"
                        ))
                    })?;
                    if first_document {
                        self.summary.format = format;
                    }
                    let offset = self.buf.offset(start);
                    self.buf.pos += first_len;
                    self.embedded(&value, key, inner, offset, sink)?;
                    return Ok(true);
                }
            }
            if fields.spans[crate::scan::DETAIL].is_none() {
                return Err(ObjectError::Shape(format!(
                    "the top-level object is neither a {{\"Records\":[…]}} file, a CloudTrail record, nor an EventBridge event (its keys: {})",
                    keys.join(", ")
                )));
            }
        }
        let lines = !first.contains(&b'\n') && {
            let after = &self.buf.data[start + first_len..self.buf.end];
            let ws = after
                .iter()
                .position(|c| !matches!(c, b' ' | b'\t' | b'\r'))
                .unwrap_or(after.len());
            ws == after.len() || after[ws] == b'\n'
        };
        if first_document {
            self.summary.format = if lines {
                Format::JsonLines
            } else {
                Format::Concatenated
            };
        }
        let mut index = self.next_index;
        self.deliver(Item::Object(first_len, fields), index, sink);
        index += 1;
        loop {
            self.next_index = index;
            let Some(c) = self.buf.peek_non_ws()? else {
                return Ok(false);
            };
            if lines {
                let len = self.buf.line()?;
                let line = &self.buf.rest()[..len];
                let trimmed = line.trim_ascii_end().len();
                let item = if c != b'{' {
                    Item::Reject(
                        len,
                        format!("line is not a JSON object (found {})", describe_start(c)),
                    )
                } else {
                    match parse_object(&line[..trimmed], self.options.max_depth) {
                        Ok((n, fields)) if n == trimmed => Item::Object(n, fields),
                        Ok(_) => Item::Reject(len, "unexpected text after the JSON object".into()),
                        Err(ParseError::TooDeep) => Item::Reject(
                            len,
                            format!("JSON nested deeper than {} levels", self.options.max_depth),
                        ),
                        Err(ParseError::Incomplete) => Item::Reject(
                            len,
                            "malformed JSON: the line ends inside the object".into(),
                        ),
                        Err(ParseError::Invalid(at, what)) => Item::Reject(
                            len,
                            format!("malformed JSON: {what} at byte {at} of the line"),
                        ),
                    }
                };
                let consumed = match &item {
                    Item::Object(n, _) => *n,
                    Item::Reject(n, _) => *n,
                };
                self.deliver(item, index, sink);
                // Move past the rest of the line.
                self.buf.pos += len - consumed;
            } else {
                if c != b'{' {
                    return Err(ObjectError::Malformed {
                        offset: self.buf.offset(self.buf.pos),
                        reason: format!("expected a JSON object, found {}", describe_byte(c)),
                    });
                }
                let item = self.frame_value()?;
                self.deliver(item, index, sink);
            }
            index += 1;
        }
    }
}

impl Reader<'_, '_> {
    /// The records embedded as JSON strings in an export's list: `key` is
    /// the list (`Events`, `logEvents`), `inner` the string member of each
    /// element (`CloudTrailEvent`, `message`). Offsets are the document's.
    fn embedded<S: RecordSink + ?Sized>(
        &mut self,
        value: &serde_json::Value,
        key: &str,
        inner: &str,
        offset: u64,
        sink: &mut S,
    ) -> Result<(), ObjectError> {
        let Some(items) = value.get(key).and_then(serde_json::Value::as_array) else {
            return Err(ObjectError::Shape(format!(
                "{key:?} holds no list of events"
            )));
        };
        for (i, item) in items.iter().enumerate() {
            let index = self.next_index;
            self.next_index += 1;
            let outcome = match item.get(inner).and_then(serde_json::Value::as_str) {
                Some(text) => deliver_text(text, sink, index),
                None => Err(format!(
                    "{key}[{i}] has no {inner:?} string holding a CloudTrail record"
                )),
            };
            self.count(outcome, index, offset, sink);
        }
        Ok(())
    }
}

/// What became of one object handed to the sink.
enum Delivered {
    /// A record.
    Record,
    /// A record with a string repaired (a lone surrogate escape).
    Repaired,
    /// A CloudTrail Insights event: read, not a record to evaluate.
    Insight,
}

/// Whether a record-less object is a CloudTrail Insights event.
fn is_insight(text: &str) -> bool {
    memchr::memmem::find(text.as_bytes(), b"AwsCloudTrailInsight").is_some()
        && memchr::memmem::find(text.as_bytes(), b"\"insightDetails\"").is_some()
}

/// A record whose text failed to read: try again with lone surrogate
/// escapes replaced (U+FFFD); `None` when that does not help.
fn deliver_repaired<S: RecordSink + ?Sized>(
    text: &str,
    sink: &mut S,
    index: u64,
) -> Option<Result<Delivered, String>> {
    let fixed = crate::record::repair_surrogates(text)?;
    let record = Record::parse(&fixed).ok()?;
    sink.record(index, &record);
    Some(Ok(Delivered::Repaired))
}

/// Read one record from its text (an export's embedded string).
fn deliver_text<S: RecordSink + ?Sized>(
    text: &str,
    sink: &mut S,
    index: u64,
) -> Result<Delivered, String> {
    match Record::parse(text) {
        Ok(record) => {
            sink.record(index, &record);
            Ok(Delivered::Record)
        }
        Err(RecordError::NotARecord) if is_insight(text) => Ok(Delivered::Insight),
        Err(e) => deliver_repaired(text, sink, index).unwrap_or_else(|| Err(describe(e))),
    }
}

fn describe(e: RecordError) -> String {
    match e {
        RecordError::NotARecord => RecordError::NotARecord.to_string(),
        RecordError::Parse(e) => format!("invalid record: {e}"),
    }
}

/// Check one parsed object's text and hand the record to the sink.
fn deliver_object<S: RecordSink + ?Sized>(
    bytes: &[u8],
    fields: &Fields,
    sink: &mut S,
    index: u64,
) -> Result<Delivered, String> {
    let text = simdutf8::basic::from_utf8(bytes).map_err(|_| {
        let at = std::str::from_utf8(bytes)
            .err()
            .map_or(0, |e| e.valid_up_to());
        format!("record is not valid UTF-8 (bad byte at offset {at} within the record)")
    })?;
    match Record::from_fields(text, fields) {
        Ok(record) => {
            sink.record(index, &record);
            Ok(Delivered::Record)
        }
        Err(RecordError::NotARecord) if is_insight(text) => Ok(Delivered::Insight),
        Err(e) => deliver_repaired(text, sink, index).unwrap_or_else(|| Err(describe(e))),
    }
}
