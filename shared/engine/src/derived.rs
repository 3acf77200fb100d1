//! Derived policy fields (a trailwarden extension to Sigma): what the
//! resource or trust policy a call sets grants, and to whom, computed from
//! the policy document CloudTrail logs with the call.
//!
//! Sigma matches field values; it cannot read a JSON policy held in a string
//! (IAM and KMS log their policies as JSON text) or tell an `Allow` from a
//! `Deny` statement. Rules read these fields instead, like any other:
//!
//! | field | value |
//! | --- | --- |
//! | `derived.policy.everyone` | `true` when an `Allow` statement grants every principal (`"Principal": "*"`, `"AWS": "*"`, or `NotPrincipal`), with or without a condition; `false` otherwise |
//! | `derived.policy.public` | `true` when such a statement has no restricting condition (below); `false` otherwise |
//! | `derived.policy.principals` | every principal an `Allow` statement names (AWS, service, federated and canonical-user principals, `*` included) |
//! | `derived.policy.accounts` | the 12-digit account IDs of the AWS principals an `Allow` statement names (an account ID, or the account in a principal's ARN) |
//! | `derived.policy.otherAccounts` | those of `accounts` that are not the account the call was made in (`recipientAccountId`, else `userIdentity.accountId`; neither: no value) |
//! | `derived.policy.untrustedAccounts` | those of `otherAccounts` not in the policy fact `trusted_accounts`; a rule that reads it is not run without the fact, unless it names `trusted_accounts` in `optional-facts:` (then every other account counts) |
//! | `derived.policy.openFederation` | the public identity providers (below) an `Allow` statement trusts as a `Federated` principal without pinning who may sign in: anyone with an account there can assume the role |
//! | `derived.policy.unnamedDestinations` | for `PutBucketReplication`, the destination buckets of the rules whose `Destination` names no readable `Account`: such a bucket may be in any account |
//!
//! A public identity provider issues tokens to anyone: GitHub Actions
//! (`token.actions.githubusercontent.com`), GitLab (`gitlab.com`), HCP
//! Terraform (`app.terraform.io`), Amazon Cognito identity pools
//! (`cognito-identity.amazonaws.com`), Google (`accounts.google.com`),
//! Facebook (`graph.facebook.com`) and Login with Amazon (`www.amazon.com`),
//! named by host or as an IAM OIDC provider ARN
//! (`arn:aws:iam::ACCOUNT:oidc-provider/HOST`; a host with a path, such as a
//! GitHub Enterprise issuer, is the organisation's own and not counted). A
//! statement pins who may sign in when a condition on one of the provider's
//! claim keys has values that each name someone. The operator must be
//! positive (not `...Not...`, not `...IfExists`, not `Null`) and not
//! `ForAllValues:` (true when the token lacks the claim). Under an `...Equals`
//! operator a value is literal: any non-empty value pins (no token's subject
//! is the text `repo:*`). Under `...Like`, a value with `*` or `?` pins only
//! when it is a `sub` pattern of GitHub, GitLab or Terraform whose text
//! before the first wildcard holds a whole owner: past the first `:`, a `/`
//! or `:` ends the organisation or group (`repo:acme/*`,
//! `project_path:group/*`, `organization:acme:*` pin; `repo:*`, `repo:a*`,
//! `repo*` and `*` do not: anyone can register an organisation named `a…`);
//! a wildcard in any other claim (an identity pool, an application id) pins
//! nothing. The keys: `HOST:sub` for GitHub, GitLab and Terraform; `HOST:aud`
//! (the identity pool) for Cognito; `:aud`, `:oaud` or `:sub` for Google;
//! `:app_id` or `:id` for Facebook; `:app_id` or `:user_id` for Amazon.
//! `aud` alone does not pin GitHub's tokens: it is `sts.amazonaws.com` for
//! every repository. See
//! <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_iam-condition-keys.html#condition-keys-wif>
//! and <https://docs.github.com/en/actions/security-for-github-actions/security-hardening-your-deployments/configuring-openid-connect-in-amazon-web-services>.
//!
//! A list with no element is no value: `|exists: true` on a list means it
//! has at least one; a list matches a value when any element does. Lists
//! keep at most [`MAX_PRINCIPALS`] entries (a policy document is attacker-
//! chosen text); `everyone` and `public` read every statement.
//!
//! A condition restricts a statement when it pins, to values without
//! wildcards, a key that narrows who the caller can be (the keys S3's own
//! public-policy check treats so, and their KMS and STS counterparts):
//! `aws:SourceAccount`, `aws:SourceArn`, `aws:SourceOwner`, `aws:SourceIp`,
//! `aws:SourceVpc`, `aws:SourceVpce`, `aws:SourceOrgID`, `aws:SourceOrgPaths`,
//! `aws:PrincipalOrgID`, `aws:PrincipalOrgPaths`, `aws:PrincipalAccount`,
//! `aws:PrincipalArn`, `aws:userid`, `kms:CallerAccount`, `sts:ExternalId`,
//! with a positive operator (not `...Not...`, not `...IfExists`, not `Null`).
//! A condition on anything else (`aws:SecureTransport`, a tag, a time) does
//! not make a wildcard less public. See
//! <https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-control-block-public-access.html#access-control-block-public-access-policy-status>.
//!
//! The documents read (others give no value for these fields):
//!
//! | eventSource | eventName | document |
//! | --- | --- | --- |
//! | `iam.amazonaws.com` | `CreateRole` | `requestParameters.assumeRolePolicyDocument` |
//! | `iam.amazonaws.com` | `UpdateAssumeRolePolicy` | `requestParameters.policyDocument` |
//! | `kms.amazonaws.com` | `PutKeyPolicy`, `CreateKey` | `requestParameters.policy` |
//! | `s3.amazonaws.com` | `PutBucketPolicy` | `requestParameters.bucketPolicy` |
//! | `kms.amazonaws.com` | `ReplicateKey` | `requestParameters.policy` (the replica's key policy) |
//! | `s3.amazonaws.com` | `PutAccessPointPolicy` | `requestParameters.PutAccessPointPolicyRequest.Policy` |
//! | `s3.amazonaws.com` | `PutAccessPointPolicyForObjectLambda` | `requestParameters.PutAccessPointPolicyForObjectLambdaRequest.Policy` |
//! | `s3.amazonaws.com` | `PutMultiRegionAccessPointPolicy` | `requestParameters.PutMultiRegionAccessPointPolicyRequest.Details.Policy` |
//! | `bedrock.amazonaws.com` | `PutResourcePolicy` | `requestParameters.resourcePolicy` |
//! | `sagemaker.amazonaws.com` | `PutModelPackageGroupPolicy` | `requestParameters.resourcePolicy` |
//! | `kms.amazonaws.com` | `CreateGrant` | none: `requestParameters.granteePrincipal` is the one principal granted (never everyone) |
//! | `s3.amazonaws.com` | `PutBucketReplication` | none: each rule's `requestParameters.ReplicationConfiguration.Rule[].Destination.Account` is an account the data goes to (never everyone) |
//!
//! A document is a JSON object or a string holding one (URL-encoded text is
//! decoded first, as IAM accepts it). One that does not parse gives no value.
//! The requests: <https://docs.aws.amazon.com/kms/latest/APIReference/API_ReplicateKey.html>,
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_control_PutAccessPointPolicy.html>,
//! <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_PutResourcePolicy.html>,
//! <https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_PutModelPackageGroupPolicy.html>.
//! The grammar: <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html>;
//! principals: <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html>.

