//! The Python package (python/): `scripts/python-tests.sh` installs it into a fresh virtual
//! environment with `pip install ./python` and runs its pytest suite, which compares its answers
//! with this build's command line.

use crate::support::root;
use std::process::Command;

#[test]
fn the_python_package_installs_and_passes_its_tests() {
    let out = Command::new(root().join("scripts/python-tests.sh"))
        .current_dir(root())
        .env("MPCFLOW_BIN", env!("CARGO_BIN_EXE_mpcflow"))
        .output()
        .expect("scripts/python-tests.sh runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "scripts/python-tests.sh failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains(" passed"), "pytest ran no test:\n{stdout}");
    // A test the machine cannot hold (torch where the disk is short) is reported, never hidden:
    // straight to the process's stderr, which the test harness does not capture (it captures
    // `eprintln!`), so the line shows in CI's log even though this test passes.
    for line in stderr.lines().chain(stdout.lines()).filter(|l| l.starts_with("SKIPPED")) {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "python tests: {line}");
    }
}
