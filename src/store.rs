//! The embedded local store: one SQLite file holding correlation and
//! baseline state, the ledger of processed files, and findings.
//!
//! It implements the same contracts as the DynamoDB stores: state items are
//! versioned and written conditionally; findings are keyed by their
//! deterministic id, and a repeat increments a count instead of adding a
//! row.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};
use trailwarden_engine::state::{PutOutcome, StateItem, StateKey, StateWrite};
use trailwarden_engine::{Finding, FindingStore, Ledger, ObjectRef, StateStore, StoreError};

/// The default store file: `$TRAILWARDEN_STORE`, else
/// `<data dir>/trailwarden/trailwarden.db` (`~/.local/share` on Linux).
pub fn default_path() -> PathBuf {
    if let Some(p) = std::env::var_os("TRAILWARDEN_STORE") {
        return PathBuf::from(p);
    }
    dirs::data_local_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("trailwarden")
        .join("trailwarden.db")
}

/// A SQLite-backed store.
pub struct SqliteStore {
    conn: Connection,
    path: String,
}

fn err(path: &str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |e| StoreError(format!("local store {path}: {e}"))
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS state (
    rule TEXT NOT NULL,
    grp TEXT NOT NULL,
    version INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (rule, grp)
);
CREATE TABLE IF NOT EXISTS ledger (
    object TEXT NOT NULL PRIMARY KEY,
    version TEXT NOT NULL,
    records INTEGER NOT NULL,
    done_at TEXT NOT NULL,
    fingerprint TEXT
);
CREATE TABLE IF NOT EXISTS findings (
    id TEXT NOT NULL PRIMARY KEY,
    rule_id TEXT NOT NULL,
    level TEXT NOT NULL,
    event_time TEXT NOT NULL,
    account TEXT,
    principal TEXT,
    count INTEGER NOT NULL,
    first_stored TEXT NOT NULL,
    last_stored TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    note TEXT,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS findings_time ON findings (event_time);
CREATE INDEX IF NOT EXISTS findings_rule ON findings (rule_id, event_time);
CREATE INDEX IF NOT EXISTS findings_principal ON findings (principal, event_time);
CREATE INDEX IF NOT EXISTS findings_account ON findings (account, event_time);
"#;

impl SqliteStore {
    /// Open (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let name = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError(format!(
                    "local store {name}: cannot create {}: {e}",
                    dir.display()
                ))
            })?;
        }
        let conn = Connection::open(path).map_err(err(&name))?;
        Self::init(conn, name)
    }

    /// A store in memory (nothing kept after the process ends).
    pub fn in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(err("memory"))?;
        Self::init(conn, "memory".into())
    }

    fn init(conn: Connection, path: String) -> Result<Self, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err(&path))?;
        // A checkpoint every 10,000 pages (40 MB of log) rather than 1,000:
        // a scan writing many findings spent a fifth of its time in them.
        // A page cache of 8 MB (SQLite's default is 2 MB): finding ids are
        // random, so each insert lands at a random place of the id index,
        // and with the default cache most of those pages were read again
        // (16 MB was no faster in `cargo bench --bench throughput`'s
        // command modes, and cost the peak memory 10 MB more).
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=10000; PRAGMA cache_size=-8192;",
        )
        .map_err(err(&path))?;
        conn.execute_batch(SCHEMA).map_err(err(&path))?;
        migrate(&conn).map_err(err(&path))?;
        Ok(SqliteStore { conn, path })
    }

    /// Where the store is.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Run `f` in one transaction.
    pub fn transaction<T>(
        &mut self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(err(&path))?;
        let out = f(&tx).map_err(err(&path))?;
        tx.commit().map_err(err(&path))?;
        Ok(out)
    }

    /// Findings stored, newest event first, filtered.
    pub fn query_findings(&self, filter: &FindingFilter) -> Result<Vec<StoredFinding>, StoreError> {
        let mut sql = String::from(
            "SELECT body, count, status, note, first_stored, last_stored FROM findings WHERE 1=1",
        );
        let mut args: Vec<String> = Vec::new();
        let mut add = |clause: &str, value: &Option<String>| {
            if let Some(v) = value {
                args.push(v.clone());
                sql.push_str(&format!(" AND {clause} ?{}", args.len()));
            }
        };
        add("event_time >=", &filter.since);
        add("rule_id =", &filter.rule);
        add("principal =", &filter.principal);
        add("account =", &filter.account);
        add("id =", &filter.id);
        sql.push_str(" ORDER BY event_time DESC, id");
        let mut stmt = self.conn.prepare(&sql).map_err(err(&self.path))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, Option<String>>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, String>(5)?,
                ))
            })
            .map_err(err(&self.path))?;
        let mut out = Vec::new();
        for row in rows {
            let (body, count, status, note, first, last) = row.map_err(err(&self.path))?;
            let finding: Finding = serde_json::from_str(&body).map_err(|e| {
                StoreError(format!("local store {}: bad finding row: {e}", self.path))
            })?;
            if filter.min_level.is_some_and(|l| finding.level < l) {
                continue;
            }
            out.push(StoredFinding {
                finding,
                times_seen: count as u64,
                status,
                status_note: note,
                first_stored: first,
                last_stored: last,
            });
        }
        Ok(out)
    }

    /// Set a finding's status (open, acknowledged, resolved) and note.
    pub fn set_status(
        &mut self,
        id: &str,
        status: &str,
        note: Option<&str>,
    ) -> Result<bool, StoreError> {
        let n = self
            .conn
            .execute(
                "UPDATE findings SET status = ?1, note = COALESCE(?2, note) WHERE id = ?3",
                params![status, note, id],
            )
            .map_err(err(&self.path))?;
        Ok(n == 1)
    }

    /// Delete expired state items (by event time, against `now_secs`).
    pub fn purge_expired(&mut self, now_secs: i64) -> Result<usize, StoreError> {
        self.conn
            .execute("DELETE FROM state WHERE expires_at < ?1", params![now_secs])
            .map_err(err(&self.path))
    }
}

