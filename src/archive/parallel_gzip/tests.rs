//! Parallel gzip: valid single-member gzip, same bytes whatever the threads or read sizes,
//! stored blocks where deflate cannot help, real compression where it can, errors surfaced.

use std::io::{self, Read, Write};
use std::process::{Command, Stdio};

use super::*;

/// Deterministic pseudo-random bytes (xorshift64*), incompressible for deflate.
fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Text-like bytes, compressible like a tar of config files and scripts.
fn text(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 100);
    let mut i = 0u64;
    while out.len() < len {
        let line = format!(
            "usr/lib/file-{i:07}.conf mode=0644 uid=0 size={}\n",
            i * 37 % 9001
        );
        out.extend_from_slice(line.as_bytes());
        i += 1;
    }
    out.truncate(len);
    out
}

fn with_threads<T: Send>(threads: usize, work: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool")
        .install(work)
}

fn compress(data: &[u8]) -> (Vec<u8>, GzipSummary) {
    let mut out = Vec::new();
    let summary = gzip(&mut &data[..], &mut out, 6).expect("gzip");
    (out, summary)
}

/// Decodes `gz` as exactly one gzip member (not MultiGz) and checks nothing follows it.
fn gunzip_single_member(gz: &[u8]) -> Vec<u8> {
    let mut decoder = flate2::read::GzDecoder::new(gz);
    let mut back = Vec::new();
    decoder.read_to_end(&mut back).expect("valid gzip");
    assert!(decoder.into_inner().is_empty(), "bytes after the member");
    back
}

fn mixed(len: usize) -> Vec<u8> {
    // Alternating compressible and random stretches that straddle block boundaries.
    let mut data = Vec::new();
    let mut seed = 7;
    while data.len() < len {
        data.extend(text(700_000));
        data.extend(random(900_000, seed));
        seed += 1;
    }
    data.truncate(len);
    data
}

#[test]
fn round_trips_every_size_and_kind() {
    let sizes = [
        0,
        1,
        1000,
        BLOCK_SIZE - 1,
        BLOCK_SIZE,
        BLOCK_SIZE + 1,
        5 * BLOCK_SIZE + 12_345,
    ];
    for size in sizes {
        for (kind, data) in [("text", text(size)), ("random", random(size, 42))] {
            // One thread: rounds of 2 blocks, so the largest input crosses rounds.
            let (gz, summary) = with_threads(1, || compress(&data));
            assert_eq!(gunzip_single_member(&gz), data, "{kind} {size}");
            assert_eq!(summary.input, size as u64);
            assert_eq!(summary.blocks, size.div_ceil(BLOCK_SIZE) as u64);
        }
    }
}

#[test]
fn empty_input_is_a_fixed_twenty_bytes() {
    let (gz, _) = compress(b"");
    let expected = [
        0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255, // header: mtime 0, XFL 0, OS unknown
        0x03, 0x00, // final empty block
        0, 0, 0, 0, 0, 0, 0, 0, // CRC-32 and size of nothing
    ];
    assert_eq!(gz, expected);
    assert!(gunzip_single_member(&gz).is_empty());
}

#[test]
fn same_bytes_whatever_the_thread_count() {
    let data = mixed(9 * BLOCK_SIZE + 777);
    let (one, summary) = with_threads(1, || compress(&data));
    let (four, _) = with_threads(4, || compress(&data));
    assert_eq!(one, four);
    assert!(
        summary.stored > 0 && summary.stored < summary.blocks,
        "{summary:?}"
    );
    assert_eq!(gunzip_single_member(&one), data);
}

/// Hands out at most a few bytes per read, with a different count each time.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.step = self.step % 4093 + 1;
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn same_bytes_whatever_the_read_sizes() {
    let data = mixed(3 * BLOCK_SIZE + 5);
    let (whole, _) = compress(&data);
    let mut trickled = Vec::new();
    let mut reader = Trickle {
        data: &data,
        step: 0,
    };
    gzip(&mut reader, &mut trickled, 6).expect("gzip");
    assert_eq!(whole, trickled);
}

