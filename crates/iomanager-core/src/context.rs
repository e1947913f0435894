//! The contexts a pipeline hands to an I/O manager: [`OutputContext`] for `handle_output` and
//! [`InputContext`] for `load_input`.
//!
//! Contexts are plain data made by builders; the same structs serve production and tests.
//! Accessors that have nothing to return give [`Error::MissingContext`] or
//! [`Error::InvalidContext`] with Dagster's wording, never a panic.
//!
//! ```
//! use iomanager_core::{OutputContext, InputContext, PartitionsDefinition};
//! let daily = PartitionsDefinition::daily("2024-01-01")?;
//! let out = OutputContext::builder()
//!     .asset_key(["sales", "daily"])
//!     .partitions_def(daily.clone())
//!     .partition("2024-01-02")
//!     .build()?;
//! assert_eq!(out.asset_partition_key()?.to_string(), "2024-01-02");
//!
//! let input = InputContext::builder()
//!     .name("sales")
//!     .upstream_output(out)
//!     .partition_range("2024-01-02", "2024-01-04")
//!     .metadata("allow_missing_partitions", true)
//!     .build()?;
//! assert_eq!(input.asset_partition_keys()?.len(), 3);
//! assert!(input.allow_missing_partitions());
//! # Ok::<(), iomanager_core::Error>(())
//! ```

use std::sync::Arc;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::key::{AssetKey, PartitionKey};
use crate::partitions::{PartitionsDefinition, TimeWindow};
use crate::path::OutputId;

/// Definition metadata: what `Out(metadata=...)`, `AssetIn(metadata=...)` or `@asset(metadata=...)`
/// carry in Dagster (`allow_missing_partitions`, `columns`, `schema`, `partition_expr`, …).
pub type Metadata = serde_json::Map<String, Value>;

/// Dagster's placeholder run id for contexts built outside a run.
pub const EPHEMERAL_RUN_ID: &str = "__EPHEMERAL_RUN_ID";

/// Which partitions a context covers, as given to a builder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionSelection {
    /// These keys, in this order.
    Keys(Vec<PartitionKey>),
    /// All keys from `start` to `end` inclusive, in definition order.
    Range {
        /// First key.
        start: PartitionKey,
        /// Last key (inclusive).
        end: PartitionKey,
    },
}

/// Partition state shared by both contexts.
#[derive(Debug, Clone, Default)]
struct Partitioning {
    def: Option<Arc<PartitionsDefinition>>,
    /// The resolved keys; `None` when the run is not partitioned.
    keys: Option<Vec<PartitionKey>>,
    /// The range as given, when the selection was a range.
    range: Option<(PartitionKey, PartitionKey)>,
}

impl Partitioning {
    fn resolve(
        def: Option<Arc<PartitionsDefinition>>,
        selection: Option<PartitionSelection>,
    ) -> Result<Self> {
        let Some(selection) = selection else {
            return Ok(Self {
                def,
                keys: None,
                range: None,
            });
        };
        match selection {
            PartitionSelection::Keys(keys) => {
                if let Some(def) = &def {
                    for k in &keys {
                        def.validate_key(k)?;
                    }
                }
                Ok(Self {
                    def,
                    keys: Some(keys),
                    range: None,
                })
            }
            PartitionSelection::Range { start, end } => {
                let keys = match &def {
                    Some(d) => d.range(&start, &end)?,
                    None if start == end => vec![start.clone()],
                    None => {
                        return Err(Error::partition(format!(
                            "the range {start}..{end} needs a partitions definition to expand; \
                             set one with .partitions_def(...)"
                        )));
                    }
                };
                Ok(Self {
                    def,
                    keys: Some(keys),
                    range: Some((start, end)),
                })
            }
        }
    }

    /// The same definition with only `key` selected (without copying the other keys: loading
    /// n partitions makes n of these).
    fn single_key(&self, key: PartitionKey) -> Self {
        Self {
            def: self.def.clone(),
            keys: Some(vec![key]),
            range: None,
        }
    }

    /// The asset is partitioned when it has an asset key and a selection (as in Dagster, a
    /// partition key without an asset key does not make the output partitioned).
    fn asset_keys(&self, has_asset: bool) -> Option<&[PartitionKey]> {
        if has_asset {
            self.keys.as_deref()
        } else {
            None
        }
    }

