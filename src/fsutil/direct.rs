//! Blob bytes that bypass the page cache (`O_DIRECT`) on their way into and out of the cache.
//!
//! Every blob of a mirror run is written to the cache once and read back once, by its upload.
//! Through the page cache that costs two copies per byte and one freshly allocated page per
//! 4 KiB, and fresh pages are what VMs with free page reporting (virtio-balloon) pay for most:
//! on this project's 2-core VM, a buffered 512 MiB write took 1.0–1.2 s of system time, the same
//! write with `O_DIRECT` 0.1–0.2 s, and an `O_DIRECT` read of it 0.04 s. Direct I/O also leaves
//! no blob pages behind to evict what a co-located registry keeps in memory.
//!
//! Direct I/O wants the memory, the file offset and the length aligned to the device's block
//! size. The writer gathers bytes into an aligned buffer and writes whole aligned buffers; an
//! unaligned head or tail (a resumed download, the last bytes of a blob) goes through the page
//! cache as usual. Where the file system refuses `O_DIRECT` (tmpfs on older kernels, some FUSE
//! file systems, every OS but Linux) both fall back to ordinary I/O: only speed changes.

use std::fs::File;
use std::io;

use bytes::Bytes;

/// Alignment for memory, offsets and lengths: 4 KiB satisfies 512-byte and 4 KiB block devices.
const ALIGN: usize = 4096;
/// Bytes gathered before each direct write.
const WRITE_BUFFER: usize = 1024 * 1024;

/// Bytes a pooled buffer holds: one [`WRITE_BUFFER`] plus a block on each side, enough for the
/// aligned span around any piece of up to [`WRITE_BUFFER`] bytes, and for the alignment itself.
const POOLED: usize = WRITE_BUFFER + 2 * ALIGN;
/// Buffers kept for reuse at most (about 1 MiB each): enough for the default 8 transfers with a
/// piece or two in flight each.
const POOL_LIMIT: usize = 24;

/// Buffers handed back by finished writes and sent pieces, for the next ones: a fresh buffer
/// has to be zeroed, and on a VM every fresh page is a host fault, while a reused one is
/// neither. (Measured: zeroing and faulting fresh buffers were ~4% of a cold copy's CPU.)
static POOL: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());

/// A zeroed (or reused) buffer of at least `len` bytes and the offset in it where an
/// [`ALIGN`]ed run of `len` bytes starts (the vector is never grown, so the address stays put).
fn aligned_buffer(len: usize) -> (PoolBuf, usize) {
    let pooled = if len + ALIGN <= POOLED {
        POOL.lock().ok().and_then(|mut pool| pool.pop())
    } else {
        None
    };
    let buf = pooled.unwrap_or_else(|| vec![0u8; (len + ALIGN).max(POOLED)]);
    let at = buf.as_ptr().align_offset(ALIGN).min(ALIGN);
    (PoolBuf(buf), at)
}

/// A buffer from [`aligned_buffer`]; it goes back to the pool when dropped.
struct PoolBuf(Vec<u8>);

impl std::ops::Deref for PoolBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl std::ops::DerefMut for PoolBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl Drop for PoolBuf {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.0);
        if buf.len() == POOLED {
            if let Ok(mut pool) = POOL.lock() {
                if pool.len() < POOL_LIMIT {
                    pool.push(buf);
                }
            }
        }
    }
}

/// A piece of a pooled buffer, shared as [`Bytes`] without a copy; the buffer goes back to the
/// pool when the last handle is dropped (after the connection sent it).
struct PooledPiece {
    buf: PoolBuf,
    range: std::ops::Range<usize>,
}

impl AsRef<[u8]> for PooledPiece {
    fn as_ref(&self) -> &[u8] {
        &self.buf[self.range.clone()]
    }
}

fn is_aligned(n: u64) -> bool {
    n.is_multiple_of(ALIGN as u64)
}

