//! Saved plans: `mirror plan -o plan.json`, then `mirror apply plan.json`.
//!
//! The file holds the plan as `plan --json` prints it (for people and review tools) plus the
//! blake3 fingerprint of its inputs ([`Inputs`]). Applying it resolves again from the same lock
//! and cache (no source is asked anything), probes the target again, and runs only when every
//! input is what the plan saw; otherwise it refuses and says which input changed. The tasks
//! therefore never come from the file: a hand-edited plan cannot push anything the Mirrorfile
//! and lock do not describe.

use std::path::Path;

use serde::{Deserialize, Serialize};

use std::path::PathBuf;

use super::{Resolution, Session};
use crate::plan::fingerprint::Inputs;
use crate::plan::Plan;

/// What `kind` says in a saved plan.
pub const KIND: &str = "mirror-plan";
/// The saved-plan format; bumped when a field is removed or changes meaning.
pub const VERSION: u32 = 1;

/// A saved plan that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    #[error("cannot use the saved plan {path}: {reason}")]
    Unusable { path: PathBuf, reason: String },
    #[error("cannot save the plan to {path}: {reason}")]
    Unsaved { path: PathBuf, reason: String },
    #[error("the saved plan {path} is stale:\n{}", .reasons.iter().map(|r| format!("  - {r}")).collect::<Vec<_>>().join("\n"))]
    Stale { path: PathBuf, reasons: Vec<String> },
}

/// A saved plan file.
#[derive(Debug, Serialize, Deserialize)]
pub struct SavedPlan {
    pub kind: String,
    pub version: u32,
    /// `blake3:<hex>` over `inputs`.
    pub fingerprint: String,
    pub inputs: Inputs,
    /// The plan as `mirror plan --json` prints it.
    pub plan: serde_json::Value,
}

impl Session {
    /// The inputs of `plan`, resolved as `resolution` says.
    pub fn plan_inputs(
        &self,
        resolution: &Resolution,
        plan: &Plan,
    ) -> Result<Inputs, SavedPlanError> {
        let mirrorfile = std::fs::read(&self.model.path).map_err(|e| SavedPlanError::Unusable {
            path: self.model.path.clone(),
            reason: format!("cannot read the Mirrorfile: {e}"),
        })?;
        Ok(Inputs::new(
            &mirrorfile,
            &resolution.lock_text,
            plan.images.iter().map(|i| &i.resolved),
            &plan.target_fingerprint,
        ))
    }
}

impl SavedPlan {
    pub fn new(inputs: Inputs, plan: serde_json::Value) -> SavedPlan {
        SavedPlan {
            kind: KIND.into(),
            version: VERSION,
            fingerprint: inputs.fingerprint(),
            inputs,
            plan,
        }
    }

    pub fn save(&self, path: &Path) -> Result<(), SavedPlanError> {
        let fail = |reason: String| SavedPlanError::Unsaved {
            path: path.to_path_buf(),
            reason,
        };
        let mut text = serde_json::to_string_pretty(self).map_err(|e| fail(e.to_string()))?;
        text.push('\n');
        std::fs::write(path, text).map_err(|e| fail(e.to_string()))
    }

    pub fn load(path: &Path) -> Result<SavedPlan, SavedPlanError> {
        let fail = |reason: String| SavedPlanError::Unusable {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
        let saved: SavedPlan = serde_json::from_slice(&text)
            .map_err(|e| fail(format!("not a plan saved by `mirror plan -o`: {e}")))?;
        if saved.kind != KIND || saved.version != VERSION {
            return Err(fail(format!(
                "it is a `{}` version {} file; this mirror applies `{KIND}` version {VERSION}",
                saved.kind, saved.version
            )));
        }
        if saved.inputs.fingerprint() != saved.fingerprint {
            return Err(fail(
                "its fingerprint does not match its inputs (the file was edited)".into(),
            ));
        }
        Ok(saved)
    }

    /// Refuses the plan unless `now` (the inputs as they are) equals what it saw.
    pub fn check(&self, path: &Path, now: &Inputs) -> Result<(), SavedPlanError> {
        if now.fingerprint() == self.fingerprint {
            return Ok(());
        }
        let mut reasons: Vec<String> = self
            .inputs
            .stale_reasons(now)
            .into_iter()
            .map(str::to_string)
            .collect();
        if reasons.is_empty() {
            reasons.push("its fingerprint differs".into());
        }
        Err(SavedPlanError::Stale {
            path: path.to_path_buf(),
            reasons,
        })
    }
}
