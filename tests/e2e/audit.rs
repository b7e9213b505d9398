//! The Audit log panel after the servers flow: the `server.added` event of the registered
//! server is in the table (the failed adds are marked), its detail shows the recorded values
//! and hashes, a signing key is created when there is none, and "Verify now" finds the log
//! intact against the checkpoint that key signed. Screenshots: `audit-event-detail.png` and
//! `audit-panel.png`.

use super::{click, screenshot, text_of, type_into, wait_for, SERVER_NAME, UI_TIMEOUT};
use crate::webdriver::{Element, Session};
use anyhow::{bail, ensure, Context, Result};
use std::time::Duration;

/// Verification of a small log takes well under a second; key generation (RSA-2048) a few.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(120);

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

pub async fn audit_panel(s: &Session, display: &str) -> Result<()> {
    click(s, "[data-testid=nav-audit]").await?;
    text_of(s, "[data-testid=panel-audit] h1", UI_TIMEOUT).await?;
    let events = text_of(s, "[data-testid=audit-status-events]", UI_TIMEOUT)
        .await
        .context("the status strip never showed the number of events")?;
    ensure!(
        events.trim() != "0",
        "the servers flow was audited, the panel says {events} events"
    );

    // Only the server events: the filter is applied by the core.
    type_into(s, "[data-testid=audit-filter-event_type]", "server.added").await?;
    click(s, "[data-testid=audit-filter-apply]").await?;
    // The unfiltered first page may still be on screen: wait for the filtered one.
    wait_for("the filtered events", UI_TIMEOUT, || async {
        if s.find("[data-testid=audit-events][data-loading]")
            .await?
            .is_some()
        {
            return Ok(None);
        }
        let total = text_of(s, "[data-testid=audit-total]", UI_TIMEOUT).await?;
        Ok(total.contains("matching").then_some(()))
    })
    .await?;
    let added = format!(
        "[data-testid=audit-row][data-event-type=\"server.added\"][data-resource=\"{SERVER_NAME}\"][data-outcome=success]"
    );
    let row = wait_for(
        "the server.added event in the table",
        UI_TIMEOUT,
        || async { s.find(&added).await },
    )
    .await?;
    let rows = s.find_all("[data-testid=audit-row]").await?;
    for r in &rows {
        let kind = s.attribute(r, "data-event-type").await?;
        ensure!(
            kind.as_deref() == Some("server.added"),
            "the event-type filter let through {kind:?}"
        );
    }
    // The malformed and the refused adds were recorded as failures, and marked so.
    ensure!(
        s.find("[data-testid=audit-row][data-outcome=failure] .outcome-failure")
            .await?
            .is_some(),
        "the failed adds must show as failures ({} rows)",
        rows.len()
    );
    let total = text_of(s, "[data-testid=audit-total]", UI_TIMEOUT).await?;
    ensure!(
        total.contains(&rows.len().to_string()),
        "the total ({total}) must count the {} matching rows",
        rows.len()
    );

    // Its detail: the recorded values, who, from where, and the chain's hashes. The row is
    // scrolled into view first (WebKitWebDriver does not always scroll inside the panel's
    // scrolling area) and clicked on a cell (it refuses clicks on the row element itself).
    s.execute(
        "arguments[0].scrollIntoView({ block: 'center' });",
        vec![serde_json::json!({ "element-6066-11e4-a52e-4f735466cecf": row.id() })],
    )
    .await?;
    click(s, &format!("{added} [data-testid=audit-row-event-type]"))
        .await
        .context("click the server.added row")?;
    shown_or_error(
        s,
        "the event detail",
        UI_TIMEOUT,
        "[data-testid=audit-detail][data-loaded]",
        "[data-testid=audit-detail-error]",
    )
    .await?;
    let field = |name: &'static str| async move {
        text_of(s, &format!("[data-testid=audit-detail-{name}]"), UI_TIMEOUT).await
    };
    ensure!(field("event-type").await? == "server.added");
    ensure!(field("resource-id").await? == SERVER_NAME);
    ensure!(field("source").await? == "desktop");
    ensure!(field("action").await? == "create");
    let actor = field("actor").await?;
    ensure!(
        actor.contains("os_user"),
        "the desktop acts as the OS user: {actor}"
    );
    let old = s
        .find("[data-testid=audit-detail-old]")
        .await?
        .context("the before values")?;
    ensure!(
        s.attribute(&old, "data-empty").await?.as_deref() == Some("true"),
        "nothing existed before a server was added"
    );
    let name_line = s
        .find("[data-testid=audit-detail-new] [data-key=name]")
        .await?
        .context("the after values list the server's name")?;
    ensure!(s.text(&name_line).await?.contains(SERVER_NAME));
    ensure!(
        s.attribute(&name_line, "data-diff").await?.as_deref() == Some("added"),
        "a new key is marked as added"
    );
    let dsn_line = s
        .find("[data-testid=audit-detail-new] [data-key=dsn]")
        .await?
        .context("the after values hold the connection string")?;
    ensure!(
        s.text(&dsn_line).await?.contains("127.0.0.1"),
        "the recorded DSN names the server's host"
    );
    for hash in ["content-hash", "previous-hash"] {
        let text = field(hash).await?;
        ensure!(
            text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit()),
            "{hash} is a hex SHA-256: {text}"
        );
    }
    screenshot(s, display, "audit-event-detail.png").await?;
    click(s, "[data-testid=audit-detail-close]").await?;
    wait_for("the detail to close", UI_TIMEOUT, || async {
        Ok(s.find("[data-testid=audit-detail]")
            .await?
            .is_none()
            .then_some(()))
    })
    .await?;
    click(s, "[data-testid=audit-filter-clear]").await?;

    // A fresh repository has no signing key: create one from the call to action.
    let fingerprint = if s.find("[data-testid=audit-keygen]").await?.is_some() {
        click(s, "[data-testid=audit-keygen]").await?;
        let el = shown_or_error(
            s,
            "the new signing key",
            VERIFY_TIMEOUT,
            "[data-testid=audit-keygen-fingerprint]",
            "[data-testid=audit-keygen-error]",
        )
        .await
        .context(
            "the private key goes to the OS keyring: run the test under scripts/with-keyring",
        )?;
        s.text(&el).await?
    } else {
        let key = s
            .find("[data-testid=audit-status-key] [data-fingerprint]")
            .await?
            .context("a signing key is configured but the status strip shows none")?;
        s.attribute(&key, "data-fingerprint")
            .await?
            .unwrap_or_default()
    };
    ensure!(
        fingerprint.starts_with("sha256:"),
        "a key fingerprint: {fingerprint}"
    );
    let key_status = wait_for("the status strip to show the key", UI_TIMEOUT, || async {
        let Some(el) = s
            .find("[data-testid=audit-status-key] [data-fingerprint]")
            .await?
        else {
            return Ok(None);
        };
        s.attribute(&el, "data-fingerprint").await
    })
    .await?;
    ensure!(key_status == fingerprint, "status shows key {key_status}");
    ensure!(
        s.find("[data-testid=audit-key-cta]").await?.is_none(),
        "no call to action once the key exists"
    );
    let checkpoint = text_of(s, "[data-testid=audit-status-checkpoint]", UI_TIMEOUT).await?;
    ensure!(
        checkpoint.contains(" event"),
        "creating the key signs a checkpoint of what is logged, the strip says: {checkpoint}"
    );

    // Verify now: progress while it runs, then the result.
    click(s, "[data-testid=audit-verify]").await?;
    let result = shown_or_error(
        s,
        "the verification result",
        VERIFY_TIMEOUT,
        "[data-testid=audit-verify-result]",
        "[data-testid=audit-verify-error]",
    )
    .await?;
    let intact = s
        .attribute(&result, "data-intact")
        .await?
        .unwrap_or_default();
    if intact != "true" {
        let text = text_of(s, "[data-testid=audit-verify-result]", UI_TIMEOUT).await?;
        bail!("a log nobody tampered with must verify intact: {text}");
    }
    ensure!(
        s.attribute(&result, "data-signed").await?.as_deref() == Some("true"),
        "with a key, the log is checked against a signed checkpoint, not only its chain"
    );
    let summary = text_of(s, "[data-testid=audit-verify-summary]", UI_TIMEOUT).await?;
    ensure!(
        summary.contains("checked") && summary.contains("events/s"),
        "the result says how much was checked and how fast: {summary}"
    );
    let size = text_of(s, "[data-testid=audit-verify-checkpoint-size]", UI_TIMEOUT).await?;
    ensure!(
        size.starts_with("checkpoint of"),
        "checked against a signed checkpoint: {size}"
    );
    let key = s
        .find("[data-testid=audit-verify-checkpoint-key]")
        .await?
        .context("the checkpoint's key")?;
    ensure!(
        s.attribute(&key, "title").await?.as_deref() == Some(fingerprint.as_str()),
        "the checkpoint was signed by the key just created"
    );
    ensure!(
        s.find("[data-testid=audit-verify-running]")
            .await?
            .is_none(),
        "the progress bar gives way to the result"
    );
    // The table came back unfiltered, with the verification recorded.
    wait_for("the audit.verified event", UI_TIMEOUT, || async {
        s.find("[data-testid=audit-row][data-event-type=\"audit.verified\"]")
            .await
    })
    .await?;
    screenshot(s, display, "audit-panel.png").await?;
    Ok(())
}
