use std::process::ExitCode;

fn main() -> ExitCode {
    netheal::run()
}
