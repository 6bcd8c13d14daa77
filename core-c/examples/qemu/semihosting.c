/* Semihosting calls (see semihosting.h). Each passes an operation number in r0 and the address
 * of its argument block in r1; the result comes back in r0. */
#include "semihosting.h"

enum {
    SYS_OPEN = 0x01,
    SYS_CLOSE = 0x02,
    SYS_WRITE0 = 0x04,
    SYS_WRITE = 0x05,
    SYS_READ = 0x06,
    SYS_GET_CMDLINE = 0x15,
    SYS_EXIT_EXTENDED = 0x20,
};

/* ADP_Stopped_ApplicationExit: the reason an exit passes with its status. */
#define APPLICATION_EXIT 0x20026u

static int32_t call(uint32_t operation, const void *argument) {
    register uint32_t r0 __asm__("r0") = operation;
    register const void *r1 __asm__("r1") = argument;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return (int32_t)r0;
}

static size_t length(const char *text) {
    size_t n = 0;
    while (text[n] != '\0') {
        n++;
    }
    return n;
}

void sh_print(const char *text) {
    call(SYS_WRITE0, text);
}

void sh_print_u32(uint32_t value) {
    char digits[11];
    char *at = &digits[10];
    *at = '\0';
    do {
        *--at = (char)('0' + value % 10);
        value /= 10;
    } while (value != 0);
    sh_print(at);
}

void sh_print_i32(int32_t value) {
    if (value < 0) {
        sh_print("-");
        sh_print_u32(0u - (uint32_t)value);
    } else {
        sh_print_u32((uint32_t)value);
    }
}

int sh_open(const char *path, int write) {
    /* Modes as fopen's: 1 is "rb", 5 is "wb". */
    uint32_t block[3] = {(uint32_t)path, write ? 5u : 1u, (uint32_t)length(path)};
    return call(SYS_OPEN, block);
}

int sh_read(int handle, void *buffer, size_t len) {
    uint32_t block[3] = {(uint32_t)handle, (uint32_t)buffer, (uint32_t)len};
    /* The result is the number of bytes NOT read. */
    int32_t left = call(SYS_READ, block);
    if (left < 0 || (size_t)left > len) {
        return -1;
    }
    return (int)(len - (size_t)left);
}

int sh_write(int handle, const void *buffer, size_t len) {
    uint32_t block[3] = {(uint32_t)handle, (uint32_t)buffer, (uint32_t)len};
    return call(SYS_WRITE, block) == 0 ? 0 : -1;
}

void sh_close(int handle) {
    uint32_t block[1] = {(uint32_t)handle};
    call(SYS_CLOSE, block);
}

int sh_command_line(char *buffer, size_t len) {
    uint32_t block[2] = {(uint32_t)buffer, (uint32_t)len};
    return call(SYS_GET_CMDLINE, block) == 0 ? 0 : -1;
}

void sh_exit(int status) {
    uint32_t block[2] = {APPLICATION_EXIT, (uint32_t)status};
    call(SYS_EXIT_EXTENDED, block);
    for (;;) {
    }
}
