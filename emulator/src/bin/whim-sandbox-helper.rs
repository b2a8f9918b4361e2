//! A minimal binary whose only job is to be re-executed as the sandbox setup helper
//! (the sandbox tests point `SandboxConfig::helper_exe` at it).

fn main() {
    whim_emulator::sandbox::run_helper_if_requested();
    eprintln!("whim-sandbox-helper: run as `whim-sandbox-helper {}` by the emulator", whim_emulator::sandbox::HELPER_ARG);
    std::process::exit(2);
}
