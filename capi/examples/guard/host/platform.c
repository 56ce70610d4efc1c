/* The example on a Linux host: stdio as it is; no instruction counter. */
#include "../platform.h"

const char platform_counter[] = "none";

void platform_init(void) {}

uint64_t platform_instructions(void) { return 0; }
