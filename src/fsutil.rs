//! Small filesystem helpers shared by every module that publishes files (cache, layouts,
//! bundles, the lock). No dependencies on the rest of the crate.

use std::io;

mod direct;

pub use direct::{DirectWriter, PieceReader, SequentialReader};

/// Gives a finished temp file the mode published files should have (0644, as skopeo and
/// registries write layouts): temp files are created owner-only, and layouts and bundles are
/// read by other users and web servers.
pub fn make_readable(file: &std::fs::File) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

/// Tells the kernel that `len` bytes of `file` from `offset` will not be read again soon, so
/// their page-cache pages can be freed now instead of pushing out what other processes use.
///
/// Used where a cache file is read through the page cache after all (file systems without
/// `O_DIRECT`, see [`PieceReader`]): a mirror run reads every blob once, for its upload, so
/// without this a 100 GB mirror would leave 100 GB of cache pages behind, evicting a
/// co-located registry's data, and on VMs that hand free memory back to the host every one of
/// those pages costs a host fault when first touched.
///
/// Advice only: an error (or another OS) changes nothing but speed, so it is ignored. Dirty
/// pages are not dropped (the kernel starts their writeback instead); callers advise after an
/// fsync or on pages they only read.
pub fn forget_pages(file: &std::fs::File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        if let Some(len) = std::num::NonZeroU64::new(len) {
            let _ = rustix::fs::fadvise(file, offset, Some(len), rustix::fs::Advice::DontNeed);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

/// One version of a file, told apart cheaply by its metadata: length, modification and change
/// times, and (on Unix) device and inode. A write or a replacing rename changes the stamp, so a
/// file hashed once in a run need not be hashed again while its stamp is the same. Damage that
/// bypasses the file system (a failing disk) keeps the stamp: the stamp only stands in for a
/// hash within one run, never across runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    #[cfg(unix)]
    changed: (i64, i64),
    #[cfg(unix)]
    identity: (u64, u64),
}

impl FileStamp {
    pub fn of(meta: &std::fs::Metadata) -> FileStamp {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        FileStamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            #[cfg(unix)]
            changed: (meta.ctime(), meta.ctime_nsec()),
            #[cfg(unix)]
            identity: (meta.dev(), meta.ino()),
        }
    }
}
