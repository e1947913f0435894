//! A blocking facade for callers without an async runtime.
//!
//! The library never starts a runtime inside async code. [`BlockingIoManager`] is the one
//! place that owns one: a small current-thread runtime, created when the facade is built, and
//! only usable from outside any runtime (calling it from async code is an error, not a
//! deadlock or a panic).

use std::sync::Arc;

use crate::context::{InputContext, OutputContext};
use crate::error::{Error, Result};
use crate::manager::{IoManager, PartitionMap};
use crate::receipt::OutputReceipt;

/// Runs any [`IoManager`] from synchronous code.
///
/// ```no_run
/// use std::sync::Arc;
/// use iomanager_core::{BlockingIoManager, IoManager, OutputContext};
/// fn store(manager: Arc<dyn IoManager<Vec<u8>>>) -> iomanager_core::Result<()> {
///     let blocking = BlockingIoManager::new(manager)?;
///     let ctx = OutputContext::builder().asset_key("raw").build()?;
///     let receipt = blocking.handle_output(&ctx, vec![1, 2, 3])?;
///     println!("{receipt}");
///     Ok(())
/// }
/// ```
pub struct BlockingIoManager<T> {
    inner: Arc<dyn IoManager<T>>,
    runtime: tokio::runtime::Runtime,
}

impl<T: Send + 'static> BlockingIoManager<T> {
    /// Wraps `inner`, creating the facade's runtime. Fails inside an async runtime.
    pub fn new(inner: Arc<dyn IoManager<T>>) -> Result<Self> {
        Self::not_in_runtime()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Runtime {
                message: format!("cannot start a runtime: {e}"),
            })?;
        Ok(Self { inner, runtime })
    }

    fn not_in_runtime() -> Result<()> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::Runtime {
                message: "the blocking facade was called from inside an async runtime; call the \
                          async IoManager methods with .await instead"
                    .into(),
            });
        }
        Ok(())
    }

    fn block_on<F: std::future::Future>(&self, fut: F) -> Result<F::Output> {
        Self::not_in_runtime()?;
        Ok(self.runtime.block_on(fut))
    }

    /// Blocking [`IoManager::handle_output`].
    pub fn handle_output(&self, ctx: &OutputContext, value: T) -> Result<OutputReceipt> {
        self.block_on(self.inner.handle_output(ctx, value))?
    }

    /// Blocking [`IoManager::handle_output_partitions`].
    pub fn handle_output_partitions(
        &self,
        ctx: &OutputContext,
        values: PartitionMap<T>,
    ) -> Result<PartitionMap<OutputReceipt>> {
        self.block_on(self.inner.handle_output_partitions(ctx, values))?
    }

    /// Blocking [`IoManager::load_input`].
    pub fn load_input(&self, ctx: &InputContext) -> Result<T> {
        self.block_on(self.inner.load_input(ctx))?
    }

    /// Blocking [`IoManager::load_partitions`].
    pub fn load_partitions(&self, ctx: &InputContext) -> Result<PartitionMap<T>> {
        self.block_on(self.inner.load_partitions(ctx))?
    }
}

impl<T> std::fmt::Debug for BlockingIoManager<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingIoManager").finish_non_exhaustive()
    }
}
