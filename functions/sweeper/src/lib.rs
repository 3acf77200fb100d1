//! The sweeper function: on a schedule, the AI principals idle for
//! `TRAILWARDEN_IDLE_DAYS` (from the dormant baselines' state), stored as
//! findings (so they alert like any other, once each).

use trailwarden_aws::{emf_line, Service};
use trailwarden_engine::sweep::{dormant_rules, stale_in};

/// Run one sweep as of `as_of_ms`; returns the number of stale principals.
pub async fn handle(service: &Service, as_of_ms: i64) -> Result<usize, String> {
    let idle_ms = i64::from(service.config.idle_days) * 86_400_000;
    let mut stale = Vec::new();
    for rule in dormant_rules(&service.engine) {
        let items = service
            .store
            .scan_rule(&rule.id)
            .await
            .map_err(|e| e.to_string())?;
        stale.extend(stale_in(rule, items, as_of_ms, idle_ms));
    }
    let mut new = 0;
    for f in &stale {
        if service
            .store
            .put_finding(f)
            .await
            .map_err(|e| e.to_string())?
        {
            new += 1;
        }
        tracing::info!(principal = ?f.principal, note = ?f.note, "stale AI principal");
    }
    println!(
        "{}",
        emf_line(
            "sweeper",
            &[
                ("StalePrincipals", stale.len() as f64, "Count"),
                ("NewFindings", f64::from(new), "Count")
            ]
        )
    );
    Ok(stale.len())
}