use std::borrow::Cow;

use rsigma_eval::EventValue;
use serde_json::Value;
use trailwarden_cloudtrail::Record;

/// The prefix of every derived field.
pub const PREFIX: &str = "derived.policy.";

/// The derived fields, in the order of [`Derived`]'s index.
pub const FIELDS: [&str; 8] = [
    "derived.policy.everyone",
    "derived.policy.public",
    "derived.policy.principals",
    "derived.policy.accounts",
    "derived.policy.otherAccounts",
    "derived.policy.untrustedAccounts",
    "derived.policy.openFederation",
    "derived.policy.unnamedDestinations",
];

/// Public identity providers and the claim keys (after `HOST:`) whose
/// values pin who may sign in (see the module's documentation).
const PUBLIC_PROVIDERS: [(&str, &[&str]); 7] = [
    ("token.actions.githubusercontent.com", &["sub"]),
    ("gitlab.com", &["sub"]),
    ("app.terraform.io", &["sub"]),
    ("cognito-identity.amazonaws.com", &["aud"]),
    ("accounts.google.com", &["aud", "oaud", "sub"]),
    ("graph.facebook.com", &["app_id", "id"]),
    ("www.amazon.com", &["app_id", "user_id"]),
];

/// Entries kept in each list field.
pub const MAX_PRINCIPALS: usize = 1000;

/// Condition keys that narrow who the caller can be (lower-case).
const RESTRICTING_KEYS: [&str; 15] = [
    "aws:sourceaccount",
    "aws:sourcearn",
    "aws:sourceowner",
    "aws:sourceip",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:sourceorgid",
    "aws:sourceorgpaths",
    "aws:principalorgid",
    "aws:principalorgpaths",
    "aws:principalaccount",
    "aws:principalarn",
    "aws:userid",
    "kms:calleraccount",
    "sts:externalid",
];

/// The field that depends on the `trusted_accounts` policy fact.
pub const UNTRUSTED_ACCOUNTS: &str = "derived.policy.untrustedAccounts";

