//! `weighted_mode(value, weight)`: the aggregate behind the rate-limit report's `counter`.
//!
//! It returns a struct `{value, weight}`: the value with the largest total weight in the group
//! and that total. Ties go to the smallest value (byte order), a null value after every
//! non-null one, which is exactly what `first_value(value ORDER BY total DESC, value ASC NULLS
//! LAST)` over the per-value totals gives, but in one aggregation and without sorting. Rows
//! with a null weight are ignored; a group with no counted row gives a null value and weight.
//!
//! The weight is `1` per row of `decisions` and `calls` per row of a rollup, so the same plan
//! answers from either. The state of a group is the list of its values with their totals; the
//! values are interned once per accumulator, and most groups hold a single value.
//!
//! In SQL: `weighted_mode(rule, calls)['value']`.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, Int64Builder, LargeStringArray, ListArray,
    ListBuilder, StringArray, StringBuilder, StringViewArray, StructArray,
};
use arrow::datatypes::{DataType, Field, FieldRef, Fields, Int64Type};
use datafusion::common::{exec_err, Result as DfResult, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, Expr, GroupsAccumulator, Signature,
    Volatility,
};
use rustc_hash::FxHashMap;

/// The SQL name of the aggregate.
pub const WEIGHTED_MODE: &str = "weighted_mode";
/// The struct field holding the winning value.
pub const VALUE: &str = "value";
/// The struct field holding the winning value's total weight.
pub const WEIGHT: &str = "weight";

/// The `weighted_mode` aggregate.
pub fn weighted_mode_udaf() -> AggregateUDF {
    AggregateUDF::new_from_impl(WeightedMode {
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

/// `weighted_mode(value, weight)` as an expression.
pub(crate) fn weighted_mode(value: Expr, weight: Expr) -> Expr {
    weighted_mode_udaf().call(vec![value, weight])
}

fn output_fields() -> Fields {
    Fields::from(vec![
        Field::new(VALUE, DataType::Utf8, true),
        Field::new(WEIGHT, DataType::Int64, true),
    ])
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct WeightedMode {
    signature: Signature,
}

impl AggregateUDFImpl for WeightedMode {
    fn name(&self) -> &str {
        WEIGHTED_MODE
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    /// Strings stay as they are, anything else is read as text; the weight becomes Int64.
    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        let [value, weight] = arg_types else {
            return exec_err!(
                "{WEIGHTED_MODE} takes two arguments (value, weight), got {}",
                arg_types.len()
            );
        };
        let value = match value {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => value.clone(),
            _ => DataType::Utf8View,
        };
        if !(weight.is_integer() || weight.is_null()) {
            return exec_err!("{WEIGHTED_MODE}: the weight must be an integer, got {weight}");
        }
        Ok(vec![value, DataType::Int64])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Struct(output_fields()))
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        Ok(Box::new(SingleGroup(Groups::default())))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new(
                format_state_name(args.name, "values"),
                DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
                true,
            )),
            Arc::new(Field::new(
                format_state_name(args.name, "weights"),
                DataType::List(Arc::new(Field::new_list_field(DataType::Int64, true))),
                true,
            )),
        ])
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        _args: AccumulatorArgs,
    ) -> DfResult<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(Groups::default()))
    }
}

const NULL_ID: u32 = u32::MAX;

/// Distinct values by id; a null value is [`NULL_ID`].
#[derive(Default)]
struct Interner {
    ids: FxHashMap<Box<str>, u32>,
    values: Vec<Box<str>>,
    bytes: usize,
}

impl Interner {
    /// The id of `s`; an error past `u32::MAX - 1` distinct values rather than a shared id.
    fn id(&mut self, s: Option<&str>) -> DfResult<u32> {
        let Some(s) = s else { return Ok(NULL_ID) };
        if let Some(&id) = self.ids.get(s) {
            return Ok(id);
        }
        let id = match u32::try_from(self.values.len()) {
            Ok(id) if id != NULL_ID => id,
            _ => return exec_err!("{WEIGHTED_MODE}: more than {NULL_ID} distinct values"),
        };
        self.values.push(s.into());
        self.ids.insert(s.into(), id);
        self.bytes += 2 * s.len();
        Ok(id)
    }

    fn get(&self, id: u32) -> Option<&str> {
        (id != NULL_ID).then(|| &*self.values[id as usize])
    }

