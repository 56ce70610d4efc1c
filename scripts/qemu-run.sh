#!/usr/bin/env bash
# Cargo runner for the firmware: boots the ELF in QEMU with semihosting, decodes the defmt
# log with defmt-print, and exits with the firmware's status. `-icount shift=0` makes the
# SysTick count instructions exactly (the firmware reports instructions per inference).
# usage: qemu-run.sh MACHINE CPU ELF
set -euo pipefail
machine=$1 cpu=$2 elf=$3
qemu-system-arm -machine "$machine" -cpu "$cpu" -nographic -icount shift=0 \
  -semihosting-config enable=on,target=native -kernel "$elf" \
  | defmt-print -e "$elf"
