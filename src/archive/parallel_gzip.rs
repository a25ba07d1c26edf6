//! Gzip for the layers `mirror` compresses itself: parallel, streaming, and byte-for-byte the
//! same on every run and machine, because the layer's digest is its identity in every registry
//! it is pushed to.
//!
//! One deflate stream on one core manages ~50–70 MB/s, so gzipping the layers of a few
//! `docker save` archives dominated a run. Like pigz, the input is cut into blocks of a fixed
//! [`BLOCK_SIZE`]; each block is compressed on its own (raw deflate, primed with the 32 KiB of
//! input before it as dictionary so the ratio stays close to one stream) and ends with a sync
//! flush, i.e. on a byte boundary and not final, so the blocks concatenate into one deflate
//! stream. The output is one ordinary gzip member: a fixed header (mtime 0, no name, XFL 0,
//! OS 255), the blocks in input order, a final empty block, CRC-32 and size.
//!
//! Deterministic by construction: block boundaries are fixed offsets of the input, each
//! block's bytes depend only on its own input and dictionary, and blocks are written in order,
//! so neither the number of threads nor scheduling can change a byte.
//!
//! Incompressible blocks (already-compressed files, random data) are common in layers and slow
//! for deflate, which gains nothing on them. Deflate saves bytes in two ways only: Huffman
//! coding of uneven byte frequencies and back-references to repeats within 32 KiB. A block
//! whose byte histogram is near-uniform (Rényi entropy ≥ ~7.98 bits per byte, computed in
//! integers) and that has almost no such repeats (an anchored scan, see `repeated_bytes`) is
//! written as stored deflate blocks without trying; any other block is deflated and still
//! stored if deflate did not make it smaller. Both tests read only the block's bytes. Measured
//! per CPU second (`cargo run --release --example gzip-throughput`): random data ~900 MB/s
//! instead of ~40 for one deflate stream; a tar of 20,000 `.gz` files from /usr/share stored
//! 10 of its 89 blocks for 0.05% more output than one stream; a tar of /usr/lib stored none, at
//! the speed and ratio of one stream.
//!
//! Memory: one round of blocks (2 per rayon thread, at most [`MAX_ROUND_BLOCKS`]) and their
//! output, whatever the input size. Called from rayon jobs (one per layer), a thread waiting
//! for its blocks may start another layer, so it is one round per layer in progress.

use std::io::{self, Read, Write};

use flate2::{Compress, Crc, FlushCompress};
use rayon::prelude::*;

/// Input is cut into blocks of this size. A constant, never derived from the machine, since
/// block boundaries shape the output.
pub const BLOCK_SIZE: usize = 1 << 20;
/// Deflate's window: each block is primed with this much of the input before it.
const DICTIONARY: usize = 32 * 1024;
/// Blocks read, compressed in parallel and written per round, at most.
pub const MAX_ROUND_BLOCKS: usize = 16;
/// The largest stored deflate block.
const STORED_MAX: usize = 0xffff;
/// gzip header: deflate, no flags, mtime 0, XFL 0, OS 255 ("unknown").
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
/// A final, empty, fixed-Huffman deflate block: ends the stream after the sync-flushed blocks.
const LAST_BLOCK: [u8; 2] = [0x03, 0x00];

/// A histogram is "uniform" when `256·Σcount² ≤ n²·(1 + 1/UNIFORM_SLACK)`, i.e. Rényi entropy
/// ≥ 8 − log2(1 + 1/72) ≈ 7.98 bits per byte: Huffman coding could then save well under 1%.
const UNIFORM_SLACK: u128 = 72;
/// Blocks smaller than this are always deflated (too few bytes for a histogram to mean much).
const MIN_PROBED: usize = 64 * 1024;
/// The looser test on a block's first [`MIN_PROBED`] bytes, done first: Rényi entropy ≥ ~7.83
/// bits per byte. Compressed data passes it; text and code fail it by far, sparing the rest of
/// the histogram (3% of level-6 deflate's time) on the common block.
const PREFIX_SLACK: u128 = 8;
/// Repeats shorter than this are not counted: deflate gains little or nothing on them.
const MIN_REPEAT: usize = 6;
/// A block "has repeats" when more than 1/REPEAT_SHARE of its bytes are covered by them.
const REPEAT_SHARE: usize = 128;
/// Bits of the repeat scanner's hash table.
const HASH_BITS: u32 = 14;
/// The byte values the repeat scanner anchors on (see [`repeated_bytes`]). Constants, since
/// they decide which blocks are stored.
const ANCHOR_BYTES: [u8; 3] = [0x00, 0x80, 0xff];

