//! `sluice dev up|status|down` in a temp dir, and the README's "First five minutes"
//! commands run exactly as written. Every test kills what it started, pass or fail.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use sluice_e2e::{sluice_bin, wait_until};

use crate::common::{CmdOutput, assert_success, run_cmd};

/// Kills the nodes recorded in `dir/state.json` when dropped (SIGKILL; a failing test
/// must not leave brokers behind).
struct KillOnDrop(PathBuf);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let Ok(text) = std::fs::read_to_string(self.0.join("state.json")) else {
            return;
        };
        let Ok(state) = serde_json::from_str::<Value>(&text) else {
            return;
        };
        for node in state["nodes"].as_array().cloned().unwrap_or_default() {
            if let Some(pid) = node["pid"].as_i64().and_then(|p| i32::try_from(p).ok()) {
                let _ = rustix::process::kill_process(
                    rustix::process::Pid::from_raw(pid).expect("pid > 0"),
                    rustix::process::Signal::KILL,
                );
            }
        }
    }
}

fn dev(dir: &Path, args: &[&str]) -> CmdOutput {
    let mut cmd = Command::new(sluice_bin());
    cmd.env_remove("SLUICE_BROKERS")
        .args(["--format", "json"])
        .args(args)
        .arg("--dir")
        .arg(dir);
    run_cmd(&mut cmd, None, Duration::from_secs(60))
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.split_whitespace().nth(2) == Some("Z"))
}

#[test]
fn dev_up_status_down() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("cluster");
    let _guard = KillOnDrop(dir.clone());

    let out = dev(&dir, &["dev", "up", "--nodes", "3"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("replication"), "{}", out.stderr);

    let out = dev(&dir, &["dev", "up"]);
    assert_success(&out, "dev up");
    let up: Value = serde_json::from_str(&out.stdout).expect("dev up JSON");
    let brokers = up["brokers"].as_str().expect("brokers").to_owned();
    assert!(brokers.starts_with("127.0.0.1:"), "{up}");
    let node = &up["nodes"][0];
    assert_eq!(node["node_id"], 1);
    assert_eq!(node["kafka_addr"], brokers.as_str());
    let pid = node["pid"]
        .as_i64()
        .and_then(|p| i32::try_from(p).ok())
        .expect("pid");
    assert!(alive(pid));
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("state.json")).expect("state"))
            .expect("state JSON");
    assert_eq!(state["nodes"][0]["pid"], pid);
    assert!(dir.join("node-1").join("broker.log").is_file());

    // A second `up` refuses while the first runs.
    let out = dev(&dir, &["dev", "up"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);

    let out = dev(&dir, &["dev", "status"]);
    assert_success(&out, "dev status");
    let status: Value = serde_json::from_str(&out.stdout).expect("status JSON");
    assert_eq!(status["brokers"], brokers.as_str());
    assert_eq!(status["nodes"][0]["running"], true);
    assert_eq!(status["nodes"][0]["serving"], true);

    let mut cmd = Command::new(sluice_bin());
    cmd.env("SLUICE_BROKERS", &brokers)
        .args(["topic", "create", "from-dev"]);
    assert_success(
        &run_cmd(&mut cmd, None, Duration::from_secs(30)),
        "create on the dev node",
    );

    let out = dev(&dir, &["dev", "down"]);
    assert_success(&out, "dev down");
    let down: Value = serde_json::from_str(&out.stdout).expect("down JSON");
    assert_eq!(down["stopped"][0]["pid"], pid);
    assert_eq!(down["stopped"][0]["killed"], false);
    assert!(
        wait_until(Duration::from_secs(10), || !alive(pid)),
        "node still running"
    );
    assert!(!dir.join("state.json").exists());
    let out = dev(&dir, &["dev", "status"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
}

/// The commands between the README's first-five-minutes markers.
fn readme_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let begin = readme
        .find("<!-- first-five-minutes:begin -->")
        .expect("begin marker");
    let end = readme
        .find("<!-- first-five-minutes:end -->")
        .expect("end marker");
    readme[begin..end]
        .lines()
        .skip_while(|l| !l.starts_with("```"))
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn readme_first_five_minutes_runs() {
    let commands = readme_commands();
    assert!(commands.len() >= 8, "{commands:?}");
    assert!(commands.iter().any(|c| c.contains("dev up")));
    assert!(commands.last().is_some_and(|c| c.contains("dev down")));
    let tmp = tempfile::tempdir().expect("tempdir");
    let _guard = KillOnDrop(tmp.path().join("sluice-dev"));
    let bin_dir = sluice_bin()
        .canonicalize()
        .expect("binary path")
        .parent()
        .expect("bin dir")
        .to_owned();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut script = String::from("set -euo pipefail\n");
    for c in &commands {
        script.push_str(&format!("echo '+ {}' >&2\n{c}\n", c.replace('\'', "'\\''")));
    }
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(&script)
        .current_dir(tmp.path())
        .env("PATH", path)
        .env("HOME", tmp.path())
        .env_remove("SLUICE_BROKERS")
        .env_remove("SLUICE_PROFILE");
    let out = run_cmd(&mut cmd, None, Duration::from_secs(120));
    assert_success(&out, "README first five minutes");
    assert!(out.stdout.contains("alice: 3 apples"), "{}", out.stdout);
    assert!(out.stdout.contains("healthy:"), "{}", out.stdout);
    assert!(!tmp.path().join("sluice-dev/state.json").exists());
}
