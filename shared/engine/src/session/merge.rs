//! Merging a batch into stored state, and what the merged state decides:
//! correlation windows (`merge_window`: entries, runs, fired windows,
//! redelivered batches) and baselines (`merge_baseline`: tuples first seen,
//! dormant groups), and the findings they make. Called by
//! [`Session::merge`](super::Session::merge).

use super::*;
use std::borrow::Cow;
pub(super) fn correlation_finding(
    corr: &Correlation,
    key: &StateKey,
    group: &BTreeMap<String, String>,
    window: &[Entry],
    last: Option<&Snapshot>,
) -> Finding {
    // A run's end repeats its id (see `with_run_ends`).
    let mut seen = HashSet::new();
    let mut ids: Vec<String> = window
        .iter()
        .filter(|e| seen.insert(e.id.as_str()))
        .map(|e| e.id.clone())
        .collect();
    // The window's first event names the finding, not all its events: the
    // real-time path fires as soon as the threshold is met, its log files
    // may bring more events of the same window later, and both must give
    // the same id (a firing starts after the last one's events, so no two
    // firings of a group share a first event and time).
    let id_seed = match window.first() {
        Some(first) => vec![key.group.clone(), first.id.clone(), first.t.to_string()],
        None => vec![key.group.clone()],
    };
    let count: u64 = window.iter().map(|e| u64::from(e.n)).sum();
    ids.truncate(MAX_EVENT_IDS);
    let first_t = window.first().map_or(0, |e| e.t);
    let last_t = window.iter().map(Entry::end).max().unwrap_or(0);
    let mut finding = last
        .cloned()
        .unwrap_or_default()
        .into_finding(corr.meta.header());
    finding.id = finding_id(&corr.meta.id, &id_seed);
    finding.event_time = format_millis(last_t);
    finding.event_ids = ids;
    finding.count = count;
    finding.group = group.clone();
    finding.note = Some(format!(
        "{count} events from {} to {}",
        format_millis(first_t),
        format_millis(last_t)
    ));
    finding
}

/// Whether a temporal correlation holds for the rules present.
pub(super) fn temporal_holds(corr: &Correlation, present: &BTreeSet<u16>) -> bool {
    match &corr.extended {
        Some(expr) => eval_present(expr, corr, present),
        // Without a condition (the parser's default, gte 1), every
        // referenced rule must appear, as the Sigma specification says.
        None if corr.condition.predicates == [(ConditionOperator::Gte, 1.0)] => {
            present.len() >= corr.rules.len()
        }
        None => corr.condition.check(present.len() as f64),
    }
}

/// How many entries of `window` an unordered sequence needs to hold.
pub(super) fn unordered_completion(corr: &Correlation, window: &[Entry]) -> Option<usize> {
    let mut present = BTreeSet::new();
    for (i, e) in window.iter().enumerate() {
        if let Some(r) = e.r {
            present.insert(r);
        }
        if temporal_holds(corr, &present) {
            return Some(i + 1);
        }
    }
    None
}

/// How many entries of `window` the ordered sequence needs to complete.
pub(super) fn ordered_completion(corr: &Correlation, window: &[Entry]) -> Option<usize> {
    let mut next = 0u16;
    for (i, e) in window.iter().enumerate() {
        if e.r == Some(next) {
            next += 1;
            if next as usize >= corr.rules.len() {
                return Some(i + 1);
            }
        }
    }
    None
}

