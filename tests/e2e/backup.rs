//! Backups and restores in the real window. A PostgreSQL 17 server that allows replication, a
//! `file://` storage target and the audit signing key (backups are signed with it) are set up
//! through the core's API before the app starts on the same repository; then, as a person
//! would: create the backup encryption key, back up (encrypted, zstd) and see the backup
//! complete in the table, verify it and see it intact, look at its details, ask what a prune
//! would remove, and restore it with the wizard into a temporary folder, starting the restored
//! server — whose data the test then reads; last, damage one stored object and see
//! verification name it. Screenshots: `backups-panel.png`, `backups-detail.png`,
//! `restore-confirm.png`, `restore-wizard.png` (the result) and `backups-verify-alarm.png`.
//! Needs a keyring: run under `scripts/with-keyring`.

use super::procs::{self, StopClustersUnder};
use super::webdriver::{Element, Session};
use super::{open_app, screenshot, text_of, type_into, wait_for, REPOSITORY_TIMEOUT, UI_TIMEOUT};
use anyhow::{bail, ensure, Context, Result};
use pganalytics_core::api::{Api, ApiOptions};
use pganalytics_core::audit::Source;
use pganalytics_core::cluster::ClusterOptions;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

const SERVER: &str = "e2e-backup-pg17";
const STORAGE: &str = "e2e-local";
/// Rows in the table the restored server must hold.
const ROWS: i64 = 50_000;
/// A small cluster backs up, verifies and restores in seconds; allow for a slow, shared machine.
const JOB_TIMEOUT: Duration = Duration::from_secs(300);

/// The element `shown` once it is there, or an error with the text of the error box `error`
/// as soon as that shows instead (a failing probe would only count as "not yet").
async fn shown_or_error(
    s: &Session,
    what: &str,
    timeout: Duration,
    shown: &str,
    error: &str,
) -> Result<Element> {
    let found = wait_for(what, timeout, || async {
        if let Some(err) = s.find(error).await? {
            let code = s.attribute(&err, "data-code").await?.unwrap_or_default();
            return Ok(Some(Err(format!("{code}: {}", s.text(&err).await?))));
        }
        Ok(s.find(shown).await?.map(Ok))
    })
    .await?;
    found.map_err(|e| anyhow::anyhow!("{what} failed ({e})"))
}

/// Choose `value` in the `<select>` `css` as a person would: the value changes, `change` fires.
async fn choose(s: &Session, css: &str, value: &str) -> Result<()> {
    let option = format!("{css} option[value=\"{value}\"]");
    wait_for(
        &format!("`{value}` among the choices of `{css}`"),
        UI_TIMEOUT,
        || async { Ok(s.find(&option).await?.map(|_| ())) },
    )
    .await?;
    let select = s.find(css).await?.context("the select")?;
    s.execute(
        "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('change'));",
        vec![
            json!({ "element-6066-11e4-a52e-4f735466cecf": select.id() }),
            value.into(),
        ],
    )
    .await?;
    Ok(())
}

/// Attribute `name` of `css`, read where it is found: a table redrawn between finding the
/// element and reading it only makes the probe try again.
async fn attr(s: &Session, css: &str, name: &str) -> Result<String> {
    wait_for(&format!("`{css}`"), UI_TIMEOUT, || async {
        let Some(el) = s.find(css).await? else {
            return Ok(None);
        };
        Ok(Some(s.attribute(&el, name).await?.unwrap_or_default()))
    })
    .await
}

