/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* guest_triple: a triple fault on purpose (the guests and their constants: common.S). */
    .balign 16
    .global guest_triple_start, guest_triple_end
guest_triple_start:
    .code64
    lea gtri_msg(%rip), %rsi
    PUTS_LOOP
    lidt gtri_idt(%rip)
    ud2
gtri_idt:
    .short 0
    .quad 0
gtri_msg:
    .asciz "guest-triple: about to triple fault\n"
guest_triple_end:

