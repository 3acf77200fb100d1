//! `trailwarden report`: the window's findings as one HTML page that a
//! browser opens without fetching or running anything, with attacker-chosen
//! text shown as text. Where Debian's Chromium is installed (`.ci/run`
//! installs it), the page is opened headless and its screenshot is read
//! back; elsewhere that part says it was skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trailwarden"))
}

fn run(cmd: &mut Command) -> (Output, String, String) {
    let out = cmd.output().expect("run trailwarden");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

/// Calls from an attack distribution (the attack-tool rule fires on each
/// source address), whose principal, address and user agent carry markup.
fn hostile_log(dir: &Path) -> PathBuf {
    let records: Vec<serde_json::Value> = (0..6)
        .map(|i| {
            serde_json::json!({
                "eventVersion": "1.09",
                "userIdentity": {
                    "type": "IAMUser",
                    "principalId": "AIDAEXAMPLE",
                    "arn": "arn:aws:iam::111122223333:user/<script>alert(1)</script>",
                    "accountId": "111122223333",
                    "accessKeyId": "AKIAEXAMPLEHOSTILE01",
                    "userName": "<script>alert(1)</script>"
                },
                "eventTime": format!("2026-11-02T08:{:02}:00Z", 10 + i * 7),
                "eventSource": "bedrock.amazonaws.com",
                "eventName": "ListFoundationModels",
                "awsRegion": "us-east-1",
                "sourceIPAddress": if i % 2 == 0 { "\"><svg onload=alert(2)>" } else { "203.0.113.9" },
                "userAgent": "aws-cli/2.15.0 Python/3.11 Linux/6.5.0-kali3-amd64 <img src=x onerror=alert(3)>",
                "requestParameters": null,
                "responseElements": null,
                "requestID": format!("req-{i}"),
                "eventID": format!("00000000-0000-4000-8000-00000000000{i}"),
                "readOnly": true,
                "eventType": "AwsApiCall",
                "managementEvent": true,
                "recipientAccountId": "111122223333",
                "eventCategory": "Management"
            })
        })
        .collect();
    let path = dir.join("hostile.json");
    std::fs::write(
        &path,
        serde_json::to_string(&serde_json::json!({ "Records": records })).unwrap(),
    )
    .unwrap();
    path
}

/// Scan `inputs` into the store `store`.
fn scan(store: &Path, inputs: &[&Path]) {
    let (out, _, stderr) = run(bin()
        .arg("scan")
        .args(inputs)
        .arg("--store")
        .arg(store)
        .args(["--format", "jsonl"]));
    assert!(out.status.success(), "{stderr}");
}

fn report(store: &Path, page: &Path) -> String {
    let (out, _, stderr) = run(bin()
        .arg("report")
        .arg("--local")
        .arg(store)
        .arg("-o")
        .arg(page));
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("written to"), "{stderr}");
    std::fs::read_to_string(page).unwrap()
}

#[test]
fn the_report_shows_hostile_text_as_text_and_has_every_section() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("findings.db");
    let log = hostile_log(dir.path());
    let sim = dir.path().join("llmjacking.json.gz");
    let (out, _, stderr) = run(bin()
        .args([
            "simulate",
            "llmjacking",
            "--seed",
            "5",
            "--background",
            "300",
            "-o",
        ])
        .arg(&sim));
    assert!(out.status.success(), "{stderr}");
    scan(&store, &[&log, &sim]);
    let page = report(&store, &dir.path().join("report.html"));

    // Markup from the records is text: escaped, never an element.
    assert!(
        page.contains("user/&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    assert!(
        page.contains("&quot;&gt;&lt;svg onload=alert(2)&gt;"),
        "{page}"
    );
    let lower = page.to_lowercase();
    assert!(!lower.contains("<script"), "a script element: {page}");
    assert!(!lower.contains("<img"), "an img element: {page}");
    assert_eq!(
        lower.matches("<svg").count(),
        1,
        "only the timeline is an SVG element"
    );
    // Nothing runs or loads: the policy says so too.
    assert!(page.contains("Content-Security-Policy"));
    assert!(page.contains("default-src 'none'"));
    for fetch in ["href=", "url(", "@import", "<link", "<iframe", "<object"] {
        assert!(!lower.contains(fetch), "{fetch} in the page");
    }

    for section in [
        "id=\"timeline\"",
        "id=\"top\"",
        "id=\"rules\"",
        "id=\"accounts\"",
        "id=\"principals\"",
        "id=\"evidence\"",
        "id=\"new-principals\"",
        "id=\"new-models\"",
        "id=\"idle\"",
        "id=\"health\"",
    ] {
        assert!(page.contains(section), "no {section}");
    }
    // The attack tool's calls, and the scenario's LLMjacking correlation
    // with its events listed.
    assert!(page.contains("AWS Call from an Offensive Security Distribution or Attack Tool"));
    assert!(page.contains("LLMjacking"), "{page}");
    assert!(page.contains("00000000-0000-4000-8000-000000000000"));
    // Bars with a tooltip each.
    assert!(page.contains("<rect class=\"b2\""), "no medium bar");
    assert!(page.contains("<title>"));

    // The digest gives the same page on standard output.
    let (out, html, stderr) = run(bin()
        .args(["digest", "--format", "html", "--since", "3650d", "--local"])
        .arg(&store));
    assert!(out.status.success(), "{stderr}");
    assert!(html.starts_with("<!doctype html>"), "{html}");
    assert!(html.contains("findings since"));
    assert!(html.contains("AWS Call from an Offensive Security Distribution or Attack Tool"));

    if let Some(chromium) = chromium() {
        look_at(&chromium, &dir.path().join("report.html"), dir.path());
    } else {
        eprintln!(
            "skipped: opening the report in a browser (no chromium on PATH; \
             `apt-get install chromium` to run it)"
        );
    }
}