/// Click `css` once it is there, scrolled to the middle of the panel first (WebKitWebDriver
/// does not always scroll inside the panel's scrolling area, and refuses what it cannot see).
/// The panel redraws its table when a list reload lands: an element found just before is then
/// stale and WebDriver refuses it without clicking, so it is found again (three tries).
async fn press(s: &Session, css: &str) -> Result<()> {
    let mut stale = String::new();
    for _ in 0..3 {
        let el = wait_for(&format!("`{css}` to click"), UI_TIMEOUT, || async {
            s.find(css).await
        })
        .await?;
        let clicked = async {
            scroll_into_view(s, &el).await?;
            s.click(&el).await
        }
        .await;
        match clicked {
            Ok(()) => return Ok(()),
            Err(e) if format!("{e:#}").contains("stale element reference") => {
                eprintln!("e2e: `{css}` was redrawn before the click; finding it again");
                stale = format!("{e:#}");
            }
            Err(e) => return Err(e).with_context(|| format!("click `{css}`")),
        }
    }
    bail!("`{css}` was redrawn before each of three clicks: {stale}")
}

/// Open the details of the backup in `row`. The toggle redraws the row at once with
/// `aria-expanded=true`; when that does not follow, the click landed elsewhere (the panel was
/// still drawing and moved the button between WebDriver's scroll and its click), so it is
/// clicked again — never when it took, as a second click would close the details.
async fn open_details(s: &Session, row: &str) -> Result<()> {
    let button = format!("{row} [data-testid=backup-details]");
    let expanded = format!("{button}[aria-expanded=true]");
    for _ in 0..3 {
        press(s, &button).await?;
        let took = wait_for("the details to open", Duration::from_secs(5), || async {
            Ok(s.find(&expanded).await?.map(|_| ()))
        })
        .await;
        if took.is_ok() {
            return Ok(());
        }
        eprintln!("e2e: the click on `{button}` did not open the details; clicking again");
    }
    bail!("three clicks on `{button}` did not open the backup's details")
}

async fn scroll_into_view(s: &Session, el: &Element) -> Result<()> {
    s.execute(
        "arguments[0].scrollIntoView({ block: 'center', inline: 'nearest' });",
        vec![json!({ "element-6066-11e4-a52e-4f735466cecf": el.id() })],
    )
    .await?;
    Ok(())
}

