/* QEMU mps2-an386 (Cortex-M4F): the console and files through semihosting (newlib-nano's
 * librdimon), and an instruction counter. QEMU runs with `-icount shift=0`, so the SysTick
 * (25 MHz) advances one tick every 40 instructions, exactly and repeatably; its 24-bit
 * counter's wraps are counted by the SysTick exception (as firmware/src/clock.rs does). */
#include <stdint.h>
#include <stdio.h>

#include "../platform.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define RELOAD 0x00FFFFFFu
#define INSTRUCTIONS_PER_TICK 40u

const char platform_counter[] = "instructions";

static volatile uint32_t wraps;

void SysTick_Handler(void) { wraps++; }

extern void initialise_monitor_handles(void);

void platform_init(void) {
    initialise_monitor_handles();
    /* Unbuffered stdout: newlib would otherwise allocate a buffer for it. */
    setvbuf(stdout, NULL, _IONBF, 0);
    SYST_RVR = RELOAD;
    SYST_CVR = 0;
    SYST_CSR = 0x7; /* processor clock, exception on wrap, enabled */
}

uint64_t platform_instructions(void) {
    for (;;) {
        uint32_t w = wraps;
        uint32_t v = SYST_CVR;
        if (wraps == w) {
            uint64_t ticks = (uint64_t)w * (RELOAD + 1u) + (RELOAD - v);
            return ticks * INSTRUCTIONS_PER_TICK;
        }
    }
}