    fn not_partitioned(kind: &str) -> Error {
        Error::invalid_context(format!(
            "Tried to access asset_partition_keys, but the asset is not partitioned ({kind})."
        ))
    }

    fn run_partition_key(&self) -> Result<&PartitionKey> {
        match self.keys.as_deref() {
            Some([one]) => Ok(one),
            Some(keys) => Err(Error::invalid_context(format!(
                "Tried to access partition_key, but the run covers {} partitions.",
                keys.len()
            ))),
            None => Err(Error::invalid_context(
                "Tried to access partition_key on a non-partitioned run.",
            )),
        }
    }

    fn single(&self, asset: Option<&AssetKey>, kind: &str) -> Result<&PartitionKey> {
        let keys = asset.and(self.keys.as_deref()).ok_or_else(|| {
            Error::invalid_context(format!(
                "The {kind} does not correspond to a partitioned asset."
            ))
        })?;
        match keys {
            [one] => Ok(one),
            _ => Err(Error::invalid_context(format!(
                "Tried to access partition key for asset '{}', but the number of {kind} \
                 partitions != 1: '{}' keys; use the partition keys accessor or load_partitions.",
                asset.map(ToString::to_string).unwrap_or_default(),
                keys.len()
            ))),
        }
    }

    fn key_range(&self, has_asset: bool, kind: &str) -> Result<(PartitionKey, PartitionKey)> {
        let keys = self.asset_keys(has_asset).ok_or_else(|| {
            Error::invalid_context(format!(
                "Tried to access asset_partition_key_range, but the asset is not partitioned \
                 ({kind})."
            ))
        })?;
        if let Some(r) = &self.range {
            return Ok(r.clone());
        }
        let (Some(first), Some(last)) = (keys.first(), keys.last()) else {
            return Err(Error::invalid_context(format!(
                "Tried to access asset_partition_key_range, but the {kind} selects no partition."
            )));
        };
        if keys.len() == 1 {
            return Ok((first.clone(), last.clone()));
        }
        let def = self.def.as_deref().ok_or_else(|| {
            Error::invalid_context(format!(
                "Tried to access asset_partition_key_range for {} keys without a partitions \
                 definition.",
                keys.len()
            ))
        })?;
        // Count contiguous runs: consecutive keys must be neighbours in definition order.
        let mut ranges = 1;
        for pair in keys.windows(2) {
            let contiguous = def
                .range(&pair[0], &pair[1])
                .map(|r| r.len() == 2)
                .unwrap_or(false);
            if !contiguous {
                ranges += 1;
            }
        }
        if ranges == 1 {
            Ok((first.clone(), last.clone()))
        } else {
            Err(Error::invalid_context(format!(
                "Tried to access asset_partition_key_range, but there are ({ranges}) key ranges \
                 associated with this {kind}."
            )))
        }
    }

    fn time_window(&self, asset: Option<&AssetKey>, kind: &str) -> Result<TimeWindow> {
        let keys = self.asset_keys(asset.is_some()).ok_or_else(|| {
            Error::invalid_context(format!(
                "Tried to get asset partitions time window for an {kind} that does not \
                 correspond to a partitioned asset."
            ))
        })?;
        let def = self.def.as_deref().ok_or_else(|| {
            Error::invalid_context(
                "Tried to get asset partitions time window for an input that corresponds to a \
                 partitioned asset that is not time-partitioned.",
            )
        })?;
        def.time_window(keys)
    }

    fn def(&self, asset: Option<&AssetKey>) -> Result<&PartitionsDefinition> {
        self.def.as_deref().ok_or_else(|| {
            Error::invalid_context(format!(
                "Attempting to access partitions def for asset {}, but it is not partitioned",
                asset
                    .map(ToString::to_string)
                    .unwrap_or_else(|| "(none)".into())
            ))
        })
    }
}

fn missing(what: &str, ctx: &str) -> Error {
    Error::MissingContext {
        message: format!(
            "Attempting to access {what}, but it was not provided when constructing the {ctx}"
        ),
    }
}

fn no_asset(kind: &str) -> Error {
    Error::MissingContext {
        message: format!(
            "Attempting to access asset_key, but no asset is associated with this {kind}"
        ),
    }
}

