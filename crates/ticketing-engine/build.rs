//! Records the commit the engine (and the binary around it) is built from, for `msp_build_info{commit}` (the version comes
//! from Cargo). Outside a git checkout (a source tarball) the commit is `unknown`.

use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=MSP_BUILD_COMMIT={commit}");
    // A new commit moves HEAD's ref: rebuild the value then, and only then.
    if let Ok(head) = std::fs::read_to_string("../../.git/HEAD") {
        println!("cargo:rerun-if-changed=../../.git/HEAD");
        if let Some(r) = head.strip_prefix("ref: ") {
            println!("cargo:rerun-if-changed=../../.git/{}", r.trim());
        }
    }
}
