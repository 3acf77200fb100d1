//! `Record::identity` reads `userIdentity` in one pass; every field equals
//! what following its path alone (`Record::lookup`) gives: on the identity
//! shapes CloudTrail documents, on hostile ones (duplicate keys, escapes,
//! wrong types, empty strings), and on the public logs in `../shared/corpus`
//! where present.
//! Shapes: <https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-user-identity.html>

use trailwarden_cloudtrail::{
    read_object, Identity, Lookup, ReaderOptions, Record, RecordReject, RecordSink,
};

/// The identity, one path at a time (the reference).
fn by_paths(r: &Record<'_>) -> Identity {
    let text = |path: &str| match r.lookup("userIdentity", path) {
        Lookup::Str(s) if !s.is_empty() => Some(s.into_owned()),
        _ => None,
    };
    Identity {
        kind: text("type"),
        arn: text("arn"),
        account_id: text("accountId"),
        access_key_id: text("accessKeyId"),
        user_name: text("userName").or_else(|| text("sessionContext.sessionIssuer.userName")),
        session_issuer_arn: text("sessionContext.sessionIssuer.arn"),
        principal_id: text("principalId"),
        invoked_by: text("invokedBy"),
    }
}

fn with_identity(identity: &str) -> String {
    format!(
        r#"{{"eventVersion":"1.08","userIdentity":{identity},"eventTime":"2026-11-02T08:00:00Z","eventSource":"bedrock.amazonaws.com","eventName":"InvokeModel","awsRegion":"us-east-1","eventID":"e1"}}"#
    )
}

#[test]
fn one_pass_equals_path_by_path() {
    let shapes = [
        // IAM user.
        r#"{"type":"IAMUser","principalId":"AIDAEXAMPLE","arn":"arn:aws:iam::111122223333:user/alice","accountId":"111122223333","accessKeyId":"AKIAEXAMPLE","userName":"alice"}"#,
        // Role session, with the issuer's user name only in the issuer.
        r#"{"type":"AssumedRole","principalId":"AROAEXAMPLE:sess","arn":"arn:aws:sts::111122223333:assumed-role/app/sess","accountId":"111122223333","accessKeyId":"ASIAEXAMPLE","sessionContext":{"sessionIssuer":{"type":"Role","principalId":"AROAEXAMPLE","arn":"arn:aws:iam::111122223333:role/app","accountId":"111122223333","userName":"app"},"attributes":{"creationDate":"2026-11-02T07:00:00Z","mfaAuthenticated":"false"},"ec2RoleDelivery":"2.0"}}"#,
        // Attributes before the issuer, and a web-identity session.
        r#"{"type":"WebIdentityUser","principalId":"oidc:sub","userName":"system:serviceaccount:ml:trainer","identityProvider":"oidc.eks.amazonaws.com","sessionContext":{"attributes":{"mfaAuthenticated":"false"},"webIdFederationData":{"federatedProvider":"x"}}}"#,
        // A service, and an anonymous caller.
        r#"{"type":"AWSService","invokedBy":"sagemaker.amazonaws.com"}"#,
        r#"{"type":"AWSAccount","principalId":"","accountId":"ANONYMOUS_PRINCIPAL"}"#,
        r#"{}"#,
        // Hostile: duplicate keys (the first counts), escapes, wrong types,
        // empty strings, nesting where a string belongs.
        r#"{"arn":"first","arn":"second","userName":"","userName":"x","sessionContext":{"sessionIssuer":{"arn":"i1","arn":"i2","userName":"u\u0041\n"}}}"#,
        r#"{"type":"Ro\"le","arn":"a\\b\u00e9","accountId":1111,"accessKeyId":true,"userName":null,"principalId":{"x":1},"invokedBy":["a"]}"#,
        r#"{"sessionContext":"not an object","userName":""}"#,
        r#"{"sessionContext":{"sessionIssuer":[{"arn":"in an array"}]}}"#,
        r#"{"sessionContext":{"sessionIssuer":{"arn":""},"sessionIssuer":{"arn":"second"}},"sessionContext":{"sessionIssuer":{"arn":"third"}}}"#,
        r#"{"s\u0065ssionContext":{"sessionIssuer":{"arn":"escaped key"}},"\u0061rn":"escaped"}"#,
        r#"  {  "arn" :  "spaced" , "type"
           : "IAMUser" }"#,
    ];
    for shape in shapes {
        let text = with_identity(shape);
        let r = Record::parse(&text).unwrap_or_else(|e| panic!("{shape}: {e}"));
        assert_eq!(r.identity(), by_paths(&r), "{shape}");
    }
    // A record without userIdentity, or with a string there.
    for text in [
        r#"{"eventVersion":"1.08","eventTime":"2026-11-02T08:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","eventID":"e2"}"#.to_owned(),
        with_identity(r#""a string""#),
    ] {
        let r = Record::parse(&text).unwrap();
        assert_eq!(r.identity(), by_paths(&r), "{text}");
        assert_eq!(r.identity(), Identity::default());
    }
}

struct Compare {
    records: u64,
    differ: Vec<String>,
}

impl RecordSink for Compare {
    fn record(&mut self, index: u64, r: &Record<'_>) {
        self.records += 1;
        if r.identity() != by_paths(r) {
            self.differ.push(format!(
                "record {index}: {:?} vs {:?}",
                r.identity(),
                by_paths(r)
            ));
        }
    }
    fn reject(&mut self, _: RecordReject) {}
}

#[test]
fn one_pass_equals_path_by_path_on_the_public_logs() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    let mut compare = Compare {
        records: 0,
        differ: Vec::new(),
    };
    for dir in ["stratus-detonation-logs", "invictus-aws-dataset"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            eprintln!("SKIPPED: {} is absent", root.join(dir).display());
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "json" && e != "gz") {
                continue;
            }
            let data = std::fs::read(&path).unwrap();
            let _ = read_object(&data[..], &ReaderOptions::default(), &mut compare);
        }
    }
    assert!(
        compare.differ.is_empty(),
        "{:#?}",
        &compare.differ[..compare.differ.len().min(5)]
    );
    eprintln!("{} records compared", compare.records);
}
