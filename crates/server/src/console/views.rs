//! Views with charts (inline SVG, labelled in place, no legend hunt):
//! decisions over time by outcome, approval bottlenecks, retry hotspots,
//! incidents and their response times, approval statistics and drills.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use maud::{Markup, html};
use warden_oversight::rollout::approvals::{StatsOptions, approval_stats};
use warden_store::IncidentFilter;

use super::layout::{self, Page, Section, badge, millis, now_us};
use super::session::{Viewer, render};
use crate::AppState;

const OUTCOMES: [&str; 3] = ["allow", "approval_required", "deny"];

/// `text` cut to `n` characters, with an ellipsis when cut.
fn short(text: &str, n: usize) -> String {
    if text.chars().count() <= n {
        text.to_owned()
    } else {
        let mut t: String = text.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

/// One horizontal bar per row: label, value, and the value's text.
fn bars(id: &str, title: &str, rows: &[(String, f64, String)]) -> Markup {
    let max = rows.iter().map(|r| r.1).fold(0.0_f64, f64::max).max(1e-9);
    let row_h = 26.0;
    let height = (rows.len() as f64 * row_h + 8.0).max(34.0);
    html! {
        figure.chart id=(id) {
            figcaption { (title) }
            @if rows.is_empty() {
                p.empty { "No data yet." }
            } @else {
                svg viewBox=(format!("0 0 640 {height}")) role="img" aria-label=(title) preserveAspectRatio="xMinYMin meet" {
                    @for (i, (label, value, text)) in rows.iter().enumerate() {
                        @let y = i as f64 * row_h + 4.0;
                        @let w = (value / max * 200.0).max(1.0);
                        text x="0" y=(y + 17.0) class="label" {
                            title { (label) }
                            (short(label, 30))
                        }
                        rect x="210" y=(y + 3.0) width=(format!("{w:.1}")) height="18" class="bar" {}
                        text x=(format!("{:.1}", 216.0 + w)) y=(y + 17.0) class="value" { (text) }
                    }
                }
            }
        }
    }
}

/// Decisions per hour over the last 24 hours, stacked by outcome, each
/// segment's count written on it when there is room.
fn decisions_chart(buckets: &BTreeMap<i64, BTreeMap<String, i64>>, start_us: i64) -> Markup {
    let hour = 3_600_000_000_i64;
    let max = buckets
        .values()
        .map(|m| m.values().sum::<i64>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let (w, h, left, bottom) = (640.0, 220.0, 40.0, 30.0);
    let bw = (w - left) / 24.0;
    let totals: BTreeMap<&str, i64> = OUTCOMES
        .iter()
        .map(|o| {
            (
                *o,
                buckets
                    .values()
                    .map(|m| m.get(*o).copied().unwrap_or(0))
                    .sum(),
            )
        })
        .collect();
    // (x, y, height, outcome, count) of each stacked segment.
    let mut segments: Vec<(f64, f64, f64, &str, i64)> = Vec::new();
    for i in 0..24_i64 {
        let m = buckets.get(&(start_us + i * hour));
        let x = left + i as f64 * bw + 2.0;
        let mut y = h - bottom;
        for o in OUTCOMES {
            let n = m.and_then(|m| m.get(o)).copied().unwrap_or(0);
            if n > 0 {
                let bh = n as f64 / max * (h - bottom - 20.0);
                y -= bh;
                segments.push((x, y, bh, o, n));
            }
        }
    }
    html! {
        figure.chart #decisions-chart {
            figcaption {
                "Decisions per hour, last 24 hours: "
                @for o in OUTCOMES {
                    span class=(format!("key out-{o}")) { (o.replace('_', " ")) " " (totals.get(o).copied().unwrap_or(0)) } " "
                }
            }
            svg viewBox=(format!("0 0 {w} {h}")) role="img" aria-label="Decisions per hour by outcome over the last 24 hours" {
                line x1=(left) y1=(h - bottom) x2=(w) y2=(h - bottom) class="axis" {}
                text x="0" y="14" class="value" { (max as i64) }
                text x="0" y=(h - bottom) class="value" { "0" }
                @for seg in &segments {
                    rect x=(format!("{:.1}", seg.0)) y=(format!("{:.1}", seg.1)) width=(format!("{:.1}", bw - 4.0)) height=(format!("{:.1}", seg.2)) class=(format!("out-{}", seg.3)) {
                        title { (seg.4) " " (seg.3.replace('_', " ")) }
                    }
                }
                @for i in (0..24_i64).step_by(3) {
                    text x=(format!("{:.1}", left + i as f64 * bw)) y=(h - 10.0) class="value" {
                        (warden_evidence::time_from_micros(start_us + i * hour).get(11..16).unwrap_or(""))
                    }
                }
            }
        }
    }
}

/// `GET /console/views`.
pub(crate) async fn views(State(s): State<AppState>, v: Viewer) -> Response {
    if !Section::Views.open_to(&v) {
        return layout::forbidden(&s, &v, "the views");
    }
    let hour = 3_600_000_000_i64;
    let start = (now_us() / hour - 23) * hour;
    let mut buckets: BTreeMap<i64, BTreeMap<String, i64>> = BTreeMap::new();
    for (b, d, n) in s
        .store
        .decisions_over_time(start, hour)
        .await
        .unwrap_or_default()
    {
        *buckets.entry(b).or_default().entry(d).or_default() += n;
    }
    let approvals = s.oversight.approvals_view().await.ok();
    let hotspots = s
        .oversight
        .hotspots_view(Duration::from_secs(86_400), 10)
        .await
        .ok();
    let incidents = s
        .oversight
        .incidents(&IncidentFilter {
            state: None,
            limit: 20,
        })
        .await
        .unwrap_or_default();
    let week = crate::rollout::window(
        Some(&warden_evidence::time_from_micros(now_us() - 7 * 24 * hour)),
        None,
        None,
        None,
        None,
    )
    .ok();
    let stats = match &week {
        Some(w) => approval_stats(&s.store, w, &StatsOptions::default())
            .await
            .ok(),
        None => None,
    };
    let drills = s.store.drills(false, 10).await.unwrap_or_default();
    let pending: Vec<(String, f64, String)> = approvals
        .as_ref()
        .map(|a| {
            a.groups
                .iter()
                .map(|g| {
                    (
                        g.group.clone(),
                        g.oldest_age_s,
                        format!(
                            "{} waiting, oldest {}",
                            g.pending,
                            millis((g.oldest_age_s * 1e6) as i64)
                        ),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let to_decide: Vec<(String, f64, String)> = stats
        .as_ref()
        .map(|st| {
            st.gates
                .iter()
                .filter_map(|g| {
                    g.p50_ms.map(|p| {
                        (
                            g.groups.join(", "),
                            p as f64,
                            format!(
                                "median {} · {} requests, {:.0}% approved",
                                millis(i64::try_from(p).unwrap_or(0) * 1000),
                                g.requests,
                                g.approval_rate * 100.0
                            ),
                        )
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let retries: Vec<(String, f64, String)> = hotspots
        .as_ref()
        .map(|h| {
            h.tools
                .iter()
                .map(|t| {
                    (
                        t.tool.clone(),
                        (t.retries + t.failed) as f64,
                        format!(
                            "{} retries, {} failed of {} ({:.0}%)",
                            t.retries,
                            t.failed,
                            t.actions,
                            t.failure_rate * 100.0
                        ),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let response: Vec<(String, f64, String)> = incidents
        .iter()
        .map(|i| {
            let tta = i.tta_ms.map_or("not acknowledged".to_owned(), |t| {
                format!("ack {}", millis(t * 1000))
            });
            (
                format!("{} {}", i.playbook, i.id.get(..12).unwrap_or(&i.id)),
                (i.ttd_ms + i.tta_ms.unwrap_or(0)) as f64,
                format!("detect {} · {tta}", millis(i.ttd_ms * 1000)),
            )
        })
        .collect();
    let body = html! {
        h1 { "Views" }
        div.charts {
            (decisions_chart(&buckets, start))
            (bars("bottlenecks-chart", "Approval bottlenecks: age of the oldest waiting request per group", &pending))
            (bars("decision-time-chart", "Time to decision per gate, last 7 days", &to_decide))
            (bars("hotspots-chart", "Retry hotspots: retries and failures per tool, last 24 hours", &retries))
            (bars("incidents-chart", "Incidents: time to detect and acknowledge (newest 20)", &response))
        }
        @if let Some(st) = &stats {
            @if !st.flags.is_empty() {
                h2 { "Approval statistics flags (7 days)" }
                ul { @for f in &st.flags { li { (f) } } }
            }
        }
        h2 { "Drills" }
        @if drills.is_empty() {
            p.empty { "No drill has run yet: " code { "warden drill run NAME" } "." }
        } @else {
            table.list {
                thead { tr { th scope="col" { "Drill" } th scope="col" { "State" } th scope="col" { "Started" } th scope="col" { "By" } } }
                tbody {
                    @for d in &drills {
                        tr {
                            td { (d.name) " " code { (d.id) } }
                            td { (badge(&d.state)) }
                            td { (warden_evidence::time_from_micros(d.started_us)) }
                            td { (d.started_by) }
                        }
                    }
                }
            }
        }
        p.note { "The readiness check is a command: " code { "warden check --pack DIR --server URL" } "." }
    };
    render(&s, &v, Page::new("Views", Section::Views, body))
}
