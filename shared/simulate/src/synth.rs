//! Deterministic generator of realistic CloudTrail records.
//!
//! [`Synth`] simulates one AWS account with AI workloads: a fixed cast of
//! about twenty principals (IAM users with long-term `AKIA…` keys, assumed
//! roles with `ASIA…` session keys, IAM Identity Center permission sets) and
//! AWS services acting on their behalf, each with a stable source IP and user
//! agent. [`Synth::benign`] draws the next record of ordinary background
//! activity, weighted like a real account: Bedrock runtime inference with
//! token counts, S3 data events on training-data and artifact buckets, KMS
//! calls by AWS services, STS, EC2/IAM/CloudWatch/Logs/Lambda reads and
//! SageMaker. A small share of calls fail with a realistic `errorCode`.
//! Benign activity never contains anything a security team would flag (no
//! logging or guardrail tampering, no policy changes, no key deletion, no
//! model-access enablement, no root usage).
//!
//! [`Synth::call`] builds one record for any call by any [`Actor`], filling
//! the whole CloudTrail envelope (identity, TLS details, resources, S3
//! `additionalEventData`, IDs, data/management category), so attack scenarios
//! can be written as a list of calls.
//!
//! Everything random comes from one `fastrand::Rng` seeded from
//! [`SynthConfig::seed`], so a configuration always yields byte-identical
//! output. Records are `serde_json::Value`s; [`write_record`] and
//! [`write_log_file`] serialize them with CloudTrail's own key order
//! (`eventVersion` first), and [`write_log_file`] streams an S3 delivery file
//! (`{"Records":[...]}`, optionally gzip-compressed) without buffering the
//! records. [`write_samples`] writes the sample log files under `events/`.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, Duration, TimeZone, Timelike, Utc};
use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{json, Map, Value};

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

/// Parameters of a simulated account.
#[derive(Clone, Debug)]
pub struct SynthConfig {
    /// 12-digit account ID that receives the events (`recipientAccountId`).
    pub account: String,
    /// Region of every call (`awsRegion`).
    pub region: String,
    /// Seed of the random generator: equal configurations give equal output.
    pub seed: u64,
    /// Simulated time of the first record.
    pub start: DateTime<Utc>,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            account: "111122223333".to_string(),
            region: "us-east-1".to_string(),
            seed: 1,
            start: Utc.with_ymd_and_hms(2026, 11, 2, 8, 0, 0).unwrap(),
        }
    }
}

// ---------------------------------------------------------------------------
// Actors
// ---------------------------------------------------------------------------

/// An identity that makes API calls, with the network origin and client it
/// calls from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    account: String,
    identity: Identity,
    source_ip: String,
    user_agent: String,
    mfa: bool,
    /// Start of the role session (Unix seconds); when unset, sessions are
    /// taken to be refreshed hourly.
    session_created: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Identity {
    IamUser {
        name: String,
        principal_id: String,
        access_key_id: String,
    },
    AssumedRole {
        role_name: String,
        role_id: String,
        role_arn: String,
        session_name: String,
        access_key_id: String,
    },
    AwsService {
        host: String,
    },
    Root {
        access_key_id: Option<String>,
    },
}

impl Actor {
    /// An IAM user calling with a long-term access key (`AKIA…`).
    pub fn iam_user(
        account: &str,
        name: &str,
        access_key_id: &str,
        source_ip: &str,
        user_agent: &str,
    ) -> Self {
        Actor {
            account: account.to_string(),
            identity: Identity::IamUser {
                name: name.to_string(),
                principal_id: derived_id("AIDA", &format!("{account}/user/{name}"), 21),
                access_key_id: access_key_id.to_string(),
            },
            source_ip: source_ip.to_string(),
            user_agent: user_agent.to_string(),
            mfa: false,
            session_created: None,
        }
    }

    /// A session of an IAM role, calling with temporary credentials
    /// (`ASIA…`). Roles named `AWSReservedSSO_*` get the IAM Identity Center
    /// role path in their ARN.
    pub fn assumed_role(
        account: &str,
        role_name: &str,
        session_name: &str,
        access_key_id: &str,
        source_ip: &str,
        user_agent: &str,
    ) -> Self {
        let role_arn = if role_name.starts_with("AWSReservedSSO_") {
            format!("arn:aws:iam::{account}:role/aws-reserved/sso.amazonaws.com/{role_name}")
        } else {
            format!("arn:aws:iam::{account}:role/{role_name}")
        };
        Actor {
            account: account.to_string(),
            identity: Identity::AssumedRole {
                role_name: role_name.to_string(),
                role_id: derived_id("AROA", &format!("{account}/role/{role_name}"), 21),
                role_arn,
                session_name: session_name.to_string(),
                access_key_id: access_key_id.to_string(),
            },
            source_ip: source_ip.to_string(),
            user_agent: user_agent.to_string(),
            mfa: false,
            session_created: None,
        }
    }

    /// An AWS service calling on the account's behalf, e.g.
    /// `cloudtrail.amazonaws.com`; its host is also its source and user agent.
    pub fn aws_service(service_host: &str) -> Self {
        Actor {
            account: String::new(),
            identity: Identity::AwsService {
                host: service_host.to_string(),
            },
            source_ip: service_host.to_string(),
            user_agent: service_host.to_string(),
            mfa: false,
            session_created: None,
        }
    }

    /// The account's root user, optionally with a root access key.
    pub fn root(
        account: &str,
        access_key_id: Option<&str>,
        source_ip: &str,
        user_agent: &str,
    ) -> Self {
        Actor {
            account: account.to_string(),
            identity: Identity::Root {
                access_key_id: access_key_id.map(str::to_string),
            },
            source_ip: source_ip.to_string(),
            user_agent: user_agent.to_string(),
            mfa: false,
            session_created: None,
        }
    }

    /// The same identity calling from another address.
    pub fn with_source_ip(mut self, source_ip: &str) -> Self {
        self.source_ip = source_ip.to_string();
        self
    }

    /// The same identity calling with another client.
    pub fn with_user_agent(mut self, user_agent: &str) -> Self {
        self.user_agent = user_agent.to_string();
        self
    }

    /// Whether the session was authenticated with MFA
    /// (`sessionContext.attributes.mfaAuthenticated`).
    pub fn with_mfa(mut self, mfa: bool) -> Self {
        self.mfa = mfa;
        self
    }

    /// When the role session began (`sessionContext.attributes.creationDate`),
    /// for a session obtained during the simulation.
    pub fn with_session_created(mut self, at: DateTime<Utc>) -> Self {
        self.session_created = Some(at.timestamp());
        self
    }