/// What [`gzip`] did, for tests and measurements.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GzipSummary {
    /// Uncompressed bytes read.
    pub input: u64,
    /// Blocks written.
    pub blocks: u64,
    /// Blocks written as stored (uncompressed) deflate blocks.
    pub stored: u64,
}

/// Copies `input` into `output` as one gzip member at deflate `level`, compressing blocks in
/// parallel on the current rayon pool. Read and write errors are returned as they come.
pub fn gzip(input: &mut dyn Read, output: &mut dyn Write, level: u32) -> io::Result<GzipSummary> {
    let round = (2 * rayon::current_num_threads()).clamp(2, MAX_ROUND_BLOCKS);
    let want = (round * BLOCK_SIZE) as u64;
    let mut buf: Vec<u8> = Vec::with_capacity(DICTIONARY + round * BLOCK_SIZE);
    let mut slots: Vec<Slot> = (0..round).map(|_| Slot::default()).collect();
    let mut crc = Crc::new();
    let mut summary = GzipSummary::default();
    output.write_all(&HEADER)?;
    loop {
        // `buf` starts with the tail of the previous round: the first block's dictionary.
        let carried = buf.len();
        let got = (&mut *input).take(want).read_to_end(&mut buf)?;
        let blocks = got.div_ceil(BLOCK_SIZE);
        let data = &buf[..];
        slots[..blocks]
            .par_iter_mut()
            .enumerate()
            .try_for_each(|(i, slot)| {
                let start = carried + i * BLOCK_SIZE;
                let end = (start + BLOCK_SIZE).min(data.len());
                let dictionary = &data[start.saturating_sub(DICTIONARY)..start];
                slot.encode(dictionary, &data[start..end], level)
            })?;
        for slot in &slots[..blocks] {
            crc.combine(&slot.crc);
            output.write_all(&slot.out)?;
            summary.blocks += 1;
            summary.stored += u64::from(slot.stored);
        }
        summary.input += got as u64;
        if (got as u64) < want {
            break;
        }
        let keep = buf.len().min(DICTIONARY);
        let from = buf.len() - keep;
        buf.copy_within(from.., 0);
        buf.truncate(keep);
    }
    output.write_all(&LAST_BLOCK)?;
    output.write_all(&crc.sum().to_le_bytes())?;
    // ISIZE is the length modulo 2^32, which is what `amount` keeps.
    output.write_all(&crc.amount().to_le_bytes())?;
    Ok(summary)
}

/// One block's work space, reused from round to round.
#[derive(Default)]
struct Slot {
    out: Vec<u8>,
    crc: Crc,
    stored: bool,
    deflate: Option<Compress>,
    table: Vec<(u32, u32)>,
}

impl Slot {
    /// Encodes `data` (not the last thing in the stream) into `self.out`.
    fn encode(&mut self, dictionary: &[u8], data: &[u8], level: u32) -> io::Result<()> {
        self.crc.reset();
        self.crc.update(data);
        self.out.clear();
        self.stored = looks_incompressible(data, &mut self.table);
        if !self.stored {
            self.deflate(dictionary, data, level)?;
            self.stored = self.out.len() >= stored_size(data.len());
        }
        if self.stored {
            self.out.clear();
            store(data, &mut self.out);
        }
        Ok(())
    }

    /// Raw deflate of `data` after `dictionary`, ending with a sync flush.
    fn deflate(&mut self, dictionary: &[u8], data: &[u8], level: u32) -> io::Result<()> {
        let deflate = match &mut self.deflate {
            Some(deflate) => {
                deflate.reset();
                deflate
            }
            None => self
                .deflate
                .insert(Compress::new(flate2::Compression::new(level), false)),
        };
        if !dictionary.is_empty() {
            deflate
                .set_dictionary(dictionary)
                .map_err(io::Error::other)?;
        }
        self.out.reserve(stored_size(data.len()) + 64);
        let mut rest = data;
        loop {
            let (taken, written) = (deflate.total_in(), self.out.len());
            deflate
                .compress_vec(rest, &mut self.out, FlushCompress::Sync)
                .map_err(io::Error::other)?;
            let used = usize::try_from(deflate.total_in() - taken).unwrap_or(usize::MAX);
            rest = rest
                .get(used..)
                .ok_or_else(|| io::Error::other("deflate took more input than it was given"))?;
            // The flush is complete once all input is taken and output space is left over.
            if rest.is_empty() && self.out.len() < self.out.capacity() {
                return Ok(());
            }
            if used == 0 && self.out.len() == written && self.out.len() < self.out.capacity() {
                return Err(io::Error::other("deflate made no progress"));
            }
            self.out.reserve(64 * 1024);
        }
    }
}

