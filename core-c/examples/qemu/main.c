/* A C firmware running an autoencoder through libautoencoder.a, under QEMU's mps2-an386.
 *
 * Built for one model (the Makefile's MODEL, embedded in flash by model.S), with its sizes
 * from the Makefile: AE_INPUT values in and out, AE_CODE in a code, AE_SCRATCH bytes of
 * scratch, AE_FLOAT_INPUT 1 for raw f32 samples (any model) or 0 for u8 pixels (an MNIST model,
 * whose pixels p are the int8 codes p - 128).
 *
 * Command line (semihosting):
 * - no arguments: load the model, print what it needs, run one sample of zeros, print its
 *   code and score;
 * - --samples IN --out OUT: the Rust firmware's stream mode, record for record (see
 *   firmware/src/qemu.rs): per sample of IN, the code, the reconstruction, the anomaly score
 *   (u32), the flag (1 anomaly, 0 normal, 0xFF no threshold), the SysTick ticks of the three
 *   steps (u32 each), all little-endian.
 *
 * Both print the stack's peak while loading the model and while running it (startup.c paints
 * the free RAM below the stack).
 *
 * Exit status: 0 success, 2 a bad command line or host file, 3 a status other than AE_OK
 * from the library, 134 a fault or abort(). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "autoencoder.h"
#include "semihosting.h"

#if !defined(AE_INPUT) || !defined(AE_CODE) || !defined(AE_SCRATCH) || !defined(AE_FLOAT_INPUT)
#error "build with the Makefile, which sets AE_INPUT, AE_CODE, AE_SCRATCH and AE_FLOAT_INPUT"
#endif

#if AE_FLOAT_INPUT
#define SAMPLE_BYTES (4 * AE_INPUT)
#define OUTPUT_BYTES (5 * AE_INPUT)
#else
#define SAMPLE_BYTES AE_INPUT
#define OUTPUT_BYTES AE_INPUT
#endif
#define RECORD_BYTES (AE_CODE + OUTPUT_BYTES + 5 + 12)

enum { EXIT_USAGE = 2, EXIT_MODEL = 3 };

extern const uint8_t ae_model_blob[], ae_model_blob_end[];
/* startup.c: the stack's peak since it was last painted, and painting it again. */
uint32_t stack_peak(void);
void stack_paint(void);
static uint32_t load_stack;

static ae_model model;
static int8_t scratch[AE_SCRATCH];
static int8_t code[AE_CODE];
static int8_t output[AE_INPUT];
static uint8_t record[RECORD_BYTES];
#if AE_FLOAT_INPUT
static float sample[AE_INPUT];
static float values[AE_INPUT];
#else
static uint8_t sample[AE_INPUT];
static int8_t codes[AE_INPUT];
#endif

/* SysTick from the 25 MHz core clock, its 24-bit count extended by counting wraps. */
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SCB_ICSR (*(volatile uint32_t *)0xE000ED04u)
#define RELOAD 0x00FFFFFFu
static volatile uint32_t wraps;

void systick_tick(void) {
    wraps++;
}

static void clock_start(void) {
    SYST_RVR = RELOAD;
    SYST_CVR = 0;
    SYST_CSR = 7; /* the core clock, the interrupt, enabled */
}

static uint64_t clock_now(void) {
    __asm__ volatile("cpsid i" ::: "memory");
    uint32_t w = wraps;
    uint32_t current = SYST_CVR;
    if (SCB_ICSR & (1u << 26)) { /* a wrap whose interrupt is pending */
        w++;
        current = SYST_CVR;
    }
    __asm__ volatile("cpsie i" ::: "memory");
    return ((uint64_t)w << 24) + (RELOAD - current);
}

static void fail(int status, const char *what, const char *detail) {
    sh_print("error: ");
    sh_print(what);
    sh_print(detail);
    sh_print("\n");
    sh_exit(status);
}

/* Ends the run unless the library said AE_OK. */
static void check(ae_status status, const char *what) {
    if (status != AE_OK) {
        fail(EXIT_MODEL, what, ae_status_name(status));
    }
}

static void put_u32(uint8_t *at, uint32_t value) {
    for (int i = 0; i < 4; i++) {
        at[i] = (uint8_t)(value >> (8 * i));
    }
}

static uint32_t elapsed(uint64_t from, uint64_t to, uint64_t overhead) {
    uint64_t ticks = to - from;
    ticks = ticks > overhead ? ticks - overhead : 0;
    return ticks > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)ticks;
}

