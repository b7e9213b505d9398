//! Charts of engine metrics, drawn here in the core as SVG so that every shell shows the same
//! picture and the PDF reports of a later release embed the very same documents (SVG converts
//! to PDF vector graphics without rasterising).
//!
//! - [`series`] turns a window of stored snapshots into the numbers each chart plots, with the
//!   reset rules of [`crate::metrics::rates`] (a reset or restart is a gap, never a negative
//!   value).
//! - [`svg`] draws one chart with `plotters` (SVG backend only: no font or bitmap libraries).
//! - [`engine`] is the Engine charts panel's data: every chart of a server over a window, the
//!   advice, the newest snapshot time and the collection status.

pub mod series;
pub mod svg;

pub use series::{build, ChartData, ChartKind, Sample, Series};
pub use svg::{render, RenderOptions};

use crate::api::{Chart, EngineCharts};
use crate::error::{Error, Result};
use crate::metrics::report::{self, Window};
use crate::metrics::{advice, rates};
use crate::repository::Repository;
use chrono::{FixedOffset, Utc};

/// Every engine chart of server `name` over the last `since`, with advice and status.
/// `utc_offset_minutes` is the viewer's offset (east of UTC) for the time axes.
pub async fn engine(
    repo: &Repository,
    name: &str,
    since: std::time::Duration,
    utc_offset_minutes: i32,
) -> Result<EngineCharts> {
    let utc_offset = utc_offset_minutes
        .checked_mul(60)
        .and_then(FixedOffset::east_opt)
        .ok_or_else(|| {
            Error::invalid_input(format!(
                "UTC offset of {utc_offset_minutes} minutes is out of range (−1439 to 1439)"
            ))
        })?;
    let server_id = crate::server::id_of(repo, name).await?;
    let now = Utc::now();
    let start = chrono::Duration::from_std(since)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
        .ok_or_else(|| Error::invalid_input("the chart window is too long"))?;
    let mut conn = repo.pool().acquire().await?;
    // Full rows: the lag charts need the replication rows.
    let window = report::load(&mut conn, server_id, Window::Since(start), true).await?;
    let latest = match window.last() {
        Some(last) => Some(last.clone()),
        None => report::load(&mut conn, server_id, Window::Latest, true)
            .await?
            .pop(),
    };
    let status = report::status(&mut conn, server_id).await?;
    drop(conn);

    let points: Vec<_> = window.iter().map(|(_, v)| v.clone()).collect();
    let rates = rates::over(&points);
    let advice = latest
        .as_ref()
        .map(|(_, v)| advice::advise(v, &window, &rates))
        .unwrap_or_default();
    let options = RenderOptions {
        utc_offset,
        ..RenderOptions::default()
    };
    let charts = build(&points, (start, now))
        .iter()
        .map(|data| {
            Ok(Chart {
                id: data.id.to_string(),
                title: data.title.clone(),
                svg: render(data, &options)?,
                width: options.width,
                height: options.height,
                empty_message: data.empty_message.clone(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(EngineCharts {
        server: name.to_string(),
        since: start,
        snapshots_in_window: i32::try_from(window.len()).unwrap_or(i32::MAX),
        latest_snapshot_at: latest.as_ref().map(|(_, v)| v.collected_at),
        server_version_num: latest.as_ref().map(|(_, v)| v.server_version_num),
        in_recovery: latest.as_ref().map(|(_, v)| v.in_recovery),
        charts,
        advice,
        status,
    })
}
