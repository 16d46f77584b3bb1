/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * castor-mbtest: a Multiboot 1 guest kernel in 32-bit assembly (Multiboot Specification 0.6.96).
 *
 * Entered as section 3.2 describes: protected mode, paging off, flat segments, interrupts off,
 * EAX = 0x2BADB002, EBX = physical address of the Multiboot information (section 3.3); no
 * usable stack. It prints on COM1:
 *
 *   mbtest: hello from a Multiboot guest
 *   mbtest: cmdline '<cmdline>'                   ('' without info flag 2)
 *   mbtest: mem_upper <N> KiB                      (0 without info flag 0)
 *   mbtest: mmap <N> entries, <M> KiB available    (type 1 entries; 0, 0 without info flag 6)
 *   mbtest: module <I> at <A> '<string>' <L> bytes, sum <S>
 *                                                  (one per boot module with info flag 3: its
 *                                                  address, string, length and byte sum, all
 *                                                  decimal; none without modules)
 *   mbtest: exit status <S>
 *
 * and then writes S, the decimal value of the first word `status=<S>` in the command line
 * (default 0), to the debug-exit port 0xF4 with a 32-bit OUT (QEMU's isa-debug-exit ends with
 * exit code (S << 1) | 1), and halts with interrupts off. If EAX is not the Multiboot magic it
 * prints `mbtest: bad magic` after the hello line and exits with status 0x7F instead.
 *
 * The header uses the a.out kludge (flag 16) so that QEMU, which refuses ELF64 images, loads
 * the file flat at 1 MiB (see ../linker.ld).
 */
    .set COM1, 0x3F8
    .set DEBUG_EXIT, 0xF4
    .set MB_HEADER_MAGIC, 0x1BADB002
    .set MB_BOOT_MAGIC, 0x2BADB002
    .set MB_FLAGS, (1 << 1) | (1 << 16)     /* memory information; a.out kludge address fields */
    .set BAD_MAGIC_STATUS, 0x7F
    .set MMAP_MAX_ENTRIES, 64               /* stop counting a corrupt memory map here */

    .section .multiboot_header, "a"
    .balign 4
mb_header:
    .long MB_HEADER_MAGIC
    .long MB_FLAGS
    .long -(MB_HEADER_MAGIC + MB_FLAGS)
    .long mb_header                         /* header_addr */
    .long __load_start                      /* load_addr */
    .long __load_end                        /* load_end_addr */
    .long __bss_end                         /* bss_end_addr */
    .long _start                            /* entry_addr */

    .section .text, "ax"
    .code32
    .global _start
_start:
    cli
    cld
    mov $stack_top, %esp
    mov %eax, %edi                          /* loader magic */
    mov %ebx, %ebp                          /* Multiboot information, kept in ebp throughout */

    /* COM1: no interrupts, divisor 1 (115200 baud), 8N1, FIFOs on and cleared, DTR+RTS. */
    mov $(COM1 + 1), %dx
    mov $0x00, %al
    out %al, %dx
    mov $(COM1 + 3), %dx
    mov $0x80, %al                          /* DLAB */
    out %al, %dx
    mov $(COM1 + 0), %dx
    mov $0x01, %al
    out %al, %dx
    mov $(COM1 + 1), %dx
    mov $0x00, %al
    out %al, %dx
    mov $(COM1 + 3), %dx
    mov $0x03, %al                          /* 8 data bits, no parity, 1 stop bit */
    out %al, %dx
    mov $(COM1 + 2), %dx
    mov $0x07, %al
    out %al, %dx
    mov $(COM1 + 4), %dx
    mov $0x03, %al
    out %al, %dx

    mov $msg_hello, %esi
    call puts
    cmp $MB_BOOT_MAGIC, %edi
    je 1f
    mov $msg_bad_magic, %esi
    call puts
    mov $BAD_MAGIC_STATUS, %eax
    jmp exit

    /* Command line (info flag 2, offset 16). */
1:  xor %ebx, %ebx
    testl $(1 << 2), (%ebp)
    jz 2f
    mov 16(%ebp), %ebx
2:  mov %ebx, cmdline
    mov $msg_cmdline, %esi
    call puts
    mov %ebx, %esi
    test %esi, %esi
    jz 3f
    call puts
3:  mov $msg_quote_nl, %esi
    call puts

    /* mem_upper (info flag 0, offset 8). */
    mov $msg_mem_upper, %esi
    call puts
    xor %eax, %eax
    testl $(1 << 0), (%ebp)
    jz 4f
    mov 8(%ebp), %eax
4:  call put_dec
    mov $msg_kib_nl, %esi
    call puts

    /* Memory map (info flag 6: mmap_length at 44, mmap_addr at 48). Each entry is
     * (u32 size, u64 base, u64 length, u32 type) and the next starts size + 4 bytes on. */
    xor %ecx, %ecx                          /* entries */
    xor %ebx, %ebx                          /* KiB of type 1 (available) memory */
    testl $(1 << 6), (%ebp)
    jz 7f
    mov 48(%ebp), %esi
    mov 44(%ebp), %edi
    add %esi, %edi                          /* end of the map */
5:  cmp %edi, %esi
    jae 7f
    cmp $MMAP_MAX_ENTRIES, %ecx
    jae 7f
    inc %ecx
    cmpl $1, 20(%esi)
    jne 6f
    mov 12(%esi), %eax
    mov 16(%esi), %edx
    shrd $10, %edx, %eax                    /* length / 1024 (low 32 bits) */
    add %eax, %ebx
