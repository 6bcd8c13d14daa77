//! Int8 2x2 max-pooling with stride 2, as TFLM's reference MAX_POOL_2D.
