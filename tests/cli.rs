//! The `trailwarden` command end to end: files in, findings and summary out,
//! exit codes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use flate2::write::GzEncoder;
use flate2::Compression;

/// The command with a store that is dropped at exit (tests that need a
/// lasting store pass `--store`).
fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trailwarden"));
    cmd.env("TRAILWARDEN_STORE", "memory");
    cmd
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn run(cmd: &mut Command) -> (Output, String, String) {
    let out = cmd.output().expect("run trailwarden");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

fn findings(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("jsonl line"))
        .collect()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[test]
fn scan_reports_findings_as_jsonl_with_the_documented_keys() {
    let (out, stdout, stderr) = run(bin().args(["scan"]).arg(data("tampering.json")));
    assert!(out.status.success(), "{stderr}");
    let found = findings(&stdout);
    let stop: Vec<_> = found
        .iter()
        .filter(|f| f["event_name"] == "StopLogging")
        .collect();
    assert_eq!(stop.len(), 1, "{stdout}");
    let f = stop[0];
    for key in [
        "id",
        "rule_id",
        "rule_title",
        "level",
        "event_time",
        "event_ids",
        "account",
        "region",
        "principal",
        "source_ip",
        "event_source",
        "event_name",
    ] {
        assert!(f.get(key).is_some(), "missing {key} in {f}");
    }
    assert_eq!(f["event_ids"][0], "3a7d1b2e-0000-4000-8000-000000000001");
    assert_eq!(f["account"], "111122223333");
    assert_eq!(
        f["principal"],
        "arn:aws:sts::111122223333:assumed-role/ops/mallory"
    );
    assert!(f["id"].as_str().unwrap().starts_with("tw-"));
    // The benign read in the same file makes no finding.
    assert!(found.iter().all(|f| f["event_name"] != "DescribeTrails"));
    assert!(
        stderr.contains("records: 3 evaluated, 0 rejected"),
        "{stderr}"
    );
}

#[test]
fn scan_and_findings_write_ocsf_detection_findings() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let (out, jsonl, stderr) = run(bin()
        .args(["scan", "--format", "jsonl", "--store"])
        .arg(&store)
        .arg(data("tampering.json")));
    assert!(out.status.success(), "{stderr}");
    let plain = findings(&jsonl);
    assert!(!plain.is_empty());
    for args in [
        vec!["scan", "--rescan", "--format", "ocsf", "--store"],
        vec!["findings", "--format", "ocsf", "--local"],
    ] {
        let mut cmd = bin();
        cmd.args(&args).arg(&store);
        if args[0] == "scan" {
            cmd.arg(data("tampering.json"));
        }
        let (out, stdout, stderr) = run(&mut cmd);
        assert!(out.status.success(), "{args:?}: {stderr}");
        let events = findings(&stdout);
        assert_eq!(events.len(), plain.len(), "{args:?}: {stdout}");
        for event in &events {
            let f = plain
                .iter()
                .find(|f| f["id"] == event["finding_info"]["uid"])
                .unwrap_or_else(|| panic!("{args:?}: {event} is not a scanned finding"));
            assert_eq!(event["class_uid"], 2004, "{event}");
            assert_eq!(event["type_uid"], 200401);
            assert_eq!(
                event["metadata"]["version"],
                trailwarden_engine::ocsf::OCSF_VERSION
            );
            assert_eq!(event["finding_info"]["analytic"]["uid"], f["rule_id"]);
            assert_eq!(event["api"]["operation"], f["event_name"]);
            assert_eq!(event["status_id"], 1, "new");
        }
    }
    // A stored finding's status reaches its OCSF status.
    let id = plain[0]["id"].as_str().unwrap();
    let (out, _, _) = run(bin()
        .args(["findings", "--local"])
        .arg(&store)
        .args(["ack", id]));
    assert!(out.status.success());
    let (_, stdout, _) = run(bin()
        .args(["findings", "--format", "ocsf", "--local"])
        .arg(&store));
    let acked: Vec<_> = findings(&stdout)
        .into_iter()
        .filter(|e| e["finding_info"]["uid"] == id)
        .collect();
    assert_eq!(acked.len(), 1);
    assert_eq!(acked[0]["status_id"], 2, "acknowledged is In Progress");
}

#[test]
fn the_same_event_twice_makes_one_finding() {
    let file = data("tampering.json");
    let (out, stdout, _) = run(bin().arg("scan").arg(&file).arg(&file));
    assert!(out.status.success());
    let stop = findings(&stdout)
        .into_iter()
        .filter(|f| f["event_name"] == "StopLogging")
        .count();
    assert_eq!(stop, 1);
}

#[test]
fn min_level_and_fail_on() {
    let file = data("tampering.json");
    let (out, stdout, _) = run(bin().args(["scan", "--min-level", "critical"]).arg(&file));
    assert!(out.status.success());
    assert!(findings(&stdout).iter().all(|f| f["level"] == "critical"));

    let (out, _, _) = run(bin().args(["scan", "--fail-on", "high"]).arg(&file));
    assert_eq!(out.status.code(), Some(1));
    let (out, _, _) = run(bin()
        .args(["scan", "--fail-on", "high", "--min-level", "critical"])
        .arg(&file));
    let critical = findings(&String::from_utf8_lossy(&out.stdout)).len();
    assert_eq!(out.status.code(), Some(if critical > 0 { 1 } else { 0 }));
    let (out, _, _) = run(bin()
        .args(["scan", "--no-builtin", "--rules"])
        .arg(data("low-rule.yml"))
        .args(["--fail-on", "medium"])
        .arg(&file));
    assert_eq!(
        out.status.code(),
        Some(0),
        "a low finding does not fail --fail-on medium"
    );
}

#[test]
fn usage_errors_and_unreadable_inputs_exit_2() {
    let (out, _, stderr) = run(bin().args(["scan", "--format", "xml", "x"]));
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let (out, _, stderr) = run(bin().args(["scan", "/nonexistent/trail.json.gz"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("/nonexistent/trail.json.gz"), "{stderr}");
    let (out, _, stderr) = run(bin().args(["scan", "--no-builtin", "x"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("no rules to run"), "{stderr}");
}

#[test]
fn bad_files_are_rejected_by_name_and_the_others_are_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(data("tampering.json")).unwrap();
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.path().join(name), bytes).unwrap();
    write("a-empty.json", b"");
    write("b-notjson.json.gz", &gzip(b"this is not json"));
    let gz = gzip(&good);
    write("c-truncated.json.gz", &gz[..gz.len() / 2]);
    write("d-good.json.gz", &gz);
    write("e-wrongshape.json", br#"{"Records": "none"}"#);
    let mut bad_record =
        b"{\"Records\":[5, {\"eventName\":\"X\",\"userAgent\":\"\xff\"}, ".to_vec();
    bad_record.extend(br#"{"eventVersion":"1.08","eventTime":"2026-11-02T08:00:00Z","eventSource":"cloudtrail.amazonaws.com","eventName":"DeleteTrail","awsRegion":"us-east-1","eventID":"3a7d1b2e-0000-4000-8000-000000000009","requestParameters":{"name":"org-trail"},"userIdentity":{"type":"Root","arn":"arn:aws:iam::111122223333:root","accountId":"111122223333"},"recipientAccountId":"111122223333"}]}"#);
    write("f-badrecords.json", &bad_record);

    let (out, stdout, stderr) = run(bin().arg("scan").arg(dir.path()));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let found = findings(&stdout);
    assert!(
        found.iter().any(|f| f["event_name"] == "StopLogging"),
        "the good file was read"
    );
    assert!(
        found.iter().any(|f| f["event_name"] == "DeleteTrail"),
        "good records of a file with bad ones were read"
    );
    for (file, reason) in [
        ("a-empty.json", "empty"),
        ("b-notjson.json.gz", "not JSON"),
        ("c-truncated.json.gz", "corrupt or truncated"),
        ("e-wrongshape.json", "\"Records\" holds a string"),
    ] {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains(file) && l.contains(reason)),
            "{file}: {reason} not in:\n{stderr}"
        );
    }
    assert!(
        stderr.contains("f-badrecords.json: record 0 (byte 12): record is not a JSON object"),
        "{stderr}"
    );
    assert!(stderr.contains("f-badrecords.json: record 1"), "{stderr}");
    assert!(stderr.contains("not valid UTF-8"), "{stderr}");
    assert!(
        stderr.contains("files: 6 (2 read, 0 skipped, 4 unreadable, 0 already processed)"),
        "{stderr}"
    );
}

#[test]
fn gzip_bomb_is_rejected_with_the_cap_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut enc = GzEncoder::new(Vec::new(), Compression::best());
    enc.write_all(b"[").unwrap();
    let zeros = vec![b' '; 1 << 20];
    for _ in 0..8 {
        enc.write_all(&zeros).unwrap();
    }
    std::fs::write(dir.path().join("bomb.json.gz"), enc.finish().unwrap()).unwrap();
    std::fs::copy(data("tampering.json"), dir.path().join("good.json")).unwrap();
    let (out, stdout, stderr) = run(bin()
        .args(["scan", "--max-object-bytes", "1000000"])
        .arg(dir.path()));
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stderr.contains(
            "bomb.json.gz: unreadable: decompressed size passed the cap of 1000000 bytes"
        ),
        "{stderr}"
    );
    assert!(!findings(&stdout).is_empty());
}

#[test]
fn stdin_and_table_format() {
    let mut child = bin()
        .args(["scan", "--format", "table", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let text = std::fs::read(data("tampering.json")).unwrap();
    child.stdin.take().unwrap().write_all(&gzip(&text)).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.starts_with("ID ") && table.lines().next().unwrap().contains("TIME"),
        "{table}"
    );
    assert!(table.contains("cloudtrail:StopLogging"), "{table}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("<stdin>") || stderr.contains("files: 1 (1 read"),
        "{stderr}"
    );
}

#[test]
fn a_bad_rule_file_is_named_and_the_others_still_load() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.yml"), "title: [unclosed\n").unwrap();
    std::fs::write(
        dir.path().join("good.yml"),
        "title: Any StopLogging\nid: 0f0f0f0f-0000-4000-8000-000000000001\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    eventName: StopLogging\n  condition: sel\nlevel: low\n",
    )
    .unwrap();
    let (out, stdout, stderr) = run(bin()
        .args(["scan", "--no-builtin", "--rules"])
        .arg(dir.path())
        .arg(data("tampering.json")));
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("broken.yml"), "{stderr}");
    let found = findings(&stdout);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["rule_title"], "Any StopLogging");

    let (out, stdout, _) = run(bin().args(["rules", "validate"]).arg(dir.path()));
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout.contains("broken.yml"), "{stdout}");
}

