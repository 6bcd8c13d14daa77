//! The TFLite flatbuffer tables this converter writes, and their writer.
//!
//! A `.tflite` file is a flatbuffer (file identifier `TFL3`) whose root is a `Model` table. Only
//! the tables, fields and enum values the converter needs are declared here, each with its field
//! index (its slot) and default as the TFLite schema (`schema.fbs`, schema version 3) defines
//! them; fields left out are absent from the file and read as their defaults. Everything is
//! written with `flatbuffers`' low-level builder (`start_table`, `push_slot`, `end_table`), so
//! no generated code is involved.
//!
//! The types below hold a model in memory, one struct per table; [`Model::to_bytes`] writes it.
//!
//! Alignment: every non-empty buffer's data starts at a multiple of [`DATA_ALIGN`] (16) bytes
//! from the start of the file (TFLite's schema asks for 16, `force_align: 16` on `Buffer.data`),
//! so int32 biases and shape vectors are naturally aligned wherever the file is loaded at a
//! 16-byte aligned address.

use flatbuffers::{FlatBufferBuilder, WIPOffset};

/// The file identifier of a TFLite flatbuffer (bytes 4..8).
pub const FILE_IDENTIFIER: &str = "TFL3";

/// The schema version written to `Model.version`.
pub const SCHEMA_VERSION: u32 = 3;

/// Alignment, from the start of the file, of every buffer's data.
pub const DATA_ALIGN: usize = 16;

/// `TensorType`: the element types used here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i8)]
pub enum TensorType {
    /// 32-bit float (the float side of `QUANTIZE` and `DEQUANTIZE`).
    Float32 = 0,
    /// 32-bit signed integer (biases, shapes).
    Int32 = 2,
    /// 8-bit signed integer (activations, weights).
    Int8 = 9,
}

/// `BuiltinOperator`: the operators used here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum BuiltinOperator {
    /// `CONV_2D`.
    Conv2d = 3,
    /// `DEQUANTIZE` (int8 to float).
    Dequantize = 6,
    /// `FULLY_CONNECTED`.
    FullyConnected = 9,
    /// `LOGISTIC`.
    Logistic = 14,
    /// `MAX_POOL_2D`.
    MaxPool2d = 17,
    /// `RESHAPE`.
    Reshape = 22,
    /// `MAXIMUM`.
    Maximum = 55,
    /// `LEAKY_RELU`.
    LeakyRelu = 98,
    /// `QUANTIZE` (float to int8).
    Quantize = 114,
}

impl BuiltinOperator {
    /// The operator version TFLite's converter writes for the int8 form of the op (TFLite's
    /// `op_version` rules; interpreters that check versions accept the op at this version).
    pub fn int8_version(self) -> i32 {
        match self {
            BuiltinOperator::FullyConnected => 4,
            BuiltinOperator::Conv2d => 3,
            BuiltinOperator::MaxPool2d | BuiltinOperator::Logistic | BuiltinOperator::Maximum => 2,
            BuiltinOperator::LeakyRelu | BuiltinOperator::Reshape => 1,
            // Float to int8, one scale: version 1; int8 to float: version 2.
            BuiltinOperator::Quantize => 1,
            BuiltinOperator::Dequantize => 2,
        }
    }
}

/// `Padding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i8)]
pub enum Padding {
    /// No padding: the window stays inside the input.
    Valid = 1,
}

/// `ActivationFunctionType`: only `NONE` (no fused activation) is written.
pub const ACTIVATION_NONE: i8 = 0;

/// `BuiltinOptions` union type codes.
mod options_type {
    pub const NONE: u8 = 0;
    pub const CONV_2D: u8 = 1;
    pub const POOL_2D: u8 = 5;
    pub const FULLY_CONNECTED: u8 = 8;
    pub const RESHAPE: u8 = 17;
    pub const MAXIMUM_MINIMUM: u8 = 39;
    pub const LEAKY_RELU: u8 = 75;
}