/// Which calls carry which policy document: (eventSource, eventName, the
/// field of `requestParameters`, dotted where it is nested). S3's control
/// API takes an XML body, which CloudTrail logs under the body's root
/// element (`PutAccessPointPolicyRequest`), as it does for bucket
/// configurations; the JSON APIs log their members by name.
const DOCUMENTS: [(&str, &str, &str); 11] = [
    (
        "iam.amazonaws.com",
        "CreateRole",
        "assumeRolePolicyDocument",
    ),
    (
        "iam.amazonaws.com",
        "UpdateAssumeRolePolicy",
        "policyDocument",
    ),
    ("kms.amazonaws.com", "PutKeyPolicy", "policy"),
    ("kms.amazonaws.com", "CreateKey", "policy"),
    ("s3.amazonaws.com", "PutBucketPolicy", "bucketPolicy"),
    ("kms.amazonaws.com", "ReplicateKey", "policy"),
    (
        "s3.amazonaws.com",
        "PutAccessPointPolicy",
        "PutAccessPointPolicyRequest.Policy",
    ),
    (
        "s3.amazonaws.com",
        "PutAccessPointPolicyForObjectLambda",
        "PutAccessPointPolicyForObjectLambdaRequest.Policy",
    ),
    (
        "s3.amazonaws.com",
        "PutMultiRegionAccessPointPolicy",
        "PutMultiRegionAccessPointPolicyRequest.Details.Policy",
    ),
    (
        "bedrock.amazonaws.com",
        "PutResourcePolicy",
        "resourcePolicy",
    ),
    (
        "sagemaker.amazonaws.com",
        "PutModelPackageGroupPolicy",
        "resourcePolicy",
    ),
];

/// The position of `path` in [`FIELDS`], if it is a derived field.
pub fn index(path: &str) -> Option<u8> {
    FIELDS.iter().position(|f| *f == path).map(|i| i as u8)
}

/// What the `Allow` statements of a policy document grant.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Grants {
    /// An `Allow` statement grants every principal.
    pub everyone: bool,
    /// One such statement has no condition.
    pub public: bool,
    /// Every principal named, in document order, each once.
    pub principals: Vec<String>,
    /// The account IDs of the AWS principals named, each once.
    pub accounts: Vec<String>,
    /// The public identity providers trusted without pinning who may sign
    /// in, each once.
    pub open_federation: Vec<String>,
    /// A replication configuration's destinations that name no account
    /// one can read (the destination bucket, each once): the bucket may be
    /// in any account.
    pub unnamed_destinations: Vec<String>,
}

/// The grants of the policy document the record's call sets; `None` when
/// the call sets none (see the module's table) or it does not parse.
pub fn grants(record: &Record<'_>) -> Option<Grants> {
    let source = record.event_source()?;
    let name = record.event_name()?;
    if (source, name) == ("kms.amazonaws.com", "CreateGrant") {
        // A grant names its grantee instead of holding a document.
        let grantee = record
            .nested("requestParameters")?
            .get("granteePrincipal")?;
        let grantee = grantee.as_str()?;
        let mut grants = Grants::default();
        grants.add_principal(grantee);
        if let Some(account) = account_of(grantee) {
            grants.accounts.push(account.to_owned());
        }
        return Some(grants);
    }
    if (source, name) == ("s3.amazonaws.com", "PutBucketReplication") {
        return replication_destinations(record);
    }
    let (_, _, field) = DOCUMENTS
        .iter()
        .find(|(s, n, _)| *s == source && *n == name)?;
    let document = field
        .split('.')
        .try_fold(record.nested("requestParameters")?, |v, key| v.get(key))?;
    let parsed;
    let document = match document {
        Value::Object(_) => document,
        Value::String(text) => {
            parsed = parse_document(text)?;
            &parsed
        }
        _ => return None,
    };
    Some(grants_of(document))
}

/// The accounts a `PutBucketReplication` configuration replicates to: the
/// `Destination.Account` of each of its rules (`Rule` is one object, or a
/// list when there are several), as the principals and accounts a policy
/// grants, so that `otherAccounts` and `untrustedAccounts` read every rule
/// (a Sigma filter on the list would match when any one rule does). A
/// destination that names no account one can read is an unnamed
/// destination (`unnamedDestinations`); `None` when the call logged no
/// configuration.
fn replication_destinations(record: &Record<'_>) -> Option<Grants> {
    let rules = record
        .nested("requestParameters")?
        .get("ReplicationConfiguration")?
        .get("Rule")?;
    let rules: Vec<&Value> = match rules {
        Value::Array(list) => list.iter().collect(),
        one => vec![one],
    };
    let mut grants = Grants::default();
    for rule in rules {
        let Some(destination) = rule.get("Destination") else {
            // No destination: this rule replicates nothing.
            continue;
        };
        // An account ID as text or, as an XML body's number may be logged,
        // a number (leading zeros restored).
        let account = match destination.get("Account") {
            Some(Value::String(text)) => account_of(text.trim()).map(str::to_owned),
            Some(Value::Number(n)) => n
                .as_u64()
                .filter(|n| *n < 1_000_000_000_000)
                .map(|n| format!("{n:012}")),
            _ => None,
        };
        match account {
            Some(account) => {
                grants.add_principal(&account);
                grants.add_account(&account);
            }
            None => {
                let bucket = destination
                    .get("Bucket")
                    .and_then(Value::as_str)
                    .unwrap_or("(no bucket named)");
                add_once(&mut grants.unnamed_destinations, bucket);
            }
        }
    }
    Some(grants)
}