fn store_in(dir: &Path) -> PathBuf {
    dir.join("store.db")
}

#[test]
fn a_second_scan_of_the_same_files_is_a_no_op_unless_rescan() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let scan = |extra: &[&str]| {
        run(bin()
            .args(["scan", "--store"])
            .arg(&store)
            .args(extra)
            .arg(data("tampering.json")))
    };
    let (out, first, _) = scan(&[]);
    assert!(out.status.success());
    let first = findings(&first);
    assert!(!first.is_empty());

    let (out, second, stderr) = scan(&[]);
    assert!(out.status.success());
    assert!(second.is_empty(), "{second}");
    assert!(
        stderr.contains("already processed: 1 file(s) skipped"),
        "{stderr}"
    );

    let (_, third, _) = scan(&["--rescan"]);
    let ids = |f: &[serde_json::Value]| -> Vec<String> {
        let mut v: Vec<String> = f
            .iter()
            .map(|f| f["id"].as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        ids(&findings(&third)),
        ids(&first),
        "finding ids are deterministic"
    );

    // The store kept one row per finding, seen twice.
    let (out, listed, _) = run(bin()
        .args(["findings", "--format", "jsonl", "--local"])
        .arg(&store));
    assert!(out.status.success());
    let listed = findings(&listed);
    assert_eq!(listed.len(), first.len());
    assert!(listed.iter().all(|f| f["times_seen"] == 2), "{listed:?}");
}

#[test]
fn findings_can_be_filtered_shown_and_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let (_, out, _) = run(bin()
        .args(["scan", "--store"])
        .arg(&store)
        .arg(data("tampering.json")));
    let found = findings(&out);
    let stop = found
        .iter()
        .find(|f| f["event_name"] == "StopLogging")
        .unwrap();
    let id = stop["id"].as_str().unwrap();
    let rule = stop["rule_id"].as_str().unwrap();

    let list = |args: &[&str]| {
        let (out, stdout, stderr) = run(bin()
            .args(["findings", "--format", "jsonl", "--local"])
            .arg(&store)
            .args(args));
        assert!(out.status.success(), "{stderr}");
        findings(&stdout)
    };
    assert_eq!(list(&["--rule", rule]).len(), 1);
    assert_eq!(
        list(&["--since", "2026-11-02T08:02:00Z"]).len(),
        found.len()
    );
    assert!(list(&["--since", "2026-11-03"]).is_empty());
    assert!(list(&["--account", "999999999999"]).is_empty());
    assert_eq!(
        list(&[
            "--principal",
            "arn:aws:sts::111122223333:assumed-role/ops/mallory"
        ])
        .len(),
        found.len()
    );
    assert!(list(&["--level", "critical"])
        .iter()
        .all(|f| f["level"] == "critical"));

    let (out, shown, _) = run(bin()
        .args(["findings", "--local"])
        .arg(&store)
        .args(["show", id]));
    assert!(out.status.success());
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["status"], "open");

    let (out, _, _) = run(bin().args(["findings", "--local"]).arg(&store).args([
        "ack",
        id,
        "--note",
        "trail restarted by on-call",
    ]));
    assert!(out.status.success());
    let (_, shown, _) = run(bin()
        .args(["findings", "--local"])
        .arg(&store)
        .args(["show", id]));
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["status"], "acknowledged");
    assert_eq!(shown["status_note"], "trail restarted by on-call");

    let (out, _, stderr) = run(bin()
        .args(["findings", "--local"])
        .arg(&store)
        .args(["show", "tw-nope"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("no finding tw-nope"));
}

#[test]
fn the_policy_suppresses_findings_and_overrides_levels() {
    let dir = tempfile::tempdir().unwrap();
    let (_, out, _) = run(bin().arg("scan").arg(data("tampering.json")));
    let found = findings(&out);
    let stop = found
        .iter()
        .find(|f| f["event_name"] == "StopLogging")
        .unwrap();
    let bedrock = found
        .iter()
        .find(|f| f["event_name"] == "DeleteModelInvocationLoggingConfiguration")
        .unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        format!(
            "suppressions:\n  - rule: {}\n    where: {{principal: \"arn:aws:sts::111122223333:assumed-role/ops/*\"}}\n    reason: ops rotates the trail\nlevels:\n  {}: critical\n",
            stop["rule_id"].as_str().unwrap(),
            bedrock["rule_id"].as_str().unwrap()
        ),
    )
    .unwrap();
    let (out, stdout, stderr) = run(bin()
        .args(["scan", "--policy"])
        .arg(&policy)
        .arg(data("tampering.json")));
    assert!(out.status.success(), "{stderr}");
    let found = findings(&stdout);
    assert!(found.iter().all(|f| f["event_name"] != "StopLogging"));
    assert!(
        stderr.contains("1 suppressed by policy: ops rotates the trail"),
        "{stderr}"
    );
    let b = found
        .iter()
        .find(|f| f["event_name"] == "DeleteModelInvocationLoggingConfiguration")
        .unwrap();
    assert_eq!(b["level"], "critical");

    std::fs::write(&policy, "suppressions:\n  - rule: x\n    reason: ''\n").unwrap();
    let (out, _, stderr) = run(bin()
        .args(["scan", "--policy"])
        .arg(&policy)
        .arg(data("tampering.json")));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("policy.yaml") && stderr.contains("needs a reason"),
        "{stderr}"
    );
}

/// A suppression that expires applies to a finding that folds repeats only
/// when all its events come before it expires: calls alike on both sides of
/// the expiry are reported (one finding, all three counted); the same calls
/// all before it are suppressed.
#[test]
fn a_suppression_that_expires_hides_no_later_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data("tampering.json")).unwrap()).unwrap();
    let stop = file["Records"][1].clone();
    assert_eq!(stop["eventName"], "StopLogging");
    let log = |times: &[&str]| {
        let records: Vec<serde_json::Value> = times
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mut r = stop.clone();
                r["eventID"] = format!("stop-{i}").into();
                r["eventTime"] = (*t).into();
                r
            })
            .collect();
        let path = dir.path().join(format!("stop-{}.json", times.len()));
        std::fs::write(&path, serde_json::json!({ "Records": records }).to_string()).unwrap();
        path
    };
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "suppressions:\n  - rule: \"*\"\n    where: {event_name: StopLogging}\n    reason: trail migration\n    expires: 2026-11-02\n",
    )
    .unwrap();
    let scan = |path: &Path| {
        let (out, stdout, stderr) = run(bin()
            .args(["scan", "--store", "memory", "--format", "jsonl", "--policy"])
            .arg(&policy)
            .arg(path));
        assert!(out.status.success(), "{stderr}");
        let stops: Vec<serde_json::Value> = findings(&stdout)
            .into_iter()
            .filter(|f| f["event_name"] == "StopLogging")
            .collect();
        (stops, stderr)
    };
    let across = log(&[
        "2026-11-02T23:58:00Z",
        "2026-11-02T23:59:30Z",
        "2026-11-03T00:01:00Z",
    ]);
    let (stops, stderr) = scan(&across);
    assert_eq!(stops.len(), 1, "{stderr}");
    assert_eq!(stops[0]["count"], 3);
    assert_eq!(stops[0]["last_event_time"], "2026-11-03T00:01:00Z");
    let before = log(&["2026-11-02T23:58:00Z", "2026-11-02T23:59:30Z"]);
    let (stops, stderr) = scan(&before);
    assert!(stops.is_empty(), "{stops:?}");
    assert!(
        stderr.contains("suppressed by policy: trail migration"),
        "{stderr}"
    );
}

/// The arguments that load the test's dormant rule and no built-in rule.
fn dormant_rule_only() -> [String; 3] {
    [
        "--no-builtin",
        "--rules",
        data("dormant-rule.yml").to_str().unwrap(),
    ]
    .map(String::from)
}

#[test]
fn digest_sums_up_a_window_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let rules = dormant_rule_only();
    let (out, scanned, stderr) = run(bin()
        .args(["scan", "--format", "jsonl", "--store"])
        .arg(&store)
        .args(&rules)
        .arg(data("ai-activity.json")));
    assert!(out.status.success(), "{stderr}");
    let scanned = findings(&scanned);
    let (out, stdout, stderr) = run(bin()
        .args([
            "digest",
            "--since",
            "2026-01-01",
            "--format",
            "json",
            "--local",
        ])
        .arg(&store)
        .args(&rules));
    assert!(out.status.success(), "{stderr}");
    let digest: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(digest["total"], scanned.len(), "{stdout}");
    let by_rule: u64 = digest["by_rule"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["count"].as_u64().unwrap())
        .sum();
    assert_eq!(by_rule, scanned.len() as u64);
    assert_eq!(digest["health"]["objects"], 1);
    assert!(digest["health"]["records"].as_u64().unwrap() > 0);
    // Carol has been idle since the spring: the sweep's list.
    let idle: Vec<&str> = digest["idle_principals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["principal"].as_str().unwrap())
        .collect();
    assert!(
        idle.contains(&"arn:aws:iam::111122223333:user/carol"),
        "{idle:?}"
    );
    // Stored findings come with the command that shows them, from this
    // store; idle principals found by this run's sweep are not stored.
    for item in digest["top"].as_array().unwrap() {
        let show = item["show"].as_str().unwrap();
        assert!(
            show.starts_with("trailwarden findings --local ") && show.contains(" show tw-"),
            "{show}"
        );
        assert_eq!(item["status"], "open");
    }
    assert!(digest["idle_principals"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["show"].is_null()));

    // The same as text; a window with nothing in it says so.
    let (out, text, _) = run(bin()
        .args(["digest", "--since", "2026-01-01", "--local"])
        .arg(&store)
        .args(&rules));
    assert!(out.status.success());
    for section in [
        "Findings:",
        "Most severe (not resolved):",
        "AI principals seen for the first time:",
        "AI principals idle 90 days or more",
        "Pipeline:",
    ] {
        assert!(text.contains(section), "{section} missing in {text}");
    }
    let (out, text, _) = run(bin()
        .args(["digest", "--since", "1h", "--local"])
        .arg(&store)
        .args(&rules));
    assert!(out.status.success());
    assert!(text.contains("Findings: 0\n"), "{text}");
}