/// The options of an operator (the `builtin_options` union).
#[derive(Clone, Debug, PartialEq)]
pub enum BuiltinOptions {
    /// No options table (`LOGISTIC`).
    None,
    /// `FullyConnectedOptions`: no fused activation, default weights format, `keep_num_dims`
    /// false.
    FullyConnected,
    /// `Conv2DOptions`.
    Conv2d {
        /// Padding.
        padding: Padding,
        /// Stride along the width.
        stride_w: i32,
        /// Stride along the height.
        stride_h: i32,
    },
    /// `Pool2DOptions`.
    Pool2d {
        /// Padding.
        padding: Padding,
        /// Stride along the width.
        stride_w: i32,
        /// Stride along the height.
        stride_h: i32,
        /// Window width.
        filter_width: i32,
        /// Window height.
        filter_height: i32,
    },
    /// `LeakyReluOptions`.
    LeakyRelu {
        /// Slope for negative inputs.
        alpha: f32,
    },
    /// `MaximumMinimumOptions` (an empty table).
    MaximumMinimum,
    /// `ReshapeOptions`.
    Reshape {
        /// The output shape.
        new_shape: Vec<i32>,
    },
}

/// `QuantizationParameters`: affine quantization, per tensor or per channel along
/// `quantized_dimension`.
#[derive(Clone, Debug, PartialEq)]
pub struct Quantization {
    /// One scale, or one per channel.
    pub scale: Vec<f32>,
    /// One zero point, or one per channel.
    pub zero_point: Vec<i64>,
    /// The dimension the per-channel values run along (0 when per tensor).
    pub quantized_dimension: i32,
}

/// `Tensor`.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// What the tensor is (`input`, `layer2.fc.weights`, `code`, ...).
    pub name: String,
    /// Dimensions, outermost first.
    pub shape: Vec<i32>,
    /// Element type.
    pub tensor_type: TensorType,
    /// Index into [`Model::buffers`]: 0 (the empty buffer) for tensors computed at run time.
    pub buffer: u32,
    /// Quantization, if any.
    pub quantization: Option<Quantization>,
}

/// `Operator`.
#[derive(Clone, Debug, PartialEq)]
pub struct Operator {
    /// Index into [`Model::operator_codes`].
    pub opcode_index: u32,
    /// Input tensor indices.
    pub inputs: Vec<i32>,
    /// Output tensor indices.
    pub outputs: Vec<i32>,
    /// The op's options.
    pub options: BuiltinOptions,
}

/// `SubGraph`.
#[derive(Clone, Debug, PartialEq)]
pub struct SubGraph {
    /// The tensors, referred to by index.
    pub tensors: Vec<Tensor>,
    /// Indices of the graph's input tensors.
    pub inputs: Vec<i32>,
    /// Indices of the graph's output tensors.
    pub outputs: Vec<i32>,
    /// The operators, in execution order.
    pub operators: Vec<Operator>,
    /// The graph's name.
    pub name: String,
}

/// `Model`, with one subgraph.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    /// The builtin operators used, in the order [`Operator::opcode_index`] refers to them.
    pub operator_codes: Vec<BuiltinOperator>,
    /// The graph.
    pub subgraph: SubGraph,
    /// What the model is.
    pub description: String,
    /// Raw data of constant tensors; buffer 0 must be empty (the sentinel for tensors without
    /// data).
    pub buffers: Vec<Vec<u8>>,
}

/// Field slots (vtable offsets) of each table, by field index in the schema.
mod slot {
    use flatbuffers::VOffsetT;

    /// The vtable offset of field `index`: after the vtable's two 16-bit lengths, one 16-bit
    /// entry per field.
    const fn f(index: VOffsetT) -> VOffsetT {
        4 + 2 * index
    }