/// A temporal correlation's boolean condition over which rules appeared.
pub(super) fn eval_present(
    expr: &ConditionExpr,
    corr: &Correlation,
    present: &BTreeSet<u16>,
) -> bool {
    let has = |name: &str| {
        corr.rule_refs
            .iter()
            .position(|r| r == name)
            .is_some_and(|p| present.contains(&(p as u16)))
    };
    match expr {
        ConditionExpr::And(parts) => parts.iter().all(|p| eval_present(p, corr, present)),
        ConditionExpr::Or(parts) => parts.iter().any(|p| eval_present(p, corr, present)),
        ConditionExpr::Not(inner) => !eval_present(inner, corr, present),
        ConditionExpr::Identifier(name) => has(name),
        ConditionExpr::Selector {
            quantifier,
            pattern,
        } => {
            let names: Vec<&String> = corr
                .rule_refs
                .iter()
                .filter(|r| match pattern {
                    SelectorPattern::Them => true,
                    SelectorPattern::Pattern(p) => crate::policy::wildcard_match(p, r),
                })
                .collect();
            let hits = names.iter().filter(|n| has(n)).count();
            match quantifier {
                Quantifier::All => hits == names.len(),
                Quantifier::Any => hits > 0,
                Quantifier::Count(n) => hits as u64 >= *n,
            }
        }
    }
}

/// What a merge of one group gives: the write (if anything changed), the
/// findings, and how many entries were dropped to stay within budget.
type GroupMerge = (Option<StateWrite>, Vec<Finding>, u64);

/// A window's firings as events for the correlations over it, with the
/// group's values.
pub(super) fn chain_events(
    group: &BTreeMap<String, String>,
    body: &WindowBody,
    fired: &[Fired],
) -> Vec<ChainEvent> {
    fired
        .iter()
        .map(|f| ChainEvent {
            t: f.t,
            id: f.id.clone(),
            group: group.clone(),
            last: body.last.clone(),
        })
        .collect()
}

/// The stored (readable) group values of a window, when none of them may
/// have been cut to [`crate::state::MAX_STATE_TEXT`]: a cut value would
/// put a firing in the wrong group of a correlation over this one.
pub(super) fn stored_group(
    corr: &Correlation,
    body: &WindowBody,
) -> Option<BTreeMap<String, String>> {
    let whole = |v: &String| v.len() + 4 <= crate::state::MAX_STATE_TEXT;
    (body.group.len() == corr.group_by.len() && body.group.iter().all(whole)).then(|| {
        corr.group_by
            .iter()
            .cloned()
            .zip(body.group.iter().cloned())
            .collect()
    })
}