    /// `userIdentity.type`: `IAMUser`, `AssumedRole`, `AWSService` or `Root`.
    pub fn identity_type(&self) -> &'static str {
        match self.identity {
            Identity::IamUser { .. } => "IAMUser",
            Identity::AssumedRole { .. } => "AssumedRole",
            Identity::AwsService { .. } => "AWSService",
            Identity::Root { .. } => "Root",
        }
    }

    /// The account the identity belongs to (empty for AWS services).
    pub fn account(&self) -> &str {
        &self.account
    }

    /// `sourceIPAddress` of the actor's calls.
    pub fn source_ip(&self) -> &str {
        &self.source_ip
    }

    /// `userAgent` of the actor's calls.
    pub fn user_agent(&self) -> &str {
        &self.user_agent
    }

    /// The access key the actor signs with, if any.
    pub fn access_key_id(&self) -> Option<&str> {
        match &self.identity {
            Identity::IamUser { access_key_id, .. }
            | Identity::AssumedRole { access_key_id, .. } => Some(access_key_id),
            Identity::Root { access_key_id } => access_key_id.as_deref(),
            Identity::AwsService { .. } => None,
        }
    }

    /// The name that identifies the actor: user name, role name, service
    /// host, or `root`.
    pub fn name(&self) -> &str {
        match &self.identity {
            Identity::IamUser { name, .. } => name,
            Identity::AssumedRole { role_name, .. } => role_name,
            Identity::AwsService { host } => host,
            Identity::Root { .. } => "root",
        }
    }

    /// Session name of an assumed role.
    pub fn session_name(&self) -> Option<&str> {
        match &self.identity {
            Identity::AssumedRole { session_name, .. } => Some(session_name),
            _ => None,
        }
    }

    /// `userIdentity.arn` (None for AWS services, which have none).
    pub fn arn(&self) -> Option<String> {
        let account = &self.account;
        match &self.identity {
            Identity::IamUser { name, .. } => Some(format!("arn:aws:iam::{account}:user/{name}")),
            Identity::AssumedRole {
                role_name,
                session_name,
                ..
            } => Some(format!(
                "arn:aws:sts::{account}:assumed-role/{role_name}/{session_name}"
            )),
            Identity::Root { .. } => Some(format!("arn:aws:iam::{account}:root")),
            Identity::AwsService { .. } => None,
        }
    }

    fn is_service(&self) -> bool {
        matches!(self.identity, Identity::AwsService { .. })
    }

    fn is_console(&self) -> bool {
        self.user_agent == UA_CONSOLE
    }

    /// The `userIdentity` object of a call made at `at` (Unix seconds).
    fn user_identity(&self, at: i64) -> Value {
        let account = &self.account;
        match &self.identity {
            Identity::IamUser {
                name,
                principal_id,
                access_key_id,
            } => json!({
                "type": "IAMUser",
                "principalId": principal_id,
                "arn": format!("arn:aws:iam::{account}:user/{name}"),
                "accountId": account,
                "accessKeyId": access_key_id,
                "userName": name,
            }),
            Identity::AssumedRole {
                role_name,
                role_id,
                role_arn,
                session_name,
                access_key_id,
            } => {
                let created = self.session_created.unwrap_or_else(|| {
                    // Sessions are refreshed hourly, each at its own minute.
                    let offset = ((fnv1a(session_name) ^ fnv1a(role_name)) % 3600) as i64;
                    let created = at - at.rem_euclid(3600) + offset;
                    if created > at {
                        created - 3600
                    } else {
                        created
                    }
                });
                let mut identity = json!({
                    "type": "AssumedRole",
                    "principalId": format!("{role_id}:{session_name}"),
                    "arn": format!("arn:aws:sts::{account}:assumed-role/{role_name}/{session_name}"),
                    "accountId": account,
                    "accessKeyId": access_key_id,
                    "sessionContext": {
                        "sessionIssuer": {
                            "type": "Role",
                            "principalId": role_id,
                            "arn": role_arn,
                            "accountId": account,
                            "userName": role_name,
                        },
                        "webIdFederationData": {},
                        "attributes": {
                            "creationDate": fmt_time(created),
                            "mfaAuthenticated": if self.mfa { "true" } else { "false" },
                        },
                    },
                });
                // An EC2 instance profile's session is named after the
                // instance; CloudTrail marks credentials the instance
                // metadata service delivered (2.0: IMDSv2).
                if is_instance_id(session_name) {
                    identity["sessionContext"]["ec2RoleDelivery"] = "2.0".into();
                }
                identity
            }
            Identity::AwsService { host } => json!({
                "type": "AWSService",
                "invokedBy": host,
            }),
            Identity::Root { access_key_id } => {
                let mut m = Map::new();
                m.insert("type".into(), "Root".into());
                m.insert("principalId".into(), account.as_str().into());
                m.insert("arn".into(), format!("arn:aws:iam::{account}:root").into());
                m.insert("accountId".into(), account.as_str().into());
                if let Some(key) = access_key_id {
                    m.insert("accessKeyId".into(), key.as_str().into());
                }
                Value::Object(m)
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The simulated account's cast and resources
// ---------------------------------------------------------------------------

const UA_CONSOLE: &str = "console.amazonaws.com";
const UA_CLI_MAC: &str = "aws-cli/2.17.42 md/awscrt#0.21.2 ua/2.0 os/macos#23.6.0 md/arch#arm64 lang/python#3.12.4 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/prompt#off";
const UA_CLI_LINUX: &str = "aws-cli/2.18.5 md/awscrt#0.22.0 ua/2.0 os/linux#6.8.0-1014-aws md/arch#x86_64 lang/python#3.12.6 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/distrib#ubuntu.24 md/prompt#off";
const UA_CLI_GHA: &str = "aws-cli/2.18.0 md/awscrt#0.21.5 ua/2.0 os/linux#6.5.0-1025-azure md/arch#x86_64 lang/python#3.12.6 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/distrib#ubuntu.22 md/prompt#off";
const UA_TERRAFORM: &str = "APN/1.0 HashiCorp/1.0 Terraform/1.9.5 (+https://www.terraform.io) terraform-provider-aws/5.72.1 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.32.2 ua/2.1 os/linux lang/go#1.23.2 md/GOOS#linux md/GOARCH#amd64";
const UA_BOTO_EC2: &str = "Boto3/1.34.144 md/Botocore#1.34.144 ua/2.0 os/linux#6.1.109-118.189.amzn2023.x86_64 md/arch#x86_64 lang/python#3.11.9 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.144";
const UA_BOTO_TRAINING: &str = "Boto3/1.34.131 md/Botocore#1.34.131 ua/2.0 os/linux#5.10.226-214.880.amzn2.x86_64 md/arch#x86_64 lang/python#3.10.14 md/pyimpl#CPython cfg/retry-mode#standard Botocore/1.34.131 AWS-SageMaker-Python-SDK/2.227.0";
const UA_BOTO_NOTEBOOK: &str = "Boto3/1.34.101 md/Botocore#1.34.101 ua/2.0 os/linux#5.10.225-213.878.amzn2.x86_64 md/arch#x86_64 lang/python#3.10.14 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.101 AWS-SageMaker-Python-SDK/2.224.1 AWS-SageMaker-Notebook-Instance";
const UA_BOTO_MAC: &str = "Boto3/1.34.162 md/Botocore#1.34.162 ua/2.0 os/macos#24.0.0 md/arch#arm64 lang/python#3.12.5 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.162";
const UA_BOTO_LAMBDA: &str = "Boto3/1.34.145 md/Botocore#1.34.145 ua/2.0 os/linux#5.10.226-234.887.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.6 md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 cfg/retry-mode#legacy Botocore/1.34.145";
const UA_BOTO_LINUX: &str = "Boto3/1.34.84 md/Botocore#1.34.84 ua/2.0 os/linux#6.8.0-1016-aws md/arch#x86_64 lang/python#3.11.10 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.84";
const UA_JAVA_LAMBDA: &str = "aws-sdk-java/2.25.60 Linux/5.10.226-234.887.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/21.0.4+7-LTS Java/21.0.4 vendor/Amazon.com_Inc. exec-env/AWS_Lambda_java21 io/sync http/UrlConnection cfg/retry-mode/legacy";
const UA_JAVA_SPARK: &str = "aws-sdk-java/1.12.767 Linux/5.15.0-1066-aws OpenJDK_64-Bit_Server_VM/17.0.12+7-LTS java/17.0.12 scala/2.12.18 vendor/Eclipse_Adoptium cfg/retry-mode/standard";
const UA_GO_EKS: &str = "aws-sdk-go-v2/1.30.4 os/linux lang/go#1.22.6 md/GOOS#linux md/GOARCH#amd64 api/bedrockruntime#1.17.0 ft/inference-gateway";
const UA_GRAFANA: &str = "Grafana/11.2.2 aws-sdk-go/1.55.5 (go1.22.7; linux; amd64)";
const UA_DATADOG: &str = "Datadog/1.0 aws-sdk-go/1.55.5 (go1.22.7; linux; amd64)";

/// One member of the benign cast: an IAM user (`role` empty) or a session
/// of a role.
struct PrincipalSpec {
    role: &'static str,
    name: &'static str,
    ip: &'static str,
    ua: &'static str,
}

const fn user(name: &'static str, ip: &'static str, ua: &'static str) -> PrincipalSpec {
    PrincipalSpec {
        role: "",
        name,
        ip,
        ua,
    }
}

const fn role(
    role: &'static str,
    session: &'static str,
    ip: &'static str,
    ua: &'static str,
) -> PrincipalSpec {
    PrincipalSpec {
        role,
        name: session,
        ip,
        ua,
    }
}

const SSO_DATA_SCIENTIST: &str = "AWSReservedSSO_DataScientist_3f9a1c2e7b5d4860";
const SSO_ML_ENGINEER: &str = "AWSReservedSSO_MLEngineer_8e2b6d4f1a3c5079";
const SSO_READ_ONLY: &str = "AWSReservedSSO_ReadOnly_5c7e9a1b3d2f4068";

/// The benign cast. Indices are the `P_*` constants below.
const PRINCIPALS: &[PrincipalSpec] = &[
    user("alice.chen", "203.0.113.24", UA_CLI_MAC),
    user("ci-deployer", "198.51.100.14", UA_TERRAFORM),
    user("mlops-bot", "198.51.100.37", UA_BOTO_LINUX),
    user("grafana-cloudwatch", "198.51.100.82", UA_GRAFANA),
    role(
        "ml-training-role",
        "SageMaker",
        "10.0.21.117",
        UA_BOTO_TRAINING,
    ),
    role(
        "bedrock-app-role",
        "i-0a7c3e9b2f4d61e58",
        "10.0.12.34",
        UA_BOTO_EC2,
    ),
    role(
        "bedrock-app-role",
        "i-0d41f8a2c7e93b605",
        "10.0.13.201",
        UA_BOTO_EC2,
    ),
    role(
        "rag-indexer-role",
        "rag-indexer",
        "10.0.31.9",
        UA_JAVA_LAMBDA,
    ),
    role(
        SSO_DATA_SCIENTIST,
        "priya.raman@acme.example",
        "203.0.113.41",
        UA_CONSOLE,
    ),
    role(
        SSO_DATA_SCIENTIST,
        "marco.rossi@acme.example",
        "203.0.113.58",
        UA_BOTO_MAC,
    ),
    role(
        SSO_ML_ENGINEER,
        "dana.kim@acme.example",
        "203.0.113.77",
        UA_CLI_LINUX,
    ),
    role(
        SSO_READ_ONLY,
        "sam.okafor@acme.example",
        "203.0.113.90",
        UA_CONSOLE,
    ),
    role(
        "sagemaker-notebook-role",
        "SageMaker",
        "10.0.22.45",
        UA_BOTO_NOTEBOOK,
    ),
    role(
        "eks-inference-node-role",
        "i-0b9e5d3c1a7f24e86",
        "10.0.41.12",
        UA_GO_EKS,
    ),
    role(
        "model-eval-role",
        "eval-run-20261102",
        "10.0.23.66",
        UA_BOTO_TRAINING,
    ),
    role(
        "datadog-integration-role",
        "DatadogAWSIntegration",
        "198.51.100.150",
        UA_DATADOG,
    ),
    role(
        "github-actions-deploy",
        "GitHubActions",
        "198.51.100.201",
        UA_CLI_GHA,
    ),
    role(
        "chat-api-lambda-role",
        "chat-api-handler",
        "10.0.32.18",
        UA_BOTO_LAMBDA,
    ),
    user("analytics-etl", "198.51.100.66", UA_JAVA_SPARK),
    role(
        "feature-store-role",
        "feature-pipeline",
        "10.0.24.8",
        UA_BOTO_LINUX,
    ),
];

const P_ALICE: usize = 0;
const P_CI: usize = 1;
const P_MLOPS: usize = 2;
const P_GRAFANA: usize = 3;
const P_TRAIN: usize = 4;
const P_APP1: usize = 5;
const P_APP2: usize = 6;
const P_RAG: usize = 7;
const P_PRIYA: usize = 8;
const P_MARCO: usize = 9;
const P_DANA: usize = 10;
const P_SAM: usize = 11;
const P_NOTEBOOK: usize = 12;
const P_EKS: usize = 13;
const P_EVAL: usize = 14;
const P_DATADOG: usize = 15;
const P_GHA: usize = 16;
const P_CHAT: usize = 17;
const P_ETL: usize = 18;
const P_FEATURE: usize = 19;

/// AWS services that act on the account (indices are the `S_*` constants).
const SERVICES: &[&str] = &[
    "s3.amazonaws.com",
    "cloudtrail.amazonaws.com",
    "sagemaker.amazonaws.com",
    "bedrock.amazonaws.com",
    "logs.amazonaws.com",
    "ec2.amazonaws.com",
    "lambda.amazonaws.com",
    "apigateway.amazonaws.com",
    "events.amazonaws.com",
];
const S_S3: usize = 0;
const S_CLOUDTRAIL: usize = 1;
const S_SAGEMAKER: usize = 2;
const S_BEDROCK: usize = 3;
const S_LOGS: usize = 4;
const S_EC2: usize = 5;
const S_LAMBDA: usize = 6;
const S_APIGATEWAY: usize = 7;
const S_EVENTS: usize = 8;

const CHAT_MODELS: &[&str] = &[
    "anthropic.claude-3-5-sonnet-20240620-v1:0",
    "anthropic.claude-3-5-sonnet-20240620-v1:0",
    "us.anthropic.claude-3-5-sonnet-20241022-v2:0",
    "anthropic.claude-3-haiku-20240307-v1:0",
    "anthropic.claude-3-haiku-20240307-v1:0",
    "meta.llama3-70b-instruct-v1:0",
    "meta.llama3-1-8b-instruct-v1:0",
    "amazon.titan-text-premier-v1:0",
    "mistral.mistral-large-2402-v1:0",
];
const EMBED_MODELS: &[&str] = &[
    "amazon.titan-embed-text-v2:0",
    "amazon.titan-embed-text-v2:0",
    "cohere.embed-english-v3",
];

/// Guardrail the chat application invokes models through.
const GUARDRAIL_ID: &str = "r2x8kq5vn1tz";

/// The account's buckets; the last one is SageMaker's default bucket,
/// `sagemaker-{region}-{account}` (see [`Core::bucket`]).
const BUCKETS: &[&str] = &[
    "acme-ml-training-data",
    "acme-ml-model-artifacts",
    "acme-rag-corpus",
    "acme-feature-store",
    "sagemaker",
];
const B_TRAINING: usize = 0;
const B_ARTIFACTS: usize = 1;
const B_RAG: usize = 2;
const B_FEATURES: usize = 3;
const B_SAGEMAKER: usize = 4;

/// KMS keys of the account: training data, CloudTrail logs, Bedrock/SageMaker
/// artifacts, CloudWatch Logs.
const KMS_KEYS: &[&str] = &[
    "5e0c2a47-9b1d-4f6e-8a3c-7d21f0b9e468",
    "c3a9f1e2-6d4b-4a87-9e15-2b7f08d3c641",
    "8b7d3e10-2f5a-4c96-b1e4-9a06c5d2f873",
    "f14e9a62-0c3b-47d5-8e29-6b1a7f4d03c5",
];
const K_TRAINING: usize = 0;
const K_CLOUDTRAIL: usize = 1;
const K_ARTIFACTS: usize = 2;
const K_LOGS: usize = 3;

const SAGEMAKER_ENDPOINTS: &[&str] = &[
    "llm-reranker-prod",
    "fraud-scoring-xgb-prod",
    "claims-llm-ft-v3",
];
const TRAINING_JOBS: &[&str] = &[
    "llama3-ft-claims-2026-11-01-22-14-05-417",
    "xgb-fraud-retrain-2026-11-02-03-00-12-085",
    "reranker-distill-2026-10-31-17-42-51-903",
];
const LAMBDA_FUNCTIONS: &[&str] = &["chat-api-handler", "rag-indexer", "guardrail-audit-report"];

/// Event names benign activity never produces: tampering with logging,
/// guardrails, keys, policies and credentials, Bedrock model-access
/// enablement, and calls that common CloudTrail detection rules flag
/// (`GetSessionToken`, `ListBuckets`, `ConsoleLogin`).
pub const FLAGGED_EVENT_NAMES: &[&str] = &[
    "StopLogging",
    "DeleteTrail",
    "UpdateTrail",
    "PutEventSelectors",
    "PutInsightSelectors",
    "DeleteModelInvocationLoggingConfiguration",
    "PutModelInvocationLoggingConfiguration",
    "DeleteGuardrail",
    "UpdateGuardrail",
    "CreateGuardrail",
    "AttachRolePolicy",
    "AttachUserPolicy",
    "AttachGroupPolicy",
    "PutRolePolicy",
    "PutUserPolicy",
    "PutGroupPolicy",
    "UpdateAssumeRolePolicy",
    "CreateAccessKey",
    "CreateLoginProfile",
    "UpdateLoginProfile",
    "ScheduleKeyDeletion",
    "DisableKey",
    "PutKeyPolicy",
    "PutBucketPolicy",
    "DeleteBucketPolicy",
    "PutBucketAcl",
    "PutObjectAcl",
    "PutBucketPublicAccessBlock",
    "DeleteBucketPublicAccessBlock",
    "PutUseCaseForModelAccess",
    "CreateFoundationModelAgreement",
    "PutFoundationModelEntitlement",
    "GetSessionToken",
    "ListBuckets",
    "ConsoleLogin",
];

// ---------------------------------------------------------------------------
// The generator
// ---------------------------------------------------------------------------

/// Kinds of benign activity, with their weights in [`BENIGN_MIX`].
#[derive(Clone, Copy, Debug)]
enum Op {
    BedrockInvoke,
    BedrockConverse,
    BedrockStream,
    BedrockControl,
    S3Get,
    S3Put,
    S3Head,
    S3List,
    KmsByService,
    StsAssumeRole,
    StsCallerIdentity,
    Ec2Describe,
    IamRead,
    CloudWatchRead,
    Logs,
    LambdaRead,
    LambdaInvoke,
    SageMakerInvoke,
    SageMakerRead,
}

/// Relative frequency of each kind of benign record (sums to 100).
const BENIGN_MIX: &[(Op, u32)] = &[
    (Op::BedrockInvoke, 9),
    (Op::BedrockConverse, 6),
    (Op::BedrockStream, 4),
    (Op::BedrockControl, 3),
    (Op::S3Get, 10),
    (Op::S3Put, 3),
    (Op::S3Head, 3),
    (Op::S3List, 2),
    (Op::KmsByService, 19),
    (Op::StsAssumeRole, 4),
    (Op::StsCallerIdentity, 5),
    (Op::Ec2Describe, 8),
    (Op::IamRead, 3),
    (Op::CloudWatchRead, 6),
    (Op::Logs, 3),
    (Op::LambdaRead, 2),
    (Op::LambdaInvoke, 4),
    (Op::SageMakerInvoke, 3),
    (Op::SageMakerRead, 3),
];

const fn mix_total(mix: &[(Op, u32)]) -> u32 {
    let mut total = 0;
    let mut i = 0;
    while i < mix.len() {
        total += mix[i].1;
        i += 1;
    }
    total
}
const BENIGN_TOTAL: u32 = mix_total(BENIGN_MIX);

/// Share of benign calls (per mille) that fail with an error.
const FAILURE_PER_MILLE: u32 = 25;

/// Deterministic CloudTrail record generator for one simulated account.
pub struct Synth {
    core: Core,
    pool: Vec<Actor>,
    services: Vec<Actor>,
}

/// The clock, the random generator and the record builder, apart from the
/// cast so that calls can borrow an actor and the builder at once.
struct Core {
    cfg: SynthConfig,
    rng: fastrand::Rng,
    /// Simulated time in Unix milliseconds.
    now_ms: i64,
}

impl Synth {
    /// A generator for the given account, clock and seed.
    pub fn new(cfg: SynthConfig) -> Self {
        let account = cfg.account.clone();
        let pool = PRINCIPALS
            .iter()
            .map(|p| {
                if p.role.is_empty() {
                    let key = derived_id("AKIA", &format!("{account}/key/{}", p.name), 20);
                    Actor::iam_user(&account, p.name, &key, p.ip, p.ua)
                } else {
                    let key = derived_id("ASIA", &format!("{account}/{}/{}", p.role, p.name), 20);
                    Actor::assumed_role(&account, p.role, p.name, &key, p.ip, p.ua)
                }
            })
            .collect();
        let services = SERVICES.iter().map(|h| Actor::aws_service(h)).collect();
        let core = Core {
            rng: fastrand::Rng::with_seed(cfg.seed),
            now_ms: cfg.start.timestamp_millis(),
            cfg,
        };
        Synth {
            core,
            pool,
            services,
        }
    }

    /// The configuration the generator was built with.
    pub fn config(&self) -> &SynthConfig {
        &self.core.cfg
    }

    /// The benign cast: IAM users and role sessions with their usual source
    /// IPs and user agents.
    pub fn pool(&self) -> &[Actor] {
        &self.pool
    }

    /// A member of the benign cast by user name, role name or session name.
    pub fn principal(&self, name: &str) -> Option<&Actor> {
        self.pool
            .iter()
            .find(|a| a.name() == name || a.session_name() == Some(name))
    }

    /// Current simulated clock (the eventTime the next record will be near).
    pub fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.core.now_ms).expect("simulated time in range")
    }

    /// Moves the simulated clock forward (or back, for a negative duration).
    pub fn advance(&mut self, by: Duration) {
        self.core.now_ms += by.num_milliseconds();
    }

    /// A random UUID (version 4 format) from the seeded generator.
    pub fn uuid(&mut self) -> String {
        uuid_v4(&mut self.core.rng)
    }

    /// A random access key ID with the given prefix (`AKIA` or `ASIA`).
    pub fn random_access_key_id(&mut self, prefix: &str) -> String {
        let mut s = String::with_capacity(20);
        s.push_str(prefix);
        push_random(
            &mut self.core.rng,
            &mut s,
            ID_CHARS,
            20 - prefix.len().min(20),
        );
        s
    }

    /// Next benign background record (eventTime advances a few hundred ms to
    /// a few s per record, monotonic).
    pub fn benign(&mut self) -> Value {
        let mut pick = self.core.rng.u32(..BENIGN_TOTAL);
        let mut op = BENIGN_MIX[0].0;
        for &(o, w) in BENIGN_MIX {
            if pick < w {
                op = o;
                break;
            }
            pick -= w;
        }
        let mut rec = self.benign_op(op);
        if self.core.rng.u32(..1000) < FAILURE_PER_MILLE {
            self.core.fail(&mut rec);
        }
        rec
    }

    /// Build a record for a given call, filling every envelope field
    /// realistically for the given actor (eventVersion, userIdentity with
    /// sessionContext for assumed roles, eventTime, eventSource, eventName,
    /// awsRegion, sourceIPAddress, userAgent, requestParameters,
    /// responseElements, requestID, eventID, readOnly, resources, eventType,
    /// managementEvent, recipientAccountId, eventCategory, tlsDetails, and
    /// S3's additionalEventData). The record is stamped with [`Synth::now`],
    /// then the clock moves on. Add fields such as `additionalEventData` by
    /// indexing the returned object; make it a failed call with [`set_error`].
    pub fn call(
        &mut self,
        actor: &Actor,
        event_source: &str,
        event_name: &str,
        request_parameters: Value,
        response_elements: Value,
    ) -> Value {
        self.core.call(
            actor,
            event_source,
            event_name,
            request_parameters,
            response_elements,
        )
    }

    fn benign_op(&mut self, op: Op) -> Value {
        let core = &mut self.core;
        let pool = &self.pool;
        let services = &self.services;
        match op {
            Op::BedrockInvoke => {
                let a = core.pick(&[
                    P_APP1, P_APP2, P_APP1, P_APP2, P_CHAT, P_CHAT, P_EKS, P_EVAL, P_MARCO, P_RAG,
                    P_RAG, P_FEATURE,
                ]);
                core.bedrock_runtime(&pool[a], a, "InvokeModel")
            }
            Op::BedrockConverse => {
                let a = core.pick(&[
                    P_APP1, P_APP2, P_CHAT, P_CHAT, P_PRIYA, P_MARCO, P_EVAL, P_EKS,
                ]);
                core.bedrock_runtime(&pool[a], a, "Converse")
            }
            Op::BedrockStream => {
                let a = core.pick(&[P_APP1, P_APP2, P_CHAT, P_CHAT, P_EKS]);
                core.bedrock_runtime(&pool[a], a, "InvokeModelWithResponseStream")
            }
            Op::BedrockControl => {
                let a = core.pick(&[
                    P_PRIYA, P_MARCO, P_DANA, P_SAM, P_DATADOG, P_APP1, P_CI, P_EVAL,
                ]);
                core.bedrock_control(&pool[a])
            }
            Op::S3Get | Op::S3Put | Op::S3Head | Op::S3List => {
                let a = match op {
                    Op::S3Put => core.pick(&[
                        P_TRAIN, P_TRAIN, P_RAG, P_CI, P_NOTEBOOK, P_EVAL, P_FEATURE, P_ETL, P_ETL,
                    ]),
                    _ => core.pick(&[
                        P_TRAIN, P_TRAIN, P_TRAIN, P_RAG, P_RAG, P_MARCO, P_NOTEBOOK, P_EVAL,
                        P_FEATURE, P_ETL, P_DANA,
                    ]),
                };
                core.s3_object(&pool[a], a, op)
            }
            Op::KmsByService => {
                let s = core.pick(&[
                    S_S3,
                    S_S3,
                    S_S3,
                    S_S3,
                    S_CLOUDTRAIL,
                    S_SAGEMAKER,
                    S_SAGEMAKER,
                    S_BEDROCK,
                    S_LOGS,
                ]);
                core.kms_by_service(&services[s], s)
            }
            Op::StsAssumeRole => core.assume_role(pool, services),
            Op::StsCallerIdentity => {
                let a = core.pick(&[
                    P_ALICE, P_CI, P_MLOPS, P_MARCO, P_DANA, P_GHA, P_GHA, P_ETL, P_APP1,
                ]);
                core.call(
                    &pool[a],
                    "sts.amazonaws.com",
                    "GetCallerIdentity",
                    Value::Null,
                    Value::Null,
                )
            }
            Op::Ec2Describe => {
                let a = core.pick(&[
                    P_CI, P_CI, P_DATADOG, P_DATADOG, P_DANA, P_SAM, P_EKS, P_GHA, P_MLOPS, P_ALICE,
                ]);
                core.ec2_describe(&pool[a])
            }
            Op::IamRead => {
                let a = core.pick(&[P_CI, P_DATADOG, P_SAM, P_DANA, P_GHA, P_ALICE]);
                core.iam_read(&pool[a])
            }
            Op::CloudWatchRead => {
                let a = core.pick(&[
                    P_GRAFANA, P_GRAFANA, P_GRAFANA, P_DATADOG, P_DATADOG, P_SAM, P_DANA,
                ]);
                core.cloudwatch_read(&pool[a])
            }
            Op::Logs => {
                let a = core.pick(&[
                    P_CHAT, P_CHAT, P_RAG, P_TRAIN, P_DANA, P_MARCO, P_SAM, P_DATADOG,
                ]);
                core.logs(&pool[a], a)
            }
            Op::LambdaRead => {
                let a = core.pick(&[P_DATADOG, P_SAM, P_GHA, P_DANA]);
                core.lambda_read(&pool[a])
            }
            Op::LambdaInvoke => {
                let roll = core.rng.u32(..100);
                let (caller, function) = if roll < 60 {
                    (&services[S_APIGATEWAY], "chat-api-handler")
                } else if roll < 85 {
                    (&services[S_EVENTS], "rag-indexer")
                } else {
                    (&pool[P_CI], "guardrail-audit-report")
                };
                core.lambda_invoke(caller, function)
            }
            Op::SageMakerInvoke => {
                let a = core.pick(&[P_APP1, P_APP2, P_EKS, P_CHAT]);
                core.sagemaker_invoke(&pool[a])
            }
            Op::SageMakerRead => {
                let a = core.pick(&[
                    P_PRIYA, P_MARCO, P_DANA, P_NOTEBOOK, P_DATADOG, P_EVAL, P_MLOPS,
                ]);
                core.sagemaker_read(&pool[a])
            }
        }
    }
}

impl Core {
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.rng.usize(..items.len())]
    }

    fn account(&self) -> &str {
        &self.cfg.account
    }

    fn region(&self) -> &str {
        &self.cfg.region
    }

    fn bucket(&self, b: usize) -> String {
        if b == B_SAGEMAKER {
            format!("sagemaker-{}-{}", self.region(), self.account())
        } else {
            BUCKETS[b].to_string()
        }
    }

    fn kms_key_arn(&self, key: usize) -> String {
        format!(
            "arn:aws:kms:{}:{}:key/{}",
            self.region(),
            self.account(),
            KMS_KEYS[key]
        )
    }

    /// Moves the clock by the gap between two background records.
    fn tick(&mut self) {
        // Mostly sub-second to a couple of seconds apart, sometimes a lull.
        let gap = if self.rng.u32(..10) == 0 {
            self.rng.i64(2500..6000)
        } else {
            self.rng.i64(150..2500)
        };
        self.now_ms += gap;
    }

    fn call(
        &mut self,
        actor: &Actor,
        event_source: &str,
        event_name: &str,
        request_parameters: Value,
        response_elements: Value,
    ) -> Value {
        let at = self.now_ms.div_euclid(1000);
        let is_s3 = event_source == "s3.amazonaws.com";
        let data_event = is_data_event(event_source, event_name);
        let mut m = Map::new();
        let version = if data_event
            || event_source == "bedrock.amazonaws.com"
            || event_source == "sagemaker.amazonaws.com"
        {
            "1.09"
        } else {
            "1.08"
        };
        m.insert("eventVersion".into(), version.into());
        m.insert("userIdentity".into(), actor.user_identity(at));
        m.insert("eventTime".into(), fmt_time(at).into());
        m.insert("eventSource".into(), event_source.into());
        m.insert("eventName".into(), event_name.into());
        m.insert("awsRegion".into(), self.cfg.region.as_str().into());
        m.insert("sourceIPAddress".into(), actor.source_ip.as_str().into());
        m.insert(
            "userAgent".into(),
            recorded_user_agent(actor, event_source, event_name).into(),
        );
        if is_s3 {
            let aed = self.s3_additional_event_data(event_name);
            m.insert("additionalEventData".into(), aed);
        }
        if let Some(resources) = self.resources(event_source, event_name, &request_parameters) {
            m.insert("resources".into(), resources);
        }
        let host = self.host_header(event_source, event_name, &request_parameters);
        m.insert("requestParameters".into(), request_parameters);
        m.insert("responseElements".into(), response_elements);
        let request_id = if is_s3 {
            let mut s = String::with_capacity(16);
            push_random(&mut self.rng, &mut s, UPPER_ALNUM, 16);
            s
        } else {
            uuid_v4(&mut self.rng)
        };
        m.insert("requestID".into(), request_id.into());
        m.insert("eventID".into(), uuid_v4(&mut self.rng).into());
        m.insert(
            "readOnly".into(),
            is_read_only(event_source, event_name).into(),
        );
        m.insert("eventType".into(), "AwsApiCall".into());
        m.insert("managementEvent".into(), (!data_event).into());
        m.insert(
            "recipientAccountId".into(),
            self.cfg.account.as_str().into(),
        );
        if actor.source_ip.starts_with("10.") && uses_vpc_endpoint(event_source) {
            let vpce = derived_hex_id("vpce-0", event_source, 22);
            m.insert("vpcEndpointId".into(), vpce.into());
            m.insert(
                "vpcEndpointAccountId".into(),
                self.cfg.account.as_str().into(),
            );
        }
        if actor.is_service() {
            m.insert("sharedEventID".into(), uuid_v4(&mut self.rng).into());
        }
        m.insert(
            "eventCategory".into(),
            if data_event { "Data" } else { "Management" }.into(),
        );
        if !actor.is_service() {
            let modern = ["Boto3/", "aws-cli/2", "aws-sdk-java/2", "aws-sdk-go-v2/"]
                .iter()
                .any(|p| actor.user_agent.starts_with(p));
            let (tls, cipher) = if modern {
                ("TLSv1.3", "TLS_AES_128_GCM_SHA256")
            } else {
                ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256")
            };
            m.insert(
                "tlsDetails".into(),
                json!({"tlsVersion": tls, "cipherSuite": cipher, "clientProvidedHostHeader": host}),
            );
        }
        if actor.is_console() {
            m.insert("sessionCredentialFromConsole".into(), "true".into());
        }
        self.tick();
        Value::Object(m)
    }

    /// `additionalEventData` that S3 adds to each of its events.
    fn s3_additional_event_data(&mut self, event_name: &str) -> Value {
        let (bytes_in, bytes_out) = match event_name {
            "GetObject" => (0, object_size(&mut self.rng)),
            "PutObject" | "UploadPart" => (object_size(&mut self.rng), 0),
            "ListObjects" | "ListObjectVersions" => (0, self.rng.u64(900..48_000)),
            _ => (0, 0),
        };
        let mut amz_id = String::with_capacity(76);
        push_random(&mut self.rng, &mut amz_id, BASE64, 75);
        amz_id.push('=');
        json!({
            "SignatureVersion": "SigV4",
            "CipherSuite": "TLS_AES_128_GCM_SHA256",
            "bytesTransferredIn": bytes_in,
            "AuthenticationMethod": "AuthHeader",
            "x-amz-id-2": amz_id,
            "bytesTransferredOut": bytes_out,
        })
    }

    /// The `resources` array CloudTrail attaches to calls on known resource
    /// types.
    fn resources(&self, source: &str, name: &str, req: &Value) -> Option<Value> {
        let account = self.account();
        let region = self.region();
        let str_param = |k: &str| req.get(k).and_then(Value::as_str);
        match source {
            "s3.amazonaws.com" => {
                let bucket = str_param("bucketName")?;
                let bucket_res = json!({"accountId": account, "type": "AWS::S3::Bucket", "ARN": format!("arn:aws:s3:::{bucket}")});
                match str_param("key") {
                    Some(key) => Some(json!([
                        {"type": "AWS::S3::Object", "ARN": format!("arn:aws:s3:::{bucket}/{key}")},
                        bucket_res,
                    ])),
                    None => Some(json!([bucket_res])),
                }
            }
            "kms.amazonaws.com" => {
                let key = str_param("keyId")?;
                let arn = if key.starts_with("arn:") {
                    key.to_string()
                } else if key.starts_with("alias/") {
                    return None;
                } else {
                    format!("arn:aws:kms:{region}:{account}:key/{key}")
                };
                Some(json!([{"accountId": account, "type": "AWS::KMS::Key", "ARN": arn}]))
            }
            "sts.amazonaws.com" if name.starts_with("AssumeRole") => {
                let arn = str_param("roleArn")?;
                Some(json!([{"accountId": account, "type": "AWS::IAM::Role", "ARN": arn}]))
            }
            "sagemaker.amazonaws.com" if name.starts_with("InvokeEndpoint") => {
                let ep = str_param("endpointName")?;
                Some(
                    json!([{"accountId": account, "type": "AWS::SageMaker::Endpoint", "ARN": format!("arn:aws:sagemaker:{region}:{account}:endpoint/{ep}")}]),
                )
            }
            "lambda.amazonaws.com" if name == "Invoke" => {
                let f = str_param("functionName")?;
                let arn = if f.starts_with("arn:") {
                    f.to_string()
                } else {
                    format!("arn:aws:lambda:{region}:{account}:function:{f}")
                };
                Some(json!([{"accountId": account, "type": "AWS::Lambda::Function", "ARN": arn}]))
            }
            _ => None,
        }
    }

    /// `tlsDetails.clientProvidedHostHeader`: the endpoint the client called.
    fn host_header(&self, source: &str, name: &str, req: &Value) -> String {
        let region = self.region();
        let service = source.strip_suffix(".amazonaws.com").unwrap_or(source);
        match service {
            "iam" | "organizations" => format!("{service}.amazonaws.com"),
            "s3" => match req.get("Host").and_then(Value::as_str) {
                Some(h) => h.to_string(),
                None => format!("s3.{region}.amazonaws.com"),
            },
            "bedrock" if is_bedrock_runtime(name) => {
                format!("bedrock-runtime.{region}.amazonaws.com")
            }
            "sagemaker" if name.starts_with("InvokeEndpoint") => {
                format!("runtime.sagemaker.{region}.amazonaws.com")
            }
            "sagemaker" => format!("api.sagemaker.{region}.amazonaws.com"),
            _ => format!("{service}.{region}.amazonaws.com"),
        }
    }

    /// Turns a record into a failed call with an error fitting its service.
    fn fail(&mut self, rec: &mut Value) {
        if rec["userIdentity"]["type"] == "AWSService" {
            return;
        }
        let source = rec["eventSource"].as_str().unwrap_or_default().to_string();
        let name = rec["eventName"].as_str().unwrap_or_default().to_string();
        let arn = rec["userIdentity"]["arn"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let service = source.strip_suffix(".amazonaws.com").unwrap_or(&source);
        let iam_prefix = match service {
            "monitoring" => "cloudwatch",
            other => other,
        };
        let action = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == 'v');
        let denied_msg = format!(
            "User: {arn} is not authorized to perform: {iam_prefix}:{action} because no identity-based policy allows the {iam_prefix}:{action} action"
        );
        let roll = self.rng.u32(..100);
        let (code, message): (&str, String) = match (service, name.as_str()) {
            ("s3", "GetObject" | "HeadObject") if roll < 60 => {
                ("NoSuchKey", "The specified key does not exist.".into())
            }
            ("s3", _) => ("AccessDenied", "Access Denied".into()),
            ("bedrock", n) if is_bedrock_runtime(n) && roll < 55 => (
                "ThrottlingException",
                "Too many requests, please wait before trying again.".into(),
            ),
            ("bedrock", n) if is_bedrock_runtime(n) && roll < 75 => (
                "ValidationException",
                "Input is too long for requested model.".into(),
            ),
            ("bedrock", n) if is_bedrock_runtime(n) => {
                let model = rec["requestParameters"]["modelId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                (
                    "AccessDeniedException",
                    format!(
                        "User: {arn} is not authorized to perform: bedrock:{name} on resource: arn:aws:bedrock:{}::foundation-model/{model} because no identity-based policy allows the bedrock:{name} action",
                        self.region()
                    ),
                )
            }
            ("ec2", _) => (
                "Client.UnauthorizedOperation",
                "You are not authorized to perform this operation.".into(),
            ),
            ("sts", "AssumeRole") => {
                let role = rec["requestParameters"]["roleArn"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                (
                    "AccessDenied",
                    format!("User: {arn} is not authorized to perform: sts:AssumeRole on resource: {role}"),
                )
            }
            ("logs", _) if roll < 50 => (
                "ResourceNotFoundException",
                "The specified log group does not exist.".into(),
            ),
            ("sagemaker", n) if n.starts_with("InvokeEndpoint") && roll < 60 => (
                "ModelError",
                "Received client error (400) from primary with message \"unable to evaluate payload provided\".".into(),
            ),
            ("iam" | "sts", _) => ("AccessDenied", denied_msg),
            _ => ("AccessDeniedException", denied_msg),
        };
        set_error(rec, code, &message);
        if let Some(aed) = rec
            .get_mut("additionalEventData")
            .filter(|_| service == "s3")
        {
            // An error document instead of the object.
            aed["bytesTransferredIn"] = 0.into();
            aed["bytesTransferredOut"] = self.rng.u64(240..420).into();
        }
    }

    // -- benign activity -------------------------------------------------

    fn token_count(&mut self, lo: u32, hi: u32) -> u32 {
        // Skewed towards short prompts and answers, with a long tail.
        let base = self.rng.u32(lo..hi);
        if self.rng.u32(..8) == 0 {
            base * self.rng.u32(3..12)
        } else {
            base
        }
    }

    fn bedrock_runtime(&mut self, actor: &Actor, who: usize, event_name: &str) -> Value {
        let embed = event_name == "InvokeModel"
            && (who == P_RAG || who == P_FEATURE || self.rng.u32(..100) < 10);
        let model = if embed {
            self.pick(EMBED_MODELS)
        } else if who == P_EKS {
            self.pick(&[
                "meta.llama3-70b-instruct-v1:0",
                "meta.llama3-1-8b-instruct-v1:0",
            ])
        } else {
            self.pick(CHAT_MODELS)
        };
        let guarded = !embed && matches!(who, P_APP1 | P_APP2 | P_CHAT);
        let mut req = Map::new();
        req.insert("modelId".into(), model.into());
        if guarded && event_name != "Converse" {
            req.insert("guardrailIdentifier".into(), GUARDRAIL_ID.into());
            req.insert("guardrailVersion".into(), "3".into());
        }
        let (input, output) = if embed {
            (self.token_count(8, 512), 0)
        } else {
            (self.token_count(60, 1800), self.token_count(20, 700))
        };
        let mut rec = self.call(
            actor,
            "bedrock.amazonaws.com",
            event_name,
            Value::Object(req),
            Value::Null,
        );
        rec["additionalEventData"] = json!({"inputTokens": input, "outputTokens": output});
        rec
    }

    fn bedrock_control(&mut self, actor: &Actor) -> Value {
        let (name, req) = match self.rng.u32(..7) {
            0 => ("ListFoundationModels", Value::Null),
            1 => ("ListFoundationModels", json!({"byOutputModality": "TEXT"})),
            2 => (
                "GetFoundationModel",
                json!({"modelIdentifier": self.pick(CHAT_MODELS)}),
            ),
            3 => (
                "GetGuardrail",
                json!({"guardrailIdentifier": GUARDRAIL_ID, "guardrailVersion": self.pick(&["DRAFT", "3"])}),
            ),
            4 => ("ListGuardrails", json!({"maxResults": 20})),
            5 => ("GetModelInvocationLoggingConfiguration", Value::Null),
            _ => ("ListInferenceProfiles", json!({"maxResults": 100})),
        };
        self.call(actor, "bedrock.amazonaws.com", name, req, Value::Null)
    }

    fn bucket_for(&mut self, who: usize, put: bool) -> usize {
        match who {
            P_TRAIN if put => B_ARTIFACTS,
            P_TRAIN => self.pick(&[B_TRAINING, B_TRAINING, B_TRAINING, B_SAGEMAKER]),
            P_RAG => B_RAG,
            P_CI => B_ARTIFACTS,
            P_NOTEBOOK => self.pick(&[B_SAGEMAKER, B_TRAINING]),
            P_EVAL => self.pick(&[B_ARTIFACTS, B_TRAINING]),
            P_FEATURE => B_FEATURES,
            P_ETL if put => self.pick(&[B_TRAINING, B_FEATURES]),
            P_ETL => B_FEATURES,
            P_DANA => B_ARTIFACTS,
            _ => self.pick(&[B_TRAINING, B_ARTIFACTS, B_RAG]),
        }
    }

    fn object_key(&mut self, bucket: usize) -> String {
        let r = &mut self.rng;
        match bucket {
            B_TRAINING => match r.u32(..3) {
                0 => format!(
                    "datasets/support-chats/2026-10/part-{:05}.jsonl",
                    r.u32(..2048)
                ),
                1 => format!("datasets/code-review/v3/shard-{:04}.parquet", r.u32(..640)),
                _ => format!(
                    "tokenized/llama3-ft-claims/train-{:05}-of-01024.arrow",
                    r.u32(..1024)
                ),
            },
            B_ARTIFACTS => match r.u32(..3) {
                0 => format!(
                    "checkpoints/claims-llm-ft/step-{}/model-{:05}-of-00004.safetensors",
                    r.u32(1..60) * 500,
                    r.u32(1..5)
                ),
                1 => format!("eval/2026-11-02/run-{:04}/metrics.json", r.u32(..300)),
                _ => format!(
                    "releases/chat-api/{}.{}.{}/bundle.zip",
                    r.u32(3..5),
                    r.u32(..20),
                    r.u32(..10)
                ),
            },
            B_RAG => match r.u32(..2) {
                0 => format!(
                    "raw/confluence/{}/page-{}.html",
                    ["ENG", "SUPPORT", "LEGAL", "HR"][r.usize(..4)],
                    r.u32(10_000..99_999)
                ),
                _ => format!("chunks/v7/{:06}.json", r.u32(..400_000)),
            },
            B_FEATURES => format!(
                "offline-store/customer_features/year=2026/month=11/day=02/{:016x}.parquet",
                r.u64(..)
            ),
            _ => format!(
                "{}/output/model.tar.gz",
                TRAINING_JOBS[r.usize(..TRAINING_JOBS.len())]
            ),
        }
    }

    fn s3_object(&mut self, actor: &Actor, who: usize, op: Op) -> Value {
        let put = matches!(op, Op::S3Put);
        let b = self.bucket_for(who, put);
        let bucket = self.bucket(b);
        let bucket = bucket.as_str();
        let host = format!("{bucket}.s3.{}.amazonaws.com", self.region());
        match op {
            Op::S3List => {
                let prefix = match b {
                    B_TRAINING => "datasets/support-chats/2026-10/",
                    B_ARTIFACTS => "checkpoints/claims-llm-ft/",
                    B_RAG => "chunks/v7/",
                    B_FEATURES => "offline-store/customer_features/year=2026/month=11/",
                    _ => "llama3-ft-claims-2026-11-01-22-14-05-417/",
                };
                let req = json!({
                    "list-type": "2",
                    "bucketName": bucket,
                    "encoding-type": "url",
                    "prefix": prefix,
                    "Host": host,
                });
                self.call(actor, "s3.amazonaws.com", "ListObjects", req, Value::Null)
            }
            Op::S3Put => {
                let key = self.object_key(b);
                let kms = self.kms_key_arn(if b == B_TRAINING {
                    K_TRAINING
                } else {
                    K_ARTIFACTS
                });
                let req = json!({"bucketName": bucket, "Host": host, "key": key});
                let resp = json!({
                    "x-amz-server-side-encryption": "aws:kms",
                    "x-amz-server-side-encryption-aws-kms-key-id": kms,
                    "x-amz-server-side-encryption-bucket-key-enabled": "true",
                });
                self.call(actor, "s3.amazonaws.com", "PutObject", req, resp)
            }
            _ => {
                let key = self.object_key(b);
                let name = if matches!(op, Op::S3Head) {
                    "HeadObject"
                } else {
                    "GetObject"
                };
                let req = json!({"bucketName": bucket, "Host": host, "key": key});
                self.call(actor, "s3.amazonaws.com", name, req, Value::Null)
            }
        }
    }

    fn kms_by_service(&mut self, service: &Actor, which: usize) -> Value {
        let account = self.account().to_string();
        let region = self.region().to_string();
        let generate = self.rng.bool();
        let (key, context) = match which {
            S_CLOUDTRAIL => {
                let mut suffix = String::new();
                push_random(&mut self.rng, &mut suffix, ALNUM, 16);
                let t = DateTime::from_timestamp_millis(self.now_ms).unwrap_or_default();
                let file = format!(
                    "{account}_CloudTrail_{region}_{}_{suffix}.json.gz",
                    t.format("%Y%m%dT%H%MZ")
                );
                (
                    K_CLOUDTRAIL,
                    json!({
                        "aws:cloudtrail:arn": format!("arn:aws:cloudtrail:{region}:{account}:trail/org-trail"),
                        "aws:s3:arn": format!("arn:aws:s3:::acme-cloudtrail-logs/AWSLogs/o-7k2mq9x4ab/{account}/CloudTrail/{region}/{}/{file}", t.format("%Y/%m/%d")),
                    }),
                )
            }
            S_SAGEMAKER => (
                K_ARTIFACTS,
                json!({"aws:sagemaker:training-job-arn": format!("arn:aws:sagemaker:{region}:{account}:training-job/{}", self.pick(TRAINING_JOBS))}),
            ),
            S_BEDROCK => (
                K_ARTIFACTS,
                json!({"aws:bedrock:arn": format!("arn:aws:bedrock:{region}:{account}:guardrail/{GUARDRAIL_ID}")}),
            ),
            S_LOGS => (
                K_LOGS,
                json!({"aws:logs:arn": format!("arn:aws:logs:{region}:{account}:log-group:{}", self.pick(&["/aws/bedrock/model-invocations", "/aws/lambda/chat-api-handler", "/aws/sagemaker/TrainingJobs"]))}),
            ),
            _ => {
                let b = self.pick(&[B_TRAINING, B_TRAINING, B_ARTIFACTS, B_RAG]);
                (
                    if b == B_TRAINING {
                        K_TRAINING
                    } else {
                        K_ARTIFACTS
                    },
                    json!({"aws:s3:arn": format!("arn:aws:s3:::{}", self.bucket(b))}),
                )
            }
        };
        let key_arn = self.kms_key_arn(key);
        let (name, req) = if generate || which == S_CLOUDTRAIL {
            (
                "GenerateDataKey",
                json!({"keyId": key_arn, "encryptionContext": context, "keySpec": "AES_256"}),
            )
        } else {
            (
                "Decrypt",
                json!({"keyId": key_arn, "encryptionContext": context, "encryptionAlgorithm": "SYMMETRIC_DEFAULT"}),
            )
        };
        self.call(service, "kms.amazonaws.com", name, req, Value::Null)
    }

    /// An `AssumeRole` by a service delivering role credentials, or by a
    /// user or pipeline switching roles.
    fn assume_role(&mut self, pool: &[Actor], services: &[Actor]) -> Value {
        let (caller, role, session) = match self.rng.u32(..8) {
            0 | 1 => (
                &services[S_EC2],
                "bedrock-app-role",
                self.pick(&["i-0a7c3e9b2f4d61e58", "i-0d41f8a2c7e93b605"])
                    .to_string(),
            ),
            2 => (
                &services[S_EC2],
                "eks-inference-node-role",
                "i-0b9e5d3c1a7f24e86".to_string(),
            ),
            3 => (
                &services[S_SAGEMAKER],
                self.pick(&[
                    "ml-training-role",
                    "sagemaker-notebook-role",
                    "model-eval-role",
                ]),
                "SageMaker".to_string(),
            ),
            4 => (
                &services[S_LAMBDA],
                self.pick(&["chat-api-lambda-role", "rag-indexer-role"]),
                self.pick(&["chat-api-handler", "rag-indexer"]).to_string(),
            ),
            5 => {
                let ts = self.now_ms / 1000 - self.rng.i64(0..30);
                (
                    &pool[P_CI],
                    "ml-platform-deploy-role",
                    format!("terraform-{ts}"),
                )
            }
            6 => (
                &pool[P_MLOPS],
                "model-eval-role",
                "eval-run-20261102".to_string(),
            ),
            _ => (
                &pool[P_ETL],
                "feature-store-role",
                "feature-pipeline".to_string(),
            ),
        };
        let account = self.account().to_string();
        let role_arn = format!("arn:aws:iam::{account}:role/{role}");
        let role_id = derived_id("AROA", &format!("{account}/role/{role}"), 21);
        let key = {
            let mut s = String::from("ASIA");
            push_random(&mut self.rng, &mut s, ID_CHARS, 16);
            s
        };
        let expiration = DateTime::from_timestamp(self.now_ms / 1000 + 3600, 0).unwrap_or_default();
        let req = json!({"roleArn": role_arn, "roleSessionName": session, "durationSeconds": 3600});
        let resp = json!({
            "credentials": {
                "accessKeyId": key,
                "sessionToken": self.session_token(),
                "expiration": fmt_expiration(expiration),
            },
            "assumedRoleUser": {
                "assumedRoleId": format!("{role_id}:{session}"),
                "arn": format!("arn:aws:sts::{account}:assumed-role/{role}/{session}"),
            },
        });
        self.call(caller, "sts.amazonaws.com", "AssumeRole", req, resp)
    }

    /// An STS session token as CloudTrail records it.
    fn session_token(&mut self) -> String {
        let len = self.rng.usize(560..760);
        let mut s = String::with_capacity(len + 20);
        s.push_str("IQoJb3JpZ2luX2VjE");
        push_random(&mut self.rng, &mut s, BASE64, len);
        s.push_str("==");
        s
    }

    fn ec2_describe(&mut self, actor: &Actor) -> Value {
        let vpc = "vpc-0c5e8a1f3b7d92e46";
        let (name, req) = match self.rng.u32(..8) {
            0 | 1 => (
                "DescribeInstances",
                json!({"instancesSet": {}, "filterSet": {"items": [{"name": "tag:team", "valueSet": {"items": [{"value": self.pick(&["ml-platform", "inference", "data-eng"])}]}}]}}),
            ),
            2 => (
                "DescribeInstances",
                json!({"maxResults": 1000, "instancesSet": {}, "filterSet": {}}),
            ),
            3 => (
                "DescribeSubnets",
                json!({"subnetSet": {}, "filterSet": {"items": [{"name": "vpc-id", "valueSet": {"items": [{"value": vpc}]}}]}}),
            ),
            4 => (
                "DescribeSecurityGroups",
                json!({"securityGroupSet": {}, "securityGroupIdSet": {"items": [{"groupId": self.pick(&["sg-0a4f2c9e71b38d605", "sg-07d3b1e95c2a4f861"])}]}, "filterSet": {}}),
            ),
            5 => ("DescribeVpcs", json!({"vpcSet": {}, "filterSet": {}})),
            6 => (
                "DescribeNetworkInterfaces",
                json!({"networkInterfaceIdSet": {}, "filterSet": {"items": [{"name": "vpc-id", "valueSet": {"items": [{"value": vpc}]}}, {"name": "status", "valueSet": {"items": [{"value": "in-use"}]}}]}}),
            ),
            _ => (
                "DescribeInstanceStatus",
                json!({"instancesSet": {}, "filterSet": {}, "includeAllInstances": false}),
            ),
        };
        self.call(actor, "ec2.amazonaws.com", name, req, Value::Null)
    }

    fn iam_read(&mut self, actor: &Actor) -> Value {
        let account = self.account().to_string();
        let role = self.pick(&[
            "bedrock-app-role",
            "ml-training-role",
            "rag-indexer-role",
            "chat-api-lambda-role",
            "model-eval-role",
        ]);
        let (name, req) = match self.rng.u32(..6) {
            0 => ("ListRoles", json!({"maxItems": 1000})),
            1 => ("GetRole", json!({"roleName": role})),
            2 => ("ListAttachedRolePolicies", json!({"roleName": role})),
            3 => ("ListRolePolicies", json!({"roleName": role})),
            4 => (
                "GetPolicy",
                json!({"policyArn": format!("arn:aws:iam::{account}:policy/{}", self.pick(&["BedrockInvokeOnly", "TrainingDataReadOnly", "SageMakerExecution"]))}),
            ),
            _ => (
                "GetPolicyVersion",
                json!({"policyArn": format!("arn:aws:iam::{account}:policy/BedrockInvokeOnly"), "versionId": "v4"}),
            ),
        };
        self.call(actor, "iam.amazonaws.com", name, req, Value::Null)
    }

    fn cloudwatch_read(&mut self, actor: &Actor) -> Value {
        let end = DateTime::from_timestamp(self.now_ms / 1000 / 60 * 60, 0).unwrap_or_default();
        let start = end - Duration::hours(1);
        let (name, req) = match self.rng.u32(..4) {
            0 | 1 => {
                let model = self.pick(CHAT_MODELS);
                let metric = self.pick(&[
                    "InputTokenCount",
                    "OutputTokenCount",
                    "Invocations",
                    "InvocationLatency",
                    "InvocationThrottles",
                ]);
                (
                    "GetMetricData",
                    json!({
                        "metricDataQueries": [{
                            "id": "m1",
                            "metricStat": {
                                "metric": {"namespace": "AWS/Bedrock", "metricName": metric, "dimensions": [{"name": "ModelId", "value": model}]},
                                "period": 300,
                                "stat": "Sum",
                            },
                            "returnData": true,
                        }],
                        "startTime": fmt_expiration(start),
                        "endTime": fmt_expiration(end),
                    }),
                )
            }
            2 => (
                "DescribeAlarms",
                json!({"alarmNamePrefix": self.pick(&["bedrock-", "sagemaker-", "chat-api-"]), "maxRecords": 100}),
            ),
            _ => (
                "ListMetrics",
                json!({"namespace": self.pick(&["AWS/Bedrock", "AWS/SageMaker", "AWS/Lambda"])}),
            ),
        };
        self.call(actor, "monitoring.amazonaws.com", name, req, Value::Null)
    }

    fn logs(&mut self, actor: &Actor, who: usize) -> Value {
        let group = match who {
            P_CHAT => "/aws/lambda/chat-api-handler",
            P_RAG => "/aws/lambda/rag-indexer",
            P_TRAIN => "/aws/sagemaker/TrainingJobs",
            _ => self.pick(&[
                "/aws/lambda/chat-api-handler",
                "/aws/bedrock/model-invocations",
                "/aws/sagemaker/Endpoints/llm-reranker-prod",
            ]),
        };
        let (name, req) = if matches!(who, P_CHAT | P_RAG | P_TRAIN) {
            let stream = if who == P_TRAIN {
                format!("{}/algo-1-{}", self.pick(TRAINING_JOBS), self.now_ms / 1000)
            } else {
                let mut s = String::from("2026/11/02/[$LATEST]");
                push_random(&mut self.rng, &mut s, HEX, 32);
                s
            };
            (
                "CreateLogStream",
                json!({"logGroupName": group, "logStreamName": stream}),
            )
        } else {
            match self.rng.u32(..3) {
                0 => (
                    "DescribeLogGroups",
                    json!({"logGroupNamePrefix": self.pick(&["/aws/bedrock", "/aws/lambda/", "/aws/sagemaker/"])}),
                ),
                1 => (
                    "DescribeLogStreams",
                    json!({"logGroupName": group, "orderBy": "LastEventTime", "descending": true, "limit": 50}),
                ),
                _ => (
                    "FilterLogEvents",
                    json!({"logGroupName": group, "startTime": self.now_ms - 3_600_000, "filterPattern": self.pick(&["ERROR", "\"ThrottlingException\"", "timeout"]), "interleaved": true}),
                ),
            }
        };
        self.call(actor, "logs.amazonaws.com", name, req, Value::Null)
    }

    fn lambda_read(&mut self, actor: &Actor) -> Value {
        let f = self.pick(LAMBDA_FUNCTIONS);
        let (name, req) = match self.rng.u32(..3) {
            0 => ("ListFunctions20150331", Value::Null),
            1 => ("GetFunction20150331v2", json!({"functionName": f})),
            _ => (
                "GetFunctionConfiguration20150331v2",
                json!({"functionName": f}),
            ),
        };
        self.call(actor, "lambda.amazonaws.com", name, req, Value::Null)
    }

    fn lambda_invoke(&mut self, caller: &Actor, function: &str) -> Value {
        let arn = format!(
            "arn:aws:lambda:{}:{}:function:{function}",
            self.region(),
            self.account()
        );
        let mut req = json!({"functionName": arn});
        match caller.name() {
            "apigateway.amazonaws.com" => {
                req["sourceArn"] = format!(
                    "arn:aws:execute-api:{}:{}:7h3kq2m9xa/prod/POST/v1/chat",
                    self.region(),
                    self.account()
                )
                .into();
            }
            "events.amazonaws.com" => {
                req["sourceArn"] = format!(
                    "arn:aws:events:{}:{}:rule/rag-indexer-every-15m",
                    self.region(),
                    self.account()
                )
                .into();
                req["invocationType"] = "Event".into();
            }
            _ => {}
        }
        self.call(caller, "lambda.amazonaws.com", "Invoke", req, Value::Null)
    }

    fn sagemaker_invoke(&mut self, actor: &Actor) -> Value {
        let ep = self.pick(SAGEMAKER_ENDPOINTS);
        let req = json!({"endpointName": ep, "contentType": "application/json", "accept": "application/json"});
        self.call(
            actor,
            "sagemaker.amazonaws.com",
            "InvokeEndpoint",
            req,
            Value::Null,
        )
    }

    fn sagemaker_read(&mut self, actor: &Actor) -> Value {
        let (name, req) = match self.rng.u32(..6) {
            0 => (
                "DescribeTrainingJob",
                json!({"trainingJobName": self.pick(TRAINING_JOBS)}),
            ),
            1 => (
                "ListTrainingJobs",
                json!({"maxResults": 20, "sortBy": "CreationTime", "sortOrder": "Descending"}),
            ),
            2 => (
                "DescribeEndpoint",
                json!({"endpointName": self.pick(SAGEMAKER_ENDPOINTS)}),
            ),
            3 => ("ListEndpoints", json!({"maxResults": 50})),
            4 => (
                "ListModelPackages",
                json!({"modelPackageGroupName": "claims-llm", "sortBy": "CreationTime", "sortOrder": "Descending"}),
            ),
            _ => (
                "DescribeEndpointConfig",
                json!({"endpointConfigName": format!("{}-config-v12", self.pick(SAGEMAKER_ENDPOINTS))}),
            ),
        };
        self.call(actor, "sagemaker.amazonaws.com", name, req, Value::Null)
    }
}

