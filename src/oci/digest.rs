//! Content digests (`sha256:<hex>`), parsed once and hashed incrementally.
//!
//! Only `sha256` can be computed: it is what every registry uses. `sha512` digests parse, so that
//! a manifest naming one gets a clear "unsupported algorithm" error at verification time rather
//! than a parse failure far from its cause.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Digest as _;

/// A digest algorithm named in a descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// A validated content digest such as `sha256:0123…`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("digest `{0}` has no `algorithm:` prefix")]
    MissingAlgorithm(String),
    #[error(
        "digest `{input}` uses the unsupported algorithm `{algorithm}` (supported: sha256, sha512)"
    )]
    UnknownAlgorithm { input: String, algorithm: String },
    #[error("digest `{input}` must have {expected} lowercase hex characters after `{algorithm}:`")]
    BadHex {
        input: String,
        algorithm: &'static str,
        expected: usize,
    },
}

impl Digest {
    /// The sha256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        let mut hasher = Sha256Hasher::new();
        hasher.update(bytes);
        hasher.finish()
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The hex part, which is also the file name under `blobs/<algorithm>/`.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// `sha256:` plus the first 12 hex characters, for human output.
    pub fn short(&self) -> String {
        format!("{}:{}", self.algorithm.as_str(), &self.hex[..12])
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.as_str(), self.hex)
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let (algorithm, hex) = input
            .split_once(':')
            .ok_or_else(|| DigestError::MissingAlgorithm(input.to_string()))?;
        let algorithm = match algorithm {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            other => {
                return Err(DigestError::UnknownAlgorithm {
                    input: input.to_string(),
                    algorithm: other.to_string(),
                })
            }
        };
        let valid = hex.len() == algorithm.hex_len()
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !valid {
            return Err(DigestError::BadHex {
                input: input.to_string(),
                algorithm: algorithm.as_str(),
                expected: algorithm.hex_len(),
            });
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_string(),
        })
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Incremental sha256, fed while bytes stream past.
#[derive(Clone, Default)]
pub struct Sha256Hasher {
    inner: sha2::Sha256,
    len: u64,
}

impl Sha256Hasher {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Hashes everything `reader` yields, in 1 MiB pieces (memory stays flat), telling
    /// `on_piece` each piece's length (for progress).
    pub fn update_from(
        &mut self,
        mut reader: impl std::io::Read,
        mut on_piece: impl FnMut(u64),
    ) -> std::io::Result<()> {
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.update(&buf[..n]);
            on_piece(n as u64);
        }
    }

    pub fn finish(self) -> Digest {
        Digest {
            algorithm: Algorithm::Sha256,
            hex: hex::encode(self.inner.finalize()),
        }
    }
}

/// A writer that hashes what passes through it.
pub struct HashingWriter<W: std::io::Write> {
    pub inner: W,
    pub hasher: Sha256Hasher,
}

impl<W: std::io::Write> std::io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Runs `read` over `source` while another thread hashes every byte `read` pulls from it, then
/// hashes what `read` left (a tar's end padding, a compressed stream's trailer); returns its
/// result with the sha256 and size of the whole of `source`. How a file is hashed during the
/// one pass that already reads it (an archive's or bundle's bytes as on disk, before any
/// decompression), without a second read and, when a core is free, without slowing that pass.
pub fn read_hashed<T, E>(
    source: impl std::io::Read,
    read: impl FnOnce(&mut dyn std::io::Read) -> Result<T, E>,
    io_err: impl Fn(std::io::Error) -> E,
) -> Result<(T, FileDigest), E> {
    std::thread::scope(|scope| {
        let (chunks, received) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let hashing = scope.spawn(move || {
            let mut hasher = Sha256Hasher::new();
            for chunk in received {
                hasher.update(&chunk);
            }
            hasher
        });
        let mut tee = Tee {
            inner: source,
            chunks,
        };
        let result = read(&mut tee);
        let rest = result
            .as_ref()
            .ok()
            .map(|_| std::io::copy(&mut tee, &mut std::io::sink()));
        drop(tee); // ends the hashing thread's input
        let hasher = hashing
            .join()
            .map_err(|_| io_err(std::io::Error::other("the hashing thread failed")))?;
        let value = result?;
        if let Some(Err(e)) = rest {
            return Err(io_err(e));
        }
        let size = hasher.len();
        Ok((
            value,
            FileDigest {
                sha256: hasher.finish(),
                size,
            },
        ))
    })
}

/// Hands every chunk read to the hashing thread.
struct Tee<R> {
    inner: R,
    chunks: std::sync::mpsc::SyncSender<Vec<u8>>,
}

impl<R: std::io::Read> std::io::Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 && self.chunks.send(buf[..n].to_vec()).is_err() {
            return Err(std::io::Error::other("the hashing thread stopped"));
        }
        Ok(n)
    }
}

/// The sha256 and size of a whole file as it is on disk.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileDigest {
    pub sha256: Digest,
    pub size: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_hashed_covers_what_the_reader_left_unread() {
        let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let (head, file) = read_hashed(
            &bytes[..],
            |r| {
                let mut head = [0u8; 4];
                r.read_exact(&mut head).map(|()| head)
            },
            |e| e,
        )
        .expect("reads");
        assert_eq!(head, [0, 1, 2, 3]);
        assert_eq!(file.sha256, Digest::sha256_of(&bytes));
        assert_eq!(file.size, bytes.len() as u64);
        let failed = read_hashed(
            &bytes[..],
            |_| Err::<(), _>(std::io::Error::other("parse")),
            |e| e,
        );
        assert!(failed.is_err());
    }

    #[test]
    fn round_trips_and_hashes() {
        let d = Digest::sha256_of(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(d.to_string().parse::<Digest>().ok(), Some(d.clone()));
        assert_eq!(d.short(), "sha256:e3b0c44298fc");
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(
            "abc".parse::<Digest>(),
            Err(DigestError::MissingAlgorithm(_))
        ));
        assert!(matches!(
            "md5:abcd".parse::<Digest>(),
            Err(DigestError::UnknownAlgorithm { .. })
        ));
        assert!(matches!(
            "sha256:ABCD".parse::<Digest>(),
            Err(DigestError::BadHex { .. })
        ));
        let upper = format!("sha256:{}", "A".repeat(64));
        assert!(upper.parse::<Digest>().is_err());
        let ok512 = format!("sha512:{}", "a".repeat(128));
        assert_eq!(
            ok512.parse::<Digest>().map(|d| d.algorithm()),
            Ok(Algorithm::Sha512)
        );
    }
}
