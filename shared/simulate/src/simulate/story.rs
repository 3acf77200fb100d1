//! Scenarios written as data: `shared/simulate/scenarios/<name>.yaml`.
//!
//! An intrusion that is a sequence of calls reads best as that sequence.
//! Such a scenario is a YAML file of three parts:
//!
//! - `actors`: who calls, by name. One of
//!   - `cast: NAME`: a member of the background cast as it appears there;
//!   - `assumed_role: ROLE` with `session: NAME` (a fresh `ASIA…` session
//!     key is drawn), and `session_created_after: SECONDS` (when the
//!     session began, after the start) where the session is new;
//!   - `iam_user: NAME` (its long-term `AKIA…` key, the same on every run);
//!   - `root: true`.
//!
//!   Each may set `ip` (`sourceIPAddress`) and `user_agent`; an actor that
//!   is not of the cast needs both.
//! - `vars`: named texts, each of which may use the ones before it.
//! - `steps`, in order:
//!   - `at: SECONDS`: the clock to about that many seconds after the start;
//!   - `pause: SECONDS`, or `pause: {secs: S, jitter: J}` (S plus a random
//!     0 to J seconds), or `pause_ms: [LO, HI]`;
//!   - `call: EVENT_NAME` with `by: ACTOR`, `on: SERVICE` (its short name:
//!     `sts`, `s3`, …, or an `eventSource`), and optionally `request`
//!     (`requestParameters`), `response` (`responseElements`) and
//!     `console_sign_in: {mfa: BOOL}` (the record made a console sign-in);
//!   - `invoke: {by, name, model, input: [LO, HI], output: [LO, HI]}`: a
//!     successful Bedrock runtime call with token counts drawn in those
//!     ranges;
//!   - `repeat: N` with `steps`: those steps N times;
//!   - `effect: guardrail_deleted`, or `effect: {key_unusable: {key, bucket,
//!     pending}}`: how the intrusion changes the background from now on.
//!
//! Every text may name a var, a constant or a generated value as
//! `${name}`: `${account}`, `${region}`, `${training_bucket}`,
//! `${training_key_arn}`, `${guardrail_id}`, `${outside_account}`, the
//! user agents `${ua.NAME}` and the models `${model.NAME}` (see
//! [`constant`]), and the generated `${uuid}`, `${hex:N}`,
//! `${training_object}`, `${iso_nanos}` (now, with random nanoseconds),
//! `${aws_date}` (now, as IAM writes dates),
//! `${aws_date_midnight+Nd}` and `${stable_akia:TEXT}` (an `AKIA…` id from
//! the account and TEXT). Generated values are drawn where the step that
//! uses them runs, in the order they appear (request before response), so
//! a scenario gives the same records on every run of the same seed.

use chrono::Duration;
use serde_json::{Map, Value};

use super::{
    console_sign_in, fmt_aws_date, iso_nanos, stable_id, Effect, Script, GUARDRAIL_ID, HEX,
    OUTSIDE_ACCOUNT, TRAINING_BUCKET,
};
use crate::synth::Actor;

/// The scenarios written as data: `(name, YAML text)`.
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
    /// Where in the file (`steps[3].request`, `actors.admin`, …).
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

/// Run the scenario file `text` (named `name`) on `s`.
pub(super) fn run(name: &str, text: &str, s: &mut Script) -> Result<(), StoryError> {
    let fail = |place: &str, reason: String| StoryError {
        scenario: name.to_owned(),
        place: place.to_owned(),
        reason,
    };
    let doc: Value = yaml_serde::from_str(text).map_err(|e| fail("(file)", e.to_string()))?;
    let mut story = Story {
        vars: Vec::new(),
        actors: Vec::new(),
    };
    let empty = Map::new();
    let obj = |v: &Value, place: &str| -> Result<Map<String, Value>, StoryError> {
        match v {
            Value::Null => Ok(empty.clone()),
            Value::Object(m) => Ok(m.clone()),
            _ => Err(fail(place, "must be a mapping".into())),
        }
    };
    for (key, value) in obj(&doc["vars"], "vars")? {
        let place = format!("vars.{key}");
        let text = value
            .as_str()
            .ok_or_else(|| fail(&place, "must be text".into()))?;
        let text = story.expand(text, s).map_err(|r| fail(&place, r))?;
        story.vars.push((key, text));
    }
    for (key, spec) in obj(&doc["actors"], "actors")? {
        let place = format!("actors.{key}");
        let actor = story.actor(&spec, s).map_err(|r| fail(&place, r))?;
        story.actors.push((key, actor));
    }
    let steps = doc["steps"]
        .as_array()
        .ok_or_else(|| fail("steps", "must be a list".into()))?;
    story.steps(steps, "steps", s).map_err(|(p, r)| fail(&p, r))
}