/// Whether a role session name is an EC2 instance id (`i-` and 8 or 17
/// hexadecimal digits), as instance profile sessions are named.
fn is_instance_id(name: &str) -> bool {
    name.strip_prefix("i-").is_some_and(|hex| {
        matches!(hex.len(), 8 | 17) && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// Turns a record into a failed call: sets `errorCode` and `errorMessage`,
/// clears `responseElements` and drops Bedrock's token counts.
pub fn set_error(record: &mut Value, code: &str, message: &str) {
    if let Value::Object(m) = record {
        m.insert("errorCode".into(), code.into());
        m.insert("errorMessage".into(), message.into());
        m.insert("responseElements".into(), Value::Null);
        if m.get("eventSource").and_then(Value::as_str) == Some("bedrock.amazonaws.com") {
            m.remove("additionalEventData");
        }
    }
}

// ---------------------------------------------------------------------------
// Field helpers
// ---------------------------------------------------------------------------

/// Events CloudTrail logs as data events (not management events).
fn is_data_event(source: &str, name: &str) -> bool {
    match source {
        "s3.amazonaws.com" => matches!(
            name,
            "GetObject"
                | "PutObject"
                | "HeadObject"
                | "DeleteObject"
                | "DeleteObjects"
                | "CopyObject"
                | "ListObjects"
                | "ListObjectVersions"
                | "GetObjectTagging"
                | "PutObjectTagging"
                | "CreateMultipartUpload"
                | "UploadPart"
                | "CompleteMultipartUpload"
                | "RestoreObject"
                | "SelectObjectContent"
        ),
        "lambda.amazonaws.com" => name == "Invoke",
        "sagemaker.amazonaws.com" => name.starts_with("InvokeEndpoint"),
        "bedrock.amazonaws.com" => matches!(
            name,
            "InvokeAgent" | "Retrieve" | "RetrieveAndGenerate" | "InvokeFlow"
        ),
        _ => false,
    }
}

fn is_bedrock_runtime(name: &str) -> bool {
    matches!(
        name,
        "InvokeModel"
            | "InvokeModelWithResponseStream"
            | "Converse"
            | "ConverseStream"
            | "ApplyGuardrail"
            | "CountTokens"
    )
}

/// `readOnly`: whether the call only reads.
fn is_read_only(source: &str, name: &str) -> bool {
    const READ_PREFIXES: &[&str] = &[
        "Get", "List", "Describe", "Head", "Lookup", "Search", "Filter", "BatchGet", "Select",
    ];
    if READ_PREFIXES.iter().any(|p| name.starts_with(p)) {
        return true;
    }
    match source {
        "bedrock.amazonaws.com" => is_bedrock_runtime(name),
        "kms.amazonaws.com" => matches!(
            name,
            "Decrypt"
                | "Encrypt"
                | "GenerateDataKey"
                | "GenerateDataKeyWithoutPlaintext"
                | "ReEncrypt"
                | "Sign"
                | "Verify"
        ),
        "sts.amazonaws.com" => name.starts_with("AssumeRole"),
        _ => false,
    }
}

/// Services reached through interface VPC endpoints from the VPC.
fn uses_vpc_endpoint(source: &str) -> bool {
    matches!(
        source,
        "s3.amazonaws.com"
            | "bedrock.amazonaws.com"
            | "sagemaker.amazonaws.com"
            | "sts.amazonaws.com"
            | "kms.amazonaws.com"
    )
}

/// The user agent as CloudTrail records it: S3 wraps SDK agents in
/// brackets, and the AWS CLI appends the command it ran.
fn recorded_user_agent(actor: &Actor, source: &str, name: &str) -> String {
    let ua = actor.user_agent.as_str();
    if actor.is_service() || actor.is_console() {
        return ua.to_string();
    }
    let mut out = String::with_capacity(ua.len() + 48);
    let s3 = source == "s3.amazonaws.com";
    if s3 {
        out.push('[');
    }
    out.push_str(ua);
    if ua.starts_with("aws-cli/") {
        out.push_str(" md/command#");
        out.push_str(&cli_command(source, name));
    }
    if s3 {
        out.push(']');
    }
    out
}

/// The `aws` CLI command that makes a call, e.g. `bedrock-runtime.invoke-model`.
fn cli_command(source: &str, name: &str) -> String {
    let service = source.strip_suffix(".amazonaws.com").unwrap_or(source);
    let service = match service {
        "s3" => match name {
            "GetObject" | "PutObject" => return "s3.cp".to_string(),
            "ListObjects" => return "s3.ls".to_string(),
            _ => "s3api",
        },
        "bedrock" if is_bedrock_runtime(name) => "bedrock-runtime",
        "sagemaker" if name.starts_with("InvokeEndpoint") => "sagemaker-runtime",
        "monitoring" => "cloudwatch",
        other => other,
    };
    // Lambda event names carry an API version suffix (ListFunctions20150331).
    let op = match name.find(|c: char| c.is_ascii_digit()) {
        Some(i) => &name[..i],
        None => name,
    };
    let mut out = String::with_capacity(service.len() + op.len() + 8);
    out.push_str(service);
    out.push('.');
    for (i, c) in op.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// eventTime format: `2026-11-02T08:00:03Z`.
fn fmt_time(unix_secs: i64) -> String {
    let t = DateTime::from_timestamp(unix_secs, 0).unwrap_or_default();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The human date format AWS APIs use in some responses:
/// `Nov 2, 2026, 9:00:03 AM`.
fn fmt_expiration(t: DateTime<Utc>) -> String {
    t.format("%b %-d, %Y, %-I:%M:%S %p").to_string()
}

/// Size of a stored object: small JSON to multi-megabyte shards.
fn object_size(rng: &mut fastrand::Rng) -> u64 {
    match rng.u32(..4) {
        0 => rng.u64(200..16_384),
        1 | 2 => rng.u64(100_000..8_000_000),
        _ => rng.u64(8_000_000..512_000_000),
    }
}

const ID_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const HEX: &[u8] = b"0123456789abcdef";

fn push_random(rng: &mut fastrand::Rng, out: &mut String, alphabet: &[u8], n: usize) {
    out.reserve(n);
    for _ in 0..n {
        out.push(alphabet[rng.usize(..alphabet.len())] as char);
    }
}

/// A UUID in version 4 format from the seeded generator.
fn uuid_v4(rng: &mut fastrand::Rng) -> String {
    let hi = (rng.u64(..) & !0xF000) | 0x4000;
    let lo = (rng.u64(..) & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xFFFF,
        hi & 0xFFFF,
        lo >> 48,
        lo & 0xFFFF_FFFF_FFFF
    )
}

fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A stable AWS-style identifier (`AIDA…`, `AROA…`, `AKIA…`) of `len`
/// characters, derived from `seed` so that the same principal always gets
/// the same ID.
fn derived_id(prefix: &str, seed: &str, len: usize) -> String {
    derived_from(prefix, seed, len, ID_CHARS)
}

fn derived_hex_id(prefix: &str, seed: &str, len: usize) -> String {
    derived_from(prefix, seed, len, HEX)
}

fn derived_from(prefix: &str, seed: &str, len: usize, alphabet: &[u8]) -> String {
    let mut state = fnv1a(seed);
    let mut s = String::with_capacity(len);
    s.push_str(prefix);
    while s.len() < len {
        let v = splitmix(&mut state);
        s.push(alphabet[(v % alphabet.len() as u64) as usize] as char);
    }
    s
}

// ---------------------------------------------------------------------------
// Serialization in CloudTrail's key order
// ---------------------------------------------------------------------------

/// Key order of a record, as CloudTrail writes it.
const RECORD_ORDER: &[&str] = &[
    "eventVersion",
    "userIdentity",
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "errorCode",
    "errorMessage",
    "requestParameters",
    "responseElements",
    "additionalEventData",
    "requestID",
    "eventID",
    "readOnly",
    "resources",
    "eventType",
    "apiVersion",
    "managementEvent",
    "recipientAccountId",
    "vpcEndpointId",
    "vpcEndpointAccountId",
    "sharedEventID",
    "serviceEventDetails",
    "eventCategory",
    "tlsDetails",
    "sessionCredentialFromConsole",
];
const IDENTITY_ORDER: &[&str] = &[
    "type",
    "principalId",
    "arn",
    "accountId",
    "accessKeyId",
    "userName",
    "sessionContext",
    "invokedBy",
];
const SESSION_CONTEXT_ORDER: &[&str] = &[
    "sessionIssuer",
    "webIdFederationData",
    "attributes",
    "sourceIdentity",
    "ec2RoleDelivery",
];
const ATTRIBUTES_ORDER: &[&str] = &["creationDate", "mfaAuthenticated"];
const TLS_ORDER: &[&str] = &["tlsVersion", "cipherSuite", "clientProvidedHostHeader"];
const S3_AED_ORDER: &[&str] = &[
    "SignatureVersion",
    "CipherSuite",
    "bytesTransferredIn",
    "AuthenticationMethod",
    "x-amz-id-2",
    "bytesTransferredOut",
];
const RESOURCE_ORDER: &[&str] = &["accountId", "type", "ARN"];
const REQUEST_ORDER: &[&str] = &[
    "list-type",
    "bucketName",
    "Host",
    "key",
    "modelId",
    "roleArn",
    "roleSessionName",
    "durationSeconds",
];
const RESPONSE_ORDER: &[&str] = &["credentials", "assumedRoleUser"];
const CREDENTIALS_ORDER: &[&str] = &["accessKeyId", "sessionToken", "expiration"];
const ASSUMED_ROLE_USER_ORDER: &[&str] = &["assumedRoleId", "arn"];

/// Key order of the object stored under `key` (empty: keep sorted order).
fn order_of(key: &str) -> &'static [&'static str] {
    match key {
        "userIdentity" | "sessionIssuer" => IDENTITY_ORDER,
        "sessionContext" => SESSION_CONTEXT_ORDER,
        "attributes" => ATTRIBUTES_ORDER,
        "tlsDetails" => TLS_ORDER,
        "additionalEventData" => S3_AED_ORDER,
        "resources" => RESOURCE_ORDER,
        "requestParameters" => REQUEST_ORDER,
        "responseElements" => RESPONSE_ORDER,
        "credentials" => CREDENTIALS_ORDER,
        "assumedRoleUser" => ASSUMED_ROLE_USER_ORDER,
        _ => &[],
    }
}

/// Writes one record as compact JSON with CloudTrail's key order
/// (`eventVersion`, `userIdentity`, `eventTime`, … `tlsDetails`); keys the
/// order does not know follow in alphabetical order.
pub fn write_record<W: Write>(w: &mut W, record: &Value) -> io::Result<()> {
    write_ordered(w, record, RECORD_ORDER)
}

/// A record as compact JSON text with CloudTrail's key order.
pub fn record_to_string(record: &Value) -> String {
    let mut buf = Vec::with_capacity(2048);
    write_record(&mut buf, record).expect("writing to a Vec cannot fail");
    String::from_utf8(buf).expect("serde_json writes UTF-8")
}

fn write_ordered<W: Write>(w: &mut W, v: &Value, order: &[&str]) -> io::Result<()> {
    match v {
        Value::Object(m) => {
            w.write_all(b"{")?;
            let mut first = true;
            let mut field = |w: &mut W, k: &str, v: &Value| -> io::Result<()> {
                if !first {
                    w.write_all(b",")?;
                }
                first = false;
                serde_json::to_writer(&mut *w, k)?;
                w.write_all(b":")?;
                write_ordered(w, v, order_of(k))
            };
            for k in order {
                if let Some(v) = m.get(*k) {
                    field(w, k, v)?;
                }
            }
            for (k, v) in m {
                if !order.contains(&k.as_str()) {
                    field(w, k, v)?;
                }
            }
            w.write_all(b"}")
        }
        Value::Array(items) => {
            w.write_all(b"[")?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    w.write_all(b",")?;
                }
                write_ordered(w, item, order)?;
            }
            w.write_all(b"]")
        }
        leaf => serde_json::to_writer(&mut *w, leaf).map_err(io::Error::from),
    }
}

/// Streams records into a CloudTrail S3 delivery file:
/// `{"Records":[rec,rec,...]}`, gzip-compressed when `gzip`. Each record is
/// written as it comes, so the records are never all in memory. Returns the
/// number of records written.
pub fn write_log_file(
    path: &Path,
    records: impl IntoIterator<Item = Value>,
    gzip: bool,
) -> io::Result<u64> {
    let file = BufWriter::with_capacity(1 << 16, File::create(path)?);
    if gzip {
        let mut enc = GzEncoder::new(file, Compression::fast());
        let n = write_records(&mut enc, records)?;
        enc.finish()?.flush()?;
        Ok(n)
    } else {
        let mut file = file;
        let n = write_records(&mut file, records)?;
        file.flush()?;
        Ok(n)
    }
}

fn write_records<W: Write>(w: &mut W, records: impl IntoIterator<Item = Value>) -> io::Result<u64> {
    w.write_all(b"{\"Records\":[")?;
    // Each record is serialized into a buffer and handed over in one write:
    // the compressor works per write call.
    let mut buf = Vec::with_capacity(4096);
    let mut n = 0u64;
    for rec in records {
        buf.clear();
        if n > 0 {
            buf.push(b',');
        }
        write_record(&mut buf, &rec)?;
        w.write_all(&buf)?;
        n += 1;
    }
    w.write_all(b"]}")?;
    Ok(n)
}

// ---------------------------------------------------------------------------
// Sample log files
// ---------------------------------------------------------------------------

/// The user agent of the intruder in the sample files.
const UA_INTRUDER: &str = "Boto3/1.35.49 md/Botocore#1.35.49 ua/2.0 os/linux#6.8.0-47-generic md/arch#x86_64 lang/python#3.12.3 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.35.49";
/// Where the intruder calls from: an address no member of the cast uses.
const INTRUDER_IP: &str = "192.0.2.77";

/// One step of the intrusion in the sample files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Recon,
    EnableModelAccess,
    EscalateAppRole,
    DisableInvocationLogging,
    DeleteGuardrail,
    ScheduleKeyDeletion,
    StopLogging,
}

/// When each step happens, in seconds after the start of the samples.
const INTRUSION: &[(i64, Step)] = &[
    (100, Step::Recon),
    (150, Step::EnableModelAccess),
    (370, Step::EscalateAppRole),
    (425, Step::DisableInvocationLogging),
    (450, Step::DeleteGuardrail),
    (760, Step::ScheduleKeyDeletion),
    (850, Step::StopLogging),
];

/// State of the intrusion across steps: the leaked user key, and the role
/// session obtained with it.
struct Intruder {
    user: Actor,
    session: Option<Actor>,
}

impl Intruder {
    fn session(&self) -> &Actor {
        self.session.as_ref().unwrap_or(&self.user)
    }

    /// The records of one step.
    fn step(&mut self, s: &mut Synth, step: Step) -> Vec<Value> {
        let account = s.config().account.clone();
        let region = s.config().region.clone();
        let user = self.user.clone();
        match step {
            Step::Recon => {
                let whoami = s.call(
                    &user,
                    "sts.amazonaws.com",
                    "GetCallerIdentity",
                    Value::Null,
                    Value::Null,
                );
                s.advance(Duration::seconds(4));
                let models = s.call(
                    &user,
                    "bedrock.amazonaws.com",
                    "ListFoundationModels",
                    Value::Null,
                    Value::Null,
                );
                vec![whoami, models]
            }
            // 6. Model access enabled with a leaked long-term key.
            Step::EnableModelAccess => {
                let model = "anthropic.claude-3-opus-20240229-v1:0";
                let mut form = String::from("eyJjb21wYW55TmFtZSI6");
                push_random(&mut s.core.rng, &mut form, BASE64, 260);
                form.push('=');
                let mut offer = String::new();
                push_random(&mut s.core.rng, &mut offer, BASE64, 180);
                let list = s.call(
                    &user,
                    "bedrock.amazonaws.com",
                    "ListFoundationModelAgreementOffers",
                    json!({"modelId": model}),
                    Value::Null,
                );
                s.advance(Duration::seconds(6));
                let use_case = s.call(
                    &user,
                    "bedrock.amazonaws.com",
                    "PutUseCaseForModelAccess",
                    json!({"formData": form}),
                    Value::Null,
                );
                s.advance(Duration::seconds(9));
                let agreement = s.call(
                    &user,
                    "bedrock.amazonaws.com",
                    "CreateFoundationModelAgreement",
                    json!({"offerToken": offer, "modelId": model}),
                    json!({"modelId": model}),
                );
                vec![list, use_case, agreement]
            }
            // 4. Administrator access for the application role, then a
            //    session of it.
            Step::EscalateAppRole => {
                let attach = s.call(
                    &user,
                    "iam.amazonaws.com",
                    "AttachRolePolicy",
                    json!({"roleName": "bedrock-app-role", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}),
                    Value::Null,
                );
                s.advance(Duration::seconds(20));
                let session_name = format!("botocore-session-{}", s.now().timestamp());
                let key = s.random_access_key_id("ASIA");
                let role_id = derived_id("AROA", &format!("{account}/role/bedrock-app-role"), 21);
                let issued = s.now();
                let expiration = issued + Duration::hours(1);
                let mut token = String::from("IQoJb3JpZ2luX2VjE");
                push_random(&mut s.core.rng, &mut token, BASE64, 640);
                let assume = s.call(
                    &user,
                    "sts.amazonaws.com",
                    "AssumeRole",
                    json!({"roleArn": format!("arn:aws:iam::{account}:role/bedrock-app-role"), "roleSessionName": session_name, "durationSeconds": 3600}),
                    json!({
                        "credentials": {"accessKeyId": key, "sessionToken": token, "expiration": fmt_expiration(expiration)},
                        "assumedRoleUser": {
                            "assumedRoleId": format!("{role_id}:{session_name}"),
                            "arn": format!("arn:aws:sts::{account}:assumed-role/bedrock-app-role/{session_name}"),
                        },
                    }),
                );
                self.session = Some(
                    Actor::assumed_role(
                        &account,
                        "bedrock-app-role",
                        &session_name,
                        &key,
                        INTRUDER_IP,
                        UA_INTRUDER,
                    )
                    .with_session_created(issued),
                );
                vec![attach, assume]
            }
            // 1. Model invocation logging switched off.
            Step::DisableInvocationLogging => vec![s.call(
                self.session(),
                "bedrock.amazonaws.com",
                "DeleteModelInvocationLoggingConfiguration",
                Value::Null,
                Value::Null,
            )],
            // 2. The chat application's guardrail deleted.
            Step::DeleteGuardrail => vec![s.call(
                self.session(),
                "bedrock.amazonaws.com",
                "DeleteGuardrail",
                json!({"guardrailIdentifier": GUARDRAIL_ID}),
                Value::Null,
            )],
            // 5. The training-data key scheduled for deletion.
            Step::ScheduleKeyDeletion => {
                let key_arn = format!(
                    "arn:aws:kms:{region}:{account}:key/{}",
                    KMS_KEYS[K_TRAINING]
                );
                let deletion = (s.now() + Duration::days(8))
                    .date_naive()
                    .and_hms_opt(0, 0, 0)
                    .unwrap_or_default()
                    .and_utc();
                vec![s.call(
                    self.session(),
                    "kms.amazonaws.com",
                    "ScheduleKeyDeletion",
                    json!({"keyId": key_arn, "pendingWindowInDays": 7}),
                    json!({"keyId": key_arn, "deletionDate": fmt_expiration(deletion), "keyState": "PendingDeletion", "pendingWindowInDays": 7}),
                )]
            }
            // 3. The organization trail stopped.
            Step::StopLogging => vec![s.call(
                self.session(),
                "cloudtrail.amazonaws.com",
                "StopLogging",
                json!({"name": format!("arn:aws:cloudtrail:{region}:{account}:trail/org-trail")}),
                Value::Null,
            )],
        }
    }
}

/// Writes three sample CloudTrail delivery files (gzip, five minutes of
/// activity each, named like CloudTrail's own) into `dir`: ordinary activity
/// of the default account with an intrusion mixed in. With a leaked access
/// key of the IAM user `analytics-etl`, from an address it never uses, the
/// intruder enables Bedrock model access (`PutUseCaseForModelAccess`,
/// `CreateFoundationModelAgreement`), attaches `AdministratorAccess` to
/// `bedrock-app-role` and assumes it, deletes the model invocation logging
/// configuration and the chat guardrail, schedules the training-data KMS key
/// for deletion and stops the organization trail. Returns the paths written.
pub fn write_samples(dir: &Path) -> io::Result<Vec<PathBuf>> {
    const FILES: i64 = 3;
    const WINDOW_SECS: i64 = 300;
    std::fs::create_dir_all(dir)?;
    let cfg = SynthConfig::default();
    let start = cfg.start;
    let mut names = fastrand::Rng::with_seed(cfg.seed ^ 0x5EED_F11E);
    let mut synth = Synth::new(cfg);
    let leaked = synth
        .principal("analytics-etl")
        .expect("analytics-etl is in the cast")
        .clone()
        .with_source_ip(INTRUDER_IP)
        .with_user_agent(UA_INTRUDER);
    let mut intruder = Intruder {
        user: leaked,
        session: None,
    };
    let mut pending = INTRUSION.iter().peekable();
    let mut trail_stopped = false;
    let mut paths = Vec::new();
    for i in 0..FILES {
        let window_end = start + Duration::seconds(WINDOW_SECS * (i + 1));
        let mut records = Vec::new();
        while synth.now() < window_end && !trail_stopped {
            if let Some(&&(at, step)) = pending.peek() {
                if synth.now() >= start + Duration::seconds(at) {
                    pending.next();
                    records.extend(intruder.step(&mut synth, step));
                    trail_stopped = step == Step::StopLogging;
                    continue;
                }
            }
            records.push(synth.benign());
        }
        let mut suffix = String::new();
        push_random(&mut names, &mut suffix, ALNUM, 16);
        let cfg = synth.config();
        let name = format!(
            "{}_CloudTrail_{}_{}_{suffix}.json.gz",
            cfg.account,
            cfg.region,
            window_end.format("%Y%m%dT%H%MZ")
        );
        let path = dir.join(name);
        write_log_file(&path, records, true)?;
        paths.push(path);
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use std::collections::BTreeSet;

    fn bytes_for(cfg: SynthConfig, n: usize) -> Vec<u8> {
        let mut synth = Synth::new(cfg);
        let mut out = Vec::new();
        for _ in 0..n {
            write_record(&mut out, &synth.benign()).unwrap();
            out.push(b'\n');
        }
        out
    }

    fn read_gz_records(path: &Path) -> Vec<Value> {
        let file = File::open(path).unwrap();
        let doc: Value = serde_json::from_reader(GzDecoder::new(file)).unwrap();
        doc["Records"].as_array().expect("Records array").clone()
    }

    #[test]
    fn same_seed_gives_same_bytes() {
        let a = bytes_for(SynthConfig::default(), 3000);
        let b = bytes_for(SynthConfig::default(), 3000);
        assert_eq!(a, b);
        let other = SynthConfig {
            seed: 2,
            ..SynthConfig::default()
        };
        assert_ne!(a, bytes_for(other, 3000));
    }

    #[test]
    fn average_record_size_is_realistic() {
        let mut synth = Synth::new(SynthConfig::default());
        let n = 5000;
        let total: usize = (0..n)
            .map(|_| record_to_string(&synth.benign()).len())
            .sum();
        let avg = total as f64 / n as f64;
        assert!((1100.0..=1800.0).contains(&avg), "average {avg} bytes");
    }

    #[test]
    fn records_follow_cloudtrail_key_order() {
        let mut synth = Synth::new(SynthConfig::default());
        for _ in 0..200 {
            let text = record_to_string(&synth.benign());
            assert!(text.starts_with("{\"eventVersion\":\"1.0"), "{text}");
            let pos = |k: &str| text.find(&format!("\"{k}\":")).unwrap();
            assert!(pos("userIdentity") < pos("eventTime"));
            assert!(pos("eventName") < pos("requestParameters"));
            assert!(pos("eventID") < pos("eventType"));
            assert!(pos("recipientAccountId") < pos("eventCategory"));
        }
    }

    #[test]
    fn clock_is_monotonic_and_advances() {
        let mut synth = Synth::new(SynthConfig::default());
        let start = synth.now();
        let mut last = String::new();
        for _ in 0..2000 {
            let rec = synth.benign();
            let t = rec["eventTime"].as_str().unwrap().to_string();
            assert!(t >= last, "{t} after {last}");
            last = t;
        }
        let elapsed = synth.now() - start;
        assert!(elapsed > Duration::minutes(10) && elapsed < Duration::hours(3));
    }

    #[test]
    fn written_file_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trail.json.gz");
        let mut synth = Synth::new(SynthConfig::default());
        let n = write_log_file(&path, (0..777).map(|_| synth.benign()), true).unwrap();
        assert_eq!(n, 777);
        let records = read_gz_records(&path);
        assert_eq!(records.len(), 777);
        assert!(records.iter().all(|r| r["eventType"] == "AwsApiCall"));

        let plain = dir.path().join("trail.json");
        let n = write_log_file(&plain, (0..5).map(|_| synth.benign()), false).unwrap();
        assert_eq!(n, 5);
        let text = std::fs::read_to_string(&plain).unwrap();
        assert!(text.starts_with("{\"Records\":[{\"eventVersion\":"));
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["Records"].as_array().unwrap().len(), 5);

        let empty = dir.path().join("empty.json.gz");
        assert_eq!(write_log_file(&empty, std::iter::empty(), true).unwrap(), 0);
        assert!(read_gz_records(&empty).is_empty());
    }

    #[test]
    fn benign_never_flagged() {
        let mut synth = Synth::new(SynthConfig::default());
        let mut names = BTreeSet::new();
        let mut failed = 0;
        let n = 20_000;
        for _ in 0..n {
            let rec = synth.benign();
            let name = rec["eventName"].as_str().unwrap().to_string();
            let source = rec["eventSource"].as_str().unwrap();
            assert!(!FLAGGED_EVENT_NAMES.contains(&name.as_str()), "{name}");
            assert_ne!(rec["userIdentity"]["type"], "Root");
            assert_ne!(source, "cloudtrail.amazonaws.com");
            if source == "bedrock.amazonaws.com" {
                assert!(
                    ["Get", "List", "Invoke", "Converse"]
                        .iter()
                        .any(|p| name.starts_with(p)),
                    "{name}"
                );
            }
            if rec.get("errorCode").is_some() {
                failed += 1;
            }
            names.insert(name);
        }
        for expected in [
            "InvokeModel",
            "Converse",
            "InvokeModelWithResponseStream",
            "GetObject",
            "PutObject",
            "Decrypt",
            "GenerateDataKey",
            "AssumeRole",
            "GetCallerIdentity",
            "InvokeEndpoint",
            "ListFoundationModels",
        ] {
            assert!(names.contains(expected), "missing {expected}");
        }
        let share = failed as f64 / n as f64;
        assert!((0.01..0.05).contains(&share), "failure share {share}");
    }

    #[test]
    fn identities_are_well_formed() {
        let mut synth = Synth::new(SynthConfig::default());
        for _ in 0..3000 {
            let rec = synth.benign();
            let id = &rec["userIdentity"];
            match id["type"].as_str().unwrap() {
                "IAMUser" => {
                    assert!(id["accessKeyId"].as_str().unwrap().starts_with("AKIA"));
                    assert!(id["principalId"].as_str().unwrap().starts_with("AIDA"));
                }
                "AssumedRole" => {
                    assert!(id["accessKeyId"].as_str().unwrap().starts_with("ASIA"));
                    let issuer = &id["sessionContext"]["sessionIssuer"];
                    assert_eq!(issuer["type"], "Role");
                    let created = id["sessionContext"]["attributes"]["creationDate"]
                        .as_str()
                        .unwrap();
                    assert!(created <= rec["eventTime"].as_str().unwrap());
                }
                "AWSService" => {
                    assert!(id["invokedBy"]
                        .as_str()
                        .unwrap()
                        .ends_with(".amazonaws.com"));
                    assert!(rec.get("tlsDetails").is_none());
                }
                other => panic!("unexpected identity type {other}"),
            }
            let event_id = rec["eventID"].as_str().unwrap();
            assert_eq!(event_id.len(), 36);
            assert_eq!(&event_id[14..15], "4");
            assert_eq!(rec["recipientAccountId"], "111122223333");
        }
    }

    #[test]
    fn call_fills_the_envelope() {
        let mut synth = Synth::new(SynthConfig::default());
        let actor = Actor::assumed_role(
            "111122223333",
            "bedrock-app-role",
            "attacker",
            "ASIAEXAMPLEEXAMPLE12",
            "192.0.2.10",
            UA_BOTO_MAC,
        );
        let rec = synth.call(
            &actor,
            "bedrock.amazonaws.com",
            "DeleteGuardrail",
            json!({"guardrailIdentifier": "abc123"}),
            Value::Null,
        );
        assert_eq!(rec["eventVersion"], "1.09");
        assert_eq!(rec["readOnly"], false);
        assert_eq!(rec["managementEvent"], true);
        assert_eq!(rec["eventCategory"], "Management");
        assert_eq!(
            rec["userIdentity"]["arn"],
            "arn:aws:sts::111122223333:assumed-role/bedrock-app-role/attacker"
        );
        assert_eq!(
            rec["tlsDetails"]["clientProvidedHostHeader"],
            "bedrock.us-east-1.amazonaws.com"
        );
        let root = Actor::root("111122223333", None, "192.0.2.10", UA_CLI_MAC);
        let rec = synth.call(
            &root,
            "iam.amazonaws.com",
            "ListUsers",
            Value::Null,
            Value::Null,
        );
        assert_eq!(rec["userIdentity"]["type"], "Root");
        assert_eq!(rec["readOnly"], true);
    }

    #[test]
    fn samples_contain_the_intrusion() {
        let dir = tempfile::tempdir().unwrap();
        let paths = write_samples(dir.path()).unwrap();
        assert_eq!(paths.len(), 3);
        let mut names = Vec::new();
        let mut total = 0;
        for p in &paths {
            let file = p.file_name().unwrap().to_str().unwrap();
            assert!(file.starts_with("111122223333_CloudTrail_us-east-1_20261102T08"));
            assert!(file.ends_with(".json.gz"));
            let records = read_gz_records(p);
            total += records.len();
            names.extend(
                records
                    .iter()
                    .map(|r| r["eventName"].as_str().unwrap().to_string()),
            );
        }
        assert!((200..1000).contains(&total), "{total} records");
        for flagged in [
            "DeleteModelInvocationLoggingConfiguration",
            "DeleteGuardrail",
            "StopLogging",
            "AttachRolePolicy",
            "ScheduleKeyDeletion",
            "PutUseCaseForModelAccess",
            "CreateFoundationModelAgreement",
        ] {
            assert_eq!(
                names.iter().filter(|n| *n == flagged).count(),
                1,
                "{flagged}"
            );
        }
        let use_case = names.iter().position(|n| n == "PutUseCaseForModelAccess");
        let agreement = names
            .iter()
            .position(|n| n == "CreateFoundationModelAgreement");
        assert!(use_case < agreement);
        assert_eq!(names.last().map(String::as_str), Some("StopLogging"));
    }

    #[test]
    #[ignore = "throughput measurement; run with --release -- --ignored --nocapture"]
    fn generation_throughput() {
        let n = 200_000;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bench.json");
        let mut synth = Synth::new(SynthConfig::default());
        let t = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(synth.benign());
        }
        let generate = t.elapsed();
        let t = std::time::Instant::now();
        let bytes: usize = (0..n)
            .map(|_| record_to_string(&synth.benign()).len())
            .sum();
        let serialize = t.elapsed().saturating_sub(generate);
        let t = std::time::Instant::now();
        write_log_file(&path, (0..n).map(|_| synth.benign()), true).unwrap();
        let gz = t.elapsed();
        println!(
            "{n} records, {:.0} B/record; generate {:.2}s ({:.0} rec/s); serialize {:.2}s; write gzip file {:.2}s ({:.0} rec/s)",
            bytes as f64 / n as f64,
            generate.as_secs_f64(),
            n as f64 / generate.as_secs_f64(),
            serialize.as_secs_f64(),
            gz.as_secs_f64(),
            n as f64 / gz.as_secs_f64()
        );
    }
}