#[test]
fn an_empty_store_makes_a_page_that_says_so_and_the_store_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("findings.db");
    let empty = dir.path().join("empty.json");
    std::fs::write(&empty, r#"{"Records":[]}"#).unwrap();
    scan(&store, &[&empty]);
    let page = report(&store, &dir.path().join("empty.html"));
    assert!(page.contains("No findings in this window"), "{page}");
    assert!(page.contains("<b>0</b> findings"));

    let before = std::fs::read(&store).unwrap();
    let (out, _, stderr) = run(bin()
        .arg("report")
        .arg("--local")
        .arg(&store)
        .arg("-o")
        .arg(&store));
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is the findings store"), "{stderr}");
    assert_eq!(std::fs::read(&store).unwrap(), before);
}

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser"].iter().find_map(|name| {
        std::env::var_os("PATH")?
            .to_str()?
            .split(':')
            .map(|dir| Path::new(dir).join(name))
            .find(|p| p.is_file())
    })
}

/// Open the page headless: it loads without a console error or a refused
/// load, and the screenshot shows the timeline's bars in their levels'
/// colours near the top of the page.
fn look_at(chromium: &Path, page: &Path, dir: &Path) {
    let shot = dir.join("report.png");
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--window-size=1280,700",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium: {stderr}");
    for bad in ["Refused to", "Uncaught", "Content Security Policy", "ERR_"] {
        assert!(
            !stderr
                .lines()
                .any(|l| l.contains("CONSOLE") && l.contains(bad) || l.contains("Refused to")),
            "{bad}: {stderr}"
        );
    }
    let decoder = png::Decoder::new(std::fs::File::open(&shot).expect("a screenshot"));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let near = |px: &[u8], rgb: [u8; 3]| {
        px.iter()
            .zip(rgb)
            .all(|(a, b)| (i16::from(*a) - i16::from(b)).abs() <= 8)
    };
    // The timeline is within the first 450 pixels: count its bars' pixels.
    let mut medium = 0;
    let mut low_or_high = 0;
    for y in 0..(info.height as usize).min(450) {
        for x in 0..info.width as usize {
            let at = (y * info.width as usize + x) * channels;
            let px = &buf[at..at + 3];
            if near(px, [0xf9, 0xa8, 0x25]) {
                medium += 1;
            }
            if near(px, [0x1e, 0x88, 0xe5]) || near(px, [0xe5, 0x39, 0x35]) {
                low_or_high += 1;
            }
        }
    }
    // The badges of the totals and the legend alone make under 1,500
    // pixels of these colours (measured with the bars drawn black); the
    // bars make several thousand.
    assert!(
        medium > 3_000 && low_or_high > 3_000,
        "the screenshot shows no timeline bars: {medium} medium and {low_or_high} low or high pixels"
    );
}

/// A call from an attack distribution (the attack-tool rule reports each
/// source address once an hour).
fn kali_call(id: usize, time: &str, ip: &str, arn: &str, account: &str) -> serde_json::Value {
    serde_json::json!({
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "IAMUser",
            "arn": arn,
            "accountId": account,
            "accessKeyId": "AKIAEXAMPLEHOSTILE02"
        },
        "eventTime": time,
        "eventSource": "s3.amazonaws.com",
        "eventName": "ListBuckets",
        "awsRegion": "us-east-1",
        "sourceIPAddress": ip,
        "userAgent": "aws-cli/2.15.0 Linux/6.5.0-kali3-amd64",
        "eventID": format!("10000000-0000-4000-8000-{id:012}"),
        "eventType": "AwsApiCall",
        "recipientAccountId": account
    })
}