    pub mod model {
        use super::*;
        pub const VERSION: VOffsetT = f(0);
        pub const OPERATOR_CODES: VOffsetT = f(1);
        pub const SUBGRAPHS: VOffsetT = f(2);
        pub const DESCRIPTION: VOffsetT = f(3);
        pub const BUFFERS: VOffsetT = f(4);
    }
    pub mod operator_code {
        use super::*;
        pub const DEPRECATED_BUILTIN_CODE: VOffsetT = f(0);
        pub const VERSION: VOffsetT = f(2);
        pub const BUILTIN_CODE: VOffsetT = f(3);
    }
    pub mod subgraph {
        use super::*;
        pub const TENSORS: VOffsetT = f(0);
        pub const INPUTS: VOffsetT = f(1);
        pub const OUTPUTS: VOffsetT = f(2);
        pub const OPERATORS: VOffsetT = f(3);
        pub const NAME: VOffsetT = f(4);
    }
    pub mod tensor {
        use super::*;
        pub const SHAPE: VOffsetT = f(0);
        pub const TYPE: VOffsetT = f(1);
        pub const BUFFER: VOffsetT = f(2);
        pub const NAME: VOffsetT = f(3);
        pub const QUANTIZATION: VOffsetT = f(4);
    }
    pub mod quantization {
        use super::*;
        pub const SCALE: VOffsetT = f(2);
        pub const ZERO_POINT: VOffsetT = f(3);
        pub const QUANTIZED_DIMENSION: VOffsetT = f(6);
    }
    pub mod operator {
        use super::*;
        pub const OPCODE_INDEX: VOffsetT = f(0);
        pub const INPUTS: VOffsetT = f(1);
        pub const OUTPUTS: VOffsetT = f(2);
        pub const BUILTIN_OPTIONS_TYPE: VOffsetT = f(3);
        pub const BUILTIN_OPTIONS: VOffsetT = f(4);
    }
    pub mod buffer {
        use super::*;
        pub const DATA: VOffsetT = f(0);
    }
    pub mod fully_connected_options {
        use super::*;
        pub const FUSED_ACTIVATION_FUNCTION: VOffsetT = f(0);
        pub const KEEP_NUM_DIMS: VOffsetT = f(2);
    }
    pub mod conv_2d_options {
        use super::*;
        pub const PADDING: VOffsetT = f(0);
        pub const STRIDE_W: VOffsetT = f(1);
        pub const STRIDE_H: VOffsetT = f(2);
        pub const FUSED_ACTIVATION_FUNCTION: VOffsetT = f(3);
        pub const DILATION_W_FACTOR: VOffsetT = f(4);
        pub const DILATION_H_FACTOR: VOffsetT = f(5);
    }
    pub mod pool_2d_options {
        use super::*;
        pub const PADDING: VOffsetT = f(0);
        pub const STRIDE_W: VOffsetT = f(1);
        pub const STRIDE_H: VOffsetT = f(2);
        pub const FILTER_WIDTH: VOffsetT = f(3);
        pub const FILTER_HEIGHT: VOffsetT = f(4);
        pub const FUSED_ACTIVATION_FUNCTION: VOffsetT = f(5);
    }
    pub mod leaky_relu_options {
        use super::*;
        pub const ALPHA: VOffsetT = f(0);
    }
    pub mod reshape_options {
        use super::*;
        pub const NEW_SHAPE: VOffsetT = f(0);
    }
}

/// A finished table, as the builder hands it back.
type TableOffset = WIPOffset<flatbuffers::TableFinishedWIPOffset>;

impl Model {
    /// The model as a `.tflite` flatbuffer.
    ///
    /// # Panics
    /// If the model exceeds the 2 GiB a flatbuffer can hold.
    pub fn to_bytes(&self) -> Vec<u8> {
        let data_len: usize = self.buffers.iter().map(|b| b.len() + DATA_ALIGN + 8).sum();
        let mut fbb = FlatBufferBuilder::with_capacity(data_len + 4096);
        // The flatbuffer is built back to front: the buffers' data first, so it lies at the end
        // of the file, behind the small tables.
        let buffers: Vec<TableOffset> = self.buffers.iter().map(|data| write_buffer(&mut fbb, data)).collect();
        let buffers = fbb.create_vector(&buffers);
        let operator_codes: Vec<TableOffset> = self
            .operator_codes
            .iter()
            .map(|&op| write_operator_code(&mut fbb, op))
            .collect();
        let operator_codes = fbb.create_vector(&operator_codes);
        let subgraph = write_subgraph(&mut fbb, &self.subgraph);
        let subgraphs = fbb.create_vector(&[subgraph]);
        let description = fbb.create_string(&self.description);

        let table = fbb.start_table();
        fbb.push_slot::<u32>(slot::model::VERSION, SCHEMA_VERSION, 0);
        fbb.push_slot_always(slot::model::OPERATOR_CODES, operator_codes);
        fbb.push_slot_always(slot::model::SUBGRAPHS, subgraphs);
        fbb.push_slot_always(slot::model::DESCRIPTION, description);
        fbb.push_slot_always(slot::model::BUFFERS, buffers);
        let root = fbb.end_table(table);

        // `finish` adds the root offset and the file identifier (8 bytes) in front and pads the
        // total to the builder's largest alignment so far (at most 8). Padding here, between the
        // header and the root table (which nothing reads), makes the total a multiple of
        // DATA_ALIGN: data placed at a multiple of DATA_ALIGN from the end of the buffer then
        // lies at a multiple of DATA_ALIGN from its start.
        pad_to(&mut fbb, 8, DATA_ALIGN);
        fbb.finish(root, Some(FILE_IDENTIFIER));
        let bytes = fbb.finished_data().to_vec();
        debug_assert_eq!(bytes.len() % DATA_ALIGN, 0);
        bytes
    }
}