#[test]
fn sweep_lists_idle_ai_principals_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let rules = dormant_rule_only();
    let (out, _, stderr) = run(bin()
        .args(["scan", "--store"])
        .arg(&store)
        .args(&rules)
        .arg(data("ai-activity.json")));
    assert!(out.status.success(), "{stderr}");
    let sweep = |idle_days: &str, policy: Option<&Path>| {
        let mut cmd = bin();
        cmd.args(["sweep", "--as-of", "2026-11-20", "--idle-days", idle_days])
            .arg("--store")
            .arg(&store)
            .args(&rules);
        if let Some(policy) = policy {
            cmd.arg("--policy").arg(policy);
        }
        run(&mut cmd)
    };
    let (out, stdout, stderr) = sweep("90", None);
    assert!(out.status.success(), "{stderr}");
    let stale = findings(&stdout);
    assert_eq!(stale.len(), 1, "{stdout}");
    assert_eq!(
        stale[0]["principal"],
        "arn:aws:iam::111122223333:user/carol"
    );
    assert_eq!(stale[0]["rule_title"], "Stale AI Principal");
    assert!(
        stderr.contains("1 AI principal(s) idle for 90 days or more"),
        "{stderr}"
    );
    let (_, stdout, _) = sweep("20", None);
    assert_eq!(findings(&stdout).len(), 2);
    assert!(findings(&stdout).iter().all(|f| f["level"] == "low"));
    // The policy sets the sweep's level (so that it reaches an alert
    // channel): its rule id under `levels:` is known, not a typo.
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "levels:\n  3f1b6c2e-9a4d-4e8b-b7a1-5c2d8e9f0a13: medium\n",
    )
    .unwrap();
    let (out, stdout, stderr) = sweep("20", Some(&policy));
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("not loaded"), "{stderr}");
    let stale = findings(&stdout);
    assert_eq!(stale.len(), 2, "{stdout}");
    assert!(stale.iter().all(|f| f["level"] == "medium"), "{stdout}");
}

/// The records of a `trailwarden simulate` file.
fn simulated(dir: &Path, scenario: &str) -> Vec<serde_json::Value> {
    let file = dir.join(format!("{scenario}.json.gz"));
    let (out, _, stderr) = run(bin()
        .args(["simulate", scenario, "--background", "300", "-o"])
        .arg(&file));
    assert!(out.status.success(), "{stderr}");
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(&file).unwrap()),
        &mut text,
    )
    .unwrap();
    let log: serde_json::Value = serde_json::from_str(&text).unwrap();
    log["Records"].as_array().unwrap().clone()
}

#[test]
fn scan_runs_correlations_within_a_file_and_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let records = simulated(dir.path(), "llmjacking");
    let policy = Path::new(env!("CARGO_MANIFEST_DIR")).join("policy.example.yaml");
    let title =
        "LLMjacking - Bedrock Reconnaissance Then Model Invocation with a Long-Term Access Key";
    let whole = dir.path().join("whole.json");
    std::fs::write(
        &whole,
        serde_json::json!({ "Records": records }).to_string(),
    )
    .unwrap();
    let (out, stdout, stderr) = run(bin()
        .args(["scan", "--format", "jsonl", "--policy"])
        .arg(&policy)
        .arg(&whole));
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(" correlations") && !stderr.contains(", 0 correlations"),
        "{stderr}"
    );
    let found = findings(&stdout);
    let llmjacking: Vec<_> = found.iter().filter(|f| f["rule_title"] == title).collect();
    assert_eq!(llmjacking.len(), 1, "{found:#?}");
    assert_eq!(llmjacking[0]["level"], "high");
    assert!(llmjacking[0]["event_ids"].as_array().unwrap().len() >= 2);

    // The same records in two files scanned by two runs: the window's state
    // lives in the store between them, and the finding is the same one.
    let store = store_in(dir.path());
    let half = records.len() / 2;
    let mut ids = Vec::new();
    for (i, part) in [&records[..half], &records[half..]].into_iter().enumerate() {
        let file = dir.path().join(format!("part{i}.json"));
        std::fs::write(&file, serde_json::json!({ "Records": part }).to_string()).unwrap();
        let (_, stdout, stderr) = run(bin()
            .args(["scan", "--format", "jsonl", "--policy"])
            .arg(&policy)
            .arg("--store")
            .arg(&store)
            .arg(&file));
        assert!(!stderr.contains("error"), "{stderr}");
        ids.extend(
            findings(&stdout)
                .into_iter()
                .filter(|f| f["rule_title"] == title)
                .map(|f| f["id"].clone()),
        );
    }
    assert_eq!(ids, [llmjacking[0]["id"].clone()]);

    // Without the policy's facts the long-term key correlation still runs
    // (it needs none); a negative: benign activity alone makes none.
    let benign = simulated(dir.path(), "benign");
    let file = dir.path().join("benign.json");
    std::fs::write(&file, serde_json::json!({ "Records": benign }).to_string()).unwrap();
    let (_, stdout, _) = run(bin().args(["scan", "--format", "jsonl"]).arg(&file));
    assert!(findings(&stdout).iter().all(|f| f["rule_title"] != title));
}

/// The rows of a store's findings, state and ledger, in key order (without
/// wall-clock times).
fn store_contents(path: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut out = Vec::new();
    for sql in [
        "SELECT id || ' ' || times_seen || ' ' || body FROM findings ORDER BY id",
        "SELECT rule || ' ' || grp || ' ' || version || ' ' || expires_at || ' ' || body FROM state ORDER BY rule, grp",
        "SELECT object || ' ' || version || ' ' || records FROM ledger ORDER BY object",
    ] {
        let mut stmt = conn.prepare(sql).unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
        out.extend(rows.map(Result::unwrap));
    }
    out
}

#[test]
fn threads_change_nothing_but_the_time() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    // A correlation spanning four files, another spanning two.
    let llmjacking = simulated(dir.path(), "llmjacking");
    let sharing = simulated(dir.path(), "credential-sharing");
    for (name, records, parts) in [("llm", &llmjacking, 4), ("sharing", &sharing, 2)] {
        for (i, part) in records.chunks(records.len().div_ceil(parts)).enumerate() {
            let file = logs.join(format!("{name}-{i}.json.gz"));
            let text = serde_json::json!({ "Records": part }).to_string();
            std::fs::write(&file, gzip(text.as_bytes())).unwrap();
        }
    }
    simulated(dir.path(), "benign");
    std::fs::copy(
        dir.path().join("benign.json.gz"),
        logs.join("benign.json.gz"),
    )
    .unwrap();
    let good = gzip(&std::fs::read(data("tampering.json")).unwrap());
    std::fs::write(logs.join("truncated.json.gz"), &good[..good.len() / 2]).unwrap();
    // A file large enough to flush its state mid-object, with more
    // single-event findings than one batch and than a session holds for
    // folding: records come in pairs alike but for their time and id (one
    // finding each pair).
    let mut busy = String::new();
    for i in 0..101_000u32 {
        busy.push_str(&format!(
            r#"{{"eventVersion":"1.08","eventTime":"2026-11-02T{:02}:{:02}:{:02}Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","sourceIPAddress":"10.0.0.{}","userAgent":"agent-{}","eventID":"busy-{i}","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/u{}","accountId":"111122223333"}},"recipientAccountId":"111122223333"}}"#,
            8 + i / 36_000,
            i / 600 % 60,
            i / 10 % 60,
            i / 2 % 20,
            i / 2,
            i / 2 % 3
        ));
        busy.push('\n');
    }
    busy.push_str("not a record\n");
    std::fs::write(logs.join("busy.jsonl"), busy).unwrap();
    let policy = Path::new(env!("CARGO_MANIFEST_DIR")).join("policy.example.yaml");

    let scan = |threads: &str| {
        let store = dir.path().join(format!("store-{threads}.db"));
        let (out, stdout, stderr) = run(bin()
            .args([
                "scan",
                "--format",
                "jsonl",
                "--threads",
                threads,
                "--policy",
            ])
            .arg(&policy)
            .arg("--rules")
            .arg(data("busy-rules.yml"))
            .arg("--store")
            .arg(&store)
            .arg(&logs)
            // The same file twice: read once, then already processed.
            .arg(logs.join("llm-0.json.gz")));
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        let summary: Vec<String> = stderr
            .lines()
            .filter(|l| !l.starts_with("throughput:"))
            .map(|l| l.replace(&store.display().to_string(), "STORE"))
            .collect();
        (findings(&stdout), summary, store_contents(&store))
    };
    let (found_1, summary_1, store_1) = scan("1");
    let (found_4, summary_4, store_4) = scan("4");

    let titled = |title: &str| found_1.iter().filter(|f| f["rule_title"] == title).count();
    assert_eq!(
        titled(
            "LLMjacking - Bedrock Reconnaissance Then Model Invocation with a Long-Term Access Key"
        ),
        1
    );
    let reads: Vec<&serde_json::Value> = found_1
        .iter()
        .filter(|f| {
            f["rule_title"] == "Busy Object Read"
                && f["event_ids"][0].as_str().unwrap().starts_with("busy-")
        })
        .collect();
    assert_eq!(reads.len(), 50_500);
    assert!(reads.iter().all(|f| f["count"] == 2
        && f["event_ids"].as_array().unwrap().len() == 2
        && f["note"].as_str().unwrap().starts_with("2 matching events")));
    assert!(titled("Busy Reader") > 0);
    let text = summary_1.join("\n");
    assert!(text.contains("already processed: 1 file(s)"), "{text}");
    assert!(text.contains("truncated.json.gz"), "{text}");
    assert!(text.contains("busy.jsonl: record 101000"), "{text}");

    let ids = |found: &[serde_json::Value]| -> Vec<String> {
        found
            .iter()
            .map(|f| f["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(&found_4),
        ids(&found_1),
        "the same findings in the same order"
    );
    assert_eq!(found_4, found_1);
    assert_eq!(summary_4, summary_1);
    assert_eq!(store_4.len(), store_1.len());
    for (a, b) in store_4.iter().zip(&store_1) {
        let norm = |s: &str| s.replace("store-4", "store-1");
        assert_eq!(norm(a), norm(b));
    }
}

/// Contents that open but are not CloudTrail, each with words of its reason.
fn unreadable_contents() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let good = gzip(&std::fs::read(data("tampering.json")).unwrap());
    let mut random = Vec::new();
    let mut x: u32 = 0x9e37_79b9;
    for _ in 0..512 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        random.push((x >> 24) as u8);
    }
    random[0] = 0xdb;
    vec![
        ("empty.json", Vec::new(), "empty"),
        ("random.bin", random, "not JSON"),
        ("text.log", b"GET /index.html 200\n".to_vec(), "not JSON"),
        (
            "config.json",
            br#"{"name": "app", "version": 3}"#.to_vec(),
            "not CloudTrail data",
        ),
        ("numbers.json", b"[1, 2, 3]".to_vec(), "no CloudTrail record"),
        (
            "badtime.json",
            br#"{"Records":[{"eventVersion":"1.08","eventTime":"yesterday","eventSource":"s3.amazonaws.com","eventName":"GetObject","eventID":"x1"}]}"#.to_vec(),
            "no CloudTrail record",
        ),
        (
            "lines.jsonl",
            b"{\"a\":1}\n{\"b\":2}\n".to_vec(),
            "not CloudTrail",
        ),
        ("notjson.json.gz", gzip(b"this is not json"), "not JSON"),
        ("cut.json.gz", good[..20].to_vec(), "truncated"),
    ]
}

