//! CloudTrail records and the readers that stream them.
//!
//! - [`Record`]: one CloudTrail event, borrowing its text from the read buffer,
//!   with the common fields parsed and nested objects parsed on demand.
//! - [`read_object`]: streams any CloudTrail object (S3 delivery file, JSON
//!   lines, JSON array, EventBridge envelopes; gzip or plain) into a
//!   [`RecordSink`], with bounded memory and per-record rejects.
//! - [`key`]: what an S3 key under `AWSLogs/` says about the object.
//!
//! This crate is pure: no AWS SDK, no async runtime, no rule logic.

pub mod key;
pub mod reader;
pub mod record;
mod scan;

pub use reader::{
    read_object, read_object_pipelined, Format, ObjectError, ObjectSummary, ReadFailure,
    ReaderOptions, RecordReject, RecordSink,
};
pub use record::{
    is_canonical_event_time, parse_event_time, Identity, Layout, Lookup, Record, RecordError, Str,
    NESTED_FIELDS, PARSE_MAX_DEPTH,
};
