//! Scenario, property and performance tests over the public API. Unit tests of single modules
//! live next to them.

mod importers;
mod models;
mod performance;
mod properties;