#[test]
fn header_and_trailer_are_fixed() {
    let data = text(2 * BLOCK_SIZE + 3);
    let (gz, _) = compress(&data);
    assert_eq!(gz[..10], HEADER);
    let mut crc = Crc::new();
    crc.update(&data);
    let trailer = &gz[gz.len() - 8..];
    assert_eq!(trailer[..4], crc.sum().to_le_bytes());
    assert_eq!(trailer[4..], (data.len() as u32).to_le_bytes());
}

#[test]
fn system_gzip_accepts_it() {
    if Command::new("gzip").arg("--version").output().is_err() {
        eprintln!("gzip not installed; skipped");
        return;
    }
    let data = mixed(4 * BLOCK_SIZE + 99);
    let (gz, _) = compress(&data);
    let run = |args: &[&str]| {
        let mut child = Command::new("gzip")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("gzip");
        let mut stdin = child.stdin.take().expect("stdin");
        let input = gz.clone();
        let feeder = std::thread::spawn(move || stdin.write_all(&input));
        let out = child.wait_with_output().expect("gzip output");
        feeder.join().expect("feeder").expect("feed gzip");
        assert!(out.status.success(), "gzip {args:?} failed");
        out.stdout
    };
    run(&["-t"]);
    assert_eq!(run(&["-dc"]), data);
}

#[test]
fn random_blocks_are_stored_not_expanded() {
    let data = random(6 * BLOCK_SIZE, 9);
    let (gz, summary) = compress(&data);
    assert_eq!(summary.stored, 6, "{summary:?}");
    // Stored-block headers (5 bytes per 64 KiB) plus the 20 bytes of gzip framing.
    assert_eq!(gz.len(), 6 * stored_size(BLOCK_SIZE) + 20);
    assert_eq!(gunzip_single_member(&gz), data);
}

#[test]
fn compressible_blocks_compress_like_one_stream() {
    let data = text(4 * BLOCK_SIZE);
    let (gz, summary) = compress(&data);
    assert_eq!(summary.stored, 0);
    assert!(
        gz.len() * 5 < data.len(),
        "ratio {}",
        gz.len() as f64 / data.len() as f64
    );
    // Blocks primed with the previous 32 KiB lose next to nothing against one stream.
    let one_stream = one_stream_len(&data);
    assert!(
        gz.len() * 100 < one_stream * 101,
        "{} vs {one_stream}",
        gz.len()
    );
}

/// One gzip stream of `data` by flate2, the size to compare with.
fn one_stream_len(data: &[u8]) -> usize {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    encoder.write_all(data).expect("gzip");
    encoder.finish().expect("gzip").len()
}

#[test]
fn random_data_with_repeats_is_deflated_using_the_previous_block() {
    // 20 KiB of random bytes, repeated: a flat histogram, but every byte after the first
    // period is a back-reference, also across block boundaries through the dictionary.
    let period = random(20 * 1024, 5);
    let data: Vec<u8> = period
        .iter()
        .copied()
        .cycle()
        .take(4 * BLOCK_SIZE)
        .collect();
    let (gz, summary) = compress(&data);
    assert_eq!(summary.stored, 0);
    assert_eq!(gunzip_single_member(&gz), data);
    // Each block alone would spend a whole period on literals (4 × 20 KiB); with the
    // previous 32 KiB as dictionary only the first does, like one stream.
    let one_stream = one_stream_len(&data);
    assert!(gz.len() < 4 * period.len(), "{} bytes", gz.len());
    assert!(
        gz.len() * 100 < one_stream * 110,
        "{} vs {one_stream}",
        gz.len()
    );
}

