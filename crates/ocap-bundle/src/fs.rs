//! The file system the bundler reads through.
//!
//! Resolution and loading only ever ask four questions (is this a file, is this a directory,
//! what does it contain, what is its canonical name), so they go through [`FileSystem`]
//! rather than `std::fs`. That lets a binary carry the packages vat sources import
//! ([`EmbeddedFs`]: a tar archive mounted in memory under a virtual root) instead of depending
//! on a `node_modules` left on the disk of the machine that built it, without extracting
//! anything to disk.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// What the bundler needs from a file system.
pub trait FileSystem: Send + Sync {
    /// `path` names a regular file (following symlinks).
    fn is_file(&self, path: &Path) -> bool;
    /// `path` names a directory (following symlinks).
    fn is_dir(&self, path: &Path) -> bool;
    /// The file's contents as UTF-8 text.
    fn read_to_string(&self, path: &Path) -> std::io::Result<String>;
    /// The name a module is known by, so that one file reached by two paths is one module.
    /// Best effort: a path that cannot be canonicalized is returned as it is.
    fn canonical(&self, path: &Path) -> PathBuf;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct Disk;

impl FileSystem for Disk {
    fn is_file(&self, path: &Path) -> bool {
        path.is_file()
    }

    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }

    fn read_to_string(&self, path: &Path) -> std::io::Result<String> {
        read_regular_file(path, MAX_SOURCE_FILE_BYTES)
    }

    fn canonical(&self, path: &Path) -> PathBuf {
        path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
    }
}

/// The largest source file the bundler reads from disk.
pub const MAX_SOURCE_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Reads a file that a config or a vat source names, safely: only a regular file (after
/// symlinks), of at most `max_bytes`, as UTF-8. A FIFO, a device (`/dev/zero`), a socket or a
/// directory is an `InvalidInput` error naming it, without blocking or reading a byte: the
/// file is opened non-blocking and checked through the opened descriptor, so swapping the
/// path for a FIFO after a check cannot make the read hang. The size is checked before
/// reading and enforced while reading, in case the file grows (issue 11 item 1:
/// `bundleSpec: "/dev/zero"` once grew the daemon to 2.4 GB).
pub fn read_regular_file(path: &Path, max_bytes: u64) -> std::io::Result<String> {
    use std::io::{Error, ErrorKind};
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY).open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(Error::new(ErrorKind::InvalidInput, format!("{} is not a regular file", path.display())));
    }
    let too_big = |len: u64| {
        Error::new(ErrorKind::InvalidData, format!("{} is {len} bytes; the limit is {max_bytes}", path.display()))
    };
    if meta.len() > max_bytes {
        return Err(too_big(meta.len()));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(max_bytes.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_big(bytes.len() as u64));
    }
    String::from_utf8(bytes)
        .map_err(|e| Error::new(ErrorKind::InvalidData, format!("{} is not UTF-8 text: {e}", path.display())))
}

/// Why an embedded archive could not be mounted. The archive is made by a build script, so
/// any of these means a broken build, not bad user input.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("the archive's mount point {} is not an absolute path", root.display())]
    RelativeRoot { root: PathBuf },
    #[error("reading the archive: {0}")]
    Io(#[from] std::io::Error),
    #[error("archive entry {name:?} is not a plain relative path")]
    BadPath { name: String },
    #[error("archive entry {name:?} has unsupported type {kind}")]
    UnsupportedEntry { name: String, kind: String },
    #[error("archive entry {name:?} links to {target:?}, which comes nowhere before it")]
    DanglingLink { name: String, target: String },
    #[error("archive entry {name:?} is not UTF-8 text")]
    NotText { name: String },
}

/// A gzip-compressed tar archive of files, mounted read-only in memory at an absolute
/// `root`, over the real disk: a path at or under `root` is answered from the archive alone
/// (never from the disk, even if something exists there), any other path from the disk.
///
/// The archive holds regular files, and hard links to an earlier regular file (the build
/// writes a file whose content it has already written as a link, which is how the three
/// copies of `ses`'s 500 KB `dist` files cost one). Directories are implied by the files.
pub struct EmbeddedFs {
    root: PathBuf,
    files: HashMap<PathBuf, Arc<str>>,
    dirs: HashSet<PathBuf>,
}