/// Server, storage target and the audit signing key, through the core's API on the data
/// directory the app then opens (its first start creates the embedded repository).
async fn set_up(data_dir: &Path, dsn: &str, store: &Path) -> Result<()> {
    let api = Api::open(ApiOptions {
        data_dir: Some(data_dir.to_path_buf()),
        repository: None,
        source: Source::Cli,
    })
    .await
    .map_err(|e| anyhow::anyhow!("open the repository: {e}"))?;
    let calls = [
        ("server_add", json!({ "name": SERVER, "dsn": dsn })),
        (
            "storage_add",
            json!({ "name": STORAGE, "url": format!("file://{}", store.display()), "options": {} }),
        ),
        // Ed25519: the same signing path as RSA, and no wait for an RSA key.
        ("audit_keygen", json!({ "algorithm": "ed25519" })),
    ];
    let mut result = Ok(());
    for (command, args) in calls {
        if let Err(e) = api.dispatch(command, args).await {
            result = Err(anyhow::anyhow!(
                "{command}: {e} ({})",
                e.hint.as_deref().unwrap_or("no hint")
            ));
            break;
        }
    }
    api.close().await;
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_panel_backs_up_verifies_and_restores() -> Result<()> {
    // Declaration order is teardown order reversed: the app goes first, then the restored
    // server and the embedded repository, the folders, the display, and last the source.
    let source = pganalytics_testkit::pg_with(
        17,
        ClusterOptions::for_tests()
            .setting("wal_level", "replica")
            .setting("max_wal_senders", "10"),
    )
    .await
    .context("start the PostgreSQL server to back up")?;
    // The test clusters' pg_hba.conf lets 127.0.0.1 open replication connections.
    let hba = std::fs::read_to_string(source.cluster.pgdata().join("pg_hba.conf"))?;
    ensure!(
        hba.lines()
            .any(|l| l.starts_with("host") && l.contains("replication")),
        "the source cluster's pg_hba.conf needs a replication line:\n{hba}"
    );
    let source_pool = source.pool("postgres").await?;
    sqlx::query(&format!(
        "CREATE TABLE e2e_backup AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, {ROWS}) g"
    ))
    .execute(&source_pool)
    .await
    .context("fill the source")?;
    source_pool.close().await;

    let (display, _xvfb) = procs::display()?;
    let work = pganalytics_testkit::temp_dir()?;
    let store = work.path().join("store");
    std::fs::create_dir(&store)?;
    let restored = work.path().join("restored");
    let data_dir = pganalytics_testkit::temp_dir()?;
    let _stop_repository = StopClustersUnder(data_dir.path().to_path_buf());
    let _stop_restored = StopClustersUnder(work.path().to_path_buf());

    set_up(data_dir.path(), &source.dsn("postgres"), &store).await?;

    let (_driver, s, log) =
        open_app(&display, data_dir.path(), "e2e-backup-tauri-driver.log").await?;

    let result = drive(&s, &display, &store, &restored).await;
    if let Err(e) = &result {
        eprintln!("e2e: failed: {e:#}");
        let _ = screenshot(&s, &display, "e2e-backup-failure.png").await;
        eprintln!("e2e: driver and app log: {}", log.display());
    }
    let _ = s.delete().await;
    result
}

async fn drive(s: &Session, display: &str, store: &Path, restored: &Path) -> Result<()> {
    wait_for("the repository", REPOSITORY_TIMEOUT, || async {
        if let Some(err) = s.find("[data-testid=status-repo-error]").await? {
            bail!("the repository failed to open: {}", s.text(&err).await?);
        }
        Ok(s.find("[data-testid=status-repo-kind]").await?.map(|_| ()))
    })
    .await?;

    let id = back_up(s).await?;
    verify(s, &id).await?;
    screenshot(s, display, "backups-panel.png").await?;
    details_and_prune(s, &id).await?;
    screenshot(s, display, "backups-detail.png").await?;
    let port = restore(s, display, &id, restored).await?;
    screenshot(s, display, "restore-wizard.png").await?;

    // The restored server runs and holds the source's data.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&format!("postgres://postgres@127.0.0.1:{port}/postgres"))
        .await
        .with_context(|| format!("connect to the restored server on port {port}"))?;
    let (rows, sum): (i64, String) =
        sqlx::query_as("SELECT count(*), md5(string_agg(v, ',' ORDER BY id)) FROM e2e_backup")
            .fetch_one(&pool)
            .await
            .context("read the restored table")?;
    pool.close().await;
    ensure!(
        rows == ROWS,
        "the restored table holds {rows} rows, not {ROWS}"
    );
    ensure!(sum.len() == 32, "a digest of the restored rows: {sum}");

    // The backup's details now list the restore.
    press(s, "[data-testid=nav-backups]").await?;
    let row = format!("[data-testid=backup-row][data-id=\"{id}\"]");
    open_details(s, &row).await?;
    let restore_row = wait_for(
        "the restore in the backup's details",
        UI_TIMEOUT,
        || async { s.find("[data-testid=backup-detail-restore]").await },
    )
    .await?;
    ensure!(
        s.attribute(&restore_row, "data-status").await?.as_deref() == Some("completed"),
        "the restore is recorded as completed"
    );

    // Damage the stored backup: verification raises the alarm and names the object.
    let object = damage_largest_object(store)?;
    press(s, &format!("{row} [data-testid=backup-verify]")).await?;
    let area = format!("[data-testid=backup-verify-area][data-id=\"{id}\"]");
    let alarm_css = format!("{area} [data-testid=backup-verify-result][data-intact=false]");
    shown_or_error(
        s,
        "the verification of the damaged backup",
        JOB_TIMEOUT,
        &alarm_css,
        &format!("{area} [data-testid=backup-verify-error]"),
    )
    .await?;
    // The list reloads when the verification ends and may draw the alarm again: read it whole
    // from one element, finding it again if the one found first was replaced.
    let (named, problem, text) = wait_for("the alarm's details", UI_TIMEOUT, || async {
        let Some(alarm) = s.find(&alarm_css).await? else {
            return Ok(None);
        };
        let named = s
            .attribute(&alarm, "data-object")
            .await?
            .unwrap_or_default();
        let problem = s
            .attribute(&alarm, "data-problem")
            .await?
            .unwrap_or_default();
        let text = s.text(&alarm).await?;
        Ok(Some((named, problem, text)))
    })
    .await?;
    ensure!(
        !named.is_empty() && object.ends_with(&named),
        "the alarm names the damaged object {}: {named}",
        object.display()
    );
    ensure!(!problem.is_empty(), "the alarm says what is wrong");
    ensure!(
        text.contains("damaged") && text.contains(&named),
        "the alarm reads as one: {text}"
    );
    eprintln!("e2e: the damaged backup's alarm: {problem} in {named}");
    // The open details follow: the last verification failed.
    wait_for(
        "the details to say the verification failed",
        UI_TIMEOUT,
        || async {
            let Some(el) = s.find("[data-testid=backup-detail-verified]").await? else {
                return Ok(None);
            };
            Ok(s.text(&el).await?.starts_with("failed ").then_some(()))
        },
    )
    .await?;
    if let Some(alarm) = s.find(&alarm_css).await? {
        scroll_into_view(s, &alarm).await?;
    }
    screenshot(s, display, "backups-verify-alarm.png").await?;
    Ok(())
}

/// Flip one byte in the middle of the largest file under `store` (a data object of the
/// backup); returns its path.
fn damage_largest_object(store: &Path) -> Result<std::path::PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<(u64, std::path::PathBuf)>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                walk(&entry.path(), out)?;
            } else {
                out.push((meta.len(), entry.path()));
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(store, &mut files).context("list the storage target")?;
    let (len, path) = files
        .into_iter()
        .max()
        .context("the storage target holds no object")?;
    let mut bytes = std::fs::read(&path)?;
    let middle = (len / 2) as usize;
    bytes[middle] ^= 0xff;
    std::fs::write(&path, bytes)?;
    eprintln!("e2e: damaged {} ({len} bytes)", path.display());
    Ok(path)
}