#[test]
fn the_incompressibility_test_reads_histogram_and_repeats() {
    let mut table = Vec::new();
    assert!(looks_incompressible(&random(BLOCK_SIZE, 1), &mut table));
    assert!(!looks_incompressible(&text(BLOCK_SIZE), &mut table));
    // Too small to judge: always deflated.
    assert!(!looks_incompressible(
        &random(MIN_PROBED - 1, 1),
        &mut table
    ));
    // Uniform bytes but 2% repeated: deflate gains, so not stored.
    let mut data = random(BLOCK_SIZE, 2);
    for chunk in 0..16 {
        let at = chunk * (BLOCK_SIZE / 16);
        data.copy_within(at..at + 1400, at + 2000);
    }
    assert!(uniform_bytes(&data, UNIFORM_SLACK));
    assert!(repeated_bytes(&data, &mut table) >= 16 * 1300);
    assert!(!looks_incompressible(&data, &mut table));
}

#[test]
fn the_repeat_scan_measures_a_long_repeat_whole() {
    // One 5,000-byte copy 10,000 bytes after its original: found at its first anchor and
    // measured back to where it starts, so the count is the copy's length (a byte or two more
    // only where the random bytes around it happen to agree).
    let mut data = random(BLOCK_SIZE, 11);
    data.copy_within(300_000..305_000, 310_000);
    let covered = repeated_bytes(&data, &mut Vec::new());
    assert!((5_000..5_004).contains(&covered), "{covered}");
    // Beyond deflate's 32 KiB window a copy is no use to it and is not counted.
    let mut far = random(BLOCK_SIZE, 11);
    far.copy_within(300_000..305_000, 400_000);
    assert_eq!(repeated_bytes(&far, &mut Vec::new()), 0);
}

/// Random blocks with 200 copies of 60 bytes each (1.1% of a block): few enough anchors land in
/// such short copies that the scan counts under the 1/128 threshold, and the block is stored.
fn short_repeats(len: usize) -> Vec<u8> {
    let mut data = random(len, 13);
    for block in 0..len / BLOCK_SIZE {
        for copy in 0..200 {
            let at = block * BLOCK_SIZE + copy * 5_000;
            data.copy_within(at..at + 60, at + 1_000);
        }
    }
    data
}

/// Yields `good` bytes, then fails.
struct Failing {
    good: Vec<u8>,
}

impl Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.good.is_empty() {
            return Err(io::Error::other("disk went away"));
        }
        let n = buf.len().min(self.good.len());
        buf[..n].copy_from_slice(&self.good[..n]);
        self.good.drain(..n);
        Ok(n)
    }
}

#[test]
fn read_and_write_errors_are_returned() {
    let mut reader = Failing {
        good: text(3 * BLOCK_SIZE),
    };
    let err = gzip(&mut reader, &mut Vec::new(), 6).expect_err("read error");
    assert_eq!(err.to_string(), "disk went away");

    let data = text(3 * BLOCK_SIZE);
    let err = gzip(
        &mut &data[..],
        &mut crate::archive::test_io::FullDisk { room: 50_000 },
        6,
    )
    .expect_err("write error");
    assert_eq!(err.kind(), io::ErrorKind::StorageFull);
}

#[test]
fn output_bytes_are_pinned() {
    // The digest a layer gets is remembered under `Compression::settings()`. If this fails the
    // bytes changed (block size, thresholds, a zlib-rs upgrade…): bump that string, or old
    // cache entries would name blobs this code no longer makes.
    let data = mixed(3 * BLOCK_SIZE + 4321);
    let (gz, summary) = compress(&data);
    assert_eq!(summary.stored, 1, "{summary:?}");
    assert_eq!(
        crate::oci::Digest::sha256_of(&gz).to_string(),
        "sha256:8b739000ae5feb33aa795245ba9beb5280586f3cf126bb83cbc927169b5109aa"
    );
    // The stored-or-deflated rule at its threshold (a scan change that moves it changes bytes).
    let (gz, summary) = compress(&short_repeats(2 * BLOCK_SIZE));
    assert_eq!(summary.stored, 2, "{summary:?}");
    assert_eq!(
        crate::oci::Digest::sha256_of(&gz).to_string(),
        "sha256:ad7638c5df9edf80053d288bde99e57b41a31f63d1059c47882d7aadda531612"
    );
}
