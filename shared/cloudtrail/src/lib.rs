//! CloudTrail records.
