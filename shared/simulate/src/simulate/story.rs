//! Scenarios written as data: `shared/simulate/scenarios/<name>.yaml`.
//!
//! An intrusion that is a sequence of calls reads best as that sequence.
//! Such a scenario is a YAML file of three parts, each read in file order:
//!
//! - `vars`: named texts, expanded once, in order, when the file is read
//!   (each may use the ones before it; a generated value in a var is drawn
//!   then, once, at the start time: write generated values in steps).
//! - `actors`: who calls, by name, made in order. One of
//!   - `cast: NAME`: a member of the background cast as it appears there;
//!   - `assumed_role: ROLE` with `session: NAME` (a fresh `ASIA…` session
//!     key is drawn), and `session_created_after: SECONDS` (when the
//!     session began, after the start) where the session is new;
//!   - `iam_user: NAME` (its long-term `AKIA…` key, the same on every run);
//!   - `root: true`.
//!
//!   Each may set `ip` (`sourceIPAddress`) and `user_agent`; an actor that
//!   is not of the cast needs both.
//! - `steps`, in order, each one of:
//!   - `at: SECONDS`: the clock to about that many seconds after the start
//!     (plus up to 0.4 s; never back);
//!   - `pause: SECONDS` (plus up to 0.8 s), or `pause: {secs: S, jitter:
//!     J}` (S plus a random 0 to J−1 seconds, then as `pause`; J ≥ 1), or
//!     `pause_ms: [LO, HI]` (a random LO to HI−1 milliseconds);
//!   - `call: EVENT_NAME` with `by: ACTOR`, `on: SERVICE` (its short name:
//!     `sts`, `s3`, …, or an `eventSource`), and optionally `request`
//!     (`requestParameters`), `response` (`responseElements`) and
//!     `console_sign_in: {mfa: BOOL}` (the record made a console sign-in);
//!   - `invoke: {by, name, model, input: [LO, HI], output: [LO, HI]}`: a
//!     successful Bedrock runtime call with token counts drawn in those
//!     ranges (0 ≤ LO < HI);
//!   - `repeat: N` with `steps`: those steps N times;
//!   - `effect: guardrail_deleted`, or `effect: {key_unusable: {key, bucket,
//!     pending: BOOL}}`: how the intrusion changes the background from now
//!     on.
//!
//!   A step with an unknown key, or with two kinds, is an error.
//!
//! Every text (names included) may use `${name}`: a var, a constant —
//! `${account}`, `${region}`, `${training_bucket}`, `${training_key_arn}`,
//! `${guardrail_id}`, `${outside_account}`, `${sso_admin}`,
//! `${audit_trail}`, the user agents `${ua.cli_kali}`, `${ua.boto_vps}`,
//! `${ua.boto_mac_attack}` and the model `${model.sonnet35}` (see
//! [`constant`]) — or a generated value: `${uuid}`, `${hex:N}`,
//! `${training_object}`, `${iso_nanos}` (now, with random nanoseconds),
//! `${aws_date}` (now, as IAM writes dates), `${aws_date_midnight+Nd}`
//! and `${stable_akia:TEXT}` (an `AKIA…` id from the account and TEXT).
//! `$${` writes a literal `${` (an IAM policy variable). A step's
//! generated values are drawn when it runs, in the order they appear in
//! the file (request before response), so a scenario gives the same
//! records on every run of the same seed. Values stay as YAML reads them:
//! quote an account id or a version (`"3"`) meant as text; an alias
//! (`*name`) is expanded again where it is used.

use chrono::Duration;
use serde_json::{Map, Value as Json};
use yaml_serde::{Mapping, Value};

use super::{
    console_sign_in, fmt_aws_date, iso_nanos, stable_id, Effect, Script, GUARDRAIL_ID, HEX,
    OUTSIDE_ACCOUNT, TRAINING_BUCKET,
};
use crate::synth::Actor;

