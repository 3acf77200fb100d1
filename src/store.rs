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
    rules: RuleRefs,
    notes: Vec<String>,
}

fn err(path: &str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |e| StoreError(format!("local store {path}: {e}"))
}

/// The schema as it was before versions were kept (SQLite's
/// `user_version` 0): version 1 is this, made idempotent, so that a store
/// written then is taken over as it is.
const SCHEMA_V1: &str = r#"
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

/// Version 2: findings stored lean. A finding's rule title, tags and
/// description (the same for every finding of a rule, often half its
/// text) are kept once per rule in `finding_rules`, not in every row; a
/// row is found by `key`, a 64-bit integer from its id (the id is a
/// SHA-256 digest, see [`trailwarden_engine::finding_id`]), in a small
/// index instead of one on the id's text; and the query indexes are the
/// event time and the rule. Filters on principal or account read the
/// rows of the time range asked for.
const SCHEMA_V2: &str = r#"
DROP INDEX IF EXISTS findings_time;
DROP INDEX IF EXISTS findings_rule;
DROP INDEX IF EXISTS findings_principal;
DROP INDEX IF EXISTS findings_account;
ALTER TABLE findings RENAME TO findings_v1;
CREATE TABLE finding_rules (
    ref INTEGER PRIMARY KEY,
    rule_id TEXT NOT NULL,
    meta TEXT NOT NULL,
    UNIQUE (rule_id, meta)
);
CREATE TABLE findings (
    key INTEGER NOT NULL,
    id TEXT NOT NULL,
    rule_ref INTEGER NOT NULL REFERENCES finding_rules (ref),
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
CREATE INDEX findings_v2_key ON findings (key);
CREATE INDEX findings_v2_time ON findings (event_time);
CREATE INDEX findings_v2_rule ON findings (rule_ref, event_time);
CREATE TABLE findings_unreadable AS SELECT * FROM findings_v1 WHERE 0;
"#;

/// Indexes of version 1's findings table. A binary from before schema
/// versions runs [`SCHEMA_V1`] on every open: on a version-2 store it
/// makes some of them on the new table (it then fails at
/// `findings_rule`, whose column is gone), so they are dropped whenever
/// found.
const V1_INDEXES: [&str; 4] = [
    "findings_time",
    "findings_rule",
    "findings_principal",
    "findings_account",
];

/// Version 3: the counter of how many times a finding was made is named
/// `times_seen`, as in the command's JSON and the deployment's table (a
/// finding's own `count` is of the events that made it).
const SCHEMA_V3: &str = "ALTER TABLE findings RENAME COLUMN count TO times_seen;";

/// The latest schema version: the number of steps in [`migrations`].
const SCHEMA_VERSION: i64 = 3;

/// The store's schema versions, oldest first: a store is brought to the
/// last when opened, all pending steps in one transaction (so an upgrade
/// is whole or not at all; SQLite's `user_version` says which version a
/// store is at). Add a step for every change; never edit one.
fn migrations() -> rusqlite_migration::Migrations<'static> {
    use rusqlite_migration::{Migrations, M};
    Migrations::new(vec![
        M::up_with_hook(SCHEMA_V1, |tx: &rusqlite::Transaction<'_>| {
            // A ledger from before fingerprints: the column added, empty
            // (an entry without one matches no rule set, so its object is
            // read again once).
            let has_fingerprint: bool = tx.query_row(
                "SELECT COUNT(*) FROM pragma_table_info('ledger') WHERE name = 'fingerprint'",
                [],
                |r| r.get::<_, i64>(0).map(|n| n > 0),
            )?;
            if !has_fingerprint {
                tx.execute_batch("ALTER TABLE ledger ADD COLUMN fingerprint TEXT")?;
            }
            Ok(())
        }),
        M::up_with_hook(SCHEMA_V2, |tx: &rusqlite::Transaction<'_>| {
            copy_v1_findings(tx).map_err(rusqlite_migration::HookError::Hook)?;
            tx.execute_batch("DROP TABLE findings_v1")?;
            Ok(())
        }),
        M::up(SCHEMA_V3),
    ])
}