/// Turns `O_DIRECT` on or off for an open file. Fails (EINVAL) where the file system has no
/// direct I/O.
#[cfg(target_os = "linux")]
fn set_direct(file: &File, on: bool) -> io::Result<()> {
    use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
    let flags = fcntl_getfl(file)?;
    let wanted = if on {
        flags | OFlags::DIRECT
    } else {
        flags - OFlags::DIRECT
    };
    if wanted != flags {
        fcntl_setfl(file, wanted)?;
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn set_direct(_file: &File, on: bool) -> io::Result<()> {
    if on {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    } else {
        Ok(())
    }
}

/// Whether an I/O error means "not with `O_DIRECT`" (bad alignment for this device, or no
/// direct I/O at all), so the same call should be made again through the page cache.
fn refuses_direct(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::InvalidInput
}

#[cfg(unix)]
fn write_all_at(file: &File, data: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, data, offset)
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(not(unix))]
fn write_all_at(file: &File, data: &[u8], offset: u64) -> io::Result<()> {
    use std::io::{Seek, Write};
    let mut file = file;
    file.seek(io::SeekFrom::Start(offset))?;
    file.write_all(data)
}

#[cfg(not(unix))]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::io::{Read, Seek};
    let mut file = file;
    file.seek(io::SeekFrom::Start(offset))?;
    file.read(buf)
}

/// Writes a file sequentially from a given offset, with `O_DIRECT` where it can.
///
/// Bytes are copied into an aligned buffer and written when it is full, so nothing is on disk
/// until [`DirectWriter::finish`] (or a full buffer); the caller still fsyncs the file it gets
/// back, for the metadata and the device's own cache.
pub struct DirectWriter {
    file: File,
    /// The file offset of the first buffered byte.
    offset: u64,
    buf: PoolBuf,
    /// Where the aligned part of `buf` starts.
    at: usize,
    /// Bytes buffered.
    len: usize,
    /// Whether direct writes are still being tried (false after the file system refused one).
    direct: bool,
    /// Whether the file descriptor has `O_DIRECT` set right now.
    fd_direct: bool,
}

impl DirectWriter {
    /// A writer that puts the next byte at `offset` of `file`.
    pub fn new(file: File, offset: u64) -> DirectWriter {
        let fd_direct = set_direct(&file, true).is_ok();
        let (buf, at) = aligned_buffer(WRITE_BUFFER);
        DirectWriter {
            file,
            offset,
            buf,
            at,
            len: 0,
            direct: fd_direct,
            fd_direct,
        }
    }

    /// A writer that never uses `O_DIRECT` (for tests of the fallback).
    #[cfg(test)]
    fn buffered(file: File, offset: u64) -> DirectWriter {
        let mut writer = DirectWriter::new(file, offset);
        writer.direct = false;
        writer
    }

    /// Whether writes are going around the page cache.
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// How many bytes the buffer takes before it is written: a full buffer, less what makes the
    /// first write after an unaligned offset end on an aligned one.
    fn capacity(&self) -> usize {
        WRITE_BUFFER - (self.offset % ALIGN as u64) as usize
    }

    pub fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let capacity = self.capacity();
            let take = (capacity - self.len).min(data.len());
            let start = self.at + self.len;
            self.buf[start..start + take].copy_from_slice(&data[..take]);
            self.len += take;
            data = &data[take..];
            if self.len == capacity {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Writes what is buffered: directly when offset and length allow it, else through the
    /// page cache.
    fn flush(&mut self) -> io::Result<()> {
        if self.len == 0 {
            return Ok(());
        }
        let data = &self.buf[self.at..self.at + self.len];
        let aligned = is_aligned(self.offset) && is_aligned(self.len as u64);
        let mut done = false;
        if self.direct && aligned {
            if !self.fd_direct {
                self.fd_direct = set_direct(&self.file, true).is_ok();
            }
            if self.fd_direct {
                match write_all_at(&self.file, data, self.offset) {
                    Ok(()) => done = true,
                    Err(e) if refuses_direct(&e) => self.direct = false,
                    Err(e) => return Err(e),
                }
            }
        }
        if !done {
            if self.fd_direct {
                set_direct(&self.file, false)?;
                self.fd_direct = false;
            }
            write_all_at(&self.file, data, self.offset)?;
        }
        self.offset += self.len as u64;
        self.len = 0;
        Ok(())
    }

    /// Writes what is left and hands the file back (with `O_DIRECT` off), for the caller to
    /// fsync.
    pub fn finish(mut self) -> io::Result<File> {
        self.flush()?;
        if self.fd_direct {
            set_direct(&self.file, false)?;
        }
        Ok(self.file)
    }
}

/// For code that writes through `io::Write` (compressors). `flush` writes what is buffered
/// through the page cache, so callers should leave flushing to [`DirectWriter::finish`].
impl io::Write for DirectWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.write_all(data)?;
        Ok(data.len())
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        DirectWriter::write_all(self, data)
    }

    fn flush(&mut self) -> io::Result<()> {
        DirectWriter::flush(self)
    }
}

