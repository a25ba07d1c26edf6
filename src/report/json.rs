//! The `--json` documents. Their shape is part of the interface (documented in the README):
//! fields are only ever added, and `version` changes if one is removed or changes meaning.

use serde::Serialize;

use super::status;
use crate::execute::Outcome;
use crate::plan::{Action, ImagePlan, Plan, Totals};
use crate::resolve::archives::ArchiveStats;
use crate::resolve::Provenance;

pub const VERSION: u32 = 1;

#[derive(Serialize)]
pub struct PlanDoc {
    pub version: u32,
    pub images: Vec<PlanImage>,
    /// Notes about the run rather than one image (each image has its own `warnings`): content
    /// an archive holds that no image takes, repository tags skipped, …
    pub warnings: Vec<String>,
    pub summary: PlanSummary,
}

#[derive(Serialize)]
pub struct PlanImage {
    pub source: String,
    pub target: String,
    pub action: Action,
    pub source_digest: String,
    pub target_digest: String,
    pub current_digest: Option<String>,
    pub platforms: Vec<String>,
    pub missing_platforms: Vec<String>,
    pub warnings: Vec<String>,
    /// Whether `source_digest` came from the lock.
    pub locked: bool,
    /// Set when the lock pins `source_digest` but the tag upstream now points elsewhere.
    pub drift: Option<DriftDoc>,
    pub fetch: Totals,
    pub push: Totals,
    pub mount: Totals,
    /// For images made from archives: each platform and the archive it came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archives: Option<Vec<ArchiveEntry>>,
}

#[derive(Serialize)]
pub struct ArchiveEntry {
    pub platform: String,
    pub archive: String,
    pub manifest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_index: Option<String>,
}

fn archive_entries(image: &ImagePlan) -> Option<Vec<ArchiveEntry>> {
    match &image.resolved.provenance {
        Provenance::Registry => None,
        Provenance::Archives(list) => Some(
            list.iter()
                .map(|p| ArchiveEntry {
                    platform: p.platform.to_string(),
                    archive: p.archive.display().to_string(),
                    manifest: p.manifest.to_string(),
                    upstream_index: p.upstream_index.as_ref().map(|d| d.to_string()),
                })
                .collect(),
        ),
    }
}

#[derive(Serialize)]
pub struct DriftDoc {
    /// What the lock pins (and what is mirrored).
    pub locked: String,
    /// Where the tag points upstream now.
    pub upstream: String,
}

#[derive(Serialize)]
pub struct PlanSummary {
    pub images: u64,
    pub create: u64,
    pub update: u64,
    pub unchanged: u64,
    pub fetch_blobs: u64,
    pub fetch_bytes: u64,
    /// Part of the fetch that planning already did (image configs, read to learn platforms):
    /// an `apply` after this plan fetches `fetch_bytes - fetched_while_planning_bytes`.
    pub fetched_while_planning_blobs: u64,
    pub fetched_while_planning_bytes: u64,
    pub push_blobs: u64,
    pub push_bytes: u64,
    pub mount_blobs: u64,
    pub archives: ArchiveStats,
}

fn plan_image(image: &ImagePlan) -> PlanImage {
    let r = &image.resolved;
    PlanImage {
        source: r.source.display(),
        target: image.target.clone(),
        action: image.action,
        source_digest: r.upstream_digest.to_string(),
        target_digest: r.root.digest().to_string(),
        current_digest: image.current.as_ref().map(|d| d.to_string()),
        platforms: r.platforms.iter().map(|p| p.to_string()).collect(),
        missing_platforms: r.missing_platforms.iter().map(|p| p.to_string()).collect(),
        warnings: r.warnings.clone(),
        locked: r.pinned,
        drift: r.drift.as_ref().map(|d| DriftDoc {
            locked: d.locked.to_string(),
            upstream: d.upstream.to_string(),
        }),
        fetch: image.fetch,
        push: image.push,
        mount: image.mount,
        archives: archive_entries(image),
    }
}

