/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* guest_bench: exit costs timed from inside the guest, then the host-side loops (the guests and their constants: common.S). */
    .set BENCH_ROUNDS, 2000
    /* rdtsc into r12 (start) / r13 (end); clobbers rax, rdx. */
    .macro TSC reg
    rdtsc
    shl $32, %rdx
    or %rdx, %rax
    mov %rax, \reg
    .endm

    .balign 16
    .global guest_bench_start, guest_bench_end
guest_bench_start:
    .code64
    mov $0x80000, %rsp
    TSC %r12
    mov $BENCH_ROUNDS, %r14d
1:  mov $0x40000000, %eax
    cpuid
    dec %r14d
    jnz 1b
    TSC %r13
    sub %r12, %r13
    mov %r13, RESULTS
    TSC %r12
    mov $BENCH_ROUNDS, %r14d
1:  xor %eax, %eax
    vmcall
    dec %r14d
    jnz 1b
    TSC %r13
    sub %r12, %r13
    mov %r13, RESULTS + 8
    TSC %r12
    mov $BENCH_ROUNDS, %r14d
1:  out %al, $0x80
    dec %r14d
    jnz 1b
    TSC %r13
    sub %r12, %r13
    mov %r13, RESULTS + 16
    movq $BENCH_ROUNDS, RESULTS + 24
    /* Host-side phase: marker VMCALL, CPUIDs, marker VMCALL, OUTs, then VMCALLs forever. */
    xor %eax, %eax
    vmcall
    mov $BENCH_ROUNDS, %r14d
1:  mov $0x40000000, %eax
    cpuid
    dec %r14d
    jnz 1b
    xor %eax, %eax
    vmcall
    mov $BENCH_ROUNDS, %r14d
1:  out %al, $0x80
    dec %r14d
    jnz 1b
1:  xor %eax, %eax
    vmcall
    jmp 1b
guest_bench_end:
