//! Architectural rules that a test can check.

/// The core must not depend on Tauri, directly or through any crate (ARCHITECTURE.md).
#[test]
fn core_has_no_tauri_in_its_dependency_tree() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "tree",
            "-p",
            "pganalytics-core",
            "--edges",
            "normal,build",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(pganalytics_testkit::repo_root())
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(
        tree.lines().any(|l| l.starts_with("sqlx ")),
        "the tree was read: {tree}"
    );
    let tauri: Vec<&str> = tree.lines().filter(|l| l.starts_with("tauri")).collect();
    assert!(tauri.is_empty(), "core depends on {tauri:?}");
}