/// Pushes zero bytes until `len` more bytes would end the written part at a multiple of `align`
/// (counted from the end of the buffer, where building started).
fn pad_to(fbb: &mut FlatBufferBuilder<'_>, len: usize, align: usize) {
    while !(fbb.unfinished_data().len() + len).is_multiple_of(align) {
        fbb.push(0u8);
    }
}

/// `Buffer { data }`, the data `DATA_ALIGN`-aligned; an empty buffer has no data field.
fn write_buffer(fbb: &mut FlatBufferBuilder<'_>, data: &[u8]) -> TableOffset {
    let data = (!data.is_empty()).then(|| {
        // The vector's first byte comes `data.len()` bytes before the current head; place that
        // at a multiple of DATA_ALIGN (create_vector then needs no padding of its own, as it
        // aligns to 4).
        pad_to(fbb, data.len(), DATA_ALIGN);
        fbb.create_vector(data)
    });
    let table = fbb.start_table();
    if let Some(data) = data {
        fbb.push_slot_always(slot::buffer::DATA, data);
    }
    fbb.end_table(table)
}

/// `OperatorCode`: both the deprecated int8 code (clamped at 127, as TFLite does for codes
/// beyond it) and the int32 code.
fn write_operator_code(fbb: &mut FlatBufferBuilder<'_>, op: BuiltinOperator) -> TableOffset {
    let code = op as i32;
    let table = fbb.start_table();
    fbb.push_slot::<i32>(slot::operator_code::BUILTIN_CODE, code, 0);
    fbb.push_slot::<i32>(slot::operator_code::VERSION, op.int8_version(), 1);
    fbb.push_slot::<i8>(slot::operator_code::DEPRECATED_BUILTIN_CODE, code.min(127) as i8, 0);
    fbb.end_table(table)
}

/// `SubGraph`.
fn write_subgraph(fbb: &mut FlatBufferBuilder<'_>, graph: &SubGraph) -> TableOffset {
    let tensors: Vec<TableOffset> = graph.tensors.iter().map(|t| write_tensor(fbb, t)).collect();
    let tensors = fbb.create_vector(&tensors);
    let inputs = fbb.create_vector(&graph.inputs);
    let outputs = fbb.create_vector(&graph.outputs);
    let operators: Vec<TableOffset> = graph.operators.iter().map(|op| write_operator(fbb, op)).collect();
    let operators = fbb.create_vector(&operators);
    let name = fbb.create_string(&graph.name);
    let table = fbb.start_table();
    fbb.push_slot_always(slot::subgraph::TENSORS, tensors);
    fbb.push_slot_always(slot::subgraph::INPUTS, inputs);
    fbb.push_slot_always(slot::subgraph::OUTPUTS, outputs);
    fbb.push_slot_always(slot::subgraph::OPERATORS, operators);
    fbb.push_slot_always(slot::subgraph::NAME, name);
    fbb.end_table(table)
}

