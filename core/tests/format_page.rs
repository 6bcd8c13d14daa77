//! `docs/model-format.md` against the code: the body table lists the body's fields in the order
//! they are encoded; the layer tag table and the input scaling table list exactly the variants
//! the code writes, with the index postcard gives each and the fields in the order they are
//! encoded; and the page names the current format version.

use autoencoder_core::model::{Activation, Anomaly, InputScaling, Layer, ModelBody, Quant, Weights, FORMAT_VERSION};
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

const PAGE: &str = include_str!("../../docs/model-format.md");

/// One of every layer variant. The match in [`variant_and_fields`] has no wildcard, so a new
/// variant does not compile until it is listed there and here.
fn one_of_each() -> Vec<Layer<'static>> {
    let q = Quant {
        scale: 0.5,
        zero_point: 0,
    };
    let w = Weights {
        weights: &[1][..],
        weight_scales: &[0, 0, 0, 0][..],
        bias: &[0, 0, 0, 0][..],
        multipliers: &[0, 0, 0, 0][..],
        shifts: &[0][..],
        output: q,
    };
    vec![
        Layer::FullyConnected {
            inputs: 1,
            outputs: 1,
            params: w,
        },
        Layer::Conv2d {
            height: 1,
            width: 1,
            in_channels: 1,
            out_channels: 1,
            kernel: 1,
            params: w,
        },
        Layer::MaxPool2d {
            height: 2,
            width: 2,
            channels: 1,
        },
        Layer::Table {
            activation: Activation::Logistic,
            table: &[0; 256][..],
            output: q,
        },
        Layer::TopK { k: 1 },
        Layer::FullyConnectedLeakyRelu {
            inputs: 1,
            outputs: 1,
            slope: 0.01,
            params: w,
            negative_multipliers: &[0, 0, 0, 0][..],
            negative_shifts: &[0][..],
        },
        Layer::Conv2dLeakyRelu {
            height: 1,
            width: 1,
            in_channels: 1,
            out_channels: 1,
            kernel: 1,
            slope: 0.01,
            params: w,
            negative_multipliers: &[0, 0, 0, 0][..],
            negative_shifts: &[0][..],
        },
    ]
}

/// The variant's name and its fields in declaration (= encoding) order.
fn variant_and_fields(layer: &Layer<'_>) -> (&'static str, &'static [&'static str]) {
    match layer {
        Layer::FullyConnected { .. } => ("FullyConnected", &["inputs", "outputs", "params"]),
        Layer::Conv2d { .. } => (
            "Conv2d",
            &["height", "width", "in_channels", "out_channels", "kernel", "params"],
        ),
        Layer::MaxPool2d { .. } => ("MaxPool2d", &["height", "width", "channels"]),
        Layer::Table { .. } => ("Table", &["activation", "table", "output"]),
        Layer::TopK { .. } => ("TopK", &["k"]),
        Layer::FullyConnectedLeakyRelu { .. } => (
            "FullyConnectedLeakyRelu",
            &[
                "inputs",
                "outputs",
                "slope",
                "params",
                "negative_multipliers",
                "negative_shifts",
            ],
        ),
        Layer::Conv2dLeakyRelu { .. } => (
            "Conv2dLeakyRelu",
            &[
                "height",
                "width",
                "in_channels",
                "out_channels",
                "kernel",
                "slope",
                "params",
                "negative_multipliers",
                "negative_shifts",
            ],
        ),
    }
}

/// One of every input scaling variant, and its name and fields in encoding order (the match
/// has no wildcard, as in [`variant_and_fields`]).
fn scalings() -> Vec<(InputScaling<'static>, &'static str, &'static [&'static str])> {
    let one = &[0u8, 0, 128, 63][..];
    [
        InputScaling::None,
        InputScaling::Unit,
        InputScaling::MinMax {
            offset: one,
            divisor: one,
        },
        InputScaling::Standard {
            offset: one,
            divisor: one,
        },
    ]
    .into_iter()
    .map(|scaling| {
        let (name, fields): (&str, &[&str]) = match scaling {
            InputScaling::None => ("None", &[]),
            InputScaling::Unit => ("Unit", &[]),
            InputScaling::MinMax { .. } => ("MinMax", &["offset", "divisor"]),
            InputScaling::Standard { .. } => ("Standard", &["offset", "divisor"]),
        };
        (scaling, name, fields)
    })
    .collect()
}

