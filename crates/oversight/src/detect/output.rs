//! `unusual_output`: a result whose size or latency falls outside the band
//! learned for its tool (exponentially weighted mean ± k·σ, used once M
//! samples were seen), or that contains secrets or personal data the tool
//! does not declare (`output_may_contain`).

use std::collections::HashMap;

use serde_json::{Value, json};
use warden_evidence::RecordKind;
use warden_model::{ActionStatus, Pack};

use super::{Event, Trigger, trigger};
use warden_evidence::scan::scan_value;

/// An exponentially weighted mean and variance.
#[derive(Debug, Default, Clone, Copy)]
struct Band {
    n: u32,
    mean: f64,
    var: f64,
}

impl Band {
    /// Updates with `x` (weight `alpha` once warmed up; a plain running
    /// mean before).
    fn update(&mut self, x: f64, alpha: f64) {
        self.n = self.n.saturating_add(1);
        let a = alpha.max(1.0 / f64::from(self.n));
        let diff = x - self.mean;
        let incr = a * diff;
        self.mean += incr;
        self.var = (1.0 - a) * (self.var + diff * incr);
    }

    /// Whether `x` is outside mean ± sigma·σ (σ at least 10% of the mean
    /// and at least `floor`, so a constant series does not flag noise).
    fn outside(&self, x: f64, sigma: f64, floor: f64) -> bool {
        let sd = self.var.sqrt().max(self.mean.abs() * 0.1).max(floor);
        (x - self.mean).abs() > sigma * sd
    }
}

#[derive(Debug, Default)]
struct ToolBands {
    size: Band,
    latency: Band,
}

#[derive(Debug)]
pub(crate) struct Output {
    sigma: f64,
    min_samples: u32,
    scan: bool,
    alpha: f64,
    tools: HashMap<String, ToolBands>,
}

impl Output {
    pub(crate) fn new(sigma: f64, min_samples: u32, scan: bool) -> Self {
        Self {
            sigma,
            min_samples,
            scan,
            // Weight of a new sample: about the last 2·M samples count.
            alpha: 1.0 / f64::from(min_samples.max(1)).max(1.0) / 2.0,
            tools: HashMap::new(),
        }
    }

    pub(crate) fn observe(&mut self, e: &Event<'_>, pack: &Pack) -> Vec<Trigger> {
        let r = e.record;
        if r.kind != RecordKind::ActionExecuted || r.status != Some(ActionStatus::Succeeded) {
            return Vec::new();
        }
        let Some(tool) = e.tool() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if self.scan {
            let declared = pack
                .tools
                .get(tool)
                .map(|t| t.output_may_contain.as_slice())
                .unwrap_or_default();
            // What redaction found before the result was recorded; a result
            // recorded without scanning (`[redaction] scan_results = false`)
            // is scanned here.
            let found: Vec<Value> = match (e.detail("findings"), e.detail("result")) {
                (Some(Value::Array(f)), _) => f
                    .iter()
                    .filter(|f| f["kind"] != "declared")
                    .map(|f| json!({ "kind": f["kind"], "at": f["at"], "sample": f["sample"] }))
                    .collect(),
                (_, Some(result)) => scan_value(result, &pack.redaction.patterns)
                    .into_iter()
                    .map(|f| json!({ "kind": f.kind, "at": f.at, "sample": f.sample }))
                    .collect(),
                _ => Vec::new(),
            };
            let found: Vec<Value> = found
                .into_iter()
                .filter(|f| !declared.iter().any(|d| f["kind"] == d.as_str()))
                .collect();
            if !found.is_empty() {
                let mut kinds: Vec<&str> =
                    found.iter().filter_map(|f| f["kind"].as_str()).collect();
                kinds.dedup();
                out.push(trigger(
                    format!("tool:{tool}:content"),
                    format!(
                        "`{tool}` returned data it does not declare: {}",
                        kinds.join(", ")
                    ),
                    e.subject(),
                    (e.t, r.seq),
                    json!({
                        "check": "content",
                        "found": found,
                        "action": r.action,
                    }),
                ));
            }
        }
        let size = e
            .detail("result_bytes")
            .and_then(Value::as_f64)
            .or_else(|| e.detail("result").map(|v| v.to_string().len() as f64));
        let latency = e.detail("elapsed_ms").and_then(Value::as_f64);
        let (sigma, min, alpha) = (self.sigma, self.min_samples, self.alpha);
        let bands = self.tools.entry(tool.to_owned()).or_default();
        let mut checks: Vec<(&str, f64, Band)> = Vec::new();
        if let Some(x) = size {
            if bands.size.n >= min && bands.size.outside(x, sigma, 16.0) {
                checks.push(("size", x, bands.size));
            }
            bands.size.update(x, alpha);
        }
        if let Some(x) = latency {
            if bands.latency.n >= min && bands.latency.outside(x, sigma, 5.0) {
                checks.push(("latency", x, bands.latency));
            }
            bands.latency.update(x, alpha);
        }
        for (what, x, band) in checks {
            let unit = if what == "size" { "bytes" } else { "ms" };
            out.push(trigger(
                format!("tool:{tool}:{what}"),
                format!(
                    "`{tool}` result {what} {x:.0} {unit} is outside its usual {:.0} ± {:.0} {unit} ({sigma}σ band)",
                    band.mean,
                    sigma * band.var.sqrt(),
                ),
                e.subject(),
                (e.t, r.seq),
                json!({
                    "check": what,
                    "value": x,
                    "mean": band.mean,
                    "stddev": band.var.sqrt(),
                    "sigma": sigma,
                    "samples": band.n,
                    "action": r.action,
                }),
            ));
        }
        out
    }
}