#[test]
fn a_run_that_reads_nothing_exits_2_whatever_fail_on_says() {
    let dir = tempfile::tempdir().unwrap();
    let mut all = Vec::new();
    for (name, bytes, reason) in unreadable_contents() {
        let file = dir.path().join(name);
        std::fs::write(&file, &bytes).unwrap();
        all.push(file.clone());
        for extra in [&[][..], &["--fail-on", "low"][..]] {
            let (out, stdout, stderr) = run(bin().arg("scan").args(extra).arg(&file));
            assert_eq!(out.status.code(), Some(2), "{name} {extra:?}: {stderr}");
            assert!(stdout.is_empty(), "{name}: {stdout}");
            assert!(
                stderr.contains("files: 1 (0 read, 0 skipped, 1 unreadable, 0 already processed)"),
                "{name}: {stderr}"
            );
            assert!(
                stderr
                    .lines()
                    .any(|l| l.contains("unreadable") && l.contains(name) && l.contains(reason)),
                "{name}: {reason} not in:\n{stderr}"
            );
            assert!(
                stderr.contains("none of the 1 input(s) could be read"),
                "{name}: {stderr}"
            );
        }
    }
    // All of them at once, and a path that does not exist.
    let (out, _, stderr) = run(bin()
        .args(["scan", "--fail-on", "informational"])
        .args(&all)
        .arg(dir.path().join("missing.json")));
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let n = all.len() + 1;
    assert!(
        stderr.contains(&format!(
            "files: {n} (0 read, 0 skipped, {n} unreadable, 0 already processed)"
        )),
        "{stderr}"
    );
    // Standard input.
    let mut child = bin()
        .args(["scan", "--fail-on", "low", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"garbage").unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("<stdin>: unreadable: not JSON"), "{stderr}");
    // -q drops the summary, not the names of what could not be read.
    let (out, _, stderr) = run(bin().args(["scan", "-q"]).args(&all));
    assert_eq!(out.status.code(), Some(2));
    for file in &all {
        let name = file.file_name().unwrap().to_str().unwrap();
        assert!(stderr.contains(name), "{name} not in:\n{stderr}");
    }
}

#[test]
fn some_inputs_read_and_some_unreadable_exit_0_or_1_and_name_each_unreadable_one() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    std::fs::copy(data("tampering.json"), &good).unwrap();
    let cases = unreadable_contents();
    let mut bad = Vec::new();
    for (name, bytes, _) in &cases {
        let file = dir.path().join(name);
        std::fs::write(&file, bytes).unwrap();
        bad.push(file);
    }
    let missing = dir.path().join("missing.json");
    for threads in ["1", "3"] {
        for (fail_on, code) in [(None, 0), (Some("high"), 1)] {
            let mut cmd = bin();
            cmd.args(["scan", "--threads", threads])
                .arg(&good)
                .args(&bad)
                .arg(&missing);
            if let Some(level) = fail_on {
                cmd.args(["--fail-on", level]);
            }
            let (out, stdout, stderr) = run(&mut cmd);
            assert_eq!(out.status.code(), Some(code), "{fail_on:?}: {stderr}");
            assert!(!findings(&stdout).is_empty());
            let n = bad.len() + 2;
            let unreadable = bad.len() + 1;
            assert!(
                stderr.contains(&format!(
                    "files: {n} (1 read, 0 skipped, {unreadable} unreadable, 0 already processed)"
                )),
                "{stderr}"
            );
            // Each named once, with its reason, as it is met.
            for (name, _, reason) in &cases {
                // (Rejected records are listed apart, each with its file.)
                let lines: Vec<&str> = stderr
                    .lines()
                    .filter(|l| l.contains(name) && !l.contains(": record "))
                    .collect();
                assert!(
                    lines.len() == 1
                        && lines[0].contains(": unreadable: ")
                        && lines[0].contains(reason),
                    "{name}: {reason} not named once in:\n{stderr}"
                );
            }
            assert_eq!(
                stderr
                    .lines()
                    .filter(|l| l.contains("missing.json"))
                    .count(),
                1,
                "{stderr}"
            );
        }
    }
    // Everything already processed is not "nothing read".
    let store = store_in(dir.path());
    for _ in 0..2 {
        let (out, _, stderr) = run(bin().args(["scan", "--store"]).arg(&store).arg(&good));
        assert_eq!(out.status.code(), Some(0), "{stderr}");
    }
}

/// Characters that must not reach a terminal raw (newlines end lines).
fn raw_controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| {
            (c.is_control() && c != '\n')
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
        })
        .collect()
}

#[test]
fn control_characters_and_bidi_overrides_never_reach_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let evil = [
        "\u{1b}[31m",
        "\u{9b}2J",
        "\u{202e}",
        "\u{7f}",
        "\u{2066}",
        "\u{200f}",
        "\u{61c}",
        "\r",
    ];
    let joined = evil.concat();
    let record = serde_json::json!({
        "eventVersion": "1.08",
        "eventTime": "2026-11-02T08:00:00Z",
        "eventSource": "cloudtrail.amazonaws.com",
        "eventName": format!("StopLogging{joined}"),
        "awsRegion": format!("us-east-1{joined}"),
        "sourceIPAddress": format!("203.0.113.9{joined}"),
        "userAgent": format!("aws-cli/2 {joined}"),
        "eventID": "3a7d1b2e-0000-4000-8000-0000000000c1",
        "requestParameters": {"name": format!("trail{joined}")},
        "userIdentity": {
            "type": "IAMUser",
            "arn": format!("arn:aws:iam::111122223333:user/eve{joined}"),
            "accountId": "111122223333"
        },
        "recipientAccountId": format!("111122223333{joined}")
    });
    let log = dir
        .path()
        .join(format!("trail{}.json", "\u{1b}[2J\u{202e}"));
    let mut bad_time = record.clone();
    bad_time["eventTime"] = format!("2026{joined}").into();
    std::fs::write(
        &log,
        serde_json::json!({ "Records": [record, bad_time] }).to_string(),
    )
    .unwrap();
    let not_cloudtrail = dir.path().join(format!("keys{}.json", "\u{9b}1A"));
    std::fs::write(
        &not_cloudtrail,
        serde_json::json!({ format!("key{joined}"): 1 }).to_string(),
    )
    .unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("any.yml"),
        "title: \"Any Trail Call \\e[32m\\u202e\"\nid: 0f0f0f0f-0000-4000-8000-0000000000c2\nstatus: test\ndescription: d\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    eventSource: cloudtrail.amazonaws.com\n  condition: sel\nlevel: high\n",
    )
    .unwrap();
    let store = store_in(dir.path());
    let scan = |format: &str| {
        run(bin()
            .args(["scan", "--rescan", "--format", format, "--store"])
            .arg(&store)
            .arg("--rules")
            .arg(&rules)
            .arg(&log)
            .arg(&not_cloudtrail))
    };
    let (out, table, stderr) = scan("table");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(table.contains("StopLogging"), "{table}");
    assert!(table.contains("\\u{1b}[31m"), "escaped visibly: {table}");
    assert!(table.contains("\\u{202e}"), "{table}");
    assert_eq!(raw_controls(&table), [] as [char; 0], "{table:?}");
    assert!(stderr.contains("not CloudTrail data"), "{stderr}");
    assert!(
        stderr.contains("\\u{9b}1A"),
        "the file name, escaped: {stderr}"
    );
    assert!(
        stderr.contains("is not a time") && stderr.contains("2026\\u{1b}[31m"),
        "the reject reason, escaped: {stderr}"
    );
    assert_eq!(raw_controls(&stderr), [] as [char; 0], "{stderr:?}");

    // JSON stays valid and keeps the values; no raw control on the way.
    for format in ["jsonl", "json"] {
        let (out, stdout, _) = scan(format);
        assert!(out.status.success());
        assert_eq!(raw_controls(&stdout), [] as [char; 0], "{stdout:?}");
        let found: Vec<serde_json::Value> = if format == "json" {
            serde_json::from_str(&stdout).unwrap()
        } else {
            findings(&stdout)
        };
        let f = found
            .iter()
            .find(|f| {
                f["rule_title"]
                    .as_str()
                    .unwrap()
                    .starts_with("Any Trail Call")
            })
            .unwrap();
        assert_eq!(f["event_name"], format!("StopLogging{joined}"));
        assert_eq!(f["user_agent"], format!("aws-cli/2 {joined}"));
    }
    let (_, listed, _) = run(bin()
        .args(["findings", "--format", "jsonl", "--local"])
        .arg(&store));
    let id = findings(&listed)
        .into_iter()
        .find(|f| f["event_name"] == format!("StopLogging{joined}"))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (out, shown, stderr) = run(bin()
        .args(["findings", "--local"])
        .arg(&store)
        .args(["show", &id]));
    assert!(out.status.success(), "{stderr}");
    assert_eq!(raw_controls(&shown), [] as [char; 0], "{shown:?}");
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(
        shown["principal"],
        format!("arn:aws:iam::111122223333:user/eve{joined}")
    );
    let (_, table, _) = run(bin()
        .args(["findings", "--format", "table", "--local"])
        .arg(&store));
    assert!(table.contains("StopLogging"), "{table}");
    assert_eq!(raw_controls(&table), [] as [char; 0], "{table:?}");

    let (out, listed, _) = run(bin()
        .args(["rules", "list", "--no-builtin", "--rules"])
        .arg(&rules));
    assert!(out.status.success());
    assert!(
        listed.contains("Any Trail Call \\u{1b}[32m\\u{202e}"),
        "{listed}"
    );
    assert_eq!(
        raw_controls(&listed.replace('\t', " ")),
        [] as [char; 0],
        "{listed:?}"
    );
}

