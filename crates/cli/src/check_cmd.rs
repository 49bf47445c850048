//! `conclave check FILE`: is a recorded history linearizable? Reads the history (Conclave's
//! JSON lines, a Jepsen log or Jepsen EDN), checks it against a model within a budget, prints
//! the verdict and optionally draws an HTML timeline.
//!
//! Exit status: 0 linearizable, 1 not linearizable, 2 unusable input (the message names the
//! line), 3 unknown (the budget ran out first).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use conclave_check::{
    check_history, read_history, render_html, Budget, CheckOptions, Format, ModelKind,
};

/// The exit status for input that cannot be checked.
const EXIT_UNUSABLE: i32 = 2;

/// History formats, as the command line names them.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FormatArg {
    /// Conclave's JSON lines (docs/HISTORY.md).
    Json,
    /// Jepsen's `jepsen.util` log lines for one CAS register.
    JepsenLog,
    /// Jepsen/Knossos EDN maps, one per line, for key-value operations.
    JepsenEdn,
}

/// Models, as the command line names them.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ModelArg {
    /// read, write.
    Register,
    /// read, write, cas [expected new].
    CasRegister,
    /// get, put, append; every key checked on its own.
    Kv,
    /// add n, read.
    Counter,
    /// add x, read (the whole set).
    Set,
    /// enqueue x, dequeue (nil when empty).
    Queue,
    /// transfer {from, to, amount}, read (all balances); needs initial balances.
    Bank,
}

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
    #[arg(long, value_enum, default_value_t = FormatArg::Json)]
    format: FormatArg,
    /// The model. Default: the history's meta line; else cas-register for jepsen-log, kv for
    /// jepsen-edn, and for JSON kv if any event has a key, cas-register if none does.
    #[arg(long, value_enum)]
    model: Option<ModelArg>,
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
    let format = match args.format {
        FormatArg::Json => Format::Json,
        FormatArg::JepsenLog => Format::JepsenLog,
        FormatArg::JepsenEdn => Format::JepsenEdn,
    };
    let model = args.model.map(|m| match m {
        ModelArg::Register => ModelKind::Register,
        ModelArg::CasRegister => ModelKind::CasRegister,
        ModelArg::Kv => ModelKind::Kv,
        ModelArg::Counter => ModelKind::Counter,
        ModelArg::Set => ModelKind::Set,
        ModelArg::Queue => ModelKind::Queue,
        ModelArg::Bank => ModelKind::Bank,
    });
    let file = args.file.display();
    let history = match read_history(&args.file, format) {
        Ok(history) => history,
        Err(err) => {
            eprintln!("conclave check: {file}: {err}");
            return EXIT_UNUSABLE;
        }
    };
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
}
