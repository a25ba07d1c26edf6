//! Layer-compression throughput, old (one flate2 stream) against `mirror`'s parallel gzip, on
//! the files given (e.g. a tar of /usr/lib and 200 MB of /dev/urandom):
//!
//!     cargo run --release --example gzip-throughput -- /tmp/lib.tar /tmp/random.bin
//!
//! Each file is read into memory first; the output is counted, not kept. Not part of CI.

use std::io::{self, Read, Write};
use std::time::Instant;

use mirror::archive::compression::{self, Compression, GZIP_LEVEL, ZSTD_LEVEL};
use mirror::archive::parallel_gzip;

/// Counts bytes and drops them.
struct Count(u64);

impl Write for Count {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// User + system CPU seconds of this process so far (Linux, 10 ms resolution), so a busy
/// machine shows in wall time but not in MB per CPU second.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: f64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|field| field.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}

fn measure(label: &str, data: &[u8], run: impl FnOnce(&mut dyn Read, &mut Count)) {
    let mut out = Count(0);
    let cpu = cpu_seconds();
    let started = Instant::now();
    run(&mut &data[..], &mut out);
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu;
    let mb = data.len() as f64 / 1e6;
    println!(
        "  {label:<28} {:>7.1} MB/s wall {:>7.1} MB/s per CPU second  ratio {:.4}",
        mb / secs,
        mb / cpu,
        out.0 as f64 / data.len() as f64
    );
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool")
}

fn main() {
    for path in std::env::args().skip(1) {
        let data = std::fs::read(&path).expect("read input");
        println!("{path}: {} MB", data.len() / 1_000_000);
        measure("old gzip (1 stream)", &data, |input, out| {
            let mut encoder = flate2::GzBuilder::new()
                .mtime(0)
                .operating_system(255)
                .write(out, flate2::Compression::new(GZIP_LEVEL));
            io::copy(input, &mut encoder).expect("old gzip");
            encoder.finish().expect("old gzip");
        });
        for threads in [1, 2] {
            let label = format!("parallel gzip, {threads} thread(s)");
            pool(threads).install(|| {
                measure(&label, &data, |input, out| {
                    compression::compress(Compression::Gzip, input, out).expect("gzip");
                })
            });
        }
        let summary = parallel_gzip::gzip(&mut &data[..], &mut Count(0), GZIP_LEVEL).expect("gzip");
        println!("  {} of {} blocks stored", summary.stored, summary.blocks);
        measure(
            &format!("zstd level {ZSTD_LEVEL} (1 thread)"),
            &data,
            |input, out| {
                compression::compress(Compression::Zstd, input, out).expect("zstd");
            },
        );
    }
}