/// A document given as text: JSON, or URL-encoded JSON.
fn parse_document(text: &str) -> Option<Value> {
    let text = text.trim();
    let decoded: Cow<'_, str> = if text.starts_with('{') {
        Cow::Borrowed(text)
    } else {
        percent_decode(text)?
    };
    match serde_json::from_str::<Value>(&decoded) {
        Ok(v @ Value::Object(_)) => Some(v),
        _ => None,
    }
}

/// `%XX` escapes (and `+` for space) decoded; `None` if not valid UTF-8.
fn percent_decode(text: &str) -> Option<Cow<'_, str>> {
    if !text.contains('%') && !text.contains('+') {
        return Some(Cow::Borrowed(text));
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len()
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit() =>
            {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// The grants of a parsed policy document.
pub fn grants_of(document: &Value) -> Grants {
    let mut grants = Grants::default();
    let statements: Vec<&Value> = match document.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => Vec::new(),
    };
    for statement in statements {
        if statement.get("Effect").and_then(Value::as_str) != Some("Allow") {
            continue;
        }
        let conditioned = statement.get("Condition").is_some_and(restricts);
        // `NotPrincipal` with `Allow`: everyone but those named.
        let mut everyone = statement.get("NotPrincipal").is_some();
        match statement.get("Principal") {
            Some(Value::String(s)) => {
                everyone |= s == "*";
                grants.add_principal(s);
            }
            Some(Value::Object(kinds)) => {
                for (kind, values) in kinds {
                    for value in one_or_many(values) {
                        let value = value.as_ref();
                        if kind == "AWS" && value == "*" {
                            everyone = true;
                        }
                        if kind == "Federated" {
                            if let Some((host, claims)) = public_provider(value) {
                                let pinned = statement
                                    .get("Condition")
                                    .is_some_and(|c| pins_sign_in(c, host, claims));
                                if !pinned && grants.open_federation.len() < MAX_PRINCIPALS {
                                    add_once(&mut grants.open_federation, host);
                                }
                            }
                        }
                        grants.add_principal(value);
                        if kind == "AWS" {
                            if let Some(account) = account_of(value) {
                                grants.add_account(account);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
        if everyone {
            grants.everyone = true;
            grants.public |= !conditioned;
        }
    }
    grants
}

impl Grants {
    fn add_principal(&mut self, principal: &str) {
        add_once(&mut self.principals, principal);
    }

    fn add_account(&mut self, account: &str) {
        add_once(&mut self.accounts, account);
    }
}

/// Add `item` unless present or the list is full ([`MAX_PRINCIPALS`]: the
/// scan stays linear in the document, whatever its size).
fn add_once(list: &mut Vec<String>, item: &str) {
    if list.len() < MAX_PRINCIPALS && !list.iter().any(|p| p == item) {
        list.push(item.to_owned());
    }
}

/// Whether a `Condition` block restricts who the caller can be (see the
/// module's documentation).
fn restricts(condition: &Value) -> bool {
    let Value::Object(operators) = condition else {
        return false;
    };
    operators.iter().any(|(operator, keys)| {
        let op = operator.to_ascii_lowercase();
        if op.contains("not") || op.ends_with("ifexists") || op == "null" {
            return false;
        }
        let Value::Object(keys) = keys else {
            return false;
        };
        keys.iter().any(|(key, values)| {
            RESTRICTING_KEYS.contains(&key.to_ascii_lowercase().as_str()) && {
                let values = one_or_many(values);
                !values.is_empty()
                    && values
                        .iter()
                        .all(|v| !v.is_empty() && !v.contains('*') && !v.ends_with("/0"))
            }
        })
    })
}

/// The public identity provider a `Federated` principal names (a host, or
/// an IAM OIDC provider ARN whose host has no path), with its pinning
/// claim keys.
fn public_provider(principal: &str) -> Option<(&'static str, &'static [&'static str])> {
    let host = match principal.split_once(":oidc-provider/") {
        Some((arn, host)) if arn.starts_with("arn:") => host,
        Some(_) => return None,
        None => principal,
    };
    PUBLIC_PROVIDERS
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(host))
        .map(|(known, claims)| (*known, *claims))
}

/// Whether a `Condition` block pins who may sign in with `host`: a positive
/// operator on `host:CLAIM` (a claim of `claims`) whose values each name
/// someone (see the module's documentation).
fn pins_sign_in(condition: &Value, host: &str, claims: &[&str]) -> bool {
    let Value::Object(operators) = condition else {
        return false;
    };
    // Providers whose `sub` names an owner first (`repo:ORG/…`,
    // `project_path:GROUP/…`, `organization:ORG:…`).
    let owner_first = matches!(
        host,
        "token.actions.githubusercontent.com" | "gitlab.com" | "app.terraform.io"
    );
    let names_someone = |v: &str, like: bool, claim: &str| {
        if v.is_empty() {
            return false;
        }
        let Some(wildcard) = v.find(['*', '?']).filter(|_| like) else {
            return true;
        };
        owner_first
            && claim.eq_ignore_ascii_case("sub")
            && v[..wildcard]
                .split_once(':')
                .is_some_and(|(_, owner)| owner.contains(['/', ':']))
    };
    operators.iter().any(|(operator, keys)| {
        let op = operator.to_ascii_lowercase();
        if op.contains("not")
            || op.ends_with("ifexists")
            || op == "null"
            || op.starts_with("forallvalues:")
        {
            return false;
        }
        let like = op.ends_with("like");
        let Value::Object(keys) = keys else {
            return false;
        };
        keys.iter().any(|(key, values)| {
            let Some((key_host, claim)) = key.rsplit_once(':') else {
                return false;
            };
            key_host.eq_ignore_ascii_case(host)
                && claims.iter().any(|c| c.eq_ignore_ascii_case(claim))
                && {
                    let values = one_or_many(values);
                    !values.is_empty() && values.iter().all(|v| names_someone(v, like, claim))
                }
        })
    })
}

/// A principal or condition value, or each of a list of them (strings,
/// and numbers as IAM reads them: an account ID written as a number).
fn one_or_many(value: &Value) -> Vec<Cow<'_, str>> {
    fn one(v: &Value) -> Option<Cow<'_, str>> {
        match v {
            Value::String(s) => Some(Cow::Borrowed(s.as_str())),
            Value::Number(n) => Some(Cow::Owned(n.to_string())),
            _ => None,
        }
    }
    match value {
        Value::Array(list) => list.iter().filter_map(one).collect(),
        other => one(other).into_iter().collect(),
    }
}

/// The account of an AWS principal: a bare 12-digit account ID, or the
/// account field of an ARN (`arn:PARTITION:SERVICE::ACCOUNT:...`).
pub fn account_of(principal: &str) -> Option<&str> {
    let is_account = |s: &str| s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit());
    if is_account(principal) {
        return Some(principal);
    }
    let mut parts = principal.splitn(6, ':');
    if parts.next() != Some("arn") {
        return None;
    }
    let account = parts.nth(3)?;
    is_account(account).then_some(account)
}

/// The value of derived field `index` (see [`FIELDS`]) for `record`, with
/// the organisation's trusted accounts (`None`: not known here, and
/// `untrustedAccounts` has no value).
pub fn value<'r>(
    record: &Record<'_>,
    index: u8,
    trusted: Option<&[String]>,
) -> Option<EventValue<'r>> {
    let grants = grants(record)?;
    // An empty list is no value (so `|exists: true` means "some").
    let list = |items: Vec<String>| {
        if items.is_empty() {
            return None;
        }
        Some(EventValue::Array(
            items
                .into_iter()
                .map(|s| EventValue::Str(Cow::Owned(s)))
                .collect(),
        ))
    };
    // The account of the call; without one, "other" means nothing.
    let own = record
        .recipient_account_id()
        .map(str::to_owned)
        .or_else(|| record.identity().account_id)
        .filter(|a| !a.is_empty());
    let others = |accounts: Vec<String>| -> Option<Vec<String>> {
        let own = own.as_deref()?;
        Some(accounts.into_iter().filter(|a| a != own).collect())
    };
    match index {
        0 => Some(EventValue::Bool(grants.everyone)),
        1 => Some(EventValue::Bool(grants.public)),
        2 => list(grants.principals),
        3 => list(grants.accounts),
        4 => list(others(grants.accounts)?),
        5 => {
            let trusted = trusted?;
            list(
                others(grants.accounts)?
                    .into_iter()
                    .filter(|a| !trusted.contains(a))
                    .collect(),
            )
        }
        6 => list(grants.open_federation),
        7 => list(grants.unnamed_destinations),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Public identity providers trusted without pinning who may sign in,
    /// and the near misses: pinned subjects, Cognito pinned by pool, a
    /// negative or `IfExists` operator, `aud` alone for GitHub, wildcards
    /// that pin nothing, enterprise issuers, SAML and private providers,
    /// `Deny` statements.
    #[test]
    fn open_federation_is_a_public_provider_without_a_pinned_subject() {
        let open = |statement: Value| grants_of(&json!({"Statement": [statement]})).open_federation;
        let gh = "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com";
        let web = |principal: &str, condition: Value| {
            json!({"Effect": "Allow", "Principal": {"Federated": principal},
                   "Action": "sts:AssumeRoleWithWebIdentity", "Condition": condition})
        };
        let github = vec!["token.actions.githubusercontent.com".to_owned()];
        assert_eq!(open(web(gh, json!({}))), github);
        assert_eq!(
            open(web(
                gh,
                json!({"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}})
            )),
            github
        );
        for sub in [
            json!("*"),
            json!("repo:*"),
            json!("repo:*/*"),
            json!(["repo:acme/app:*", "repo:*"]),
            json!("repo*:x"),
            json!("repo*"),
            json!("repo:a*"),
            json!("repo:acme?"),
        ] {
            assert_eq!(
                open(web(
                    gh,
                    json!({"StringLike": {"token.actions.githubusercontent.com:sub": sub}})
                )),
                github,
                "{sub}"
            );
        }
        assert_eq!(
            open(web(
                gh,
                json!({"StringNotLike": {"token.actions.githubusercontent.com:sub": "repo:acme/*"}})
            )),
            github
        );
        assert_eq!(
            open(web(
                gh,
                json!({"StringLikeIfExists": {"token.actions.githubusercontent.com:sub": "repo:acme/*"}})
            )),
            github
        );
        // `ForAllValues:` holds for a token without the claim.
        assert_eq!(
            open(web(
                gh,
                json!({"ForAllValues:StringLike": {"token.actions.githubusercontent.com:sub": "repo:acme/*"}})
            )),
            github
        );
        // Under StringEquals a wildcard is literal text no token carries.
        assert!(open(web(
            gh,
            json!({"StringEquals": {"token.actions.githubusercontent.com:sub": "repo:*"}})
        ))
        .is_empty());
        // GitLab and Terraform owners.
        let gitlab = "arn:aws:iam::111122223333:oidc-provider/gitlab.com";
        assert!(open(web(
            gitlab,
            json!({"StringLike": {"gitlab.com:sub": "project_path:ml-group/*"}})
        ))
        .is_empty());
        assert_eq!(
            open(web(
                gitlab,
                json!({"StringLike": {"gitlab.com:sub": "project_path:m*"}})
            )),
            ["gitlab.com"]
        );
        assert!(open(web(
            "app.terraform.io",
            json!({"StringLike": {"app.terraform.io:sub": "organization:acme:project:*"}})
        ))
        .is_empty());
        // Pinned: an organisation, a repository, a branch, an environment.
        for sub in [
            json!("repo:acme/*"),
            json!("repo:acme/app:ref:refs/heads/main"),
            json!(["repo:acme/a:*", "repo:acme/b:environment:prod"]),
        ] {
            assert!(
                open(web(gh, json!({"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
                                    "StringLike": {"token.actions.githubusercontent.com:sub": sub}}))).is_empty(),
                "{sub}"
            );
        }
        // Cognito: pinned by the identity pool.
        let cognito = vec!["cognito-identity.amazonaws.com".to_owned()];
        assert_eq!(
            open(web(
                "cognito-identity.amazonaws.com",
                json!({"ForAnyValue:StringLike": {"cognito-identity.amazonaws.com:amr": "unauthenticated"}})
            )),
            cognito
        );
        assert_eq!(
            open(web(
                "cognito-identity.amazonaws.com",
                json!({"StringLike": {"cognito-identity.amazonaws.com:aud": "us-east-1:*"}})
            )),
            cognito
        );
        assert!(open(web("cognito-identity.amazonaws.com", json!({"StringEquals": {"cognito-identity.amazonaws.com:aud": "us-east-1:12345678-abcd-4ef0-9abc-1234567890ab"}}))).is_empty());
        assert_eq!(
            open(web(
                "cognito-identity.amazonaws.com",
                json!({"StringLike": {"cognito-identity.amazonaws.com:aud": "us-east-1:a*"}})
            )),
            cognito
        );
        assert_eq!(
            open(web(
                "accounts.google.com",
                json!({"StringLike": {"accounts.google.com:aud": "1*"}})
            )),
            ["accounts.google.com"]
        );
        // No condition at all, and Google pinned by its client id.
        assert_eq!(
            open(
                json!({"Effect": "Allow", "Principal": {"Federated": ["accounts.google.com", "graph.facebook.com"]}, "Action": "sts:AssumeRoleWithWebIdentity"})
            ),
            ["accounts.google.com", "graph.facebook.com"]
        );
        assert!(open(web("accounts.google.com", json!({"StringEquals": {"accounts.google.com:aud": "1234-abc.apps.googleusercontent.com"}}))).is_empty());
        // Not public providers, or not an Allow.
        for principal in [
            "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com/acme-enterprise",
            "arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC",
            "arn:aws:iam::111122223333:saml-provider/Okta",
            "token.actions.githubusercontent.com:sub",
        ] {
            assert!(open(web(principal, json!({}))).is_empty(), "{principal}");
        }
        assert!(open(json!({"Effect": "Deny", "Principal": {"Federated": gh}, "Action": "sts:AssumeRoleWithWebIdentity"})).is_empty());
        // An AWS principal is not federation.
        assert!(open(json!({"Effect": "Allow", "Principal": {"AWS": "token.actions.githubusercontent.com"}, "Action": "sts:AssumeRole"})).is_empty());
    }

    /// The documents of the calls the module's table names, found where
    /// CloudTrail logs them: nested under an S3 control request's root
    /// element, as a string or an object, and nothing where a key on the
    /// way is missing or not an object.
    #[test]
    fn documents_are_found_at_each_calls_place_nested_or_not() {
        let outside = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::777788889999:root"}, "Action": "s3:GetObject", "Resource": "*"}]});
        let text = outside.to_string();
        let grants_in = |source: &str, name: &str, params: Value| {
            let record = json!({"eventVersion": "1.11", "eventTime": "2026-12-01T00:00:00Z",
                "eventSource": source, "eventName": name, "requestParameters": params,
                "recipientAccountId": "111122223333"})
            .to_string();
            grants(&Record::parse(&record).unwrap()).map(|g| g.accounts)
        };
        let found = Some(vec!["777788889999".to_owned()]);
        let ap = |policy: Value| json!({"PutAccessPointPolicyRequest": {"xmlns": "x", "Policy": policy}, "name": "ap"});
        assert_eq!(
            grants_in("s3.amazonaws.com", "PutAccessPointPolicy", ap(json!(text))),
            found
        );
        assert_eq!(
            grants_in(
                "s3.amazonaws.com",
                "PutAccessPointPolicy",
                ap(outside.clone())
            ),
            found
        );
        let mrap = json!({"PutMultiRegionAccessPointPolicyRequest": {"Details": {"Name": "m", "Policy": text}}});
        assert_eq!(
            grants_in("s3.amazonaws.com", "PutMultiRegionAccessPointPolicy", mrap),
            found
        );
        for (source, name, field) in [
            (
                "bedrock.amazonaws.com",
                "PutResourcePolicy",
                "resourcePolicy",
            ),
            (
                "sagemaker.amazonaws.com",
                "PutModelPackageGroupPolicy",
                "resourcePolicy",
            ),
            ("kms.amazonaws.com", "ReplicateKey", "policy"),
        ] {
            assert_eq!(
                grants_in(source, name, json!({field: text})),
                found,
                "{name}"
            );
        }
        for params in [
            json!({"PutAccessPointPolicyRequest": text}),
            json!({"PutAccessPointPolicyRequest": {"Policy": "not a policy"}}),
            json!({"PutAccessPointPolicyRequest": null}),
            json!({"Policy": text}),
            json!({}),
        ] {
            assert_eq!(
                grants_in("s3.amazonaws.com", "PutAccessPointPolicy", params.clone()),
                None,
                "{params}"
            );
        }
        // A replication configuration: each rule's destination account,
        // one rule or a list of them; a rule naming none adds nothing.
        let rule = |account: Option<&str>| match account {
            Some(a) => {
                json!({"ID": "r", "Destination": {"Bucket": "arn:aws:s3:::b", "Account": a}})
            }
            None => json!({"ID": "r", "Destination": {"Bucket": "arn:aws:s3:::b"}}),
        };
        let replication = |rules: Value| {
            grants_in(
                "s3.amazonaws.com",
                "PutBucketReplication",
                json!({"bucketName": "b", "ReplicationConfiguration": {"Role": "x", "Rule": rules}}),
            )
        };
        assert_eq!(replication(rule(Some("777788889999"))), found);
        assert_eq!(
            replication(json!([
                rule(Some("444455556666")),
                rule(None),
                rule(Some("777788889999")),
                rule(Some("not an account"))
            ])),
            Some(vec!["444455556666".to_owned(), "777788889999".to_owned()])
        );
        assert_eq!(replication(json!([rule(None)])), Some(vec![]));
        // A number is an account (leading zeros restored); text that is
        // not one, like no Account at all, is an unnamed destination.
        assert_eq!(
            replication(
                json!({"Destination": {"Bucket": "arn:aws:s3:::b", "Account": 12345678901_u64}})
            ),
            Some(vec!["012345678901".to_owned()])
        );
        let unnamed = |rules: Value| {
            let record = json!({"eventVersion": "1.11", "eventTime": "2026-12-01T00:00:00Z",
                "eventSource": "s3.amazonaws.com", "eventName": "PutBucketReplication",
                "requestParameters": {"ReplicationConfiguration": {"Rule": rules}},
                "recipientAccountId": "111122223333"})
            .to_string();
            grants(&Record::parse(&record).unwrap()).map(|g| g.unnamed_destinations)
        };
        assert_eq!(
            unnamed(
                json!([rule(None), rule(Some("111122223333")), {"Destination": {"Bucket": "arn:aws:s3:::c", "Account": "abc"}}, {"ID": "no destination"}])
            ),
            Some(vec![
                "arn:aws:s3:::b".to_owned(),
                "arn:aws:s3:::c".to_owned()
            ])
        );
        assert_eq!(
            grants_in(
                "s3.amazonaws.com",
                "PutBucketReplication",
                json!({"bucketName": "b"})
            ),
            None
        );
        // The same document on a call the table does not name.
        assert_eq!(
            grants_in(
                "secretsmanager.amazonaws.com",
                "PutResourcePolicy",
                json!({"resourcePolicy": text})
            ),
            None
        );
    }

    #[test]
    fn statements_are_read_as_the_grammar_says() {
        // A public statement beside a deny-insecure-transport one.
        let g = grants_of(&json!({"Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"},
            {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
        ]}));
        assert!(g.everyone && g.public, "{g:?}");
        // A wildcard narrowed by a condition, and a Deny with a wildcard.
        let g = grants_of(&json!({"Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:Decrypt", "Condition": {"StringEquals": {"kms:CallerAccount": "111122223333"}}},
            {"Effect": "Deny", "Principal": "*", "Action": "kms:*"}
        ]}));
        assert!(g.everyone && !g.public, "{g:?}");
        // Accounts from IDs and ARNs, services, one statement not in a list.
        let g = grants_of(&json!({"Statement":
            {"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::444455556666:root", "777788889999", "arn:aws:sts::444455556666:assumed-role/r/s", "AIDAEXAMPLE"], "Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
        }));
        assert_eq!(g.accounts, ["444455556666", "777788889999"]);
        assert_eq!(g.principals.len(), 5);
        assert!(!g.everyone && !g.public);
        // NotPrincipal with Allow is everyone but those named.
        let g = grants_of(
            &json!({"Statement": [{"Effect": "Allow", "NotPrincipal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "*"}]}),
        );
        assert!(g.everyone && g.public);
        // Nothing granted: no statements, effects other than Allow, junk.
        for doc in [
            json!({}),
            json!({"Statement": "x"}),
            json!({"Statement": [{"Effect": "allow", "Principal": "*"}, 7]}),
        ] {
            assert_eq!(grants_of(&doc), Grants::default(), "{doc}");
        }
    }

    #[test]
    fn only_conditions_on_who_the_caller_is_restrict_a_wildcard() {
        let public = |condition: Value| {
            grants_of(&json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Condition": condition}]})).public
        };
        for restricting in [
            json!({"StringEquals": {"kms:CallerAccount": "111122223333"}}),
            json!({"StringEquals": {"aws:PrincipalOrgID": ["o-abc123defg"]}}),
            json!({"ArnLike": {"aws:SourceArn": "arn:aws:s3:::acme-logs"}}),
            json!({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}),
            json!({"StringEquals": {"STS:EXTERNALID": "7f3c"}}),
        ] {
            assert!(!public(restricting.clone()), "{restricting}");
        }
        for loose in [
            json!({"Bool": {"aws:SecureTransport": "true"}}),
            json!({"StringNotEquals": {"aws:PrincipalOrgID": "o-abc123defg"}}),
            json!({"StringEqualsIfExists": {"aws:PrincipalOrgID": "o-abc123defg"}}),
            json!({"StringLike": {"aws:PrincipalArn": "*"}}),
            json!({"Null": {"aws:PrincipalOrgID": "false"}}),
            json!({"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}),
            json!({"StringEquals": {"aws:PrincipalOrgID": []}}),
            json!({}),
            json!("junk"),
        ] {
            assert!(public(loose.clone()), "{loose}");
        }
        // An account ID written as a number is an account.
        let g = grants_of(
            &json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": 444455556666u64}, "Action": "*"}]}),
        );
        assert_eq!(g.accounts, ["444455556666"]);
        // Lists are capped; `everyone` still reads every statement.
        let mut statements: Vec<Value> = (0..3000u64)
            .map(|i| json!({"Effect": "Allow", "Principal": {"AWS": format!("{:012}", i)}, "Action": "*"}))
            .collect();
        statements.push(json!({"Effect": "Allow", "Principal": "*", "Action": "*"}));
        let g = grants_of(&json!({ "Statement": statements }));
        assert_eq!(g.accounts.len(), MAX_PRINCIPALS);
        assert!(g.public);
    }

    #[test]
    fn accounts_of_principals() {
        assert_eq!(account_of("123456789012"), Some("123456789012"));
        assert_eq!(
            account_of("arn:aws:iam::123456789012:role/x"),
            Some("123456789012")
        );
        assert_eq!(
            account_of("arn:aws-us-gov:iam::123456789012:root"),
            Some("123456789012")
        );
        for other in [
            "*",
            "12345678901",
            "arn:aws:iam::12345678901x:root",
            "arn:aws:s3:::bucket",
            "AROAEXAMPLE",
            "arn",
        ] {
            assert_eq!(account_of(other), None, "{other}");
        }
    }

    #[test]
    fn documents_as_text_objects_and_url_encoded_text() {
        let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"sts:AssumeRole"}]}"#;
        let encoded: String = doc
            .bytes()
            .map(|b| match b {
                b'{' | b'}' | b'"' | b':' | b',' | b'[' | b']' => format!("%{b:02X}"),
                b => (b as char).to_string(),
            })
            .collect();
        for text in [doc.to_owned(), encoded] {
            let v = parse_document(&text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(grants_of(&v).accounts, ["444455556666"]);
        }
        assert!(parse_document("not json").is_none());
        // Not two hex digits: the `%` is kept (`%+9` is not byte 9).
        assert_eq!(percent_decode("a%+9b%4").unwrap(), "a% 9b%4");
        assert_eq!(percent_decode("%41+%42").unwrap(), "A B");
        assert!(parse_document("%7B%ZZ").is_none());
        assert!(parse_document("[1]").is_none());
    }
}
