//! Writers for tests of the archive writers' error paths.

use std::io::{self, Write};

/// Takes `room` bytes, then fails as a full disk does (`ENOSPC`, `ErrorKind::StorageFull`).
pub(crate) struct FullDisk {
    pub room: usize,
}

impl Write for FullDisk {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.room == 0 {
            return Err(io::Error::from_raw_os_error(28));
        }
        let n = buf.len().min(self.room);
        self.room -= n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
