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
