/* Startup for the Cortex-M4F on QEMU's mps2-an386, in the CMSIS style: the vector table,
 * the reset handler (FPU on, .data copied, .bss zeroed, C library constructors) and fault
 * handlers that end the run with a failure. */
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

extern uint32_t __stack_top, __data_load, __data_start, __data_end, __bss_start, __bss_end;
extern int main(void);
extern void __libc_init_array(void);
void SysTick_Handler(void);

/* -nostartfiles leaves out crti.o: __libc_init_array calls these two, and there is nothing
 * for them to do here (constructors run from .init_array). */
void _init(void) {}
void _fini(void) {}

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

void Reset_Handler(void) {
    /* CP10 and CP11 full access: the library and this code use the FPU (hard-float ABI). */
    SCB_CPACR |= 0xFu << 20;
    __asm volatile("dsb\n\tisb");
    uint32_t *src = &__data_load, *dst = &__data_start;
    while (dst < &__data_end) *dst++ = *src++;
    for (dst = &__bss_start; dst < &__bss_end;) *dst++ = 0;
    __libc_init_array();
    exit(main());
}

/* A fault (or the library's undefined instruction on a bug) ends the run with status 2. */
void Fault_Handler(void) { _exit(2); }

__attribute__((section(".isr_vector"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))&__stack_top, /* initial stack pointer */
    Reset_Handler,
    Fault_Handler, /* NMI */
    Fault_Handler, /* HardFault */
    Fault_Handler, /* MemManage */
    Fault_Handler, /* BusFault */
    Fault_Handler, /* UsageFault */
    0, 0, 0, 0,
    Fault_Handler, /* SVCall */
    Fault_Handler, /* DebugMonitor */
    0,
    Fault_Handler, /* PendSV */
    SysTick_Handler,
};
