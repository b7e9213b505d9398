//! End-to-end: the real desktop app, in a real (virtual) window, driven through tauri-driver and
//! WebKitWebDriver like a person would use it.
//!
//! Run: `cargo test -p pganalytics-desktop --test e2e` (needs xvfb, webkit2gtk-driver and
//! `cargo install tauri-driver --locked`; `scripts/run-app` lists the packages). Artefacts land in
//! `artifacts/` at the repository root: `e2e-servers.png` (the Servers panel after a check),
//! `e2e-engine-charts.png` (the Engine charts panel collecting from that server),
//! `e2e-engine-charts-error.png` (the panel for a server that is down), `audit-event-detail.png`
//! and `audit-panel.png` (the Audit log panel after verification) and `e2e-tauri-driver.log`
//! (the driver's and the app's logs). Creating the audit signing key needs a keyring: run it
//! under `scripts/with-keyring`.

mod audit;
mod backup;
mod procs;
mod webdriver;

use anyhow::{bail, ensure, Context, Result};
use procs::StopClustersUnder;
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use webdriver::Session;

/// The major version of the server the test registers; the app's own repository runs on
/// whatever the cluster manager picks, so the two versions differ on most machines.
const SERVER_MAJOR: u32 = 17;
const SERVER_NAME: &str = "e2e-pg17";

/// First start of the embedded repository runs initdb: allow for a slow, shared machine.
const REPOSITORY_TIMEOUT: Duration = Duration::from_secs(240);
const UI_TIMEOUT: Duration = Duration::from_secs(60);

fn artifacts_dir() -> Result<PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("src-tauri has a parent folder")?;
    let dir = root.join("artifacts");
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    Ok(dir)
}

/// Polls `probe` until it yields a value. Failures of the probe (e.g. an element not there
/// yet) count as "not yet"; on timeout the last observation is part of the error.
async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let start = Instant::now();
    let mut last = String::from("nothing observed yet");
    loop {
        match probe().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last = format!("{e:#}"),
        }
        if start.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting for {what}; last error: {last}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Text of the first element matching `css`, once it exists and is not empty.
async fn text_of(s: &Session, css: &str, timeout: Duration) -> Result<String> {
    wait_for(&format!("text of `{css}`"), timeout, || async {
        let Some(el) = s.find(css).await? else {
            return Ok(None);
        };
        let text = s.text(&el).await?;
        Ok((!text.trim().is_empty()).then_some(text))
    })
    .await
}

async fn click(s: &Session, css: &str) -> Result<()> {
    let el = wait_for(&format!("`{css}` to click"), UI_TIMEOUT, || async {
        s.find(css).await
    })
    .await?;
    s.click(&el).await.with_context(|| format!("click `{css}`"))
}

async fn type_into(s: &Session, css: &str, text: &str) -> Result<()> {
    let el = wait_for(&format!("`{css}` to type into"), UI_TIMEOUT, || async {
        s.find(css).await
    })
    .await?;
    s.clear(&el).await?;
    s.send_keys(&el, text).await
}

/// Fill the add-server form and submit it.
async fn add_server(s: &Session, name: &str, dsn: &str) -> Result<()> {
    type_into(s, "[data-testid=server-name]", name).await?;
    type_into(s, "[data-testid=server-dsn]", dsn).await?;
    click(s, "[data-testid=server-add]").await
}

/// The add form's error box once it shows: (code, message, hint).
async fn add_error(s: &Session) -> Result<(String, String, String)> {
    let code = wait_for("the add-server error", UI_TIMEOUT, || async {
        let Some(el) = s.find("[data-testid=add-error]").await? else {
            return Ok(None);
        };
        s.attribute(&el, "data-code").await
    })
    .await?;
    let message = text_of(s, "[data-testid=add-error-message]", UI_TIMEOUT).await?;
    let hint = match s.find("[data-testid=add-error-hint]").await? {
        Some(el) => s.text(&el).await?,
        None => String::new(),
    };
    Ok((code, message, hint))
}

/// WebKitWebDriver's screenshot waits for the page's next paint, which a page at rest never
/// makes (WebKitGTK 2.50 under Xvfb: the request hangs): a hidden pixel repaints for a few
/// seconds meanwhile, then goes.
const KEEP_PAINTING: &str = "
    const d = document.createElement('div');
    d.style.cssText = 'position:fixed;right:0;bottom:0;width:1px;height:1px;pointer-events:none';
    document.body.append(d);
    let n = 0;
    const t = setInterval(() => {
        d.style.background = n++ % 2 ? 'rgba(0,0,0,0.01)' : 'rgba(0,0,0,0.02)';
        if (n > 60) { clearInterval(t); d.remove(); }
    }, 50);";

