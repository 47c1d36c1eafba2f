//! The HTML view of a run (`sim run --html`) draws what it promises: one lane
//! per node, the messages, and — for a linearizability failure — the offending
//! operations highlighted. Checked by rendering the page in headless Chromium
//! (Debian's `chromium`, installed by `.ci/run`) and reading the DOM its script
//! built. Without Chromium the test fails: it is not optional.

use sim::explore::RunPlan;
use sim::{Cluster, FailureKind};
use std::process::Command;

/// A run with reads served from whichever node they reach (a deliberate driver
/// bug): the linearizability check refutes it. Returns the page.
fn failing_run_page(dir: &std::path::Path) -> (std::path::PathBuf, usize) {
    let plan = RunPlan { nodes: 3, clients: 6, fault_ms: 6_000, liveness_ms: 20_000, ..RunPlan::default() };
    for seed in 0x900..0x960u64 {
        let mut options = plan.options(seed);
        options.verbose = false;
        options.driver_bug_local_reads = true;
        options.record_timeline = true;
        let mut cluster = Cluster::new(options);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            cluster.run_for(plan.fault_ms);
            cluster.finish(plan.liveness_ms)
        }));
        if let Ok(Err(failure)) = outcome {
            if failure.kind == FailureKind::Linearizability {
                let path = dir.join(format!("run-{seed:#x}.html"));
                cluster.write_html(path.to_str().unwrap(), &format!("seed {seed:#x}")).unwrap();
                return (path, plan.nodes);
            }
        }
    }
    panic!("no seed of 0x900..0x960 failed the linearizability check with stale local reads");
}

fn chromium() -> &'static str {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|path| std::path::Path::new(path).exists())
        .expect("headless Chromium is required for this test (Debian: apt-get install chromium; .ci/run installs it)")
}

/// The DOM after the page's script ran.
fn rendered_dom(page: &std::path::Path, profile: &std::path::Path) -> String {
    let output = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(output.status.success(), "chromium failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("the DOM is UTF-8")
}

#[test]
fn the_html_view_of_a_failing_run_draws_lanes_messages_and_the_violation() {
    let dir = tempfile::tempdir().unwrap();
    let (page, nodes) = failing_run_page(dir.path());
    if let Ok(keep) = std::env::var("SIM_HTML_OUT") {
        std::fs::copy(&page, keep).expect("copy the page"); // For the README's screenshot.
    }
    let dom = rendered_dom(&page, &dir.path().join("profile"));
    assert!(dom.contains(r#"data-drawn="true""#), "the script ran to the end");
    assert_eq!(dom.matches(r#"<g class="lane""#).count(), nodes, "one lane per node");
    assert!(dom.matches(r#"class="msg"#).count() > 100, "messages drawn as arrows");
    assert!(dom.contains(r#"data-kind="AppendEntries""#), "a filter group per message kind");
    let highlighted =
        dom.matches(r#"class="op violation""#).count() + dom.matches(r#"class="op unknown violation""#).count();
    assert!(highlighted >= 2, "the operations the violation names are highlighted ({highlighted})");
    assert!(dom.contains("linearizability violation on"), "the violation is explained");
}