/// The scenarios written as data: `(name, YAML text)`. A new one is a file
/// in `scenarios/`, a line here and its entry (name and description) in
/// [`super::SCENARIOS`], which `simulate --list` shows and the scenario
/// tests go through.
pub(super) const STORIES: &[(&str, &str)] = &[
    (
        "trail-tampering",
        include_str!("../../scenarios/trail-tampering.yaml"),
    ),
    (
        "invocation-logging-disabled",
        include_str!("../../scenarios/invocation-logging-disabled.yaml"),
    ),
    (
        "guardrail-deleted",
        include_str!("../../scenarios/guardrail-deleted.yaml"),
    ),
    (
        "kms-key-deletion",
        include_str!("../../scenarios/kms-key-deletion.yaml"),
    ),
    (
        "instance-credential-theft",
        include_str!("../../scenarios/instance-credential-theft.yaml"),
    ),
    (
        "outside-account-backdoor",
        include_str!("../../scenarios/outside-account-backdoor.yaml"),
    ),
    (
        "root-console-no-mfa",
        include_str!("../../scenarios/root-console-no-mfa.yaml"),
    ),
];

/// A scenario file that cannot be run: which file, where in it, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoryError {
    /// The scenario's name.
    pub scenario: String,
    /// Where in the file (`steps[3].steps[0]`, `actors.admin`, …).
    pub place: String,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for StoryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "scenarios/{}.yaml: {}: {}",
            self.scenario, self.place, self.reason
        )
    }
}

impl std::error::Error for StoryError {}

/// A place in the file and what is wrong there.
type Fault = (String, String);

/// Run the scenario file `text` (named `name`) on `s`.
pub(super) fn run(name: &str, text: &str, s: &mut Script) -> Result<(), StoryError> {
    run_doc(text, s).map_err(|(place, reason)| StoryError {
        scenario: name.to_owned(),
        place,
        reason,
    })
}

fn run_doc(text: &str, s: &mut Script) -> Result<(), Fault> {
    let at = |place: &str| {
        let place = place.to_owned();
        move |reason: String| (place, reason)
    };
    let doc: Value =
        yaml_serde::from_str(text).map_err(|e| ("(file)".to_owned(), e.to_string()))?;
    let top = doc
        .as_mapping()
        .ok_or_else(|| ("(file)".to_owned(), "must be a mapping".to_owned()))?;
    for key in top.keys() {
        let key = key.as_str().unwrap_or_default();
        if !["vars", "actors", "steps"].contains(&key) {
            return Err((
                key.to_owned(),
                "unknown part: a scenario has `vars`, `actors` and `steps`".to_owned(),
            ));
        }
    }
    let mut story = Story {
        vars: Vec::new(),
        actors: Vec::new(),
    };
    for (key, value) in mapping(top.get("vars"), "vars")? {
        let place = format!("vars.{key}");
        let text = value
            .as_str()
            .ok_or_else(|| (place.clone(), "must be text".to_owned()))?;
        let text = story.expand(text, s).map_err(at(&place))?;
        story.vars.push((key, text));
    }
    for (key, spec) in mapping(top.get("actors"), "actors")? {
        let place = format!("actors.{key}");
        let actor = story.actor(spec, s).map_err(at(&place))?;
        story.actors.push((key, actor));
    }
    let steps = top
        .get("steps")
        .and_then(Value::as_sequence)
        .ok_or_else(|| ("steps".to_owned(), "must be a list".to_owned()))?;
    story.steps(steps, "steps", s)
}

/// The entries of an optional mapping, in file order, with text keys.
fn mapping<'v>(v: Option<&'v Value>, place: &str) -> Result<Vec<(String, &'v Value)>, Fault> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let m: &Mapping = v
        .as_mapping()
        .ok_or_else(|| (place.to_owned(), "must be a mapping".to_owned()))?;
    m.iter()
        .map(|(k, v)| match k.as_str() {
            Some(k) => Ok((k.to_owned(), v)),
            None => Err((place.to_owned(), format!("{k:?}: a name must be text"))),
        })
        .collect()
}

struct Story {
    vars: Vec<(String, String)>,
    actors: Vec<(String, Actor)>,
}

/// A field of a mapping as text.
fn text<'v>(spec: &'v Value, field: &str) -> Result<&'v str, String> {
    spec.get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("needs `{field}` as text"))
}

/// A field of a mapping as a whole number.
fn number(spec: &Value, field: &str) -> Result<i64, String> {
    spec.get(field)
        .and_then(Value::as_i64)
        .ok_or_else(|| format!("needs `{field}` as a whole number"))
}