pub(super) fn merge_window(
    corr: &Correlation,
    key: &StateKey,
    stored: Option<StateItem>,
    (pending, ids): (&Pending, &EventIds),
    batch: Option<&str>,
    chained: bool,
    early: bool,
) -> (Option<StateWrite>, Vec<Finding>, u64, Vec<ChainEvent>) {
    let (version, mut body) = match stored {
        Some(StateItem {
            version,
            body: Body::Window(b),
            ..
        }) => (Some(version), b),
        Some(item) => (Some(item.version), WindowBody::default()),
        None => (None, WindowBody::default()),
    };
    // This batch was merged before (a redelivery or a retry): nothing new,
    // but the correlations over this one get its firings again (they may
    // have missed them: a failure between rounds, or added since).
    if batch.is_some_and(|b| body.batches.iter().any(|x| x == b)) {
        let events = match stored_group(corr, &body) {
            Some(group) if chained => chain_events(&group, &body, &body.fired),
            _ => Vec::new(),
        };
        return (None, Vec::new(), 0, events);
    }
    let before = body.clone();
    // Presence-based windows: an event inside a run of its rule and value
    // changes nothing, so it need not be kept.
    let presence = is_presence(corr.kind);
    let runs: Vec<&Entry> = before.entries.iter().filter(|e| e.n > 1).collect();
    let known: HashSet<&str> = before.entries.iter().map(|e| e.id.as_str()).collect();
    let ahead: HashSet<&str> = before.early.iter().map(|e| e.id.as_str()).collect();
    let fired_until = body.fired_until.unwrap_or(i64::MIN);
    let mut added = false;
    // An event of a window that already fired: the firing's chain round
    // may have failed after the window was written (its batch then comes
    // again, as a retried real-time batch or the log file, with no digest
    // in common), so the firings are handed on again.
    let mut late_for_fired = false;
    let mut seen_in_batch = HashSet::new();
    for gathered in &pending.entries {
        // A run of this batch whose first event is known still brings its
        // later events (`value_count` windows only: they alone make runs in
        // a batch, and a repeat there changes nothing).
        let id = ids.get(gathered.id);
        let single = gathered.n == 1;
        let repeated = single && (known.contains(id) || (early && ahead.contains(id)));
        if gathered.end <= fired_until {
            late_for_fired = true;
            continue;
        }
        if repeated || !seen_in_batch.insert(id) {
            continue;
        }
        let e = gathered.entry(ids);
        if early && !presence && single && e.r.is_none_or(|r| corr.rules[r as usize] != CHAINED) {
            // Ahead of its log file: kept apart, one by one, unless the
            // window may count it already (a run of its rule holds no
            // ids) or holds as many early events as it may.
            let in_run = runs
                .iter()
                .any(|x| x.r == e.r && x.v == e.v && x.t <= e.t && e.t <= x.end());
            if !in_run && body.early.len() < MAX_EARLY_ENTRIES {
                body.early.push(e);
                added = true;
            }
            continue;
        }
        if single && ahead.contains(id) {
            // The log file's copy of an early event takes its place.
            body.early.retain(|x| x.id != id);
        }
        if e.t <= fired_until {
            // A run reaching past the window that fired: its last event
            // still counts.
            let mut tail = e.clone();
            tail.t = e.end();
            tail.t1 = None;
            body.entries.push(tail);
            added = true;
            continue;
        }
        if presence
            && runs
                .iter()
                .any(|x| x.r == e.r && x.v == e.v && x.t <= e.t && e.end() <= x.end())
        {
            continue;
        }
        body.entries.push(e);
        added = true;
    }
    let latest = match (&pending.last, &pending.chained_last) {
        (Some((t, _)), Some((tc, snap))) if tc > t => Some((*tc, Some(snap.clone()))),
        (Some((t, raw)), _) => Some((*t, Snapshot::from_raw(raw))),
        (None, Some((tc, snap))) => Some((*tc, Some(snap.clone()))),
        (None, None) => None,
    };
    if let Some((t, snapshot)) = latest {
        let newer = body
            .last
            .as_ref()
            .and_then(|s| trailwarden_cloudtrail::parse_event_time(&s.event_time))
            .is_none_or(|lt| lt <= t);
        if newer {
            body.last = snapshot.map(Snapshot::bounded);
        }
    }
    let group: BTreeMap<String, String> = corr
        .group_by
        .iter()
        .cloned()
        .zip(pending.group.iter().cloned())
        .collect();
    if body.group.is_empty() {
        body.group = bounded_group(&pending.group);
    }
    if !added && body == before {
        let events = if chained && late_for_fired {
            chain_events(&group, &body, &body.fired)
        } else {
            Vec::new()
        };
        return (None, Vec::new(), 0, events);
    }
    body.entries.sort_by(by_time);
    body.early.sort_by(by_time);
    let span = corr.timespan_ms;
    let mut findings = Vec::new();
    let mut fired: Vec<Fired> = Vec::new();
    // Sliding windows over the sorted entries, two pointers: each entry
    // enters and leaves the running counts once.
    // A run holds an event at each end and at least every
    // `timespan / RUN_FRACTION` between: any window that holds one of its
    // events holds an end, so presence-based windows see each run at both
    // ends and stay exact.
    // Early events count with the others (see `Session::set_early`).
    let all: Cow<[Entry]> = if body.early.is_empty() {
        Cow::Borrowed(&body.entries)
    } else {
        let mut all = body.entries.clone();
        all.extend(body.early.iter().cloned());
        all.sort_by(by_time);
        Cow::Owned(all)
    };
    let with_ends: Vec<Entry>;
    let entries: &[Entry] = if presence && all.iter().any(|e| e.t1.is_some()) {
        with_ends = with_run_ends(&all);
        &with_ends
    } else {
        &all
    };
    let n = entries.len();
    let mut fired_until = body.fired_until;
    let (mut start, mut end) = (0usize, 0usize);
    let mut events: u64 = 0;
    let mut sum: f64 = 0.0;
    let mut values: HashMap<&str, usize> = HashMap::new();
    let mut present: HashMap<u16, usize> = HashMap::new();
    while start < n {
        let t0 = entries[start].t;
        if end < start {
            end = start;
            events = 0;
            sum = 0.0;
            values.clear();
            present.clear();
        }
        while end < n && entries[end].t <= t0 + span {
            let e = &entries[end];
            events += u64::from(e.n);
            sum += e.x.unwrap_or(0.0);
            if let Some(v) = e.v.as_deref() {
                *values.entry(v).or_default() += 1;
            }
            if let Some(r) = e.r {
                *present.entry(r).or_default() += 1;
            }
            end += 1;
        }
        let window = &entries[start..end];
        let fires = match corr.kind {
            CorrelationType::EventCount => corr.condition.check(events as f64),
            CorrelationType::ValueCount => corr.condition.check(values.len() as f64),
            CorrelationType::Temporal => {
                let set: BTreeSet<u16> = present.keys().copied().collect();
                temporal_holds(corr, &set)
            }
            CorrelationType::TemporalOrdered => {
                window[0].r == Some(0) && ordered_completion(corr, window).is_some()
            }
            CorrelationType::ValueSum => corr.condition.check(sum),
            CorrelationType::ValueAvg => events > 0 && corr.condition.check(sum / events as f64),
            CorrelationType::ValuePercentile | CorrelationType::ValueMedian => {
                // A run stands for its events at their mean.
                let mut values: Vec<(f64, u64)> = window
                    .iter()
                    .filter_map(|e| e.x.map(|x| (x / f64::from(e.n.max(1)), u64::from(e.n))))
                    .collect();
                values.sort_by(|a, b| a.0.total_cmp(&b.0));
                let rank = match corr.kind {
                    CorrelationType::ValueMedian => 50.0,
                    _ => corr.condition.percentile.unwrap_or(50) as f64,
                };
                weighted_percentile(&values, rank).is_some_and(|v| corr.condition.check(v))
            }
        };
        if fires {
            // Sequences end at the event that completes them.
            let used = match corr.kind {
                CorrelationType::Temporal => unordered_completion(corr, window),
                CorrelationType::TemporalOrdered => ordered_completion(corr, window),
                _ => None,
            }
            .unwrap_or(window.len());
            let finding =
                correlation_finding(corr, key, &group, &window[..used], body.last.as_ref());
            fired.push(Fired {
                t: window[..used].iter().map(Entry::end).max().unwrap_or(t0),
                id: finding.id.clone(),
            });
            findings.push(finding);
            fired_until = Some(t0 + span);
            start = end;
            events = 0;
            sum = 0.0;
            values.clear();
            present.clear();
        } else {
            let e = &entries[start];
            events -= u64::from(e.n);
            sum -= e.x.unwrap_or(0.0);
            if let Some(v) = e.v.as_deref() {
                if let Some(c) = values.get_mut(v) {
                    *c -= 1;
                    if *c == 0 {
                        values.remove(v);
                    }
                }
            }
            if let Some(r) = e.r {
                if let Some(c) = present.get_mut(&r) {
                    *c -= 1;
                    if *c == 0 {
                        present.remove(&r);
                    }
                }
            }
            start += 1;
        }
    }
    drop((values, present));
    // Fresh firings carry the group's whole values (and the earlier ones
    // go again when this batch came late for them, see `late_for_fired`).
    let events = match (chained, late_for_fired) {
        (false, _) => Vec::new(),
        (true, false) => chain_events(&group, &body, &fired),
        (true, true) => {
            let all: Vec<Fired> = body.fired.iter().chain(&fired).cloned().collect();
            chain_events(&group, &body, &all)
        }
    };
    body.fired.extend(fired);
    if body.fired.len() > MAX_FIRED {
        let drop = body.fired.len() - MAX_FIRED;
        body.fired.drain(..drop);
    }
    body.fired_until = fired_until;
    let max_t = body
        .entries
        .iter()
        .chain(&body.early)
        .map(Entry::end)
        .max()
        .unwrap_or(0);
    let fired = body.fired_until.unwrap_or(i64::MIN);
    let keep = |e: &Entry| e.t > fired && e.end() >= max_t - span - LATENESS_MS;
    body.entries.retain(keep);
    body.early.retain(keep);
    if body.entries.len() > MAX_EXACT_ENTRIES {
        body.entries = fold_runs(std::mem::take(&mut body.entries), span);
    }
    let mut trimmed = 0u64;
    if body.entries.len() > MAX_ENTRIES {
        let drop = body.entries.len() - MAX_ENTRIES;
        body.entries.drain(..drop);
        trimmed += drop as u64;
    }
    if let Some(b) = batch {
        body.batches.push(b.to_owned());
        if body.batches.len() > MAX_BATCHES {
            let drop = body.batches.len() - MAX_BATCHES;
            body.batches.drain(..drop);
        }
    }
    let horizon = max_t.max(body.fired_until.unwrap_or(0));
    let (write, cut) = next_write(
        key,
        version,
        Body::Window(body),
        horizon + span + LATENESS_MS,
    );
    (Some(write), findings, trimmed + cut, events)
}