/// "Back up now" with zstd and encryption; returns the new backup's id.
async fn back_up(s: &Session) -> Result<String> {
    press(s, "[data-testid=nav-backups]").await?;
    text_of(s, "[data-testid=panel-backups] h1", UI_TIMEOUT).await?;
    text_of(s, "[data-testid=backups-empty]", UI_TIMEOUT)
        .await
        .context("a new installation has no backup")?;
    choose(s, "[data-testid=backup-server]", SERVER).await?;
    choose(s, "[data-testid=backup-storage]", STORAGE).await?;
    choose(s, "[data-testid=backup-compress]", "zstd:3").await?;
    // PostgreSQL 17 could compress itself (`auto`'s choice): asked to keep its CPUs free.
    choose(s, "[data-testid=backup-compress-on]", "client").await?;

    // The encryption key: created now (or kept, when this keyring session holds one).
    press(s, "[data-testid=backup-keygen]").await?;
    let state = wait_for("the encryption key", UI_TIMEOUT, || async {
        let Some(el) = s
            .find("[data-testid=backup-key-feedback][data-state]")
            .await?
        else {
            return Ok(None);
        };
        s.attribute(&el, "data-state").await
    })
    .await?;
    match state.as_str() {
        "created" => {
            let fp = text_of(s, "[data-testid=backup-key-fingerprint]", UI_TIMEOUT).await?;
            ensure!(
                fp.len() == 16 && fp.chars().all(|c| c.is_ascii_hexdigit()),
                "a key fingerprint: {fp}"
            );
        }
        "exists" => eprintln!("e2e: this keyring session already holds a backup key"),
        _ => bail!(
            "creating the backup key failed: {}",
            text_of(s, "[data-testid=backup-key-feedback]", UI_TIMEOUT).await?
        ),
    }
    press(s, "[data-testid=backup-encrypt]").await?;

    press(s, "[data-testid=backup-start]").await?;
    let result = shown_or_error(
        s,
        "the backup",
        JOB_TIMEOUT,
        "[data-testid=backup-run-result]",
        "[data-testid=backup-run-error]",
    )
    .await?;
    let id = s.attribute(&result, "data-id").await?.unwrap_or_default();
    ensure!(
        s.attribute(&result, "data-status").await?.as_deref() == Some("completed"),
        "the finished backup is completed"
    );
    let summary = text_of(s, "[data-testid=backup-run-summary]", UI_TIMEOUT).await?;
    ensure!(
        summary.contains("stored") && summary.contains("encrypted"),
        "the result says what was stored and that it is encrypted: {summary}"
    );
    ensure!(
        summary.contains("zstd:3 by pgAnalytics"),
        "the result says zstd ran here, as chosen: {summary}"
    );
    // The key line: the key here opens the new backup, and no backup needs another key.
    wait_for("the key status to count the backup", UI_TIMEOUT, || async {
        let Some(el) = s.find("[data-testid=backup-key-status]").await? else {
            return Ok(None);
        };
        let text = s.text(&el).await?;
        Ok(text.contains("opens 1 encrypted backup.").then_some(text))
    })
    .await?;
    ensure!(
        s.find("[data-testid=backup-key-alarm]").await?.is_none(),
        "no key alarm when the key here opens every backup"
    );

    // In the table: completed, encrypted, not verified yet, with its sizes.
    let row = format!("[data-testid=backup-row][data-id=\"{id}\"]");
    wait_for("the backup completed in the table", UI_TIMEOUT, || async {
        s.find(&format!("{row}[data-status=completed]")).await
    })
    .await?;
    ensure!(attr(s, &row, "data-server").await? == SERVER);
    ensure!(
        attr(s, &row, "data-encrypted").await? == "true",
        "the backup is encrypted"
    );
    ensure!(
        attr(s, &row, "data-verified").await? == "false",
        "a new backup is not verified yet"
    );
    for cell in ["backup-row-size", "backup-row-stored", "backup-row-ratio"] {
        let text = text_of(s, &format!("{row} [data-testid={cell}]"), UI_TIMEOUT).await?;
        ensure!(text != "—", "{cell} is shown: {text}");
    }
    let size = text_of(
        s,
        &format!("{row} [data-testid=backup-row-size]"),
        UI_TIMEOUT,
    )
    .await?;
    ensure!(
        size.ends_with("MiB"),
        "a PostgreSQL 17 cluster is some MiB: {size}"
    );
    Ok(id)
}

