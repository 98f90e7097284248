//! System tests of the chassis and the event backbone: the real binaries, real PostgreSQL, real
//! NATS, real gRPC. One test binary, many modules, to keep link time down.

mod backbone;
mod backbone_faults;
mod chassis;
mod common;
mod idempotency;
mod platform_tables;
mod tls;
mod wake;