/// Version 2's hook: every version-1 finding row rewritten lean. A row
/// whose body is not a finding (written by hand, or damaged) is kept as
/// it was in `findings_unreadable`, and [`SqliteStore::open`] says so.
/// Errors name the row.
fn copy_v1_findings(tx: &rusqlite::Transaction<'_>) -> Result<(), String> {
    let fail = |what: String| move |e: rusqlite::Error| format!("{what}: {e}");
    let mut rules = RuleRefs::default();
    let mut read = tx
        .prepare(
            "SELECT rowid, id, body, count, first_stored, last_stored, status, note FROM findings_v1 ORDER BY rowid",
        )
        .map_err(fail("reading the findings of version 1".into()))?;
    let mut rows = read
        .query([])
        .map_err(fail("reading the findings of version 1".into()))?;
    while let Some(row) = rows
        .next()
        .map_err(fail("reading the findings of version 1".into()))?
    {
        let rowid: i64 = row.get(0).map_err(fail("a findings row".into()))?;
        let id: String = row.get(1).unwrap_or_default();
        let place = format!("findings row {rowid} (id {id:?})");
        let body: String = row.get(2).map_err(fail(place.clone()))?;
        let Ok(finding) = serde_json::from_str::<Finding>(&body) else {
            tx.execute(
                "INSERT INTO findings_unreadable SELECT * FROM findings_v1 WHERE rowid = ?1",
                params![rowid],
            )
            .map_err(fail(place))?;
            continue;
        };
        let rule_ref = rules.get(tx, &finding).map_err(fail(place.clone()))?;
        let copy = |row: &rusqlite::Row<'_>| -> rusqlite::Result<usize> {
            tx.prepare_cached(
                "INSERT INTO findings (key, id, rule_ref, level, event_time, account, principal, count, first_stored, last_stored, status, note, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?
            .execute(params![
                finding_key(&finding.id),
                finding.id,
                rule_ref,
                finding.level.as_str(),
                finding.event_time,
                finding.account,
                finding.principal,
                row.get::<_, i64>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, String>(5)?,
                row.get::<_, String>(6)?,
                row.get::<_, Option<String>>(7)?,
                lean_body(&finding),
            ])
        };
        copy(row).map_err(fail(place))?;
    }
    Ok(())
}

/// The integer a finding row is found by: the first 64 bits of its id
/// (`tw-` and 32 hexadecimal digits of a SHA-256 digest); any other id is
/// hashed. Not unique by construction: a lookup compares the id too.
pub fn finding_key(id: &str) -> i64 {
    let hex = id.strip_prefix("tw-").unwrap_or(id);
    match hex.get(..16).map(|h| u64::from_str_radix(h, 16)) {
        Some(Ok(n)) if hex.len() == 32 => n as i64,
        _ => {
            use sha2::{Digest, Sha256};
            let digest = Sha256::digest(id.as_bytes());
            i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
        }
    }
}

/// A finding's rule title, tags and description: stored once per rule
/// (and per text, so a finding keeps the words its rule had then).
#[derive(serde::Serialize, serde::Deserialize)]
struct RuleMeta {
    rule_title: String,
    tags: Vec<String>,
    description: String,
}

/// A finding as its row's body keeps it: every field but the rule's
/// title, tags and description. A field added to [`Finding`] must be
/// added here (`lean_bodies_keep_every_field` fails until it is).
#[derive(serde::Serialize)]
struct LeanBody<'f> {
    id: &'f str,
    rule_id: &'f str,
    level: trailwarden_engine::Level,
    event_time: &'f str,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_event_time: &'f Option<String>,
    account: &'f Option<String>,
    region: &'f Option<String>,
    principal: &'f Option<String>,
    principal_type: &'f Option<String>,
    access_key_id: &'f Option<String>,
    source_ip: &'f Option<String>,
    user_agent: &'f Option<String>,
    event_source: &'f str,
    event_name: &'f str,
    error_code: &'f Option<String>,
    event_ids: &'f [String],
    count: u64,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    group: &'f std::collections::BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: &'f Option<String>,
}

