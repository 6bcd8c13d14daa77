//! `docs/model-format.md` against the code: the layer tag table lists exactly the layer variants
//! the code writes, with the tag postcard gives each and the fields in the order they are
//! encoded, and the page names the current format version.

use autoencoder_core::model::{Activation, Layer, Quant, Weights, FORMAT_VERSION};

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

/// The rows of the page's layer table: (tag, variant, field names in order).
fn page_rows() -> Vec<(u8, String, Vec<String>)> {
    let start = PAGE
        .find("`Layer`, by variant index")
        .expect("the page has no layer table");
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
    let rows = page_rows();
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