    /// Whether `a` sorts before `b`: byte order, null last.
    fn before(&self, a: u32, b: u32) -> bool {
        match (self.get(a), self.get(b)) {
            (Some(a), Some(b)) => a < b,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

/// The totals of one group.
#[derive(Default, Clone)]
enum Slot {
    #[default]
    Empty,
    One(u32, i64),
    Many(Vec<(u32, i64)>),
}

impl Slot {
    fn add(&mut self, id: u32, w: i64) {
        match self {
            Slot::Empty => *self = Slot::One(id, w),
            Slot::One(i, total) if *i == id => *total = total.saturating_add(w),
            Slot::One(i, total) => *self = Slot::Many(vec![(*i, *total), (id, w)]),
            Slot::Many(v) => match v.iter_mut().find(|e| e.0 == id) {
                Some(e) => e.1 = e.1.saturating_add(w),
                None => v.push((id, w)),
            },
        }
    }

    /// The winning value and its total.
    fn best(&self, interner: &Interner) -> Option<(u32, i64)> {
        match self {
            Slot::Empty => None,
            Slot::One(i, w) => Some((*i, *w)),
            Slot::Many(v) => v.iter().copied().reduce(|best, e| {
                if e.1 > best.1 || (e.1 == best.1 && interner.before(e.0, best.0)) {
                    e
                } else {
                    best
                }
            }),
        }
    }

    fn heap_size(&self) -> usize {
        match self {
            Slot::Many(v) => v.capacity() * std::mem::size_of::<(u32, i64)>(),
            _ => 0,
        }
    }
}

impl Slot {
    fn for_each(&self, mut f: impl FnMut(u32, i64)) {
        match self {
            Slot::Empty => {}
            Slot::One(i, w) => f(*i, *w),
            Slot::Many(v) => v.iter().for_each(|&(i, w)| f(i, w)),
        }
    }
}

/// A string column of any of Arrow's three layouts.
enum Strings<'a> {
    Utf8(&'a StringArray),
    Large(&'a LargeStringArray),
    View(&'a StringViewArray),
}

impl<'a> Strings<'a> {
    fn of(array: &'a dyn Array) -> DfResult<Self> {
        Ok(match array.data_type() {
            DataType::Utf8 => Strings::Utf8(array.as_string::<i32>()),
            DataType::LargeUtf8 => Strings::Large(array.as_string::<i64>()),
            DataType::Utf8View => Strings::View(array.as_string_view()),
            other => return exec_err!("{WEIGHTED_MODE}: expected a string value, got {other}"),
        })
    }

    fn get(&self, row: usize) -> Option<&'a str> {
        match self {
            Strings::Utf8(a) => a.is_valid(row).then(|| a.value(row)),
            Strings::Large(a) => a.is_valid(row).then(|| a.value(row)),
            Strings::View(a) => a.is_valid(row).then(|| a.value(row)),
        }
    }
}

fn weights(array: &dyn Array) -> DfResult<&Int64Array> {
    match array.data_type() {
        DataType::Int64 => Ok(array.as_primitive::<Int64Type>()),
        other => exec_err!("{WEIGHTED_MODE}: expected an Int64 weight, got {other}"),
    }
}

/// The accumulator of every group of an aggregation.
#[derive(Default)]
struct Groups {
    interner: Interner,
    slots: Vec<Slot>,
    /// The heap bytes of `slots`' lists, kept up to date so that `size` is O(1).
    heap: usize,
}

impl Groups {
    fn add(&mut self, group: usize, id: u32, w: i64) {
        let slot = &mut self.slots[group];
        let before = slot.heap_size();
        slot.add(id, w);
        self.heap = self.heap + slot.heap_size() - before;
    }

    /// Takes the slots `emit_to` asks for out of the accumulator.
    fn take(&mut self, emit_to: EmitTo) -> Vec<Slot> {
        let slots = emit_to.take_needed(&mut self.slots);
        self.heap -= slots.iter().map(Slot::heap_size).sum::<usize>();
        slots
    }

    fn output(&self, slots: &[Slot]) -> ArrayRef {
        let mut values = StringBuilder::with_capacity(slots.len(), slots.len() * 16);
        let mut totals = Int64Builder::with_capacity(slots.len());
        for slot in slots {
            match slot.best(&self.interner) {
                Some((id, w)) => {
                    values.append_option(self.interner.get(id));
                    totals.append_value(w);
                }
                None => {
                    values.append_null();
                    totals.append_null();
                }
            }
        }
        let columns: Vec<ArrayRef> = vec![Arc::new(values.finish()), Arc::new(totals.finish())];
        Arc::new(StructArray::new(output_fields(), columns, None))
    }

    fn state_of(&self, slots: &[Slot]) -> Vec<ArrayRef> {
        let mut values = ListBuilder::new(StringBuilder::new());
        let mut totals = ListBuilder::new(Int64Builder::new());
        for slot in slots {
            slot.for_each(|id, w| {
                values.values().append_option(self.interner.get(id));
                totals.values().append_value(w);
            });
            values.append(true);
            totals.append(true);
        }
        vec![Arc::new(values.finish()), Arc::new(totals.finish())]
    }
}

fn list(array: &ArrayRef) -> DfResult<&ListArray> {
    match array.data_type() {
        DataType::List(_) => Ok(array.as_list::<i32>()),
        other => exec_err!("{WEIGHTED_MODE}: expected a list state, got {other}"),
    }
}

impl GroupsAccumulator for Groups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> DfResult<()> {
        let [value, weight] = values else {
            return exec_err!("{WEIGHTED_MODE} takes two arguments");
        };
        let strings = Strings::of(value.as_ref())?;
        let weight = weights(weight.as_ref())?;
        self.slots.resize_with(total_num_groups, Slot::default);
        for (row, &group) in group_indices.iter().enumerate() {
            if opt_filter.is_some_and(|f| !f.is_valid(row) || !f.value(row)) || weight.is_null(row)
            {
                continue;
            }
            let id = self.interner.id(strings.get(row))?;
            self.add(group, id, weight.value(row));
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> DfResult<ArrayRef> {
        let slots = self.take(emit_to);
        Ok(self.output(&slots))
    }

    fn state(&mut self, emit_to: EmitTo) -> DfResult<Vec<ArrayRef>> {
        let slots = self.take(emit_to);
        Ok(self.state_of(&slots))
    }

    fn merge_batch(
        &mut self,
        states: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> DfResult<()> {
        let [values, totals] = states else {
            return exec_err!("{WEIGHTED_MODE}: expected two state columns");
        };
        let (values, totals) = (list(values)?, list(totals)?);
        let strings = Strings::of(values.values().as_ref())?;
        let weight = weights(totals.values().as_ref())?;
        self.slots.resize_with(total_num_groups, Slot::default);
        let offsets = values.value_offsets();
        for (row, &group) in group_indices.iter().enumerate() {
            if values.is_null(row) {
                continue;
            }
            for i in offsets[row] as usize..offsets[row + 1] as usize {
                if weight.is_valid(i) {
                    let id = self.interner.id(strings.get(i))?;
                    self.add(group, id, weight.value(i));
                }
            }
        }
        Ok(())
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> DfResult<Vec<ArrayRef>> {
        let [value, weight] = values else {
            return exec_err!("{WEIGHTED_MODE} takes two arguments");
        };
        let strings = Strings::of(value.as_ref())?;
        let weight = weights(weight.as_ref())?;
        let mut out_values = ListBuilder::new(StringBuilder::new());
        let mut out_totals = ListBuilder::new(Int64Builder::new());
        for row in 0..value.len() {
            let skip = opt_filter.is_some_and(|f| !f.is_valid(row) || !f.value(row))
                || weight.is_null(row);
            if !skip {
                out_values.values().append_option(strings.get(row));
                out_totals.values().append_value(weight.value(row));
            }
            out_values.append(true);
            out_totals.append(true);
        }
        Ok(vec![
            Arc::new(out_values.finish()),
            Arc::new(out_totals.finish()),
        ])
    }

    fn size(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.heap
            + self.interner.bytes
            + self.interner.values.capacity() * std::mem::size_of::<Box<str>>() * 3
    }
}

/// The accumulator of an aggregation without groups (and of window frames): group 0.
struct SingleGroup(Groups);

impl std::fmt::Debug for SingleGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeightedModeAccumulator")
            .finish_non_exhaustive()
    }
}

impl SingleGroup {
    fn one_group(&mut self) -> &[Slot] {
        self.0.slots.resize_with(1, Slot::default);
        &self.0.slots[..1]
    }
}

impl Accumulator for SingleGroup {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        let rows = values.first().map_or(0, |v| v.len());
        self.0.update_batch(values, &vec![0; rows], None, 1)
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        let slots = self.one_group().to_vec();
        ScalarValue::try_from_array(&self.0.output(&slots), 0)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + GroupsAccumulator::size(&self.0)
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        let slots = self.one_group().to_vec();
        self.0
            .state_of(&slots)
            .iter()
            .map(|a| ScalarValue::try_from_array(a, 0))
            .collect()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let rows = states.first().map_or(0, |v| v.len());
        self.0.merge_batch(states, &vec![0; rows], 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// Runs `sql` over `t(g, v, w)` (two input partitions) and returns its rows as text.
    async fn run(sql: &str, skip_partial: bool) -> Vec<String> {
        let mut config = SessionConfig::new().with_target_partitions(2);
        if skip_partial {
            // Every partial aggregation hands its rows on as state (`convert_to_state`).
            config = config
                .set_usize(
                    "datafusion.execution.skip_partial_aggregation_probe_rows_threshold",
                    0,
                )
                .set_str(
                    "datafusion.execution.skip_partial_aggregation_probe_ratio_threshold",
                    "0.0",
                );
        }
        let ctx = SessionContext::new_with_config(config);
        ctx.register_udaf(weighted_mode_udaf());
        let rows = ctx
            .sql(
                "SELECT * FROM (VALUES \
               ('a', 'r1', 1), ('a', 'r2', 1), ('a', 'r2', 1), \
               ('b', 'r2', 2), ('b', 'r1', 2), \
               ('c', NULL, 5), ('c', 'r9', 5), \
               ('d', NULL, 3), ('d', 'r1', 1), ('d', 'r1', 1), \
               ('e', 'r1', NULL), \
               ('f', 'r3', 4), ('f', 'r4', 1), ('f', 'r4', 1), ('f', 'r4', 1), ('f', 'r4', 1) \
             ) AS v(g, v, w)",
            )
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        // One row per batch, alternating between two partitions, so that the aggregation
        // sees many batches (its partial phase decides to pass rows on after the first).
        let mut parts = vec![Vec::new(), Vec::new()];
        for batch in &rows {
            for i in 0..batch.num_rows() {
                parts[i % 2].push(batch.slice(i, 1));
            }
        }
        let table = datafusion::datasource::MemTable::try_new(rows[0].schema(), parts).unwrap();
        ctx.register_table("t", Arc::new(table)).unwrap();
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string()
            .lines()
            .filter(|l| l.starts_with('|'))
            .skip(1)
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    }

    const GROUPED: &str = "SELECT g, weighted_mode(v, w)['value'] AS v, \
                           weighted_mode(v, w)['weight'] AS w FROM t GROUP BY g ORDER BY g";

    fn grouped_expected() -> Vec<String> {
        [
            // r2 has 2 to r1's 1.
            "| a | r2 | 2 |",
            // A tie goes to the smaller value.
            "| b | r1 | 2 |",
            // ... and a null value loses every tie.
            "| c | r9 | 5 |",
            // A null value wins on weight.
            "| d | | 3 |",
            // No counted row.
            "| e | | |",
            // Totals, not single rows, decide: r4 4 ties r3 4, r3 is smaller.
            "| f | r3 | 4 |",
        ]
        .map(String::from)
        .to_vec()
    }

    #[tokio::test]
    async fn picks_the_heaviest_value_with_ties_to_the_smallest_and_nulls_last() {
        assert_eq!(run(GROUPED, false).await, grouped_expected());
    }

    #[tokio::test]
    async fn gives_the_same_when_partial_aggregation_passes_rows_as_state() {
        assert_eq!(run(GROUPED, true).await, grouped_expected());
    }

    #[tokio::test]
    async fn works_without_groups_and_as_a_window() {
        let whole = run(
            "SELECT weighted_mode(v, w)['value'], weighted_mode(v, w)['weight'] FROM t",
            false,
        )
        .await;
        // r1: 1 + 2 + 1 + 1 = 5 (the null-weight row is ignored); r2: 1 + 1 + 2 = 4; r4: 4;
        // r9: 5; null: 5 + 3 = 8.
        assert_eq!(whole, vec!["| | 8 |"]);
        let window = run(
            "SELECT DISTINCT g, weighted_mode(v, w) OVER (PARTITION BY g)['value'] AS v \
             FROM t WHERE g IN ('a', 'b') ORDER BY g",
            false,
        )
        .await;
        assert_eq!(window, vec!["| a | r2 |", "| b | r1 |"]);
    }

    #[tokio::test]
    async fn refuses_a_weight_that_is_not_an_integer() {
        let ctx = SessionContext::new();
        ctx.register_udaf(weighted_mode_udaf());
        let err = match ctx.sql("SELECT weighted_mode('x', 1.5)").await {
            Ok(df) => df.collect().await.unwrap_err(),
            Err(e) => e,
        };
        assert!(
            err.to_string().contains("the weight must be an integer"),
            "{err}"
        );
    }
}
