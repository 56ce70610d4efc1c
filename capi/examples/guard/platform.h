/* What the example needs from the board it runs on. */
#ifndef PLATFORM_H
#define PLATFORM_H

#include <stdint.h>

/* Sets up the board: the console and the instruction counter. */
void platform_init(void);
/* Instructions executed since platform_init (0 where the platform cannot count them). */
uint64_t platform_instructions(void);
/* What platform_instructions counts, for the log. */
extern const char platform_counter[];

#endif
