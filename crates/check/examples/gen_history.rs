//! Writes a synthetic, linearizable-by-construction history in the JSON-lines format to stdout,
//! for measuring the checker:
//!
//! ```text
//! cargo run --release -p conclave-check --example gen_history -- \
//!     --model kv --ops 10000 --keys 100 --clients 20 --info 5 --fail 5 --seed 1 > h.jsonl
//! cargo run --release -p conclave-cli -- check h.jsonl
//! ```
//!
//! Models: register, cas-register, kv, counter, set, queue, bank (4 accounts of 100).

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use conclave_check::synth::{generate, Synth};
use conclave_check::HistoryWriter;
use conclave_check::ModelKind;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("gen_history: {message}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), String> {
    let mut spec = Synth::new(ModelKind::Kv, 20, 10_000, 1);
    spec.keys = 100;
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let [flag, value] = pair else { return Err(format!("{} needs a value", pair[0])) };
        let number =
            || value.parse::<u64>().map_err(|_| format!("{flag}: {value:?} is not a number"));
        match flag.as_str() {
            "--model" => {
                spec.model = value.parse()?;
            }
            "--ops" => spec.ops = number()? as usize,
            "--keys" => spec.keys = number()? as usize,
            "--clients" => spec.clients = number()? as usize,
            "--info" => spec.info_percent = number()? as u32,
            "--fail" => spec.fail_percent = number()? as u32,
            "--duration" => spec.duration_max = number()?,
            "--seed" => spec.seed = number()?,
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    let history = generate(&spec);
    let mut writer = HistoryWriter::new(BufWriter::new(io::stdout().lock()));
    let io_error = |e: io::Error| e.to_string();
    if let Some(meta) = &history.meta {
        writer.write_meta(meta).map_err(io_error)?;
    }
    for event in history.events {
        writer.write(event).map_err(io_error)?;
    }
    writer.into_inner().flush().map_err(io_error)
}
