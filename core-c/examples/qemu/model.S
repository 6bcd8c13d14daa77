/* The model file, embedded verbatim in flash: AE_MODEL_FILE is its path (the Makefile's MODEL). */
    .section .rodata.model, "a"
    .balign 4
    .global ae_model_blob
ae_model_blob:
    .incbin AE_MODEL_FILE
    .global ae_model_blob_end
ae_model_blob_end:
