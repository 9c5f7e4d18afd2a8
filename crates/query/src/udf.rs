//! The SQL scalar functions over the tool catalogue: `tool_risk(tool [, server])` and
//! `tool_risk_source(tool [, server])`. The classification itself lives in `catalog.rs`.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use arrow::datatypes::DataType;
use datafusion::common::{exec_err, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};

use crate::catalog::{Catalog, ClassifyCache};

/// Name of the risk-class function.
pub const TOOL_RISK: &str = "tool_risk";
/// Name of the risk-source function.
pub const TOOL_RISK_SOURCE: &str = "tool_risk_source";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Output {
    Risk,
    Source,
}

/// `tool_risk(tool [, server]) -> Utf8` (`destructive | write | read | unknown`, null for a
/// null tool) or `tool_risk_source(...)` (`builtin | catalog | heuristic`).
#[derive(Debug)]
struct ToolRiskUdf {
    catalog: Arc<Catalog>,
    output: Output,
    signature: Signature,
}

impl PartialEq for ToolRiskUdf {
    fn eq(&self, other: &Self) -> bool {
        self.output == other.output && Arc::ptr_eq(&self.catalog, &other.catalog)
    }
}

impl Eq for ToolRiskUdf {}

impl Hash for ToolRiskUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.output.hash(state);
        Arc::as_ptr(&self.catalog).hash(state);
    }
}

/// The `tool_risk` UDF bound to `catalog`.
pub(crate) fn tool_risk_udf(catalog: Arc<Catalog>) -> ScalarUDF {
    ScalarUDF::new_from_impl(ToolRiskUdf::new(catalog, Output::Risk))
}

/// The `tool_risk_source` UDF bound to `catalog`.
pub(crate) fn tool_risk_source_udf(catalog: Arc<Catalog>) -> ScalarUDF {
    ScalarUDF::new_from_impl(ToolRiskUdf::new(catalog, Output::Source))
}

/// The catalogue a `tool_risk`/`tool_risk_source` UDF is bound to (`None` for any other
/// function): what a cluster codec ships with the function.
pub(crate) fn bound_catalog(udf: &ScalarUDF) -> Option<&Arc<Catalog>> {
    udf.inner()
        .downcast_ref::<ToolRiskUdf>()
        .map(|u| &u.catalog)
}

/// The catalogue function called `name` bound to `catalog` (`None` for another name).
pub(crate) fn catalog_udf(name: &str, catalog: Arc<Catalog>) -> Option<ScalarUDF> {
    match name {
        TOOL_RISK => Some(tool_risk_udf(catalog)),
        TOOL_RISK_SOURCE => Some(tool_risk_source_udf(catalog)),
        _ => None,
    }
}

impl ToolRiskUdf {
    fn new(catalog: Arc<Catalog>, output: Output) -> Self {
        Self {
            catalog,
            output,
            signature: Signature::one_of(
                vec![TypeSignature::String(1), TypeSignature::String(2)],
                Volatility::Immutable,
            ),
        }
    }
}

fn to_utf8(array: &ArrayRef) -> DfResult<ArrayRef> {
    Ok(if array.data_type() == &DataType::Utf8 {
        Arc::clone(array)
    } else {
        arrow::compute::cast(array, &DataType::Utf8)?
    })
}

impl ScalarUDFImpl for ToolRiskUdf {
    fn name(&self) -> &str {
        match self.output {
            Output::Risk => TOOL_RISK,
            Output::Source => TOOL_RISK_SOURCE,
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let n = args.number_rows;
        let scalar_only = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let (tools, servers) = match arrays.as_slice() {
            [t] => (to_utf8(t)?, None),
            [t, s] => (to_utf8(t)?, Some(to_utf8(s)?)),
            _ => return exec_err!("{} takes one or two arguments", self.name()),
        };
        let tools = tools.as_string::<i32>();
        let servers = servers.as_ref().map(|s| s.as_string::<i32>());
        let rows = if scalar_only { 1 } else { n };
        let mut cache = ClassifyCache::new(&self.catalog);
        let mut out = StringBuilder::with_capacity(rows, rows * 8);
        for i in 0..rows {
            if tools.is_null(i) {
                out.append_null();
                continue;
            }
            let server = servers.and_then(|s| (!s.is_null(i)).then(|| s.value(i)));
            let c = cache.classify(server, tools.value(i));
            out.append_value(match self.output {
                Output::Risk => c.risk.as_str(),
                Output::Source => c.source.as_str(),
            });
        }
        let array: ArrayRef = Arc::new(out.finish());
        if scalar_only {
            Ok(ColumnarValue::Scalar(
                datafusion::scalar::ScalarValue::try_from_array(&array, 0)?,
            ))
        } else {
            Ok(ColumnarValue::Array(array))
        }
    }
}
