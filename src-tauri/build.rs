//! 1. Builds the front end (`ui/` → `ui/dist`) so the binary never embeds a stale page: the app
//!    and the end-to-end test then always show the UI of this checkout.
//! 2. Runs tauri-build against the `tauri.conf.json` at the repository root (tauri-build looks
//!    beside this crate's Cargo.toml unless told otherwise; `main.rs` gives `generate_context!`
//!    the same path).
//!
//! Set `PGANALYTICS_UI_PREBUILT=1` to embed an existing `ui/dist` without running npm.

use std::path::Path;
use std::process::Command;

fn main() {
    build_ui();
    let attributes = tauri_build::Attributes::new().config_path("../tauri.conf.json");
    if let Err(err) = tauri_build::try_build(attributes) {
        panic!("tauri-build failed: {err:#}");
    }
}

fn build_ui() {
    // Only the sources: `ui/dist` is written here, and watching it would rerun this script
    // on every build.
    for input in [
        "../ui/src",
        "../ui/index.html",
        "../ui/public",
        "../ui/package.json",
        "../ui/package-lock.json",
        "../ui/tsconfig.json",
        "../ui/vite.config.ts",
    ] {
        println!("cargo:rerun-if-changed={input}");
    }
    println!("cargo:rerun-if-env-changed=PGANALYTICS_UI_PREBUILT");

    let ui = Path::new("../ui");
    let dist_index = ui.join("dist/index.html");
    let prebuilt = std::env::var_os("PGANALYTICS_UI_PREBUILT").is_some_and(|v| v == "1");
    if prebuilt || !ui.join("node_modules").is_dir() {
        if dist_index.is_file() {
            if !prebuilt {
                println!(
                    "cargo:warning=ui/node_modules is missing: embedding the existing ui/dist, \
                     which may be stale (run `npm ci` in ui/ to rebuild it with the app)"
                );
            }
            return;
        }
        panic!(
            "ui/dist is missing and ui/node_modules is not installed: run `npm ci` in ui/ \
             (then this build produces ui/dist), or `npm ci && npm run build` there"
        );
    }

    let output = Command::new("npm")
        .args(["run", "build"])
        .current_dir(ui)
        .output()
        .unwrap_or_else(|e| {
            panic!("could not run `npm run build` in ui/ (is npm installed?): {e}")
        });
    if !output.status.success() {
        panic!(
            "`npm run build` in ui/ failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert!(
        dist_index.is_file(),
        "`npm run build` succeeded but did not write ui/dist/index.html"
    );
}