fn lean_body(f: &Finding) -> String {
    serde_json::to_string(&LeanBody {
        id: &f.id,
        rule_id: &f.rule_id,
        level: f.level,
        event_time: &f.event_time,
        last_event_time: &f.last_event_time,
        account: &f.account,
        region: &f.region,
        principal: &f.principal,
        principal_type: &f.principal_type,
        access_key_id: &f.access_key_id,
        source_ip: &f.source_ip,
        user_agent: &f.user_agent,
        event_source: &f.event_source,
        event_name: &f.event_name,
        error_code: &f.error_code,
        event_ids: &f.event_ids,
        count: f.count,
        group: &f.group,
        note: &f.note,
    })
    .expect("a finding serialises")
}

/// [`lean_body`] cut from the finding's JSON text (`serde_json::to_string`
/// of the [`Finding`], which the command has made already to write it
/// out): the rule's title, tags and description taken out, no second
/// serialisation. `,"rule_title":` cannot occur inside a string value: a
/// quote inside one is escaped, so `"rule_title"` with bare quotes there
/// would need a string to end just before `rule_title`, and a string
/// ends only before `,`, `]`, `}` or `:`. So the first `,"rule_title":`
/// and `,"event_time":` are the fields' own (`Finding` serialises its
/// fields in declaration order; a key `event_time` inside `group` comes
/// after the field). Anything else falls back to [`lean_body`].
fn lean_body_from_json(f: &Finding, json: &str) -> String {
    let title = memchr::memmem::find(json.as_bytes(), br#","rule_title":"#);
    let time = memchr::memmem::find(json.as_bytes(), br#","event_time":"#);
    match (title, time) {
        (Some(a), Some(b)) if a < b => {
            let level = f.level.as_str();
            let mut out = String::with_capacity(json.len() - (b - a) + 20);
            out.push_str(&json[..a]);
            out.push_str(r#","level":""#);
            out.push_str(level);
            out.push('"');
            out.push_str(&json[b..]);
            out
        }
        _ => lean_body(f),
    }
}

/// A stored row's finding: its lean body with its rule's title, tags and
/// description put back.
fn finding_from_row(body: &str, meta: &str) -> Result<Finding, serde_json::Error> {
    let mut value: serde_json::Map<String, serde_json::Value> = serde_json::from_str(body)?;
    let meta: serde_json::Map<String, serde_json::Value> = serde_json::from_str(meta)?;
    value.extend(meta);
    serde_json::from_value(serde_json::Value::Object(value))
}

/// The `finding_rules` rows this connection has seen, by rule id: each
/// finding's rule text compared in memory, a row read or added only for
/// a text not seen before.
#[derive(Default)]
struct RuleRefs(std::collections::HashMap<String, Vec<(RuleMeta, i64)>>);

impl RuleRefs {
    fn get(&mut self, tx: &rusqlite::Connection, f: &Finding) -> rusqlite::Result<i64> {
        let known = self.0.entry(f.rule_id.clone()).or_default();
        if let Some((_, r)) = known.iter().find(|(m, _)| {
            m.rule_title == f.rule_title && m.tags == f.tags && m.description == f.description
        }) {
            return Ok(*r);
        }
        let meta = RuleMeta {
            rule_title: f.rule_title.clone(),
            tags: f.tags.clone(),
            description: f.description.clone(),
        };
        let text = serde_json::to_string(&meta).expect("rule text serialises");
        tx.prepare_cached("INSERT OR IGNORE INTO finding_rules (rule_id, meta) VALUES (?1, ?2)")?
            .execute(params![f.rule_id, text])?;
        let r = tx
            .prepare_cached("SELECT ref FROM finding_rules WHERE rule_id = ?1 AND meta = ?2")?
            .query_row(params![f.rule_id, text], |r| r.get(0))?;
        known.push((meta, r));
        Ok(r)
    }
}

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
        //
        // Switching a new file to WAL answers "database is locked" at once,
        // without the busy handler, while another process is creating the
        // same store: try again for as long as the busy timeout.
        let pragmas = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=10000; PRAGMA cache_size=-8192;";
        let started = std::time::Instant::now();
        loop {
            match conn.execute_batch(pragmas) {
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if matches!(
                        e.code,
                        rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                    ) && started.elapsed() < std::time::Duration::from_secs(10) =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => break other.map_err(err(&path))?,
            }
        }
        let mut conn = conn;
        // The upgrade takes the write lock when it begins (so a second
        // process waits for it, with the busy timeout, instead of failing
        // when its read turns into a write), as do the store's other
        // transactions, which all write.
        conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
        let version = |conn: &Connection| -> Result<i64, StoreError> {
            conn.query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(err(&path))
        };
        let before = version(&conn)?;
        if let Err(e) = migrations().to_latest(&mut conn) {
            // Another process may have brought it up meanwhile.
            if version(&conn)? != SCHEMA_VERSION {
                return Err(upgrade_error(&path, before, e));
            }
        }
        let stale: Vec<String> = {
            let mut stmt = conn
                .prepare(
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'findings'",
                )
                .map_err(err(&path))?;
            let names = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(err(&path))?;
            names
                .filter_map(Result::ok)
                .filter(|n| V1_INDEXES.contains(&n.as_str()))
                .collect()
        };
        for name in stale {
            conn.execute_batch(&format!("DROP INDEX IF EXISTS {name}"))
                .map_err(err(&path))?;
        }
        let mut notes = Vec::new();
        if before < SCHEMA_VERSION && before > 0 || before == 0 && had_findings(&conn) {
            // The old table's pages, freed, would stay in the file.
            conn.execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")
                .map_err(err(&path))?;
            notes.push(format!(
                "local store {path}: upgraded from schema version {before} to {SCHEMA_VERSION}"
            ));
        }
        let unreadable: i64 = conn
            .query_row("SELECT COUNT(*) FROM findings_unreadable", [], |r| r.get(0))
            .map_err(err(&path))?;
        if unreadable > 0 {
            notes.push(format!(
                "local store {path}: {unreadable} finding row(s) of an earlier version are not findings \
                 (damaged or written by hand); kept as they were in its table findings_unreadable"
            ));
        }
        Ok(SqliteStore {
            conn,
            path,
            rules: RuleRefs::default(),
            notes,
        })
    }

    /// What opening the store did or found that its user should know: an
    /// upgrade of its schema, rows of an earlier version it could not read.
    pub fn notes(&self) -> &[String] {
        &self.notes
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

    /// The ledger since `since` (RFC 3339, the time an object was done):
    /// objects done, their records, and when the last was done.
    pub fn ledger_since(&self, since: &str) -> Result<(u64, u64, Option<String>), StoreError> {
        self.conn
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(records), 0), MAX(done_at) FROM ledger WHERE done_at >= ?1",
                params![since],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)? as u64,
                        row.get::<_, i64>(1)? as u64,
                        row.get::<_, Option<String>>(2)?,
                    ))
                },
            )
            .map_err(err(&self.path))
    }

    /// Findings stored, newest event first, filtered.
    pub fn query_findings(&self, filter: &FindingFilter) -> Result<Vec<StoredFinding>, StoreError> {
        let mut sql = String::from(
            "SELECT f.body, r.meta, f.times_seen, f.status, f.note, f.first_stored, f.last_stored \
             FROM findings f LEFT JOIN finding_rules r ON r.ref = f.rule_ref WHERE 1=1",
        );
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        let mut add = |clause: &str, value: rusqlite::types::Value, close: &str| {
            args.push(value);
            sql.push_str(&format!(" AND {clause} ?{}{close}", args.len()));
        };
        let text = |v: &Option<String>| v.clone().map(rusqlite::types::Value::Text);
        if let Some(v) = text(&filter.since) {
            add("f.event_time >=", v, "");
        }
        if let Some(v) = text(&filter.rule) {
            add(
                "f.rule_ref IN (SELECT ref FROM finding_rules WHERE rule_id =",
                v,
                ")",
            );
        }
        if let Some(v) = text(&filter.principal) {
            add("f.principal =", v, "");
        }
        if let Some(v) = text(&filter.account) {
            add("f.account =", v, "");
        }
        if let Some(id) = &filter.id {
            add(
                "f.key =",
                rusqlite::types::Value::Integer(finding_key(id)),
                "",
            );
            add("f.id =", rusqlite::types::Value::Text(id.clone()), "");
        }
        sql.push_str(" ORDER BY f.event_time DESC, f.id");
        let mut stmt = self.conn.prepare(&sql).map_err(err(&self.path))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, Option<String>>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, Option<String>>(4)?,
                    row.get::<_, String>(5)?,
                    row.get::<_, String>(6)?,
                ))
            })
            .map_err(err(&self.path))?;
        let mut out = Vec::new();
        for row in rows {
            let (body, meta, count, status, note, first, last) = row.map_err(err(&self.path))?;
            let bad = |why: String| {
                let id = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_owned))
                    .unwrap_or_default();
                StoreError(format!(
                    "local store {}: finding {id:?} cannot be read: {why}",
                    self.path
                ))
            };
            let meta = meta.ok_or_else(|| bad("its rule's text is missing".into()))?;
            let finding = finding_from_row(&body, &meta).map_err(|e| bad(e.to_string()))?;
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
                "UPDATE findings SET status = ?1, note = COALESCE(?2, note) WHERE key = ?3 AND id = ?4",
                params![status, note, finding_key(id), id],
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