/// "Verify" on the row: progress, then "intact"; the row then shows it verified.
async fn verify(s: &Session, id: &str) -> Result<()> {
    let row = format!("[data-testid=backup-row][data-id=\"{id}\"]");
    press(s, &format!("{row} [data-testid=backup-verify]")).await?;
    let area = format!("[data-testid=backup-verify-area][data-id=\"{id}\"]");
    let result = shown_or_error(
        s,
        "the verification",
        JOB_TIMEOUT,
        &format!("{area} [data-testid=backup-verify-result]"),
        &format!("{area} [data-testid=backup-verify-error]"),
    )
    .await?;
    let text = s.text(&result).await?;
    ensure!(
        s.attribute(&result, "data-intact").await?.as_deref() == Some("true"),
        "a backup nobody touched verifies intact: {text}"
    );
    ensure!(text.contains("intact"), "the result says intact: {text}");
    let summary = text_of(
        s,
        &format!("{area} [data-testid=backup-verify-summary]"),
        UI_TIMEOUT,
    )
    .await?;
    ensure!(
        summary.contains("objects") && summary.contains("manifest"),
        "the result says what was checked: {summary}"
    );
    wait_for(
        "the row to show the backup verified",
        UI_TIMEOUT,
        || async { s.find(&format!("{row}[data-verified=true]")).await },
    )
    .await?;
    Ok(())
}

