//! Small filesystem helpers shared by every module that publishes files (cache, layouts,
//! bundles, the lock). No dependencies on the rest of the crate.

use std::io;

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
/// A mirror run streams every blob through the cache once (written, fsynced, read back for the
/// upload), so without this a 100 GB mirror leaves 100 GB of cache pages behind, evicting a
/// co-located registry's data. It also costs time on VMs that hand free memory back to the host
/// (virtio-balloon free page reporting): every page the kernel has not used lately faults in
/// on the host when first touched. Measured on this project's 2-core VM: writing 2 GB into
/// such pages took 4.1–4.7 s of system time, into pages freed a moment before 0.4 s. Pages
/// released as soon as they are read are reused hot by the next blob.
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
