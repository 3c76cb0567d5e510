//! Figures of one run, the `RESULT` line and the target checks.

use crate::ProviderChoice;

/// Everything one provider's run measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Figures {
    /// Services created.
    pub services: usize,
    /// Nodes at the start.
    pub nodes: usize,
    /// Median time-to-IP.
    pub p50_ms: f64,
    /// 99th percentile time-to-IP.
    pub p99_ms: f64,
    /// First creation to last address.
    pub all_ready_s: f64,
    /// Provider calls until the controller went quiet, per Service.
    pub calls_per_service: f64,
    /// Most provider calls one load balancer got for the node add.
    pub node_add_calls: u64,
    /// Writes caused by a forced relist that changed nothing.
    pub noop_resync_writes: u64,
    /// The controller process's peak resident set.
    pub peak_rss_mib: f64,
}

/// Nearest-rank percentile of sorted `values` (`q` in 0..=100).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `RESULT controller services=.. ... peak_rss_mib=.. provider=..`.
pub fn result_line(f: &Figures, provider: ProviderChoice) -> String {
    format!(
        "RESULT controller services={} nodes={} p50_ms={:.1} p99_ms={:.1} all_ready_s={:.2} \
         calls_per_service={:.2} node_add_calls={} noop_resync_writes={} peak_rss_mib={:.1} \
         provider={}",
        f.services,
        f.nodes,
        f.p50_ms,
        f.p99_ms,
        f.all_ready_s,
        f.calls_per_service,
        f.node_add_calls,
        f.noop_resync_writes,
        f.peak_rss_mib,
        provider.as_str(),
    )
}

fn verdict(met: bool) -> &'static str {
    if met { "MET" } else { "NOT MET" }
}

/// Lines comparing `f` with the acceptance targets (stated for the local
/// provider at 1000 Services x 100 nodes).
pub fn target_lines(f: &Figures, provider: ProviderChoice) -> Vec<String> {
    let scale = if f.services == 1000 && f.nodes == 100 {
        ""
    } else {
        " (targets are stated for 1000 Services x 100 nodes)"
    };
    let which = match provider {
        ProviderChoice::Local => "",
        ProviderChoice::Counting => " (targets are stated for the local provider)",
    };
    vec![
        format!(
            "  target p99 time-to-IP <= 200 ms: {:.1} ms, {}{scale}{which}",
            f.p99_ms,
            verdict(f.p99_ms <= 200.0)
        ),
        format!(
            "  target node add <= 1 provider call per affected load balancer: {}, {}{which}",
            f.node_add_calls,
            verdict(f.node_add_calls <= 1)
        ),
        format!(
            "  target no-op resync = 0 writes: {}, {}{which}",
            f.noop_resync_writes,
            verdict(f.noop_resync_writes == 0)
        ),
        format!(
            "  target peak RSS <= 64 MiB: {:.1} MiB, {}{scale}{which}",
            f.peak_rss_mib,
            verdict(f.peak_rss_mib <= 64.0)
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn result_line_keeps_the_issue_order() {
        let f = Figures {
            services: 1000,
            nodes: 100,
            p50_ms: 12.34,
            p99_ms: 56.78,
            all_ready_s: 10.5,
            calls_per_service: 1.0,
            node_add_calls: 1,
            noop_resync_writes: 0,
            peak_rss_mib: 40.31,
        };
        assert_eq!(
            result_line(&f, ProviderChoice::Local),
            "RESULT controller services=1000 nodes=100 p50_ms=12.3 p99_ms=56.8 all_ready_s=10.50 \
             calls_per_service=1.00 node_add_calls=1 noop_resync_writes=0 peak_rss_mib=40.3 \
             provider=local"
        );
        assert!(
            target_lines(&f, ProviderChoice::Local)
                .iter()
                .all(|l| l.contains(", MET"))
        );
    }
}
