//! `trailwarden rules list|validate|test`.

use super::*;

#[derive(Args)]
pub(crate) struct ValidateArgs {
    /// Rule files or directories [default: the built-in pack]. The
    /// built-in pack is loaded beside them (their correlations may refer
    /// to its rules), and only they are reported on.
    pub(crate) paths: Vec<PathBuf>,
    /// Exit 1 when a lint issue is found, as for a load problem.
    #[arg(long)]
    pub(crate) fail_on_issues: bool,
    /// Output format: text, or one JSON document.
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) format: ValidateFormat,
    /// Validate the given files alone: do not load the built-in pack beside
    /// them (as scan's --no-builtin).
    #[arg(long)]
    pub(crate) no_builtin: bool,
    /// Load the rules with this policy file's facts, as a scan or the
    /// deployment does, and list the rules it leaves out and why (a fact it
    /// does not give, a fact given as an empty list that leaves a rule
    /// nothing to match). Without it, rules that need facts are listed as
    /// skipped.
    #[arg(long, value_name = "FILE")]
    pub(crate) policy: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ValidateFormat {
    /// One line per problem and issue, then a count.
    Text,
    /// One JSON document: problems, issues, skipped rules, counts.
    Json,
}

#[derive(Subcommand)]
pub(crate) enum RulesCommand {
    /// List the loaded rules: id, level, kind, title, source.
    List(RuleArgs),
    /// Check rule files: load problems, and lint issues (missing metadata,
    /// duplicate ids and titles, unknown ATT&CK tags, the Sigma
    /// specification's constraints), each named with its file. Exits 1 on
    /// any problem (or, with --fail-on-issues, any issue).
    Validate(ValidateArgs),
    /// Run each rule's test events (`x.test.json` beside `x.yml`); rules
    /// without a test file are counted untested. Exits 1 on any failure.
    Test {
        /// Rule files or directories [default: the built-in pack, with the
        /// test events built in beside it].
        paths: Vec<PathBuf>,
    },
}

