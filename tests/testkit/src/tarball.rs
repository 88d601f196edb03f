//! Hand-made gzipped tarballs for the install tests, including members no well-behaved archiver
//! writes (names with `..`, links out of the destination, set-id modes), so hostile archives can
//! be built without a tool that would refuse them.

use std::io::Write;

/// A member of a test archive: a regular file, a directory or a symlink, with raw names (so
/// that unsafe ones get through).
pub enum M<'a> {
    File(&'a str, u32, &'a [u8]),
    Dir(&'a str),
    Link(&'a str, &'a str),
}

pub fn targz(members: &[M<'_>]) -> Vec<u8> {
    let mut raw = Vec::new();
    for m in members {
        let mut h = tar::Header::new_old();
        let (name, data): (&str, &[u8]) = match m {
            M::File(n, mode, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                (n, data)
            }
            M::Dir(n) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o777);
                h.set_size(0);
                (n, &[])
            }
            M::Link(n, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                h.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
                (n, &[])
            }
        };
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        raw.extend_from_slice(h.as_bytes());
        raw.extend_from_slice(data);
        raw.resize(raw.len().div_ceil(512) * 512, 0);
    }
    raw.extend(vec![0u8; 1024]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    gz.finish().unwrap()
}