/// `Tensor`.
fn write_tensor(fbb: &mut FlatBufferBuilder<'_>, tensor: &Tensor) -> TableOffset {
    let shape = fbb.create_vector(&tensor.shape);
    let name = fbb.create_string(&tensor.name);
    let quantization = tensor.quantization.as_ref().map(|q| write_quantization(fbb, q));
    let table = fbb.start_table();
    fbb.push_slot_always(slot::tensor::SHAPE, shape);
    fbb.push_slot::<i8>(slot::tensor::TYPE, tensor.tensor_type as i8, 0);
    fbb.push_slot::<u32>(slot::tensor::BUFFER, tensor.buffer, 0);
    fbb.push_slot_always(slot::tensor::NAME, name);
    if let Some(quantization) = quantization {
        fbb.push_slot_always(slot::tensor::QUANTIZATION, quantization);
    }
    fbb.end_table(table)
}

/// `QuantizationParameters` (no min/max, no custom details).
fn write_quantization(fbb: &mut FlatBufferBuilder<'_>, q: &Quantization) -> TableOffset {
    let scale = fbb.create_vector(&q.scale);
    let zero_point = fbb.create_vector(&q.zero_point);
    let table = fbb.start_table();
    fbb.push_slot_always(slot::quantization::SCALE, scale);
    fbb.push_slot_always(slot::quantization::ZERO_POINT, zero_point);
    fbb.push_slot::<i32>(slot::quantization::QUANTIZED_DIMENSION, q.quantized_dimension, 0);
    fbb.end_table(table)
}

/// `Operator` with its options table.
fn write_operator(fbb: &mut FlatBufferBuilder<'_>, op: &Operator) -> TableOffset {
    let inputs = fbb.create_vector(&op.inputs);
    let outputs = fbb.create_vector(&op.outputs);
    let options = write_options(fbb, &op.options);
    let table = fbb.start_table();
    fbb.push_slot::<u32>(slot::operator::OPCODE_INDEX, op.opcode_index, 0);
    fbb.push_slot_always(slot::operator::INPUTS, inputs);
    fbb.push_slot_always(slot::operator::OUTPUTS, outputs);
    if let Some((kind, options)) = options {
        fbb.push_slot::<u8>(slot::operator::BUILTIN_OPTIONS_TYPE, kind, options_type::NONE);
        fbb.push_slot_always(slot::operator::BUILTIN_OPTIONS, options);
    }
    fbb.end_table(table)
}