/// Reads pieces of a file for an upload, with `O_DIRECT` where it can: the bytes go from the
/// disk to the buffer that goes on the wire, and no page of the file stays cached.
pub struct PieceReader {
    file: File,
    direct: bool,
}

impl PieceReader {
    pub fn new(file: File) -> PieceReader {
        let direct = set_direct(&file, true).is_ok();
        PieceReader { file, direct }
    }

    /// A reader that never uses `O_DIRECT` (for tests of the fallback).
    #[cfg(test)]
    fn buffered(file: File) -> PieceReader {
        PieceReader {
            file,
            direct: false,
        }
    }

    /// Whether reads are going around the page cache.
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// Up to `len` bytes from `offset`: fewer only where the file ends.
    pub fn read(&mut self, offset: u64, len: usize) -> io::Result<Bytes> {
        if self.direct {
            match self.read_direct(offset, len) {
                Ok(piece) => return Ok(piece),
                Err(e) if refuses_direct(&e) => {
                    set_direct(&self.file, false)?;
                    self.direct = false;
                }
                Err(e) => return Err(e),
            }
        }
        let mut piece = vec![0u8; len];
        let mut filled = 0;
        while filled < len {
            match read_at(&self.file, &mut piece[filled..], offset + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        piece.truncate(filled);
        super::forget_pages(&self.file, offset, filled as u64);
        Ok(Bytes::from(piece))
    }

    /// Reads the aligned blocks covering `offset..offset + len` and returns the part asked for,
    /// without copying it out of the aligned buffer.
    fn read_direct(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        let start = offset - offset % ALIGN as u64;
        let skip = (offset - start) as usize;
        let span = (skip + len).div_ceil(ALIGN) * ALIGN;
        let (mut buf, at) = aligned_buffer(span);
        let mut filled = 0;
        while filled < span {
            match read_at(
                &self.file,
                &mut buf[at + filled..at + span],
                start + filled as u64,
            ) {
                Ok(0) => break,
                Ok(n) => {
                    filled += n;
                    // A read that ends off a block boundary ended at the end of the file.
                    if !is_aligned(n as u64) {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let end = filled.min(skip + len).max(skip);
        Ok(Bytes::from_owner(PooledPiece {
            buf,
            range: at + skip..at + end,
        }))
    }
}

/// A file read from start to end in [`WRITE_BUFFER`]-sized pieces through a [`PieceReader`],
/// for code that reads through `io::Read` (a compressor reading an uncompressed layer).
pub struct SequentialReader {
    pieces: PieceReader,
    /// The file offset of the byte after `piece`.
    offset: u64,
    piece: Bytes,
}

impl SequentialReader {
    pub fn new(file: File) -> SequentialReader {
        SequentialReader {
            pieces: PieceReader::new(file),
            offset: 0,
            piece: Bytes::new(),
        }
    }
}

impl io::Read for SequentialReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.piece.is_empty() {
            self.piece = self.pieces.read(self.offset, WRITE_BUFFER)?;
            self.offset += self.piece.len() as u64;
        }
        let n = buf.len().min(self.piece.len());
        buf[..n].copy_from_slice(&self.piece.split_to(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes that differ at every offset, so a misplaced piece shows.
    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3] ^ seed)
            .collect()
    }

    fn open_rw(path: &std::path::Path) -> File {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .unwrap()
    }

    /// Writes `data` after a `prefix` already in the file, in pieces of `piece` bytes.
    fn write_in_pieces(direct: bool, prefix: usize, data: &[u8], piece: usize) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        std::fs::write(&path, pattern(prefix, 7)).unwrap();
        let file = open_rw(&path);
        let mut writer = if direct {
            DirectWriter::new(file, prefix as u64)
        } else {
            DirectWriter::buffered(file, prefix as u64)
        };
        for chunk in data.chunks(piece.max(1)) {
            writer.write_all(chunk).unwrap();
        }
        let file = writer.finish().unwrap();
        file.sync_all().unwrap();
        drop(file);
        std::fs::read(&path).unwrap()
    }

    #[test]
    fn writes_land_where_they_belong_with_and_without_direct_io() {
        let data = pattern(3 * WRITE_BUFFER + 12_345, 1);
        for direct in [true, false] {
            for prefix in [0, 1, ALIGN - 1, ALIGN, 3 * ALIGN + 17, WRITE_BUFFER + 5] {
                for piece in [1000, 65_536, WRITE_BUFFER + 1] {
                    let written = write_in_pieces(direct, prefix, &data, piece);
                    let mut expected = pattern(prefix, 7);
                    expected.extend_from_slice(&data);
                    assert_eq!(
                        written.len(),
                        expected.len(),
                        "direct={direct} prefix={prefix} piece={piece}"
                    );
                    assert!(
                        written == expected,
                        "content differs: direct={direct} prefix={prefix} piece={piece}"
                    );
                }
            }
        }
    }

    /// Where the file system takes `O_DIRECT`, a download's writes and an upload's reads use
    /// it from start to end: a misaligned buffer or offset would make them fall back quietly.
    #[cfg(target_os = "linux")]
    #[test]
    fn direct_io_is_used_where_the_file_system_allows_it() {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let supported = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32)
            .open(&path)
            .is_ok();
        if !supported {
            eprintln!(
                "{}: no O_DIRECT here, nothing to check",
                dir.path().display()
            );
            return;
        }
        let mut writer = DirectWriter::new(open_rw(&path), 0);
        assert!(writer.is_direct());
        let data = pattern(3 * WRITE_BUFFER + 100, 5);
        for chunk in data.chunks(70_000) {
            writer.write_all(chunk).unwrap();
            assert!(writer.is_direct(), "fell back to buffered writes");
        }
        writer.finish().unwrap();
        let mut reader = PieceReader::new(File::open(&path).unwrap());
        for offset in [0u64, 262_144, 3 * WRITE_BUFFER as u64] {
            reader.read(offset, 262_144).unwrap();
            assert!(
                reader.is_direct(),
                "fell back to buffered reads at {offset}"
            );
        }
        assert!(std::fs::read(&path).unwrap() == data);
    }

    #[test]
    fn io_traits_copy_a_file_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("from");
        let to = dir.path().join("to");
        let data = pattern(2 * WRITE_BUFFER + 4097, 6);
        std::fs::write(&from, &data).unwrap();
        let mut reader = SequentialReader::new(File::open(&from).unwrap());
        let mut writer = DirectWriter::new(open_rw(&to), 0);
        io::copy(&mut reader, &mut writer).unwrap();
        writer.finish().unwrap().sync_all().unwrap();
        assert!(std::fs::read(&to).unwrap() == data);
    }

    #[test]
    fn an_empty_or_tiny_write_is_exact() {
        for len in [0, 1, ALIGN, ALIGN + 1] {
            let data = pattern(len, 3);
            assert_eq!(write_in_pieces(true, 0, &data, 4096), data);
        }
    }

    #[test]
    fn pieces_read_back_exactly_from_any_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let data = pattern(2 * WRITE_BUFFER + 777, 9);
        std::fs::write(&path, &data).unwrap();
        for direct in [true, false] {
            let file = File::open(&path).unwrap();
            let mut reader = if direct {
                PieceReader::new(file)
            } else {
                PieceReader::buffered(file)
            };
            for (offset, len) in [
                (0usize, 262_144usize),
                (1, 262_144),
                (ALIGN - 3, 10),
                (WRITE_BUFFER, WRITE_BUFFER),
                (data.len() - 500, 262_144),
                (data.len() - 1, 1),
                (data.len(), 4096),
                (data.len() + 10, 4096),
                (5, 0),
            ] {
                let piece = reader.read(offset as u64, len).unwrap();
                let want = &data[offset.min(data.len())..(offset + len).min(data.len())];
                assert!(
                    piece[..] == *want,
                    "direct={direct} offset={offset} len={len}: got {} bytes, want {}",
                    piece.len(),
                    want.len()
                );
            }
        }
    }

    #[test]
    fn a_whole_file_read_in_upload_pieces_is_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let data = pattern(5 * 262_144 + 99, 4);
        std::fs::write(&path, &data).unwrap();
        let mut reader = PieceReader::new(File::open(&path).unwrap());
        let mut back = Vec::new();
        let mut at = 0u64;
        loop {
            let piece = reader.read(at, 262_144).unwrap();
            if piece.is_empty() {
                break;
            }
            at += piece.len() as u64;
            back.extend_from_slice(&piece);
        }
        assert!(back == data);
    }
}
