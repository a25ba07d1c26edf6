//! What the benchmark workload is made of, before any byte is written.
//!
//! Real fleets share base layers: many images sit on the same distro base, several on the same
//! language runtime, and each adds a few small application layers; one in a dozen carries a big
//! data or model layer. Layer contents differ per platform (an arm64 base is not an amd64 base).
//! Every size and choice here is a pure function of the repository index, so a workload is the
//! same on every run and machine.

/// The three platforms every image is built for.
pub const PLATFORMS: [Platform; 3] = [
    Platform {
        arch: "amd64",
        variant: None,
    },
    Platform {
        arch: "arm64",
        variant: None,
    },
    Platform {
        arch: "arm",
        variant: Some("v7"),
    },
];

const MIB: f64 = 1024.0 * 1024.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    pub arch: &'static str,
    pub variant: Option<&'static str>,
}

impl Platform {
    /// `amd64`, `arm64`, `arm-v7`: usable in file names.
    pub fn slug(&self) -> String {
        match self.variant {
            Some(v) => format!("{}-{v}", self.arch),
            None => self.arch.to_string(),
        }
    }
}

/// One layer to generate: a name (unique per content; the platform is added when generating)
/// and a size of random payload.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerSpec {
    pub name: String,
    pub payload: u64,
}

/// One image (all three platforms share the layer list; contents differ per platform).
#[derive(Debug, Clone)]
pub struct ImageSpec {
    pub repository: String,
    pub tag: String,
    pub layers: Vec<LayerSpec>,
    /// Only for this platform slug, an extra layer (the `--big` 1 GiB one).
    pub extra: Option<(String, LayerSpec)>,
}

/// Knobs of the workload.
#[derive(Debug, Clone, Copy)]
pub struct Knobs {
    pub repos: usize,
    /// Multiplies every layer size (1.0 = the documented default).
    pub scale: f64,
    /// Add one 1 GiB layer to the first image's amd64 variant.
    pub big: bool,
}

/// Distro bases: (name, MiB).
const BASES: [(&str, f64); 3] = [("alpine", 3.2), ("debian", 29.0), ("ubuntu", 27.5)];
/// Runtimes: (name, MiB, index of the base they sit on).
const RUNTIMES: [(&str, f64, usize); 3] =
    [("python", 48.0, 1), ("node", 42.0, 1), ("jre", 64.0, 2)];
/// The big data layer one image in a dozen carries.
const DATA_MIB: f64 = 200.0;
/// The `--big` layer.
const BIG_MIB: f64 = 1024.0;
/// The layer the bumped tag adds.
const BUMP_MIB: f64 = 7.5;

fn size(knobs: &Knobs, mib: f64) -> u64 {
    ((mib * knobs.scale * MIB) as u64).max(64 * 1024)
}

/// A small deterministic mix of `i` (splitmix64's finaliser).
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The repository name of image `i`.
pub fn repository(i: usize) -> String {
    format!("bench/app-{i:02}")
}

/// The images of the workload, in order; the bumped image is [`bumped`].
pub fn images(knobs: &Knobs) -> Vec<ImageSpec> {
    let data_image = if knobs.repos > 5 {
        5
    } else {
        knobs.repos.saturating_sub(1)
    };
    (0..knobs.repos)
        .map(|i| {
            let mut layers = Vec::new();
            let runtime = i % 4;
            let base = match runtime {
                0 => i % BASES.len(),
                r => RUNTIMES[r - 1].2,
            };
            let (base_name, base_mib) = BASES[base];
            layers.push(LayerSpec {
                name: format!("base-{base_name}"),
                payload: size(knobs, base_mib),
            });
            if runtime > 0 {
                let (name, mib, _) = RUNTIMES[runtime - 1];
                layers.push(LayerSpec {
                    name: format!("runtime-{name}"),
                    payload: size(knobs, mib),
                });
            }
            let h = mix(i as u64);
            let app_layers = 1 + (h % 2) as usize;
            for n in 0..app_layers {
                let mib = 1.0 + ((h >> (8 + 8 * n)) % 12) as f64 + 0.37;
                layers.push(LayerSpec {
                    name: format!("app-{i:02}-{n}"),
                    payload: size(knobs, mib),
                });
            }
            if i == data_image {
                layers.push(LayerSpec {
                    name: format!("data-{i:02}"),
                    payload: size(knobs, DATA_MIB),
                });
            }
            let extra = (knobs.big && i == 0).then(|| {
                (
                    PLATFORMS[0].slug(),
                    LayerSpec {
                        name: "big-00".to_string(),
                        payload: (BIG_MIB * MIB) as u64,
                    },
                )
            });
            ImageSpec {
                repository: repository(i),
                tag: "1.0".to_string(),
                layers,
                extra,
            }
        })
        .collect()
}

/// The release bump: the first image's next tag, with one new layer on top (per platform).
pub fn bumped(knobs: &Knobs, first: &ImageSpec) -> ImageSpec {
    let mut image = first.clone();
    image.tag = "1.1".to_string();
    image.layers.push(LayerSpec {
        name: "app-00-bump".to_string(),
        payload: size(knobs, BUMP_MIB),
    });
    image
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_is_deterministic_and_shares_bases() {
        let knobs = Knobs {
            repos: 12,
            scale: 1.0,
            big: false,
        };
        let a = images(&knobs);
        let b = images(&knobs);
        assert_eq!(a.len(), 12);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.layers, y.layers);
        }
        let debian = a
            .iter()
            .filter(|i| i.layers.iter().any(|l| l.name == "base-debian"))
            .count();
        assert!(debian >= 4, "bases are shared: {debian}");
    }
}
