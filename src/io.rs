//! Writing files so that a crash never leaves a half-written one: checkpoints here, and every
//! output file of the command line.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Writes `bytes` to `path` atomically, the one way every output file is written: the whole
/// file to the sibling `<name>.tmp` (replacing a stale one), fsynced, renamed over `path` (an
/// atomic replace on POSIX file systems), then the folder fsynced (best effort). A reader
/// sees the old file or the new one, never a mix; on any error the temporary file is removed
/// and an existing file at `path` is left as it was.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io_err = |p: &Path, source| Error::Io { path: p.display().to_string(), source };
    let tmp = temporary(path)
        .ok_or_else(|| io_err(path, std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name")))?;
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(source) = written {
        // Best effort: the file may not exist (e.g. its folder does not).
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(&tmp, source));
    }
    rename_into_place(&tmp, path)
}

/// The temporary sibling `<name>.tmp` that [`write_atomic`] writes `path` through.
pub fn temporary(path: &Path) -> Option<std::path::PathBuf> {
    let mut name = path.file_name()?.to_os_string();
    name.push(".tmp");
    Some(path.with_file_name(name))
}

/// Renames a written and synced temporary file over `path` and fsyncs the folder; on an
/// error the temporary is removed.
pub fn rename_into_place(tmp: &Path, path: &Path) -> Result<()> {
    if let Err(source) = std::fs::rename(tmp, path) {
        let _ = std::fs::remove_file(tmp);
        return Err(Error::Io { path: path.display().to_string(), source });
    }
    sync_dir(path);
    Ok(())
}

/// Fsyncs the folder holding `path` so that a rename survives a crash (best effort: some
/// platforms and file systems cannot open or sync a folder, and the data is in place anyway).
fn sync_dir(path: &Path) {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}