impl std::fmt::Debug for EmbeddedFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedFs").field("root", &self.root).field("files", &self.files.len()).finish()
    }
}

impl EmbeddedFs {
    /// Decompress and index `archive` (tar + gzip) under `root`.
    pub fn from_tar_gz(root: impl Into<PathBuf>, archive: &[u8]) -> Result<EmbeddedFs, ArchiveError> {
        let root = root.into();
        if !root.is_absolute() {
            return Err(ArchiveError::RelativeRoot { root });
        }
        let root = normalize(&root);
        let mut files: HashMap<PathBuf, Arc<str>> = HashMap::new();
        let mut dirs = HashSet::from([root.clone()]);
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
        for entry in tar.entries()? {
            let mut entry = entry?;
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let relative = plain_relative(&name).ok_or_else(|| ArchiveError::BadPath { name: name.clone() })?;
            let path = root.join(&relative);
            let kind = entry.header().entry_type();
            let text: Arc<str> = if kind.is_file() {
                let mut bytes = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0));
                entry.read_to_end(&mut bytes)?;
                String::from_utf8(bytes).map_err(|_| ArchiveError::NotText { name: name.clone() })?.into()
            } else if kind.is_hard_link() {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .ok_or_else(|| ArchiveError::BadPath { name: name.clone() })?;
                let target_path = plain_relative(&target)
                    .map(|t| root.join(t))
                    .ok_or_else(|| ArchiveError::BadPath { name: target.clone() })?;
                files
                    .get(&target_path)
                    .cloned()
                    .ok_or_else(|| ArchiveError::DanglingLink { name: name.clone(), target: target.clone() })?
            } else if kind.is_dir() {
                dirs.extend(path.ancestors().take_while(|d| *d != root).map(Path::to_path_buf));
                continue;
            } else {
                return Err(ArchiveError::UnsupportedEntry { name, kind: format!("{kind:?}") });
            };
            dirs.extend(path.ancestors().skip(1).take_while(|d| *d != root).map(Path::to_path_buf));
            files.insert(path, text);
        }
        Ok(EmbeddedFs { root, files, dirs })
    }

    /// Where the archive is mounted.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// How many files the archive holds.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// The archive holds no file.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// `Some(normalized path)` if `path` is the archive's to answer.
    fn inside(&self, path: &Path) -> Option<PathBuf> {
        let normalized = normalize(path);
        normalized.starts_with(&self.root).then_some(normalized)
    }
}

impl FileSystem for EmbeddedFs {
    fn is_file(&self, path: &Path) -> bool {
        match self.inside(path) {
            Some(p) => self.files.contains_key(&p),
            None => Disk.is_file(path),
        }
    }

    fn is_dir(&self, path: &Path) -> bool {
        match self.inside(path) {
            Some(p) => self.dirs.contains(&p),
            None => Disk.is_dir(path),
        }
    }

    fn read_to_string(&self, path: &Path) -> std::io::Result<String> {
        match self.inside(path) {
            Some(p) => self.files.get(&p).map(|text| text.to_string()).ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file in the embedded packages")
            }),
            None => Disk.read_to_string(path),
        }
    }

    fn canonical(&self, path: &Path) -> PathBuf {
        match self.inside(path) {
            Some(p) => p,
            None => Disk.canonical(path),
        }
    }
}

impl<T: FileSystem + ?Sized> FileSystem for Arc<T> {
    fn is_file(&self, path: &Path) -> bool {
        (**self).is_file(path)
    }

    fn is_dir(&self, path: &Path) -> bool {
        (**self).is_dir(path)
    }

    fn read_to_string(&self, path: &Path) -> std::io::Result<String> {
        (**self).read_to_string(path)
    }

    fn canonical(&self, path: &Path) -> PathBuf {
        (**self).canonical(path)
    }
}