/// Saves a PNG of what is on screen: WebDriver's screenshot, or the whole X display when the
/// driver cannot take one.
async fn screenshot(s: &Session, display: &str, file: &str) -> Result<PathBuf> {
    let path = artifacts_dir()?.join(file);
    if let Err(e) = s.execute(KEEP_PAINTING, vec![]).await {
        eprintln!("e2e: could not keep the page painting for the screenshot ({e:#})");
    }
    let png = match s.screenshot().await {
        Ok(png) => png,
        Err(e) => {
            eprintln!("e2e: WebDriver screenshot failed ({e:#}); capturing the X display");
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg("xwd -root -silent | convert xwd:- png:-")
                .env("DISPLAY", display)
                .output()
                .context("run xwd | convert (packages x11-apps, imagemagick)")?;
            ensure!(
                out.status.success(),
                "xwd | convert failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        }
    };
    std::fs::write(&path, png).with_context(|| format!("write {}", path.display()))?;
    eprintln!("e2e: screenshot saved to {}", path.display());
    Ok(path)
}

/// tauri-driver on `display` running the app on `data_dir` (its log in artifacts/`log_name`),
/// and a WebDriver session to it. Keep the driver's process group alive while the session is.
async fn open_app(
    display: &str,
    data_dir: &std::path::Path,
    log_name: &str,
) -> Result<(procs::Group, Session, PathBuf)> {
    let data_dir = data_dir.to_str().context("temp path is not UTF-8")?;
    let log = artifacts_dir()?.join(log_name);
    let (driver, driver_url) = procs::tauri_driver(
        &[
            ("DISPLAY", display),
            ("WEBKIT_DISABLE_COMPOSITING_MODE", "1"),
            ("PGANALYTICS_DATA_DIR", data_dir),
            ("PGANALYTICS_LOG", "info"),
        ],
        &log,
    )?;
    let app = env!("CARGO_BIN_EXE_pganalytics-desktop");
    let s = wait_for("tauri-driver to accept a session", UI_TIMEOUT, || async {
        Session::start(&driver_url, app).await.map(Some)
    })
    .await
    .with_context(|| format!("see {}", log.display()))?;
    Ok((driver, s, log))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_panel_adds_and_checks_a_real_server() -> Result<()> {
    // Declaration order is teardown order reversed: the app goes first, then its embedded
    // cluster, its data folder, the display, and last the server it monitored.
    let server = pganalytics_testkit::pg(SERVER_MAJOR)
        .await
        .context("start the PostgreSQL server to register")?;
    let dsn = server.dsn("postgres");
    let (version_num, version): (i32, String) = {
        let pool = server.pool("postgres").await?;
        let row: (String, String) =
            sqlx::query_as("SELECT current_setting('server_version_num'), version()")
                .fetch_one(&pool)
                .await
                .context("read the test server's version")?;
        pool.close().await;
        (row.0.parse()?, row.1)
    };

    let (display, _xvfb) = procs::display()?;
    let data_dir = pganalytics_testkit::temp_dir()?;
    let _stop_repository = StopClustersUnder(data_dir.path().to_path_buf());
    let (_driver, s, log) = open_app(&display, data_dir.path(), "e2e-tauri-driver.log").await?;

    let server_pool = server.pool("postgres").await?;
    let result = drive(&s, &display, &dsn, version_num, &version, &server_pool).await;
    server_pool.close().await;
    if let Err(e) = &result {
        eprintln!("e2e: failed: {e:#}");
        let _ = screenshot(&s, &display, "e2e-failure.png").await;
        eprintln!("e2e: driver and app log: {}", log.display());
    }
    let _ = s.delete().await;
    result
}

async fn drive(
    s: &Session,
    display: &str,
    dsn: &str,
    version_num: i32,
    version: &str,
    server_pool: &sqlx::PgPool,
) -> Result<()> {
    // The window renders before the repository is up; the Servers panel is the default.
    text_of(s, "[data-testid=panel-servers] h1", UI_TIMEOUT).await?;
    let kind = wait_for(
        "the status line to show the repository",
        REPOSITORY_TIMEOUT,
        || async {
            let Some(el) = s.find("[data-testid=status-repo-kind]").await? else {
                if let Some(err) = s.find("[data-testid=status-repo-error]").await? {
                    bail!("the repository failed to open: {}", s.text(&err).await?);
                }
                return Ok(None);
            };
            s.attribute(&el, "data-kind").await
        },
    )
    .await?;
    ensure!(
        kind == "embedded",
        "a fresh data dir must give the embedded repository, the status line says {kind}"
    );
    text_of(s, "[data-testid=list-empty]", UI_TIMEOUT)
        .await
        .context("a fresh repository must list no servers")?;

    // A malformed DSN: the message names the problem, nothing is registered.
    add_server(s, "broken", "host=127.0.0.1 port=54x2").await?;
    let (code, message, hint) = add_error(s).await?;
    ensure!(
        code == "invalid_input",
        "malformed DSN gave code {code}: {message}"
    );
    ensure!(
        message.contains("port") && message.contains("54x2"),
        "the error must name the bad port, it says: {message}"
    );
    ensure!(
        !hint.is_empty(),
        "a malformed DSN needs a hint on what to write"
    );

    // A refused connection (nothing listens on that port).
    let closed_port = procs::free_port()?;
    add_server(
        s,
        "refused",
        &format!(
            "host=127.0.0.1 port={closed_port} user=postgres dbname=postgres connect_timeout=5"
        ),
    )
    .await?;
    let (code, message, _) = wait_for("the refused-connection error", UI_TIMEOUT, || async {
        let e = add_error(s).await?;
        Ok((e.0 != "invalid_input").then_some(e))
    })
    .await?;
    ensure!(
        code == "unreachable",
        "refused connection gave code {code}: {message}"
    );
    ensure!(
        s.find("[data-testid=server-row]").await?.is_none(),
        "failed adds must register nothing"
    );

    // The real server: add, then check.
    add_server(s, SERVER_NAME, dsn).await?;
    let row = format!("[data-testid=server-row][data-server=\"{SERVER_NAME}\"]");
    let shown_dsn = text_of(
        s,
        &format!("{row} [data-testid=server-row-dsn]"),
        UI_TIMEOUT,
    )
    .await
    .context("the added server never appeared in the list")?;
    ensure!(
        shown_dsn.contains("127.0.0.1"),
        "the list must show the server's connection, it shows: {shown_dsn}"
    );
    click(s, &format!("{row} [data-testid=server-check]")).await?;
    let detail = format!("[data-testid=server-detail][data-server=\"{SERVER_NAME}\"]");
    let shown_num = text_of(
        s,
        &format!("{detail} [data-testid=check-version-num]"),
        UI_TIMEOUT,
    )
    .await
    .with_context(|| {
        format!("the check result never showed (look for {detail} [data-testid=check-error])")
    })?;
    ensure!(
        shown_num == version_num.to_string(),
        "the screen shows server_version_num {shown_num}, the server says {version_num}"
    );
    let shown_version = text_of(
        s,
        &format!("{detail} [data-testid=check-version]"),
        UI_TIMEOUT,
    )
    .await?;
    ensure!(
        shown_version == version,
        "the screen shows version `{shown_version}`, the server says `{version}`"
    );
    // The test cluster's role is a superuser: every privilege is there.
    for flag in [
        "check-superuser",
        "check-can-read-stats",
        "check-can-replicate",
    ] {
        let text = text_of(s, &format!("{detail} [data-testid={flag}]"), UI_TIMEOUT).await?;
        ensure!(text == "yes", "{flag} shows `{text}` for a superuser");
    }
    let features = s
        .find_all(&format!("{detail} [data-testid=check-features] tbody tr"))
        .await?;
    ensure!(
        !features.is_empty(),
        "the check must list feature readiness"
    );

    screenshot(s, display, "e2e-servers.png").await?;

    engine_charts(s, display, server_pool).await?;
    click(s, "[data-testid=nav-servers]").await?;
    engine_charts_of_a_server_that_is_down(s, display).await?;

    // Remove it again (with the inline confirmation).
    click(s, &format!("{row} [data-testid=server-remove]")).await?;
    click(s, &format!("{row} [data-testid=server-remove-confirm]")).await?;
    wait_for(
        "the removed server to leave the list",
        UI_TIMEOUT,
        || async { Ok(s.find(&row).await?.is_none().then_some(())) },
    )
    .await?;
    text_of(s, "[data-testid=list-empty]", UI_TIMEOUT).await?;

    // Everything above was recorded: the Audit log panel shows it and verifies it.
    audit::audit_panel(s, display).await
}

/// A server registered while down: the panel shows the collection error with its hint and
/// "no data yet" charts; then the server is removed again. Starts and ends on Servers.
async fn engine_charts_of_a_server_that_is_down(s: &Session, display: &str) -> Result<()> {
    const DOWN: &str = "e2e-down";
    let port = procs::free_port()?;
    click(s, "[data-testid=server-skip-check]").await?;
    add_server(
        s,
        DOWN,
        &format!("host=127.0.0.1 port={port} user=postgres dbname=postgres connect_timeout=5"),
    )
    .await?;
    let row = format!("[data-testid=server-row][data-server=\"{DOWN}\"]");
    text_of(
        s,
        &format!("{row} [data-testid=server-row-name]"),
        UI_TIMEOUT,
    )
    .await?;

    click(s, "[data-testid=nav-charts]").await?;
    wait_for("the down server among the choices", UI_TIMEOUT, || async {
        Ok(s.find(&format!(
            "[data-testid=charts-server] option[value=\"{DOWN}\"]"
        ))
        .await?
        .map(|_| ()))
    })
    .await?;
    let select = s
        .find("[data-testid=charts-server]")
        .await?
        .context("server select")?;
    // Choose it as a person would: the select's value changes and it fires `change`.
    s.execute(
        "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('change'));",
        vec![
            serde_json::json!({ "element-6066-11e4-a52e-4f735466cecf": select.id() }),
            DOWN.into(),
        ],
    )
    .await?;
    let code = wait_for("the collection error", UI_TIMEOUT, || async {
        let Some(el) = s.find("[data-testid=charts-collect-error]").await? else {
            return Ok(None);
        };
        s.attribute(&el, "data-code").await
    })
    .await?;
    ensure!(code == "unreachable", "a closed port gave code {code}");
    let hint = text_of(s, "[data-testid=charts-collect-error-hint]", UI_TIMEOUT).await?;
    ensure!(!hint.trim().is_empty(), "the error needs a hint");
    let fig = wait_for("the checkpoints chart", UI_TIMEOUT, || async {
        s.find("[data-testid=chart-checkpoints]").await
    })
    .await?;
    ensure!(
        s.attribute(&fig, "data-empty").await?.as_deref() == Some("true"),
        "no snapshot of a server that is down: the chart says no data yet"
    );
    screenshot(s, display, "e2e-engine-charts-error.png").await?;

    click(s, "[data-testid=nav-servers]").await?;
    click(s, &format!("{row} [data-testid=server-remove]")).await?;
    click(s, &format!("{row} [data-testid=server-remove-confirm]")).await?;
    wait_for("the down server to leave the list", UI_TIMEOUT, || async {
        Ok(s.find(&row).await?.is_none().then_some(()))
    })
    .await
}

/// Number of `fill="COLOR"` elements in the SVG shown by the chart `id`'s image (0 until it
/// has decoded), read in the page: the image is inert, so its SVG is read from its data URL.
async fn chart_fills(s: &Session, id: &str, color: &str) -> Result<Option<usize>> {
    let value = s
        .execute(
            "const img = document.querySelector(`[data-testid=chart-${arguments[0]}] img`);
             if (!img || !img.complete || img.naturalWidth === 0) return null;
             const svg = decodeURIComponent(img.src.slice(img.src.indexOf(',') + 1));
             if (!svg.startsWith('<svg')) return null;
             return svg.split(`fill=\"${arguments[1]}\"`).length - 1;",
            vec![id.into(), color.into()],
        )
        .await?;
    Ok(value.as_u64().and_then(|n| usize::try_from(n).ok()))
}

/// The Engine charts panel for the added server: it collects by itself (first snapshot at
/// once, the second a few seconds later), draws every chart, and charts the checkpoints the
/// server is made to take meanwhile.
async fn engine_charts(s: &Session, display: &str, server: &sqlx::PgPool) -> Result<()> {
    // Something to chart: writes and a checkpoint before and while the panel collects.
    let work = |pool: sqlx::PgPool| async move {
        for sql in [
            "CREATE TABLE IF NOT EXISTS e2e_churn AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 20000) g",
            "UPDATE e2e_churn SET pad = md5(pad)",
            "CHECKPOINT",
        ] {
            sqlx::query(sql)
                .execute(&pool)
                .await
                .with_context(|| format!("run `{sql}` on the monitored server"))?;
        }
        anyhow::Ok(())
    };
    work(server.clone()).await?;

    click(s, "[data-testid=nav-charts]").await?;
    text_of(s, "[data-testid=panel-charts] h1", UI_TIMEOUT).await?;
    let chosen = wait_for("the server to be chosen", UI_TIMEOUT, || async {
        let Some(el) = s.find("[data-testid=charts-server]").await? else {
            return Ok(None);
        };
        let v = s
            .execute(
                "return arguments[0].value;",
                vec![serde_json::json!({ "element-6066-11e4-a52e-4f735466cecf": el.id() })],
            )
            .await?;
        Ok(v.as_str().filter(|v| !v.is_empty()).map(str::to_string))
    })
    .await?;
    ensure!(
        chosen == SERVER_NAME,
        "the only server must be chosen, the panel shows {chosen}"
    );
    // "Taking a snapshot…" until the first one is in, then how collection goes.
    wait_for(
        "the panel to say that it collects while open",
        UI_TIMEOUT,
        || async {
            let note = text_of(s, "[data-testid=charts-collecting]", UI_TIMEOUT).await?;
            Ok(note.contains("while this panel is open").then_some(()))
        },
    )
    .await?;
    // The first snapshot is in; make the server checkpoint before the next one.
    wait_for("the first snapshot", UI_TIMEOUT, || async {
        let text = text_of(s, "[data-testid=charts-latest]", UI_TIMEOUT).await?;
        Ok(text.starts_with("last snapshot").then_some(()))
    })
    .await?;
    work(server.clone()).await?;
    // Two more requested checkpoints: three in the window outnumber the timed ones, which
    // the advice reports (raise max_wal_size).
    for _ in 0..2 {
        sqlx::query("CHECKPOINT").execute(server).await?;
    }

    // Every chart is there, and the checkpoints chart shows requested checkpoints as bars
    // (the legend swatch is one orange rectangle; bars are more). Snapshots come every 15 s
    // once two exist, so allow for two rounds.
    let bars = wait_for(
        "requested checkpoints drawn in the checkpoints chart",
        Duration::from_secs(45),
        || async {
            let n = chart_fills(s, "checkpoints", "#E07B10").await?;
            Ok(n.filter(|n| *n >= 2))
        },
    )
    .await?;
    eprintln!("e2e: checkpoints chart shows {} requested bar(s)", bars - 1);
    let figures = s.find_all("[data-testid=charts-grid] figure").await?;
    ensure!(figures.len() == 5, "five charts, found {}", figures.len());
    for id in [
        "checkpoints",
        "buffers",
        "archiver",
        "lag_bytes",
        "lag_time",
    ] {
        let fills = wait_for(
            &format!("the `{id}` chart to render"),
            UI_TIMEOUT,
            || async { chart_fills(s, id, "#FFFFFF").await },
        )
        .await?;
        ensure!(fills >= 1, "`{id}` is an SVG with a background");
    }
    let fig = s
        .find("[data-testid=chart-checkpoints]")
        .await?
        .context("checkpoints chart")?;
    ensure!(
        s.attribute(&fig, "data-empty").await?.as_deref() == Some("false"),
        "the checkpoints chart has data after two snapshots"
    );
    let img = s
        .find("[data-testid=chart-checkpoints] img")
        .await?
        .context("checkpoints image")?;
    let alt = s.attribute(&img, "alt").await?.unwrap_or_default();
    ensure!(
        alt.starts_with("Checkpoints"),
        "the checkpoints chart's title is its text alternative: {alt}"
    );
    // No standby: the lag charts say so rather than draw an empty axis.
    let lag = s
        .find("[data-testid=chart-lag_bytes]")
        .await?
        .context("lag chart")?;
    ensure!(s.attribute(&lag, "data-empty").await?.as_deref() == Some("true"));
    // The advice names the setting to change; no collection error for a healthy superuser
    // connection.
    let advice = wait_for("checkpoint advice", Duration::from_secs(45), || async {
        for item in s.find_all("[data-testid=charts-advice-item]").await? {
            let text = s.text(&item).await?;
            if text.contains("max_wal_size") {
                let severity = s.attribute(&item, "data-severity").await?;
                return Ok(Some((severity, text)));
            }
        }
        Ok(None)
    })
    .await?;
    ensure!(
        advice.0.as_deref() == Some("warning"),
        "requested checkpoints are a warning: {advice:?}"
    );
    ensure!(
        s.find("[data-testid=charts-collect-error]")
            .await?
            .is_none(),
        "collection from the test server must not fail"
    );
    screenshot(s, display, "e2e-engine-charts.png").await?;
    Ok(())
}
