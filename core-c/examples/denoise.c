/* The README's example: denoise one MNIST image with models/fc.aeq. The blob is the .aeq file
 * in flash (e.g. `xxd -i fc.aeq`, or `.incbin` as examples/qemu/model.S does). */
#include "autoencoder.h"

extern const uint8_t fc_aeq[];
extern const size_t fc_aeq_len;

static ae_model model;
static int8_t scratch[1568]; /* `trainer inspect models/fc.aeq`: scratch 1568 bytes */

/* 0 and the denoised image in `clean`, or the failing status's name in `*error`. */
int denoise(const uint8_t image[784], uint8_t clean[784], const char **error) {
    ae_status status = ae_model_load(&model, fc_aeq, fc_aeq_len, scratch, sizeof scratch);
    if (status == AE_OK) {
        status = ae_denoise(&model, image, 784, clean, 784);
    }
    *error = ae_status_name(status);
    return status == AE_OK ? 0 : -1;
}