/// What one value of a context is stored under: an asset (with at most one partition), or an
/// op output's identity. Managers compute their storage location from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address<'a> {
    /// An asset, and its partition when the asset is partitioned.
    Asset {
        /// The asset key.
        key: &'a AssetKey,
        /// The one partition, if any.
        partition: Option<&'a PartitionKey>,
    },
    /// An op output (no asset key).
    Op(OutputId),
}

fn address_of<'a>(
    asset: Option<&'a AssetKey>,
    partitions: Option<&'a [PartitionKey]>,
    op: impl FnOnce() -> Result<OutputId>,
    too_many: impl FnOnce(&AssetKey, usize) -> Error,
) -> Result<Address<'a>> {
    let Some(key) = asset else {
        return Ok(Address::Op(op()?));
    };
    match partitions {
        None => Ok(Address::Asset {
            key,
            partition: None,
        }),
        Some([one]) => Ok(Address::Asset {
            key,
            partition: Some(one),
        }),
        Some(keys) => Err(too_many(key, keys.len())),
    }
}

/// What `handle_output` is told about the output it stores.
#[derive(Debug, Clone)]
pub struct OutputContext {
    asset_key: Option<AssetKey>,
    step_key: Option<String>,
    name: Option<String>,
    run_id: String,
    mapping_key: Option<String>,
    version: Option<String>,
    partitioning: Partitioning,
    definition_metadata: Metadata,
}

impl OutputContext {
    /// A builder; run id defaults to [`EPHEMERAL_RUN_ID`].
    pub fn builder() -> OutputContextBuilder {
        OutputContextBuilder::default()
    }

    /// True when the output is an asset.
    pub fn has_asset_key(&self) -> bool {
        self.asset_key.is_some()
    }

    /// The asset key, or an error when the output is an op output.
    pub fn asset_key(&self) -> Result<&AssetKey> {
        self.asset_key.as_ref().ok_or_else(|| no_asset("output"))
    }

    /// The step key.
    pub fn step_key(&self) -> Result<&str> {
        self.step_key
            .as_deref()
            .ok_or_else(|| missing("step_key", "OutputContext"))
    }

    /// The output name.
    pub fn name(&self) -> Result<&str> {
        self.name
            .as_deref()
            .ok_or_else(|| missing("name", "OutputContext"))
    }

    /// The run that produced the output.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The dynamic output's mapping key.
    pub fn mapping_key(&self) -> Option<&str> {
        self.mapping_key.as_deref()
    }

    /// The output version (selects the `versioned_outputs` layout).
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// Definition metadata of the output or asset.
    pub fn definition_metadata(&self) -> &Metadata {
        &self.definition_metadata
    }

    /// True when the run is partitioned (a partition selection was given).
    pub fn has_partition_key(&self) -> bool {
        self.partitioning.keys.is_some()
    }

    /// The run's single partition key.
    pub fn partition_key(&self) -> Result<&PartitionKey> {
        self.partitioning.run_partition_key()
    }

    /// True when the output is a partitioned asset (asset key and a partition selection).
    pub fn has_asset_partitions(&self) -> bool {
        self.partitioning.asset_keys(self.has_asset_key()).is_some()
    }

    /// The asset partitions this output covers, in selection order.
    pub fn asset_partition_keys(&self) -> Result<&[PartitionKey]> {
        self.partitioning
            .asset_keys(self.has_asset_key())
            .ok_or_else(|| Partitioning::not_partitioned("output"))
    }

    /// The one asset partition this output covers; an error when there are more or none.
    pub fn asset_partition_key(&self) -> Result<&PartitionKey> {
        self.partitioning.single(self.asset_key.as_ref(), "output")
    }

    /// The contiguous key range this output covers.
    pub fn asset_partition_key_range(&self) -> Result<(PartitionKey, PartitionKey)> {
        self.partitioning.key_range(self.has_asset_key(), "output")
    }

    /// The asset's partitions definition.
    pub fn asset_partitions_def(&self) -> Result<&PartitionsDefinition> {
        self.partitioning.def(self.asset_key.as_ref())
    }

    /// The time window the selected partitions cover (end exclusive).
    pub fn asset_partitions_time_window(&self) -> Result<TimeWindow> {
        self.partitioning
            .time_window(self.asset_key.as_ref(), "output")
    }

