//! The key-value store's snapshot image, which a follower receives from its leader and a node
//! reads back from disk.

use bytes::Bytes;
use conclave_kv::{plan, KvStore, Plan};

/// Where the image's length field is: after the magic and the version byte.
const LENGTH_AT: usize = 5;
const HEADER_LEN: usize = LENGTH_AT + 8;
const CHECKSUM_LEN: usize = 8;

/// Restores a store from `data[1..]`. Images are canonical, so one that restores must snapshot to
/// exactly the same bytes. When `data[0]` is odd the length field and checksum are filled in
/// first, so that the fuzzer reaches the entry decoder.
pub fn kv_snapshot(data: &[u8]) {
    let Some((&mode, image)) = data.split_first() else { return };
    let image = if mode & 1 == 1 { sealed(image) } else { image.to_vec() };
    let Ok(store) = KvStore::restore(&image) else { return };
    assert_eq!(store.snapshot(), Bytes::from(image), "a restored image snapshots differently");
}

/// `image` with its length field and FNV-1a checksum made to match its bytes.
fn sealed(image: &[u8]) -> Vec<u8> {
    let mut out = image.to_vec();
    if out.len() < HEADER_LEN + CHECKSUM_LEN {
        return out;
    }
    let len = out.len() as u64;
    out[LENGTH_AT..HEADER_LEN].copy_from_slice(&len.to_le_bytes());
    let covered = out.len() - CHECKSUM_LEN;
    let checksum = fnv1a(&out[..covered]);
    out[covered..].copy_from_slice(&checksum.to_le_bytes());
    out
}

/// 64-bit FNV-1a, the image's checksum (`docs/KV.md`).
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

pub(crate) fn seeds() -> Vec<Vec<u8>> {
    let mut store = KvStore::new();
    let writes: [&[&str]; 3] =
        [&["SET", "a", "1"], &["SET", "session", "x", "PX", "100"], &["MSET", "b", "2", "c", "3"]];
    for args in writes {
        let args: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
        if let Some(Plan::Write(command)) = plan(&args, 5_000) {
            store.apply(&command);
        }
    }
    let image = store.snapshot();
    vec![[&[0][..], &image].concat(), [&[1][..], &image].concat()]
}
