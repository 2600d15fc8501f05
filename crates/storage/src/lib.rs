//! ferrolog storage: Kafka's on-disk log format — segments, indexes, checkpoints, recovery.
//!
//! Nothing here knows about the network protocol or the broker.

pub mod batch;
pub mod checkpoint;
pub mod cleaner;
pub mod epoch_cache;
pub mod error;
pub mod fs;
pub mod index;
pub mod log;
pub mod log_config;
pub mod marker;
pub mod producer_state;
pub mod segment;
pub mod snapshot;
pub mod validator;

pub use cleaner::CleanStats;
pub use error::{BatchError, Result, StorageError};
pub use log::{AppendResult, Log, LogConfig, LogOpenOptions, ReadBound, ReadResult};
pub use segment::FileSlice;
