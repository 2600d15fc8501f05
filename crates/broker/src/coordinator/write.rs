//! The coordinators' write path. Group and transaction state machines live in memory; their
//! records go to a partition of `__consumer_offsets` or `__transaction_state` that this broker
//! leads. A write is two steps: the append (synchronous, local, cheap: it may run under a
//! coordinator's short lock, so nothing can slip in between a check and the append it guards),
//! then the commit, awaited without blocking a runtime thread: in a cluster, until the
//! partition's ISR has the records (its purgatory wakes the waiter); on a single node the append
//! is the commit.
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use crate::partition::Partition;
use crate::Broker;

/// How long a coordinator write waits for the ISR before it fails (the coordinator answers
/// COORDINATOR_NOT_AVAILABLE and the client retries).
pub const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Records appended to an internal partition, not yet known to be committed.
#[must_use = "a coordinator write is done only when it is committed"]
pub(crate) struct InternalWrite {
    /// The partition to wait on (`None` on a single node: nothing to wait for).
    partition: Option<Arc<Partition>>,
    /// The offset the high watermark must pass.
    required: i64,
}

impl InternalWrite {
    /// Waits until the records are committed.
    pub async fn committed(self) -> Result<()> {
        if let Some(p) = self.partition {
            p.wait_for_high_watermark(self.required, COMMIT_TIMEOUT)
                .await?;
        }
        Ok(())
    }
}

impl Broker {
    /// Appends records (one uncompressed batch) to partition `index` of internal topic `topic`
    /// as its leader. The caller awaits `committed` before it answers or applies them.
    pub(crate) fn append_internal_now(
        &self,
        topic: &str,
        index: i32,
        records: &[ferrolog_records::Record],
    ) -> Result<InternalWrite> {
        let partition = self
            .replicas
            .get(topic, index)
            .ok_or_else(|| anyhow::anyhow!("{topic}-{index} is not hosted here"))?;
        let mut batch = ferrolog_records::encode(
            records,
            ferrolog_records::Compression::None,
            Default::default(),
            None,
        )?;
        // a refusal stays a `PartitionError` inside the error, for callers that map it
        let appended = partition.append_as_leader(&mut batch, None, crate::now_ms())?;
        Ok(InternalWrite {
            required: appended.result.last_offset + 1,
            partition: self.quorum.is_some().then_some(partition),
        })
    }

    /// Appends records to an internal partition and waits until they are committed.
    pub(crate) async fn append_internal(
        &self,
        topic: &str,
        index: i32,
        records: &[ferrolog_records::Record],
    ) -> Result<()> {
        self.append_internal_now(topic, index, records)?
            .committed()
            .await
    }
}