    /// Dagster's `get_identifier()`: `[run_id, step_key, name(, mapping_key)]`, or
    /// `["versioned_outputs", version, step_key, name]` with a version.
    pub fn get_identifier(&self) -> Result<Vec<String>> {
        self.output_id()?.identifier()
    }

    /// Dagster's `get_asset_identifier()`: the asset path plus the single partition key.
    pub fn get_asset_identifier(&self) -> Result<Vec<String>> {
        let key = self.asset_key()?;
        let mut parts = key.path().to_vec();
        if self.has_asset_partitions() {
            parts.push(self.asset_partition_key()?.to_string());
        }
        Ok(parts)
    }

    /// The op-output identity the path layout needs.
    pub fn output_id(&self) -> Result<OutputId> {
        Ok(OutputId {
            run_id: self.run_id.clone(),
            step_key: self.step_key()?.to_owned(),
            name: self.name()?.to_owned(),
            mapping_key: self.mapping_key.clone(),
            version: self.version.clone(),
        })
    }

    /// What this output is stored under. An output spanning several partitions has no single
    /// address: store it with `handle_output_partitions` (one object per partition).
    pub fn address(&self) -> Result<Address<'_>> {
        address_of(
            self.asset_key.as_ref(),
            self.partitioning.asset_keys(self.has_asset_key()),
            || self.output_id(),
            |key, n| {
                Error::invalid_context(format!(
                    "the output of asset '{key}' spans {n} partitions; a single value cannot be \
                     stored for several partitions. Pass a map of partition to value to \
                     handle_output_partitions (one object each), or select one partition."
                ))
            },
        )
    }

    /// A copy of this context that covers only `key` (used to store one partition of a
    /// multi-partition output).
    pub fn for_partition(&self, key: PartitionKey) -> Self {
        Self {
            asset_key: self.asset_key.clone(),
            step_key: self.step_key.clone(),
            name: self.name.clone(),
            run_id: self.run_id.clone(),
            mapping_key: self.mapping_key.clone(),
            version: self.version.clone(),
            partitioning: self.partitioning.single_key(key),
            definition_metadata: self.definition_metadata.clone(),
        }
    }
}

/// What `load_input` is told about the input it loads.
#[derive(Debug, Clone)]
pub struct InputContext {
    name: Option<String>,
    asset_key: Option<AssetKey>,
    partitioning: Partitioning,
    definition_metadata: Metadata,
    upstream_output: Option<Arc<OutputContext>>,
}

impl InputContext {
    /// A builder. The asset key and partitions definition default to the upstream output's.
    pub fn builder() -> InputContextBuilder {
        InputContextBuilder::default()
    }

    /// The input name.
    pub fn name(&self) -> Result<&str> {
        self.name
            .as_deref()
            .ok_or_else(|| missing("name", "InputContext"))
    }

    /// True when the input is an asset.
    pub fn has_asset_key(&self) -> bool {
        self.asset_key.is_some()
    }

    /// The upstream asset key.
    pub fn asset_key(&self) -> Result<&AssetKey> {
        self.asset_key.as_ref().ok_or_else(|| no_asset("input"))
    }

    /// Definition metadata of the input (`allow_missing_partitions`, `columns`, …).
    pub fn definition_metadata(&self) -> &Metadata {
        &self.definition_metadata
    }

