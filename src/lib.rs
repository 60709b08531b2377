//! netheal: a self-healing network watchdog. This file wires the parts together and is the one
//! place where errors become exit codes.
use std::process::ExitCode;

pub mod wire;

pub fn run() -> ExitCode {
    ExitCode::SUCCESS
}
pub mod cli;
pub mod config;
pub mod probe;
pub mod route;
pub mod watchdog;

pub mod heal;
pub mod sys;