#[test]
fn forged_times_look_alikes_and_huge_values_cannot_hide_or_flood() {
    let dir = tempfile::tempdir().unwrap();
    let admin = "arn:aws:iam::111122223333:user/admin";
    let look_alike = "arn:aws:iam::111122223333:user/adm\u{0456}n"; // Cyrillic і
    let huge = format!("arn:aws:iam::111122223333:user/{}", "x".repeat(20_000));
    let records = vec![
        kali_call(
            1,
            "0001-01-01T00:00:00Z",
            "198.51.100.1",
            admin,
            "111122223333",
        ),
        kali_call(
            2,
            "9999-12-31T23:59:59Z",
            "198.51.100.2",
            admin,
            "111122223333",
        ),
        kali_call(
            3,
            "2026-11-02T08:00:00Z",
            "198.51.100.3",
            admin,
            "111122223333",
        ),
        kali_call(
            4,
            "2026-11-02T08:05:00Z",
            "198.51.100.4",
            look_alike,
            "111122223333",
        ),
        kali_call(
            5,
            "2026-11-02T08:10:00Z",
            "198.51.100.5",
            &huge,
            &"9".repeat(50_000),
        ),
    ];
    let log = dir.path().join("forged.json");
    std::fs::write(
        &log,
        serde_json::to_string(&serde_json::json!({ "Records": records })).unwrap(),
    )
    .unwrap();
    let store = dir.path().join("findings.db");
    scan(&store, &[&log]);
    let page = report(&store, &dir.path().join("r.html"));

    // Backdated: still counted (every stored finding without --since).
    // Dated in the future: listed on its own, not counted, and said so.
    // Four attack-tool findings (one per address) and the key's several
    // addresses within an hour.
    assert!(page.contains("<b>5</b> findings"), "{page}");
    assert!(
        page.contains("0001-01-01T00:00:00Z"),
        "the backdated finding"
    );
    assert!(page.contains("id=\"future\""));
    assert!(page.contains("1 finding(s) are dated after this page was made"));
    assert!(page.contains("9999-12-31T23:59:59Z"));
    // The timeline keeps the year before the latest finding readable.
    assert!(
        page.contains("1 earlier finding(s), from 0001-01-01, are not drawn"),
        "{page}"
    );
    // A look-alike letter is shown as what it is.
    assert!(page.contains("user/adm<span class=\"esc\">\\u{456}</span>n"));
    // Huge values are cut, and the page stays small.
    assert!(page.contains("more characters</span>"));
    assert!(page.len() < 200_000, "{} bytes", page.len());
    assert!(!page.contains(&"x".repeat(1_000)));

    // A time window in the future, or one that is not a time, is refused.
    for since in [
        "2999-01-01",
        "2026-11-02T08:00:00+99:99",
        "106751991167d",
        "yesterday",
    ] {
        let (out, _, stderr) = run(bin()
            .args(["report", "--since", since, "--local"])
            .arg(&store));
        assert!(!out.status.success(), "--since {since}: {stderr}");
        assert!(stderr.contains(since), "{stderr}");
    }
    // Times as CloudTrail writes them, with or without a zone, are taken.
    for since in [
        "2026-11-01T00:00:00",
        "2026-11-01 08:06:41.000000000",
        "2026-11-01",
    ] {
        let (out, _, stderr) = run(bin()
            .args(["report", "--since", since, "--local"])
            .arg(&store)
            .arg("-o")
            .arg(dir.path().join("since.html")));
        assert!(out.status.success(), "--since {since}: {stderr}");
    }
    // -o a directory: refused.
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let (out, _, stderr) = run(bin()
        .args(["report", "--local"])
        .arg(&store)
        .arg("-o")
        .arg(&out_dir));
    assert!(!out.status.success());
    assert!(stderr.contains("is a directory"), "{stderr}");
    // The page is readable by others, as a file written by hand would be
    // (the temporary file it was written to is private).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("r.html"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0o044, "{mode:o}");
    }
    // A store that is not there is not a quiet window.
    let missing = dir.path().join("missing.db");
    let (out, _, stderr) = run(bin().args(["report", "--local"]).arg(&missing));
    assert!(!out.status.success());
    assert!(stderr.contains("no findings store at"), "{stderr}");
    assert!(!missing.exists());
}