/* Runs one sample (in `sample`) into `record`. */
static void run_sample(void) {
    uint8_t *out = record + AE_CODE;
    uint32_t score = 0;
    uint64_t t0 = clock_now();
    uint64_t t1 = clock_now();
#if AE_FLOAT_INPUT
    check(ae_encode_f32(&model, sample, AE_INPUT, code, AE_CODE), "encode: ");
    uint64_t t2 = clock_now();
    check(ae_decode(&model, code, AE_CODE, output, AE_INPUT), "decode: ");
    check(ae_decode_f32(&model, code, AE_CODE, values, AE_INPUT), "decode: ");
    uint64_t t3 = clock_now();
    check(ae_anomaly_score_f32(&model, sample, AE_INPUT, &score), "score: ");
    uint64_t t4 = clock_now();
    for (int i = 0; i < AE_INPUT; i++) {
        out[i] = (uint8_t)output[i];
        uint32_t bits;
        __builtin_memcpy(&bits, &values[i], 4);
        put_u32(out + AE_INPUT + 4 * i, bits);
    }
#else
    /* A pixel p is the int8 code p - 128: flip the top bit (what ae_encode_u8 computes for
     * such a model, without its float arithmetic). */
    for (int i = 0; i < AE_INPUT; i++) {
        codes[i] = (int8_t)(sample[i] ^ 0x80u);
    }
    check(ae_encode(&model, codes, AE_INPUT, code, AE_CODE), "encode: ");
    uint64_t t2 = clock_now();
    for (int i = 0; i < AE_INPUT; i++) {
        codes[i] = (int8_t)(sample[i] ^ 0x80u);
    }
    check(ae_reconstruct(&model, codes, AE_INPUT, output, AE_INPUT), "denoise: ");
    uint64_t t3 = clock_now();
    check(ae_anomaly_score(&model, codes, AE_INPUT, &score), "score: ");
    uint64_t t4 = clock_now();
    for (int i = 0; i < AE_INPUT; i++) {
        out[i] = (uint8_t)output[i] ^ 0x80u;
    }
#endif
    for (int i = 0; i < AE_CODE; i++) {
        record[i] = (uint8_t)code[i];
    }
    uint8_t *tail = record + AE_CODE + OUTPUT_BYTES;
    put_u32(tail, score);
    bool anomalous = false;
    ae_status verdict = ae_model_is_anomalous(&model, score, &anomalous);
    tail[4] = verdict == AE_NO_THRESHOLD ? 0xFF : anomalous ? 1 : 0;
    if (verdict != AE_NO_THRESHOLD) {
        check(verdict, "flag: ");
    }
    uint64_t overhead = t1 - t0;
    put_u32(tail + 5, elapsed(t1, t2, overhead));
    put_u32(tail + 9, elapsed(t2, t3, overhead));
    put_u32(tail + 13, elapsed(t3, t4, overhead));
}

/* Reads one whole sample; false at the end of the file. */
static bool read_sample(int file, uint32_t index) {
    uint8_t *bytes = (uint8_t *)sample;
    size_t filled = 0;
    while (filled < SAMPLE_BYTES) {
        int n = sh_read(file, bytes + filled, SAMPLE_BYTES - filled);
        if (n < 0) {
            fail(EXIT_USAGE, "cannot read the samples", "");
        }
        if (n == 0) {
            if (filled == 0) {
                return false;
            }
            sh_print("sample ");
            sh_print_u32(index);
            fail(EXIT_USAGE, ": the samples file ends inside it", "");
        }
        filled += (size_t)n;
    }
    return true;
}

/* The stack's peak while loading, and since (running). */
static void print_stack(void) {
    sh_print("stack peak: loading ");
    sh_print_u32(load_stack);
    sh_print(" bytes, running ");
    sh_print_u32(stack_peak());
    sh_print(" bytes\n");
}

static void stream(const char *in, const char *out) {
    int input = sh_open(in, 0);
    if (input < 0) {
        fail(EXIT_USAGE, "cannot open ", in);
    }
    int output_file = sh_open(out, 1);
    if (output_file < 0) {
        fail(EXIT_USAGE, "cannot create ", out);
    }
    uint32_t count = 0;
    while (read_sample(input, count)) {
        run_sample();
        if (sh_write(output_file, record, RECORD_BYTES) != 0) {
            fail(EXIT_USAGE, "cannot write ", out);
        }
        count++;
    }
    sh_close(input);
    sh_close(output_file);
    sh_print_u32(count);
    sh_print(" samples\n");
    print_stack();
}

static bool equal(const char *a, const char *b) {
    while (*a != '\0' && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

int main(void) {
    clock_start();
    ae_model_info info;
    size_t blob_len = (size_t)(ae_model_blob_end - ae_model_blob);
    check(ae_model_check(ae_model_blob, blob_len, &info), "model: ");
    if (info.input_len != AE_INPUT || info.code_len != AE_CODE || info.scratch_len > AE_SCRATCH) {
        fail(EXIT_MODEL, "model: ", "not the sizes this firmware was built for");
    }
    check(ae_model_load(&model, ae_model_blob, blob_len, scratch, sizeof scratch), "model: ");
    load_stack = stack_peak();
    stack_paint();

    static char line[512];
    if (sh_command_line(line, sizeof line) != 0) {
        fail(EXIT_USAGE, "cannot read the command line", "");
    }
    /* Words separated by spaces; the first is the program's name. */
    const char *words[8];
    int count = 0;
    for (char *at = line; *at != '\0' && count < 8;) {
        while (*at == ' ') {
            *at++ = '\0';
        }
        if (*at == '\0') {
            break;
        }
        words[count++] = at;
        while (*at != '\0' && *at != ' ') {
            at++;
        }
    }
    if (count == 5 && equal(words[1], "--samples") && equal(words[3], "--out")) {
        stream(words[2], words[4]);
        return 0;
    }
    if (count > 1) {
        fail(EXIT_USAGE, "usage: [--samples IN --out OUT]", "");
    }
    sh_print("model: ");
    sh_print_u32(blob_len);
    sh_print(" bytes, ");
    sh_print_u32(info.input_len);
    sh_print(" values in, code ");
    sh_print_u32(info.code_len);
    sh_print(", scratch ");
    sh_print_u32(info.scratch_len);
    sh_print(" bytes\n");
    run_sample();
    sh_print("code of a sample of zeros:");
    for (int i = 0; i < AE_CODE && i < 8; i++) {
        sh_print(" ");
        sh_print_i32(code[i]);
    }
    sh_print("\nscore: ");
    sh_print_u32(record[AE_CODE + OUTPUT_BYTES] | (uint32_t)record[AE_CODE + OUTPUT_BYTES + 1] << 8 |
                 (uint32_t)record[AE_CODE + OUTPUT_BYTES + 2] << 16 |
                 (uint32_t)record[AE_CODE + OUTPUT_BYTES + 3] << 24);
    sh_print("\n");
    print_stack();
    return 0;
}