#[test]
fn files_read_before_by_other_rules_or_policy_are_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    std::fs::copy(data("tampering.json"), logs.join("tampering.json")).unwrap();
    let extra = dir.path().join("extra");
    std::fs::create_dir(&extra).unwrap();
    std::fs::copy(data("low-rule.yml"), extra.join("described.yml")).unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, "ai_accounts: [\"111122223333\"]\n").unwrap();
    let scan = |extra_args: &[&std::ffi::OsStr]| {
        let (out, stdout, stderr) = run(bin()
            .args(["scan", "--format", "jsonl", "--store"])
            .arg(&store)
            .args(extra_args)
            .arg(&logs));
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        (findings(&stdout), stderr)
    };
    let rules = ["--rules".as_ref(), extra.as_os_str()];
    let reread = "re-read: 1 file(s) read before with other rules or policy";

    // (arguments, read again?, findings of the extra rule)
    let (first, stderr) = scan(&[]);
    assert!(!first.is_empty());
    assert!(!stderr.contains("re-read"), "{stderr}");
    let described = |found: &[serde_json::Value]| {
        found
            .iter()
            .filter(|f| f["rule_title"] == "Trail described")
            .count()
    };
    assert_eq!(described(&first), 0);
    for (args, read, new) in [
        (&[][..], false, 0),
        (&rules[..], true, 1),
        (&rules[..], false, 0),
        (&[][..], true, 0),
        (&["--policy".as_ref(), policy.as_os_str()][..], true, 0),
        (&["--policy".as_ref(), policy.as_os_str()][..], false, 0),
        (&["--min-level".as_ref(), "high".as_ref()][..], true, 0),
    ] {
        let (found, stderr) = scan(args);
        assert_eq!(stderr.contains(reread), read, "{args:?}: {stderr}");
        assert_eq!(
            stderr.contains("already processed: 1 file(s) skipped"),
            !read,
            "{args:?}: {stderr}"
        );
        assert_eq!(found.is_empty(), !read, "{args:?}");
        assert_eq!(described(&found), new, "{args:?}");
    }
    // Changing a rule file's text is other rules too.
    let text = std::fs::read_to_string(data("low-rule.yml")).unwrap();
    std::fs::write(
        extra.join("described.yml"),
        text.replace("level: low", "level: medium"),
    )
    .unwrap();
    let (found, stderr) = scan(&rules);
    assert!(stderr.contains(reread), "{stderr}");
    assert_eq!(described(&found), 1);

    // The store holds each finding once, seen as often as it was made.
    let (out, listed, _) = run(bin()
        .args(["findings", "--format", "jsonl", "--local"])
        .arg(&store));
    assert!(out.status.success());
    let listed = findings(&listed);
    let mut keys: Vec<(String, String)> = listed
        .iter()
        .map(|f| (f["rule_id"].to_string(), f["event_ids"].to_string()))
        .collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n, "no finding stored twice: {listed:#?}");
    assert_eq!(n, first.len() + 1, "the extra rule's finding was added");
    assert!(listed
        .iter()
        .filter(|f| f["rule_title"] != "Trail described")
        .all(|f| f["times_seen"].as_u64().unwrap() >= 4));
}

#[test]
fn ledger_entries_written_before_fingerprints_are_read_again_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let log = dir.path().join("tampering.json");
    std::fs::copy(data("tampering.json"), &log).unwrap();
    // A store as an earlier version wrote it (no schema version, the
    // ledger without fingerprints), holding the ledger entry a scan makes.
    let current = dir.path().join("current.db");
    let (out, _, _) = run(bin().args(["scan", "--store"]).arg(&current).arg(&log));
    assert!(out.status.success());
    {
        let conn = rusqlite::Connection::open(&store).unwrap();
        conn.execute_batch(
            "CREATE TABLE ledger (object TEXT NOT NULL PRIMARY KEY, version TEXT NOT NULL, records INTEGER NOT NULL, done_at TEXT NOT NULL);",
        )
        .unwrap();
        conn.execute(
            "ATTACH DATABASE ?1 AS current",
            [current.display().to_string()],
        )
        .unwrap();
        conn.execute_batch(
            "INSERT INTO ledger SELECT object, version, records, done_at FROM current.ledger;",
        )
        .unwrap();
    }
    let scan = || run(bin().args(["scan", "--store"]).arg(&store).arg(&log));
    let (out, stdout, stderr) = scan();
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("re-read: 1 file(s) read before with other rules or policy"),
        "{stderr}"
    );
    assert!(!findings(&stdout).is_empty());
    let (_, stdout, stderr) = scan();
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("already processed: 1 file(s) skipped"),
        "{stderr}"
    );
}

#[test]
fn rules_test_counts_rules_without_test_events_as_untested() {
    let dir = tempfile::tempdir().unwrap();
    let rule = |name: &str, event: &str| {
        std::fs::write(
            dir.path().join(format!("{name}.yml")),
            format!("title: {name}\nid: 0f0f0f0f-0000-4000-8000-0000000000{:02x}\nstatus: test\ndescription: d\nlogsource: {{product: aws, service: cloudtrail}}\ndetection:\n  sel:\n    eventName: {event}\n  condition: sel\nlevel: low\n", name.len()),
        )
        .unwrap();
    };
    let cases = |name: &str, expect: u64| {
        std::fs::write(
            dir.path().join(format!("{name}.test.json")),
            serde_json::json!({"cases": [{"name": "one", "expect": expect, "events": [
                {"eventVersion": "1.08", "eventTime": "2026-11-02T08:00:00Z",
                 "eventSource": "cloudtrail.amazonaws.com", "eventName": "StopLogging",
                 "eventID": "e1", "recipientAccountId": "111122223333"}
            ]}]})
            .to_string(),
        )
        .unwrap();
    };
    let run_tests = || run(bin().args(["rules", "test"]).arg(dir.path()));
    // (what is added, the last line, the exit code)
    type Step<'a> = (Box<dyn Fn() + 'a>, &'a str, i32);
    let steps: Vec<Step<'_>> = vec![
        (
            Box::new(|| rule("third_party", "DeleteTrail")),
            "0 passed, 0 failed, 1 untested",
            0,
        ),
        (
            Box::new(|| {
                rule("stop", "StopLogging");
                cases("stop", 1);
            }),
            "1 passed, 0 failed, 1 untested",
            0,
        ),
        (
            Box::new(|| {
                rule("wrong", "StopLogging");
                cases("wrong", 0);
            }),
            "1 passed, 1 failed, 1 untested",
            1,
        ),
        (
            Box::new(|| {
                rule("badjson", "StopLogging");
                std::fs::write(dir.path().join("badjson.test.json"), "{").unwrap();
            }),
            "1 passed, 2 failed, 1 untested",
            1,
        ),
    ];
    for (add, last, code) in steps {
        add();
        let (out, stdout, stderr) = run_tests();
        assert_eq!(out.status.code(), Some(code), "{stdout}{stderr}");
        assert_eq!(stdout.lines().last(), Some(last), "{stdout}");
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("untested") && l.contains("third_party.yml")),
            "{stdout}"
        );
    }
}

/// A complete CloudTrail rule with `id` and `title`, and `extra` lines.
fn sigma_rule(id: &str, title: &str, extra: &str) -> String {
    format!(
        "title: {title}\nid: {id}\nstatus: test\ndescription: d\nauthor: a\ndate: 2026-11-02\n{extra}logsource: {{product: aws, service: cloudtrail}}\ndetection:\n  sel:\n    eventName: StopLogging\n  condition: sel\nlevel: high\n"
    )
}

