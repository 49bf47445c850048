//! Peer authentication: the cluster secret, the handshake nonces and the proofs.
//!
//! Each side of a connection sends a fresh random nonce in its hello, then proves that it knows
//! the cluster secret with an HMAC-SHA256 over both hellos (which hold the cluster id, both node
//! ids and both nonces) and the direction of the proof. The nonces make every proof good for one
//! connection only (no replay); the direction keeps a node's proof as acceptor from passing for a
//! dialer's proof (no reflection). `docs/TRANSPORT.md` gives the exact bytes.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The length of a handshake nonce: 256 bits, so that a nonce never repeats by chance.
pub(crate) const NONCE_BYTES: usize = 32;
/// The length of a proof: one HMAC-SHA256 output.
pub(crate) const PROOF_BYTES: usize = 32;
/// Starts every proof's input, so that a MAC made with the cluster secret for another purpose
/// (now or in a later version) can never pass for a handshake proof.
const PROOF_LABEL: &[u8] = b"conclave transport v2 proof";

/// A handshake nonce.
pub(crate) type Nonce = [u8; NONCE_BYTES];
/// A handshake proof.
pub(crate) type Proof = [u8; PROOF_BYTES];

/// The secret shared by every node of a cluster, which a peer must prove it knows before this
/// node reads anything from it. Without it, anyone who can reach a peer port could speak for a
/// member: depose the leader, or inject log entries.
///
/// An empty secret is allowed (see [`ClusterSecret::none`]): the handshake then runs with an
/// empty HMAC key, which only keeps apart nodes that disagree on having a secret. It is meant for
/// clusters on one host's loopback, where the embedding binary decides whether it is acceptable.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ClusterSecret(Vec<u8>);

impl ClusterSecret {
    /// A secret made of `bytes`. Any length works (HMAC hashes long keys down); 32 random bytes
    /// are plenty.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        ClusterSecret(bytes.into())
    }

    /// No secret: peers authenticate with an empty key, so they prove nothing beyond speaking the
    /// protocol. Only for a cluster that no one else can reach.
    pub fn none() -> Self {
        ClusterSecret(Vec::new())
    }

    /// True if there is no secret.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What a forwarding proof's HMAC input starts with: a proof made for the peer handshake can
/// never pass as one, nor the other way round.
const FORWARDING_LABEL: &[u8] = b"conclave client-port forwarding v1";

impl ClusterSecret {
    /// The proof a node sends on another node's client port (`CONCLAVE FORWARDED PROOF`) to show
    /// that the connection comes from a cluster member, over the `nonce` that port just handed
    /// out: a connection carrying followers' forwarded writes is kept open when idle, and an
    /// ordinary client must not get that by asking. A fresh nonce per connection means a proof
    /// seen on one connection is worthless on another.
    pub fn prove_forwarding(&self, nonce: &[u8]) -> [u8; 32] {
        self.forwarding_mac(nonce).finalize().into_bytes().into()
    }

    /// Checks a [`ClusterSecret::prove_forwarding`] proof in constant time.
    pub fn verify_forwarding(&self, nonce: &[u8], proof: &[u8]) -> bool {
        self.forwarding_mac(nonce).verify_slice(proof).is_ok()
    }

    fn forwarding_mac(&self, nonce: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(FORWARDING_LABEL);
        mac.update(nonce);
        mac
    }
}

/// Never prints the secret, so that logging a configuration cannot leak it.
impl fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            f.write_str("ClusterSecret(none)")
        } else {
            write!(f, "ClusterSecret(<{} bytes, redacted>)", self.0.len())
        }
    }
}

/// Which side of the connection a proof comes from; part of the proof's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// The node that connected (the lower id).
    Dialer = 1,
    /// The node that accepted.
    Acceptor = 2,
}

/// A fresh nonce from the operating system's generator. Not the seeded generator the dialer uses
/// for jitter: that one is reproducible by design, so its output can be predicted, and a nonce
/// must be unpredictable and never repeat, or a proof recorded on one connection could be played
/// back on another.
pub(crate) fn nonce() -> std::io::Result<Nonce> {
    let mut nonce = [0; NONCE_BYTES];
    getrandom::fill(&mut nonce).map_err(|err| {
        std::io::Error::other(format!("no randomness for the handshake nonce: {err}"))
    })?;
    Ok(nonce)
}

/// The proof that the side `direction` knows `secret`, for the connection on which the dialer
/// sent the hello body `dialer_hello` and the acceptor `acceptor_hello`.
pub(crate) fn prove(
    secret: &ClusterSecret,
    direction: Direction,
    dialer_hello: &[u8],
    acceptor_hello: &[u8],
) -> Proof {
    mac(secret, direction, dialer_hello, acceptor_hello).finalize().into_bytes().into()
}

/// Checks `proof` in constant time (a timing leak would let an attacker guess it byte by byte).
pub(crate) fn verify(
    secret: &ClusterSecret,
    direction: Direction,
    dialer_hello: &[u8],
    acceptor_hello: &[u8],
    proof: &Proof,
) -> bool {
    mac(secret, direction, dialer_hello, acceptor_hello).verify_slice(proof).is_ok()
}

fn mac(
    secret: &ClusterSecret,
    direction: Direction,
    dialer_hello: &[u8],
    acceptor_hello: &[u8],
) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret.0).expect("HMAC takes keys of any length");
    mac.update(PROOF_LABEL);
    mac.update(&[direction as u8]);
    // Each hello with its length, so that no two pairs of hellos give the same input.
    for hello in [dialer_hello, acceptor_hello] {
        mac.update(&(hello.len() as u64).to_le_bytes());
        mac.update(hello);
    }
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forwarding_proof_holds_only_for_its_secret_and_nonce() {
        let secret = ClusterSecret::new(*b"s3cret");
        let proof = secret.prove_forwarding(b"nonce-1");
        assert!(secret.verify_forwarding(b"nonce-1", &proof));
        assert!(!secret.verify_forwarding(b"nonce-2", &proof));
        assert!(!ClusterSecret::new(*b"s3creT").verify_forwarding(b"nonce-1", &proof));
        assert!(!secret.verify_forwarding(b"nonce-1", &proof[..31]));
    }

    #[test]
    fn a_proof_holds_only_for_its_secret_direction_and_hellos() {
        let secret = ClusterSecret::new(*b"s3cret");
        let proof = prove(&secret, Direction::Dialer, b"hello-d", b"hello-a");
        assert!(verify(&secret, Direction::Dialer, b"hello-d", b"hello-a", &proof));
        let other = ClusterSecret::new(*b"s3creT");
        assert!(!verify(&other, Direction::Dialer, b"hello-d", b"hello-a", &proof));
        assert!(!verify(&ClusterSecret::none(), Direction::Dialer, b"hello-d", b"hello-a", &proof));
        // Reflected: the acceptor's proof for the same connection is another value.
        assert!(!verify(&secret, Direction::Acceptor, b"hello-d", b"hello-a", &proof));
        // Replayed on another connection (other nonces, so other hellos).
        assert!(!verify(&secret, Direction::Dialer, b"hello-d", b"hello-b", &proof));
        // The boundary between the two hellos is part of the input.
        assert!(!verify(&secret, Direction::Dialer, b"hello-dh", b"ello-a", &proof));
    }

    #[test]
    fn nonces_differ_and_the_secret_is_never_printed() {
        assert_ne!(nonce().unwrap(), nonce().unwrap());
        let printed = format!("{:?}", ClusterSecret::new(*b"hunter2"));
        assert!(!printed.contains("hunter2"), "{printed}");
    }
}
