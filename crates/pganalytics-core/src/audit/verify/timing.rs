//! For the benchmark: the database part and the core part of verification, timed apart.
use super::rows::{actor_names, read_chunk, split_rows, ActorNames, PersonalCheck, RowCheck};
use super::*;

/// Events read as verification reads them, held in memory.
pub struct Read {
    chunks: Vec<Vec<u8>>,
    actors: ActorNames,
}

/// Read events `from..=to` as verification does (binary COPY, `IN_FLIGHT` chunks at once).
pub async fn read(pool: &PgPool, from: i64, to: i64) -> Result<Read> {
    let actors = actor_names(pool).await?;
    let chunks = futures_util::stream::iter(chunks_of(from, to))
        .map(|(next, upto)| read_chunk(pool.clone(), next, upto))
        .buffered(IN_FLIGHT)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
    Ok(Read { chunks, actors })
}

/// Recompute every event's hashes and check the chain links, on every core; returns the
/// number of events that are intact.
pub fn check(read: &Read) -> usize {
    let mut previous: Option<String> = None;
    let mut intact = 0;
    for raw in &read.chunks {
        let rows: Vec<RowCheck> = split_rows(raw)
            .unwrap_or_default()
            .par_iter()
            .filter_map(|fields| RowCheck::of(fields, &read.actors).ok())
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