/// The options table and its union type code; `None` for no options.
fn write_options(fbb: &mut FlatBufferBuilder<'_>, options: &BuiltinOptions) -> Option<(u8, TableOffset)> {
    // Every field is pushed even where it equals the schema's default, so a reader never
    // depends on defaults for the fields that matter.
    Some(match *options {
        BuiltinOptions::None => return None,
        BuiltinOptions::FullyConnected => {
            use slot::fully_connected_options as s;
            let table = fbb.start_table();
            fbb.push_slot_always::<i8>(s::FUSED_ACTIVATION_FUNCTION, ACTIVATION_NONE);
            fbb.push_slot_always::<bool>(s::KEEP_NUM_DIMS, false);
            (options_type::FULLY_CONNECTED, fbb.end_table(table))
        }
        BuiltinOptions::Conv2d {
            padding,
            stride_w,
            stride_h,
        } => {
            use slot::conv_2d_options as s;
            let table = fbb.start_table();
            fbb.push_slot_always::<i32>(s::STRIDE_W, stride_w);
            fbb.push_slot_always::<i32>(s::STRIDE_H, stride_h);
            fbb.push_slot_always::<i32>(s::DILATION_W_FACTOR, 1);
            fbb.push_slot_always::<i32>(s::DILATION_H_FACTOR, 1);
            fbb.push_slot_always::<i8>(s::PADDING, padding as i8);
            fbb.push_slot_always::<i8>(s::FUSED_ACTIVATION_FUNCTION, ACTIVATION_NONE);
            (options_type::CONV_2D, fbb.end_table(table))
        }
        BuiltinOptions::Pool2d {
            padding,
            stride_w,
            stride_h,
            filter_width,
            filter_height,
        } => {
            use slot::pool_2d_options as s;
            let table = fbb.start_table();
            fbb.push_slot_always::<i32>(s::STRIDE_W, stride_w);
            fbb.push_slot_always::<i32>(s::STRIDE_H, stride_h);
            fbb.push_slot_always::<i32>(s::FILTER_WIDTH, filter_width);
            fbb.push_slot_always::<i32>(s::FILTER_HEIGHT, filter_height);
            fbb.push_slot_always::<i8>(s::PADDING, padding as i8);
            fbb.push_slot_always::<i8>(s::FUSED_ACTIVATION_FUNCTION, ACTIVATION_NONE);
            (options_type::POOL_2D, fbb.end_table(table))
        }
        BuiltinOptions::LeakyRelu { alpha } => {
            let table = fbb.start_table();
            fbb.push_slot_always::<f32>(slot::leaky_relu_options::ALPHA, alpha);
            (options_type::LEAKY_RELU, fbb.end_table(table))
        }
        BuiltinOptions::MaximumMinimum => {
            let table = fbb.start_table();
            (options_type::MAXIMUM_MINIMUM, fbb.end_table(table))
        }
        BuiltinOptions::Reshape { ref new_shape } => {
            let new_shape = fbb.create_vector(new_shape);
            let table = fbb.start_table();
            fbb.push_slot_always(slot::reshape_options::NEW_SHAPE, new_shape);
            (options_type::RESHAPE, fbb.end_table(table))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tflite::read::Root;

    fn tiny() -> Model {
        Model {
            operator_codes: vec![BuiltinOperator::LeakyRelu, BuiltinOperator::Logistic],
            subgraph: SubGraph {
                tensors: vec![
                    Tensor {
                        name: "input".into(),
                        shape: vec![1, 3],
                        tensor_type: TensorType::Int8,
                        buffer: 0,
                        quantization: Some(Quantization {
                            scale: vec![0.5],
                            zero_point: vec![-3],
                            quantized_dimension: 0,
                        }),
                    },
                    Tensor {
                        name: "table".into(),
                        shape: vec![3],
                        tensor_type: TensorType::Int32,
                        buffer: 1,
                        quantization: None,
                    },
                ],
                inputs: vec![0],
                outputs: vec![1],
                operators: vec![Operator {
                    opcode_index: 0,
                    inputs: vec![0],
                    outputs: vec![1],
                    options: BuiltinOptions::LeakyRelu { alpha: 0.25 },
                }],
                name: "graph".into(),
            },
            description: "a tiny test model".into(),
            buffers: vec![vec![], vec![1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0], vec![7]],
        }
    }

    #[test]
    fn every_field_reads_back_at_its_slot() {
        let bytes = tiny().to_bytes();
        let root = Root::new(&bytes);
        assert_eq!(&bytes[4..8], b"TFL3");
        let model = root.model();
        assert_eq!(model.u32(0), Some(3), "version");
        assert_eq!(model.string(3).as_deref(), Some("a tiny test model"));
        let codes = model.tables(1);
        assert_eq!(codes.len(), 2);
        assert_eq!(codes[0].i8(0), Some(98), "deprecated_builtin_code");
        assert_eq!(codes[0].i32(3), Some(98), "builtin_code");
        assert_eq!(codes[0].i32(2), None, "version 1 is the default");
        assert_eq!(codes[1].i8(0), Some(14));
        assert_eq!(codes[1].i32(2), Some(2));
        let graph = &model.tables(2)[0];
        assert_eq!(graph.string(4).as_deref(), Some("graph"));
        assert_eq!(graph.i32s(1), vec![0]);
        assert_eq!(graph.i32s(2), vec![1]);
        let tensors = graph.tables(0);
        assert_eq!(tensors[0].string(3).as_deref(), Some("input"));
        assert_eq!(tensors[0].i32s(0), vec![1, 3]);
        assert_eq!(tensors[0].i8(1), Some(9));
        assert_eq!(tensors[0].u32(2), None, "buffer 0 is the default");
        let q = tensors[0].table(4).unwrap();
        assert_eq!(q.f32s(2), vec![0.5]);
        assert_eq!(q.i64s(3), vec![-3]);
        assert_eq!(tensors[1].i8(1), Some(2));
        assert_eq!(tensors[1].u32(2), Some(1));
        assert!(tensors[1].table(4).is_none());
        let op = &graph.tables(3)[0];
        assert_eq!(op.u32(0), None, "opcode index 0 is the default");
        assert_eq!(op.u8(3), Some(75), "LeakyReluOptions");
        assert_eq!(op.table(4).unwrap().f32(0), Some(0.25));
        let buffers = model.tables(4);
        assert_eq!(buffers.len(), 3);
        assert!(buffers[0].bytes(0).is_none(), "buffer 0 is empty");
        assert_eq!(buffers[1].bytes(0).unwrap(), &[1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(buffers[2].bytes(0).unwrap(), &[7]);
    }

    #[test]
    fn buffer_data_is_16_byte_aligned_whatever_comes_before() {
        // Vary the lengths of the data and of the strings around it, so that the builder's own
        // padding falls differently each time.
        for extra in 0..40usize {
            let mut model = tiny();
            model.description.push_str(&"x".repeat(extra));
            model.buffers = (0..5).map(|i| vec![i as u8; (i * 7 + extra) % 23]).collect();
            model.buffers[0].clear();
            let bytes = model.to_bytes();
            assert_eq!(bytes.len() % DATA_ALIGN, 0);
            let root = Root::new(&bytes);
            for (i, buffer) in root.model().tables(4).iter().enumerate() {
                if let Some(data) = buffer.bytes(0) {
                    let offset = data.as_ptr() as usize - bytes.as_ptr() as usize;
                    assert_eq!(offset % DATA_ALIGN, 0, "extra {extra}, buffer {i} at {offset}");
                    assert_eq!(data, &model.buffers[i][..]);
                }
            }
        }
    }

    #[test]
    fn options_tables_hold_every_field() {
        let mut model = tiny();
        model.operator_codes = vec![
            BuiltinOperator::Conv2d,
            BuiltinOperator::MaxPool2d,
            BuiltinOperator::FullyConnected,
            BuiltinOperator::Reshape,
            BuiltinOperator::Maximum,
        ];
        let op = |i: u32, options| Operator {
            opcode_index: i,
            inputs: vec![0],
            outputs: vec![1],
            options,
        };
        model.subgraph.operators = vec![
            op(
                0,
                BuiltinOptions::Conv2d {
                    padding: Padding::Valid,
                    stride_w: 1,
                    stride_h: 1,
                },
            ),
            op(
                1,
                BuiltinOptions::Pool2d {
                    padding: Padding::Valid,
                    stride_w: 2,
                    stride_h: 2,
                    filter_width: 2,
                    filter_height: 2,
                },
            ),
            op(2, BuiltinOptions::FullyConnected),
            op(
                3,
                BuiltinOptions::Reshape {
                    new_shape: vec![1, 128],
                },
            ),
            op(4, BuiltinOptions::MaximumMinimum),
        ];
        let bytes = model.to_bytes();
        let root = Root::new(&bytes);
        let model = root.model();
        let codes: Vec<_> = model.tables(1).iter().map(|c| (c.i32(3), c.i32(2))).collect();
        assert_eq!(
            codes,
            vec![
                (Some(3), Some(3)),
                (Some(17), Some(2)),
                (Some(9), Some(4)),
                (Some(22), None),
                (Some(55), Some(2))
            ]
        );
        let ops = model.tables(2)[0].tables(3);
        let conv = ops[0].table(4).unwrap();
        assert_eq!(ops[0].u8(3), Some(1));
        assert_eq!(
            (
                conv.i8(0),
                conv.i32(1),
                conv.i32(2),
                conv.i8(3),
                conv.i32(4),
                conv.i32(5)
            ),
            (Some(1), Some(1), Some(1), Some(0), Some(1), Some(1))
        );
        let pool = ops[1].table(4).unwrap();
        assert_eq!(ops[1].u8(3), Some(5));
        assert_eq!(
            (
                pool.i8(0),
                pool.i32(1),
                pool.i32(2),
                pool.i32(3),
                pool.i32(4),
                pool.i8(5)
            ),
            (Some(1), Some(2), Some(2), Some(2), Some(2), Some(0))
        );
        let fc = ops[2].table(4).unwrap();
        assert_eq!(ops[2].u8(3), Some(8));
        assert_eq!((fc.i8(0), fc.u8(2)), (Some(0), Some(0)));
        assert_eq!(ops[3].u8(3), Some(17));
        assert_eq!(ops[3].table(4).unwrap().i32s(0), vec![1, 128]);
        assert_eq!(ops[4].u8(3), Some(39));
        assert!(ops[4].table(4).is_some());
    }
}