/// Did the store (at the latest version now) hold findings? For a store that had
/// no schema version: whether there is anything to compact.
fn had_findings(conn: &Connection) -> bool {
    conn.query_row("SELECT EXISTS (SELECT 1 FROM findings)", [], |r| r.get(0))
        .unwrap_or(false)
}

/// Why a store could not be brought to [`SCHEMA_VERSION`], in words.
fn upgrade_error(path: &str, before: i64, e: rusqlite_migration::Error) -> StoreError {
    use rusqlite_migration::{Error, MigrationDefinitionError};
    StoreError(match e {
        Error::MigrationDefinition(MigrationDefinitionError::DatabaseTooFarAhead) => format!(
            "local store {path}: its schema is at version {before}, newer than this trailwarden's \
             ({SCHEMA_VERSION}): use the trailwarden that wrote it, or another --store"
        ),
        Error::RusqliteError { err, .. } => format!(
            "local store {path}: cannot upgrade its schema from version {before} to {SCHEMA_VERSION}: {err}"
        ),
        Error::Hook(why) => format!(
            "local store {path}: cannot upgrade its schema from version {before} to {SCHEMA_VERSION}: {why}"
        ),
        other => format!(
            "local store {path}: cannot upgrade its schema from version {before} to {SCHEMA_VERSION}: {other:?}"
        ),
    })
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
        self.put_finding_batch(findings.iter().map(|f| (f, None)))
    }

    /// [`SqliteStore::put_findings`] over any sequence of findings, each
    /// with its JSON text where it has been made already
    /// (`serde_json::to_string(finding)`: the row's body is cut from it).
    pub fn put_finding_batch<'f>(
        &mut self,
        findings: impl ExactSizeIterator<Item = (&'f Finding, Option<&'f str>)>,
    ) -> Result<Vec<bool>, StoreError> {
        if findings.len() == 0 {
            return Ok(Vec::new());
        }
        let now = now();
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(err(&path))?;
        let stored = put_rows(&tx, &mut self.rules, findings, &now);
        match stored.and_then(|out| tx.commit().map(|()| out)) {
            Ok(out) => Ok(out),
            Err(e) => {
                // Rule rows added in the failed transaction are gone.
                self.rules = RuleRefs::default();
                Err(err(&path)(e))
            }
        }
    }
}