6:  mov (%esi), %eax
    lea 4(%esi, %eax), %esi
    jmp 5b
7:  mov $msg_mmap, %esi
    call puts
    mov %ecx, %eax
    call put_dec
    mov $msg_entries, %esi
    call puts
    mov %ebx, %eax
    call put_dec
    mov $msg_available, %esi
    call puts

    /* Boot modules (info flag 3: mods_count at 20, mods_addr at 24). Each entry is
     * (u32 mod_start, u32 mod_end, u32 string, u32 reserved). */
    testl $(1 << 3), (%ebp)
    jz 14f
    mov 20(%ebp), %ecx                      /* modules */
    mov 24(%ebp), %ebx                      /* the current entry */
    xor %edi, %edi                          /* its index */
10: cmp %ecx, %edi
    jae 14f
    mov $msg_module, %esi
    call puts
    mov %edi, %eax
    call put_dec
    mov $msg_at, %esi
    call puts
    mov (%ebx), %eax
    call put_dec
    mov $msg_space_quote, %esi
    call puts
    mov 8(%ebx), %esi
    test %esi, %esi
    jz 11f
    call puts
11: mov $msg_quote_space, %esi
    call puts
    mov 4(%ebx), %eax
    sub (%ebx), %eax
    call put_dec
    mov $msg_bytes_sum, %esi
    call puts
    push %ecx
    push %edx
    mov (%ebx), %esi
    mov 4(%ebx), %edx                       /* end of the module */
    xor %eax, %eax                          /* the byte sum */
12: cmp %edx, %esi
    jae 13f
    movzbl (%esi), %ecx
    add %ecx, %eax
    inc %esi
    jmp 12b
13: pop %edx
    pop %ecx
    call put_dec
    mov $msg_nl, %esi
    call puts
    add $16, %ebx
    inc %edi
    jmp 10b

    /* Exit status from the command line. */
14: mov cmdline, %esi
    call parse_status
    push %eax
    mov $msg_exit, %esi
    call puts
    mov (%esp), %eax
    call put_dec
    mov $msg_nl, %esi
    call puts
    pop %eax

    /* Exit with status eax through the debug-exit port, then halt for good. */
exit:
    mov $DEBUG_EXIT, %dx
    out %eax, %dx
8:  cli
    hlt
    jmp 8b

/* Writes al to COM1 once the transmitter holding register is empty. Clobbers nothing. */
putc:
    push %edx
    push %eax
    mov $(COM1 + 5), %dx
1:  in %dx, %al
    test $0x20, %al
    jz 1b
    pop %eax
    mov $COM1, %dx
    out %al, %dx
    pop %edx
    ret

/* Writes the NUL-terminated string at esi. Clobbers eax, esi. */
puts:
1:  lodsb
    test %al, %al
    jz 2f
    call putc
    jmp 1b
2:  ret

/* Writes eax in decimal. Clobbers eax. */
put_dec:
    push %ebx
    push %ecx
    push %edx
    mov $10, %ebx
    xor %ecx, %ecx
1:  xor %edx, %edx
    div %ebx
    add $'0', %dl
    push %edx                               /* digits come out lowest first */
    inc %ecx
    test %eax, %eax
    jnz 1b
2:  pop %eax
    call putc
    loop 2b
    pop %edx
    pop %ecx
    pop %ebx
    ret

/* Returns in eax the decimal number after the first word starting "status=" in the
 * NUL-terminated string at esi (0 if esi is 0, there is no such word, or no digits follow).
 * Clobbers ecx, edx, esi, edi. */
parse_status:
    xor %eax, %eax
    test %esi, %esi
    jz 9f
    mov $' ', %dl                           /* the character before the current one */
1:  cmpb $0, (%esi)
    je 9f
    cmp $' ', %dl
    jne 3f                                  /* not at the start of a word */
    mov $str_status, %edi
    mov %esi, %ecx
2:  mov (%edi), %dh
    test %dh, %dh
    jz 4f                                   /* all of "status=" matched */
    cmp (%ecx), %dh
    jne 3f
    inc %edi
    inc %ecx
    jmp 2b
3:  mov (%esi), %dl
    inc %esi
    jmp 1b
4:  movzbl (%ecx), %edx
    sub $'0', %edx
    cmp $9, %edx
    ja 9f
    imul $10, %eax, %eax
    add %edx, %eax
    inc %ecx
    jmp 4b
9:  ret

    .section .rodata, "a"
msg_hello:      .asciz "mbtest: hello from a Multiboot guest\n"
msg_bad_magic:  .asciz "mbtest: bad magic\n"
msg_cmdline:    .asciz "mbtest: cmdline '"
msg_quote_nl:   .asciz "'\n"
msg_mem_upper:  .asciz "mbtest: mem_upper "
msg_kib_nl:     .asciz " KiB\n"
msg_mmap:       .asciz "mbtest: mmap "
msg_entries:    .asciz " entries, "
msg_available:  .asciz " KiB available\n"
msg_module:     .asciz "mbtest: module "
msg_at:         .asciz " at "
msg_space_quote: .asciz " '"
msg_quote_space: .asciz "' "
msg_bytes_sum:  .asciz " bytes, sum "
msg_exit:       .asciz "mbtest: exit status "
msg_nl:         .asciz "\n"
str_status:     .asciz "status="

    .section .bss, "aw", @nobits
    .balign 4
cmdline:        .skip 4                     /* command line address, 0 if none */
    .balign 16
stack:          .skip 4096
stack_top:
