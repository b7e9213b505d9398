//! SQL fragments shared by the panels.

/// Per-second rate of a cumulative counter between consecutive snapshots of one server
/// (window `w`, ordered by time), times `scale`. NULL (a gap in the graph) when the counter
/// went backwards (a crash restart) or its reset time changed (a statistics reset), and for
/// the first snapshot.
pub fn rate(column: &str, reset_key: &str, scale: u32) -> String {
    format!(
        "CASE WHEN {column} >= lag({column}) OVER w AND {reset_key} IS NOT DISTINCT FROM lag({reset_key}) OVER w \
         THEN ({column} - lag({column}) OVER w) * {scale} / NULLIF(EXTRACT(EPOCH FROM timestamp - lag(timestamp) OVER w), 0) END"
    )
}

/// Increase of a cumulative counter since the previous snapshot, with the same NULL rules.
pub fn increase(column: &str, reset_key: &str) -> String {
    format!(
        "CASE WHEN {column} >= lag({column}) OVER w AND {reset_key} IS NOT DISTINCT FROM lag({reset_key}) OVER w \
         THEN {column} - lag({column}) OVER w END"
    )
}

/// What tells a statistics reset in `sn_stat_bgwriter`: on 17+ the checkpointer and
/// pg_stat_io are reset separately from pg_stat_bgwriter.
pub const BGWRITER_RESET: &str = "ROW(stats_reset, checkpointer_stats_reset, io_stats_reset)";

/// A time series of one server's rows of `table`, one column per `(alias, expression)`.
pub fn series(table: &str, columns: &[(&str, String)]) -> String {
    let select = columns
        .iter()
        .map(|(alias, expr)| format!("  {expr} AS \"{alias}\""))
        .collect::<Vec<_>>()
        .join(",\n");
    format!(
        "SELECT timestamp AS \"time\",\n{select}\nFROM {table}\nWHERE server_id = '$server' AND $__timeFilter(timestamp)\nWINDOW w AS (ORDER BY timestamp)\nORDER BY 1"
    )
}