/// [`SqliteStore::put_finding_batch`]'s writes, in the open transaction `tx`.
fn put_rows<'f>(
    tx: &rusqlite::Transaction<'_>,
    rules: &mut RuleRefs,
    findings: impl Iterator<Item = (&'f Finding, Option<&'f str>)>,
    now: &str,
) -> rusqlite::Result<Vec<bool>> {
    let mut out = Vec::with_capacity(findings.size_hint().0);
    for (f, json) in findings {
        let key = finding_key(&f.id);
        let body = || match json {
            Some(json) => lean_body_from_json(f, json),
            None => lean_body(f),
        };
        let repeated = tx
            .prepare_cached("UPDATE findings SET times_seen = times_seen + 1, last_stored = ?3 WHERE key = ?1 AND id = ?2")?
            .execute(params![key, f.id, now])?;
        if repeated > 0 && f.folds_repeats() {
            // A finding that folds repeats, made again from more of its
            // events (a file read whole after a read that failed part
            // way): the fuller one is kept.
            tx.prepare_cached(
                "UPDATE findings SET body = ?3 WHERE key = ?1 AND id = ?2 \
                 AND coalesce(json_extract(body, '$.count'), 0) < ?4",
            )?
            .execute(params![key, f.id, body(), f.count as i64])?;
        }
        if repeated == 0 {
            let rule_ref = rules.get(tx, f)?;
            tx.prepare_cached(
                "INSERT INTO findings (key, id, rule_ref, level, event_time, account, principal, times_seen, first_stored, last_stored, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8, ?8, ?9)",
            )?
            .execute(params![
                key,
                f.id,
                rule_ref,
                f.level.as_str(),
                f.event_time,
                f.account,
                f.principal,
                now,
                body()
            ])?;
        }
        out.push(repeated == 0);
    }
    Ok(out)
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

    fn full_finding(id: &str, title: &str) -> Finding {
        Finding {
            id: id.into(),
            rule_id: "rule-1".into(),
            rule_title: title.into(),
            level: trailwarden_engine::Level::High,
            tags: vec!["attack.t1078".into(), "ai.governance".into()],
            description: "Why this matters.".into(),
            event_time: "2026-11-02T08:00:00Z".into(),
            last_event_time: None,
            account: Some("111122223333".into()),
            region: Some("us-east-1".into()),
            principal: Some("arn:aws:iam::111122223333:user/a".into()),
            principal_type: Some("IAMUser".into()),
            access_key_id: Some("AKIAEXAMPLE".into()),
            source_ip: Some("192.0.2.1".into()),
            user_agent: Some("ua \u{1b}[31m".into()),
            event_source: "bedrock.amazonaws.com".into(),
            event_name: "InvokeModel".into(),
            error_code: Some("AccessDenied".into()),
            event_ids: vec!["e1".into(), "e2".into()],
            count: 2,
            group: [("userIdentity.arn".to_string(), "x".to_string())].into(),
            note: Some("a note".into()),
        }
    }

    #[test]
    fn lean_bodies_keep_every_field() {
        let mut s = SqliteStore::in_memory().unwrap();
        // Every field set (a struct literal: a new field fails to compile
        // here until the test, and LeanBody, say what becomes of it).
        let a = full_finding("tw-00000000000000010000000000000001", "Title");
        let mut b = full_finding("tw-00000000000000010000000000000002", "Title, reworded");
        b.group.clear();
        b.note = None;
        b.account = None;
        let odd = full_finding("not-a-digest-id", "Title");
        assert_eq!(
            finding_key(&a.id),
            finding_key(&b.id),
            "ids sharing their first 64 bits share a key"
        );
        assert_eq!(
            s.put_findings(&[a.clone(), b.clone(), odd.clone(), a.clone()])
                .unwrap(),
            [true, true, true, false]
        );
        for f in [&a, &b, &odd] {
            let rows = s
                .query_findings(&FindingFilter {
                    id: Some(f.id.clone()),
                    ..Default::default()
                })
                .unwrap();
            assert_eq!(rows.len(), 1, "{}", f.id);
            assert_eq!(&rows[0].finding, f, "each finding keeps its own rule text");
        }
        let by_rule = s
            .query_findings(&FindingFilter {
                rule: Some("rule-1".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(by_rule.len(), 3);
        let rule_rows: i64 = s
            .conn
            .query_row("SELECT COUNT(*) FROM finding_rules", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rule_rows, 2, "one row per rule text, not per finding");
        assert!(s.set_status(&b.id, "resolved", None).unwrap());
        let rows = s.query_findings(&FindingFilter::default()).unwrap();
        let statuses: Vec<(&str, &str, u64)> = rows
            .iter()
            .map(|r| (r.finding.id.as_str(), r.status.as_str(), r.times_seen))
            .collect();
        assert!(statuses.contains(&(a.id.as_str(), "open", 2)));
        assert!(statuses.contains(&(b.id.as_str(), "resolved", 1)));
    }

    #[test]
    fn a_folded_finding_made_again_from_more_events_keeps_the_fuller_body() {
        let mut s = SqliteStore::in_memory().unwrap();
        let mut f = full_finding("tw-00000000000000000000000000000f01", "T");
        f.count = 1;
        f.event_ids = vec!["e0".into()];
        let stored = |s: &SqliteStore| {
            let rows = s.query_findings(&FindingFilter::default()).unwrap();
            assert_eq!(rows.len(), 1);
            (rows[0].finding.count, rows[0].times_seen)
        };
        s.put_finding(&f).unwrap();
        assert_eq!(stored(&s), (1, 1));
        for (count, expected) in [(3, 3), (2, 3), (5, 5), (5, 5)] {
            f.count = count;
            f.event_ids = (0..count).map(|i| format!("e{i}")).collect();
            f.last_event_time = Some("2026-11-02T08:09:00Z".into());
            s.put_finding(&f).unwrap();
            let rows = s.query_findings(&FindingFilter::default()).unwrap();
            assert_eq!(rows[0].finding.count, expected);
            assert_eq!(rows[0].finding.last_event_time, f.last_event_time);
            assert_eq!(rows[0].finding.event_ids.len() as u64, expected);
        }
        assert_eq!(stored(&s).1, 5, "each write still counts as seen");
    }

    #[test]
    fn a_lean_body_cut_from_the_json_text_is_the_serialised_one() {
        let mut f = full_finding("tw-0123456789abcdef0123456789abcdef", "T");
        f.last_event_time = Some("2026-11-02T08:09:10Z".into());
        let tricky = r#"x","event_time":"1999","rule_title":"y\",""#;
        for text in [&mut f.description, &mut f.rule_title] {
            text.push_str(tricky);
        }
        f.user_agent = Some(tricky.into());
        f.tags.push(tricky.into());
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(lean_body_from_json(&f, &json), lean_body(&f));
        assert_eq!(lean_body_from_json(&f, "{}"), lean_body(&f), "falls back");
        let mut s = SqliteStore::in_memory().unwrap();
        s.put_finding_batch([(&f, Some(json.as_str()))].into_iter())
            .unwrap();
        let rows = s.query_findings(&FindingFilter::default()).unwrap();
        assert_eq!(rows[0].finding, f);
    }

    #[test]
    fn a_version_2_store_counts_on_in_times_seen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v2.db");
        let f = full_finding("tw-0123456789abcdef0123456789abcdef", "Title");
        {
            let mut conn = Connection::open(&path).unwrap();
            migrations().to_version(&mut conn, 2).unwrap();
            conn.execute_batch(
                r#"INSERT INTO finding_rules (ref, rule_id, meta) VALUES (1, 'r', '{"rule_title":"Title","tags":[],"description":""}');"#,
            )
            .unwrap();
            conn.execute(
                "INSERT INTO findings (key, id, rule_ref, level, event_time, count, first_stored, last_stored, body)
                 VALUES (?1, ?2, 1, 'high', ?3, 5, 'a', 'b', ?4)",
                params![finding_key(&f.id), f.id, f.event_time, lean_body(&f)],
            )
            .unwrap();
        }
        let mut s = SqliteStore::open(&path).unwrap();
        assert!(
            s.notes()[0].contains("upgraded from schema version 2 to 3"),
            "{:?}",
            s.notes()
        );
        assert!(!s.put_finding(&f).unwrap(), "a repeat");
        let seen: i64 = s
            .conn
            .query_row("SELECT times_seen FROM findings", [], |r| r.get(0))
            .unwrap();
        assert_eq!(seen, 6);
        let rows = s.query_findings(&FindingFilter::default()).unwrap();
        assert_eq!(rows[0].times_seen, 6);
    }

    #[test]
    fn a_store_from_before_schema_versions_is_migrated_with_its_findings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        let f = full_finding("tw-0123456789abcdef0123456789abcdef", "Title");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(SCHEMA_V1).unwrap();
            conn.execute(
                "INSERT INTO findings (id, rule_id, level, event_time, account, principal, count, first_stored, last_stored, status, note, body)
                 VALUES (?1, ?2, 'high', ?3, ?4, ?5, 7, '2026-11-01T00:00:00Z', '2026-11-03T00:00:00Z', 'acknowledged', 'seen', ?6)",
                params![f.id, f.rule_id, f.event_time, f.account, f.principal, serde_json::to_string(&f).unwrap()],
            )
            .unwrap();
        }
        {
            // A row that is not a finding (damaged, or written by hand).
            let conn = Connection::open(&path).unwrap();
            conn.execute(
                "INSERT INTO findings (id, rule_id, level, event_time, count, first_stored, last_stored, body)
                 VALUES ('tw-x', 'r', 'low', 't', 1, 'a', 'b', '{not json')",
                [],
            )
            .unwrap();
        }
        let mut s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.notes().len(), 2, "{:?}", s.notes());
        assert!(s.notes()[0].contains("upgraded from schema version 0 to 3"));
        assert!(s.notes()[1].contains("1 finding row(s)"), "{:?}", s.notes());
        let kept: String = s
            .conn
            .query_row("SELECT body FROM findings_unreadable", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kept, "{not json");
        let rows = s.query_findings(&FindingFilter::default()).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].finding, f);
        assert_eq!(
            (
                rows[0].times_seen,
                rows[0].status.as_str(),
                rows[0].status_note.as_deref()
            ),
            (7, "acknowledged", Some("seen"))
        );
        assert_eq!(
            (rows[0].first_stored.as_str(), rows[0].last_stored.as_str()),
            ("2026-11-01T00:00:00Z", "2026-11-03T00:00:00Z")
        );
        assert!(
            !s.put_finding(&f).unwrap(),
            "the migrated row is found by its id"
        );
        let version: i64 = s
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        drop(s);
        // Opened again: nothing to upgrade, the unreadable row still said.
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.notes().len(), 1, "{:?}", s.notes());
        drop(s);
        // A binary from before schema versions makes its indexes on the
        // new table (then fails): they are dropped at the next open.
        let conn = Connection::open(&path).unwrap();
        let e = conn.execute_batch(SCHEMA_V1).unwrap_err().to_string();
        assert!(e.contains("rule_id"), "{e}");
        drop(conn);
        let s = SqliteStore::open(&path).unwrap();
        let indexes: Vec<String> = s
            .conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'findings' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            indexes,
            ["findings_v2_key", "findings_v2_rule", "findings_v2_time"]
        );
    }

    #[test]
    fn two_processes_opening_one_store_at_once_both_get_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.db");
        let opened: Vec<Result<(), StoreError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| SqliteStore::open(&path).map(drop)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for o in opened {
            o.unwrap();
        }
    }

    #[test]
    fn a_store_written_by_a_newer_version_is_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("newer.db");
        drop(SqliteStore::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA user_version = 99")
            .unwrap();
        let e = SqliteStore::open(&path).err().expect("refused");
        assert!(
            e.0.contains("version 99, newer than this trailwarden's (3)"),
            "{e:?}"
        );
        assert!(e.0.contains(&path.display().to_string()), "{e:?}");
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
