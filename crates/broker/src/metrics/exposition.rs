//! Prometheus text exposition format 0.0.4: `# HELP`/`# TYPE` lines, samples with
//! escaped label values, histograms as cumulative `_bucket{le=...}`, `_sum`, `_count`.
//! Pure string building, so the format is unit-tested without a server.

use std::fmt::Write;

use super::HistogramSnapshot;

/// The Content-Type of this format.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Metric types this broker exposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// Whether `name` follows Sluice's convention `sluice_<subsystem>_<quantity>[_<unit>]`
/// and Prometheus' own rules: `[a-z0-9_]`, counters end in `_total`, and a histogram's
/// name does not end in a suffix Prometheus adds itself.
pub(crate) fn is_conventional_name(name: &str, kind: Kind) -> bool {
    let charset = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    // subsystem and quantity at least, besides the prefix and a counter's `_total`.
    let core = name.strip_prefix("sluice_").unwrap_or_default();
    let core = core.strip_suffix("_total").unwrap_or(core);
    let parts = core.split('_').filter(|p| !p.is_empty()).count();
    let reserved = ["_bucket", "_sum", "_count"]
        .iter()
        .any(|s| name.ends_with(s));
    let kind_ok = match kind {
        Kind::Counter => name.ends_with("_total"),
        Kind::Gauge => !name.ends_with("_total"),
        Kind::Histogram => !name.ends_with("_total") && !reserved,
    };
    name.starts_with("sluice_") && charset && parts >= 2 && !name.contains("__") && kind_ok
}

/// Escapes a label value: backslash, double quote and line feed (the format's rules).
pub(crate) fn escape_label_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Escapes HELP text: backslash and line feed.
fn escape_help(help: &str, out: &mut String) {
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Formats a sample value the way Prometheus parses it (`+Inf`, `NaN`).
fn push_value(value: f64, out: &mut String) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value == f64::INFINITY {
        out.push_str("+Inf");
    } else if value == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let _ = write!(out, "{value}");
    }
}

/// Builds one exposition document, family by family.
#[derive(Debug, Default)]
pub(crate) struct Exposition {
    out: String,
}

impl Exposition {
    /// Starts a metric family. Every family must be started once, before its samples.
    pub(crate) fn family(&mut self, name: &str, kind: Kind, help: &str) {
        debug_assert!(is_conventional_name(name, kind), "metric name {name}");
        let _ = write!(self.out, "# HELP {name} ");
        escape_help(help, &mut self.out);
        let _ = writeln!(self.out, "\n# TYPE {name} {}", kind.as_str());
    }

    /// One sample line: `name{labels} value`.
    pub(crate) fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        self.push_labels(labels, None);
        self.out.push(' ');
        push_value(value, &mut self.out);
        self.out.push('\n');
    }

    /// A histogram's samples: cumulative buckets, sum and count.
    pub(crate) fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        snapshot: &HistogramSnapshot,
    ) {
        for (le, count) in &snapshot.buckets {
            let mut bound = String::new();
            push_value(*le, &mut bound);
            let _ = write!(self.out, "{name}_bucket");
            self.push_labels(labels, Some(&bound));
            let _ = writeln!(self.out, " {count}");
        }
        let _ = write!(self.out, "{name}_sum");
        self.push_labels(labels, None);
        self.out.push(' ');
        push_value(snapshot.sum, &mut self.out);
        let _ = write!(self.out, "\n{name}_count");
        self.push_labels(labels, None);
        let _ = writeln!(self.out, " {}", snapshot.count);
    }

    fn push_labels(&mut self, labels: &[(&str, &str)], le: Option<&str>) {
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.out.push('{');
        let mut first = true;
        for (name, value) in labels.iter().copied().chain(le.map(|le| ("le", le))) {
            if !first {
                self.out.push(',');
            }
            first = false;
            self.out.push_str(name);
            self.out.push_str("=\"");
            escape_label_value(value, &mut self.out);
            self.out.push('"');
        }
        self.out.push('}');
    }

    /// The finished document.
    pub(crate) fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Histogram;

    #[test]
    fn label_values_are_escaped() {
        let mut e = Exposition::default();
        e.family("sluice_kafka_produce_bytes_total", Kind::Counter, "a\\b\nc");
        e.sample(
            "sluice_kafka_produce_bytes_total",
            &[("topic", "we\"ird\\to\npic")],
            3.0,
        );
        assert_eq!(
            e.finish(),
            "# HELP sluice_kafka_produce_bytes_total a\\\\b\\nc\n\
             # TYPE sluice_kafka_produce_bytes_total counter\n\
             sluice_kafka_produce_bytes_total{topic=\"we\\\"ird\\\\to\\npic\"} 3\n"
        );
    }

    #[test]
    fn histograms_render_cumulative_buckets_sum_and_count() {
        let h = Histogram::new(&[1.0, 2.0], 1.0);
        h.observe(1);
        h.observe(2);
        h.observe(2);
        h.observe(9);
        let mut e = Exposition::default();
        e.family("sluice_test_size_bytes", Kind::Histogram, "sizes");
        e.histogram(
            "sluice_test_size_bytes",
            &[("api", "Produce")],
            &h.snapshot([]),
        );
        let text = e.finish();
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            samples,
            [
                "sluice_test_size_bytes_bucket{api=\"Produce\",le=\"1\"} 1",
                "sluice_test_size_bytes_bucket{api=\"Produce\",le=\"2\"} 3",
                "sluice_test_size_bytes_bucket{api=\"Produce\",le=\"+Inf\"} 4",
                "sluice_test_size_bytes_sum{api=\"Produce\"} 14",
                "sluice_test_size_bytes_count{api=\"Produce\"} 4",
            ]
        );
    }

    #[test]
    fn special_values_use_prometheus_spelling() {
        let mut e = Exposition::default();
        e.sample("sluice_a_b", &[], f64::NAN);
        e.sample("sluice_a_b", &[], f64::INFINITY);
        e.sample("sluice_a_b", &[], 0.25);
        assert_eq!(
            e.finish(),
            "sluice_a_b NaN\nsluice_a_b +Inf\nsluice_a_b 0.25\n"
        );
    }

    #[test]
    fn naming_convention_is_checked() {
        assert!(is_conventional_name(
            "sluice_kafka_requests_total",
            Kind::Counter
        ));
        assert!(!is_conventional_name(
            "sluice_kafka_requests",
            Kind::Counter
        ));
        assert!(!is_conventional_name("kafka_requests_total", Kind::Counter));
        assert!(!is_conventional_name("sluice_Kafka_x_total", Kind::Counter));
        assert!(!is_conventional_name("sluice_x_total", Kind::Counter));
        assert!(!is_conventional_name(
            "sluice_kafka_bytes_total",
            Kind::Gauge
        ));
        assert!(!is_conventional_name(
            "sluice_kafka_latency_count",
            Kind::Histogram
        ));
        assert!(is_conventional_name(
            "sluice_storage_fsync_duration_seconds",
            Kind::Histogram
        ));
    }
}