/// "Details": LSNs, WAL, keys and archives; then "Prune…" keeping the newest one finds
/// nothing to remove (there is one backup).
async fn details_and_prune(s: &Session, id: &str) -> Result<()> {
    let row = format!("[data-testid=backup-row][data-id=\"{id}\"]");
    open_details(s, &row).await?;
    shown_or_error(
        s,
        "the backup's details",
        UI_TIMEOUT,
        &format!("[data-testid=backup-detail][data-id=\"{id}\"]"),
        "[data-testid=backup-detail-error]",
    )
    .await?;
    let field = |name: &'static str| async move {
        text_of(
            s,
            &format!("[data-testid=backup-detail-{name}]"),
            UI_TIMEOUT,
        )
        .await
    };
    ensure!(field("id").await? == id);
    for lsn in ["start-lsn", "stop-lsn"] {
        let text = field(lsn).await?;
        ensure!(text.contains('/'), "{lsn} is an LSN: {text}");
    }
    let wal = field("wal").await?;
    ensure!(wal.contains('…'), "the WAL range is shown: {wal}");
    let version = field("version").await?;
    ensure!(
        version.starts_with("17."),
        "the server's version: {version}"
    );
    let key = field("key").await?;
    ensure!(
        key.len() == 16 && key.chars().all(|c| c.is_ascii_hexdigit()),
        "the encryption key's fingerprint: {key}"
    );
    let signer = field("signer").await?;
    ensure!(signer != "—", "the signing key is named: {signer}");
    let archives = s.find_all("[data-testid=backup-detail-archive]").await?;
    ensure!(!archives.is_empty(), "the archives are listed");
    text_of(s, "[data-testid=backup-detail-no-restores]", UI_TIMEOUT)
        .await
        .context("a new backup has never been restored")?;

    press(s, "[data-testid=backups-prune]").await?;
    type_into(s, "[data-testid=prune-keep-full]", "1").await?;
    press(s, "[data-testid=prune-preview]").await?;
    let nothing = shown_or_error(
        s,
        "the prune dry run",
        UI_TIMEOUT,
        "[data-testid=prune-nothing]",
        "[data-testid=prune-error]",
    )
    .await;
    if nothing.is_err() {
        if let Some(list) = s.find("[data-testid=prune-dry-run]").await? {
            bail!(
                "keeping the newest backup of one must remove nothing, the dry run lists: {}",
                s.text(&list).await?
            );
        }
    }
    nothing?;
    press(s, "[data-testid=prune-close]").await?;
    let el = s.find(&row).await?.context("the backup's row")?;
    scroll_into_view(s, &el).await?;
    Ok(())
}

