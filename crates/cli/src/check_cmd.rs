//! `conclave check FILE`: is a recorded history linearizable? Reads the history (Conclave's
//! JSON lines, a Jepsen log or Jepsen EDN), checks it against a model within a budget, prints
//! the verdict and optionally draws an HTML timeline.
//!
//! Exit status: 0 linearizable, 1 not linearizable, 2 unusable input (the message names the
//! line), 3 unknown (the budget ran out first).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use conclave_check::{
    check_history, read_history, render_html, Budget, CheckOptions, Format, ModelKind, Value,
};

use crate::choices::listed;

/// The exit status for input that cannot be checked.
const EXIT_UNUSABLE: i32 = 2;

/// Options of `conclave check`.
#[derive(Args, Debug)]
#[command(after_help = "\
Exit status: 0 linearizable, 1 not linearizable, 2 unusable input (the message names the line), \
3 unknown (budget exhausted). The JSON-lines format, the models and the Jepsen formats are \
described in docs/HISTORY.md.")]
pub struct CheckArgs {
    /// The history file.
    file: PathBuf,
    /// The file's format.
    #[arg(long, default_value_t = Format::Json,
          value_parser = listed(Format::ALL, Format::as_str, Format::description))]
    format: Format,
    /// The model. Default: the history's meta line; else cas-register for jepsen-log, kv for
    /// jepsen-edn, and for JSON kv if any event has a key, cas-register if none does.
    #[arg(long, value_parser = listed(ModelKind::ALL, ModelKind::as_str, ModelKind::description))]
    model: Option<ModelKind>,
    /// What a register (or every key, for kv) holds before any write, instead of nil: for
    /// services where reading a missing key returns the empty string, `--initial-value ''`.
    /// Read as JSON when it parses (`0`, `null`, `"0"`, `[1,2]`), else as a plain string.
    /// Overrides the meta line's `initial`.
    #[arg(long, value_name = "VALUE", value_parser = parse_initial_value)]
    initial_value: Option<Value>,
    /// Wall time the search may take (e.g. 500ms, 10s, 2m); then the verdict is unknown.
    #[arg(long, default_value = "10s", value_parser = parse_budget)]
    budget: Duration,
    /// Also stop after this many search steps: unlike time, the same on every machine.
    #[arg(long)]
    steps: Option<u64>,
    /// Write a self-contained HTML timeline of the history here.
    #[arg(long, value_name = "OUT.html")]
    html: Option<PathBuf>,
    /// Print the report as JSON instead of the summary.
    #[arg(long)]
    json: bool,
    /// Bank model: the number of accounts (with --balance; overrides the meta line).
    #[arg(long, requires = "balance")]
    accounts: Option<usize>,
    /// Bank model: every account's initial balance (with --accounts).
    #[arg(long, requires = "accounts")]
    balance: Option<i64>,
}

/// JSON when the text is JSON, else the text itself: `''` and `abc` are strings, `0` is a number.
fn parse_initial_value(text: &str) -> Result<Value, String> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(json) => Value::try_from(json),
        Err(_) => Ok(Value::Str(text.to_string())),
    }
}

fn parse_budget(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 =
        number.parse().map_err(|_| format!("{text:?} is not a duration (e.g. 500ms, 10s, 2m)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("unknown unit {unit:?} in {text:?} (ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

/// Runs the check; returns the exit status.
pub fn run(args: &CheckArgs) -> i32 {
    let format = args.format;
    let model = args.model;
    let file = args.file.display();
    let mut history = match read_history(&args.file, format) {
        Ok(history) => history,
        Err(err) => {
            eprintln!("conclave check: {file}: {err}");
            return EXIT_UNUSABLE;
        }
    };
    if let Some(initial) = &args.initial_value {
        history.set_initial_value(initial.clone());
    }
    let balances = match (args.accounts, args.balance) {
        (Some(accounts), Some(balance)) => Some(vec![balance; accounts]),
        _ => None,
    };
    let options = CheckOptions {
        model,
        balances,
        budget: Budget { time: Some(args.budget), steps: args.steps, ..Budget::default() },
    };
    let (ops, report) = match check_history(&history, &options) {
        Ok(checked) => checked,
        Err(err) => {
            eprintln!("conclave check: {file}: {err}");
            return EXIT_UNUSABLE;
        }
    };
    if args.json {
        let json = report.to_json(&ops);
        outln!("{}", serde_json::to_string_pretty(&json).unwrap_or_else(|_| json.to_string()));
    } else {
        outln!("history {file} ({format})");
        out!("{}", report.summary(&ops));
    }
    if let Some(out) = &args.html {
        let page = render_html(&format!("Linearizability check: {file}"), &ops, &report);
        if let Err(err) = std::fs::write(out, page) {
            eprintln!("conclave check: cannot write {}: {err}", out.display());
            return EXIT_UNUSABLE;
        }
        eprintln!("timeline written to {}", out.display());
    }
    report.verdict.exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_parse() {
        assert_eq!(parse_budget("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_budget("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_budget("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_budget("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_budget("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_budget("10 parsecs").is_err());
        assert!(parse_budget("s").is_err());
    }

    #[test]
    fn initial_values_are_json_or_else_text() {
        assert_eq!(parse_initial_value(""), Ok(Value::from("")));
        assert_eq!(parse_initial_value("abc"), Ok(Value::from("abc")));
        assert_eq!(parse_initial_value("\"0\""), Ok(Value::from("0")));
        assert_eq!(parse_initial_value("0"), Ok(Value::Int(0)));
        assert_eq!(parse_initial_value("null"), Ok(Value::Nil));
        assert!(parse_initial_value("1.5").is_err());
    }
}
