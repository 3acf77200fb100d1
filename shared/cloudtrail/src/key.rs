//! What an S3 object key says about a CloudTrail object.
//!
//! CloudTrail writes log files under
//! `[prefix/]AWSLogs/[o-orgid/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/NAME.json.gz`,
//! digest files under `…/CloudTrail-Digest/…`, Insights under
//! `…/CloudTrail-Insight/…`, and a `CloudTrail/…/ConfigWritabilityCheckFile`
//! probe when a trail is created.

/// The kind of object a key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A CloudTrail log file with records.
    Log,
    /// A CloudTrail Insights file (records of Insight events).
    Insight,
    /// A digest file (hashes, no records).
    Digest,
    /// The probe CloudTrail writes when checking it may write to a bucket.
    WritabilityCheck,
    /// Anything else.
    Other,
}

/// The parts of a CloudTrail key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailKey<'a> {
    /// What the object is.
    pub kind: KeyKind,
    /// The organisation id for organisation trails (`o-…`).
    pub org_id: Option<&'a str>,
    /// The account the logs are for.
    pub account: Option<&'a str>,
    /// The region the logs are for.
    pub region: Option<&'a str>,
    /// `YYYY/MM/DD` of delivery, as written in the key.
    pub date: Option<&'a str>,
}

impl KeyKind {
    /// Whether objects of this kind hold records to evaluate.
    pub fn has_records(self) -> bool {
        matches!(self, KeyKind::Log | KeyKind::Insight)
    }
}

/// Classify a key (already URL-decoded).
pub fn parse_key(key: &str) -> TrailKey<'_> {
    let mut out = TrailKey {
        kind: KeyKind::Other,
        org_id: None,
        account: None,
        region: None,
        date: None,
    };
    let parts: Vec<&str> = key.split('/').collect();
    let Some(logs) = parts.iter().position(|p| *p == "AWSLogs") else {
        return out;
    };
    let mut i = logs + 1;
    if parts.get(i).is_some_and(|p| p.starts_with("o-")) {
        out.org_id = parts.get(i).copied();
        i += 1;
    }
    out.account = parts
        .get(i)
        .copied()
        .filter(|a| a.len() == 12 && a.bytes().all(|c| c.is_ascii_digit()));
    if out.account.is_none() {
        return out;
    }
    let service = parts.get(i + 1).copied().unwrap_or("");
    let name = parts.last().copied().unwrap_or("");
    out.kind = match service {
        "CloudTrail" if name == "ConfigWritabilityCheckFile" => KeyKind::WritabilityCheck,
        "CloudTrail" => KeyKind::Log,
        "CloudTrail-Insight" => KeyKind::Insight,
        "CloudTrail-Digest" => KeyKind::Digest,
        _ => KeyKind::Other,
    };
    if out.kind == KeyKind::Other {
        return out;
    }
    out.region = parts.get(i + 2).copied();
    if parts.len() >= i + 7 {
        let start = key
            .match_indices('/')
            .nth(i + 2)
            .map(|(p, _)| p + 1)
            .unwrap_or(0);
        let date = &key[start..];
        if date.len() >= 10 {
            out.date = Some(&date[..10]);
        }
    }
    if out.kind.has_records() && !(name.ends_with(".json.gz") || name.ends_with(".json")) {
        out.kind = KeyKind::Other;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_trail_log_key() {
        let k = parse_key("AWSLogs/o-abc123/111122223333/CloudTrail/eu-west-1/2026/11/02/111122223333_CloudTrail_eu-west-1_20261102T0805Z_abc.json.gz");
        assert_eq!(k.kind, KeyKind::Log);
        assert_eq!(k.org_id, Some("o-abc123"));
        assert_eq!(k.account, Some("111122223333"));
        assert_eq!(k.region, Some("eu-west-1"));
        assert_eq!(k.date, Some("2026/11/02"));
    }

    #[test]
    fn prefixed_account_trail_and_other_kinds() {
        let k = parse_key("logs/AWSLogs/111122223333/CloudTrail/us-east-1/2023/07/10/x.json.gz");
        assert_eq!((k.kind, k.org_id), (KeyKind::Log, None));
        let d = parse_key("AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2023/07/10/x.json.gz");
        assert_eq!(d.kind, KeyKind::Digest);
        let w = parse_key("AWSLogs/111122223333/CloudTrail/ConfigWritabilityCheckFile");
        assert_eq!(w.kind, KeyKind::WritabilityCheck);
        assert_eq!(
            parse_key("AWSLogs/111122223333/vpcflowlogs/x.gz").kind,
            KeyKind::Other
        );
        assert_eq!(parse_key("random/key.json").kind, KeyKind::Other);
        assert_eq!(
            parse_key("AWSLogs/notanaccount/CloudTrail/x.json.gz").kind,
            KeyKind::Other
        );
    }
}
