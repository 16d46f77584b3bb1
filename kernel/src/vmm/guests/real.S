/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* guest_real: 16-bit real-mode hello (the guests and their constants: common.S). */
    .balign 16
    .global guest_real_start, guest_real_end
guest_real_start:
    .code16
    xor %ax, %ax
    mov %ax, %ds
    mov $(0x7C00 + (greal_msg - guest_real_start)), %si
    PUTS_LOOP
    mov $0x32, %eax
    out %eax, $DEBUG_EXIT
    hlt
greal_msg:
    .asciz "guest16: hello from real mode\n"
guest_real_end:

