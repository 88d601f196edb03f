//! Safe tarball extraction, in two passes.
//!
//! [`check`](fn@check) reads an archive whole (to the end of its compressed stream, so a
//! corrupt or truncated archive fails here) and writes nothing. It refuses absolute paths, `..`, devices,
//! fifos, hard links and duplicate members; any member whose path goes through a symlink (a
//! member of the archive, or one already on disk below the destination); and any symlink whose
//! target, resolved against the archive's members and the disk, leaves the destination directory
//! or takes more than [`MAX_LINK_HOPS`] links. It also checks that every destination directory
//! is reached without a link on disk. Install checks every archive before it stages anything.
//!
//! [`stage`](fn@stage) then reads the archive again (refusing it if it no longer matches what
//! was checked) and writes each selected member to a temp file beside its final path, through
//! [`crate::safefs`]: directories are opened without following any link, so a link planted by a
//! service account is refused rather than written through. [`Staged::commit`] renames the temp
//! files into place, so a crash never leaves a half-written file at a final path.
//!
//! Staged files are owned root:root with the member's permission bits masked by
//! [`FILE_MODE_MASK`] (0755: no setuid, setgid or sticky bit, no write for group or others).
//! Member directories are created 0755 root:root; their modes in the archive are ignored.
//!
//! The parts: [`member`] (what one entry is: its cleaned path and kind), [`mod@check`] (the first
//! pass, the [`Checked`] plan it hands on, and the destination checks), `resolve` (each member's
//! place against the archive and the disk, and link targets resolved), [`mod@stage`] (the second
//! pass, temp files, and the commit) and [`error`]. This file only names them.

mod check;
mod error;
mod member;
mod resolve;
mod stage;

pub use check::{Checked, MAX_MEMBERS, check, check_dest, check_dir};
pub use error::ArchiveError;
pub use member::FILE_MODE_MASK;
pub use resolve::MAX_LINK_HOPS;
pub use stage::{Staged, StagedFile, stage, stage_file};

#[cfg(test)]
mod tests;