/// The order of a window's entries: by time, then event id.
fn by_time(a: &Entry, b: &Entry) -> std::cmp::Ordering {
    (a.t, &a.id).cmp(&(b.t, &b.id))
}

/// `entries` with each run's last event as an entry of its own (counting
/// no events: `n` 0), in time order.
pub(super) fn with_run_ends(entries: &[Entry]) -> Vec<Entry> {
    let mut out = entries.to_vec();
    for e in entries {
        if let Some(t1) = e.t1.filter(|t1| *t1 > e.t) {
            out.push(Entry {
                t: t1,
                t1: None,
                n: 0,
                x: None,
                ..e.clone()
            });
        }
    }
    out.sort_by(by_time);
    out
}

/// Fold time-ordered entries into runs: consecutive events of the same
/// referenced rule and value whose run spans at most
/// `timespan / RUN_FRACTION` (at least one second) become one entry that
/// keeps the first event's id and time, the last time and the count.
/// Deterministic: the same entries always give the same runs.
pub(super) fn fold_runs(entries: Vec<Entry>, span: i64) -> Vec<Entry> {
    let reach = (span / RUN_FRACTION).max(1_000);
    let mut out: Vec<Entry> = Vec::with_capacity(entries.len());
    let mut open: HashMap<(Option<u16>, Option<String>), usize> = HashMap::new();
    for e in entries {
        let k = (e.r, e.v.clone());
        if let Some(&i) = open.get(&k) {
            let run = &mut out[i];
            if e.end() - run.t <= reach {
                run.n = run.n.saturating_add(e.n);
                run.x = match (run.x, e.x) {
                    (Some(a), Some(b)) => Some(a + b),
                    (a, b) => a.or(b),
                };
                run.t1 = Some(run.end().max(e.end()));
                continue;
            }
        }
        out.push(e);
        open.insert(k, out.len() - 1);
    }
    out.sort_by(by_time);
    out
}

