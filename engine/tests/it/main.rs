//! Integration tests of the engine: the store contract on both backends, and the command line as
//! a user runs it.

mod cli;
mod store_contract;
