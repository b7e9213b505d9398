//! The UI's TypeScript types are generated from the core's API types; the committed copy in
//! `ui/src/generated/` must equal what the code generates. Run with
//! `PGANALYTICS_UPDATE_BINDINGS=1` to rewrite it after changing an API type.

use std::collections::BTreeMap;
use std::path::Path;

fn read_dir(dir: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.ends_with(".ts") {
                files.insert(name, std::fs::read_to_string(entry.path()).unwrap());
            }
        }
    }
    files
}

#[test]
fn ts_bindings_are_up_to_date() {
    let generated = tempfile::tempdir().unwrap();
    pganalytics_core::api::export_typescript(generated.path()).unwrap();
    let fresh = read_dir(generated.path());
    assert!(fresh.contains_key("commands.ts") && fresh.contains_key("ServerCheck.ts"));
    let committed_dir = pganalytics_testkit::repo_root().join("ui/src/generated");
    if std::env::var_os("PGANALYTICS_UPDATE_BINDINGS").is_some() {
        let _ = std::fs::remove_dir_all(&committed_dir);
        std::fs::create_dir_all(&committed_dir).unwrap();
        for (name, text) in &fresh {
            std::fs::write(committed_dir.join(name), text).unwrap();
        }
    }
    let committed = read_dir(&committed_dir);
    assert_eq!(
        committed.keys().collect::<Vec<_>>(),
        fresh.keys().collect::<Vec<_>>(),
        "ui/src/generated is stale: run PGANALYTICS_UPDATE_BINDINGS=1 cargo test -p pganalytics-core --test core bindings"
    );
    for (name, text) in &fresh {
        assert_eq!(&committed[name], text, "ui/src/generated/{name} is stale");
    }
}
