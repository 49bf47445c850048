//! Command-line choices taken from the lists the library crates define (models, formats, read
//! modes, bug variants), so a name, its help line and its parsing come from one definition and
//! the command line can never offer a name the library does not know.

use std::fmt::Debug;
use std::str::FromStr;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use conclave_core::ReadConsistency;

/// A value parser accepting exactly the names of `items`, each listed in `--help` with its
/// description, and turning the chosen name into its item with the item's own `FromStr`.
pub fn listed<T>(
    items: &[T],
    name: fn(T) -> &'static str,
    description: fn(T) -> &'static str,
) -> impl TypedValueParser<Value = T>
where
    T: Copy + FromStr + Send + Sync + 'static,
    T::Err: Debug,
{
    let values = items.iter().map(|&item| PossibleValue::new(name(item)).help(description(item)));
    PossibleValuesParser::new(values)
        .map(|chosen: String| chosen.parse::<T>().expect("every listed name parses"))
}

/// The read modes a client may choose (`--read-mode`), as the server's `READMODE` names them.
pub fn read_modes() -> impl TypedValueParser<Value = ReadConsistency> {
    listed(ReadConsistency::ALL, ReadConsistency::as_str, ReadConsistency::description)
}

/// The deliberately broken Raft variants `conclave sim --bug` can run.
#[cfg(feature = "bug-injection")]
pub fn bug_variants() -> impl TypedValueParser<Value = conclave_raft::BugVariant> {
    use conclave_raft::BugVariant;
    listed(BugVariant::ALL, BugVariant::as_str, BugVariant::description)
}
