//! yibao's load lab (`yibao-lab`): the benchmarks of BENCHMARKS.md, the channel load generator
//! the chaos and simulation runs drive, and the soak. It links the operator binary's library
//! (`yibao`: configuration, connection, demo data, channel setup) and the server; the operator
//! binary links none of it.

pub mod bench;
pub mod bench_reconcile;
pub mod cli;
pub mod load;
pub mod soak;
