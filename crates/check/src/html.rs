//! A self-contained HTML timeline of a history: one lane per client, one bar per operation from
//! its invocation to its completion, coloured by outcome, with the operations a violation could
//! not place outlined in red. No scripts and no external files, so it can be attached to a bug
//! report and opened anywhere; hovering a bar shows the operation (SVG `<title>`).
//!
//! The horizontal axis is event order, not time: order is what linearizability depends on, and
//! recorded clocks of different clients may disagree. Each distinct event position shown gets
//! one column, so a filtered view stays compact.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::operation::{OpId, Operation, Outcome};
use crate::report::{Report, Verdict};

/// Lane height in pixels.
const LANE_HEIGHT: usize = 28;
/// Width of the lane labels on the left.
const LABEL_WIDTH: usize = 70;
/// Bars wider than this get their operation written on them.
const LABEL_BAR_WIDTH_MIN: f64 = 70.0;

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The role an operation played in the verdict, which decides its highlight.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Plain,
    /// Placed at this position (1-based) by the deepest attempt.
    Placed(usize),
    /// Could not be placed after that attempt.
    Unplaceable,
}

/// Renders the timeline page. When the history is not linearizable and has several keys, only
/// the violating keys' operations are drawn (the rest cannot explain the violation, and a
/// 100,000-operation page helps nobody); the page says so.
pub fn render_html(title: &str, ops: &[Operation], report: &Report) -> String {
    let mut roles: BTreeMap<OpId, Role> = BTreeMap::new();
    for violation in &report.violations {
        for (n, id) in violation.prefix.iter().enumerate() {
            roles.insert(*id, Role::Placed(n + 1));
        }
        for id in &violation.unplaceable {
            roles.insert(*id, Role::Unplaceable);
        }
    }
    let filter_keys = matches!(report.verdict, Verdict::NotLinearizable(_)) && report.keys > 1;
    let shown_keys: BTreeSet<_> = report.violations.iter().map(|v| v.key.clone()).collect();
    let shown: Vec<&Operation> =
        ops.iter().filter(|op| !filter_keys || shown_keys.contains(&op.key)).collect();

    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{}</title>\n<style>{STYLE}</style></head><body>\n<h1>{}</h1>\n\
         <p class=\"verdict {}\">{}</p>\n<pre>{}</pre>\n",
        escape(title),
        escape(title),
        match report.verdict {
            Verdict::Linearizable => "good",
            Verdict::NotLinearizable(_) => "bad",
            Verdict::Unknown => "unknown",
        },
        escape(report.verdict.headline()),
        escape(&report.summary(ops)),
    );
    if filter_keys {
        let keys: Vec<String> = shown_keys
            .iter()
            .map(|k| k.as_ref().map_or_else(|| "(no key)".into(), |k| k.to_string()))
            .collect();
        let _ = writeln!(
            page,
            "<p>Showing only the operations on the violating key(s): {}.</p>",
            escape(&keys.join(", "))
        );
    }
    page.push_str(LEGEND);
    page.push_str(&timeline(&shown, &roles));
    page.push_str("</body></html>\n");
    page
}

fn timeline(shown: &[&Operation], roles: &BTreeMap<OpId, Role>) -> String {
    // Columns: every event position an operation shown starts or ends at, plus one past the
    // end where operations that never completed run to.
    let positions: BTreeSet<usize> = shown
        .iter()
        .flat_map(|op| std::iter::once(op.invoke_position).chain(op.complete_position))
        .collect();
    let column: BTreeMap<usize, usize> =
        positions.iter().enumerate().map(|(i, p)| (*p, i)).collect();
    let columns = positions.len() + 1;
    let step = (4000.0 / columns as f64).clamp(3.0, 40.0);
    let lanes: BTreeMap<u64, usize> = shown
        .iter()
        .map(|op| op.process)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .enumerate()
        .map(|(i, p)| (p, i))
        .collect();
    let width = LABEL_WIDTH as f64 + step * columns as f64 + 10.0;
    let height = LANE_HEIGHT * lanes.len().max(1) + 4;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height}\" \
         font-family=\"monospace\" font-size=\"11\">"
    );
    for (process, lane) in &lanes {
        let y = lane * LANE_HEIGHT;
        let _ = writeln!(
            svg,
            "<g class=\"lane\"><rect class=\"lane-bg\" x=\"0\" y=\"{y}\" width=\"{width:.0}\" \
             height=\"{LANE_HEIGHT}\"/><text x=\"4\" y=\"{}\">process {process}</text></g>",
            y + LANE_HEIGHT / 2 + 4
        );
    }
    let x_of = |position: Option<usize>| -> f64 {
        let col = position.and_then(|p| column.get(&p).copied()).unwrap_or(columns);
        LABEL_WIDTH as f64 + step * col as f64
    };
    for op in shown {
        let lane = lanes.get(&op.process).copied().unwrap_or_default();
        let x0 = x_of(Some(op.invoke_position));
        let open_ended = op.outcome == Outcome::Info;
        let x1 = if open_ended { width - 4.0 } else { x_of(op.complete_position) };
        let bar_width = (x1 - x0).max(step / 2.0);
        let y = lane * LANE_HEIGHT + 5;
        let role = roles.get(&op.id).copied().unwrap_or(Role::Plain);
        let mut class = match op.outcome {
            Outcome::Ok => "op ok".to_owned(),
            Outcome::Fail => "op fail".to_owned(),
            Outcome::Info => "op info".to_owned(),
        };
        let mut tip = format!("op {}: {} (lines {})", op.id, op.describe(), op.lines());
        if let (Some(a), Some(b)) = (op.invoke_time, op.complete_time) {
            let _ = write!(tip, ", {a}-{b} ns");
        }
        match role {
            Role::Placed(n) => {
                let _ = write!(tip, "; placed #{n} by the deepest attempt");
            }
            Role::Unplaceable => {
                class.push_str(" unplaceable");
                tip.push_str("; COULD NOT BE PLACED");
            }
            Role::Plain => {}
        }
        let _ = writeln!(
            svg,
            "<g class=\"{class}\"><title>{}</title><rect x=\"{x0:.1}\" y=\"{y}\" \
             width=\"{bar_width:.1}\" height=\"{}\" rx=\"3\"/>",
            escape(&tip),
            LANE_HEIGHT - 10
        );
        let mut label = String::new();
        if let Role::Placed(n) = role {
            label = format!("#{n}");
        }
        if bar_width >= LABEL_BAR_WIDTH_MIN {
            let separator = if label.is_empty() { "" } else { " " };
            label = format!("{label}{separator}{}", short(op));
        }
        if !label.is_empty() {
            let _ = writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"{}\">{}</text>",
                x0 + 3.0,
                y + LANE_HEIGHT / 2,
                escape(&label)
            );
        }
        svg.push_str("</g>\n");
    }
    svg.push_str("</svg>\n");
    format!("<div class=\"timeline\">\n{svg}</div>\n")
}