/// `a/./b/../c` → `a/c`, lexically (the archive has no symlinks, so this is exact there).
/// `..` above the root stays at the root, as the OS does for `/..`.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                let at_relative_start = matches!(out.components().next_back(), None | Some(Component::ParentDir));
                if at_relative_start && !path.is_absolute() {
                    out.push("..");
                } else {
                    out.pop();
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// An archive member's name as a relative path of plain components (`./` prefixes and a
/// trailing `/` allowed), or `None` for anything that could escape the mount point.
fn plain_relative(name: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in Path::new(name).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(entries: &[(&str, Option<&str>, &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default()));
        for (name, link, text) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_mode(0o644);
            match link {
                None => {
                    header.set_size(text.len() as u64);
                    header.set_entry_type(tar::EntryType::Regular);
                    builder.append_data(&mut header, name, text.as_bytes()).unwrap();
                }
                Some(target) => {
                    header.set_size(0);
                    header.set_entry_type(tar::EntryType::Link);
                    builder.append_link(&mut header, name, target).unwrap();
                }
            }
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn files_links_and_implied_directories_are_served_from_memory() {
        let bytes = archive(&[
            ("node_modules/a/package.json", None, "{}"),
            ("node_modules/a/src/index.js", None, "export const a = 1;"),
            ("node_modules/b/index.js", Some("node_modules/a/src/index.js"), ""),
        ]);
        let fs = EmbeddedFs::from_tar_gz("/virtual/pkgs", &bytes).unwrap();
        assert_eq!(fs.len(), 3);
        let root = Path::new("/virtual/pkgs");
        assert!(fs.is_file(&root.join("node_modules/a/src/index.js")));
        assert!(fs.is_file(&root.join("node_modules/a/src/../package.json")));
        assert!(fs.is_dir(&root.join("node_modules/a/src")));
        assert!(fs.is_dir(&root.join("node_modules")));
        assert!(fs.is_dir(root));
        assert!(!fs.is_dir(&root.join("node_modules/a/package.json")));
        assert!(!fs.is_file(&root.join("node_modules/a")));
        assert_eq!(fs.read_to_string(&root.join("node_modules/b/index.js")).unwrap(), "export const a = 1;");
        assert_eq!(
            fs.canonical(&root.join("node_modules/a/./src/../package.json")),
            root.join("node_modules/a/package.json")
        );
        let missing = fs.read_to_string(&root.join("node_modules/c/index.js")).unwrap_err();
        assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn paths_outside_the_root_go_to_the_disk_and_inside_never_do() {
        let dir = std::env::temp_dir().join(format!("ocap-bundle-fs-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("inside")).unwrap();
        std::fs::write(dir.join("outside.js"), "disk").unwrap();
        std::fs::write(dir.join("inside/real.js"), "disk too").unwrap();
        let bytes = archive(&[("x.js", None, "memory")]);
        let fs = EmbeddedFs::from_tar_gz(dir.join("inside"), &bytes).unwrap();
        assert_eq!(fs.read_to_string(&dir.join("outside.js")).unwrap(), "disk");
        assert_eq!(fs.read_to_string(&dir.join("inside/x.js")).unwrap(), "memory");
        // A real file under the mount point is hidden by it.
        assert!(!fs.is_file(&dir.join("inside/real.js")));
        assert!(fs.is_file(&dir.join("inside/../outside.js")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn entries_that_could_escape_or_dangle_are_refused() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(1);
        header.set_mode(0o644);
        // `append_data` refuses `..`, so write the name into the header by hand.
        header.as_gnu_mut().unwrap().name[..10].copy_from_slice(b"../evil.js");
        header.set_cksum();
        builder.append(&header, &b"x"[..]).unwrap();
        let tar_bytes = builder.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, &tar_bytes).unwrap();
        let err = EmbeddedFs::from_tar_gz("/v", &gz.finish().unwrap()).unwrap_err();
        assert!(matches!(err, ArchiveError::BadPath { .. }), "{err}");

        let dangling = archive(&[("b.js", Some("a.js"), "")]);
        let err = EmbeddedFs::from_tar_gz("/v", &dangling).unwrap_err();
        assert!(matches!(err, ArchiveError::DanglingLink { .. }), "{err}");

        let err = EmbeddedFs::from_tar_gz("relative", &archive(&[])).unwrap_err();
        assert!(matches!(err, ArchiveError::RelativeRoot { .. }), "{err}");
    }

    #[test]
    fn normalize_is_lexical() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
        assert_eq!(normalize(Path::new("/../a")), PathBuf::from("/a"));
        assert_eq!(normalize(Path::new("a/../../b")), PathBuf::from("../b"));
        assert_eq!(normalize(Path::new("../../b")), PathBuf::from("../../b"));
    }
}