/// Bring a store written by an earlier version up to [`SCHEMA`]: tables
/// are created by the schema itself (`IF NOT EXISTS`); columns added since
/// are added here, empty. A ledger entry without a fingerprint (written
/// before fingerprints were kept) matches no rule set, so its object is
/// read again once.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let has_column = |table: &str, column: &str| -> rusqlite::Result<bool> {
        let mut stmt = conn.prepare(&format!("PRAGMA table_info({table})"))?;
        let names = stmt.query_map([], |r| r.get::<_, String>(1))?;
        for name in names {
            if name? == column {
                return Ok(true);
            }
        }
        Ok(false)
    };
    if !has_column("ledger", "fingerprint")? {
        conn.execute_batch("ALTER TABLE ledger ADD COLUMN fingerprint TEXT")?;
    }
    Ok(())
}

/// What the ledger says of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerEntry {
    /// Not processed at this version.
    New,
    /// Processed at this version with the same rule-set fingerprint.
    Done,
    /// Processed at this version, but with other rules or another policy
    /// (or before fingerprints were recorded).
    DoneWithOtherRules,
}

impl SqliteStore {
    /// The ledger entry of `object` for a scan whose rules and policy have
    /// `fingerprint`.
    pub fn ledger_entry(
        &mut self,
        object: &ObjectRef,
        fingerprint: &str,
    ) -> Result<LedgerEntry, StoreError> {
        let row: Option<(String, Option<String>)> = self
            .conn
            .prepare_cached("SELECT version, fingerprint FROM ledger WHERE object = ?1")
            .and_then(|mut stmt| {
                stmt.query_row(params![object.id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(err(&self.path))?;
        Ok(match row {
            Some((version, fp)) if version == object.version => {
                if fp.as_deref() == Some(fingerprint) {
                    LedgerEntry::Done
                } else {
                    LedgerEntry::DoneWithOtherRules
                }
            }
            _ => LedgerEntry::New,
        })
    }

    /// Record that `object` was processed to its end by rules and policy
    /// with `fingerprint` (`None`: not known).
    pub fn mark_done_with(
        &mut self,
        object: &ObjectRef,
        records: u64,
        fingerprint: Option<&str>,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO ledger (object, version, records, done_at, fingerprint) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(object) DO UPDATE SET version = excluded.version, records = excluded.records,
                 done_at = excluded.done_at, fingerprint = excluded.fingerprint",
                params![object.id, object.version, records as i64, now(), fingerprint],
            )
            .map_err(err(&self.path))?;
        Ok(())
    }
}

/// Which findings to list.
#[derive(Debug, Default, Clone)]
pub struct FindingFilter {
    /// Event time at or after (RFC 3339).
    pub since: Option<String>,
    /// At or above this level.
    pub min_level: Option<trailwarden_engine::Level>,
    /// Rule id.
    pub rule: Option<String>,
    /// Principal ARN.
    pub principal: Option<String>,
    /// Account id.
    pub account: Option<String>,
    /// One finding id.
    pub id: Option<String>,
}

/// A finding as stored, with its bookkeeping.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoredFinding {
    /// The finding.
    #[serde(flatten)]
    pub finding: Finding,
    /// How many times it was produced.
    pub times_seen: u64,
    /// open, acknowledged or resolved.
    pub status: String,
    /// The note given with the status.
    pub status_note: Option<String>,
    /// When it was first stored (wall clock).
    pub first_stored: String,
    /// When it was last produced (wall clock).
    pub last_stored: String,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl StateStore for SqliteStore {
    fn get_many(&mut self, keys: &[StateKey]) -> Result<Vec<Option<StateItem>>, StoreError> {
        let path = self.path.clone();
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT version, expires_at, body FROM state WHERE rule = ?1 AND grp = ?2",
            )
            .map_err(err(&path))?;
        keys.iter()
            .map(|k| {
                let row = stmt
                    .query_row(params![k.rule, k.group], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, String>(2)?,
                        ))
                    })
                    .optional()
                    .map_err(err(&path))?;
                row.map(|(version, expires_at, body)| {
                    let body = serde_json::from_str(&body).map_err(|e| {
                        StoreError(format!(
                            "local store {path}: unreadable state item {k:?}: {e}"
                        ))
                    })?;
                    Ok(StateItem {
                        key: k.clone(),
                        version: version as u64,
                        expires_at,
                        body,
                    })
                })
                .transpose()
            })
            .collect()
    }

    fn put_many(&mut self, writes: &[StateWrite]) -> Result<Vec<PutOutcome>, StoreError> {
        self.transaction(|tx| {
            let mut out = Vec::with_capacity(writes.len());
            for w in writes {
                let body = serde_json::to_string(&w.item.body).expect("state serialises");
                let k = &w.item.key;
                let n = match w.expected {
                    None => tx.execute(
                        "INSERT OR IGNORE INTO state (rule, grp, version, expires_at, body) VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![k.rule, k.group, w.item.version as i64, w.item.expires_at, body],
                    )?,
                    Some(expected) => tx.execute(
                        "UPDATE state SET version = ?3, expires_at = ?4, body = ?5 WHERE rule = ?1 AND grp = ?2 AND version = ?6",
                        params![k.rule, k.group, w.item.version as i64, w.item.expires_at, body, expected as i64],
                    )?,
                };
                out.push(if n == 1 {
                    PutOutcome::Stored
                } else {
                    PutOutcome::Conflict
                });
            }
            Ok(out)
        })
    }

    fn scan_rule(&mut self, rule: &str) -> Result<Vec<StateItem>, StoreError> {
        let path = self.path.clone();
        let mut stmt = self
            .conn
            .prepare(
                "SELECT grp, version, expires_at, body FROM state WHERE rule = ?1 ORDER BY grp",
            )
            .map_err(err(&path))?;
        let rows = stmt
            .query_map(params![rule], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(err(&path))?;
        let mut out = Vec::new();
        for row in rows {
            let (group, version, expires_at, body) = row.map_err(err(&path))?;
            let body = serde_json::from_str(&body).map_err(|e| {
                StoreError(format!("local store {path}: unreadable state item: {e}"))
            })?;
            out.push(StateItem {
                key: StateKey {
                    rule: rule.to_owned(),
                    group,
                },
                version: version as u64,
                expires_at,
                body,
            });
        }
        Ok(out)
    }
}

