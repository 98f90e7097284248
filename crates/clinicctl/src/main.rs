//! clinicctl: the command-line client of clinicnet for partner clinics, insurance integrators and
//! ops — wiring only: parse the command line, resolve endpoints and token, run the command, map
//! its failure to an exit code.

mod args;
mod cli;
mod client;
mod commands;
mod config;
mod context;
mod exit;
mod import;
mod integrator;
mod mailsink;
mod output;
mod seed;
mod telemetry;
mod traces;

use clap::Parser as _;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let code = if error.use_stderr() { 2 } else { 0 };
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(exit::Kind::Server.code());
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}", exit::render(&error));
            ExitCode::from(exit::classify(&error).code())
        }
    }
}
