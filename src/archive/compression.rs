//! Compression, decided by content, never by file name: a `.tar.gz` that is really plain tar
//! (or a `.tar` that is zstd) is common after renames and re-packing.
//!
//! Reading: [`sniff`] looks at the magic bytes and [`decoder`] wraps a reader accordingly
//! (multi-member gzip and multi-frame zstd included). Writing: [`compress`] uses fixed settings
//! so the same layer gives the same bytes and digest on every run and machine, whatever its
//! core count:
//! - gzip is [`parallel_gzip`]: one gzip member (mtime 0, no name, XFL 0, OS 255) whose deflate
//!   stream is made of 1 MiB input blocks, each deflated at level 6 by zlib-rs with the previous
//!   32 KiB as dictionary and sync-flushed, or stored when its bytes are incompressible (decided
//!   from those bytes alone), then an empty final block, CRC-32 and size. Blocks are compressed
//!   in parallel and written in order, so threads change the speed, never the bytes.
//! - zstd is one frame at level 3, single-threaded, without checksum or content size.
//!
//! [`Compression::settings`] names all of this; it is part of the cache key that remembers
//! which compressed blob a layer became, so changing any of it must change that string.

use std::io::{self, BufRead, BufReader, Read, Write};

use crate::archive::parallel_gzip;

/// How a byte stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// The gzip level used for layers `mirror` compresses.
pub const GZIP_LEVEL: u32 = 6;
/// The zstd level used for layers `mirror` compresses.
pub const ZSTD_LEVEL: i32 = 3;

impl Compression {
    /// The name used in the Mirrorfile and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    /// The OCI layer media type for a tar compressed this way.
    pub fn layer_media_type(self) -> &'static str {
        match self {
            Compression::None => crate::oci::media_type::OCI_LAYER_TAR,
            Compression::Gzip => crate::oci::media_type::OCI_LAYER_GZIP,
            Compression::Zstd => crate::oci::media_type::OCI_LAYER_ZSTD,
        }
    }

    /// The settings that decide the compressed bytes, for cache keys.
    pub fn settings(self) -> String {
        match self {
            Compression::None => "none".into(),
            Compression::Gzip => format!("gzip-l{GZIP_LEVEL}-b1m-dict-anchored-zlibrs"),
            Compression::Zstd => format!("zstd-l{ZSTD_LEVEL}-nocheck"),
        }
    }
}

/// The compression the first bytes of a stream announce.
pub fn sniff(head: &[u8]) -> Compression {
    if head.starts_with(&GZIP_MAGIC) {
        Compression::Gzip
    } else if head.starts_with(&ZSTD_MAGIC) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Wraps `reader` so it yields the decompressed bytes, deciding by its first bytes.
pub fn decoder<'a, R: Read + 'a>(reader: R) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let mut buffered = BufReader::with_capacity(1 << 20, reader);
    let kind = sniff(buffered.fill_buf()?);
    let out: Box<dyn Read + 'a> = match kind {
        Compression::None => Box::new(buffered),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?),
    };
    Ok((kind, out))
}

/// Copies `input` into `output`, compressed with `kind`'s fixed settings.
pub fn compress(kind: Compression, input: &mut dyn Read, output: &mut dyn Write) -> io::Result<()> {
    match kind {
        Compression::None => {
            io::copy(input, output)?;
        }
        Compression::Gzip => {
            parallel_gzip::gzip(input, output, GZIP_LEVEL)?;
        }
        Compression::Zstd => {
            let mut encoder = zstd::stream::write::Encoder::new(output, ZSTD_LEVEL)?;
            encoder.include_checksum(false)?;
            encoder.include_contentsize(false)?;
            io::copy(input, &mut encoder)?;
            encoder.finish()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(kind: Compression) -> (Vec<u8>, Vec<u8>) {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut packed = Vec::new();
        compress(kind, &mut &data[..], &mut packed).expect("compress");
        {
            let (seen, mut reader) = decoder(&packed[..]).expect("decoder");
            assert_eq!(seen, kind);
            let mut back = Vec::new();
            reader.read_to_end(&mut back).expect("decompress");
            assert_eq!(back, data);
        }
        (packed, data)
    }

    #[test]
    fn detects_by_content_and_compresses_deterministically() {
        for kind in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let (a, _) = roundtrip(kind);
            let (b, _) = roundtrip(kind);
            assert_eq!(a, b, "{kind:?} is not deterministic");
        }
        let (gz, _) = roundtrip(Compression::Gzip);
        // mtime 0 and OS 255 in the header.
        assert_eq!(&gz[4..8], &[0, 0, 0, 0]);
        assert_eq!(gz[9], 255);
    }

    #[test]
    fn concatenated_gzip_members_are_read_whole() {
        let mut both = Vec::new();
        compress(Compression::Gzip, &mut &b"abc"[..], &mut both).expect("a");
        compress(Compression::Gzip, &mut &b"def"[..], &mut both).expect("b");
        let (_, mut reader) = decoder(&both[..]).expect("decoder");
        let mut out = String::new();
        reader.read_to_string(&mut out).expect("read");
        assert_eq!(out, "abcdef");
    }
}
