/* Start-up for QEMU's mps2-an386 (Cortex-M4F): the vector table, the reset handler that sets up
 * RAM and the FPU before main, the fault and SysTick handlers, and abort(). No C library. */
#include <stdint.h>

#include "semihosting.h"

/* From link.ld. */
extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;

int main(void);
void stack_paint(void);

#define STACK_PAINT 0x5AC3A55Au

/* Paints the free RAM below the stack, for stack_peak(). */
void stack_paint(void) {
    uint32_t *sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (uint32_t *to = &_ebss; to < sp - 16;) {
        *to++ = STACK_PAINT;
    }
}

/* Bytes of stack used since the last paint: from the top of RAM down to the lowest word that
 * is no longer paint. */
uint32_t stack_peak(void) {
    const uint32_t *at = &_ebss;
    while (at < &_estack && *at == STACK_PAINT) {
        at++;
    }
    return (uint32_t)((const uint8_t *)&_estack - (const uint8_t *)at);
}
void systick_tick(void);


void Reset_Handler(void) {
    const uint32_t *from = &_sidata;
    for (uint32_t *to = &_sdata; to < &_edata;) {
        *to++ = *from++;
    }
    for (uint32_t *to = &_sbss; to < &_ebss;) {
        *to++ = 0;
    }
    stack_paint();
    /* CPACR: full access to the FPU (coprocessors 10 and 11), before any float instruction. */
    volatile uint32_t *cpacr = (volatile uint32_t *)0xE000ED88u;
    *cpacr |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    sh_exit(main());
}

/* A fault of any kind: name it and fail, as the Rust firmware does (status 134). */
void HardFault_Handler(void) {
    sh_print("hard fault\n");
    sh_exit(134);
}

static void Unexpected_Handler(void) {
    sh_print("unexpected exception\n");
    sh_exit(134);
}

void SysTick_Handler(void) {
    systick_tick();
}

/* The library's panic handler calls abort(): a panic cannot happen, but ends the run with a
 * failure status if it ever did. */
void abort(void) {
    sh_print("abort\n");
    sh_exit(134);
}

typedef void (*Vector)(void);

__attribute__((section(".isr_vector"), used)) static const Vector vectors[16] = {
    (Vector)&_estack,   Reset_Handler,      Unexpected_Handler, HardFault_Handler,
    Unexpected_Handler, Unexpected_Handler, Unexpected_Handler, 0,
    0,                  0,                  0,                  Unexpected_Handler,
    Unexpected_Handler, 0,                  Unexpected_Handler, SysTick_Handler,
};
