//! Integration tests of the core, against real PostgreSQL servers started by the cluster
//! manager. One binary (one link); a module per area.

mod audit;
mod backup;
mod backup_engine;
mod bindings;
mod boundaries;
mod charts;
mod cluster;
mod grafana;
mod metrics;
mod repository;
mod server;
mod storage;
mod support;
mod token;