impl Ledger for SqliteStore {
    fn is_done(&mut self, object: &ObjectRef) -> Result<bool, StoreError> {
        let version: Option<String> = self
            .conn
            .query_row(
                "SELECT version FROM ledger WHERE object = ?1",
                params![object.id],
                |r| r.get(0),
            )
            .optional()
            .map_err(err(&self.path))?;
        Ok(version.as_deref() == Some(object.version.as_str()))
    }

    /// Without a fingerprint: the next scan with a fingerprint reads the
    /// object again.
    fn mark_done(&mut self, object: &ObjectRef, records: u64) -> Result<(), StoreError> {
        self.mark_done_with(object, records, None)
    }
}

impl SqliteStore {
    /// Store a batch of findings in one transaction, with cached
    /// statements. Each id is the key: a repeat (within the batch or of a
    /// stored finding) increments the stored count and last-seen time
    /// instead of adding a row. Returns, per finding, whether it was new.
    pub fn put_findings(&mut self, findings: &[Finding]) -> Result<Vec<bool>, StoreError> {
        let bodies: Vec<String> = findings
            .iter()
            .map(|f| serde_json::to_string(f).expect("finding serialises"))
            .collect();
        self.put_encoded(findings.iter().zip(bodies.iter().map(String::as_str)))
    }

