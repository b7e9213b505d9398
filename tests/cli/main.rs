//! Integration tests of the `pganalytics` command: the real binary, real PostgreSQL servers,
//! exit statuses and output as a user or a script sees them. One binary; a module per area.

mod audit;
mod backup;
mod commands;
mod metrics;
mod serve;
mod storage;
mod support;