pub(crate) fn rules_list(args: RuleArgs) -> anyhow::Result<ExitCode> {
    let policy = load_policy(&args)?;
    let set = rule_set(&args, &policy);
    let mut out = io::BufWriter::new(terminal::stdout());
    writeln!(out, "ID\tLEVEL\tKIND\tTITLE\tSOURCE")?;
    for r in &set.rules {
        let kind = match (&r.baseline, r.generate) {
            (Some(b), _) => match b.kind {
                trailwarden_engine::BaselineKind::FirstSeen => "first_seen",
                trailwarden_engine::BaselineKind::Dormant => "dormant",
            },
            (None, true) => "detection",
            (None, false) => "detection (feeds a correlation)",
        };
        writeln!(
            out,
            "{}\t{}\t{kind}\t{}\t{}",
            esc(&r.meta.id),
            r.meta.level,
            esc(&r.meta.title),
            esc(&r.meta.source)
        )?;
    }
    for c in &set.correlations {
        let kind = format!("{:?}", c.kind).to_lowercase();
        // A correlation another refers to without `generate: true` reports
        // nothing of its own (chained correlations).
        let feeds = if c.generate {
            ""
        } else {
            " (feeds a correlation)"
        };
        writeln!(
            out,
            "{}\t{}\tcorrelation ({kind}){feeds}\t{}\t{}",
            esc(&c.meta.id),
            c.meta.level,
            esc(&c.meta.title),
            esc(&c.meta.source)
        )?;
    }
    for n in &set.notes {
        writeln!(
            out,
            "-\t-\tskipped: {}\t{}\t{}",
            esc(&n.reason),
            esc(&n.rule),
            esc(&n.source)
        )?;
    }
    out.flush()?;
    for p in &set.problems {
        say!("trailwarden: rule problem: {p}");
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn rules_validate(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        !(args.paths.is_empty() && args.no_builtin),
        "nothing to validate: give rule files or directories, or drop --no-builtin"
    );
    let mut builder = match &args.policy {
        Some(path) => RuleSetBuilder::with_policy(
            Policy::from_file(path).map_err(|e| anyhow::anyhow!("{e}"))?,
        ),
        None => RuleSetBuilder::new(),
    };
    // The texts linted: those the builder reads (a file it cannot read is
    // a load problem).
    let mut texts: Vec<(String, String)> = Vec::new();
    // With paths given, the built-in pack is loaded beside them, as a scan
    // loads it (their correlations may refer to its rules), and linted with
    // them (an id or title they repeat), but not reported on.
    let mut pack: HashSet<String> = HashSet::new();
    if !args.no_builtin {
        for (path, text) in builtin_rules() {
            let source = format!("builtin:{path}");
            builder.add_yaml(&source, text);
            texts.push((source.clone(), text.to_owned()));
            if !args.paths.is_empty() {
                pack.insert(source);
            }
        }
    }
    for path in &args.paths {
        builder.add_path(path);
        for file in rule_files(path).unwrap_or_default() {
            if let Ok(text) = std::fs::read_to_string(&file) {
                texts.push((file.display().to_string(), text));
            }
        }
    }
    let set = builder.build();
    let reported = |source: &str| !pack.contains(source);
    let problems: Vec<_> = set
        .problems
        .iter()
        .filter(|p| reported(&p.source))
        .collect();
    let notes: Vec<_> = set.notes.iter().filter(|n| reported(&n.source)).collect();
    let issues: Vec<_> = trailwarden::lint::lint(&texts)
        .into_iter()
        .filter(|i| reported(&i.file))
        .collect();
    let rules = set
        .rules
        .iter()
        .filter(|r| reported(&r.meta.source))
        .count();
    let correlations = set
        .correlations
        .iter()
        .filter(|c| reported(&c.meta.source))
        .count();
    let failed = !problems.is_empty() || (args.fail_on_issues && !issues.is_empty());
    let mut out = io::BufWriter::new(terminal::stdout());
    match args.format {
        ValidateFormat::Json => {
            let doc = serde_json::json!({
                "problems": problems.iter().map(|p| serde_json::json!({
                    "file": p.source, "rule": p.rule, "reason": p.reason,
                })).collect::<Vec<_>>(),
                "issues": issues,
                "skipped": notes.iter().map(|n| serde_json::json!({
                    "file": n.source, "rule": n.rule, "reason": n.reason,
                })).collect::<Vec<_>>(),
                "rules": rules,
                "correlations": correlations,
            });
            writeln!(out, "{}", json_escape(&serde_json::to_string_pretty(&doc)?))?;
        }
        ValidateFormat::Text => {
            for p in &problems {
                tell!(out, "problem: {p}")?;
            }
            for i in &issues {
                let rule = i
                    .rule
                    .as_deref()
                    .map(|r| format!(" {r}:"))
                    .unwrap_or_default();
                tell!(
                    out,
                    "{}: {}:{rule} {} [{}]",
                    i.severity,
                    i.file,
                    i.message,
                    i.check
                )?;
            }
            for n in &notes {
                tell!(out, "skipped: {}: {:?}: {}", n.source, n.rule, n.reason)?;
            }
            tell!(
                out,
                "{rules} rules and {correlations} correlations valid, {} problems, {} issues, {} skipped",
                problems.len(),
                issues.len(),
                notes.len()
            )?;
        }
    }
    out.flush()?;
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The built-in pack and its test events, written out for
/// [`ruletest::RuleTester`] (which reads files) to a private temporary
/// directory (`tempfile`: a random name, created exclusively, mode 0700),
/// removed when dropped.
pub(crate) struct BuiltinPackFiles(tempfile::TempDir);

impl BuiltinPackFiles {
    fn write() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("trailwarden-builtin-rules-")
            .tempdir()
            .context("creating a temporary directory for the built-in pack (set TMPDIR to a writable one)")?;
        let texts = builtin_rules().chain(trailwarden::builtin::builtin_rule_tests());
        for (rel, text) in texts {
            let path = dir.path().join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(BuiltinPackFiles(dir))
    }

    fn path(&self) -> &std::path::Path {
        self.0.path()
    }

    /// `text` with the files' paths as the built-in pack names them
    /// (`builtin:dir/x.yml`, `/` on every system, as `rules list` does).
    fn name(&self, text: &str) -> String {
        let root = format!("{}{}", self.path().display(), std::path::MAIN_SEPARATOR);
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find(&root) {
            out.push_str(&rest[..at]);
            out.push_str("builtin:");
            rest = &rest[at + root.len()..];
            // The path under the pack, up to where it ends (a space, a
            // colon, a quote or the end), with `/` between its parts.
            let end = rest
                .find(|c: char| c.is_whitespace() || c == ':' || c == '"' || c == ')')
                .unwrap_or(rest.len());
            out.push_str(&rest[..end].replace(std::path::MAIN_SEPARATOR, "/"));
            rest = &rest[end..];
        }
        out.push_str(rest);
        out
    }
}

pub(crate) fn rules_test(paths: Vec<PathBuf>) -> anyhow::Result<ExitCode> {
    let builtin = if paths.is_empty() {
        Some(BuiltinPackFiles::write()?)
    } else {
        None
    };
    let paths = match &builtin {
        Some(b) => vec![b.path().to_path_buf()],
        None => paths,
    };
    let name = |p: &str| match &builtin {
        Some(b) => b.name(p),
        None => p.to_owned(),
    };
    let mut files = Vec::new();
    for path in &paths {
        let found = rule_files(path).map_err(|e| {
            anyhow::anyhow!("{}", name(&format!("reading {}: {e}", path.display())))
        })?;
        files.extend(found);
    }
    // Every file's events run against all the rules given, as a scan with
    // `--rules PATHS --no-builtin` loads them.
    let mut tester = ruletest::RuleTester::new(files);
    let files = tester.files().to_vec();
    let mut out = io::BufWriter::new(terminal::stdout());
    let (mut passed, mut failed, mut untested) = (0, 0, 0);
    for file in files {
        let mut report = tester.run(&file);
        report.rule_file = name(&report.rule_file);
        report.error = report.error.map(|e| name(&e));
        if report.untested {
            untested += 1;
            tell!(
                out,
                "untested  {} (no {} beside it)",
                report.rule_file,
                ruletest::test_file_for(&file)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            )?;
        } else if report.passed() {
            passed += 1;
            tell!(
                out,
                "ok    {} ({} cases)",
                report.rule_file,
                report.cases.len()
            )?;
        } else {
            failed += 1;
            tell!(out, "FAIL  {}", report.rule_file)?;
            if let Some(e) = &report.error {
                tell!(out, "      {e}")?;
            }
            for c in report.cases.iter().filter(|c| !c.passed()) {
                tell!(
                    out,
                    "      case {:?}: expected {} finding(s), got {}",
                    c.name,
                    c.expected,
                    c.got
                )?;
            }
        }
        // A line at a time on a terminal or a pipe, as each file is done.
        out.flush()?;
    }
    tell!(out, "{passed} passed, {failed} failed, {untested} untested")?;
    out.flush()?;
    // Every built-in rule has test events (rules/README.md): one without
    // them (or a build that embedded none) is a failure there.
    let untested_fails = builtin.is_some() && (untested > 0 || passed + failed == 0);
    if untested_fails {
        say!("trailwarden: every built-in rule needs test events; {untested} have none");
    }
    Ok(if failed == 0 && !untested_fails {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
