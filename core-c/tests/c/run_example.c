/* Runs examples/denoise.c on the host: the image (784 bytes) named on the command line in, the
 * denoised image out on stdout. The test links the model in as `xxd -i` would (fc_aeq.c). */
#include <stdint.h>
#include <stdio.h>

int denoise(const uint8_t image[784], uint8_t clean[784], const char **error);

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: run_example IMAGE\n");
        return 2;
    }
    FILE *file = fopen(argv[1], "rb");
    uint8_t image[784];
    if (file == NULL || fread(image, 1, sizeof image, file) != sizeof image) {
        fprintf(stderr, "%s: cannot read 784 bytes\n", argv[1]);
        return 2;
    }
    fclose(file);
    uint8_t clean[784];
    const char *error;
    if (denoise(image, clean, &error) != 0) {
        fprintf(stderr, "denoise: %s\n", error);
        return 1;
    }
    fwrite(clean, 1, sizeof clean, stdout);
    return 0;
}
