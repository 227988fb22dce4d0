//! The daemon as a process, for the tests that SIGKILL it (shared by the test binaries of
//! `msp-ticketd`; `CARGO_BIN_EXE_msp-ticketd` exists only there).

use anyhow::Result;

/// `msp-ticketd run --config FILE` as a process, its stderr appended to `log`; killed on drop.
pub(crate) struct Daemon(Option<std::process::Child>);

impl Daemon {
    pub(crate) fn spawn(config: &std::path::Path, log: &std::path::Path) -> Result<Self> {
        use anyhow::Context as _;
        let log = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_msp-ticketd"))
            .args(["run", "--config"])
            .arg(config)
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting msp-ticketd")?;
        Ok(Self(Some(child)))
    }

    /// SIGKILL: no shutdown, no flush, whatever was in flight is lost.
    pub(crate) fn kill(&mut self) -> Result<()> {
        if let Some(mut c) = self.0.take() {
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}