struct Story {
    vars: Vec<(String, String)>,
    actors: Vec<(String, Actor)>,
}

/// A field of a mapping as text.
fn text<'v>(spec: &'v Value, field: &str) -> Result<&'v str, String> {
    spec[field]
        .as_str()
        .ok_or_else(|| format!("needs `{field}` as text"))
}

/// A field of a mapping as a whole number.
fn number(spec: &Value, field: &str) -> Result<i64, String> {
    spec[field]
        .as_i64()
        .ok_or_else(|| format!("needs `{field}` as a whole number"))
}

/// A `[LO, HI]` range.
fn range(spec: &Value, field: &str) -> Result<(i64, i64), String> {
    match spec[field].as_array().map(Vec::as_slice) {
        Some([lo, hi]) => match (lo.as_i64(), hi.as_i64()) {
            (Some(lo), Some(hi)) if lo < hi => Ok((lo, hi)),
            _ => Err(format!(
                "`{field}` needs two whole numbers, the first smaller"
            )),
        },
        _ => Err(format!("needs `{field}` as [LO, HI]")),
    }
}

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
    /// `text` with every `${name}` replaced (generated values drawn now).
    fn expand(&self, text: &str, s: &mut Script) -> Result<String, String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
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

    /// A request or response: every text in it expanded, in order.
    fn document(&self, v: &Value, s: &mut Script) -> Result<Value, String> {
        Ok(match v {
            Value::String(t) => Value::String(self.expand(t, s)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| self.document(i, s))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(m) => {
                let mut out = Map::new();
                for (k, v) in m {
                    out.insert(k.clone(), self.document(v, s)?);
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }

    fn actor(&self, spec: &Value, s: &mut Script) -> Result<Actor, String> {
        let opt = |field: &str| -> Result<Option<String>, String> {
            match &spec[field] {
                Value::Null => Ok(None),
                Value::String(t) => Ok(Some(t.clone())),
                _ => Err(format!("`{field}` must be text")),
            }
        };
        let (ip, ua) = (opt("ip")?, opt("user_agent")?);
        let ip = ip.map(|t| self.expand(&t, s)).transpose()?;
        let ua = ua.map(|t| self.expand(&t, s)).transpose()?;
        let needs = |v: &Option<String>, field: &str| {
            v.clone()
                .ok_or_else(|| format!("needs `{field}` (it is not of the cast)"))
        };
        let account = s.account.clone();
        let mut actor = if let Some(name) = spec["cast"].as_str() {
            let mut a = s.cast(name);
            if let Some(ip) = &ip {
                a = a.with_source_ip(ip);
            }
            if let Some(ua) = &ua {
                a = a.with_user_agent(ua);
            }
            a
        } else if let Some(role) = spec["assumed_role"].as_str() {
            let role = self.expand(role, s)?;
            let session = text(spec, "session")?;
            let key = s.session_key();
            Actor::assumed_role(
                &account,
                &role,
                session,
                &key,
                &needs(&ip, "ip")?,
                &needs(&ua, "user_agent")?,
            )
        } else if let Some(name) = spec["iam_user"].as_str() {
            let key = stable_id("AKIA", &format!("{account}/user/{name}"), 20);
            Actor::iam_user(
                &account,
                name,
                &key,
                &needs(&ip, "ip")?,
                &needs(&ua, "user_agent")?,
            )
        } else if spec["root"] == Value::Bool(true) {
            Actor::root(
                &account,
                None,
                &needs(&ip, "ip")?,
                &needs(&ua, "user_agent")?,
            )
        } else {
            return Err("needs one of `cast`, `assumed_role`, `iam_user`, `root: true`".into());
        };
        if !spec["session_created_after"].is_null() {
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

    fn steps(&self, steps: &[Value], at: &str, s: &mut Script) -> Result<(), (String, String)> {
        for (i, step) in steps.iter().enumerate() {
            let place = format!("{at}[{i}]");
            self.step(step, &place, s).map_err(|r| (place.clone(), r))?;
        }
        Ok(())
    }

    fn step(&self, step: &Value, place: &str, s: &mut Script) -> Result<(), String> {
        if !step["at"].is_null() {
            s.at(number(step, "at")?);
        } else if let Some(secs) = step["pause"].as_i64() {
            s.pause(secs);
        } else if step["pause"].is_object() {
            let (secs, jitter) = (
                number(&step["pause"], "secs")?,
                number(&step["pause"], "jitter")?,
            );
            let gap = secs + s.rng.i64(0..jitter.max(1));
            s.pause(gap);
        } else if !step["pause_ms"].is_null() {
            let (lo, hi) = range(step, "pause_ms")?;
            s.pause_ms(lo, hi);
        } else if let Some(name) = step["call"].as_str() {
            let who = self.who(step)?;
            let source = event_source(text(step, "on")?);
            let request = self.document(&step["request"], s)?;
            let response = self.document(&step["response"], s)?;
            let rec = s.call(&who, &source, name, request, response);
            if let Some(sign_in) = step.get("console_sign_in") {
                console_sign_in(rec, sign_in["mfa"] == Value::Bool(true));
            }
        } else if step["invoke"].is_object() {
            let spec = &step["invoke"];
            let who = self.who(spec)?;
            let model = self.expand(text(spec, "model")?, s)?;
            let (lo, hi) = range(spec, "input")?;
            let input = s.rng.u32(lo as u32..hi as u32);
            let (lo, hi) = range(spec, "output")?;
            let output = s.rng.u32(lo as u32..hi as u32);
            s.invoke(&who, text(spec, "name")?, &model, input, output);
        } else if !step["repeat"].is_null() {
            let n = number(step, "repeat")?;
            let inner = step["steps"]
                .as_array()
                .ok_or("`repeat` needs `steps`, a list")?;
            for _ in 0..n {
                self.steps(inner, &format!("{place}.steps"), s)
                    .map_err(|(p, r)| format!("{p}: {r}"))?;
            }
        } else if let Some(effect) = step.get("effect") {
            let from_ms = s.start_ms + s.cursor_ms;
            let effect = if effect == "guardrail_deleted" {
                Effect::GuardrailDeleted { from_ms }
            } else if effect["key_unusable"].is_object() {
                let spec = &effect["key_unusable"];
                Effect::KeyUnusable {
                    from_ms,
                    key_arn: self.expand(text(spec, "key")?, s)?,
                    bucket: self.expand(text(spec, "bucket")?, s)?,
                    pending: spec["pending"] == Value::Bool(true),
                }
            } else {
                return Err("`effect` is `guardrail_deleted` or `{key_unusable: …}`".into());
            };
            s.effect(effect);
        } else {
            return Err(
                "a step is one of `at`, `pause`, `pause_ms`, `call`, `invoke`, `repeat`, `effect`"
                    .into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_file_runs() {
        for (name, text) in STORIES {
            let mut s = Script::new(&super::super::SimOptions::default(), name);
            run(name, text, &mut s).unwrap();
            assert!(!s.out.is_empty(), "{name}");
        }
    }

    #[test]
    fn a_bad_file_says_which_step_and_why() {
        let cases = [
            (
                "steps: [{call: X, by: nobody, on: sts}]",
                "steps[0]: `by: nobody` names no actor",
            ),
            ("steps: [{jump: 3}]", "steps[0]: a step is one of"),
            (
                "steps: [{at: 1}, {repeat: 2, steps: [{pause_ms: [5, 1]}]}]",
                "steps[1]: steps[1].steps[0]: `pause_ms` needs two whole numbers",
            ),
            (
                "actors: {a: {root: true}}\nsteps: []",
                "actors.a: needs `ip`",
            ),
            (
                "vars: {x: '${nothing}'}\nsteps: []",
                "vars.x: `${nothing}` names nothing",
            ),
            ("steps: {}", "steps: must be a list"),
        ];
        for (text, expected) in cases {
            let mut s = Script::new(&super::super::SimOptions::default(), "t");
            let e = run("t", text, &mut s).unwrap_err().to_string();
            assert!(
                e.starts_with("scenarios/t.yaml: ") && e.contains(expected),
                "{e}"
            );
        }
    }
}
