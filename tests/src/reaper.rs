//! Best-effort clean-up that outlives the test process: a tiny `sh` watchdog per resource that
//! acts once this process is gone (panic=abort, SIGKILL, Ctrl-C), since statics are never dropped.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// Quotes `text` for a POSIX shell.
pub(crate) fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Runs the shell snippet `cleanup` once this test process has exited.
pub(crate) fn after_exit(cleanup: &str) {
    let script = format!(
        "while kill -0 {parent} 2>/dev/null; do sleep 1; done\n{cleanup}\n",
        parent = std::process::id()
    );
    spawn_watchdog(&script);
}

/// Kills `pid` with SIGKILL if this test process exits while `pid` still runs; the watchdog goes
/// away by itself as soon as `pid` is gone.
pub(crate) fn kill_with_parent(pid: u32) {
    let script = format!(
        "while kill -0 {parent} 2>/dev/null && kill -0 {pid} 2>/dev/null; do sleep 1; done\n\
         kill -0 {parent} 2>/dev/null || kill -KILL {pid} 2>/dev/null\n",
        parent = std::process::id()
    );
    spawn_watchdog(&script);
}

fn spawn_watchdog(script: &str) {
    let spawned = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group: a Ctrl-C aimed at the test run must not kill the clean-up.
        .process_group(0)
        .spawn();
    match spawned {
        Ok(mut child) => {
            // Reap it when it ends so no zombie is left behind.
            let _ = std::thread::Builder::new()
                .name("harness-reaper".into())
                .stack_size(64 * 1024)
                .spawn(move || child.wait());
        }
        Err(error) => tracing::warn!(%error, "could not start the clean-up watchdog"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_single_quotes() {
        let quoted = shell_quote("it's /tmp/a b");
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {quoted}"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), "it's /tmp/a b");
    }
}
