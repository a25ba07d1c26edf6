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