/// An optional field of a mapping as `true` or `false` (absent: false).
fn flag(spec: &Value, field: &str) -> Result<bool, String> {
    match spec.get(field) {
        None | Some(Value::Null) => Ok(false),
        Some(v) => v
            .as_bool()
            .ok_or_else(|| format!("`{field}` must be true or false")),
    }
}

/// A `[LO, HI]` range of whole numbers, `min <= LO < HI`.
fn range(spec: &Value, field: &str, min: i64) -> Result<(i64, i64), String> {
    let pair = spec.get(field).and_then(Value::as_sequence);
    match pair.map(Vec::as_slice) {
        Some([lo, hi]) => match (lo.as_i64(), hi.as_i64()) {
            (Some(lo), Some(hi)) if min <= lo && lo < hi && hi <= i64::from(u32::MAX) => {
                Ok((lo, hi))
            }
            _ => Err(format!(
                "`{field}` needs two whole numbers from {min}, the first smaller"
            )),
        },
        _ => Err(format!("needs `{field}` as [LO, HI]")),
    }
}

/// The keys a step of each kind may have besides its kind.
const STEP_KINDS: [(&str, &[&str]); 7] = [
    ("at", &[]),
    ("pause", &[]),
    ("pause_ms", &[]),
    (
        "call",
        &["by", "on", "request", "response", "console_sign_in"],
    ),
    ("invoke", &[]),
    ("repeat", &["steps"]),
    ("effect", &[]),
];

/// A constant a scenario may name.
fn constant(name: &str) -> Option<&'static str> {
    Some(match name {
        "training_bucket" => TRAINING_BUCKET,
        "guardrail_id" => GUARDRAIL_ID,
        "outside_account" => OUTSIDE_ACCOUNT,
        "sso_admin" => super::SSO_ADMIN,
        "audit_trail" => super::AUDIT_TRAIL,
        "ua.cli_kali" => super::UA_CLI_KALI,
        "ua.boto_vps" => super::UA_BOTO_VPS,
        "ua.boto_mac_attack" => super::UA_BOTO_MAC_ATTACK,
        "model.sonnet35" => super::SONNET35,
        _ => return None,
    })
}

/// The `eventSource` of a service's short name (or the `eventSource`).
fn event_source(service: &str) -> String {
    if service.contains('.') {
        service.to_owned()
    } else {
        format!("{service}.amazonaws.com")
    }
}