/// The wizard, step by step; returns the port of the restored, started server.
async fn restore(s: &Session, display: &str, id: &str, target: &Path) -> Result<u16> {
    let target = target.to_str().context("temp path is not UTF-8")?;
    let step = |n: u32| async move {
        wait_for(&format!("wizard step {n}"), UI_TIMEOUT, || async {
            s.find(&format!("[data-testid=restore-step][data-step=\"{n}\"]"))
                .await
        })
        .await
    };
    press(s, "[data-testid=nav-restore]").await?;
    text_of(s, "[data-testid=panel-restore] h1", UI_TIMEOUT).await?;

    // 1: the server.
    step(1).await?;
    press(
        s,
        &format!("[data-testid=restore-server-option][data-server=\"{SERVER}\"] input"),
    )
    .await?;
    press(s, "[data-testid=restore-next]").await?;

    // 2: its backup (the only one, verified).
    step(2).await?;
    let option = format!("[data-testid=restore-backup-option][data-id=\"{id}\"]");
    press(s, &format!("{option} input")).await?;
    ensure!(
        attr(s, &option, "data-verified").await? == "true",
        "the wizard shows the backup verified"
    );
    press(s, "[data-testid=restore-next]").await?;

    // 3: the target folder (typed: WebDriver cannot drive the native dialog), started on a
    // port of our choosing.
    step(3).await?;
    ensure!(
        s.find("[data-testid=restore-browse]").await?.is_some(),
        "the native folder dialog is offered"
    );
    // A relative path is refused before anything runs.
    type_into(s, "[data-testid=restore-target]", "restored").await?;
    press(s, "[data-testid=restore-next]").await?;
    let message = text_of(s, "[data-testid=restore-target-error-message]", UI_TIMEOUT).await?;
    ensure!(
        message.contains("full path"),
        "a relative path is refused: {message}"
    );
    type_into(s, "[data-testid=restore-target]", target).await?;
    let start = s
        .find("[data-testid=restore-start-server]")
        .await?
        .context("the start checkbox")?;
    let checked = s
        .execute(
            "return arguments[0].checked;",
            vec![json!({ "element-6066-11e4-a52e-4f735466cecf": start.id() })],
        )
        .await?;
    if checked != serde_json::Value::Bool(true) {
        scroll_into_view(s, &start).await?;
        s.click(&start).await?;
    }
    let port = procs::free_port()?;
    type_into(s, "[data-testid=restore-port]", &port.to_string()).await?;
    press(s, "[data-testid=restore-next]").await?;

    // 4: what will happen.
    step(4).await?;
    ensure!(text_of(s, "[data-testid=restore-confirm-backup-id]", UI_TIMEOUT).await? == id);
    let shown = text_of(s, "[data-testid=restore-confirm-target]", UI_TIMEOUT).await?;
    ensure!(
        shown.contains(target) && shown.contains("empty"),
        "the confirmation names the folder and that it must be empty: {shown}"
    );
    let version = text_of(s, "[data-testid=restore-confirm-version]", UI_TIMEOUT).await?;
    ensure!(
        version.contains("PostgreSQL 17"),
        "the confirmation names the server version needed: {version}"
    );
    let size = text_of(s, "[data-testid=restore-confirm-size]", UI_TIMEOUT).await?;
    ensure!(
        size.contains("MiB"),
        "the confirmation gives the size: {size}"
    );
    let after = text_of(s, "[data-testid=restore-confirm-start]", UI_TIMEOUT).await?;
    ensure!(
        after.contains(&port.to_string()),
        "the confirmation names the port: {after}"
    );
    screenshot(s, display, "restore-confirm.png").await?;
    press(s, "[data-testid=restore-run]").await?;

    // 5 → 6: progress, then the result.
    let result = shown_or_error(
        s,
        "the restore",
        JOB_TIMEOUT,
        "[data-testid=restore-result]",
        "[data-testid=restore-error]",
    )
    .await?;
    ensure!(
        s.attribute(&result, "data-status").await?.as_deref() == Some("completed"),
        "the restore completed: {}",
        s.text(&result).await?
    );
    step(6).await?;
    let seconds: f64 = attr(s, "[data-testid=restore-result-duration]", "data-seconds")
        .await?
        .parse()
        .context("the measured duration")?;
    ensure!(seconds > 0.0, "a measured duration: {seconds}");
    ensure!(text_of(s, "[data-testid=restore-result-target]", UI_TIMEOUT).await? == target);
    let shown_port = attr(s, "[data-testid=restore-result-port]", "data-port").await?;
    ensure!(
        shown_port == port.to_string(),
        "the result names the port {port}: {shown_port}"
    );
    ensure!(
        Path::new(target).join("PG_VERSION").is_file(),
        "the target folder holds a data directory"
    );
    Ok(port)
}
