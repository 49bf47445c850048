//! `conclave bench kv` against a stand-in server that answers every command at once, so the
//! measured time is the client's own.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;

/// Accepts connections and answers `+OK` to every RESP command (each starts with `*`; the
/// benchmark's keys and values hold none).
fn stand_in_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buffer) {
                    if n == 0 {
                        return;
                    }
                    let commands = buffer[..n].iter().filter(|&&b| b == b'*').count();
                    if stream.write_all(&b"+OK\r\n".repeat(commands)).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A run of a few milliseconds is timed as a few milliseconds: the rate is not diluted by the
/// progress loop's 250 ms tick (which made every run take at least one tick).
#[test]
fn a_short_run_is_timed_from_first_request_to_last_reply() {
    let addr = stand_in_server();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let out = Command::new(env!("CARGO_BIN_EXE_conclave"))
        .args(["bench", "kv", "--clients", "2", "--requests", "40", "--value-size", "8"])
        .args(["--addr", &addr.to_string(), "--json", json.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["ops"], 40, "{report}");
    let seconds = report["seconds"].as_f64().unwrap();
    assert!(seconds > 0.0, "{report}");
    assert!(seconds < 0.25, "40 loopback requests timed at {seconds} s: {report}");
    let rate = report["ops_per_sec"].as_f64().unwrap();
    assert!((rate - 40.0 / seconds).abs() < 1e-6 * rate, "{report}");
}
