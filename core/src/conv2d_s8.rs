//! Int8 2-D convolution (stride 1, no padding), as TFLM's reference CONV_2D.