/// The size of `len` bytes as stored deflate blocks.
fn stored_size(len: usize) -> usize {
    len + 5 * len.div_ceil(STORED_MAX)
}

/// Appends `data` as non-final stored deflate blocks (the stream is byte-aligned here).
fn store(data: &[u8], out: &mut Vec<u8>) {
    for chunk in data.chunks(STORED_MAX) {
        let len = chunk.len() as u16;
        out.push(0); // BFINAL 0, BTYPE 00, then padding to the byte boundary.
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
}

/// True when deflate could not shrink `data` noticeably: near-uniform byte frequencies and
/// (checked only then) almost no repeats within deflate's window.
fn looks_incompressible(data: &[u8], table: &mut Vec<(u32, u32)>) -> bool {
    // The first bytes answer cheaply for the common, clearly compressible block (text and
    // code are far from the slack); a block is stored only on the strength of all its bytes.
    data.len() >= MIN_PROBED
        && uniform_bytes(&data[..MIN_PROBED], PREFIX_SLACK)
        && uniform_bytes(data, UNIFORM_SLACK)
        && repeated_bytes(data, table) * REPEAT_SHARE <= data.len()
}

/// Whether `256·Σcount² ≤ n²·(1 + 1/slack)` for the byte histogram of `data`.
fn uniform_bytes(data: &[u8], slack: u128) -> bool {
    // Four interleaved histograms keep consecutive increments independent.
    let mut counts = [[0u32; 256]; 4];
    let mut quads = data.chunks_exact(4);
    for quad in &mut quads {
        for (lane, &byte) in quad.iter().enumerate() {
            counts[lane][usize::from(byte)] += 1;
        }
    }
    for &byte in quads.remainder() {
        counts[0][usize::from(byte)] += 1;
    }
    let squares: u128 = (0..256)
        .map(|b| {
            let c = counts.iter().map(|lane| u128::from(lane[b])).sum::<u128>();
            c * c
        })
        .sum();
    let n = data.len() as u128;
    squares * 256 * slack <= n * n * (slack + 1)
}

/// Bytes of `data` covered by repeats of at least [`MIN_REPEAT`] bytes within deflate's
/// window, found through anchors: the positions holding one of [`ANCHOR_BYTES`].
///
/// Which positions are anchors depends on the bytes alone, so a repeat and its original have
/// anchors at the same offsets: the table (anchor word → last position) finds the original at
/// the repeat's first anchor, and the repeat is measured from there both ways. On the uniform
/// bytes this runs on, one position in ~85 is an anchor, so a repeat of 300 bytes holds one
/// 97% of the time and one of 1,400 all but surely; the scan itself is `memchr3`. It replaced a
/// hash lookup at every position, which was a third of `mirror`'s CPU time on archives of
/// incompressible layers.
fn repeated_bytes(data: &[u8], table: &mut Vec<(u32, u32)>) -> usize {
    // Buckets hold (position, the four bytes there). An empty bucket names position 0 with a
    // word that may not match: harmless, since every hit is checked against the data.
    table.clear();
    table.resize(1 << HASH_BITS, (0, 0));
    let [a, b, c] = ANCHOR_BYTES;
    let mut covered = 0;
    // Positions before this are inside a repeat already counted.
    let mut next = 0;
    for i in memchr::memchr3_iter(a, b, c, data) {
        if i < next || i + 4 > data.len() {
            continue;
        }
        let key = word(data, i);
        let bucket = (key.wrapping_mul(0x9e37_79b1) >> (32 - HASH_BITS)) as usize;
        let (seen, seen_key) = std::mem::replace(&mut table[bucket], (i as u32, key));
        let seen = seen as usize; // Blocks are far below 4 GiB.
        if seen_key != key || (i - seen).wrapping_sub(1) >= DICTIONARY {
            continue;
        }
        let back = data[next..i]
            .iter()
            .rev()
            .zip(data[..seen].iter().rev())
            .take_while(|(x, y)| x == y)
            .count();
        let forward = data[i..]
            .iter()
            .zip(&data[seen..])
            .take_while(|(x, y)| x == y)
            .count();
        if back + forward >= MIN_REPEAT {
            covered += back + forward;
            next = i + forward;
        }
    }
    covered
}

/// The four bytes at `at` as a little-endian word (0 past the end).
fn word(data: &[u8], at: usize) -> u32 {
    match data.get(at..at + 4) {
        Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]),
        _ => 0,
    }
}

#[cfg(test)]
mod tests;
