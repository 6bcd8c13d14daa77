/* The C API given bad input, from C: each call returns the status that names the problem and
 * writes nothing. Run with the path of models/fc.aeq (a model without an anomaly threshold). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autoencoder.h"

static int failures;
static int checks;

#define EXPECT(call, want)                                                                    \
    do {                                                                                      \
        ae_status got_ = (call);                                                              \
        checks++;                                                                             \
        if (got_ != (want)) {                                                                 \
            fprintf(stderr, "line %d: %s gave %s, expected %s\n", __LINE__, #call,            \
                    ae_status_name(got_), ae_status_name(want));                              \
            failures++;                                                                       \
        }                                                                                     \
    } while (0)

#define CHECK(condition)                                                                      \
    do {                                                                                      \
        checks++;                                                                             \
        if (!(condition)) {                                                                   \
            fprintf(stderr, "line %d: %s is false\n", __LINE__, #condition);                  \
            failures++;                                                                       \
        }                                                                                     \
    } while (0)

static uint8_t *read_file(const char *path, size_t *len) {
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        perror(path);
        exit(2);
    }
    fseek(file, 0, SEEK_END);
    *len = (size_t)ftell(file);
    fseek(file, 0, SEEK_SET);
    uint8_t *bytes = malloc(*len);
    if (bytes == NULL || fread(bytes, 1, *len, file) != *len) {
        fprintf(stderr, "%s: cannot read\n", path);
        exit(2);
    }
    fclose(file);
    return bytes;
}

static int untouched(const int8_t *buffer, size_t len, int8_t value) {
    for (size_t i = 0; i < len; i++) {
        if (buffer[i] != value) {
            return 0;
        }
    }
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: bad_input MODELS/FC.AEQ\n");
        return 2;
    }
    size_t len;
    uint8_t *blob = read_file(argv[1], &len);
    static ae_model model;
    ae_model_info info;

    /* Names. */
    CHECK(strcmp(ae_status_name(AE_CHECKSUM_MISMATCH), "AE_CHECKSUM_MISMATCH") == 0);
    CHECK(strcmp(ae_status_name(AE_OK), "AE_OK") == 0);
    CHECK(strcmp(ae_status_name(12345), "AE_UNKNOWN_STATUS") == 0);
    CHECK(strcmp(ae_status_name(-1), "AE_UNKNOWN_STATUS") == 0);

    /* Null pointers. */
    EXPECT(ae_model_check(NULL, len, &info), AE_NULL_POINTER);
    EXPECT(ae_model_check(blob, len, NULL), AE_NULL_POINTER);
    EXPECT(ae_model_check(blob, len, &info), AE_OK);
    CHECK(info.input_len == 784 && info.code_len == 64 && info.scratch_len > 0);
    CHECK(info.input_scaling == AE_SCALING_UNIT && info.input_zero_point == -128);
    CHECK(!info.has_threshold);
    int8_t *scratch = malloc(info.scratch_len);
    EXPECT(ae_model_load(NULL, blob, len, scratch, info.scratch_len), AE_NULL_POINTER);
    EXPECT(ae_model_load(&model, NULL, len, scratch, info.scratch_len), AE_NULL_POINTER);
    EXPECT(ae_model_load(&model, blob, len, NULL, info.scratch_len), AE_NULL_POINTER);

    /* A model never loaded. */
    int8_t input[785] = {0};
    int8_t code[65];
    memset(code, 7, sizeof code);
    EXPECT(ae_encode(&model, input, 784, code, 64), AE_NOT_LOADED);

    /* Buffers too small. */
    EXPECT(ae_model_load(&model, blob, len, scratch, info.scratch_len - 1), AE_SCRATCH_TOO_SMALL);
    EXPECT(ae_encode(&model, input, 784, code, 64), AE_NOT_LOADED);

    /* Corrupt and foreign models. */
    uint8_t *corrupt = malloc(len);
    memcpy(corrupt, blob, len);
    corrupt[len / 2] ^= 0x01;
    EXPECT(ae_model_load(&model, corrupt, len, scratch, info.scratch_len), AE_CHECKSUM_MISMATCH);
    EXPECT(ae_model_load(&model, blob, len - 100, scratch, info.scratch_len), AE_CHECKSUM_MISMATCH);
    EXPECT(ae_model_load(&model, blob, 8, scratch, info.scratch_len), AE_TOO_SHORT);
    static const uint8_t text[] = "# not a model, a README\n";
    EXPECT(ae_model_load(&model, text, sizeof text, scratch, info.scratch_len), AE_BAD_MAGIC);
    EXPECT(ae_encode(&model, input, 784, code, 64), AE_NOT_LOADED);

    /* Loaded; wrong lengths. */
    EXPECT(ae_model_load(&model, blob, len, scratch, info.scratch_len), AE_OK);
    EXPECT(ae_encode(&model, input, 785, code, 64), AE_INPUT_WIDTH_MISMATCH);
    EXPECT(ae_encode(&model, input, 783, code, 64), AE_INPUT_WIDTH_MISMATCH);
    EXPECT(ae_encode(&model, input, 784, code, 65), AE_CODE_WIDTH_MISMATCH);
    EXPECT(ae_encode(&model, input, 784, code, 63), AE_CODE_WIDTH_MISMATCH);
    EXPECT(ae_encode(&model, NULL, 784, code, 64), AE_NULL_POINTER);
    EXPECT(ae_encode(&model, input, 784, NULL, 64), AE_NULL_POINTER);
    CHECK(untouched(code, sizeof code, 7));

    /* A NaN; a misaligned float buffer; an output over the input or the scratch. */
    float *floats = malloc(785 * sizeof(float));
    for (int i = 0; i < 785; i++) {
        floats[i] = 0.5f;
    }
    floats[100] = NAN;
    EXPECT(ae_encode_f32(&model, floats, 784, code, 64), AE_NOT_A_NUMBER);
    CHECK(untouched(code, sizeof code, 7));
    EXPECT(ae_encode_f32(&model, (const float *)((const char *)floats + 1), 784, code, 64),
           AE_MISALIGNED);
    int8_t same[784] = {0};
    EXPECT(ae_reconstruct(&model, same, 784, same, 784), AE_BUFFERS_OVERLAP);
    EXPECT(ae_encode(&model, input, 784, scratch, 64), AE_BUFFERS_OVERLAP);

    /* The score, and a flag from a model without a threshold. */
    uint32_t score = 0;
    bool anomalous = false;
    EXPECT(ae_anomaly_score(&model, input, 784, NULL), AE_NULL_POINTER);
    EXPECT(ae_anomaly_score(&model, input, 784, &score), AE_OK);
    EXPECT(ae_model_is_anomalous(&model, score, &anomalous), AE_NO_THRESHOLD);

    /* Good calls still work after all the bad ones. */
    EXPECT(ae_encode(&model, input, 784, code, 64), AE_OK);
    CHECK(!untouched(code, 64, 7));
    EXPECT(ae_model_get_info(&model, &info), AE_OK);
    CHECK(info.code_len == 64);

    free(floats);
    free(corrupt);
    free(scratch);
    free(blob);
    if (failures > 0) {
        fprintf(stderr, "%d of %d checks failed\n", failures, checks);
        return 1;
    }
    printf("all %d checks passed\n", checks);
    return 0;
}
