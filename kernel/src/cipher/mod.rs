// SPDX-License-Identifier: MIT OR Apache-2.0
//! The peer link's ciphers on vector instructions, written as assembly: ChaCha20 on SSE2
//! ([`chacha`]) and AES-256-GCM on AES-NI and PCLMULQDQ ([`aes_gcm`]). Each gives the bytes
//! of a reference implementation (tested on the host, and checked again on the kernel target
//! before links use it). In the kernel the XMM registers hold the guest's state, so these run
//! only inside `arch::x86_64::vector::lend`.
//!
//! Why assembly: the kernel's target is soft-float, and LLVM then keeps vector values out of
//! the XMM registers even in functions compiled with `target_feature(enable = "sse2")` (the
//! intrinsics came out as scalar code). The compiler never uses the XMM registers in the
//! kernel, while a hosted build (tests) must be told they are clobbered ([`xmm_asm`]).

pub mod aes_gcm;
pub mod chacha;

/// `asm!` for code that uses XMM registers: as is on the kernel target (whose compiler never
/// allocates them and cannot name them), and with all sixteen declared clobbered in a hosted
/// build. Never uses the stack. The arguments end with a comma.
macro_rules! xmm_asm {
    ($($args:tt)*) => {{
        #[cfg(target_os = "none")]
        core::arch::asm!($($args)* options(nostack));
        #[cfg(not(target_os = "none"))]
        core::arch::asm!(
            $($args)*
            out("xmm0") _, out("xmm1") _, out("xmm2") _, out("xmm3") _,
            out("xmm4") _, out("xmm5") _, out("xmm6") _, out("xmm7") _,
            out("xmm8") _, out("xmm9") _, out("xmm10") _, out("xmm11") _,
            out("xmm12") _, out("xmm13") _, out("xmm14") _, out("xmm15") _,
            options(nostack),
        );
    }};
}
pub(crate) use xmm_asm;