    /// `allow_missing_partitions` from the definition metadata (default false).
    pub fn allow_missing_partitions(&self) -> bool {
        self.definition_metadata
            .get("allow_missing_partitions")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// The output that produced this input.
    pub fn upstream_output(&self) -> Result<&OutputContext> {
        self.upstream_output
            .as_deref()
            .ok_or_else(|| missing("upstream_output", "InputContext"))
    }

    /// True when the run is partitioned.
    pub fn has_partition_key(&self) -> bool {
        self.partitioning.keys.is_some()
    }

    /// The run's single partition key.
    pub fn partition_key(&self) -> Result<&PartitionKey> {
        self.partitioning.run_partition_key()
    }

    /// True when the input loads partitions of a partitioned asset.
    pub fn has_asset_partitions(&self) -> bool {
        self.partitioning.asset_keys(self.has_asset_key()).is_some()
    }

    /// The upstream partitions to load, in selection order.
    pub fn asset_partition_keys(&self) -> Result<&[PartitionKey]> {
        self.partitioning
            .asset_keys(self.has_asset_key())
            .ok_or_else(|| Partitioning::not_partitioned("input"))
    }

    /// The one partition to load; an error when there are more or none.
    pub fn asset_partition_key(&self) -> Result<&PartitionKey> {
        self.partitioning.single(self.asset_key.as_ref(), "input")
    }

    /// The contiguous key range to load.
    pub fn asset_partition_key_range(&self) -> Result<(PartitionKey, PartitionKey)> {
        self.partitioning.key_range(self.has_asset_key(), "input")
    }

    /// The upstream asset's partitions definition.
    pub fn asset_partitions_def(&self) -> Result<&PartitionsDefinition> {
        self.partitioning.def(self.asset_key.as_ref())
    }

    /// The time window of the partitions to load (end exclusive).
    pub fn asset_partitions_time_window(&self) -> Result<TimeWindow> {
        self.partitioning
            .time_window(self.asset_key.as_ref(), "input")
    }

    /// The upstream output's identifier.
    pub fn get_identifier(&self) -> Result<Vec<String>> {
        match &self.upstream_output {
            Some(up) => up.get_identifier(),
            None => Err(Error::invalid_context(
                "InputContext.upstream_output not defined. Cannot compute an identifier",
            )),
        }
    }

    /// The asset path plus the single partition key.
    pub fn get_asset_identifier(&self) -> Result<Vec<String>> {
        let key = self.asset_key()?;
        let mut parts = key.path().to_vec();
        if self.has_asset_partitions() {
            parts.push(self.asset_partition_key()?.to_string());
        }
        Ok(parts)
    }

    /// What this input loads from: the upstream asset (with its one partition), or the
    /// upstream op output. An input selecting several partitions has no single address: load it
    /// with `load_partitions`.
    pub fn address(&self) -> Result<Address<'_>> {
        address_of(
            self.asset_key.as_ref(),
            self.partitioning.asset_keys(self.has_asset_key()),
            || self.upstream_output()?.output_id(),
            |key, n| {
                Error::invalid_context(format!(
                    "the input of asset '{key}' selects {n} partitions; load_input returns one \
                     value. Call load_partitions to get them as a map ordered as the selection."
                ))
            },
        )
    }

    /// A copy of this context that loads only `key`.
    pub fn for_partition(&self, key: PartitionKey) -> Self {
        Self {
            name: self.name.clone(),
            asset_key: self.asset_key.clone(),
            partitioning: self.partitioning.single_key(key),
            definition_metadata: self.definition_metadata.clone(),
            upstream_output: self.upstream_output.clone(),
        }
    }
}

/// Builds an [`OutputContext`]; see [`OutputContext::builder`].
#[derive(Debug, Default)]
#[must_use]
pub struct OutputContextBuilder {
    asset_key: Option<Result<AssetKey>>,
    step_key: Option<String>,
    name: Option<String>,
    run_id: Option<String>,
    mapping_key: Option<String>,
    version: Option<String>,
    partitions_def: Option<Arc<PartitionsDefinition>>,
    selection: Option<PartitionSelection>,
    metadata: Metadata,
}

/// Converts what builders accept as an asset key.
fn to_asset_key<K>(key: K) -> Result<AssetKey>
where
    K: TryInto<AssetKey>,
    K::Error: Into<Error>,
{
    key.try_into().map_err(Into::into)
}

macro_rules! partition_setters {
    () => {
        /// The partitions definition of the asset.
        pub fn partitions_def(mut self, def: impl Into<Arc<PartitionsDefinition>>) -> Self {
            self.partitions_def = Some(def.into());
            self
        }

        /// Selects one partition.
        pub fn partition(mut self, key: impl Into<PartitionKey>) -> Self {
            self.selection = Some(PartitionSelection::Keys(vec![key.into()]));
            self
        }

        /// Selects several partitions, in this order (none is allowed: an empty selection).
        pub fn partitions<I, P>(mut self, keys: I) -> Self
        where
            I: IntoIterator<Item = P>,
            P: Into<PartitionKey>,
        {
            let keys = keys.into_iter().map(Into::into).collect();
            self.selection = Some(PartitionSelection::Keys(keys));
            self
        }

        /// Selects all partitions from `start` to `end` inclusive, in definition order.
        pub fn partition_range(
            mut self,
            start: impl Into<PartitionKey>,
            end: impl Into<PartitionKey>,
        ) -> Self {
            self.selection = Some(PartitionSelection::Range {
                start: start.into(),
                end: end.into(),
            });
            self
        }

        /// Sets the partition selection as a value.
        pub fn selection(mut self, selection: PartitionSelection) -> Self {
            self.selection = Some(selection);
            self
        }

        /// Adds one definition-metadata entry.
        pub fn metadata(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
            self.metadata.insert(key.into(), value.into());
            self
        }

        /// Replaces the definition metadata.
        pub fn definition_metadata(mut self, metadata: Metadata) -> Self {
            self.metadata = metadata;
            self
        }
    };
}