#[test]
fn rules_validate_reports_lint_issues_and_fails_on_them_when_asked() {
    let id = |n: u32| format!("0f0f0f0f-0000-4000-8000-{n:012}");
    let bare = "title: Bare\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    eventName: X\n  condition: sel\n".to_owned();
    // (files, expected (file, rule, check) issues, load problems?)
    type Files<'a> = Vec<(&'a str, String)>;
    type Expected<'a> = Vec<(&'a str, String, &'a str)>;
    let cases: Vec<(Files<'_>, Expected<'_>, bool)> = vec![
        (
            vec![("clean.yml", sigma_rule(&id(2), "Clean", "tags:\n  - attack.t1078.004\n  - attack.g0016\n  - attack.s0002\n  - attack.initial-access\n  - ai.governance\n"))],
            vec![],
            false,
        ),
        (
            vec![("bare.yml", bare)],
            vec![
                ("bare.yml", "Bare".to_owned(), "missing_id"),
                ("bare.yml", "Bare".to_owned(), "missing_status"),
                ("bare.yml", "Bare".to_owned(), "missing_description"),
                ("bare.yml", "Bare".to_owned(), "missing_level"),
            ],
            false,
        ),
        (
            vec![
                ("a.yml", sigma_rule(&id(3), "Same Title", "")),
                ("b.yml", sigma_rule(&id(3), "Other Title", "")),
                ("c.yml", sigma_rule(&id(4), "Same Title", "")),
            ],
            vec![
                ("b.yml", id(3), "duplicate_id"),
                ("c.yml", id(4), "duplicate_title"),
            ],
            // A duplicate id is a load problem too (the first rule is kept).
            true,
        ),
        (
            vec![(
                "tags.yml",
                sigma_rule(&id(5), "Tags", "tags:\n  - attack.defense-evasion\n  - attack.t12\n  - attack.stealth\n"),
            )],
            vec![
                ("tags.yml", id(5), "unknown_attack_tag"),
                ("tags.yml", id(5), "unknown_attack_tag"),
            ],
            false,
        ),
        (
            vec![(
                "date.yml",
                sigma_rule(&id(6), "Date", "").replace("date: 2026-11-02", "date: 02.11.2026"),
            )],
            vec![("date.yml", id(6), "invalid_date")],
            false,
        ),
        (
            vec![
                ("broken.yml", "title: [unclosed\n".to_owned()),
                ("fine.yml", sigma_rule(&id(7), "Fine", "")),
            ],
            vec![],
            true,
        ),
    ];
    for (files, expected, problems) in cases {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in &files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let label = format!("{:?}", files.iter().map(|f| f.0).collect::<Vec<_>>());
        let validate =
            |args: &[&str]| run(bin().args(["rules", "validate"]).args(args).arg(dir.path()));

        let (out, stdout, _) = validate(&[]);
        assert_eq!(
            out.status.code(),
            Some(i32::from(problems)),
            "{label}: {stdout}"
        );
        let last = stdout.lines().last().unwrap();
        assert!(
            last.contains(&format!("{} issues", expected.len())),
            "{label}: {stdout}"
        );
        for (file, _, check) in &expected {
            assert!(
                stdout
                    .lines()
                    .any(|l| l.contains(file) && l.contains(&format!("[{check}]"))),
                "{label}: {check} not in {stdout}"
            );
        }
        let (out, _, _) = validate(&["--fail-on-issues"]);
        let fails = problems || !expected.is_empty();
        assert_eq!(out.status.code(), Some(i32::from(fails)), "{label}");

        let (out, stdout, _) = validate(&["--format", "json"]);
        assert_eq!(out.status.code(), Some(i32::from(problems)), "{label}");
        let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(
            doc["problems"].as_array().unwrap().is_empty(),
            !problems,
            "{label}: {doc}"
        );
        let mut got: Vec<(String, String, String)> = doc["issues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                assert!(["error", "warning"].contains(&i["severity"].as_str().unwrap()));
                assert!(!i["message"].as_str().unwrap().is_empty());
                let file = i["file"].as_str().unwrap();
                (
                    Path::new(file)
                        .file_name()
                        .unwrap()
                        .to_str()
                        .unwrap()
                        .to_owned(),
                    i["rule"].as_str().unwrap_or("").to_owned(),
                    i["check"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let mut want: Vec<(String, String, String)> = expected
            .iter()
            .map(|(f, r, c)| (f.to_string(), r.clone(), c.to_string()))
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{label}");
    }
}

#[test]
fn the_builtin_pack_validates_with_no_problem_and_no_lint_issue() {
    let (out, stdout, stderr) =
        run(bin().args(["rules", "validate", "--fail-on-issues", "--format", "json"]));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["problems"], serde_json::json!([]));
    assert_eq!(doc["issues"], serde_json::json!([]));
    assert!(doc["rules"].as_u64().unwrap() > 20);
}

/// Run `cmd` with its standard output a pipe nobody reads (closed before
/// the command starts, as `| head -1` closes it after the first line):
/// the exit code and standard error.
fn run_with_stdout_closed(cmd: &mut Command) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = cmd
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .expect("run trailwarden");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_closed_standard_output_ends_the_output_quietly_with_the_usual_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let (_, stdout, _) = run(bin()
        .args(["scan", "--store"])
        .arg(&store)
        .arg(data("tampering.json")));
    let id = findings(&stdout)[0]["id"].as_str().unwrap().to_owned();
    let store = store.to_str().unwrap();
    let pack = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let pack = pack.to_str().unwrap();
    let tampering = data("tampering.json");
    let tampering = tampering.to_str().unwrap();
    let commands: Vec<Vec<&str>> = vec![
        vec!["rules", "validate", "--format", "json"],
        vec!["rules", "validate"],
        vec!["rules", "test", pack],
        vec!["rules", "list"],
        vec!["findings", "--local", store, "show", &id],
        vec!["findings", "--local", store, "--format", "jsonl"],
        vec!["findings", "--local", store, "--format", "table"],
        vec!["simulate", "--list"],
        vec!["sweep", "--store", store, "--idle-days", "1"],
        vec!["scan", "--store", "memory", tampering],
        vec!["scan", "--store", "memory", "--fail-on", "low", tampering],
    ];
    for args in commands {
        let (full, stdout, stderr) = run(bin().args(&args));
        assert!(!stdout.is_empty(), "{args:?} writes nothing: {stderr}");
        let (code, stderr) = run_with_stdout_closed(bin().args(&args));
        assert_eq!(code, full.status.code(), "{args:?}: {stderr}");
        assert_ne!(code, Some(101), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(
            !stderr.to_lowercase().contains("broken pipe"),
            "{args:?}: {stderr}"
        );
    }
}

/// A detection rule `failed_login` in one file and a correlation over it
/// in another, with test events for the correlation.
fn rules_in_two_files(dir: &Path) {
    std::fs::write(
        dir.join("failed_login.yml"),
        "title: Failed Console Login\nid: 0f0f0f0f-0000-4000-8000-00000000a001\nname: failed_login\nstatus: test\ndescription: d\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    eventName: ConsoleLogin\n    errorMessage: Failed authentication\n  condition: sel\nlevel: low\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("many.yml"),
        "title: Many Failed Console Logins\nid: 0f0f0f0f-0000-4000-8000-00000000a002\nstatus: test\ndescription: d\ncorrelation:\n  type: event_count\n  rules:\n    - failed_login\n  group-by:\n    - sourceIPAddress\n  timespan: 10m\n  condition:\n    gte: 3\nlevel: high\n",
    )
    .unwrap();
    let login = |n: u32, error: &str| {
        serde_json::json!({"eventVersion": "1.08", "eventTime": format!("2026-11-02T08:00:0{n}Z"),
            "eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin",
            "errorMessage": error, "sourceIPAddress": "203.0.113.7",
            "eventID": format!("e{n}"), "recipientAccountId": "111122223333"})
    };
    std::fs::write(
        dir.join("many.test.json"),
        serde_json::json!({"cases": [
            {"name": "three failures", "expect": 1,
             "events": [login(1, "Failed authentication"), login(2, "Failed authentication"), login(3, "Failed authentication")]},
            {"name": "two failures", "expect": 0,
             "events": [login(1, "Failed authentication"), login(2, "Failed authentication"), login(3, "")]}
        ]})
        .to_string(),
    )
    .unwrap();
}

#[test]
fn rules_test_runs_each_file_against_every_rule_given() {
    let dir = tempfile::tempdir().unwrap();
    rules_in_two_files(dir.path());
    let (out, stdout, stderr) = run(bin().args(["rules", "test"]).arg(dir.path()));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("ok") && l.contains("many.yml") && l.contains("(2 cases)")),
        "{stdout}"
    );
    assert_eq!(
        stdout.lines().last(),
        Some("1 passed, 0 failed, 1 untested"),
        "{stdout}"
    );
    // The files given one by one are one set too.
    let (out, stdout, _) = run(bin()
        .args(["rules", "test"])
        .arg(dir.path().join("many.yml"))
        .arg(dir.path().join("failed_login.yml")));
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    // Alone, the correlation refers to a rule that is not there.
    let (out, stdout, _) = run(bin()
        .args(["rules", "test"])
        .arg(dir.path().join("many.yml")));
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("failed_login"), "{stdout}");
    assert_eq!(
        stdout.lines().last(),
        Some("0 passed, 1 failed, 0 untested"),
        "{stdout}"
    );

    // The built-in pack: every rule file passes.
    let pack = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let (out, stdout, _) = run(bin().args(["rules", "test"]).arg(&pack));
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let last = stdout.lines().last().unwrap();
    assert!(last.ends_with(" passed, 0 failed, 0 untested"), "{last}");
}

#[test]
fn rules_validate_loads_the_builtin_pack_beside_the_paths_unless_no_builtin() {
    let dir = tempfile::tempdir().unwrap();
    // A correlation over a built-in rule (it names it by id).
    std::fs::write(
        dir.path().join("stop_twice.yml"),
        "title: Logging Stopped Twice\nid: 0f0f0f0f-0000-4000-8000-00000000b001\nstatus: test\ndescription: d\nauthor: a\ndate: 2026-11-02\ncorrelation:\n  type: event_count\n  rules:\n    - BUILTIN\n  group-by:\n    - recipientAccountId\n  timespan: 1h\n  condition:\n    gte: 2\nlevel: high\n"
            .replace("BUILTIN", &builtin_rule_id("cloudtrail")),
    )
    .unwrap();
    let validate = |extra: &[&str]| {
        let (out, stdout, stderr) = run(bin()
            .args(["rules", "validate", "--format", "json"])
            .args(extra)
            .arg(dir.path()));
        let doc: serde_json::Value =
            serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}{stderr}"));
        (out.status.code(), doc)
    };
    let (code, doc) = validate(&[]);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["problems"], serde_json::json!([]), "{doc}");
    // Only the given file is reported on and counted.
    assert_eq!(doc["issues"], serde_json::json!([]), "{doc}");
    assert_eq!(doc["skipped"], serde_json::json!([]), "{doc}");
    assert_eq!(doc["rules"], 0, "{doc}");
    assert_eq!(doc["correlations"], 1, "{doc}");
    let (out, stdout, _) = run(bin().args(["rules", "validate"]).arg(dir.path()));
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert_eq!(
        stdout.lines().last(),
        Some("0 rules and 1 correlations valid, 0 problems, 0 issues, 0 skipped"),
        "{stdout}"
    );

    // Alone, the correlation refers to a rule that is not there.
    let (code, doc) = validate(&["--no-builtin"]);
    assert_eq!(code, Some(1), "{doc}");
    let problems = doc["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{doc}");
    assert!(
        problems[0]["file"]
            .as_str()
            .unwrap()
            .ends_with("stop_twice.yml"),
        "{doc}"
    );

    // A given rule repeating a built-in id is a problem of the given file.
    std::fs::write(
        dir.path().join("again.yml"),
        sigma_rule(&builtin_rule_id("cloudtrail"), "Another Title", ""),
    )
    .unwrap();
    let (code, doc) = validate(&[]);
    assert_eq!(code, Some(1), "{doc}");
    assert!(
        doc["problems"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["file"].as_str().unwrap().ends_with("again.yml")),
        "{doc}"
    );
    let (code, _) = validate(&["--no-builtin"]);
    assert_eq!(code, Some(0));

    let (out, _, stderr) = run(bin().args(["rules", "validate", "--no-builtin"]));
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("nothing to validate"), "{stderr}");
}

/// The id of a built-in detection rule in the pack's `dir` that makes
/// findings of its own.
fn builtin_rule_id(dir: &str) -> String {
    let (_, stdout, _) = run(bin().args(["rules", "list"]));
    stdout
        .lines()
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .find(|f| {
            f.len() == 5 && f[2] == "detection" && f[4].starts_with(&format!("builtin:{dir}/"))
        })
        .unwrap_or_else(|| panic!("no detection rule in {dir}: {stdout}"))[0]
        .to_owned()
}

