//! The benchmark workload: deterministic multi-arch images with shared base layers, pushed to a
//! local registry, and docker-save archives of them. Driven by `bench/run.sh`; see
//! BENCHMARKS.md. Not part of `cargo test` beyond its own tiny unit tests.
//!
//! ```text
//! cargo run --release --example workload -- generate --out DIR [--repos 12] [--scale 1] [--big]
//! cargo run --release --example workload -- push --dir DIR --registry 127.0.0.1:PORT [--bump]
//! cargo run --release --example workload -- archives --dir DIR --out DIR [--repos 4]
//! cargo run --release --example workload -- free-port
//! ```

mod archive;
mod blobs;
mod generate;
mod push;
mod spec;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Benchmark workload for mirror")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the images' blobs (an OCI layout) and workload.json into OUT.
    Generate {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 12)]
        repos: usize,
        /// Multiplies every layer size.
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// Add one 1 GiB layer (first image, amd64).
        #[arg(long)]
        big: bool,
    },
    /// Push the generated images to a plain-HTTP registry.
    Push {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        registry: String,
        /// Also push the bumped tag of the first image.
        #[arg(long)]
        bump: bool,
    },
    /// Write one docker-save archive per platform holding the first REPOS images.
    Archives {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 4)]
        repos: usize,
    },
    /// Print a free TCP port on 127.0.0.1.
    FreePort,
}

fn main() -> ExitCode {
    match run(Args::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("workload: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> std::io::Result<()> {
    match command {
        Command::Generate {
            out,
            repos,
            scale,
            big,
        } => {
            let knobs = spec::Knobs { repos, scale, big };
            let w = generate::generate(&out, &knobs)?;
            let layers: u64 = w
                .bump_new
                .iter()
                .filter(|b| b.media_type == blobs::LAYER)
                .map(|b| b.size)
                .sum();
            let all: u64 = w.bump_new.iter().map(|b| b.size).sum();
            println!(
                "images={} unique_bytes={} bump_layer_bytes={layers} bump_blob_bytes={all}",
                w.images.len(),
                w.unique_bytes
            );
            Ok(())
        }
        Command::Push {
            dir,
            registry,
            bump,
        } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(push::push(&dir, &registry, bump))
        }
        Command::Archives { dir, out, repos } => {
            for path in archive::write_archives(&dir, &out, repos)? {
                println!("{}", path.display());
            }
            Ok(())
        }
        Command::FreePort => {
            let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
            println!("{}", listener.local_addr()?.port());
            Ok(())
        }
    }
}
