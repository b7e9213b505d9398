//! For the benchmark: the database part and the core part of verification, timed apart.
use super::rows::{read_chunks, PersonalCheck, RowCheck};
use super::*;

/// Read events `from..=to` as verification does (COPY text), into memory.
pub async fn read(pool: &PgPool, from: i64, to: i64) -> Result<Vec<Vec<u8>>> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let reader = tokio::spawn(read_chunks(pool.clone(), from, to, tx));
    let mut chunks = Vec::new();
    while let Some(chunk) = rx.recv().await {
        chunks.push(chunk?.2);
    }
    reader.abort();
    Ok(chunks)
}

/// Recompute every event's hashes and check the chain links, on every core; returns the
/// number of events that are intact.
pub fn check(chunks: &[Vec<u8>]) -> usize {
    let mut previous: Option<String> = None;
    let mut intact = 0;
    for raw in chunks {
        let lines: Vec<&[u8]> = raw
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        let rows: Vec<RowCheck> = lines
            .into_par_iter()
            .filter_map(|l| RowCheck::of(l).ok())
            .collect();
        for row in rows {
            if row.self_consistent()
                && row.stored_previous == previous
                && matches!(row.personal, PersonalCheck::Matches)
            {
                intact += 1;
            }
            previous = Some(row.stored_hash);
        }
    }
    intact
}
