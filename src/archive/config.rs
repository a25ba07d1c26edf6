//! The two facts `mirror` needs from an image config: the platform it was built for and the
//! diff_ids of its layers. Everything else in the config is carried as bytes, untouched.

use serde::Deserialize;

use crate::oci::{Digest, Platform};

#[derive(Deserialize)]
struct ConfigJson {
    #[serde(flatten)]
    platform: Platform,
    #[serde(default)]
    rootfs: Option<RootFs>,
}

#[derive(Deserialize)]
struct RootFs {
    #[serde(default)]
    diff_ids: Vec<Digest>,
}

/// An image config, read for its platform and layer list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageConfig {
    pub platform: Platform,
    pub diff_ids: Vec<Digest>,
}

impl ImageConfig {
    pub fn parse(bytes: &[u8]) -> Result<ImageConfig, String> {
        let config: ConfigJson = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if config.platform.os.is_empty() || config.platform.architecture.is_empty() {
            return Err("it states no `os` or no `architecture`".into());
        }
        Ok(ImageConfig {
            platform: config.platform,
            diff_ids: config.rootfs.map(|r| r.diff_ids).unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_platform_with_variant_and_diff_ids() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let text = format!(
            r#"{{"architecture":"arm","os":"linux","variant":"v6","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{d}"]}}}}"#
        );
        let config = ImageConfig::parse(text.as_bytes()).expect("valid");
        assert_eq!(config.platform, Platform::new("linux", "arm", Some("v6")));
        assert_eq!(config.diff_ids.len(), 1);
        assert!(ImageConfig::parse(b"{}").is_err());
        assert!(ImageConfig::parse(b"[").is_err());
    }
}
