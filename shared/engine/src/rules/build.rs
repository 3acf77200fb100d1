//! Building the rule set: correlations resolved against the rules and
//! one another (references by id or name, chained correlations, cycles,
//! group-by fields a chained correlation's findings carry), filters
//! applied, and the rules a correlation refers to made building blocks.

use super::*;

impl RuleSetBuilder {
    /// Resolve the references between correlations (chained correlations),
    /// then refuse, with a problem each, those whose references cannot be
    /// run: a correlation that is not loaded, a cycle, or a group-by or
    /// counted field the referenced correlation's findings do not carry
    /// (a correlation's events carry only its group-by values). Refusals
    /// cascade to the correlations over a refused one; the rest keep their
    /// order.
    fn resolve_chains(&mut self, correlations: &mut Vec<Correlation>, chains: Vec<Chain>) {
        if chains.iter().all(|(.., refs)| refs.is_empty()) {
            return;
        }
        let find = |correlations: &[Correlation], r: &str| {
            chains.iter().find_map(|(i, _, name, ..)| {
                let c = &correlations[*i];
                (c.meta.id == r || name.as_deref() == Some(r)).then_some(*i)
            })
        };
        let mut refused: Vec<Option<String>> = vec![None; correlations.len()];
        // Not run (a note, not a problem): over a correlation not run.
        let mut not_run: Vec<Option<String>> = vec![None; correlations.len()];
        let mut links: Vec<Vec<(u16, usize)>> = vec![Vec::new(); correlations.len()];
        for (i, _, _, _, refs) in &chains {
            for (p, r) in refs {
                match find(correlations, r) {
                    Some(j) => links[*i].push((*p, j)),
                    None if self.not_run.iter().any(|n| n == r) => {
                        not_run[*i] = Some(format!(
                            "not run: it refers to a correlation that is not run ({r})"
                        ))
                    }
                    None => {
                        refused[*i] = Some(format!(
                            "refers to the correlation {r}, which did not load (see its problem)"
                        ))
                    }
                }
            }
        }
        // Cycles: a correlation that reaches itself.
        for start in 0..correlations.len() {
            let mut stack: Vec<usize> = links[start].iter().map(|(_, j)| *j).collect();
            let mut seen = vec![false; correlations.len()];
            while let Some(j) = stack.pop() {
                if j == start {
                    refused[start] =
                        Some("its chain of correlation references loops back to itself".into());
                    break;
                }
                if !std::mem::replace(&mut seen[j], true) {
                    stack.extend(links[j].iter().map(|(_, k)| *k));
                }
            }
        }
        // Depth: each level of a chain is one more round of a flush.
        fn depth(
            i: usize,
            links: &[Vec<(u16, usize)>],
            memo: &mut [usize],
            on: &mut [bool],
        ) -> usize {
            if memo[i] > 0 {
                return memo[i];
            }
            if std::mem::replace(&mut on[i], true) {
                return 0; // a cycle, refused above
            }
            let d = 1 + links[i]
                .iter()
                .map(|(_, j)| depth(*j, links, memo, on))
                .max()
                .unwrap_or(0);
            on[i] = false;
            memo[i] = d;
            d
        }
        let mut memo = vec![0; correlations.len()];
        let mut on = vec![false; correlations.len()];
        for (i, refused) in refused.iter_mut().enumerate() {
            if refused.is_none() && depth(i, &links, &mut memo, &mut on) > MAX_CHAIN_DEPTH {
                *refused = Some(format!(
                    "its chain of correlation references is more than {MAX_CHAIN_DEPTH} correlations deep: split it"
                ));
            }
        }
        // What a referenced correlation's events carry.
        for (i, links) in links.iter().enumerate() {
            let corr = &correlations[i];
            for &(p, j) in links {
                let inner = &correlations[j];
                let counted = match corr.kind {
                    CorrelationType::EventCount
                    | CorrelationType::Temporal
                    | CorrelationType::TemporalOrdered => None,
                    _ => corr.condition.field.as_deref(),
                };
                let needed = corr.group_fields[p as usize]
                    .iter()
                    .chain(counted.into_iter().flatten());
                for field in needed {
                    if !inner.group_by.contains(field) {
                        refused[i] = Some(format!(
                            "reads {field:?} from the findings of correlation {:?}, which carry only its group-by fields ({}): group by fields of both, or map them with aliases",
                            inner.meta.title,
                            inner.group_by.join(", ")
                        ));
                    }
                }
            }
        }
        // A refusal (or not running) reaches every correlation over the
        // refused one.
        loop {
            let mut changed = false;
            for i in 0..correlations.len() {
                if refused[i].is_some() || not_run[i].is_some() {
                    continue;
                }
                if let Some(&(_, j)) = links[i].iter().find(|(_, j)| refused[*j].is_some()) {
                    refused[i] = Some(format!(
                        "refers to the correlation {:?}, which is refused",
                        correlations[j].meta.title
                    ));
                    changed = true;
                } else if let Some(&(_, j)) = links[i].iter().find(|(_, j)| not_run[*j].is_some()) {
                    not_run[i] = Some(format!(
                        "not run: it refers to a correlation that is not run ({:?})",
                        correlations[j].meta.title
                    ));
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        // Referenced correlations report only when a reference says
        // `generate: true`.
        let mut generate = vec![None::<bool>; correlations.len()];
        for (i, _, _, gen, _) in &chains {
            for &(_, j) in &links[*i] {
                *generate[j].get_or_insert(false) |= *gen;
            }
        }
        let mut index = vec![usize::MAX; correlations.len()];
        let mut kept = Vec::new();
        for (i, mut corr) in std::mem::take(correlations).into_iter().enumerate() {
            let source = || {
                chains
                    .iter()
                    .find(|(k, ..)| *k == i)
                    .map_or_else(String::new, |(_, s, ..)| s.clone())
            };
            if let Some(reason) = &refused[i] {
                self.problems.push(RuleProblem {
                    source: source(),
                    rule: Some(corr.meta.title.clone()),
                    reason: reason.clone(),
                });
                continue;
            }
            if let Some(reason) = &not_run[i] {
                self.notes.push(RuleNote {
                    source: source(),
                    rule: corr.meta.title.clone(),
                    reason: reason.clone(),
                });
                // Known, though not run (a policy may name it).
                self.not_run.push(corr.meta.id.clone());
                continue;
            }
            corr.generate = generate[i].unwrap_or(true);
            index[i] = kept.len();
            kept.push(corr);
        }
        for (i, links) in links.into_iter().enumerate() {
            if index[i] != usize::MAX {
                kept[index[i]].chained = links.into_iter().map(|(p, j)| (p, index[j])).collect();
            }
        }
        *correlations = kept;
    }

    /// Finish: resolve correlation references across everything loaded.
    pub fn build(mut self) -> RuleSet {
        for (source, filter) in std::mem::take(&mut self.filters) {
            self.apply_filter(&source, &filter);
        }
        let mut correlations = Vec::new();
        let mut by_ref: HashMap<&str, usize> = HashMap::new();
        for (i, r) in self.rules.iter().enumerate() {
            by_ref.insert(r.meta.id.as_str(), i);
            if let Some(name) = &r.name {
                by_ref.insert(name.as_str(), i);
            }
        }
        let mut referenced: HashMap<usize, bool> = HashMap::new();
        let mut chains: Vec<Chain> = Vec::new();
        for (k, (source, c)) in self.correlations.iter().enumerate() {
            let problem = |reason: String| RuleProblem {
                source: source.clone(),
                rule: Some(c.title.clone()),
                reason,
            };
            // A reference names one rule: a correlation's name or id that a
            // detection rule or an earlier correlation also has would make
            // references to it ambiguous.
            let taken = c.name.iter().chain(c.id.iter()).find(|n| {
                by_ref.contains_key(n.as_str())
                    || self.correlations[..k].iter().any(|(_, o)| {
                        o.name.as_deref() == Some(n.as_str()) || o.id.as_deref() == Some(n.as_str())
                    })
            });
            if let Some(n) = taken {
                self.problems.push(problem(format!(
                    "{n:?} is also the name or id of another loaded rule, so references to it are ambiguous: rename one"
                )));
                continue;
            }
            let mut rules = Vec::new();
            let mut missing = Vec::new();
            // References to correlations, resolved once all are built.
            let mut chained_refs: Vec<(u16, String)> = Vec::new();
            for (p, r) in c.rules.iter().enumerate() {
                match by_ref.get(r.as_str()) {
                    Some(i) => rules.push(*i),
                    None if self.correlations.iter().any(|(_, other)| {
                        other.id.as_deref() == Some(r.as_str())
                            || other.name.as_deref() == Some(r.as_str())
                    }) =>
                    {
                        rules.push(CHAINED);
                        chained_refs.push((p as u16, r.clone()));
                    }
                    None => missing.push(r.as_str()),
                }
            }
            // A rule a correlation refers to is a building block whether or
            // not the correlation loads: it never starts firing on its own
            // because its correlation was refused (Sigma: `generate`).
            for i in rules.iter().filter(|i| **i != CHAINED) {
                let generate = referenced.entry(*i).or_insert(false);
                *generate |= c.generate;
            }
            if !missing.is_empty() {
                if missing.iter().all(|m| self.not_run.iter().any(|n| n == m)) {
                    // Correlations over this one are not run either.
                    self.not_run
                        .extend(c.id.iter().chain(c.name.iter()).cloned());
                    self.notes.push(RuleNote {
                        source: source.clone(),
                        rule: c.title.clone(),
                        reason: format!(
                            "not run: it refers to rules that are not run ({})",
                            missing.join(", ")
                        ),
                    });
                } else {
                    self.problems.push(problem(format!(
                        "refers to unknown rule(s) {}: give the id or name of a loaded detection or correlation rule",
                        missing.join(", ")
                    )));
                }
                continue;
            }
            if !matches!(
                c.correlation_type,
                CorrelationType::EventCount
                    | CorrelationType::ValueCount
                    | CorrelationType::Temporal
                    | CorrelationType::TemporalOrdered
            ) && !is_numeric(c.correlation_type)
            {
                self.problems.push(problem(format!(
                    "correlation type {} is not supported by this version (use event_count, value_count, temporal or temporal_ordered)",
                    correlation_type_name(c.correlation_type)
                )));
                continue;
            }
            let compiled = match rsigma_eval::correlation::compile_correlation(c) {
                Ok(compiled) => compiled,
                Err(e) => {
                    self.problems
                        .push(problem(format!("does not compile: {e}")));
                    continue;
                }
            };
            if compiled.condition.check(0.0) && !is_numeric(c.correlation_type) {
                self.problems.push(problem(
                    "a condition that holds for zero events (lt, lte, neq) cannot fire on events; use gt or gte".into(),
                ));
                continue;
            }
            if compiled.timespan_secs == 0 {
                self.problems
                    .push(problem("timespan must be greater than zero".into()));
                continue;
            }
            let id =
                c.id.clone()
                    .unwrap_or_else(|| format!("title:{}", slug(&c.title)));
            if self.rules.iter().any(|r| r.meta.id == id)
                || correlations.iter().any(|x: &Correlation| x.meta.id == id)
            {
                self.problems.push(problem(format!(
                    "duplicate rule id {id}; the first one is kept"
                )));
                continue;
            }
            let group_fields: Vec<Vec<String>> = c
                .rules
                .iter()
                .zip(&rules)
                .map(|(written, &i)| {
                    let mut names = vec![written.as_str()];
                    if i == CHAINED {
                        // The referenced correlation's id and name.
                        if let Some((_, other)) = self.correlations.iter().find(|(_, o)| {
                            o.id.as_deref() == Some(written.as_str())
                                || o.name.as_deref() == Some(written.as_str())
                        }) {
                            names.extend(other.id.as_deref());
                            names.extend(other.name.as_deref());
                        }
                    } else {
                        let r = &self.rules[i];
                        names.push(r.meta.id.as_str());
                        names.extend(r.name.as_deref());
                    }
                    compiled
                        .group_by
                        .iter()
                        .map(|g| g.resolve(&names).to_owned())
                        .collect()
                })
                .collect();
            let meta = RuleMeta::new(
                SigmaMeta {
                    id,
                    title: &c.title,
                    level: c.level,
                    tags: &c.tags,
                    description: c.description.as_deref(),
                    response: c.custom_attributes.get("response").and_then(|v| v.as_str()),
                    falsepositives: &c.falsepositives,
                },
                &self.policy,
                source,
            );
            correlations.push(Correlation {
                meta,
                kind: c.correlation_type,
                rules,
                rule_refs: c.rules.clone(),
                group_by: compiled
                    .group_by
                    .iter()
                    .map(|g| g.name().to_owned())
                    .collect(),
                group_fields,
                timespan_ms: compiled.timespan_secs as i64 * 1000,
                condition: compiled.condition,
                extended: compiled.extended_expr,
                chained: Vec::new(),
                generate: true,
            });
            chains.push((
                correlations.len() - 1,
                source.clone(),
                c.name.clone(),
                c.generate,
                chained_refs,
            ));
        }
        self.resolve_chains(&mut correlations, chains);
        for (i, generate) in referenced {
            if !generate {
                self.rules[i].generate = false;
            }
        }
        // A policy entry for a rule that is not loaded (a typo, a removed
        // rule) would silently do nothing: refuse it, naming its line.
        for r in self.policy.rule_references() {
            // Levels and suppressions apply by rule id (a finding's rule_id);
            // a rule set aside for a missing fact is known, not a typo.
            // The sweep's findings take their level from the policy too.
            let sweep_level = r.section == "levels" && r.rule == SWEEP_RULE_ID;
            if !self.rules.iter().any(|x| x.meta.id == r.rule)
                && !correlations.iter().any(|c| c.meta.id == r.rule)
                && !self.not_run.iter().any(|n| n == r.rule)
                && !sweep_level
            {
                self.problems.push(RuleProblem {
                    source: r.place.clone(),
                    rule: None,
                    reason: format!(
                        "{} names rule {:?}, which is not loaded: give the id of a loaded rule (trailwarden rules list), or remove the entry",
                        r.section, r.rule
                    ),
                });
            }
        }
        let trusted = self.policy.fact("trusted_accounts");
        let sweep_level = self.policy.level_for(SWEEP_RULE_ID);
        RuleSet {
            sweep_level,
            rules: self.rules,
            correlations,
            problems: self.problems,
            notes: self.notes,
            trusted_accounts: Some(trusted.to_vec()),
        }
    }
}
