//! 256-entry int8 lookup tables for LeakyReLU and Logistic, as TFLM computes them.
