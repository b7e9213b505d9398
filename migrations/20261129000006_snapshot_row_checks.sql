-- Snapshot rows: drop the per-row `server_id` foreign keys of the sn_stat_* tables.
--
-- Every sn_stat_* row already references its `sn_snapshot` (snap_id, ON DELETE CASCADE), and
-- `sn_snapshot` references the monitored server (ON DELETE CASCADE): removing a server or
-- pruning snapshots still deletes every row. The second check per row was pure cost: a
-- snapshot of a PostgreSQL 16–18 server stores dozens of sn_stat_io rows, and each foreign key
-- fires a lookup per row inside the snapshot's transaction (measured: ≈ 1.1 ms per 60 rows with
-- both keys, 0.08 ms without), the largest share of the snapshot latency.
-- `server_id` stays on every row, written from the same value as sn_snapshot.server_id in the
-- same statement, for the dashboards' simple per-server queries.
ALTER TABLE sn_stat_bgwriter DROP CONSTRAINT sn_stat_bgwriter_server_id_fkey;
ALTER TABLE sn_stat_archiver DROP CONSTRAINT sn_stat_archiver_server_id_fkey;
ALTER TABLE sn_stat_replication DROP CONSTRAINT sn_stat_replication_server_id_fkey;
ALTER TABLE sn_stat_wal_receiver DROP CONSTRAINT sn_stat_wal_receiver_server_id_fkey;
ALTER TABLE sn_stat_replication_slots DROP CONSTRAINT sn_stat_replication_slots_server_id_fkey;
ALTER TABLE sn_stat_wal DROP CONSTRAINT sn_stat_wal_server_id_fkey;
ALTER TABLE sn_stat_io DROP CONSTRAINT sn_stat_io_server_id_fkey;
