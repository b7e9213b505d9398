//! Just enough of the W3C WebDriver protocol (JSON over HTTP) to drive the app through
//! tauri-driver: sessions, CSS lookups, clicks, typing, text, attributes, screenshots.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::time::Duration;

/// Key of an element reference in WebDriver responses.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Session {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`
    url: String,
}

#[derive(Clone, Debug)]
pub struct Element(String);

impl Element {
    /// The WebDriver reference, to pass the element to [`Session::execute`].
    pub fn id(&self) -> &str {
        &self.0
    }
}

impl Session {
    /// `POST /session` asking tauri-driver to launch `application`.
    pub async fn start(driver_url: &str, application: &str) -> Result<Session> {
        let http = reqwest::Client::builder()
            // Every command returns quickly; a hang means the driver is stuck.
            .timeout(Duration::from_secs(60))
            .build()?;
        let body = json!({
            "capabilities": { "alwaysMatch": { "tauri:options": { "application": application } } }
        });
        let value = send(
            &http,
            reqwest::Method::POST,
            &format!("{driver_url}/session"),
            Some(body),
        )
        .await
        .context("create a WebDriver session (launch the app)")?;
        let id = value["sessionId"]
            .as_str()
            .with_context(|| format!("no sessionId in the new-session response: {value}"))?;
        Ok(Session {
            http,
            url: format!("{driver_url}/session/{id}"),
        })
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value> {
        send(&self.http, method, &format!("{}{path}", self.url), body).await
    }

    /// All elements matching a CSS selector (empty when none: no error to catch).
    pub async fn find_all(&self, css: &str) -> Result<Vec<Element>> {
        let value = self
            .cmd(
                reqwest::Method::POST,
                "/elements",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await
            .with_context(|| format!("find elements `{css}`"))?;
        let list = value
            .as_array()
            .with_context(|| format!("not a list: {value}"))?;
        list.iter()
            .map(|e| {
                e[ELEMENT_KEY]
                    .as_str()
                    .map(|id| Element(id.to_string()))
                    .with_context(|| format!("not an element reference: {e}"))
            })
            .collect()
    }

    pub async fn find(&self, css: &str) -> Result<Option<Element>> {
        Ok(self.find_all(css).await?.into_iter().next())
    }

    pub async fn text(&self, el: &Element) -> Result<String> {
        let v = self
            .cmd(
                reqwest::Method::GET,
                &format!("/element/{}/text", el.0),
                None,
            )
            .await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    pub async fn attribute(&self, el: &Element, name: &str) -> Result<Option<String>> {
        let v = self
            .cmd(
                reqwest::Method::GET,
                &format!("/element/{}/attribute/{name}", el.0),
                None,
            )
            .await?;
        Ok(v.as_str().map(str::to_string))
    }

    pub async fn click(&self, el: &Element) -> Result<()> {
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{}/click", el.0),
            Some(json!({})),
        )
        .await?;
        Ok(())
    }

    pub async fn clear(&self, el: &Element) -> Result<()> {
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{}/clear", el.0),
            Some(json!({})),
        )
        .await?;
        Ok(())
    }

    pub async fn send_keys(&self, el: &Element, text: &str) -> Result<()> {
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{}/value", el.0),
            Some(json!({ "text": text })),
        )
        .await?;
        Ok(())
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page and returns its
    /// value: for what CSS selectors cannot tell, such as whether an image has decoded.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
        .context("execute a script in the page")
    }

    /// PNG of the window.
    pub async fn screenshot(&self) -> Result<Vec<u8>> {
        use base64::Engine;
        let v = self.cmd(reqwest::Method::GET, "/screenshot", None).await?;
        let b64 = v.as_str().context("screenshot is not a string")?;
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .context("decode the screenshot")
    }

    /// Ends the session; the driver closes the app.
    pub async fn delete(&self) -> Result<()> {
        self.cmd(reqwest::Method::DELETE, "", None).await?;
        Ok(())
    }
}

async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Result<Value> {
    let mut req = http.request(method.clone(), url);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("{method} {url}"))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let parsed: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if !status.is_success() {
        let v = &parsed["value"];
        bail!(
            "{method} {url}: HTTP {status}: {} {}",
            v["error"].as_str().unwrap_or(""),
            v["message"].as_str().unwrap_or(&text)
        );
    }
    Ok(parsed["value"].clone())
}