#[test]
fn a_missing_policy_file_is_named_with_the_reason_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nosuch.yaml");
    let (out, _, stderr) = run(bin()
        .args(["scan", "--policy"])
        .arg(&missing)
        .arg(data("tampering.json")));
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("cannot read policy file"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.contains("nosuch.yaml"), "{line}");
    assert_eq!(
        line.matches("No such file or directory").count(),
        1,
        "{line}"
    );
}

#[test]
fn an_empty_directory_is_named_as_holding_no_files() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(empty.join("sub")).unwrap();
    std::fs::write(empty.join(".hidden"), "{}").unwrap();
    let (out, stdout, stderr) = run(bin().arg("scan").arg(&empty));
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains(&format!("{}: no files in this directory", empty.display())),
        "{stderr}"
    );
    assert!(stderr.contains("no input could be read"), "{stderr}");

    // Beside a file that is read, it is named and the scan goes on.
    let (out, stdout, stderr) = run(bin().arg("scan").arg(&empty).arg(data("tampering.json")));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stdout.is_empty());
    assert!(
        stderr.contains(&format!("{}: no files in this directory", empty.display())),
        "{stderr}"
    );
    assert!(stderr.contains("files: 1 (1 read"), "{stderr}");
}

/// `--output FILE` takes every format, for `scan` and `findings`: the
/// findings go to the file (JSON lines unless a format is given), nothing
/// to standard output; a table there is coloured only with `--color
/// always`; a file that cannot be written is an error that names it.
#[test]
fn output_writes_any_format_to_a_file_and_colours_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let (out, piped, stderr) = run(bin()
        .args(["scan", "--format", "jsonl", "--store", "memory"])
        .arg(data("tampering.json")));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let file = dir.path().join("found.jsonl");
    let (out, stdout, stderr) = run(bin()
        .args(["scan", "--store"])
        .arg(&store)
        .arg("--output")
        .arg(&file)
        .arg(data("tampering.json")));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), piped);
    assert!(!findings(&piped).is_empty());
    for (format, color, coloured) in [
        ("table", None, false),
        ("table", Some("never"), false),
        ("table", Some("always"), true),
        ("json", Some("always"), false),
        ("ocsf", None, false),
    ] {
        let file = dir.path().join(format!("out-{format}-{color:?}"));
        let mut cmd = bin();
        cmd.args(["findings", "--local"])
            .arg(&store)
            .args(["--format", format, "-o"])
            .arg(&file);
        if let Some(color) = color {
            cmd.args(["--color", color]);
        }
        let (out, stdout, stderr) = run(&mut cmd);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert!(stdout.is_empty(), "{stdout}");
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(
            text.contains('\u{1b}'),
            coloured,
            "{format} {color:?}: {text}"
        );
        match format {
            "table" => assert!(text.starts_with("ID ") && text.contains("tw-"), "{text}"),
            "json" => assert!(serde_json::from_str::<serde_json::Value>(&text)
                .unwrap()
                .is_array()),
            _ => assert!(text
                .lines()
                .all(
                    |l| serde_json::from_str::<serde_json::Value>(l).unwrap()["class_uid"] == 2004
                )),
        }
    }
    let (out, _, stderr) = run(bin()
        .args(["scan", "--store", "memory", "--output"])
        .arg(dir.path().join("no/such/dir/out.jsonl"))
        .arg(data("tampering.json")));
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot write") && stderr.contains("out.jsonl"),
        "{stderr}"
    );
    // The output is never one of the inputs (it would be emptied first).
    let input = dir.path().join("in.json");
    std::fs::copy(data("tampering.json"), &input).unwrap();
    let (out, _, stderr) = run(bin()
        .args(["scan", "--store", "memory", "-o"])
        .arg(&input)
        .arg(dir.path()));
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is one of the inputs"), "{stderr}");
    assert_eq!(
        std::fs::read(&input).unwrap(),
        std::fs::read(data("tampering.json")).unwrap()
    );
    // Nor the store.
    let (out, _, stderr) = run(bin()
        .args(["scan", "--store"])
        .arg(&store)
        .arg("-o")
        .arg(&store)
        .arg(&input));
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is the store"), "{stderr}");
    // Inside a directory that is scanned, a new file is written; once it
    // exists it is an input, and the run is refused rather than empty it.
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::copy(data("tampering.json"), logs.join("a.json")).unwrap();
    let scan_into_logs = || {
        run(bin()
            .args(["scan", "--store", "memory", "-o"])
            .arg(logs.join("found.jsonl"))
            .arg(&logs))
    };
    let (out, _, stderr) = scan_into_logs();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let written = std::fs::read(logs.join("found.jsonl")).unwrap();
    assert!(!written.is_empty());
    let (out, _, stderr) = scan_into_logs();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is one of the inputs"), "{stderr}");
    assert_eq!(std::fs::read(logs.join("found.jsonl")).unwrap(), written);
    // `findings show` writes there too; `ack` has no findings to write.
    let id = findings(&piped)[0]["id"].as_str().unwrap().to_owned();
    let shown = dir.path().join("shown.json");
    let (out, stdout, stderr) = run(bin()
        .args(["findings", "--local"])
        .arg(&store)
        .arg("-o")
        .arg(&shown)
        .args(["show", &id]));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    let row: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&shown).unwrap()).unwrap();
    assert_eq!(row["id"], id.as_str());
    let (out, _, stderr) = run(bin()
        .args(["findings", "--local"])
        .arg(&store)
        .arg("-o")
        .arg(&shown)
        .args(["ack", &id]));
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not to ack"), "{stderr}");
}

/// In a directory, files that are clearly not logs (a licence, a README,
/// an image) are skipped and listed once in the summary; a JSON file that
/// is not CloudTrail, a gzip file and a file named on the command line are
/// read (and rejected where they are not logs).
#[test]
fn files_that_are_not_logs_in_a_directory_are_skipped_not_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(logs.join("2026/11/02")).unwrap();
    std::fs::copy(data("tampering.json"), logs.join("2026/11/02/a.json")).unwrap();
    std::fs::write(logs.join("LICENSE"), "Apache License\nVersion 2.0\n").unwrap();
    std::fs::write(logs.join("README.md"), "# Trail archive\n").unwrap();
    std::fs::write(logs.join("logo.png"), b"\x89PNG\r\n\x1a\n\0\0").unwrap();
    // With a byte order mark and blank lines, JSON is still JSON.
    std::fs::write(logs.join("bom.json"), b"\xef\xbb\xbf\n  {\"Records\": []}").unwrap();
    let (out, stdout, stderr) = run(bin().args(["scan", "--format", "jsonl"]).arg(&logs));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!findings(&stdout).is_empty());
    assert!(
        stderr.contains("files: 5 (2 read, 3 skipped, 0 unreadable, 0 already processed)"),
        "{stderr}"
    );
    for name in ["LICENSE", "README.md", "logo.png"] {
        let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(name)).collect();
        assert!(
            lines.len() == 1
                && lines[0].starts_with("  skipped ")
                && lines[0].contains("not a log"),
            "{name}: {stderr}"
        );
    }
    // A pipe under a directory is not read (taking its first bytes would
    // leave the reader without them, or wait for a writer for ever).
    let fifo = logs.join("incoming.pipe");
    if Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success())
    {
        let (out, _, stderr) = run(bin().args(["scan", "--format", "jsonl"]).arg(&logs));
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert!(
            stderr.contains("incoming.pipe: not a regular file"),
            "{stderr}"
        );
        std::fs::remove_file(&fifo).unwrap();
    } else {
        eprintln!("SKIPPED: the named-pipe case (no mkfifo here)");
    }
    // Files that are not logs beside a file that cannot be read: nothing
    // was read, exit 2.
    let broken = dir.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("README.md"), "# notes\n").unwrap();
    std::fs::write(broken.join("cut.json.gz"), [0x1f, 0x8b, 0x08, 0x00, 0x00]).unwrap();
    let (out, _, stderr) = run(bin().arg("scan").arg(&broken));
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("files: 2 (0 read, 1 skipped, 1 unreadable")
            && stderr.contains("none of the 1 input(s) could be read"),
        "{stderr}"
    );
    // Named on the command line, a file is read, and rejected if need be.
    let (out, _, stderr) = run(bin().arg("scan").arg(logs.join("LICENSE")));
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("LICENSE: unreadable: not JSON"), "{stderr}");
    // A directory of nothing but such files reads nothing, and says why.
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("NOTES.txt"), "notes").unwrap();
    let (out, _, stderr) = run(bin().arg("scan").arg(&docs));
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("NOTES.txt: skipped: not a log")
            && stderr.contains("no input could be read"),
        "{stderr}"
    );
}