/// The rows of the page's table that follows the line starting with `heading`: (index,
/// variant, field names in order).
fn page_rows(heading: &str) -> Vec<(u8, String, Vec<String>)> {
    let start = PAGE
        .find(heading)
        .unwrap_or_else(|| panic!("the page has no table after {heading:?}"));
    let mut rows = Vec::new();
    for line in PAGE[start..].lines().skip(1) {
        let line = line.trim();
        if line.is_empty() && !rows.is_empty() {
            break;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let Some(tag) = cells.first().and_then(|c| c.parse::<u8>().ok()) else {
            continue;
        };
        let variant = cells[1].trim_matches('`').to_string();
        // Fields are `name: type` items separated by commas (parentheses hold remarks).
        let fields = cells[2]
            .split('`')
            .skip(1)
            .step_by(2)
            .filter_map(|item| item.split_once(':').map(|(name, _)| name.trim().to_string()))
            .collect();
        rows.push((tag, variant, fields));
    }
    rows
}

#[test]
fn the_tag_table_is_the_codes() {
    let rows = page_rows("`Layer`, by variant index");
    let layers = one_of_each();
    assert_eq!(
        rows.len(),
        layers.len(),
        "the page lists {} layer tags, the code has {}: {rows:?}",
        rows.len(),
        layers.len()
    );
    for layer in &layers {
        let mut buf = [0u8; 1024];
        let encoded = postcard::to_slice(layer, &mut buf).expect("encodes");
        let tag = encoded[0];
        let (variant, fields) = variant_and_fields(layer);
        let row = rows
            .iter()
            .find(|(t, _, _)| *t == tag)
            .unwrap_or_else(|| panic!("tag {tag} ({variant}) is not on the page"));
        assert_eq!(row.1, variant, "tag {tag}: page says {}, code says {variant}", row.1);
        assert_eq!(
            row.2, fields,
            "tag {tag} ({variant}): the page's fields differ from the code's"
        );
    }
}

#[test]
fn the_page_names_the_current_version() {
    let header = format!("currently **{FORMAT_VERSION}**");
    assert!(PAGE.contains(&header), "the page does not say {header}");
    let row = format!("\n| {FORMAT_VERSION} |");
    assert!(
        PAGE.contains(&row),
        "the page's version table has no row for {FORMAT_VERSION}"
    );
}

#[test]
fn the_scaling_table_is_the_codes() {
    let rows = page_rows("`InputScaling`, by variant index");
    let scalings = scalings();
    assert_eq!(rows.len(), scalings.len(), "the page's scaling rows: {rows:?}");
    for (scaling, variant, fields) in &scalings {
        let mut buf = [0u8; 64];
        let index = postcard::to_slice(scaling, &mut buf).expect("encodes")[0];
        let row = rows
            .iter()
            .find(|(i, _, _)| *i == index)
            .unwrap_or_else(|| panic!("index {index} ({variant}) is not on the page"));
        assert_eq!(
            row.1, *variant,
            "index {index}: page says {}, code says {variant}",
            row.1
        );
        assert_eq!(row.2, *fields, "index {index} ({variant}): the page's fields differ");
    }
}

/// The keys of a JSON object, in the order they appear.
struct Keys(Vec<String>);

impl<'de> serde::Deserialize<'de> for Keys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct InOrder;
        impl<'de> Visitor<'de> for InOrder {
            type Value = Keys;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
                let mut keys = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    map.next_value::<IgnoredAny>()?;
                    keys.push(key);
                }
                Ok(Keys(keys))
            }
        }
        deserializer.deserialize_map(InOrder)
    }
}

#[test]
fn the_body_table_is_the_fields_in_encoding_order() {
    // Serde writes a struct's fields in declaration order, which is postcard's encoding order.
    let body: ModelBody<'_> = ModelBody {
        name: "n",
        source: "",
        float_test_mse: 0.0,
        input_shape: &[1, 0, 0, 0],
        input_scaling: InputScaling::None,
        input: Quant {
            scale: 1.0,
            zero_point: 0,
        },
        code_after: 1,
        layers: heapless::Vec::new(),
        anomaly: Anomaly::derive(
            Quant {
                scale: 1.0,
                zero_point: 0,
            },
            Quant {
                scale: 1.0,
                zero_point: 0,
            },
        )
        .unwrap(),
    };
    let json = serde_json::to_string(&body).expect("serializes");
    let code: Keys = serde_json::from_str(&json).expect("an object");
    let start = PAGE
        .find("`ModelBody`, in encoding order")
        .expect("the page has no body table");
    let page: Vec<String> = PAGE[start..]
        .lines()
        .skip(1)
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.split('|').nth(1))
        .map(str::trim)
        .filter(|c| c.starts_with('`'))
        .map(|c| c.trim_matches('`').to_string())
        .collect();
    assert_eq!(page, code.0, "the page's body fields differ from the code's");
}
