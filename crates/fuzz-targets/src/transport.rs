//! The transport's frame decoder and handshake messages; the body lives in the transport crate,
//! which keeps its decoders private.

/// Reads handshake and batch frames from `data` as a node reads a peer's connection.
pub fn transport_frame(data: &[u8]) {
    conclave_transport::fuzzing::frames(data);
}

pub(crate) fn seeds() -> Vec<Vec<u8>> {
    let valid = conclave_transport::fuzzing::seed();
    // The same frames again, in the mode that frames bodies itself: kind, length, body.
    let framed = vec![1, 1, 4, b'C', b'N', b'C', b'L', 3, 32, 0, 2, 0];
    vec![valid, framed]
}