/// One gzip file on two threads (inflated on one thread, evaluated on
/// another, its state gathered on a third) reads exactly as on one: the
/// same findings, summary and store; also for a file cut in the middle and
/// for one with escapes, envelopes and rejected records.
#[test]
fn one_file_on_two_threads_reads_as_on_one() {
    let dir = tempfile::tempdir().unwrap();
    let records = simulated(dir.path(), "llmjacking");
    let whole = dir.path().join("llmjacking.json.gz");
    let data = std::fs::read(&whole).unwrap();
    let cut = dir.path().join("cut.json.gz");
    std::fs::write(&cut, &data[..data.len() * 3 / 4]).unwrap();
    // The same records in the shapes the reader treats specially: escaped
    // and lone-surrogate text in the fields rules group by, EventBridge
    // envelopes, and rejected records in between.
    let mut parts = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let text = r.to_string();
        parts.push(match i % 4 {
            0 => text.replacen(r#""userAgent":""#, r#""userAgent":"\ud800\"\u00e9 "#, 1),
            1 => text.replacen(r#""sourceIPAddress":""#, r#""sourceIPAddress":"\u0031"#, 1),
            2 => format!(
                r#"{{"version":"0","detail-type":"AWS API Call via CloudTrail","detail":{text}}}"#
            ),
            _ => text,
        });
        if i % 50 == 7 {
            parts
                .push(r#"{"eventVersion":"1.08","eventTime":"not a time","eventName":"X"}"#.into());
        }
    }
    let hostile = dir.path().join("hostile.json.gz");
    let log = format!(r#"{{"Records":[{}]}}"#, parts.join(","));
    std::fs::write(&hostile, gzip(log.as_bytes())).unwrap();
    for file in [&whole, &cut, &hostile] {
        let scan = |threads: &str| {
            let store = dir.path().join(format!("one-{threads}.db"));
            let _ = std::fs::remove_file(&store);
            let (out, stdout, stderr) = run(bin()
                .args(["scan", "--format", "jsonl", "--threads", threads, "--store"])
                .arg(&store)
                .arg(file));
            let summary: Vec<String> = stderr
                .lines()
                .filter(|l| !l.starts_with("throughput:"))
                .map(|l| l.replace(&store.display().to_string(), "STORE"))
                .collect();
            let contents: Vec<String> = store_contents(&store)
                .iter()
                .map(|s| s.replace(&format!("one-{threads}"), "one-N"))
                .collect();
            (out.status.code(), findings(&stdout), summary, contents)
        };
        let one = scan("1");
        assert!(!one.1.is_empty() || file == &cut, "{:?}", one.2);
        if file == &hostile {
            assert!(
                one.2.iter().any(|l| l.contains("not a time")),
                "{:?}",
                one.2
            );
        }
        assert_eq!(scan("2"), one, "{}", file.display());
    }
}

/// Chained correlations from the command: `rules list` shows the
/// referenced correlation as a building block, and a scan reports the
/// outer correlation alone.
#[test]
fn a_chained_correlation_runs_from_the_command_and_lists_its_building_block() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("brute_force.yml"),
        r#"title: Failed console logins then a success
id: 30000000-0000-4000-8000-000000000001
correlation:
  type: temporal_ordered
  rules: [many_failed, login_ok]
  group-by: [userIdentity.userName]
  timespan: 10m
level: high
---
title: Many failed console logins
id: 30000000-0000-4000-8000-000000000002
name: many_failed
correlation:
  type: event_count
  rules: [login_failed]
  group-by: [userIdentity.userName]
  timespan: 10m
  condition:
    gte: 3
level: medium
---
title: Failed console login
id: 30000000-0000-4000-8000-000000000003
name: login_failed
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: ConsoleLogin
    responseElements.ConsoleLogin: Failure
  condition: selection
level: low
---
title: Console login
id: 30000000-0000-4000-8000-000000000004
name: login_ok
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: ConsoleLogin
    responseElements.ConsoleLogin: Success
  condition: selection
level: low
"#,
    )
    .unwrap();
    let (_, stdout, stderr) = run(bin()
        .args(["rules", "list", "--no-builtin", "--rules"])
        .arg(&rules));
    let line = |id: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id} not listed: {stdout}{stderr}"))
            .to_owned()
    };
    assert!(line("30000000-0000-4000-8000-000000000002")
        .contains("correlation (eventcount) (feeds a correlation)"));
    assert!(
        line("30000000-0000-4000-8000-000000000001").contains("correlation (temporalordered)\t")
    );

    let login = |at: &str, outcome: &str| {
        format!(
            r#"{{"eventVersion":"1.08","eventTime":"2026-11-02T08:{at}Z","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","eventID":"login-{at}","sourceIPAddress":"198.51.100.7","userIdentity":{{"type":"IAMUser","userName":"bob","arn":"arn:aws:iam::111122223333:user/bob","accountId":"111122223333"}},"responseElements":{{"ConsoleLogin":"{outcome}"}}}}"#
        )
    };
    let file = dir.path().join("logins.json");
    let records = [
        login("00:01", "Failure"),
        login("00:02", "Failure"),
        login("00:03", "Failure"),
        login("01:00", "Success"),
    ];
    std::fs::write(&file, format!("{{\"Records\":[{}]}}", records.join(","))).unwrap();
    let (out, stdout, stderr) = run(bin()
        .args([
            "scan",
            "--no-builtin",
            "--format",
            "jsonl",
            "--store",
            "memory",
            "--rules",
        ])
        .arg(&rules)
        .arg(&file));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let titles: Vec<String> = findings(&stdout)
        .iter()
        .map(|f| f["rule_title"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(titles, ["Failed console logins then a success"], "{stderr}");
}

/// A store that refuses a write (here a trigger standing for a full disk)
/// fails the run with exit 2, whatever `--fail-on` says; the input is
/// named, not marked done, and read again once the store takes writes.
#[test]
fn a_store_that_refuses_writes_fails_the_run_and_the_input_is_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let scan = |extra: &[&str]| {
        run(bin()
            .args(["scan", "--format", "jsonl", "--store"])
            .arg(&store)
            .args(extra)
            .arg(data("tampering.json")))
    };
    // Create the store, then make it refuse findings.
    let (out, _, stderr) = run(bin()
        .args(["scan", "--store"])
        .arg(&store)
        .arg(dir.path().join("nothing-here.json")));
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let conn = rusqlite::Connection::open(&store).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER refuse BEFORE INSERT ON findings BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
    )
    .unwrap();
    for extra in [&[][..], &["--fail-on", "critical"][..]] {
        let (out, _, stderr) = scan(extra);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {stderr}");
        assert!(stderr.contains("tampering.json: not stored"), "{stderr}");
        assert!(
            stderr.contains("1 input(s) could not be stored"),
            "{stderr}"
        );
    }
    conn.execute_batch("DROP TRIGGER refuse;").unwrap();
    let (out, stdout, stderr) = scan(&[]);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!findings(&stdout).is_empty(), "read again: {stderr}");
}

#[test]
fn rules_waiting_for_organisation_facts_are_counted_in_one_line_and_listed_with_v() {
    let events = Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
    let policy = Path::new(env!("CARGO_MANIFEST_DIR")).join("policy.example.yaml");
    let waiting = |stderr: &str| {
        stderr
            .lines()
            .filter(|l| l.contains("rule(s) not run: they need organisation facts"))
            .count()
    };
    let skipped = |stderr: &str| {
        stderr
            .lines()
            .filter(|l| l.starts_with("trailwarden: rule skipped:"))
            .count()
    };
    let (out, _, stderr) = run(bin().args(["scan", "--format", "jsonl"]).arg(&events));
    assert!(out.status.success(), "{stderr}");
    assert_eq!((waiting(&stderr), skipped(&stderr)), (1, 0), "{stderr}");
    let line = stderr.lines().find(|l| waiting(l) == 1).unwrap();
    assert!(
        line.contains("%ai_accounts%") && line.contains("--policy"),
        "the facts named and the way to give them: {line}"
    );
    let (_, _, verbose) = run(bin().args(["scan", "-v", "--format", "jsonl"]).arg(&events));
    assert_eq!(waiting(&verbose), 0, "{verbose}");
    let n: usize = line
        .strip_prefix("trailwarden: ")
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert_eq!(
        skipped(&verbose),
        n,
        "-v lists each rule counted: {verbose}"
    );
    let (_, _, quiet) = run(bin().args(["scan", "-q", "--format", "jsonl"]).arg(&events));
    assert_eq!((waiting(&quiet), skipped(&quiet)), (0, 0), "{quiet}");
    let (_, _, given) = run(bin()
        .args(["scan", "--format", "jsonl", "--policy"])
        .arg(&policy)
        .arg(&events));
    assert_eq!((waiting(&given), skipped(&given)), (0, 0), "{given}");
}

#[test]
fn rules_test_without_a_path_tests_the_built_in_pack_by_its_builtin_names() {
    // Run away from the source tree (the test events must be built in),
    // with a temporary directory of its own (left empty afterwards).
    let elsewhere = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (out, stdout, stderr) = run(bin()
        .args(["rules", "test"])
        .current_dir(elsewhere.path())
        .env("TMPDIR", tmp.path()));
    assert!(out.status.success(), "{stdout}{stderr}");
    let rules: Vec<&str> = trailwarden::builtin::builtin_rules()
        .map(|(path, _)| path)
        .collect();
    assert!(rules.len() > 50);
    assert!(
        stdout.ends_with(&format!("{} passed, 0 failed, 0 untested\n", rules.len())),
        "{stdout}"
    );
    for rule in &rules {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("ok    builtin:{rule} ("))),
            "{rule} named as `rules list` names it: {stdout}"
        );
    }
    assert!(stderr.is_empty(), "{stderr}");
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "the written pack is removed"
    );
}

/// Built without the `aws` feature (the default), the options and
/// subcommands that reach a deployment say how to get them, and exit 2.
#[cfg(not(feature = "aws"))]
#[test]
fn without_the_aws_feature_the_cloud_options_say_how_to_get_them() {
    for args in [
        vec!["findings", "--table", "t"],
        vec!["digest", "--table", "t"],
        vec!["report", "--table", "t"],
        vec![
            "replay",
            "s3://b/AWSLogs/",
            "--table",
            "t",
            "--state-table",
            "s",
        ],
    ] {
        let (out, _, stderr) = run(bin().args(&args));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("built without it") && stderr.contains("--features aws"),
            "{args:?}: {stderr}"
        );
    }
}

/// The README's "What it looks like" is what the first command prints: the
/// rules waiting for facts, every finding's id in the table, and the
/// summary lines (throughput aside) are those of `scan events/` on a new
/// store.
#[test]
fn the_readme_sample_is_what_the_first_scan_prints() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let sample = readme
        .split("## What it looks like")
        .nth(1)
        .and_then(|s| s.split("```").nth(1))
        .expect("a sample in the README");
    let dir = tempfile::tempdir().unwrap();
    let (out, stdout, stderr) = run(bin()
        .current_dir(root)
        .args(["scan", "events/", "--format", "jsonl", "--store"])
        .arg(dir.path().join("store.db")));
    assert!(out.status.success(), "{stderr}");
    let mut ids: Vec<String> = findings(&stdout)
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect();
    let mut shown: Vec<&str> = sample
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.starts_with("tw-"))
        .collect();
    ids.sort();
    shown.sort_unstable();
    assert_eq!(shown, ids, "the table's ids");
    let waiting = sample
        .lines()
        .find(|l| l.starts_with("trailwarden: "))
        .and_then(|l| l.split(" (").next())
        .unwrap();
    assert!(stderr.contains(waiting), "{waiting:?} not in:\n{stderr}");
    for prefix in ["rules: ", "files: ", "records: ", "findings: "] {
        let line = sample.lines().find(|l| l.starts_with(prefix)).unwrap();
        assert!(
            stderr.lines().any(|l| l == line),
            "{line:?} not in:\n{stderr}"
        );
    }
}