/// The operation in a few characters: `cas [1, 4]`, `read -> 3`.
fn short(op: &Operation) -> String {
    let mut text = op.f.clone();
    if !op.value.is_nil() {
        let _ = write!(text, " {}", op.value);
    }
    if let Some(result) = op.result.as_ref().filter(|r| op.value.is_nil() || **r != op.value) {
        let _ = write!(text, " -> {result}");
    }
    text
}

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em}\
pre{background:#f6f6f6;padding:.8em;overflow-x:auto}\
.verdict{font-size:1.3em;font-weight:bold}.good{color:#2e7d32}.bad{color:#c62828}\
.unknown{color:#ef6c00}.timeline{overflow-x:auto;border:1px solid #ccc}\
.lane-bg{fill:#fff}.lane:nth-child(even) .lane-bg{fill:#f3f3f3}\
.op rect{stroke:#333;stroke-width:.5}.ok rect{fill:#81c784}.fail rect{fill:#bdbdbd}\
.info rect{fill:#ffcc80;stroke-dasharray:4 3;stroke-width:1}\
.unplaceable rect{fill:#e57373;stroke:#b71c1c;stroke-width:2.5}\
.legend span{display:inline-block;padding:2px 8px;margin-right:6px;border:1px solid #333}";

const LEGEND: &str = "<p class=\"legend\"><span style=\"background:#81c784\">ok</span>\
<span style=\"background:#ffcc80;border-style:dashed\">info (unknown; runs to the end)</span>\
<span style=\"background:#bdbdbd\">fail (did not happen)</span>\
<span style=\"background:#e57373;border:2px solid #b71c1c\">could not be placed</span>\
#n: position in the deepest linearization attempt</p>\n";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{check_history, CheckOptions, Event, History, Value};

    fn page(events: Vec<Event>) -> String {
        let (ops, report) =
            check_history(&History::from_events(events), &CheckOptions::default()).unwrap();
        render_html("t<i>tle", &ops, &report)
    }

    #[test]
    fn lanes_bars_outcomes_and_the_violation() {
        let html = page(vec![
            Event::invoke(0, "write").with_value(1),
            Event::ok(0, "write"),
            Event::invoke(7, "write").with_value("<script>"),
            Event::invoke(1, "read"),
            Event::ok(1, "read").with_result(Value::Nil),
            Event::invoke(2, "write").with_value(5),
            Event::fail(2, "write"),
        ]);
        assert!(html.contains("<title>t&lt;i&gt;tle</title>"));
        for lane in ["process 0", "process 1", "process 2", "process 7"] {
            assert!(html.contains(lane), "{lane}");
        }
        assert_eq!(html.matches("<g class=\"op ").count(), 4, "one bar per operation");
        assert!(html.contains("class=\"op info\"") && html.contains("class=\"op fail\""));
        assert!(html.contains("class=\"op ok unplaceable\""));
        assert!(!html.contains("<script>"), "text is escaped");
    }

    #[test]
    fn only_violating_keys_are_drawn_when_there_are_several() {
        let html = page(vec![
            Event::invoke(0, "put").with_key("good").with_value(1),
            Event::ok(0, "put").with_key("good"),
            Event::invoke(0, "get").with_key("bad"),
            Event::ok(0, "get").with_key("bad").with_result(2),
        ]);
        assert!(
            html.contains("Showing only the operations on the violating key(s): &quot;bad&quot;")
        );
        assert_eq!(html.matches("<g class=\"op ").count(), 1);
    }

    #[test]
    fn escapes_everything_that_could_break_out() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