    /// [`SqliteStore::put_findings`] with each finding's JSON text given
    /// (`serde_json::to_string(finding)`, kept as its body).
    pub fn put_encoded<'f>(
        &mut self,
        findings: impl ExactSizeIterator<Item = (&'f Finding, &'f str)>,
    ) -> Result<Vec<bool>, StoreError> {
        if findings.len() == 0 {
            return Ok(Vec::new());
        }
        let now = now();
        self.transaction(|tx| {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO findings (id, rule_id, level, event_time, account, principal, count, first_stored, last_stored, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?7, ?8)",
            )?;
            let mut repeat = tx.prepare_cached(
                "UPDATE findings SET count = count + 1, last_stored = ?2 WHERE id = ?1",
            )?;
            let mut out = Vec::with_capacity(findings.len());
            for (f, body) in findings {
                let inserted = insert.execute(params![
                    f.id,
                    f.rule_id,
                    f.level.as_str(),
                    f.event_time,
                    f.account,
                    f.principal,
                    now,
                    body
                ])?;
                if inserted == 0 {
                    repeat.execute(params![f.id, now])?;
                }
                out.push(inserted == 1);
            }
            Ok(out)
        })
    }
}

impl FindingStore for SqliteStore {
    fn put_finding(&mut self, f: &Finding) -> Result<bool, StoreError> {
        Ok(self.put_findings(std::slice::from_ref(f))?[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trailwarden_engine::state::{Body, MetaBody};

    #[test]
    fn state_writes_are_conditional_on_version() {
        let mut s = SqliteStore::in_memory().unwrap();
        let key = StateKey {
            rule: "r".into(),
            group: "g".into(),
        };
        let item = |version| StateItem {
            key: key.clone(),
            version,
            expires_at: 10,
            body: Body::Meta(MetaBody {
                first_event: version as i64,
            }),
        };
        let w = |version, expected| StateWrite {
            item: item(version),
            expected,
        };
        assert_eq!(s.put_many(&[w(1, None)]).unwrap(), [PutOutcome::Stored]);
        assert_eq!(
            s.put_many(&[w(1, None)]).unwrap(),
            [PutOutcome::Conflict],
            "exists already"
        );
        assert_eq!(
            s.put_many(&[w(3, Some(2))]).unwrap(),
            [PutOutcome::Conflict],
            "stale version"
        );
        assert_eq!(s.put_many(&[w(2, Some(1))]).unwrap(), [PutOutcome::Stored]);
        assert_eq!(
            s.get_many(std::slice::from_ref(&key)).unwrap()[0],
            Some(item(2))
        );
        assert_eq!(s.scan_rule("r").unwrap().len(), 1);
        assert_eq!(s.purge_expired(11).unwrap(), 1);
    }

    #[test]
    fn the_ledger_keeps_the_rule_set_fingerprint_and_migrates_old_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE ledger (object TEXT NOT NULL PRIMARY KEY, version TEXT NOT NULL, records INTEGER NOT NULL, done_at TEXT NOT NULL);
                 INSERT INTO ledger VALUES ('/logs/a.json', '10:20', 3, '2026-11-01T00:00:00Z');",
            )
            .unwrap();
        }
        let mut s = SqliteStore::open(&path).unwrap();
        let obj = ObjectRef {
            id: "/logs/a.json".into(),
            version: "10:20".into(),
        };
        assert!(s.is_done(&obj).unwrap(), "the old entry is kept");
        assert_eq!(
            s.ledger_entry(&obj, "fp1").unwrap(),
            LedgerEntry::DoneWithOtherRules,
            "an entry without a fingerprint is read again"
        );
        s.mark_done_with(&obj, 3, Some("fp1")).unwrap();
        assert_eq!(s.ledger_entry(&obj, "fp1").unwrap(), LedgerEntry::Done);
        assert_eq!(
            s.ledger_entry(&obj, "fp2").unwrap(),
            LedgerEntry::DoneWithOtherRules
        );
        let changed = ObjectRef {
            version: "11:30".into(),
            ..obj.clone()
        };
        assert_eq!(s.ledger_entry(&changed, "fp1").unwrap(), LedgerEntry::New);
        drop(s);
        let mut s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.ledger_entry(&obj, "fp1").unwrap(), LedgerEntry::Done);
    }

    #[test]
    fn ledger_and_findings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/store.db");
        let mut s = SqliteStore::open(&path).unwrap();
        let obj = ObjectRef {
            id: "/logs/a.json.gz".into(),
            version: "10:20".into(),
        };
        assert!(!s.is_done(&obj).unwrap());
        s.mark_done(&obj, 5).unwrap();
        assert!(s.is_done(&obj).unwrap());
        let changed = ObjectRef {
            version: "11:30".into(),
            ..obj.clone()
        };
        assert!(
            !s.is_done(&changed).unwrap(),
            "a changed file is read again"
        );
        drop(s);
        let mut s = SqliteStore::open(&path).unwrap();
        assert!(s.is_done(&obj).unwrap(), "kept on disk");
        let f: Finding = serde_json::from_value(serde_json::json!({
            "id": "tw-1", "rule_id": "r", "rule_title": "t", "level": "high", "tags": [],
            "description": "", "event_time": "2026-11-02T08:00:00Z", "account": "1", "region": null,
            "principal": "p", "principal_type": null, "access_key_id": null, "source_ip": null,
            "user_agent": null, "event_source": "s", "event_name": "n", "error_code": null,
            "event_ids": ["e"], "count": 1
        }))
        .unwrap();
        assert!(s.put_finding(&f).unwrap());
        assert!(!s.put_finding(&f).unwrap());
        let rows = s.query_findings(&FindingFilter::default()).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].times_seen, 2);
        let other = Finding {
            id: "tw-2".into(),
            ..f.clone()
        };
        assert_eq!(
            s.put_findings(&[f.clone(), other.clone(), other]).unwrap(),
            [false, true, false],
            "a batch counts repeats within itself and of stored findings"
        );
        assert!(s.put_findings(&[]).unwrap().is_empty());
        let rows = s.query_findings(&FindingFilter::default()).unwrap();
        let seen: Vec<(&str, u64)> = rows
            .iter()
            .map(|r| (r.finding.id.as_str(), r.times_seen))
            .collect();
        assert_eq!(seen, [("tw-1", 3), ("tw-2", 2)]);
        assert!(s
            .set_status("tw-1", "acknowledged", Some("looking"))
            .unwrap());
        assert!(!s.set_status("tw-nope", "acknowledged", None).unwrap());
        let rows = s
            .query_findings(&FindingFilter {
                principal: Some("p".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(rows[0].status, "acknowledged");
    }
}