impl OutputContextBuilder {
    /// The asset key: `"a/b"`, `["a", "b"]`, a `Vec<String>` or an [`AssetKey`].
    pub fn asset_key<K>(mut self, key: K) -> Self
    where
        K: TryInto<AssetKey>,
        K::Error: Into<Error>,
    {
        self.asset_key = Some(to_asset_key(key));
        self
    }

    /// The step key.
    pub fn step_key(mut self, step_key: impl Into<String>) -> Self {
        self.step_key = Some(step_key.into());
        self
    }

    /// The output name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The run id (default [`EPHEMERAL_RUN_ID`]).
    pub fn run_id(mut self, run_id: impl Into<String>) -> Self {
        self.run_id = Some(run_id.into());
        self
    }

    /// The dynamic output's mapping key.
    pub fn mapping_key(mut self, mapping_key: impl Into<String>) -> Self {
        self.mapping_key = Some(mapping_key.into());
        self
    }

    /// The output version.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    partition_setters!();

    /// Validates and builds the context: the asset key must be valid, each selected key must
    /// belong to the partitions definition, and a range expands in definition order.
    pub fn build(self) -> Result<OutputContext> {
        let asset_key = self.asset_key.transpose()?;
        let partitioning = Partitioning::resolve(self.partitions_def, self.selection)?;
        Ok(OutputContext {
            asset_key,
            step_key: self.step_key,
            name: self.name,
            run_id: self.run_id.unwrap_or_else(|| EPHEMERAL_RUN_ID.to_owned()),
            mapping_key: self.mapping_key,
            version: self.version,
            partitioning,
            definition_metadata: self.metadata,
        })
    }
}

/// Builds an [`InputContext`]; see [`InputContext::builder`].
#[derive(Debug, Default)]
#[must_use]
pub struct InputContextBuilder {
    name: Option<String>,
    asset_key: Option<Result<AssetKey>>,
    partitions_def: Option<Arc<PartitionsDefinition>>,
    selection: Option<PartitionSelection>,
    metadata: Metadata,
    upstream_output: Option<Arc<OutputContext>>,
}

impl InputContextBuilder {
    /// The input name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The upstream asset key (defaults to the upstream output's).
    pub fn asset_key<K>(mut self, key: K) -> Self
    where
        K: TryInto<AssetKey>,
        K::Error: Into<Error>,
    {
        self.asset_key = Some(to_asset_key(key));
        self
    }

    /// The output this input reads.
    pub fn upstream_output(mut self, upstream: impl Into<Arc<OutputContext>>) -> Self {
        self.upstream_output = Some(upstream.into());
        self
    }

    /// Sets `allow_missing_partitions` in the definition metadata.
    pub fn allow_missing_partitions(self, allow: bool) -> Self {
        self.metadata("allow_missing_partitions", allow)
    }

    partition_setters!();