pub fn plan(plan: &Plan) -> PlanDoc {
    let t = plan.totals();
    PlanDoc {
        version: VERSION,
        images: plan.images.iter().map(plan_image).collect(),
        warnings: plan.warnings.clone(),
        summary: PlanSummary {
            images: plan.images.len() as u64,
            create: t.create,
            update: t.update,
            unchanged: t.unchanged,
            fetch_blobs: t.fetch.blobs,
            fetch_bytes: t.fetch.bytes,
            fetched_while_planning_blobs: plan.prefetched.blobs,
            fetched_while_planning_bytes: plan.prefetched.bytes,
            push_blobs: t.push.blobs,
            push_bytes: t.push.bytes,
            mount_blobs: t.mount.blobs,
            archives: plan.archives,
        },
    }
}

#[derive(Serialize)]
pub struct ApplyDoc {
    pub version: u32,
    pub images: Vec<ApplyImage>,
    pub summary: ApplySummary,
    /// The bundle file written, when the target is a bundle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle: Option<super::bundle::BundleDoc>,
}

#[derive(Serialize)]
pub struct ApplyImage {
    pub source: String,
    pub target: String,
    pub action: Action,
    pub source_digest: String,
    pub target_digest: String,
    pub platforms: Vec<String>,
    /// `ok` (the tag holds the image), `failed` (a task this image needs failed) or `not_done`
    /// (interrupted before its tag was pushed).
    pub status: &'static str,
    /// Why the status is not `ok`: the failed task, `blocked by a failed task of <image>`, or
    /// the interruption. `null` for `ok`.
    pub reason: Option<String>,
}

#[derive(Serialize)]
pub struct ApplySummary {
    pub images: u64,
    pub blobs_fetched: u64,
    pub bytes_fetched: u64,
    pub blobs_pushed: u64,
    pub bytes_pushed: u64,
    pub blobs_mounted: u64,
    pub blobs_skipped: u64,
    pub manifests_pushed: u64,
    pub requests: u64,
    /// Images whose status is `failed`.
    pub failed: u64,
    /// Images whose status is `not_done`.
    pub not_done: u64,
    /// The run was stopped (Ctrl-C) before it finished.
    pub interrupted: bool,
    pub archives: ArchiveStats,
}

pub fn apply(plan: &Plan, outcome: &Outcome, requests: u64) -> ApplyDoc {
    let statuses = status::image_statuses(plan, outcome);
    let counts = status::counts(plan, &statuses);
    ApplyDoc {
        version: VERSION,
        images: plan
            .images
            .iter()
            .zip(&statuses)
            .map(|(image, st)| ApplyImage {
                source: image.resolved.source.display(),
                target: image.target.clone(),
                action: image.action,
                source_digest: image.resolved.upstream_digest.to_string(),
                target_digest: image.resolved.root.digest().to_string(),
                platforms: image
                    .resolved
                    .platforms
                    .iter()
                    .map(|p| p.to_string())
                    .collect(),
                status: st.status.as_str(),
                reason: st.reason.clone(),
            })
            .collect(),
        summary: ApplySummary {
            images: plan.images.len() as u64,
            blobs_fetched: outcome.blobs_fetched + plan.prefetched.blobs,
            bytes_fetched: outcome.bytes_fetched + plan.prefetched.bytes,
            blobs_pushed: outcome.blobs_pushed,
            bytes_pushed: outcome.bytes_pushed,
            blobs_mounted: outcome.blobs_mounted,
            blobs_skipped: plan.images.iter().map(|i| i.present.blobs).sum(),
            manifests_pushed: outcome.manifests_pushed,
            requests,
            failed: counts.failed,
            not_done: counts.not_done,
            interrupted: outcome.interrupted,
            archives: plan.archives,
        },
        bundle: None,
    }
}