impl Story {
    /// `text` with every `${name}` replaced (generated values drawn now)
    /// and every `$${` made `${`.
    fn expand(&self, text: &str, s: &mut Script) -> Result<String, String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            if rest[..start].ends_with('$') {
                out.push_str(&rest[..start - 1]);
                out.push_str("${");
                rest = &rest[start + 2..];
                continue;
            }
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("`${{` without a closing `}}` in {text:?}"))?;
            out.push_str(&self.value(&after[..end], s)?);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn value(&self, name: &str, s: &mut Script) -> Result<String, String> {
        if let Some((_, v)) = self.vars.iter().find(|(k, _)| k == name) {
            return Ok(v.clone());
        }
        if let Some(c) = constant(name) {
            return Ok(c.to_owned());
        }
        if let Some(n) = name.strip_prefix("hex:") {
            let n = n
                .parse()
                .map_err(|_| format!("`${{{name}}}`: not a length"))?;
            return Ok(s.random(HEX, n));
        }
        if let Some(seed) = name.strip_prefix("stable_akia:") {
            return Ok(stable_id("AKIA", &format!("{}/{seed}", s.account), 20));
        }
        if let Some(days) = name
            .strip_prefix("aws_date_midnight+")
            .and_then(|d| d.strip_suffix('d'))
        {
            let days: i64 = days
                .parse()
                .map_err(|_| format!("`${{{name}}}`: not a number of days"))?;
            let t = (s.now() + Duration::days(days))
                .date_naive()
                .and_hms_opt(0, 0, 0)
                .unwrap_or_default()
                .and_utc();
            return Ok(fmt_aws_date(t));
        }
        Ok(match name {
            "account" => s.account.clone(),
            "region" => s.region.clone(),
            "training_key_arn" => s.training_key_arn(),
            "training_object" => s.training_object(),
            "uuid" => s.synth.uuid(),
            "iso_nanos" => {
                let nanos = s.rng.u32(..1_000_000_000);
                iso_nanos(s.now(), nanos)
            }
            "aws_date" => fmt_aws_date(s.now()),
            _ => return Err(format!("`${{{name}}}` names nothing")),
        })
    }

    /// A request or response as JSON, every text in it expanded in file
    /// order.
    fn document(&self, v: &Value, s: &mut Script) -> Result<Json, String> {
        Ok(match v {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => serde_json::to_value(n).map_err(|e| e.to_string())?,
            Value::String(t) => Json::String(self.expand(t, s)?),
            Value::Sequence(items) => Json::Array(
                items
                    .iter()
                    .map(|i| self.document(i, s))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Mapping(m) => {
                let mut out = Map::new();
                for (k, v) in m {
                    let k = k
                        .as_str()
                        .ok_or_else(|| format!("{k:?}: a key must be text"))?;
                    out.insert(k.to_owned(), self.document(v, s)?);
                }
                Json::Object(out)
            }
            Value::Tagged(t) => return Err(format!("a tagged value ({}) is not JSON", t.tag)),
        })
    }

    /// An optional text field, expanded.
    fn opt_text(
        &self,
        spec: &Value,
        field: &str,
        s: &mut Script,
    ) -> Result<Option<String>, String> {
        match spec.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(t)) => self.expand(t, s).map(Some),
            Some(_) => Err(format!("`{field}` must be text")),
        }
    }

    fn actor(&self, spec: &Value, s: &mut Script) -> Result<Actor, String> {
        let ip = self.opt_text(spec, "ip", s)?;
        let ua = self.opt_text(spec, "user_agent", s)?;
        let needs = |v: &Option<String>, field: &str| {
            v.clone()
                .ok_or_else(|| format!("needs `{field}` (it is not of the cast)"))
        };
        let account = s.account.clone();
        let mut actor = if let Some(name) = self.opt_text(spec, "cast", s)? {
            let mut a = s
                .synth
                .principal(&name)
                .cloned()
                .ok_or_else(|| format!("`cast: {name}` is no member of the background cast"))?;
            if let Some(ip) = &ip {
                a = a.with_source_ip(ip);
            }
            if let Some(ua) = &ua {
                a = a.with_user_agent(ua);
            }
            a
        } else if let Some(role) = self.opt_text(spec, "assumed_role", s)? {
            let session = self.expand(text(spec, "session")?, s)?;
            let key = s.session_key();
            Actor::assumed_role(
                &account,
                &role,
                &session,
                &key,
                &needs(&ip, "ip")?,
                &needs(&ua, "user_agent")?,
            )
        } else if let Some(name) = self.opt_text(spec, "iam_user", s)? {
            let key = stable_id("AKIA", &format!("{account}/user/{name}"), 20);
            Actor::iam_user(
                &account,
                &name,
                &key,
                &needs(&ip, "ip")?,
                &needs(&ua, "user_agent")?,
            )
        } else if flag(spec, "root")? {
            Actor::root(
                &account,
                None,
                &needs(&ip, "ip")?,
                &needs(&ua, "user_agent")?,
            )
        } else {
            return Err("needs one of `cast`, `assumed_role`, `iam_user`, `root: true`".into());
        };
        if spec.get("session_created_after").is_some() {
            let secs = number(spec, "session_created_after")?;
            actor = actor.with_session_created(s.now() + Duration::seconds(secs));
        }
        Ok(actor)
    }

    fn who(&self, spec: &Value) -> Result<Actor, String> {
        let name = text(spec, "by")?;
        self.actors
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, a)| a.clone())
            .ok_or_else(|| format!("`by: {name}` names no actor"))
    }

    fn steps(&self, steps: &[Value], at: &str, s: &mut Script) -> Result<(), Fault> {
        for (i, step) in steps.iter().enumerate() {
            let place = format!("{at}[{i}]");
            match step.get("repeat") {
                Some(_) => self.repeat(step, &place, s)?,
                None => self.step(step, s).map_err(|r| (place.clone(), r))?,
            }
        }
        Ok(())
    }

    /// The kind of a step (its one kind key), after checking its keys.
    fn kind(step: &Value) -> Result<&'static str, String> {
        let m = step.as_mapping().ok_or("a step must be a mapping")?;
        let keys: Vec<&str> = m.keys().map(|k| k.as_str().unwrap_or("?")).collect();
        let kinds: Vec<&(&str, &[&str])> = STEP_KINDS
            .iter()
            .filter(|(kind, _)| keys.contains(kind))
            .collect();
        let [(kind, extra)] = kinds.as_slice() else {
            return Err(format!(
                "a step is one of {} (this one has {})",
                STEP_KINDS.map(|(k, _)| format!("`{k}`")).join(", "),
                if kinds.is_empty() {
                    "none".to_owned()
                } else {
                    kinds
                        .iter()
                        .map(|(k, _)| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(" and ")
                }
            ));
        };
        if let Some(other) = keys.iter().find(|k| *k != kind && !extra.contains(k)) {
            return Err(format!("`{kind}` takes no `{other}`"));
        }
        Ok(kind)
    }

    fn repeat(&self, step: &Value, place: &str, s: &mut Script) -> Result<(), Fault> {
        let fault = |r: String| (place.to_owned(), r);
        Self::kind(step).map_err(fault)?;
        let n = number(step, "repeat").map_err(fault)?;
        let inner = step
            .get("steps")
            .and_then(Value::as_sequence)
            .ok_or_else(|| fault("`repeat` needs `steps`, a list".into()))?;
        for round in 0..n.max(0) {
            self.steps(inner, &format!("{place}.steps (round {})", round + 1), s)?;
        }
        Ok(())
    }

    fn step(&self, step: &Value, s: &mut Script) -> Result<(), String> {
        let get = |k: &str| step.get(k).unwrap_or(&Value::Null);
        match Self::kind(step)? {
            "at" => s.at(number(step, "at")?),
            "pause" => match get("pause") {
                Value::Mapping(_) => {
                    let spec = get("pause");
                    let (secs, jitter) = (number(spec, "secs")?, number(spec, "jitter")?);
                    if jitter < 1 {
                        return Err(
                            "`pause.jitter` must be at least 1 (no jitter: `pause: SECONDS`)"
                                .into(),
                        );
                    }
                    let gap = secs + s.rng.i64(0..jitter);
                    s.pause(gap);
                }
                v => s.pause(
                    v.as_i64()
                        .ok_or("`pause` is a whole number of seconds or `{secs, jitter}`")?,
                ),
            },
            "pause_ms" => {
                let (lo, hi) = range(step, "pause_ms", 0)?;
                s.pause_ms(lo, hi);
            }
            "call" => {
                let name = self.expand(text(step, "call")?, s)?;
                let who = self.who(step)?;
                let source = event_source(&self.expand(text(step, "on")?, s)?);
                let request = self.document(get("request"), s)?;
                let response = self.document(get("response"), s)?;
                let sign_in = match step.get("console_sign_in") {
                    None => None,
                    Some(spec) => Some(flag(spec, "mfa")?),
                };
                let rec = s.call(&who, &source, &name, request, response);
                if let Some(mfa) = sign_in {
                    console_sign_in(rec, mfa);
                }
            }
            "invoke" => {
                let spec = get("invoke");
                let who = self.who(spec)?;
                let model = self.expand(text(spec, "model")?, s)?;
                let name = self.expand(text(spec, "name")?, s)?;
                let (lo, hi) = range(spec, "input", 0)?;
                let input = s.rng.u32(lo as u32..hi as u32);
                let (lo, hi) = range(spec, "output", 0)?;
                let output = s.rng.u32(lo as u32..hi as u32);
                s.invoke(&who, &name, &model, input, output);
            }
            "effect" => {
                let from_ms = s.start_ms + s.cursor_ms;
                let effect = get("effect");
                let effect = if effect.as_str() == Some("guardrail_deleted") {
                    Effect::GuardrailDeleted { from_ms }
                } else if let Some(spec) = effect.get("key_unusable") {
                    Effect::KeyUnusable {
                        from_ms,
                        key_arn: self.expand(text(spec, "key")?, s)?,
                        bucket: self.expand(text(spec, "bucket")?, s)?,
                        pending: flag(spec, "pending")?,
                    }
                } else {
                    return Err("`effect` is `guardrail_deleted` or `{key_unusable: …}`".into());
                };
                s.effect(effect);
            }
            other => unreachable!("{other} is handled by `steps`"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script() -> Script {
        Script::new(&super::super::SimOptions::default(), "t")
    }

    #[test]
    fn every_scenario_file_runs() {
        for (name, text) in STORIES {
            let mut s = Script::new(&super::super::SimOptions::default(), name);
            run(name, text, &mut s).unwrap();
            assert!(!s.out.is_empty(), "{name}");
        }
    }

    #[test]
    fn a_bad_file_says_where_and_why() {
        let actor = "actors: {a: {root: true, ip: 192.0.2.1, user_agent: x}}\n";
        let cases = [
            ("steps: [{call: X, by: nobody, on: sts}]", "steps[0]: `by: nobody` names no actor"),
            ("steps: [{jump: 3}]", "steps[0]: a step is one of `at`"),
            ("steps: [{at: 1, pause: 2}]", "steps[0]: a step is one of `at`, `pause`, `pause_ms`, `call`, `invoke`, `repeat`, `effect` (this one has `at` and `pause`)"),
            ("steps: [{at: 1}, {repeat: 2, steps: [{at: 1}, {pause_ms: [5, 1]}]}]", "steps[1].steps (round 1)[1]: `pause_ms` needs two whole numbers"),
            (&format!("{actor}steps: [{{call: X, by: a, on: sts, reqeust: {{}}}}]"), "steps[0]: `call` takes no `reqeust`"),
            ("steps: [{pause: 1.5}]", "steps[0]: `pause` is a whole number"),
            ("steps: [{pause: {secs: 1, jitter: 0}}]", "`pause.jitter` must be at least 1"),
            (&format!("{actor}steps: [{{invoke: {{by: a, name: Converse, model: m, input: [-5, 3], output: [1, 2]}}}}]"), "`input` needs two whole numbers from 0"),
            (&format!("{actor}steps: [{{call: ConsoleLogin, by: a, on: signin, console_sign_in: {{mfa: yes-ish}}}}]"), "`mfa` must be true or false"),
            ("actors: {a: {root: true}}\nsteps: []", "actors.a: needs `ip`"),
            ("actors: {a: {cast: nobody-at-all}}\nsteps: []", "actors.a: `cast: nobody-at-all` is no member"),
            ("vars: {x: '${nothing}'}\nsteps: []", "vars.x: `${nothing}` names nothing"),
            ("steps: {}", "steps: must be a list"),
            ("stpes: []", "stpes: unknown part"),
        ];
        for (text, expected) in cases {
            let e = run("t", text, &mut script()).unwrap_err().to_string();
            assert!(
                e.starts_with("scenarios/t.yaml: ") && e.contains(expected),
                "{e}\nexpected: {expected}"
            );
        }
    }

    #[test]
    fn vars_and_draws_go_in_file_order_and_dollar_dollar_is_literal() {
        let text = "vars:\n  zone: ${region}-a\n  arn: arn:aws:x:${zone}\nactors: {a: {root: true, ip: 192.0.2.1, user_agent: x}}\nsteps:\n  - call: PutRolePolicy\n    by: a\n    on: iam\n    request: {z: '${hex:4}', a: '${hex:4}', doc: '{\"Resource\":\"arn:aws:s3:::b/$${aws:username}\"}', arn: '${arn}'}\n";
        let mut s = script();
        run("t", text, &mut s).unwrap();
        let req = &s.out[0].record["requestParameters"];
        assert_eq!(req["arn"], format!("arn:aws:x:{}-a", s.region));
        assert_eq!(
            req["doc"],
            "{\"Resource\":\"arn:aws:s3:::b/${aws:username}\"}"
        );
        // `z` comes first in the file, so it has the first draw.
        let mut again = script();
        let first = again.random(HEX, 4);
        assert_eq!(req["z"], first.as_str());
        assert_ne!(req["a"], first.as_str());
    }
}