    /// Validates and builds the context. Without an explicit asset key or partitions
    /// definition, the upstream output's are used.
    pub fn build(self) -> Result<InputContext> {
        let asset_key = match self.asset_key.transpose()? {
            Some(k) => Some(k),
            None => self
                .upstream_output
                .as_ref()
                .and_then(|u| u.asset_key.clone()),
        };
        let def = self.partitions_def.or_else(|| {
            self.upstream_output
                .as_ref()
                .and_then(|u| u.partitioning.def.clone())
        });
        let partitioning = Partitioning::resolve(def, self.selection)?;
        Ok(InputContext {
            name: self.name,
            asset_key,
            partitioning,
            definition_metadata: self.metadata,
            upstream_output: self.upstream_output,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn daily() -> PartitionsDefinition {
        PartitionsDefinition::daily("2024-01-01").unwrap()
    }

    #[test]
    fn output_defaults_and_identifier() {
        let ctx = OutputContext::builder()
            .step_key("s")
            .name("o")
            .build()
            .unwrap();
        assert_eq!(ctx.run_id(), EPHEMERAL_RUN_ID);
        assert_eq!(
            ctx.get_identifier().unwrap(),
            ["__EPHEMERAL_RUN_ID", "s", "o"]
        );
        let ctx = OutputContext::builder()
            .step_key("s")
            .name("o")
            .run_id("r")
            .mapping_key("mk")
            .build()
            .unwrap();
        assert_eq!(ctx.get_identifier().unwrap(), ["r", "s", "o", "mk"]);
        let ctx = OutputContext::builder()
            .step_key("s")
            .name("o")
            .version("v1")
            .build()
            .unwrap();
        assert_eq!(
            ctx.get_identifier().unwrap(),
            ["versioned_outputs", "v1", "s", "o"]
        );
    }

    #[test]
    fn version_with_mapping_key_is_an_error() {
        let ctx = OutputContext::builder()
            .step_key("s")
            .name("o")
            .version("v")
            .mapping_key("m")
            .build()
            .unwrap();
        let err = ctx.get_identifier().unwrap_err();
        assert!(
            err.to_string()
                .contains("Mapping key and version both provided"),
            "{err}"
        );
    }

    #[test]
    fn missing_accessors_say_what_is_missing() {
        let ctx = OutputContext::builder().build().unwrap();
        let cases = [
            (
                ctx.step_key().unwrap_err(),
                "Attempting to access step_key, but it was not provided when constructing the OutputContext",
            ),
            (
                ctx.name().unwrap_err(),
                "Attempting to access name, but it was not provided when constructing the OutputContext",
            ),
            (
                ctx.asset_key().unwrap_err(),
                "Attempting to access asset_key, but no asset is associated with this output",
            ),
            (
                ctx.partition_key().unwrap_err(),
                "Tried to access partition_key on a non-partitioned run.",
            ),
        ];
        for (err, text) in cases {
            assert_eq!(err.to_string(), text);
        }
        assert_eq!(
            ctx.asset_partition_keys().unwrap_err().kind(),
            ErrorKind::InvalidContext
        );
        assert!(
            ctx.asset_partitions_def()
                .unwrap_err()
                .to_string()
                .contains("not partitioned")
        );
        let input = InputContext::builder().build().unwrap();
        assert_eq!(
            input.get_identifier().unwrap_err().to_string(),
            "InputContext.upstream_output not defined. Cannot compute an identifier"
        );
        assert_eq!(
            input.name().unwrap_err().to_string(),
            "Attempting to access name, but it was not provided when constructing the InputContext"
        );
        assert_eq!(
            input.asset_key().unwrap_err().to_string(),
            "Attempting to access asset_key, but no asset is associated with this input"
        );
        assert!(input.upstream_output().is_err());
    }

    #[test]
    fn partition_without_asset_key_is_not_an_asset_partition() {
        let ctx = OutputContext::builder()
            .step_key("s")
            .name("o")
            .partition("p")
            .build()
            .unwrap();
        assert!(ctx.has_partition_key());
        assert!(!ctx.has_asset_partitions());
        assert_eq!(ctx.partition_key().unwrap().to_string(), "p");
    }

    #[test]
    fn range_expands_in_definition_order_and_gives_time_window() {
        let ctx = OutputContext::builder()
            .asset_key("a")
            .partitions_def(daily())
            .partition_range("2024-01-02", "2024-01-04")
            .build()
            .unwrap();
        let keys: Vec<String> = ctx
            .asset_partition_keys()
            .unwrap()
            .iter()
            .map(|k| k.to_string())
            .collect();
        assert_eq!(keys, ["2024-01-02", "2024-01-03", "2024-01-04"]);
        let w = ctx.asset_partitions_time_window().unwrap();
        assert_eq!(w.start.to_rfc3339(), "2024-01-02T00:00:00+00:00");
        assert_eq!(w.end.to_rfc3339(), "2024-01-05T00:00:00+00:00");
        let (s, e) = ctx.asset_partition_key_range().unwrap();
        assert_eq!(
            (s.to_string(), e.to_string()),
            ("2024-01-02".into(), "2024-01-04".into())
        );
        let err = ctx.asset_partition_key().unwrap_err();
        assert!(err.to_string().contains("!= 1"), "{err}");
    }

    #[test]
    fn range_without_def_needs_equal_ends() {
        let err = OutputContext::builder()
            .asset_key("a")
            .partition_range("x", "y")
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Partition);
        let ok = OutputContext::builder()
            .asset_key("a")
            .partition_range("x", "x")
            .build()
            .unwrap();
        assert_eq!(ok.asset_partition_key().unwrap().to_string(), "x");
    }

    #[test]
    fn invalid_selection_is_rejected_at_build() {
        let err = OutputContext::builder()
            .asset_key("a")
            .partitions_def(daily())
            .partition("not-a-date")
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Partition, "{err}");
        let err = OutputContext::builder().asset_key("").build().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidKey);
    }