pub(super) fn merge_baseline(
    rule: &Rule,
    key: &StateKey,
    stored: Option<StateItem>,
    pending: &Pending,
    first_event: i64,
) -> GroupMerge {
    let spec = rule.baseline.as_ref().expect("baseline rule");
    let (version, mut body) = match stored {
        Some(StateItem {
            version,
            body: Body::Baseline(b),
            ..
        }) => (Some(version), b),
        Some(item) => (Some(item.version), BaselineBody::default()),
        None => (None, BaselineBody::default()),
    };
    let before = body.clone();
    let group: BTreeMap<String, String> = spec
        .group_by
        .iter()
        .cloned()
        .zip(pending.group.iter().cloned())
        .collect();
    if body.group.is_empty() {
        body.group = bounded_group(&pending.group);
    }
    let mut tuples: Vec<(&String, &TupleObs)> = pending.tuples.iter().collect();
    tuples.sort_by(|a, b| (a.1.first.0, a.0).cmp(&(b.1.first.0, b.0)));
    let mut findings = Vec::new();
    let finding = |snap: Snapshot, t: i64, event_id: String, note: String| {
        let mut finding = snap.into_finding(rule.meta.header());
        finding.event_ids = vec![event_id];
        finding.id = finding_id(&rule.meta.id, &finding.event_ids);
        finding.event_time = format_millis(t);
        finding.group = group.clone();
        finding.note = Some(note);
        finding
    };
    for (tuple, obs) in tuples {
        let digest = value_digest(tuple);
        let known = body.seen.get(&digest).copied();
        let raw = &obs.first.1;
        let mut runs: Vec<&Sightings> = obs.runs.iter().collect();
        runs.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
        let mut previous = known;
        let mut base: Option<Snapshot> = None;
        for run in runs {
            let t = run.start;
            let note =
                match spec.kind {
                    BaselineKind::FirstSeen => {
                        let new = previous.is_none_or(|p| p < t && t - p > spec.history_ms);
                        (new && t - first_event >= spec.learning_ms).then(|| {
                            if spec.fields.is_empty() {
                                "first activity of this group".to_owned()
                            } else {
                                let values: Vec<String> =
                                    serde_json::from_str(tuple).unwrap_or_default();
                                let pairs: Vec<String> = spec
                                    .fields
                                    .iter()
                                    .zip(values)
                                    .map(|(f, v)| format!("{f}={v}"))
                                    .collect();
                                format!("first seen: {}", pairs.join(", "))
                            }
                        })
                    }
                    BaselineKind::Dormant => previous
                        .filter(|p| *p < t && t - p >= spec.idle_ms)
                        .map(|p| {
                            format!(
                                "active again after {} days idle (last activity {})",
                                (t - p) / 86_400_000,
                                format_millis(p)
                            )
                        }),
                };
            if let Some(note) = note {
                let snap = base
                    .get_or_insert_with(|| Snapshot::from_raw(raw).unwrap_or_default())
                    .clone();
                findings.push(finding(snap, t, run.id.clone(), note));
            }
            previous = Some(previous.map_or(run.end, |p| p.max(run.end)));
        }
        let entry = body.seen.entry(digest).or_insert(obs.last_t);
        *entry = (*entry).max(obs.last_t);
    }
    if let Some((_, raw)) = &pending.last {
        if let Some(snap) = Snapshot::from_raw(raw) {
            body.last = Some(snap.bounded());
        }
    }
    let max_t = body.seen.values().copied().max().unwrap_or(0);
    body.seen.retain(|_, t| *t >= max_t - spec.history_ms);
    let mut trimmed = 0u64;
    if body.seen.len() > MAX_TUPLES {
        let mut by_age: Vec<(i64, String)> =
            body.seen.iter().map(|(k, t)| (*t, k.clone())).collect();
        by_age.sort();
        for (_, k) in by_age.iter().take(body.seen.len() - MAX_TUPLES) {
            body.seen.remove(k);
            trimmed += 1;
        }
    }
    if body == before {
        return (None, findings, 0);
    }
    let (write, cut) = next_write(key, version, Body::Baseline(body), max_t + spec.history_ms);
    (Some(write), findings, trimmed + cut)
}

/// The conditional write of `body` as the next version of `key`'s item
/// (`version` is the stored one, `None` for a new item), cut to
/// [`ITEM_BUDGET_BYTES`] and expiring at `expires_ms` (epoch
/// milliseconds); with how many entries the cut dropped.
fn next_write(
    key: &StateKey,
    version: Option<u64>,
    mut body: Body,
    expires_ms: i64,
) -> (StateWrite, u64) {
    let cut = body.fit(ITEM_BUDGET_BYTES) as u64;
    let item = StateItem {
        key: key.clone(),
        version: version.map_or(1, |v| v + 1),
        expires_at: expires_ms / 1000,
        body,
    };
    (
        StateWrite {
            item,
            expected: version,
        },
        cut,
    )
}
