//! The sweeper function: on a schedule, the AI principals idle for
//! `TRAILWARDEN_IDLE_DAYS` (from the dormant baselines' state), stored as
//! findings (so they alert like any other, once each). After the sweep,
//! its entry point sends the daily digest
//! ([`trailwarden_aws::audit::DigestSender`]) when `TRAILWARDEN_DIGEST_HOURS`
//! is set.

use trailwarden_aws::{emit_metrics, Counts, Service};
use trailwarden_engine::sweep::{dormant_rules, stale_in};

/// Run one sweep as of `as_of_ms`; returns the number of stale principals.
pub async fn handle(service: &Service, as_of_ms: i64) -> Result<usize, String> {
    let started = std::time::Instant::now();
    let idle_ms = i64::from(service.config.idle_days) * 86_400_000;
    let mut stale = Vec::new();
    for rule in dormant_rules(&service.engine) {
        let items = service
            .store
            .scan_rule(&rule.meta.id)
            .await
            .map_err(|e| e.to_string())?;
        stale.extend(stale_in(
            rule,
            items,
            as_of_ms,
            idle_ms,
            service.engine.sweep_level(),
        ));
    }
    for f in &stale {
        tracing::info!(principal = ?f.principal, note = ?f.note, "stale AI principal");
    }
    // One source per day: a second sweep on the same day counts nothing.
    let day = chrono::DateTime::from_timestamp_millis(as_of_ms)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    let found = stale.len();
    let mut counts = Counts::default();
    service
        .store_findings(stale, &format!("sweep:{day}"), &mut counts)
        .await
        .map_err(|e| e.to_string())?;
    emit_metrics(
        "sweeper",
        started,
        &[
            ("StalePrincipals", found as u64),
            ("NewFindings", counts.findings_new),
            ("FindingsRefused", counts.findings_refused),
        ],
    );
    Ok(found)
}
