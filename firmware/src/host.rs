//! Files to the host through semihosting (open / write / close). The file appears in
//! QEMU's working directory.

use cortex_m_semihosting::{nr, syscall};

/// Writes `header` then `body` to the host file `name` (NUL-terminated).
pub fn write_file(name: &str, header: &[u8], body: &[u8]) -> Result<(), ()> {
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