    #[test]
    fn non_contiguous_keys_have_no_single_range() {
        let ctx = OutputContext::builder()
            .asset_key("a")
            .partitions_def(daily())
            .partitions(["2024-01-01", "2024-01-03"])
            .build()
            .unwrap();
        let err = ctx.asset_partition_key_range().unwrap_err();
        assert!(err.to_string().contains("(2) key ranges"), "{err}");
    }

    #[test]
    fn static_partitions_have_no_time_window() {
        let def = PartitionsDefinition::static_keys(["a", "b"]).unwrap();
        let ctx = OutputContext::builder()
            .asset_key("x")
            .partitions_def(def)
            .partition("a")
            .build()
            .unwrap();
        let err = ctx.asset_partitions_time_window().unwrap_err();
        assert!(err.to_string().contains("not time-partitioned"), "{err}");
    }

    #[test]
    fn input_inherits_from_upstream() {
        let up = OutputContext::builder()
            .asset_key(["a", "b"])
            .partitions_def(daily())
            .step_key("s")
            .name("result")
            .build()
            .unwrap();
        let input = InputContext::builder()
            .upstream_output(up)
            .partitions(["2024-01-01", "2024-01-02"])
            .allow_missing_partitions(true)
            .build()
            .unwrap();
        assert_eq!(input.asset_key().unwrap().to_string(), "a/b");
        assert!(input.has_asset_partitions());
        assert!(input.allow_missing_partitions());
        assert_eq!(
            input.get_identifier().unwrap(),
            ["__EPHEMERAL_RUN_ID", "s", "result"]
        );
        let one = input.for_partition("2024-01-02".into());
        assert_eq!(
            one.get_asset_identifier().unwrap(),
            ["a", "b", "2024-01-02"]
        );
    }

    #[test]
    fn addresses() {
        let op = OutputContext::builder()
            .step_key("s")
            .name("o")
            .build()
            .unwrap();
        assert!(matches!(op.address().unwrap(), Address::Op(id) if id.step_key == "s"));
        let one = OutputContext::builder()
            .asset_key("a")
            .partition("p")
            .build()
            .unwrap();
        let Address::Asset { key, partition } = one.address().unwrap() else {
            panic!()
        };
        assert_eq!(
            (key.to_string(), partition.map(|p| p.to_string())),
            ("a".into(), Some("p".into()))
        );
        let two = OutputContext::builder()
            .asset_key("a")
            .partitions(["p", "q"])
            .build()
            .unwrap();
        assert!(
            two.address()
                .unwrap_err()
                .to_string()
                .contains("handle_output_partitions")
        );
        let input = InputContext::builder()
            .asset_key("a")
            .partitions(["p", "q"])
            .build()
            .unwrap();
        assert!(
            input
                .address()
                .unwrap_err()
                .to_string()
                .contains("load_partitions")
        );
        let orphan = InputContext::builder().name("x").build().unwrap();
        assert_eq!(
            orphan.address().unwrap_err().kind(),
            ErrorKind::MissingContext
        );
    }

    #[test]
    fn empty_selection_is_partitioned_with_no_keys() {
        let input = InputContext::builder()
            .asset_key("a")
            .partitions(Vec::<String>::new())
            .build()
            .unwrap();
        assert!(input.has_asset_partitions());
        assert!(input.asset_partition_keys().unwrap().is_empty());
    }
}
