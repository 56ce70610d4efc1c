//! The link to the host: under QEMU, semihosting (exit codes, files written into QEMU's
//! working directory); on a real board, the debug probe (`probe-rs run` ends at a
//! breakpoint when the image is done, and reports a fault when a check failed).

/// Ends the run: `ok` is whether every check passed.
pub fn exit(ok: bool) -> ! {
    #[cfg(feature = "qemu")]
    cortex_m_semihosting::debug::exit(if ok {
        cortex_m_semihosting::debug::EXIT_SUCCESS
    } else {
        cortex_m_semihosting::debug::EXIT_FAILURE
    });
    #[cfg(not(feature = "qemu"))]
    if !ok {
        // panic-probe's way: a permanently undefined instruction, which probe-rs reports.
        cortex_m::asm::udf();
    }
    loop {
        cortex_m::asm::bkpt();
    }
}

/// Writes `header` then `body` to the host file `name` (NUL-terminated).
#[cfg(feature = "qemu")]
pub fn write_file(name: &str, header: &[u8], body: &[u8]) -> Result<(), ()> {
    use cortex_m_semihosting::{nr, syscall};
    if !name.ends_with('\0') {
        return Err(());
    }
    // SAFETY: semihosting calls with pointers to live, correctly sized buffers.
    unsafe {
        let fd = syscall!(OPEN, name.as_ptr(), nr::open::W_TRUNC_BINARY, name.len() - 1) as isize;
        if fd < 0 {
            return Err(());
        }
        let mut ok = true;
        for part in [header, body] {
            // WRITE returns the number of bytes *not* written.
            ok &= syscall!(WRITE, fd as usize, part.as_ptr(), part.len()) == 0;
        }
        ok &= syscall!(CLOSE, fd as usize) == 0;
        if ok {
            Ok(())
        } else {
            Err(())
        }
    }
}
